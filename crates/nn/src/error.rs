//! Error type of the `nn` crate.

use std::path::PathBuf;

/// Errors from device selection, checkpoint I/O, layer construction and training utilities.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A device string such as `cuda:0` could not be parsed.
    #[error("invalid device '{0}': expected 'cpu' or 'cuda:N'")]
    BadDevice(String),
    /// CUDA was requested but this binary was built without the `cuda` feature.
    #[error("device '{0}' requested, but this build of protforge has no CUDA support (rebuild with --features cuda)")]
    NoCuda(String),
    /// The weights directory or one of its files is missing.
    #[error("{path}: missing weights file ({what}); see the weights/README or pass --weights DIR")]
    MissingWeights {
        /// The file that was expected.
        path: PathBuf,
        /// What the file is (config or tensors).
        what: &'static str,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid for this model.
    #[error("{path}: invalid config: {message}")]
    BadConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `model.safetensors` is not a valid safetensors file.
    #[error("{path}: invalid safetensors file: {message}")]
    BadTensors {
        /// The tensor file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A layer or training hyper-parameter is out of range (e.g. `d_model` not divisible
    /// by `n_heads`, `warmup > total`).
    #[error("invalid {what}: {reason}")]
    BadParameter {
        /// The parameter.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Saved training state (optimizer moments, EMA, model tensors) does not match the
    /// variables it is loaded into.
    #[error("{what}: state does not match the model: {reason}")]
    StateMismatch {
        /// Which state (file or component) was being loaded.
        what: String,
        /// The missing, extra or mis-shaped tensor.
        reason: String,
    },
    /// A run was resumed with another configuration than its checkpoint's.
    #[error("{dir}: checkpoint was trained with a different configuration; resume with the same --config (and --base), or use another --out")]
    ConfigChanged {
        /// The checkpoint directory.
        dir: PathBuf,
    },
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
