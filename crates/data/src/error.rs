//! [`DataError`]: the one error type of `protforge-data`.

use std::path::{Path, PathBuf};

/// Errors from reading, writing and building dataset files.
///
/// Every variant names the file it concerns, so the CLI can print it as one line, e.g.
/// `x.safetensors: not a protforge dataset (missing tensor 'chain_offsets')`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused an operation on a path.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// What we were doing (`"cannot open"`, `"cannot write"`, ...).
        action: &'static str,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a valid protforge dataset: wrong or missing tensor, dtype, shape,
    /// inconsistent offsets, or bad metadata. `reason` says which.
    #[error("{}: not a protforge dataset ({reason})", path.display())]
    Schema {
        /// The dataset file.
        path: PathBuf,
        /// The first problem found, e.g. `missing tensor 'chain_offsets'`.
        reason: String,
    },

    /// The file is a protforge dataset of a schema version this build cannot read.
    #[error("{}: unsupported protforge dataset version '{found}' (this build reads '{expected}')", path.display())]
    UnsupportedVersion {
        /// The dataset file.
        path: PathBuf,
        /// Version string found in the metadata.
        found: String,
        /// Version this build reads.
        expected: &'static str,
    },

    /// Chains handed to the writer are inconsistent (e.g. a record length that differs from
    /// its backbone's length).
    #[error("{}: cannot write dataset: {reason}", path.display())]
    InvalidChains {
        /// The output file.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },

    /// Invalid [`crate::BuildOptions`].
    #[error("invalid build option {option}: {reason}")]
    InvalidOption {
        /// Field name as in the CLI (`min_len`, `val_fraction`, ...).
        option: &'static str,
        /// Why it is rejected.
        reason: String,
    },

    /// The build found no segment to keep, so no dataset was written.
    #[error("{}: nothing to write: no chain segment passed the filters ({files_read} files read, {rejected} rejected)", path.display())]
    EmptyDataset {
        /// The output file that was not written.
        path: PathBuf,
        /// Number of files that were read successfully.
        files_read: usize,
        /// Number of rejected files or records.
        rejected: usize,
    },

    /// safetensors refused to serialise the tensors.
    #[error("{}: cannot serialise safetensors: {source}", path.display())]
    Serialize {
        /// The output file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: safetensors::SafeTensorError,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), action, source }
    }

    pub(crate) fn schema(path: &Path, reason: impl Into<String>) -> Self {
        Self::Schema { path: path.to_path_buf(), reason: reason.into() }
    }
}
