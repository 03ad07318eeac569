//! [`Dataset`]: a memory-mapped, schema-validated dataset file (format in [`crate::format`]).

use crate::DataError;
use crate::format::{
    ChainRecord, KEY_BUILD, KEY_CHAINS, KEY_LICENCE, KEY_VERSION, SCHEMA_VERSION, SourceCount, Split, tensor,
};
use memmap2::Mmap;
use protforge_structure::{Backbone, ResidueId};
use safetensors::{Dtype, SafeTensors};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A dataset file opened read-only through a memory map.
///
/// [`Dataset::open`] checks the whole schema once (tensor names, dtypes, shapes, offsets,
/// metadata, finite coordinates, residue codes), so the accessors cannot fail afterwards.
/// Chains are decoded on demand by [`Dataset::chain`]; nothing else is copied.
#[derive(Debug)]
pub struct Dataset {
    path: PathBuf,
    mmap: Mmap,
    coords: Range<usize>,
    aatype: Range<usize>,
    atom_mask: Range<usize>,
    offsets: Vec<usize>,
    records: Vec<ChainRecord>,
    metadata: HashMap<String, String>,
}

/// Summary of a dataset file, for `protforge inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    /// The file.
    pub path: PathBuf,
    /// Schema version (`protforge_dataset` key).
    pub version: String,
    /// Number of chains.
    pub n_chains: usize,
    /// Total residues.
    pub n_residues: usize,
    /// Chains in the training split.
    pub n_train: usize,
    /// Chains in the validation split.
    pub n_val: usize,
    /// Residues in the training split.
    pub residues_train: usize,
    /// Residues in the validation split.
    pub residues_val: usize,
    /// Number of distinct sequence clusters.
    pub n_clusters: usize,
    /// Clusters with at least one training chain.
    pub clusters_train: usize,
    /// Clusters with at least one validation chain.
    pub clusters_val: usize,
    /// Shortest chain (residues).
    pub min_length: usize,
    /// Median chain length (residues; lower median).
    pub median_length: usize,
    /// Longest chain (residues).
    pub max_length: usize,
    /// Chains and residues per source.
    pub sources: BTreeMap<String, SourceCount>,
    /// Licence note (`licence` key), empty if absent.
    pub licence: String,
}

#[allow(unsafe_code)]
fn map_file(file: &std::fs::File) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only and we never hand out references that outlive `Dataset`.
    // As with every mmap reader (safetensors, candle), a concurrent truncation of the file by
    // another process could fault; our own writer replaces files by rename, which leaves
    // existing maps intact.
    unsafe { Mmap::map(file) }
}

fn read_le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&bytes[..N]);
    b
}

