//! [`EvalError`]: the one error type of `protforge-eval`.

/// Errors of the evaluation metrics. Each variant names the function (`context`) and the
/// offending input so that a CLI can print a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A structure has fewer residues (with CA) than the metric needs.
    #[error("{context}: {which} has {len} residues with a CA atom, at least {min} are needed")]
    TooShort {
        /// Function that raised the error.
        context: &'static str,
        /// Which input (e.g. `"structure a"`, `"structure 3"`).
        which: String,
        /// Residues found.
        len: usize,
        /// Residues needed.
        min: usize,
    },
    /// Two residue-equivalent coordinate sets have different lengths.
    #[error("{context}: length mismatch: {left_name} has {left} residues, {right_name} has {right}")]
    LengthMismatch {
        /// Function that raised the error.
        context: &'static str,
        /// Name of the left input.
        left_name: &'static str,
        /// Its length.
        left: usize,
        /// Name of the right input.
        right_name: &'static str,
        /// Its length.
        right: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("{context}: non-finite coordinate in {which} at residue index {index}")]
    NonFinite {
        /// Function that raised the error.
        context: &'static str,
        /// Which input.
        which: String,
        /// 0-based residue index.
        index: usize,
    },
    /// A matrix argument is not square or has the wrong size.
    #[error("{context}: expected a {expected}×{expected} matrix, row {row} has {got} entries")]
    BadMatrix {
        /// Function that raised the error.
        context: &'static str,
        /// Expected side length.
        expected: usize,
        /// First offending row.
        row: usize,
        /// Its length.
        got: usize,
    },
    /// An error from the SE(3) layer (superposition).
    #[error(transparent)]
    Se3(#[from] protforge_se3::Se3Error),
}
