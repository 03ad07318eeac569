//! Backbone metrics that need no network: geometry validity, clashes, radius of gyration,
//! DSSP secondary structure, TM-score / TM-align, diversity and novelty, and trajectory
//! (ensemble) metrics.
//!
//! Every function takes [`protforge_structure::Backbone`] (Å) or plain coordinate slices.

pub mod diversity;
pub mod dssp;
pub mod error;
pub mod geometry;
mod neighbors;
pub mod tm;
pub mod trajectory;

pub use error::EvalError;
