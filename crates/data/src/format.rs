//! The dataset file format and its writer.
//!
//! One safetensors file (DESIGN.md, "Dataset file") holding all chains concatenated:
//!
//! | tensor | dtype | shape | meaning |
//! |---|---|---|---|
//! | `coords` | F32 | `[R, 4, 3]` | N, CA, C, O positions in Å (zero where the atom is absent) |
//! | `aatype` | U8 | `[R]` | residue type, AlphaFold order, 20 = unknown (`X`) |
//! | `atom_mask` | U8 | `[R, 4]` | 1 if the atom is present, else 0 |
//! | `chain_offsets` | I64 | `[n + 1]` | chain `i` is residues `chain_offsets[i]..chain_offsets[i+1]` |
//!
//! `R` is the total number of residues and `n` the number of chains. The safetensors
//! `__metadata__` (a string → string map) holds:
//!
//! - `protforge_dataset`: the schema version, [`SCHEMA_VERSION`].
//! - `chains`: a JSON array of [`ChainRecord`] (`id`, `source`, `split`, `cluster`, `length`), one
//!   per chain in tensor order.
//! - `licence`: a free-text licence note; `sources`: a JSON object, source → `{chains, residues}`;
//!   `build`: a JSON object with the build settings and counts; `format`: a one-line description of
//!   the tensors (for people opening the file from Python).
//!
//! The file loads in Python with `safetensors.numpy.load_file` (see
//! `scripts/check_dataset_python.py`).

use crate::DataError;
use protforge_structure::Backbone;
use safetensors::Dtype;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Schema version written to and required in the `protforge_dataset` metadata key.
pub const SCHEMA_VERSION: &str = "1";

/// Metadata key holding [`SCHEMA_VERSION`].
pub const KEY_VERSION: &str = "protforge_dataset";
/// Metadata key holding the JSON array of [`ChainRecord`].
pub const KEY_CHAINS: &str = "chains";
/// Metadata key holding the licence note.
pub const KEY_LICENCE: &str = "licence";
/// Metadata key holding the per-source counts (JSON object).
pub const KEY_SOURCES: &str = "sources";
/// Metadata key holding the build settings and counts (JSON object).
pub const KEY_BUILD: &str = "build";
/// Metadata key holding a one-line description of the tensors.
pub const KEY_FORMAT: &str = "format";

/// Tensor names.
pub mod tensor {
    /// `[R, 4, 3]` f32, Å.
    pub const COORDS: &str = "coords";
    /// `[R]` u8.
    pub const AATYPE: &str = "aatype";
    /// `[R, 4]` u8.
    pub const ATOM_MASK: &str = "atom_mask";
    /// `[n + 1]` i64.
    pub const CHAIN_OFFSETS: &str = "chain_offsets";
}

const FORMAT_NOTE: &str = "coords [R,4,3] f32 (N,CA,C,O; Angstrom); aatype [R] u8 (AlphaFold order ARNDCQEGHILKMFPSTWYV, 20=X); \
atom_mask [R,4] u8; chain_offsets [n+1] i64 (chain i = residues offsets[i]..offsets[i+1]); chains = JSON list in tensor order";

/// Which side of the train/validation split a chain is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training set.
    Train,
    /// Validation set.
    Val,
}

impl Split {
    /// `"train"` or `"val"`, as stored in the metadata.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-chain metadata, one entry of the `chains` JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainRecord {
    /// Unique chain (segment) id, e.g. `1abc:A`, or `1abc:A/12-140` for a segment
    /// (1-based positions within the source chain).
    pub id: String,
    /// Where the chain comes from (the `source` field of a jsonl record, or the input folder name).
    pub source: String,
    /// Train or validation.
    pub split: Split,
    /// Sequence cluster index (single-linkage k-mer clusters, see [`crate::cluster`]).
    pub cluster: u32,
    /// Number of residues; equals `chain_offsets[i+1] - chain_offsets[i]`.
    pub length: usize,
}

/// One chain to write: its record and its backbone (all residues of `backbone` are stored;
/// chain ids and residue numbers are not stored).
#[derive(Debug, Clone)]
pub struct DatasetChain {
    /// Metadata; `record.length` must equal `backbone.len()`.
    pub record: ChainRecord,
    /// Coordinates (Å), atom mask and residue types.
    pub backbone: Backbone,
}

/// Optional free-form metadata written beside the required keys.
#[derive(Debug, Clone, Default)]
pub struct WriteMetadata {
    /// Licence note (`licence` key). Empty → a generic note that the input licences apply.
    pub licence: String,
    /// Build settings and counts (`build` key), any JSON value.
    pub build: Option<serde_json::Value>,
}

/// Per-source totals stored under the `sources` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCount {
    /// Number of chains.
    pub chains: usize,
    /// Number of residues.
    pub residues: usize,
}

/// Default licence note when none is given.
pub const DEFAULT_LICENCE: &str = "Derived from the input structures; the licences of the inputs apply \
(see the per-chain 'source' field and the dataset README).";