impl Dataset {
    /// Open and validate a dataset file.
    ///
    /// # Errors
    /// [`DataError::Io`] if the file cannot be opened or mapped; [`DataError::Schema`] naming the
    /// first problem (not safetensors, missing/extra-dimension tensor, wrong dtype or shape,
    /// offsets not starting at 0 / not increasing / not ending at `R`, missing or malformed
    /// metadata, record lengths that disagree with the offsets, non-finite coordinates,
    /// residue codes above 20, mask values other than 0/1);
    /// [`DataError::UnsupportedVersion`] for another schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, "cannot open", e))?;
        let len = file.metadata().map_err(|e| DataError::io(path, "cannot stat", e))?.len();
        if len < 8 {
            return Err(DataError::schema(path, format!("file is {len} bytes, too small for a safetensors header")));
        }
        let mmap = map_file(&file).map_err(|e| DataError::io(path, "cannot memory-map", e))?;
        Self::from_mmap(path, mmap)
    }

    fn from_mmap(path: &Path, mmap: Mmap) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::schema(path, reason);
        let (header_len, st_meta) =
            SafeTensors::read_metadata(&mmap).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let data_start = 8 + header_len;

        let metadata = st_meta.metadata().clone().unwrap_or_default();
        let version = metadata.get(KEY_VERSION).ok_or_else(|| bad(format!("missing metadata key '{KEY_VERSION}'")))?;
        if version != SCHEMA_VERSION {
            return Err(DataError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version.clone(),
                expected: SCHEMA_VERSION,
            });
        }

        let get = |name: &str, dtype: Dtype| -> Result<(Vec<usize>, Range<usize>), DataError> {
            let info = st_meta.info(name).ok_or_else(|| bad(format!("missing tensor '{name}'")))?;
            if info.dtype != dtype {
                return Err(bad(format!("tensor '{name}' has dtype {}, expected {dtype}", info.dtype)));
            }
            let (a, b) = info.data_offsets;
            Ok((info.shape.clone(), data_start + a..data_start + b))
        };
        let (coords_shape, coords) = get(tensor::COORDS, Dtype::F32)?;
        let (aatype_shape, aatype) = get(tensor::AATYPE, Dtype::U8)?;
        let (mask_shape, atom_mask) = get(tensor::ATOM_MASK, Dtype::U8)?;
        let (off_shape, off_range) = get(tensor::CHAIN_OFFSETS, Dtype::I64)?;

        let n_res = match coords_shape.as_slice() {
            [r, 4, 3] => *r,
            s => return Err(bad(format!("tensor 'coords' has shape {s:?}, expected [R, 4, 3]"))),
        };
        if aatype_shape != [n_res] {
            return Err(bad(format!("tensor 'aatype' has shape {aatype_shape:?}, expected [{n_res}]")));
        }
        if mask_shape != [n_res, 4] {
            return Err(bad(format!("tensor 'atom_mask' has shape {mask_shape:?}, expected [{n_res}, 4]")));
        }
        let n_off = match off_shape.as_slice() {
            [n] if *n >= 1 => *n,
            s => return Err(bad(format!("tensor 'chain_offsets' has shape {s:?}, expected [n + 1]"))),
        };

        let raw_offsets: Vec<i64> =
            mmap[off_range].chunks_exact(8).map(|c| i64::from_le_bytes(read_le::<8>(c))).collect();
        if raw_offsets[0] != 0 {
            return Err(bad(format!("chain_offsets[0] is {}, expected 0", raw_offsets[0])));
        }
        for (i, w) in raw_offsets.windows(2).enumerate() {
            if w[1] <= w[0] {
                return Err(bad(format!(
                    "chain_offsets not strictly increasing at index {}: {} then {}",
                    i + 1,
                    w[0],
                    w[1]
                )));
            }
        }
        let last = raw_offsets[n_off - 1];
        if usize::try_from(last).ok() != Some(n_res) {
            return Err(bad(format!("chain_offsets ends at {last} but there are {n_res} residues")));
        }
        // Non-negative and increasing, so the casts are exact.
        let offsets: Vec<usize> = raw_offsets.iter().map(|&o| o as usize).collect();

        let chains_json =
            metadata.get(KEY_CHAINS).ok_or_else(|| bad(format!("missing metadata key '{KEY_CHAINS}'")))?;
        let records: Vec<ChainRecord> = serde_json::from_str(chains_json)
            .map_err(|e| bad(format!("metadata '{KEY_CHAINS}' is not a valid chain list: {e}")))?;
        if records.len() + 1 != n_off {
            return Err(bad(format!(
                "metadata lists {} chains but chain_offsets has {} entries (expected {})",
                records.len(),
                n_off,
                records.len() + 1
            )));
        }
        for (i, r) in records.iter().enumerate() {
            let len = offsets[i + 1] - offsets[i];
            if r.length != len {
                return Err(bad(format!(
                    "chain {i} ('{}') has length {} in metadata but {len} in offsets",
                    r.id, r.length
                )));
            }
        }

        if let Some(pos) = mmap[aatype.clone()].iter().position(|&a| a > 20) {
            return Err(bad(format!("aatype[{pos}] = {} is out of range 0..=20", mmap[aatype.start + pos])));
        }
        if let Some(pos) = mmap[atom_mask.clone()].iter().position(|&m| m > 1) {
            return Err(bad(format!(
                "atom_mask value {} at residue {} is not 0 or 1",
                mmap[atom_mask.start + pos],
                pos / 4
            )));
        }
        if let Some(pos) =
            mmap[coords.clone()].chunks_exact(4).position(|c| !f32::from_le_bytes(read_le::<4>(c)).is_finite())
        {
            return Err(bad(format!("coords has a non-finite value at residue {}", pos / 12)));
        }

        Ok(Self { path: path.to_path_buf(), mmap, coords, aatype, atom_mask, offsets, records, metadata })
    }

    /// The file this dataset was opened from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of chains.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the dataset has no chains.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Total number of residues `R`.
    #[must_use]
    pub fn n_residues(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Per-chain metadata, in tensor order.
    #[must_use]
    pub fn records(&self) -> &[ChainRecord] {
        &self.records
    }

    /// Metadata of chain `i`, `None` if out of range.
    #[must_use]
    pub fn record(&self, i: usize) -> Option<&ChainRecord> {
        self.records.get(i)
    }

    /// Chain ids in tensor order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> {
        self.records.iter().map(|r| r.id.as_str())
    }

    /// Chain lengths (residues) in tensor order.
    #[must_use]
    pub fn lengths(&self) -> Vec<usize> {
        self.records.iter().map(|r| r.length).collect()
    }

    /// Cluster index of each chain, in tensor order.
    #[must_use]
    pub fn clusters(&self) -> Vec<u32> {
        self.records.iter().map(|r| r.cluster).collect()
    }

    /// Index of the chain with this id, if any (linear scan).
    #[must_use]
    pub fn find(&self, id: &str) -> Option<usize> {
        self.records.iter().position(|r| r.id == id)
    }

    /// Indices of the chains in `split`, ascending.
    #[must_use]
    pub fn split_indices(&self, split: Split) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.records[i].split == split).collect()
    }

    /// Indices of the training chains, ascending.
    #[must_use]
    pub fn train_indices(&self) -> Vec<usize> {
        self.split_indices(Split::Train)
    }

    /// Indices of the validation chains, ascending.
    #[must_use]
    pub fn val_indices(&self) -> Vec<usize> {
        self.split_indices(Split::Val)
    }

    /// Residue range `[start, end)` of chain `i` in the concatenated tensors.
    #[must_use]
    pub fn residue_range(&self, i: usize) -> Option<Range<usize>> {
        (i < self.len()).then(|| self.offsets[i]..self.offsets[i + 1])
    }

    /// Sampling weight of each chain, `1 / size of its cluster` within `split` (or within the
    /// whole file if `split` is `None`), so that every cluster has total weight 1. Chains outside
    /// `split` get weight 0. Useful because clusters are very uneven (e.g. one large antibody
    /// cluster).
    #[must_use]
    pub fn cluster_weights(&self, split: Option<Split>) -> Vec<f64> {
        let inside = |r: &ChainRecord| split.is_none_or(|s| r.split == s);
        let mut size: HashMap<u32, usize> = HashMap::new();
        for r in self.records.iter().filter(|r| inside(r)) {
            *size.entry(r.cluster).or_default() += 1;
        }
        self.records.iter().map(|r| if inside(r) { 1.0 / size[&r.cluster] as f64 } else { 0.0 }).collect()
    }

    /// Chain `i` as a [`Backbone`] (Å): chain id `A`, residues numbered from 1; `None` if out
    /// of range. Decodes from the memory map; costs O(length).
    #[must_use]
    pub fn chain(&self, i: usize) -> Option<Backbone> {
        let r = self.residue_range(i)?;
        let n = r.len();
        let cbytes = &self.mmap[self.coords.start + r.start * 48..self.coords.start + r.end * 48];
        let coords = cbytes
            .chunks_exact(48)
            .map(|res| {
                let mut out = [[0f32; 3]; 4];
                for (k, v) in res.chunks_exact(4).enumerate() {
                    out[k / 3][k % 3] = f32::from_le_bytes(read_le::<4>(v));
                }
                out
            })
            .collect();
        let mbytes = &self.mmap[self.atom_mask.start + r.start * 4..self.atom_mask.start + r.end * 4];
        let atom_mask = mbytes.chunks_exact(4).map(|m| [m[0] == 1, m[1] == 1, m[2] == 1, m[3] == 1]).collect();
        let aatype = self.mmap[self.aatype.start + r.start..self.aatype.start + r.end].to_vec();
        Some(Backbone {
            coords,
            atom_mask,
            aatype,
            chain_ids: vec!["A".to_string(); n],
            residue_ids: (1..=n as i32).map(ResidueId::new).collect(),
        })
    }

    /// One-letter sequence of chain `i`, `None` if out of range.
    #[must_use]
    pub fn sequence(&self, i: usize) -> Option<String> {
        let r = self.residue_range(i)?;
        Some(
            self.mmap[self.aatype.start + r.start..self.aatype.start + r.end]
                .iter()
                .map(|&a| protforge_structure::residue::one_from_aatype(a))
                .collect(),
        )
    }

    /// The raw safetensors `__metadata__` map.
    #[must_use]
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The `licence` note, empty if absent.
    #[must_use]
    pub fn licence(&self) -> &str {
        self.metadata.get(KEY_LICENCE).map_or("", String::as_str)
    }

    /// The `build` metadata as JSON, if present and valid.
    #[must_use]
    pub fn build_settings(&self) -> Option<serde_json::Value> {
        self.metadata.get(KEY_BUILD).and_then(|s| serde_json::from_str(s).ok())
    }

    /// Counts for `protforge inspect`.
    #[must_use]
    pub fn info(&self) -> DatasetInfo {
        let mut lengths = self.lengths();
        lengths.sort_unstable();
        let (mut n_train, mut n_val, mut residues_train, mut residues_val) = (0, 0, 0, 0);
        let (mut ct, mut cv, mut all) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut sources: BTreeMap<String, SourceCount> = BTreeMap::new();
        for r in &self.records {
            all.insert(r.cluster);
            match r.split {
                Split::Train => {
                    n_train += 1;
                    residues_train += r.length;
                    ct.insert(r.cluster);
                }
                Split::Val => {
                    n_val += 1;
                    residues_val += r.length;
                    cv.insert(r.cluster);
                }
            }
            let s = sources.entry(r.source.clone()).or_default();
            s.chains += 1;
            s.residues += r.length;
        }
        DatasetInfo {
            path: self.path.clone(),
            version: self.metadata.get(KEY_VERSION).cloned().unwrap_or_default(),
            n_chains: self.len(),
            n_residues: self.n_residues(),
            n_train,
            n_val,
            residues_train,
            residues_val,
            n_clusters: all.len(),
            clusters_train: ct.len(),
            clusters_val: cv.len(),
            min_length: lengths.first().copied().unwrap_or(0),
            median_length: lengths.get(lengths.len().saturating_sub(1) / 2).copied().unwrap_or(0),
            max_length: lengths.last().copied().unwrap_or(0),
            sources,
            licence: self.licence().to_string(),
        }
    }
}
