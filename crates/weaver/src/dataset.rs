//! Training data: multi-domain chains of a dataset file, their cached domain assignments, and
//! training examples (a crop of a native chain, its frames, and its spliced map with linker
//! windows at the domain boundaries).
//!
//! **Domain cache.** Parsing every chain with [`parse_domains`] takes minutes, so the
//! assignments are stored as JSON (boundaries only, no coordinates): one [`CachedChain`] per
//! dataset chain with its segments `[domain, start, end)` (0-based residue indices). The cache
//! names the dataset's chain ids and lengths and is rejected if they differ.
//!
//! **Examples** ([`sample_example`]). ProteinWeaver conditions on a spliced map whose
//! inter-domain entries are −1 and joins domains by linkers of free residues (MODELS.md §4).
//! A native chain has no linkers of its own in our parse (every residue belongs to a domain),
//! so each boundary between two domain segments gets a linker window of
//! `linker_min..=linker_max` residues centred on the boundary: those residues become free
//! (unknown distances), like the linkers of an assembly. Chains longer than `crop_max` are
//! cropped to a window around a random boundary; domain fragments shorter than
//! `min_fragment` residues inside a crop become free residues too.

use crate::WeaverError;
use crate::domains::{DomainParams, parse_domains};
use crate::frames::{centred, vec3};
use crate::splice::{SplicedMap, spliced_distance_map};
use protforge_data::{Dataset, Split};
use protforge_se3::{Rigid, Vec3};
use protforge_structure::atom;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The domain assignment of one dataset chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedChain {
    /// Dataset chain id.
    pub id: String,
    /// Its split.
    pub split: Split,
    /// Number of residues.
    pub length: usize,
    /// Number of domains.
    pub n_domains: usize,
    /// Contiguous segments `[domain, start, end_exclusive]` covering `0..length` in order.
    pub segments: Vec<[usize; 3]>,
}

impl CachedChain {
    /// Domain label of every residue.
    #[must_use]
    pub fn labels(&self) -> Vec<usize> {
        let mut out = vec![0; self.length];
        for &[d, s, e] in &self.segments {
            for l in out.iter_mut().take(e.min(self.length)).skip(s) {
                *l = d;
            }
        }
        out
    }
}

/// Domain assignments of every chain of a dataset file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainCache {
    /// Parser settings used.
    pub params: DomainParams,
    /// One entry per dataset chain, in dataset order.
    pub chains: Vec<CachedChain>,
}

impl DomainCache {
    /// Parse every chain of `ds` (in parallel on the rayon pool). Chains with fewer than 3
    /// residues or missing atoms get one domain.
    #[must_use]
    pub fn build(ds: &Dataset, params: &DomainParams) -> Self {
        let chains = (0..ds.len())
            .into_par_iter()
            .filter_map(|i| {
                let rec = ds.record(i)?;
                let bb = ds.chain(i)?;
                let ca: Vec<Vec3> = bb.coords.iter().map(|c| vec3(c[atom::CA])).collect();
                let segments = match parse_domains(&ca, params) {
                    Ok(d) => d.segments().into_iter().map(|(d, s, e)| [d, s, e]).collect(),
                    Err(_) => vec![[0, 0, bb.len()]],
                };
                let n_domains = segments.iter().map(|s| s[0] + 1).max().unwrap_or(1);
                Some(CachedChain { id: rec.id.clone(), split: rec.split, length: rec.length, n_domains, segments })
            })
            .collect();
        Self { params: *params, chains }
    }

    /// Check that the cache describes `ds` (same chains, ids and lengths, in order).
    ///
    /// # Errors
    /// [`WeaverError::StaleCache`] naming the first difference.
    pub fn check(&self, ds: &Dataset, path: &Path) -> Result<(), WeaverError> {
        let stale = |reason: String| WeaverError::StaleCache { path: path.to_path_buf(), reason };
        if self.chains.len() != ds.len() {
            return Err(stale(format!("{} chains cached, the dataset has {}", self.chains.len(), ds.len())));
        }
        for (i, c) in self.chains.iter().enumerate() {
            let Some(rec) = ds.record(i) else { return Err(stale(format!("no dataset chain {i}"))) };
            if rec.id != c.id || rec.length != c.length {
                return Err(stale(format!("chain {i} is {} ({} residues) in the dataset but {} ({}) in the cache", rec.id, rec.length, c.id, c.length)));
            }
        }
        Ok(())
    }