/// Write `chains` as a dataset file at `path`, atomically (a temporary file in the same
/// directory, then rename). Parent directories are created.
///
/// Coordinates of absent atoms (mask `false`) are written as zeros.
///
/// # Errors
/// [`DataError::InvalidChains`] if a record's length differs from its backbone, a backbone's
/// arrays differ in length, or two records share an id; [`DataError::Io`] /
/// [`DataError::Serialize`] if writing fails.
pub fn write_dataset(path: &Path, chains: &[DatasetChain], meta: &WriteMetadata) -> Result<(), DataError> {
    let invalid = |reason: String| DataError::InvalidChains { path: path.to_path_buf(), reason };
    let mut seen = std::collections::HashSet::new();
    let n_res: usize = chains.iter().map(|c| c.backbone.len()).sum();
    let mut coords = Vec::with_capacity(n_res * 12 * 4);
    let mut aatype = Vec::with_capacity(n_res);
    let mut mask = Vec::with_capacity(n_res * 4);
    let mut offsets = Vec::with_capacity((chains.len() + 1) * 8);
    let mut sources: BTreeMap<String, SourceCount> = BTreeMap::new();
    let mut offset = 0i64;
    offsets.extend_from_slice(&offset.to_le_bytes());
    for c in chains {
        let bb = &c.backbone;
        if c.record.length != bb.len() {
            return Err(invalid(format!(
                "chain '{}': record length {} but backbone has {} residues",
                c.record.id,
                c.record.length,
                bb.len()
            )));
        }
        if bb.atom_mask.len() != bb.len() || bb.aatype.len() != bb.len() {
            return Err(invalid(format!("chain '{}': backbone arrays differ in length", c.record.id)));
        }
        if bb.is_empty() {
            return Err(invalid(format!("chain '{}' is empty", c.record.id)));
        }
        if !seen.insert(c.record.id.as_str()) {
            return Err(invalid(format!("duplicate chain id '{}'", c.record.id)));
        }
        for (xyz, m) in bb.coords.iter().zip(&bb.atom_mask) {
            for (atom, &present) in xyz.iter().zip(m) {
                for &v in atom {
                    let v = if present { v } else { 0.0 };
                    coords.extend_from_slice(&v.to_le_bytes());
                }
                mask.push(u8::from(present));
            }
        }
        aatype.extend_from_slice(&bb.aatype);
        offset += bb.len() as i64;
        offsets.extend_from_slice(&offset.to_le_bytes());
        let s = sources.entry(c.record.source.clone()).or_default();
        s.chains += 1;
        s.residues += bb.len();
    }

    let records: Vec<&ChainRecord> = chains.iter().map(|c| &c.record).collect();
    let to_json = |v: serde_json::Result<String>| v.map_err(|e| invalid(format!("cannot encode metadata: {e}")));
    let mut info: BTreeMap<String, String> = BTreeMap::new();
    info.insert(KEY_VERSION.into(), SCHEMA_VERSION.into());
    info.insert(KEY_CHAINS.into(), to_json(serde_json::to_string(&records))?);
    info.insert(KEY_SOURCES.into(), to_json(serde_json::to_string(&sources))?);
    info.insert(KEY_FORMAT.into(), FORMAT_NOTE.into());
    let licence = if meta.licence.is_empty() { DEFAULT_LICENCE } else { meta.licence.as_str() };
    info.insert(KEY_LICENCE.into(), licence.into());
    if let Some(build) = &meta.build {
        info.insert(KEY_BUILD.into(), to_json(serde_json::to_string(build))?);
    }

    let bytes = serialize_sorted(
        &[
            (tensor::COORDS, Dtype::F32, vec![n_res, 4, 3], &coords),
            (tensor::AATYPE, Dtype::U8, vec![n_res], &aatype),
            (tensor::ATOM_MASK, Dtype::U8, vec![n_res, 4], &mask),
            (tensor::CHAIN_OFFSETS, Dtype::I64, vec![chains.len() + 1], &offsets),
        ],
        &info,
    );
    // Self-check with the reference parser before anything touches the disk.
    safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|source| DataError::Serialize { path: path.to_path_buf(), source })?;
    write_atomic(path, &bytes)
}

/// One tensor for [`serialize_sorted`]: name, dtype, shape, little-endian bytes.
type RawTensor<'a> = (&'a str, Dtype, Vec<usize>, &'a [u8]);

/// Serialise tensors in the safetensors layout with a byte-reproducible header.
///
/// `safetensors::serialize` writes `__metadata__` in `HashMap` order, so two identical builds
/// would differ in bytes. The layout here is the same (8-byte little-endian header length, a
/// JSON header padded with spaces to a multiple of 8, then the data), with the metadata keys
/// sorted and the tensors ordered as safetensors does (larger dtype alignment first, then by
/// name), so every tensor starts at an offset aligned for its dtype.
fn serialize_sorted(tensors: &[RawTensor<'_>], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut order: Vec<&RawTensor<'_>> = tensors.iter().collect();
    order.sort_by(|a, b| b.1.bitsize().cmp(&a.1.bitsize()).then(a.0.cmp(b.0)));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    let mut offset = 0usize;
    for (name, dtype, shape, data) in &order {
        let entry = serde_json::json!({
            "dtype": dtype.to_string(),
            "shape": shape,
            "data_offsets": [offset, offset + data.len()],
        });
        header.insert((*name).to_string(), entry);
        offset += data.len();
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, _, _, data) in order {
        out.extend_from_slice(data);
    }
    out
}

/// Write `bytes` to `path` atomically ([`protforge_structure::io::write_file_atomic`]), creating
/// the parent directory: readers never see a partial file and an existing (possibly
/// memory-mapped) file is replaced, not truncated.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, "cannot create directory", e))?;
    }
    protforge_structure::io::write_file_atomic(path, bytes).map_err(|e| DataError::io(path, "cannot write", e))
}
