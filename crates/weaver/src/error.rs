//! Error type of the `weaver` crate.

/// Errors of domain parsing and assembly inputs.
#[derive(Debug, thiserror::Error)]
pub enum WeaverError {
    /// Too few residues for the operation.
    #[error("{context}: {len} residues, at least {min} are needed")]
    TooShort {
        /// Operation.
        context: &'static str,
        /// Residues given.
        len: usize,
        /// Residues needed.
        min: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("{context}: non-finite coordinate at residue index {index}")]
    NonFinite {
        /// Operation.
        context: &'static str,
        /// 0-based residue index.
        index: usize,
    },
    /// Inconsistent segment layout (domains, linkers, lengths).
    #[error("{0}")]
    BadLayout(String),
}
