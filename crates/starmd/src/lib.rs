//! STAR-MD: spatio-temporal autoregressive SE(3) diffusion for long-horizon protein backbone
//! dynamics (Shoghi, Liu, Shen, Brekelmans, Li, Gu, "Scalable Spatio-Temporal SE(3)
//! Diffusion for Long-Horizon Protein Dynamics", ICLR 2026, arXiv 2602.02128). No code was
//! released; the SE(3) diffusion settings follow its predecessor ConfRover
//! (`ByteDance-Seed/ConfRover`, read for the maths only) through [`protforge_flow`].
//!
//! - [`config`]: the architecture and diffusion settings stored as `config.json`.
//! - [`features`]: frames from backbone atoms and back, initial-frame conditioning.
//! - [`attention`]: joint spatio-temporal attention with 2-D RoPE, the block-causal
//!   history ‖ noisy mask, and the KV cache of per-residue features.
//! - [`model`]: the network (per-frame IPA + joint attention + AdaLN on diffusion time and
//!   log stride), with a training pass and cached rollout passes.
//! - [`data`]: MD trajectories from `data/md/` and random windows with log-uniform strides.
//! - [`train`]: denoising score matching with context noise, and the resumable training loop.
//! - [`sampler`]: autoregressive rollout with the KV cache and the reverse SDE.
//!
//! Time convention (SE(3) diffusion): `t = 0` is data, `t = 1` is noise. Lengths are Å at
//! every public boundary; the network works in nm inside.
//!
//! ```no_run
//! use candle_core::{DType, Device};
//! use candle_nn::VarBuilder;
//! use protforge_starmd::{StarMd, StarMdConfig, sampler::{RolloutOptions, rollout}};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ck = protforge_nn::Checkpoint::new("weights/starmd");
//! let cfg: StarMdConfig = ck.load_config()?;
//! let vb = VarBuilder::from_tensors(ck.load_tensors(&Device::Cpu)?, DType::F32, &Device::Cpu);
//! let model = StarMd::new(&cfg, vb)?;
//! let init = protforge_structure::read_backbone("start.pdb".as_ref(), &Default::default())?.backbone;
//! let opts = RolloutOptions { frames: 100, dt_ns: 0.1, ..RolloutOptions::default() };
//! let out = rollout(&model, &init, &opts, &mut |_| {})?;
//! assert_eq!(out.replicas[0].len(), 101);
//! # Ok(()) }
//! ```

pub mod attention;
pub mod config;
pub mod data;
pub mod error;
pub mod features;
pub mod model;
pub mod sampler;
pub mod train;

pub use attention::FrameCache;
pub use config::StarMdConfig;
pub use error::StarMdError;
pub use model::StarMd;
