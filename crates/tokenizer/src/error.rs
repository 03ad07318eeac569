//! [`TokenizerError`]: the one error type of `protforge-tokenizer`.

use std::path::PathBuf;

/// Errors of the tokenizer: configuration, token text, inputs, and wrapped lower-level errors.
///
/// Token-text errors are one line naming the file (or `<text>`), the line, the record and the
/// 1-based token position, e.g. `tokens.fasta, line 4: record '1abc_A', token 7: 'x12' is not a number`.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The configuration is inconsistent.
    #[error("invalid tokenizer config: {0}")]
    BadConfig(String),
    /// One token of a record is malformed (not a number, out of range, empty).
    #[error("{file}, line {line}: record '{record}', token {token}: {reason}")]
    BadToken {
        /// The file, or `<text>` for in-memory text.
        file: String,
        /// 1-based line on which the token starts.
        line: usize,
        /// The record id.
        record: String,
        /// 1-based position of the token in the record.
        token: usize,
        /// What is wrong.
        reason: String,
    },
    /// A record has a header but no tokens.
    #[error("{file}, line {line}: record '{record}' is empty (no tokens)")]
    EmptyRecord {
        /// The file, or `<text>`.
        file: String,
        /// 1-based line of the record's header.
        line: usize,
        /// The record id.
        record: String,
    },
    /// The FASTA structure itself is malformed (data before the first header, empty name, no records).
    #[error("{file}, line {line}: {reason}")]
    BadFasta {
        /// The file, or `<text>`.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An input backbone cannot be tokenized (e.g. no residue with N, CA and C).
    #[error("{0}")]
    BadInput(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Checkpoint, optimizer or layer error from `protforge-nn`.
    #[error(transparent)]
    Nn(#[from] protforge_nn::NnError),
    /// Geometry error.
    #[error(transparent)]
    Se3(#[from] protforge_se3::Se3Error),
    /// Dataset error.
    #[error(transparent)]
    Data(#[from] protforge_data::DataError),
    /// Tensor error.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
