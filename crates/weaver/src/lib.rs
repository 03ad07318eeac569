//! ProteinWeaver (Ma et al. 2024, arXiv 2411.16686): multi-domain backbones by assembling
//! domains with SE(3) diffusion conditioned on a spliced CA distance map.
//!
//! - [`domains`]: our own domain parser (recursive spectral bisection of the CA contact graph
//!   with a normalised-cut acceptance test), used to find multi-domain training chains.
//! - [`splice`]: the conditioning — a distance map whose intra-domain blocks are real and whose
//!   inter-domain and linker entries are −1.

pub mod domains;
pub mod error;
pub mod splice;

pub use domains::{DomainParams, Domains, parse_domains};
pub use error::WeaverError;
pub use splice::{SplicedMap, assemble_map, layout, spliced_distance_map};
