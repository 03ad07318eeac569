//! Error type of the `weaver` crate.

use std::path::PathBuf;

/// Errors of domain parsing, assembly inputs, the model, training and preference alignment.
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
    /// A configuration value is out of range.
    #[error("invalid {what}: {reason}")]
    BadConfig {
        /// The setting.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The total length of an assembly exceeds what the model supports.
    #[error("total length {len} residues exceeds the model's maximum of {max}")]
    TooLong {
        /// Requested length.
        len: usize,
        /// Model maximum.
        max: usize,
    },
    /// The domain cache does not describe the dataset it is used with.
    #[error("{path}: {reason} (delete the file to re-parse the domains)")]
    StaleCache {
        /// The cache file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// Not enough usable data (e.g. no multi-domain chains in a split).
    #[error("{0}")]
    NoData(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Geometry error.
    #[error(transparent)]
    Se3(#[from] protforge_se3::Se3Error),
    /// Diffusion error.
    #[error(transparent)]
    Flow(#[from] protforge_flow::FlowError),
    /// Network, optimizer or checkpoint error.
    #[error(transparent)]
    Nn(#[from] protforge_nn::NnError),
    /// Dataset error.
    #[error(transparent)]
    Data(#[from] protforge_data::DataError),
    /// Metric error.
    #[error(transparent)]
    Eval(#[from] protforge_eval::EvalError),
    /// Candle error.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl WeaverError {
    /// An I/O error naming `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_path_buf(), source }
    }
}
