//! Generative machinery shared by protforge models, independent of any network.
//!
//! - [`schedule`]: time grids for sampling ([`TimeGrid`]), the SDE noise coefficient g(t)
//!   ([`GSchedule`]) and per-scale step plans (`sde:400,ode:2,ode:2`, [`ScalePlan`]).
//! - [`time`]: training-time distributions ([`TimeDistribution`], Proteina's mixture of
//!   U(0, 1) and Beta(1.9, 1)).
//! - [`r3`]: flow matching on (R³)ⁿ: the linear interpolant, the velocity target, the
//!   velocity→score conversion and the ODE/SDE Euler steps (Proteina, Geffner et al. 2025,
//!   eqs. 1–3; PAR, Qu et al. 2026).
//! - [`rng`]: explicit, seeded randomness (candle's CPU RNG cannot be seeded), including
//!   per-sample seeds derived from a run seed so sharded runs reproduce one big run.
//! - [`se3_diffusion`]: SE(3) diffusion over per-residue frames (FrameDiff, Yim et al. 2023;
//!   ConfRover/STAR-MD settings), combining [`r3_vp`] (VP-SDE on translations) and
//!   [`so3_diffusion`] (IGSO(3) on rotations); shared by STAR-MD and ProteinWeaver.
//!
//! **Time convention (flow matching): `t = 0` is noise, `t = 1` is data.**
//! The SE(3) diffusion modules use the opposite, FrameDiff convention (`t = 0` data, `t = 1`
//! noise) and never mix with the flow-matching ones.

pub mod error;
pub mod r3;
pub mod r3_vp;
pub mod rng;
pub mod schedule;
pub mod se3_diffusion;
pub mod so3_diffusion;
pub mod time;

pub use error::FlowError;
pub use r3::{IntegrateOptions, NoiseSource, PerSampleNoise, StepMode, VelocityField};
pub use r3_vp::{BetaSchedule, VpConfig, VpDiffuser};
pub use se3_diffusion::{ScoreModel, Se3Diffuser, Se3DiffusionConfig};
pub use so3_diffusion::{SigmaSchedule, So3Config, So3Diffuser};
pub use schedule::{GSchedule, Integrator, ScalePlan, ScaleSteps, TimeGrid};
pub use time::TimeDistribution;
