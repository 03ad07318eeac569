//! ProteinWeaver (Ma et al. 2024, arXiv 2411.16686): multi-domain backbones by assembling
//! domains with SE(3) diffusion conditioned on a spliced CA distance map.
//!
//! - [`domains`]: our own domain parser (recursive spectral bisection of the CA contact graph
//!   with a normalised-cut acceptance test), used to find multi-domain training chains.
//! - [`splice`]: the conditioning — a distance map whose intra-domain blocks are real and whose
//!   inter-domain and linker entries are −1.
//! - [`features`], [`model`]: index features of the map and a FrameDiff-style IPA network that
//!   predicts clean residue frames.
//! - [`dataset`], [`loss`], [`train`]: cached domain assignments, training examples with linker
//!   windows, the denoising loss and the resumable training loop.
//! - [`sampler`]: reverse-SDE sampling of assemblies with rigid domain projection.
//! - [`score`], [`dpo`]: the documented preference score and Diffusion-DPO fine-tuning.
//! - [`bench`]: re-assembly metrics against the native and the random-placement baseline.
//! - [`frames`]: residue frames ↔ backbones.
//!
//! Time convention (SE(3) diffusion, FrameDiff): `t = 0` is data, `t = 1` is noise. Lengths are
//! Å at every public boundary; the network works in nm inside ([`model::ANG_PER_NM`]).

pub mod bench;
pub mod closure;
pub mod config;
pub mod dataset;
pub mod domains;
pub mod dpo;
pub mod error;
pub mod features;
pub mod frames;
pub mod loss;
pub mod model;
pub mod sampler;
pub mod score;
pub mod train;
pub mod splice;

pub use config::WeaverConfig;
pub use domains::{DomainParams, Domains, parse_domains};
pub use error::WeaverError;
pub use model::WeaverModel;
pub use splice::{SplicedMap, assemble_map, layout, spliced_distance_map};
