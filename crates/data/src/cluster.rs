//! Sequence clustering by k-mer containment, and cluster-level train/validation splits.
//!
//! **Identity measure.** For a sequence `a`, let `K(a)` be its set of distinct k-mers
//! (contiguous words of `k` residues, default `k = 4`; words containing the unknown residue
//! `X` are ignored). The k-mer identity of two sequences is the *containment*
//!
//! ```text
//! id(a, b) = |K(a) ∩ K(b)| / min(|K(a)|, |K(b)|)
//! ```
//!
//! which is 1 for identical sequences and for a sequence contained in the other (a domain
//! excised from a longer chain), and near 0 for unrelated sequences. It is the k-mer
//! containment of Broder (1997), as used by sequence sketching tools (e.g. Mash screen,
//! Ondov et al. 2019); no alignment is made. With a fraction `p` of identical aligned residues
//! and no indels, about `p^k` of the k-mers are shared, so with `k = 4` the default threshold
//! 0.08 corresponds roughly to 50–55 % identity; an indel only disturbs the k-mers around it.
//!
//! **Calibration** (the 1,600 chains of `../shared/data/structures`, whose clusters are
//! mmseqs2 40 %-identity / 50 %-coverage components): with `k = 4, threshold = 0.08` we get
//! 651 clusters (mmseqs2: 632, largest 263 vs 264); 95.8 % of the chain pairs that mmseqs2
//! puts in one cluster are in one of ours, and 97.1 % of our same-cluster pairs are in one
//! of theirs. Unrelated pairs (different mmseqs2 clusters, 1.24 M pairs) score a median
//! near 0, 99.99th percentile 0.073, maximum 0.159. With `k = 3` the random background is
//! too high (99.99th percentile 0.23, maximum 0.32) to separate homologues, so `k = 3` is not
//! the default. Single linkage accumulates such background links as the number of chains
//! grows; for tens of thousands of chains raise the threshold (or `k`).
//!
//! Sequences sharing no k-mer are never compared: an inverted index over k-mers yields the
//! candidate partners, so the cost grows with the number of shared k-mer occurrences
//! (about 0.15 s for 1,600 chains on 2 cores).
//!
//! **Clusters** are the connected components of the graph whose edges are pairs with
//! `id ≥ threshold` (single linkage, union–find).
//!
//! **Splits.** A cluster goes entirely to one side. Clusters containing a chain forced into
//! validation go to validation (pulling their training members with them). Then clusters,
//! shuffled with a seeded RNG, are added to validation while they fit under the target
//! `round(val_fraction · n)` chains; a cluster that would overshoot is skipped, so one huge
//! cluster never ends up in validation by chance.

use crate::format::Split;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::collections::HashMap;

/// Default k-mer length.
pub const DEFAULT_KMER: usize = 4;
/// Default containment threshold for linking two sequences into one cluster.
pub const DEFAULT_IDENTITY_THRESHOLD: f64 = 0.08;
/// Largest supported k (21^6 codes fit in `u32`).
pub const MAX_KMER: usize = 6;

