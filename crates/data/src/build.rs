//! Building a dataset file from folders of PDB/mmCIF files and `.jsonl` backbone files.
//!
//! Pipeline ([`build`]):
//! 1. **Collect inputs.** Each input path is a file or a folder searched recursively for
//!    `.pdb`, `.ent`, `.cif`, `.mmcif`, `.pdbx` and `.jsonl` files, each optionally gzipped (`.gz`).
//!    Hidden files and other extensions inside folders are ignored (counted); a named input
//!    with an unsupported extension, or a missing path, is rejected.
//! 2. **Parse** in parallel (rayon). Structure files are read with
//!    `protforge_structure::io::read_backbone` (first model, first alt-loc, all protein chains);
//!    each chain becomes one record with id `<path relative to the input, without extension>:<chain>`
//!    and source `<input folder name>`. A `.jsonl` file holds one JSON object per line:
//!    `{"id", "source", "seq", "coords"}` with `coords` per residue `[[N],[CA],[C],[O]]` in Å
//!    (an atom may be `null` when absent). A file or line that cannot be used is rejected
//!    with a reason; it never aborts the build.
//! 3. **Segment** every chain at chain breaks ([`crate::segment`]: CA–CA > `max_ca_gap` Å or a
//!    residue missing a backbone atom) and keep segments of `min_len..=max_len` residues. A
//!    segment that is not the whole chain gets the id suffix `/<first>-<last>` (1-based
//!    positions in the source chain).
//! 4. **Deduplicate** by exact sequence, keeping the first occurrence in input order, with all
//!    `val_input` inputs before the training inputs (so a training copy of a validation chain is
//!    the one dropped). Within an input, files are in path order and chains in file order.
//! 5. **Cluster** by k-mer containment and **split** whole clusters into train/val
//!    ([`crate::cluster`]). Chains from `val_input` are forced into validation, with their
//!    clusters; without `val_input`, random whole clusters make up `val_fraction` of the chains.
//! 6. **Write** the dataset atomically ([`crate::format::write_dataset`]).

use crate::DataError;
use crate::cluster::{DEFAULT_IDENTITY_THRESHOLD, DEFAULT_KMER, MAX_KMER, assign_splits, cluster_sequences};
use crate::format::{ChainRecord, DatasetChain, Split, WriteMetadata, write_dataset};
use crate::segment::{DEFAULT_MAX_CA_GAP, segments};
use protforge_structure::{Backbone, ResidueId, residue};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Coordinates beyond this magnitude (Å) make a chain implausible and it is rejected
/// (the PDB format cannot even represent |x| ≥ 10,000 Å).
pub const MAX_ABS_COORD: f32 = 1.0e4;

/// Progress callback: `(done, total)` work items (one per structure file or `.jsonl` line).
/// Called from worker threads.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Settings of [`build`]. Field names match the CLI flags of `protforge data build`
/// (`--val-input`, `--out`, `--min-len`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildOptions {
    /// Inputs whose chains are forced into validation (files or folders, like the inputs).
    pub val_input: Vec<PathBuf>,
    /// Output dataset file (`.safetensors`); written atomically.
    pub out: PathBuf,
    /// Shortest segment kept (residues). Default 40.
    pub min_len: usize,
    /// Longest segment kept (residues). Default 512.
    pub max_len: usize,
    /// Target fraction of chains in validation, in `[0, 1)`: whole random clusters are drawn
    /// into validation until it is reached. Default 0.1. **Ignored when `val_input` is given**:
    /// then validation is exactly the `val_input` chains and the clusters they belong to.
    pub val_fraction: f64,
    /// Seed of the cluster shuffle. Default 0.
    pub seed: u64,
    /// k-mer length of the identity measure. Default 4.
    pub kmer: usize,
    /// k-mer containment at or above which two chains are linked into one cluster. Default 0.08
    /// (calibrated against mmseqs2 40 % clusters, see [`crate::cluster`]).
    pub identity_threshold: f64,
    /// Maximum CA–CA distance (Å) between consecutive residues of one segment. Default 4.2.
    pub max_ca_gap: f32,
    /// Licence note stored in the file; empty → a generic note.
    pub licence: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            val_input: Vec::new(),
            out: PathBuf::from("dataset.safetensors"),
            min_len: 40,
            max_len: 512,
            val_fraction: 0.1,
            seed: 0,
            kmer: DEFAULT_KMER,
            identity_threshold: DEFAULT_IDENTITY_THRESHOLD,
            max_ca_gap: DEFAULT_MAX_CA_GAP,
            licence: String::new(),
        }
    }
}

