//! Dataset files for protforge: build them from structures, split them by sequence
//! clusters, read them back through a memory map, crop and batch chains.
//!
//! A dataset is one safetensors file (layout in [`mod@format`]): `coords [R, 4, 3] f32` (N, CA, C,
//! O in Å), `aatype [R] u8`, `atom_mask [R, 4] u8`, `chain_offsets [n + 1] i64`, and JSON
//! metadata with one [`ChainRecord`] per chain (id, source, split, cluster, length). Python
//! reads it with `safetensors.numpy.load_file`.
//!
//! ```no_run
//! use protforge_data::{BuildOptions, Dataset, build};
//! use std::path::PathBuf;
//!
//! let opts = BuildOptions { out: "train.safetensors".into(), ..BuildOptions::default() };
//! let summary = build(&[PathBuf::from("pdbs/")], &opts, None)?;
//! assert_eq!(summary.kept, summary.train_chains + summary.val_chains);
//!
//! let ds = Dataset::open("train.safetensors")?;
//! let first = ds.chain(ds.train_indices()[0]).expect("index from the dataset");
//! println!("{} residues", first.len());
//! # Ok::<(), protforge_data::DataError>(())
//! ```
#![warn(missing_docs)]

pub mod build;
pub mod cluster;
pub mod crop;
pub mod dataset;
mod error;
pub mod format;
pub mod segment;

pub use build::{BuildOptions, BuildSummary, Progress, Rejected, build};
pub use crop::{crop, crop_range, length_batches};
pub use dataset::{Dataset, DatasetInfo};
pub use error::DataError;
pub use format::{ChainRecord, DatasetChain, Split, WriteMetadata, write_dataset};