/// Distinct k-mer codes of a sequence of `aatype` codes (0..=19 standard, 20 = `X`), sorted
/// ascending. Words containing a code ≥ 20 are skipped. `k` must be in `1..=MAX_KMER`
/// (otherwise the set is empty).
#[must_use]
pub fn kmer_set(aatype: &[u8], k: usize) -> Vec<u32> {
    if k == 0 || k > MAX_KMER || aatype.len() < k {
        return Vec::new();
    }
    let mut out: Vec<u32> = aatype
        .windows(k)
        .filter(|w| w.iter().all(|&a| a < 20))
        .map(|w| w.iter().fold(0u32, |acc, &a| acc * 21 + u32::from(a)))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Number of common elements of two sorted, deduplicated slices.
fn intersection_size(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Containment of two k-mer sets (from [`kmer_set`]): `|A ∩ B| / min(|A|, |B|)`, 0 if either
/// is empty.
#[must_use]
pub fn containment(a: &[u32], b: &[u32]) -> f64 {
    let m = a.len().min(b.len());
    if m == 0 { 0.0 } else { intersection_size(a, b) as f64 / m as f64 }
}

/// Jaccard index of two k-mer sets: `|A ∩ B| / |A ∪ B|`, 0 if both are empty.
#[must_use]
pub fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    let inter = intersection_size(a, b);
    let union = a.len() + b.len() - inter;
    if union == 0 { 0.0 } else { inter as f64 / union as f64 }
}

/// k-mer identity of two sequences of `aatype` codes (the containment of their k-mer sets,
/// see the module docs).
#[must_use]
pub fn kmer_identity(a: &[u8], b: &[u8], k: usize) -> f64 {
    containment(&kmer_set(a, k), &kmer_set(b, k))
}

/// Result of [`cluster_sequences`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clustering {
    /// Cluster index of each sequence. Clusters are numbered 0.. in order of their first member.
    pub cluster: Vec<u32>,
    /// Number of clusters.
    pub n_clusters: usize,
    /// Number of sequence pairs at or above the threshold (graph edges).
    pub n_links: usize,
}

struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self { parent: (0..n as u32).collect(), size: vec![1; n] }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize]; // path halving
            x = self.parent[x as usize];
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.size[ra as usize] < self.size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb as usize] = ra;
        self.size[ra as usize] += self.size[rb as usize];
    }
}

/// Single-linkage clusters of `seqs` (each a slice of `aatype` codes): two sequences are linked
/// when their k-mer containment (module docs) is at least `threshold`. Runs in parallel (rayon)
/// over an inverted k-mer index; deterministic.
#[must_use]
pub fn cluster_sequences(seqs: &[&[u8]], k: usize, threshold: f64) -> Clustering {
    let n = seqs.len();
    let sets: Vec<Vec<u32>> = seqs.par_iter().map(|s| kmer_set(s, k)).collect();
    let mut postings: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, set) in sets.iter().enumerate() {
        for &km in set {
            postings.entry(km).or_default().push(i as u32);
        }
    }
    let edges: Vec<(u32, u32)> = (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0u32; n], Vec::<u32>::new()),
            |(counts, touched), i| {
                for km in &sets[i] {
                    let list = &postings[km];
                    // Lists are ascending; only count partners j > i, so each pair is seen once.
                    let from = list.partition_point(|&j| j as usize <= i);
                    for &j in &list[from..] {
                        if counts[j as usize] == 0 {
                            touched.push(j);
                        }
                        counts[j as usize] += 1;
                    }
                }
                let mut out = Vec::new();
                for &j in touched.iter() {
                    let shared = counts[j as usize] as f64;
                    counts[j as usize] = 0;
                    let m = sets[i].len().min(sets[j as usize].len());
                    if m > 0 && shared / m as f64 >= threshold {
                        out.push((i as u32, j));
                    }
                }
                touched.clear();
                out
            },
        )
        .flatten()
        .collect();

    let mut uf = UnionFind::new(n);
    for &(a, b) in &edges {
        uf.union(a, b);
    }
    let mut id_of_root: HashMap<u32, u32> = HashMap::new();
    let cluster: Vec<u32> = (0..n as u32)
        .map(|i| {
            let root = uf.find(i);
            let next = id_of_root.len() as u32;
            *id_of_root.entry(root).or_insert(next)
        })
        .collect();
    Clustering { cluster, n_clusters: id_of_root.len(), n_links: edges.len() }
}

/// Result of [`assign_splits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitAssignment {
    /// Split of each chain.
    pub split: Vec<Split>,
    /// Chains not forced into validation that went there because they share a cluster with a
    /// forced one.
    pub moved_to_val: usize,
    /// Clusters drawn at random to reach the validation fraction.
    pub random_val_clusters: usize,
}

