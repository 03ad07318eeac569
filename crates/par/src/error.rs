//! Error type of the `par` crate.

/// Errors of PAR: contig specifications, scale settings and motif placement.
#[derive(Debug, thiserror::Error)]
pub enum ParError {
    /// The contig string does not parse.
    #[error("invalid contig '{contig}': {reason}")]
    BadContig {
        /// The contig text.
        contig: String,
        /// What is wrong, naming the segment.
        reason: String,
    },
    /// A motif segment names residues the motif structure does not have.
    #[error("contig segment {segment}: {reason}")]
    MotifNotFound {
        /// The segment, e.g. `A163-181`.
        segment: String,
        /// What is missing.
        reason: String,
    },
    /// No choice of scaffold lengths satisfies the total length bounds.
    #[error("contig '{contig}' cannot produce a total length in {min}-{max} (possible: {lo}-{hi})")]
    Unsatisfiable {
        /// The contig text.
        contig: String,
        /// Requested minimum total length.
        min: usize,
        /// Requested maximum total length.
        max: usize,
        /// Smallest total the contig allows.
        lo: usize,
        /// Largest total the contig allows.
        hi: usize,
    },
    /// A motif-scaffolding problem file (Genie2 PDB, FrameFlow CSV) is malformed.
    #[error("{file}: {reason}")]
    BadProblem {
        /// The file (and line).
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Motif conditioning cannot be applied (prompt size, motif placement).
    #[error("{0}")]
    BadCondition(String),
    /// Sampling failed in the flow integrator.
    #[error(transparent)]
    Flow(#[from] protforge_flow::FlowError),
    /// Tensor error.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A scale configuration is invalid.
    #[error("invalid scales: {0}")]
    BadScales(String),
}