impl BuildOptions {
    /// Check ranges.
    ///
    /// # Errors
    /// [`DataError::InvalidOption`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |option, reason: String| Err(DataError::InvalidOption { option, reason });
        if self.min_len == 0 {
            return bad("min_len", "must be at least 1".into());
        }
        if self.max_len < self.min_len {
            return bad("max_len", format!("{} is below min_len {}", self.max_len, self.min_len));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("val_fraction", format!("{} is not in [0, 1)", self.val_fraction));
        }
        if self.kmer == 0 || self.kmer > MAX_KMER {
            return bad("kmer", format!("{} is not in 1..={MAX_KMER}", self.kmer));
        }
        if !(self.identity_threshold > 0.0 && self.identity_threshold <= 1.0) {
            return bad("identity_threshold", format!("{} is not in (0, 1]", self.identity_threshold));
        }
        if !(self.max_ca_gap.is_finite() && self.max_ca_gap > 0.0) {
            return bad("max_ca_gap", format!("{} Å is not a positive distance", self.max_ca_gap));
        }
        Ok(())
    }
}

/// A file (or one line of a `.jsonl` file) that was not used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number for a `.jsonl` record, `None` for a whole file.
    pub line: Option<usize>,
    /// Why it was rejected (one line).
    pub reason: String,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

/// What [`build`] did. Counts are of chains / segments unless named otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuildSummary {
    /// The dataset file written.
    pub out: PathBuf,
    /// Input files read successfully (a `.jsonl` file counts even if some lines were rejected).
    pub files_read: usize,
    /// Files inside input folders skipped for their extension (or hidden).
    pub files_ignored: usize,
    /// Rejected files and `.jsonl` lines, one entry each, in input order.
    pub rejected: Vec<Rejected>,
    /// Parse warnings returned by the structure reader (summed over files).
    pub parse_warnings: usize,
    /// Protein chains (or `.jsonl` records) parsed.
    pub chains_seen: usize,
    /// Continuous segments after splitting at chain breaks.
    pub segments: usize,
    /// Segments shorter than `min_len`.
    pub dropped_too_short: usize,
    /// Segments longer than `max_len`.
    pub dropped_too_long: usize,
    /// Segments whose sequence duplicates an earlier kept one.
    pub dropped_duplicate: usize,
    /// Segments written.
    pub kept: usize,
    /// Segments in the training split.
    pub train_chains: usize,
    /// Segments in the validation split.
    pub val_chains: usize,
    /// Residues in the training split.
    pub train_residues: usize,
    /// Residues in the validation split.
    pub val_residues: usize,
    /// Sequence clusters over all kept segments.
    pub clusters: usize,
    /// Clusters in the training split.
    pub train_clusters: usize,
    /// Clusters in the validation split.
    pub val_clusters: usize,
    /// Pairs linked by the k-mer identity threshold.
    pub cluster_links: usize,
    /// Chains forced into validation through `val_input`.
    pub forced_val: usize,
    /// Training-input chains moved to validation because they cluster with a forced one.
    pub moved_to_val: usize,
    /// Clusters drawn at random into validation to reach `val_fraction`.
    pub random_val_clusters: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Structure,
    Jsonl,
}

/// The kind of an input file from its name, `None` if unsupported.
fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let ext = Path::new(name).extension()?.to_str()?;
    match ext {
        "pdb" | "ent" | "cif" | "mmcif" | "pdbx" => Some(Kind::Structure),
        "jsonl" => Some(Kind::Jsonl),
        _ => None,
    }
}

/// A file to read, with where it came from.
#[derive(Debug, Clone)]
struct InputFile {
    path: PathBuf,
    kind: Kind,
    /// Id prefix for structure files: path relative to the input, without extensions.
    stem: String,
    /// Source name for structure files (and `.jsonl` records without one).
    source: String,
    forced_val: bool,
}

#[derive(Debug, Default)]
struct Collected {
    files: Vec<InputFile>,
    ignored: usize,
    rejected: Vec<Rejected>,
}

fn reject(path: &Path, reason: impl Into<String>) -> Rejected {
    Rejected { path: path.to_path_buf(), line: None, reason: reason.into() }
}

fn strip_exts(name: &str) -> &str {
    let name = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".GZ")).unwrap_or(name);
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