/// Assign whole clusters to train or validation (module docs, "Splits").
///
/// `cluster[i]` is the cluster of chain `i` (as from [`cluster_sequences`]); `forced_val[i]`
/// forces chain `i` and its whole cluster into validation; `val_fraction` in `[0, 1]` is the
/// target fraction of chains in validation (forced chains count towards it); `seed` seeds the
/// shuffle of the remaining clusters.
#[must_use]
pub fn assign_splits(cluster: &[u32], forced_val: &[bool], val_fraction: f64, seed: u64) -> SplitAssignment {
    let n = cluster.len();
    let n_clusters = cluster.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut size = vec![0usize; n_clusters];
    let mut is_val = vec![false; n_clusters];
    for (i, &c) in cluster.iter().enumerate() {
        size[c as usize] += 1;
        if forced_val.get(i).copied().unwrap_or(false) {
            is_val[c as usize] = true;
        }
    }
    let mut val_count: usize = (0..n_clusters).filter(|&c| is_val[c]).map(|c| size[c]).sum();
    let n_forced = forced_val.iter().take(n).filter(|&&f| f).count();
    let moved_to_val = val_count - n_forced;

    let target = (val_fraction.clamp(0.0, 1.0) * n as f64).round() as usize;
    let mut order: Vec<usize> = (0..n_clusters).filter(|&c| !is_val[c] && size[c] > 0).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut random_val_clusters = 0;
    for c in order {
        if val_count >= target {
            break;
        }
        if val_count + size[c] <= target {
            is_val[c] = true;
            val_count += size[c];
            random_val_clusters += 1;
        }
    }
    let split = cluster.iter().map(|&c| if is_val[c as usize] { Split::Val } else { Split::Train }).collect();
    SplitAssignment { split, moved_to_val, random_val_clusters }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protforge_structure::residue::aatype_from_one;

    fn enc(s: &str) -> Vec<u8> {
        s.chars().map(aatype_from_one).collect()
    }

    #[test]
    fn kmer_set_codes_and_skips_unknown() {
        // "ARN" = 0*441 + 1*21 + 2 = 23; "RND" = 1*441 + 2*21 + 3 = 486.
        assert_eq!(kmer_set(&enc("ARND"), 3), vec![23, 486]);
        assert_eq!(kmer_set(&enc("AAAAA"), 3), vec![0]);
        assert!(kmer_set(&enc("ARXND"), 3).is_empty());
        assert!(kmer_set(&enc("AR"), 3).is_empty());
    }

    #[test]
    fn identity_on_known_strings() {
        let a = enc("MKTAYIAKQRQISFVKSHFSRQ");
        // identical and contained sequences → 1
        assert!((kmer_identity(&a, &a, 3) - 1.0).abs() < 1e-12);
        let inner = enc("AYIAKQRQISF");
        assert!((kmer_identity(&a, &inner, 3) - 1.0).abs() < 1e-12);
        // ABCDEF-like: "ACDEFG" vs "ACDWFG": 3-mers {ACD,CDE,DEF,EFG} vs {ACD,CDW,DWF,WFG} share 1 of 4.
        let x = enc("ACDEFG");
        let y = enc("ACDWFG");
        assert!((kmer_identity(&x, &y, 3) - 0.25).abs() < 1e-12);
        assert!((jaccard(&kmer_set(&x, 3), &kmer_set(&y, 3)) - 1.0 / 7.0).abs() < 1e-12);
        // disjoint
        assert_eq!(kmer_identity(&enc("AAAAAA"), &enc("WWWWWW"), 3), 0.0);
    }

    #[test]
    fn single_linkage_is_transitive() {
        // a~b and b~c by overlap, a and c share nothing: one cluster via b.
        let a = enc("MKTAYIAKQRQISFVKSHFSRQ");
        let b = enc("QISFVKSHFSRQLEERLGLIEV");
        let c = enc("LEERLGLIEVQAPILSRVGDGT");
        let d = enc("WWPPWWHHCCWWPPHHCCWW");
        let seqs: Vec<&[u8]> = vec![&a, &b, &c, &d];
        assert_eq!(kmer_identity(&a, &c, 3), 0.0);
        let cl = cluster_sequences(&seqs, 3, 0.4);
        assert_eq!(cl.cluster, vec![0, 0, 0, 1]);
        assert_eq!(cl.n_clusters, 2);
        assert_eq!(cl.n_links, 2);
        // A stricter threshold separates them.
        let strict = cluster_sequences(&seqs, 3, 0.9);
        assert_eq!(strict.n_clusters, 4);
    }

    #[test]
    fn index_agrees_with_all_pairs() {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(7);
        let base: Vec<u8> = (0..120).map(|_| rng.random_range(0..20)).collect();
        // Mutants of one sequence at varying rates, plus random ones.
        let seqs: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                if i % 4 == 3 {
                    (0..90).map(|_| rng.random_range(0..20)).collect()
                } else {
                    base.iter()
                        .map(|&a| if rng.random_bool(0.05 * (i % 4) as f64) { rng.random_range(0..20) } else { a })
                        .collect()
                }
            })
            .collect();
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let cl = cluster_sequences(&refs, 3, 0.5);
        let sets: Vec<Vec<u32>> = refs.iter().map(|s| kmer_set(s, 3)).collect();
        let mut links = 0;
        for i in 0..refs.len() {
            for j in i + 1..refs.len() {
                if containment(&sets[i], &sets[j]) >= 0.5 {
                    links += 1;
                    assert_eq!(cl.cluster[i], cl.cluster[j]);
                }
            }
        }
        assert_eq!(cl.n_links, links);
        assert!(links > 0);
    }

    #[test]
    fn forced_val_pulls_its_cluster_and_no_cluster_straddles() {
        let cluster = vec![0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8];
        let mut forced = vec![false; cluster.len()];
        forced[3] = true;
        let s = assign_splits(&cluster, &forced, 0.0, 0);
        assert_eq!(s.moved_to_val, 2);
        assert_eq!(s.random_val_clusters, 0);
        let val: Vec<usize> = (0..cluster.len()).filter(|&i| s.split[i] == Split::Val).collect();
        assert_eq!(val, vec![2, 3, 4]);

        for seed in 0..20 {
            let s = assign_splits(&cluster, &forced, 0.5, seed);
            let n_val = s.split.iter().filter(|&&x| x == Split::Val).count();
            assert_eq!(n_val, 6, "seed {seed}");
            for i in 0..cluster.len() {
                for j in 0..cluster.len() {
                    if cluster[i] == cluster[j] {
                        assert_eq!(s.split[i], s.split[j]);
                    }
                }
            }
            assert_eq!(s.split[3], Split::Val);
        }
    }

    #[test]
    fn split_is_seeded() {
        let cluster: Vec<u32> = (0..100).map(|i| i / 2).collect();
        let forced = vec![false; 100];
        let a = assign_splits(&cluster, &forced, 0.1, 1);
        assert_eq!(a, assign_splits(&cluster, &forced, 0.1, 1));
        assert_ne!(a.split, assign_splits(&cluster, &forced, 0.1, 2).split);
        assert_eq!(a.split.iter().filter(|&&s| s == Split::Val).count(), 10);
    }

    #[test]
    fn oversized_cluster_is_skipped() {
        // One cluster of 50 and 50 singletons: a 10 % target must never take the big one.
        let cluster: Vec<u32> = (0..100).map(|i| if i < 50 { 0 } else { i - 49 }).collect();
        for seed in 0..10 {
            let s = assign_splits(&cluster, &[], 0.1, seed);
            assert!(s.split[..50].iter().all(|&x| x == Split::Train));
            assert_eq!(s.split.iter().filter(|&&x| x == Split::Val).count(), 10);
        }
    }
}
