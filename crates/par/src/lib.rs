//! PAR: multi-scale autoregressive backbone generation (Qu et al. 2026, arXiv 2602.04883).
//!
//! A CA trace is decomposed into coarse-to-fine scales ([`scales`]); an autoregressive
//! transformer, block-causal over scales, produces a conditioning embedding per scale; a
//! flow-matching decoder shared by all scales generates each scale's coordinates. Motif
//! scaffolding and point prompts work zero-shot by teacher-forcing known coordinates at every
//! scale ([`contig`] parses RFdiffusion-style specifications).

pub mod config;
pub mod contig;
pub mod error;
pub mod model;
pub mod motif;
pub mod problem;
pub mod sampler;
pub mod scales;
pub mod train;

pub use config::{ArConfig, DecoderConfig, ExposureBias, ParConfig};
pub use contig::{Contig, Placement, Segment};
pub use error::ParError;
pub use motif::MotifGuide;
pub use problem::MotifProblem;
pub use scales::{Downsample, ScaleSpec};
