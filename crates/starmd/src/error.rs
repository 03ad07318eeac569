//! Error type of the `starmd` crate.

use std::path::PathBuf;

/// Errors of STAR-MD: configuration, MD data, initial structures, rollout and training.
#[derive(Debug, thiserror::Error)]
pub enum StarMdError {
    /// A configuration value is out of range.
    #[error("invalid {what}: {reason}")]
    BadConfig {
        /// The setting.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The initial structure of a rollout cannot be used (gap, several chains, missing atoms,
    /// unknown residues).
    #[error("{path}: {reason}")]
    BadInit {
        /// The structure file (or `<memory>`).
        path: PathBuf,
        /// What is wrong, naming the residue.
        reason: String,
    },
    /// A rollout setting is outside what the model was trained for or can do.
    #[error("{0}")]
    BadRollout(String),
    /// The MD data directory is missing a file or holds an inconsistent trajectory.
    #[error("{path}: {reason}")]
    BadData {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Structure or trajectory I/O.
    #[error(transparent)]
    Structure(#[from] protforge_structure::StructureError),
    /// Diffusion maths.
    #[error(transparent)]
    Flow(#[from] protforge_flow::FlowError),
    /// Network utilities, checkpoints and optimizer state.
    #[error(transparent)]
    Nn(#[from] protforge_nn::NnError),
    /// Geometry.
    #[error(transparent)]
    Se3(#[from] protforge_se3::Se3Error),
    /// Constraint projection of a generated frame failed.
    #[error(transparent)]
    Idealize(#[from] protforge_structure::idealize::IdealizeError),
    /// Tensor errors.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl StarMdError {
    /// A [`StarMdError::BadConfig`].
    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        Self::BadConfig { what, reason: reason.into() }
    }

    /// A [`StarMdError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_path_buf(), source }
    }
}