fn collect_input(input: &Path, forced_val: bool, out: &mut Collected) {
    let meta = match std::fs::metadata(input) {
        Ok(m) => m,
        Err(e) => {
            out.rejected.push(reject(input, format!("cannot read: {e}")));
            return;
        }
    };
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    if meta.is_file() {
        let Some(kind) = kind_of(input) else {
            out.rejected.push(reject(
                input,
                "unsupported file type (expected .pdb, .ent, .cif, .mmcif, .pdbx or .jsonl, optionally .gz)",
            ));
            return;
        };
        let stem = name_of(input).map(|n| strip_exts(&n).to_string()).unwrap_or_default();
        let source = std::fs::canonicalize(input)
            .ok()
            .and_then(|p| p.parent().and_then(name_of))
            .unwrap_or_else(|| "local".into());
        out.files.push(InputFile { path: input.to_path_buf(), kind, stem, source, forced_val });
        return;
    }
    let source = std::fs::canonicalize(input).ok().as_deref().and_then(name_of).unwrap_or_else(|| "local".into());
    let mut found = Vec::new();
    walk(input, &mut found, out);
    found.sort();
    for path in found {
        let Some(kind) = kind_of(&path) else {
            out.ignored += 1;
            continue;
        };
        let rel = path.strip_prefix(input).unwrap_or(&path);
        let rel = rel.to_string_lossy();
        let stem = strip_exts(&rel).to_string();
        out.files.push(InputFile { path, kind, stem, source: source.clone(), forced_val });
    }
}

/// All non-hidden files under `dir` (following symlinked files, not symlinked folders).
fn walk(dir: &Path, found: &mut Vec<PathBuf>, out: &mut Collected) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.rejected.push(reject(dir, format!("cannot list folder: {e}")));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.rejected.push(reject(dir, format!("cannot list folder: {e}")));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            out.ignored += 1;
            continue;
        }
        let Ok(ft) = entry.file_type() else {
            out.rejected.push(reject(&path, "cannot stat"));
            continue;
        };
        if ft.is_dir() {
            walk(&path, found, out);
        } else if ft.is_file() || (ft.is_symlink() && path.is_file()) {
            found.push(path);
        } else {
            out.ignored += 1;
        }
    }
}

/// One parsed chain before segmentation.
#[derive(Debug, Clone)]
struct RawChain {
    id: String,
    source: String,
    backbone: Backbone,
    forced_val: bool,
}

/// One `.jsonl` record.
#[derive(Debug, Deserialize)]
struct JsonChain {
    id: String,
    #[serde(default)]
    source: Option<String>,
    seq: String,
    coords: Vec<[Option<[f32; 3]>; 4]>,
}

fn check_coords(bb: &Backbone) -> Result<(), String> {
    for (i, (r, m)) in bb.coords.iter().zip(&bb.atom_mask).enumerate() {
        for (a, &present) in r.iter().zip(m) {
            if present && a.iter().any(|v| !v.is_finite() || v.abs() >= MAX_ABS_COORD) {
                return Err(format!("residue {} has an implausible coordinate {a:?} (Å)", i + 1));
            }
        }
    }
    Ok(())
}

fn parse_json_line(line: &str, file: &InputFile) -> Result<RawChain, String> {
    let rec: JsonChain = serde_json::from_str(line).map_err(|e| format!("invalid JSON record: {e}"))?;
    let n_seq = rec.seq.chars().count();
    if n_seq != rec.coords.len() {
        return Err(format!("record '{}': seq has {n_seq} residues but coords has {}", rec.id, rec.coords.len()));
    }
    if rec.id.trim().is_empty() {
        return Err("record has an empty id".into());
    }
    let n = rec.coords.len();
    let mut coords = Vec::with_capacity(n);
    let mut atom_mask = Vec::with_capacity(n);
    for r in &rec.coords {
        let mut xyz = [[0f32; 3]; 4];
        let mut mask = [false; 4];
        for (k, a) in r.iter().enumerate() {
            if let Some(p) = a {
                xyz[k] = *p;
                mask[k] = true;
            }
        }
        coords.push(xyz);
        atom_mask.push(mask);
    }
    let backbone = Backbone {
        coords,
        atom_mask,
        aatype: rec.seq.chars().map(residue::aatype_from_one).collect(),
        chain_ids: vec!["A".into(); n],
        residue_ids: (1..=n as i32).map(ResidueId::new).collect(),
    };
    check_coords(&backbone).map_err(|e| format!("record '{}': {e}", rec.id))?;
    Ok(RawChain {
        id: rec.id,
        source: rec.source.unwrap_or_else(|| file.source.clone()),
        backbone,
        forced_val: file.forced_val,
    })
}

