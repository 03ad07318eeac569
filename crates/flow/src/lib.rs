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
//!
//! **Time convention (flow matching): `t = 0` is noise, `t = 1` is data.**
//! SE(3) diffusion (STAR-MD, ProteinWeaver) will live in its own module with the opposite,
//! FrameDiff convention and never mixes with this one.

pub mod error;
pub mod r3;
pub mod rng;
pub mod schedule;
pub mod time;

pub use error::FlowError;
pub use r3::{IntegrateOptions, NoiseSource, PerSampleNoise, StepMode, VelocityField};
pub use schedule::{GSchedule, Integrator, ScalePlan, ScaleSteps, TimeGrid};
pub use time::TimeDistribution;