    /// Read a cache file.
    ///
    /// # Errors
    /// I/O and JSON errors naming the file.
    pub fn load(path: &Path) -> Result<Self, WeaverError> {
        let text = std::fs::read_to_string(path).map_err(WeaverError::io(path))?;
        serde_json::from_str(&text).map_err(|e| WeaverError::Json { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Write the cache as JSON with one chain per line (atomically).
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn save(&self, path: &Path) -> Result<(), WeaverError> {
        let err = |e: serde_json::Error| WeaverError::Json { path: path.to_path_buf(), message: e.to_string() };
        let params = serde_json::to_string(&self.params).map_err(err)?;
        let lines = self.chains.iter().map(serde_json::to_string).collect::<Result<Vec<String>, _>>().map_err(err)?;
        let text = format!("{{\n\"params\": {params},\n\"chains\": [\n{}\n]\n}}\n", lines.join(",\n"));
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(WeaverError::io(dir))?;
        }
        protforge_nn::checkpoint::write_atomic(path, text.as_bytes())?;
        Ok(())
    }

    /// Load `path` if it exists (and check it against `ds`), else parse `ds` and save the result
    /// there. Returns the cache and whether it was built now.
    ///
    /// # Errors
    /// As [`Self::load`], [`Self::check`] and [`Self::save`].
    pub fn load_or_build(path: &Path, ds: &Dataset, params: &DomainParams) -> Result<(Self, bool), WeaverError> {
        if path.is_file() {
            let cache = Self::load(path)?;
            cache.check(ds, path)?;
            return Ok((cache, false));
        }
        let cache = Self::build(ds, params);
        cache.save(path)?;
        Ok((cache, true))
    }

    /// Number of chains of `split` with at least `min_domains` domains.
    #[must_use]
    pub fn count(&self, split: Split, min_domains: usize) -> usize {
        self.chains.iter().filter(|c| c.split == split && c.n_domains >= min_domains).count()
    }
}

/// A multi-domain chain ready for training: frames (Å) and domain labels.
#[derive(Debug, Clone)]
pub struct DomainChain {
    /// Dataset chain id.
    pub id: String,
    /// Residue frames (Å), one per residue.
    pub frames: Vec<Rigid>,
    /// Domain label of every residue.
    pub labels: Vec<usize>,
    /// Sampling weight (inverse cluster size).
    pub weight: f64,
}

/// The multi-domain chains of one split.
#[derive(Debug, Clone, Default)]
pub struct DomainSet {
    /// The chains.
    pub chains: Vec<DomainChain>,
}

impl DomainSet {
    /// Chains of `split` with at least `min_domains` domains in `cache` (which must match `ds`,
    /// see [`DomainCache::check`]). Chains with a residue lacking N, CA or C are skipped.
    ///
    /// # Errors
    /// Dataset errors.
    pub fn from_dataset(ds: &Dataset, cache: &DomainCache, split: Split, min_domains: usize) -> Result<Self, WeaverError> {
        let weights = ds.cluster_weights(Some(split));
        let mut chains = Vec::new();
        for (i, c) in cache.chains.iter().enumerate() {
            if c.split != split || c.n_domains < min_domains {
                continue;
            }
            let Some(bb) = ds.chain(i) else { continue };
            let Ok((frames, idx)) = crate::frames::frames_from_backbone(&bb) else { continue };
            if idx.len() != bb.len() || bb.len() != c.length {
                continue;
            }
            chains.push(DomainChain { id: c.id.clone(), frames, labels: c.labels(), weight: weights[i] });
        }
        Ok(Self { chains })
    }

    /// Number of chains.
    #[must_use]
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }
}

/// How training examples are cut from native chains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleParams {
    /// Longest crop (residues).
    pub crop_max: usize,
    /// Shortest linker window (residues).
    pub linker_min: usize,
    /// Longest linker window (residues).
    pub linker_max: usize,
    /// A linker window leaves at least this many residues of each neighbouring segment.
    pub min_keep: usize,
    /// Domain fragments shorter than this inside a crop become free residues.
    pub min_fragment: usize,
}

