//! Protein backbone structures and trajectories for protforge.
//!
//! This crate is the only place that touches file formats: pdbtbx for PDB/mmCIF reading,
//! our own fixed-column PDB writer, molly for XTC and our own DCD codec.
//! Coordinates are in Å at every public boundary.
#![warn(missing_docs)]

pub mod backbone;
pub mod error;
pub mod idealize;
pub mod io;
pub mod rebuild;
pub mod residue;
pub mod trajectory;

pub use backbone::{Backbone, ResidueId, atom};
pub use error::StructureError;
pub use io::{Format, ReadOptions, ReadOutput, Topology, read_backbone, read_backbone_bytes, write_mmcif, write_pdb};
pub use trajectory::{TrajFormat, Trajectory};
pub use rebuild::{complete_backbone, rebuild_backbone};
