//! [`StructureError`]: every way reading or writing a structure or trajectory can fail.
//!
//! Each variant carries the path it concerns (`<memory>` for in-memory input) and the
//! problem, and its `Display` is one line that names both, e.g.
//! `5tpn.pdb: chain 'Z' not found (chains: A, B)`.

use std::path::{Path, PathBuf};

/// Largest accepted coordinate magnitude, in Å.
///
/// A protein, or a whole MD box, is far smaller; anything beyond this is a corrupt or
/// unit-confused file. The PDB format itself cannot represent |x| ≥ 10⁴ Å in its 8.3 columns.
pub const MAX_ABS_COORD: f32 = 1.0e4;

/// Errors of the structure crate.
#[derive(Debug, thiserror::Error)]
pub enum StructureError {
    /// The file could not be opened, read or written (missing path, permissions, disk full...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file has no content (zero bytes, or only whitespace).
    #[error("{}: file is empty", path.display())]
    Empty {
        /// The file concerned.
        path: PathBuf,
    },
    /// The file is not text (NUL bytes or invalid UTF-8), so it is not a PDB or mmCIF file.
    #[error("{}: not a text file ({detail} at byte {offset})", path.display())]
    NotText {
        /// The file concerned.
        path: PathBuf,
        /// Byte offset of the first offending byte (after gzip decompression).
        offset: usize,
        /// What was found, e.g. "NUL byte" or "invalid UTF-8".
        detail: String,
    },
    /// The content could not be parsed.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line number, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The file ends in the middle of a record or frame.
    #[error("{}: file is truncated ({detail})", path.display())]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// Where the content stops.
        detail: String,
    },
    /// The file parsed but holds no amino-acid residue with a backbone atom.
    #[error("{}: no protein residues found", path.display())]
    NoProtein {
        /// The file concerned.
        path: PathBuf,
    },
    /// The requested chain does not occur in the file.
    #[error("{}: chain '{chain}' not found (chains: {})", path.display(), available.join(", "))]
    UnknownChain {
        /// The file concerned.
        path: PathBuf,
        /// The chain id that was asked for.
        chain: String,
        /// Protein chain ids present in the file, in file order.
        available: Vec<String>,
    },
    /// A coordinate is NaN, infinite, or larger than [`MAX_ABS_COORD`] (or cannot be
    /// represented in the output format).
    #[error("{}: bad coordinates at residue {residue}: {detail}", path.display())]
    BadCoordinates {
        /// The file concerned.
        path: PathBuf,
        /// Chain, residue name and number, e.g. `A:MET 12`.
        residue: String,
        /// What is wrong with the value.
        detail: String,
    },
    /// The file extension and content match no supported format.
    #[error("{}: unsupported format ({detail})", path.display())]
    UnsupportedFormat {
        /// The file concerned.
        path: PathBuf,
        /// The supported formats, or what was seen.
        detail: String,
    },
    /// Data that cannot be written in the requested format (e.g. a 2-character chain id in PDB).
    #[error("{}: cannot write: {detail}", path.display())]
    Unwritable {
        /// The file concerned.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A trajectory does not match its topology or is internally inconsistent.
    #[error("{}: {detail}", path.display())]
    Mismatch {
        /// The file concerned.
        path: PathBuf,
        /// What differs (atom counts, residue lists, frame sizes...).
        detail: String,
    },
    /// A third-party parser panicked on this input; the panic was caught at our boundary.
    #[error("{}: parser failure on malformed input ({message})", path.display())]
    ParserPanic {
        /// The file concerned.
        path: PathBuf,
        /// The panic message.
        message: String,
    },
}

impl StructureError {
    /// The path this error concerns.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::Empty { path }
            | Self::NotText { path, .. }
            | Self::Parse { path, .. }
            | Self::Truncated { path, .. }
            | Self::NoProtein { path }
            | Self::UnknownChain { path, .. }
            | Self::BadCoordinates { path, .. }
            | Self::UnsupportedFormat { path, .. }
            | Self::Unwritable { path, .. }
            | Self::Mismatch { path, .. }
            | Self::ParserPanic { path, .. } => path,
        }
    }

    /// An [`StructureError::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    /// A [`StructureError::Parse`] for `path` without line number.
    pub(crate) fn parse(path: &Path, message: impl Into<String>) -> Self {
        Self::Parse { path: path.to_path_buf(), line: None, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_file() {
        let e = StructureError::UnknownChain {
            path: "5tpn.pdb".into(),
            chain: "Z".into(),
            available: vec!["A".into(), "B".into()],
        };
        assert_eq!(e.to_string(), "5tpn.pdb: chain 'Z' not found (chains: A, B)");
        let e = StructureError::Parse { path: "x.cif".into(), line: Some(12), message: "bad".into() };
        assert_eq!(e.to_string(), "x.cif:12: bad");
        let e = StructureError::Empty { path: "e.pdb".into() };
        assert_eq!(e.path(), Path::new("e.pdb"));
        assert!(!e.to_string().contains('\n'));
    }
}