impl Default for ExampleParams {
    fn default() -> Self {
        Self { crop_max: 256, linker_min: 2, linker_max: 16, min_keep: 5, min_fragment: 10 }
    }
}

impl ExampleParams {
    /// Check the ranges.
    ///
    /// # Errors
    /// [`WeaverError::BadConfig`].
    pub fn validate(&self) -> Result<(), WeaverError> {
        if self.crop_max < 16 {
            return Err(WeaverError::BadConfig { what: "crop_max", reason: "must be at least 16".into() });
        }
        if self.linker_min > self.linker_max {
            return Err(WeaverError::BadConfig { what: "linker range", reason: format!("{} > {}", self.linker_min, self.linker_max) });
        }
        Ok(())
    }
}

/// One training example: centred native frames (Å) and their spliced map.
#[derive(Debug, Clone)]
pub struct Example {
    /// Source chain id and crop `start..end` (0-based residues).
    pub source: (String, usize, usize),
    /// Frames (Å), CA centroid at the origin.
    pub frames: Vec<Rigid>,
    /// The conditioning.
    pub map: SplicedMap,
}

/// Positions `i` where `labels[i − 1] ≠ labels[i]` (both domain residues).
fn boundaries(labels: &[Option<usize>]) -> Vec<usize> {
    (1..labels.len()).filter(|&i| matches!((labels[i - 1], labels[i]), (Some(a), Some(b)) if a != b)).collect()
}

/// Relabel domains `0, 1, …` by first appearance; fragments shorter than `min_fragment`
/// (counted over all their residues) become `None`.
fn relabel(labels: &[Option<usize>], min_fragment: usize) -> Vec<Option<usize>> {
    let mut count: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for l in labels.iter().flatten() {
        *count.entry(*l).or_default() += 1;
    }
    let mut order: Vec<usize> = Vec::new();
    labels
        .iter()
        .map(|l| {
            let d = (*l)?;
            if count[&d] < min_fragment {
                return None;
            }
            match order.iter().position(|&o| o == d) {
                Some(k) => Some(k),
                None => {
                    order.push(d);
                    Some(order.len() - 1)
                }
            }
        })
        .collect()
}

/// The crop window `start..end` of a chain of `len` residues with domain boundaries `bounds`.
fn crop_window<R: Rng + ?Sized>(len: usize, bounds: &[usize], crop_max: usize, rng: &mut R) -> (usize, usize) {
    if len <= crop_max {
        return (0, len);
    }
    let span = len - crop_max;
    if bounds.is_empty() {
        let s = rng.random_range(0..=span);
        return (s, s + crop_max);
    }
    let b = bounds[rng.random_range(0..bounds.len())];
    let side = (crop_max / 4).min(30);
    let lo = (b + side).saturating_sub(crop_max);
    let hi = b.saturating_sub(side).min(span);
    let s = if lo <= hi { rng.random_range(lo..=hi) } else { b.saturating_sub(crop_max / 2).min(span) };
    (s, s + crop_max)
}