fn read_structure_file(file: &InputFile) -> Result<(Vec<RawChain>, usize), String> {
    use protforge_structure::io::{ReadOptions, read_backbone};
    let path = &file.path;
    // The structure reader turns parser panics into errors itself (structure::io::guard).
    let out = read_backbone(path, &ReadOptions::default()).map_err(|e| {
        let msg = e.to_string();
        let prefix = format!("{}: ", path.display());
        msg.strip_prefix(&prefix).map_or_else(|| msg.clone(), str::to_string)
    })?;
    let bb = out.backbone;
    check_coords(&bb)?;
    let mut chains = Vec::new();
    for id in bb.chains() {
        let Some(chain) = bb.chain(&id) else { continue };
        let label = if id.trim().is_empty() { "_".to_string() } else { id };
        chains.push(RawChain {
            id: format!("{}:{label}", file.stem),
            source: file.source.clone(),
            backbone: chain,
            forced_val: file.forced_val,
        });
    }
    if chains.is_empty() {
        return Err("no protein chain".into());
    }
    Ok((chains, out.warnings.len()))
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let is_gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let bytes = if is_gz {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot decompress: {e}"))?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// A unit of parallel work.
enum Item<'a> {
    Structure(&'a InputFile),
    Line { file: &'a InputFile, line_no: usize, text: &'a str },
}

/// Outcome of one work item.
enum Parsed {
    Chains(Vec<RawChain>, usize),
    Reject(Rejected),
}

/// Build a dataset file from `inputs` (files or folders) and `opts.val_input`, write it to
/// `opts.out`, and report what happened (module docs give the pipeline).
///
/// Bad files and records are listed in [`BuildSummary::rejected`] and never abort the build.
/// `progress`, if given, is called with `(done, total)` work items from worker threads.
///
/// # Errors
/// [`DataError::InvalidOption`] for bad options; [`DataError::EmptyDataset`] if no segment
/// survives (nothing is written); [`DataError::Io`] / [`DataError::Serialize`] if the output
/// cannot be written.
pub fn build(
    inputs: &[PathBuf],
    opts: &BuildOptions,
    progress: Option<Progress<'_>>,
) -> Result<BuildSummary, DataError> {
    opts.validate()?;

    // 1. Collect files: validation inputs first (they win deduplication).
    let mut collected = Collected::default();
    for p in &opts.val_input {
        collect_input(p, true, &mut collected);
    }
    for p in inputs {
        collect_input(p, false, &mut collected);
    }
    let mut rejected = std::mem::take(&mut collected.rejected);

    // Read .jsonl files up front so their lines can be parsed in parallel.
    let mut texts: Vec<Option<String>> = Vec::with_capacity(collected.files.len());
    let mut files_read = 0;
    for f in &collected.files {
        if f.kind == Kind::Jsonl {
            match read_text(&f.path) {
                Ok(t) => {
                    files_read += 1;
                    texts.push(Some(t));
                }
                Err(reason) => {
                    rejected.push(reject(&f.path, reason));
                    texts.push(None);
                }
            }
        } else {
            texts.push(None);
        }
    }
    let mut items: Vec<Item<'_>> = Vec::new();
    for (f, text) in collected.files.iter().zip(&texts) {
        match (f.kind, text) {
            (Kind::Structure, _) => items.push(Item::Structure(f)),
            (Kind::Jsonl, Some(t)) => {
                let before = items.len();
                for (k, line) in t.lines().enumerate() {
                    if !line.trim().is_empty() {
                        items.push(Item::Line { file: f, line_no: k + 1, text: line });
                    }
                }
                if items.len() == before {
                    rejected.push(reject(&f.path, "empty .jsonl file"));
                }
            }
            (Kind::Jsonl, None) => {}
        }
    }

    // 2. Parse in parallel; order of results follows `items`.
    let total = items.len();
    let done = AtomicUsize::new(0);
    let parsed: Vec<Parsed> = items
        .par_iter()
        .map(|item| {
            let r = match item {
                Item::Structure(f) => match read_structure_file(f) {
                    Ok((chains, warnings)) => Parsed::Chains(chains, warnings),
                    Err(reason) => Parsed::Reject(reject(&f.path, reason)),
                },
                Item::Line { file, line_no, text } => match parse_json_line(text, file) {
                    Ok(c) => Parsed::Chains(vec![c], 0),
                    Err(reason) => Parsed::Reject(Rejected { path: file.path.clone(), line: Some(*line_no), reason }),
                },
            };
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(d, total);
            }
            r
        })
        .collect();

    let mut summary = BuildSummary { out: opts.out.clone(), ..BuildSummary::default() };
    let mut raw: Vec<RawChain> = Vec::new();
    for (item, p) in items.iter().zip(parsed) {
        match p {
            Parsed::Chains(c, w) => {
                if matches!(item, Item::Structure(_)) {
                    files_read += 1;
                }
                summary.parse_warnings += w;
                raw.extend(c);
            }
            Parsed::Reject(r) => rejected.push(r),
        }
    }
    summary.files_read = files_read;
    summary.files_ignored = collected.ignored;
    summary.chains_seen = raw.len();

    // 3–4. Segment, filter by length, deduplicate.
    let mut seen_seq: HashSet<Vec<u8>> = HashSet::new();
    let mut kept: Vec<RawChain> = Vec::new();
    for chain in raw {
        let ranges = segments(&chain.backbone, opts.max_ca_gap);
        summary.segments += ranges.len();
        let whole = ranges.len() == 1 && ranges[0].len() == chain.backbone.len();
        for r in ranges {
            if r.len() < opts.min_len {
                summary.dropped_too_short += 1;
                continue;
            }
            if r.len() > opts.max_len {
                summary.dropped_too_long += 1;
                continue;
            }
            let bb = if whole { chain.backbone.clone() } else { chain.backbone.slice(r.start, r.end) };
            if !seen_seq.insert(bb.aatype.clone()) {
                summary.dropped_duplicate += 1;
                continue;
            }
            let id = if whole { chain.id.clone() } else { format!("{}/{}-{}", chain.id, r.start + 1, r.end) };
            kept.push(RawChain { id, source: chain.source.clone(), backbone: bb, forced_val: chain.forced_val });
        }
    }
    if kept.is_empty() {
        return Err(DataError::EmptyDataset { path: opts.out.clone(), files_read, rejected: rejected.len() });
    }
    make_ids_unique(&mut kept);

    // 5. Cluster and split.
    let seqs: Vec<&[u8]> = kept.iter().map(|c| c.backbone.aatype.as_slice()).collect();
    let clustering = cluster_sequences(&seqs, opts.kmer, opts.identity_threshold);
    let forced: Vec<bool> = kept.iter().map(|c| c.forced_val).collect();
    let val_fraction = if opts.val_input.is_empty() { opts.val_fraction } else { 0.0 };
    let splits = assign_splits(&clustering.cluster, &forced, val_fraction, opts.seed);

    summary.kept = kept.len();
    summary.clusters = clustering.n_clusters;
    summary.cluster_links = clustering.n_links;
    summary.forced_val = forced.iter().filter(|&&f| f).count();
    summary.moved_to_val = splits.moved_to_val;
    summary.random_val_clusters = splits.random_val_clusters;
    let (mut ct, mut cv) = (BTreeSet::new(), BTreeSet::new());
    let mut chains = Vec::with_capacity(kept.len());
    for ((c, &cluster), &split) in kept.into_iter().zip(&clustering.cluster).zip(&splits.split) {
        let len = c.backbone.len();
        match split {
            Split::Train => {
                summary.train_chains += 1;
                summary.train_residues += len;
                ct.insert(cluster);
            }
            Split::Val => {
                summary.val_chains += 1;
                summary.val_residues += len;
                cv.insert(cluster);
            }
        }
        chains.push(DatasetChain {
            record: ChainRecord { id: c.id, source: c.source, split, cluster, length: len },
            backbone: c.backbone,
        });
    }
    summary.train_clusters = ct.len();
    summary.val_clusters = cv.len();
    summary.rejected = rejected;

    // 6. Write.
    let build_meta = serde_json::json!({
        "created_by": concat!("protforge-data ", env!("CARGO_PKG_VERSION")),
        "inputs": inputs,
        "options": opts,
        "counts": {
            "files_read": summary.files_read,
            "files_rejected": summary.rejected.len(),
            "chains_seen": summary.chains_seen,
            "segments": summary.segments,
            "dropped_too_short": summary.dropped_too_short,
            "dropped_too_long": summary.dropped_too_long,
            "dropped_duplicate": summary.dropped_duplicate,
            "kept": summary.kept,
            "train_chains": summary.train_chains,
            "val_chains": summary.val_chains,
            "clusters": summary.clusters,
            "moved_to_val": summary.moved_to_val,
        },
    });
    let meta = WriteMetadata { licence: opts.licence.clone(), build: Some(build_meta) };
    write_dataset(&opts.out, &chains, &meta)?;
    Ok(summary)
}

/// Append `~2`, `~3`, ... to repeated ids so every id in the file is unique.
fn make_ids_unique(chains: &mut [RawChain]) {
    let mut used: HashSet<String> = HashSet::new();
    for c in chains.iter_mut() {
        if used.insert(c.id.clone()) {
            continue;
        }
        let mut k = 2;
        while !used.insert(format!("{}~{k}", c.id)) {
            k += 1;
        }
        c.id = format!("{}~{k}", c.id);
    }
}
