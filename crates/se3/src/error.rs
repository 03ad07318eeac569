//! The crate's error type.

/// Errors of the SE(3) layer.
///
/// Variants carry the name of the operation (`context`) and the offending sizes or values,
/// so that a caller can report them without extra bookkeeping. None of them allocate on
/// the scalar paths, so the hot Kabsch loop stays allocation-free even when it fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Se3Error {
    /// Two inputs that must have the same length do not.
    #[error("{context}: length mismatch ({left} vs {right})")]
    LengthMismatch {
        /// Operation that failed.
        context: &'static str,
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// Too few points for the operation.
    #[error("{context}: need at least {needed} points, got {got}")]
    TooFewPoints {
        /// Operation that failed.
        context: &'static str,
        /// Minimum number of points.
        needed: usize,
        /// Number of points given.
        got: usize,
    },
    /// Geometrically degenerate input (collinear points, zero-length axis, zero quaternion...).
    #[error("{context}: degenerate input ({reason})")]
    Degenerate {
        /// Operation that failed.
        context: &'static str,
        /// What is degenerate.
        reason: &'static str,
    },
    /// NaN or infinite input or result.
    #[error("{context}: non-finite value")]
    NonFinite {
        /// Operation that failed.
        context: &'static str,
    },
    /// Negative, non-finite or all-zero weights.
    #[error("{context}: invalid weights ({reason})")]
    InvalidWeights {
        /// Operation that failed.
        context: &'static str,
        /// What is wrong with the weights.
        reason: &'static str,
    },
    /// A matrix that should be a rotation is not orthonormal with determinant +1.
    #[error(
        "{context}: not a proper rotation matrix (orthonormality error {error:.3e}, det {det:.6})"
    )]
    NotARotation {
        /// Operation that failed.
        context: &'static str,
        /// max |RᵀR − I| entry.
        error: f64,
        /// Determinant of the matrix.
        det: f64,
    },
    /// A scalar parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Offending value.
        value: f64,
        /// Valid range or reason.
        reason: &'static str,
    },
    /// A tensor has the wrong shape or dtype.
    #[error("{context}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Operation that failed.
        context: &'static str,
        /// Expected shape, human readable (e.g. `[..., 3, 3]`).
        expected: &'static str,
        /// Actual dims.
        got: Vec<usize>,
    },
    /// Error from a candle tensor operation.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