/// Cut a training example from `chain` (module docs).
///
/// # Errors
/// [`WeaverError::NonFinite`] for a bad coordinate; [`WeaverError::BadLayout`] for labels of
/// the wrong length.
pub fn sample_example<R: Rng + ?Sized>(chain: &DomainChain, params: &ExampleParams, rng: &mut R) -> Result<Example, WeaverError> {
    if chain.labels.len() != chain.frames.len() {
        return Err(WeaverError::BadLayout(format!("{}: {} labels for {} residues", chain.id, chain.labels.len(), chain.frames.len())));
    }
    let full: Vec<Option<usize>> = chain.labels.iter().map(|&l| Some(l)).collect();
    let (start, end) = crop_window(full.len(), &boundaries(&full), params.crop_max, rng);
    let mut labels = relabel(&full[start..end], params.min_fragment);
    // Linker windows around each boundary, limited by the neighbouring segment lengths.
    for b in boundaries(&labels) {
        let run = |range: &mut dyn Iterator<Item = usize>, d: Option<usize>| range.take_while(|&i| labels[i] == d).count();
        let left_len = run(&mut (0..b).rev(), labels[b - 1]);
        let right_len = run(&mut (b..labels.len()), labels[b]);
        let total = rng.random_range(params.linker_min..=params.linker_max);
        let left = (total / 2).min(left_len.saturating_sub(params.min_keep));
        let right = (total - total / 2).min(right_len.saturating_sub(params.min_keep));
        for l in labels.iter_mut().take(b + right).skip(b - left) {
            *l = None;
        }
    }
    let labels = relabel(&labels, 1);
    let frames = centred(&chain.frames[start..end]);
    let ca: Vec<Vec3> = frames.iter().map(|f| f.trans).collect();
    let map = spliced_distance_map(&ca, &labels)?;
    Ok(Example { source: (chain.id.clone(), start, end), frames, map })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(labels: Vec<usize>) -> DomainChain {
        let frames = crate::model::tests::helix(labels.len(), 0.0).into_iter().map(Rigid::from_translation).collect();
        DomainChain { id: "t".into(), frames, labels, weight: 1.0 }
    }

    #[test]
    fn linker_windows_sit_on_boundaries() {
        let mut labels = vec![0; 40];
        labels.extend(vec![1; 30]);
        labels.extend(vec![0; 20]);
        let c = chain(labels);
        let p = ExampleParams { crop_max: 200, linker_min: 6, linker_max: 6, min_keep: 5, min_fragment: 10 };
        let ex = sample_example(&c, &p, &mut protforge_flow::rng::seeded(1)).unwrap();
        assert_eq!(ex.map.len, 90);
        let free: Vec<usize> = (0..90).filter(|&i| ex.map.domain_of[i].is_none()).collect();
        assert_eq!(free, vec![37, 38, 39, 40, 41, 42, 67, 68, 69, 70, 71, 72]);
        assert_eq!(ex.map.domain_of[0], Some(0));
        assert_eq!(ex.map.domain_of[50], Some(1));
        assert_eq!(ex.map.domain_of[89], Some(0), "a discontinuous domain keeps its label");
        assert!(ex.map.get(0, 89) > 0.0 && ex.map.get(0, 50) < 0.0);
        let c0: Vec3 = ex.frames.iter().map(|f| f.trans).sum();
        assert!(c0.norm() < 1e-6);
    }

    #[test]
    fn crops_contain_a_boundary_and_small_fragments_are_freed() {
        let mut labels = vec![0; 300];
        labels.extend(vec![1; 200]);
        labels.extend(vec![2; 6]);
        let c = chain(labels);
        let p = ExampleParams { crop_max: 120, linker_min: 0, linker_max: 0, ..ExampleParams::default() };
        for seed in 0..20 {
            let ex = sample_example(&c, &p, &mut protforge_flow::rng::seeded(seed)).unwrap();
            assert_eq!(ex.map.len, 120);
            let (_, s, e) = ex.source;
            assert_eq!(e - s, 120);
            let n_dom = ex.map.domain_of.iter().flatten().max().map_or(0, |m| m + 1);
            assert!(n_dom >= 2 || s >= 380, "seed {seed}: crop {s}..{e}");
        }
        let ex = sample_example(&chain(vec![0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), &p, &mut protforge_flow::rng::seeded(0)).unwrap();
        assert_eq!(&ex.map.domain_of[..4], &[None, None, None, Some(0)]);
        assert!(ExampleParams { linker_min: 5, linker_max: 4, ..p }.validate().is_err());
    }

    #[test]
    fn cache_labels_and_round_trip() {
        let c = CachedChain { id: "x".into(), split: Split::Train, length: 6, n_domains: 2, segments: vec![[0, 0, 2], [1, 2, 5], [0, 5, 6]] };
        assert_eq!(c.labels(), vec![0, 0, 1, 1, 1, 0]);
        let cache = DomainCache { params: DomainParams::default(), chains: vec![c.clone(), CachedChain { n_domains: 1, segments: vec![[0, 0, 3]], length: 3, id: "y".into(), split: Split::Val }] };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/domains.json");
        cache.save(&path).unwrap();
        assert_eq!(DomainCache::load(&path).unwrap(), cache);
        assert_eq!(cache.count(Split::Train, 2), 1);
        assert_eq!(cache.count(Split::Val, 2), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 7, "{text}");
    }
}
