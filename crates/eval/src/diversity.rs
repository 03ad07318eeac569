//! Diversity and novelty of a set of structures by TM-align (Zhang & Skolnick 2005).
//!
//! - **Pairwise similarity** is [`crate::tm::pairwise_tm`]: TM-score normalised by the shorter
//!   chain of each pair (symmetric, diagonal 1).
//! - **Mean pairwise TM-score**: the mean of the `n(n−1)/2` off-diagonal entries.
//! - **Clusters at TM 0.5**: greedy set-cover clustering, the rule of MMseqs2/Foldseek
//!   `--cluster-mode 0` (Steinegger & Söding 2017; van Kempen et al. 2024). Two structures are
//!   neighbours when their similarity is **≥ threshold**. Repeatedly, the unassigned structure
//!   with the most unassigned neighbours (ties: lowest index) becomes a representative, and it
//!   and all its unassigned neighbours form a cluster. Every member is therefore a direct
//!   neighbour of its representative (members of one cluster need not be neighbours of each
//!   other).
//! - **Novelty**: for each query, the maximum TM-score to any structure of a reference set,
//!   normalised by the **query** length (`tm_a` of `tm_align(query, reference)`). [`novelty`]
//!   finds it in two stages ([`NoveltySearch::TwoStage`]): a reduced TM-align
//!   ([`crate::tm::TmAlignMode::Screen`], ~2.5× cheaper) against every reference, then exact
//!   TM-align against the [`NOVELTY_TOP_K`] references with the highest screening scores; the
//!   answer is the exact maximum among those. References that provably cannot matter are skipped (see
//!   [`NoveltySearch::TwoStage`]). [`NoveltySearch::Exhaustive`] aligns every pair exactly.

use protforge_se3::Vec3;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::EvalError;
use crate::tm::{self, TmAlignMode, pairwise_tm};

/// The customary threshold for "same fold" (TM-score 0.5; Xu & Zhang 2010, Bioinformatics
/// 26:889).
pub const SAME_FOLD_TM: f64 = 0.5;

/// Diversity of a set of structures.
#[derive(Debug, Clone, Serialize)]
pub struct Diversity {
    /// Number of structures.
    pub n: usize,
    /// Mean pairwise TM-score (by the shorter chain); `None` for fewer than 2 structures.
    pub mean_pairwise_tm: Option<f64>,
    /// Threshold used for clustering (TM-score).
    pub threshold: f64,
    /// Number of clusters ([`greedy_clusters`]).
    pub clusters: usize,
    /// Cluster index of each structure (0-based, in order of creation).
    pub cluster_of: Vec<usize>,
}

/// Novelty of one structure against a reference set.
#[derive(Debug, Clone, Serialize)]
pub struct Novelty {
    /// Highest TM-score (normalised by the query length) to any reference structure;
    /// 0 when the reference set is empty.
    pub max_tm: f64,
    /// Index of that reference structure.
    pub best_reference: Option<usize>,
}

/// Number of references per query that [`novelty`] re-aligns exactly (the best by screening
/// score). On 20 validation chains against the 1,444 training chains the two-stage maximum
/// equals the exhaustive exact one for 19, and is 0.010 lower for one (0.392 vs 0.402);
/// `docs/BENCHMARKS.md`.
pub const NOVELTY_TOP_K: usize = 8;

/// How [`novelty_with`] searches a reference set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoveltySearch {
    /// Exact TM-align ([`tm::tm_align`]) of every query × reference pair: the definition,
    /// about 25 ms per pair of ~150-residue chains.
    Exhaustive,
    /// Stage 1: screening TM-align ([`TmAlignMode::Screen`], about 2.5× cheaper) of each query
    /// against the references; stage 2: exact TM-align against the `top_k` references with the
    /// highest screening scores (ties: lower index), returning the exact maximum among them
    /// (`top_k` 0 is taken as 1; with no more references than `top_k`, stage 1 is skipped).
    ///
    /// Two prunings that cannot change this result: a TM-score normalised by the query length
    /// `Lq` sums at most `min(Lq, Lr)` terms of at most 1, so it is at most
    /// `min(Lq, Lr) / Lq` for a reference of length `Lr`. References are visited by decreasing
    /// bound, and those whose bound is below the `top_k`-th best screening score so far (stage 1) or
    /// below the best exact score so far (stage 2) are skipped.
    TwoStage {
        /// References per query re-aligned exactly.
        top_k: usize,
    },
}

impl Default for NoveltySearch {
    /// [`NoveltySearch::TwoStage`] with [`NOVELTY_TOP_K`].
    fn default() -> Self {
        Self::TwoStage { top_k: NOVELTY_TOP_K }
    }
}

/// Mean of the off-diagonal entries of a symmetric similarity matrix (upper triangle);
/// `None` if `n < 2`.
#[must_use]
pub fn mean_pairwise(matrix: &[Vec<f64>]) -> Option<f64> {
    let n = matrix.len();
    if n < 2 {
        return None;
    }
    let sum: f64 = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| matrix[i][j]).sum();
    Some(sum / (n * (n - 1) / 2) as f64)
}

/// Greedy set-cover clustering of a symmetric similarity matrix (see the module docs):
/// returns the cluster index of each item.
///
/// # Errors
/// [`EvalError::BadMatrix`] if `matrix` is not square.
pub fn greedy_clusters(matrix: &[Vec<f64>], threshold: f64) -> Result<Vec<usize>, EvalError> {
    let n = matrix.len();
    if let Some((row, r)) = matrix.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(EvalError::BadMatrix { context: "greedy_clusters", expected: n, row, got: r.len() });
    }
    let neighbours: Vec<Vec<usize>> =
        (0..n).map(|i| (0..n).filter(|&j| j != i && matrix[i][j] >= threshold).collect()).collect();
    let mut cluster_of: Vec<Option<usize>> = vec![None; n];
    let mut next = 0;
    loop {
        // Unassigned item with the most unassigned neighbours; lowest index on ties.
        let pick = (0..n)
            .filter(|&i| cluster_of[i].is_none())
            .map(|i| (i, neighbours[i].iter().filter(|&&j| cluster_of[j].is_none()).count()))
            .fold(None, |best: Option<(usize, usize)>, (i, c)| match best {
                Some((_, bc)) if bc >= c => best,
                _ => Some((i, c)),
            });
        let Some((rep, _)) = pick else { break };
        cluster_of[rep] = Some(next);
        for &j in &neighbours[rep] {
            if cluster_of[j].is_none() {
                cluster_of[j] = Some(next);
            }
        }
        next += 1;
    }
    Ok(cluster_of.into_iter().map(|c| c.unwrap_or(0)).collect())
}

/// Diversity of `structs` (CA traces, Å): all-vs-all TM-align in parallel, mean pairwise
/// TM-score and greedy clusters at `threshold` (use [`SAME_FOLD_TM`]).
///
/// # Errors
/// As [`pairwise_tm`] (a structure with fewer than 3 residues, non-finite coordinates).
pub fn diversity(structs: &[Vec<Vec3>], threshold: f64) -> Result<Diversity, EvalError> {
    let m = pairwise_tm(structs)?;
    diversity_from_matrix(&m, threshold)
}

/// [`diversity`] from a precomputed similarity matrix.
///
/// # Errors
/// [`EvalError::BadMatrix`] if `matrix` is not square.
pub fn diversity_from_matrix(matrix: &[Vec<f64>], threshold: f64) -> Result<Diversity, EvalError> {
    let cluster_of = greedy_clusters(matrix, threshold)?;
    let clusters = cluster_of.iter().max().map_or(0, |&c| c + 1);
    Ok(Diversity { n: matrix.len(), mean_pairwise_tm: mean_pairwise(matrix), threshold, clusters, cluster_of })
}

/// For each query (CA trace, Å), its highest TM-score to `reference` (normalised by the
/// query length), by the two-stage search [`NoveltySearch::TwoStage`] with [`NOVELTY_TOP_K`]
/// (screening TM-align against every reference, exact TM-align against the best few), in parallel
/// (rayon).
///
/// # Errors
/// [`EvalError::TooShort`] / [`EvalError::NonFinite`] for a query or reference with fewer than
/// 3 residues or non-finite coordinates.
pub fn novelty(queries: &[Vec<Vec3>], reference: &[Vec<Vec3>]) -> Result<Vec<Novelty>, EvalError> {
    novelty_with(queries, reference, NoveltySearch::default())
}

/// [`novelty`] with an explicit search strategy ([`NoveltySearch`]).
///
/// # Errors
/// As [`novelty`].
pub fn novelty_with(queries: &[Vec<Vec3>], reference: &[Vec<Vec3>], search: NoveltySearch) -> Result<Vec<Novelty>, EvalError> {
    const CTX: &str = "novelty";
    for (k, q) in queries.iter().enumerate() {
        tm::check_chain(CTX, &format!("query {k}"), q)?;
    }
    for (k, r) in reference.iter().enumerate() {
        tm::check_chain(CTX, &format!("reference {k}"), r)?;
    }
    match search {
        NoveltySearch::Exhaustive => Ok(novelty_exhaustive(queries, reference)),
        NoveltySearch::TwoStage { top_k } => {
            Ok(queries.par_iter().map(|q| novelty_two_stage(q, reference, top_k.max(1))).collect())
        }
    }
}

/// References visited per parallel batch in stage 1 of [`novelty_two_stage`]; the pruning
/// threshold is updated between batches.
const STAGE1_BATCH: usize = 64;

/// Upper bound of the TM-score normalised by `lq` of any alignment of chains of lengths `lq`
/// and `lr`: at most `min(lq, lr)` pairs, each contributing at most 1.
fn tm_upper_bound(lq: usize, lr: usize) -> f64 {
    lq.min(lr) as f64 / lq as f64
}

/// Does `(score, index)` rank before `(best_score, best_index)`: higher score, then lower index.
fn ranks_before(score: f64, index: usize, best_score: f64, best_index: usize) -> bool {
    score > best_score || (score == best_score && index < best_index)
}

/// [`NoveltySearch::TwoStage`] for one query (inputs checked).
fn novelty_two_stage(query: &[Vec3], reference: &[Vec<Vec3>], top_k: usize) -> Novelty {
    let lq = query.len();
    // Visit order: decreasing bound, then increasing index.
    let mut order: Vec<usize> = (0..reference.len()).collect();
    order.sort_by_key(|&r| (std::cmp::Reverse(lq.min(reference[r].len())), r));

    // Stage 1: the top_k best (screening score, index), best first. With no more references than
    // top_k, all of them are candidates (by decreasing bound, for the stage-2 pruning).
    let mut top: Vec<(f64, usize)> = Vec::with_capacity(top_k + STAGE1_BATCH);
    if reference.len() <= top_k {
        top.extend(order.iter().map(|&r| (tm_upper_bound(lq, reference[r].len()), r)));
        order.clear();
    }
    for batch in order.chunks(STAGE1_BATCH) {
        // A reference whose bound is below the top_k-th screening score cannot enter the top_k;
        // bounds only decrease along `order`.
        let kth = if top.len() >= top_k { top[top_k - 1].0 } else { f64::NEG_INFINITY };
        let live = batch.partition_point(|&r| tm_upper_bound(lq, reference[r].len()) >= kth);
        if live == 0 {
            break;
        }
        let scores: Vec<(f64, usize)> = batch[..live]
            .par_iter()
            .map(|&r| (tm::tm_align_score_a(query, &reference[r], TmAlignMode::Screen), r))
            .collect();
        top.extend(scores);
        top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        top.truncate(top_k);
        if live < batch.len() {
            break;
        }
    }

    // Stage 2: exact TM-align of the candidates, best screening score first.
    let mut best: Option<(f64, usize)> = None;
    for &(_, r) in &top {
        if best.is_some_and(|(b, _)| tm_upper_bound(lq, reference[r].len()) < b) {
            continue;
        }
        let exact = tm::tm_align_score_a(query, &reference[r], TmAlignMode::Exact);
        if best.is_none_or(|(b, bi)| ranks_before(exact, r, b, bi)) {
            best = Some((exact, r));
        }
    }
    Novelty { max_tm: best.map_or(0.0, |b| b.0), best_reference: best.map(|b| b.1) }
}

/// [`NoveltySearch::Exhaustive`] (inputs checked): every pair in parallel.
fn novelty_exhaustive(queries: &[Vec<Vec3>], reference: &[Vec<Vec3>]) -> Vec<Novelty> {
    let nr = reference.len();
    let scores: Vec<f64> = (0..queries.len() * nr)
        .into_par_iter()
        .map(|k| tm::tm_align_score_a(&queries[k / nr], &reference[k % nr], TmAlignMode::Exact))
        .collect();
    (0..queries.len())
        .map(|q| {
            let row = &scores[q * nr..(q + 1) * nr];
            let best = row.iter().enumerate().fold(None, |best: Option<(usize, f64)>, (r, &s)| match best {
                Some((_, bs)) if bs >= s => best,
                _ => Some((r, s)),
            });
            Novelty { max_tm: best.map_or(0.0, |b| b.1), best_reference: best.map(|b| b.0) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(n: usize, edges: &[(usize, usize, f64)]) -> Vec<Vec<f64>> {
        let mut m = vec![vec![0.1; n]; n];
        for (i, row) in m.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        for &(i, j, s) in edges {
            m[i][j] = s;
            m[j][i] = s;
        }
        m
    }

    #[test]
    fn greedy_cover_picks_the_hub_first() {
        // 0–1, 1–2, 1–3 linked (1 is a hub with 3 neighbours); 4–5 linked; 6 alone.
        let m = sym(7, &[(0, 1, 0.6), (1, 2, 0.7), (1, 3, 0.5), (4, 5, 0.9), (0, 2, 0.3)]);
        let c = greedy_clusters(&m, 0.5).unwrap();
        assert_eq!(c, vec![0, 0, 0, 0, 1, 1, 2]);
    }

    #[test]
    fn chains_are_not_transitive() {
        // 0–1–2–3 a path: first pick is 1 (2 neighbours, lowest index), covering 0, 1, 2;
        // 3 is then alone (its neighbour 2 is taken).
        let m = sym(4, &[(0, 1, 0.8), (1, 2, 0.8), (2, 3, 0.8)]);
        let c = greedy_clusters(&m, 0.5).unwrap();
        assert_eq!(c, vec![0, 0, 0, 1]);
        let d = diversity_from_matrix(&m, 0.5).unwrap();
        assert_eq!(d.clusters, 2);
        // Mean of the 6 off-diagonal entries: (3·0.8 + 3·0.1)/6.
        assert!((d.mean_pairwise_tm.unwrap() - 0.45).abs() < 1e-12);
    }

    #[test]
    fn threshold_is_inclusive_and_bad_matrices_fail() {
        let m = sym(2, &[(0, 1, 0.5)]);
        assert_eq!(greedy_clusters(&m, 0.5).unwrap(), vec![0, 0]);
        assert_eq!(greedy_clusters(&m, 0.500_001).unwrap(), vec![0, 1]);
        assert!(greedy_clusters(&[vec![1.0, 0.0]], 0.5).is_err());
        assert_eq!(mean_pairwise(&[vec![1.0]]), None);
        assert_eq!(diversity_from_matrix(&[], 0.5).unwrap().clusters, 0);
    }

    #[test]
    fn novelty_finds_the_closest_reference() {
        // A helix-like query; reference 1 contains it, reference 0 is a straight line.
        let curve = |n: usize, phase: f64| -> Vec<Vec3> {
            (0..n)
                .map(|i| {
                    let t = i as f64 * 1.745 + phase;
                    Vec3::new(2.3 * t.cos(), 2.3 * t.sin(), 1.5 * i as f64)
                })
                .collect()
        };
        let line: Vec<Vec3> = (0..40).map(|i| Vec3::new(3.8 * f64::from(i), 0.0, 0.0)).collect();
        let query = curve(30, 0.0);
        let reference = vec![line, curve(60, 0.0)];
        let nov = novelty(std::slice::from_ref(&query), &reference).unwrap();
        assert_eq!(nov[0].best_reference, Some(1));
        assert!((nov[0].max_tm - 1.0).abs() < 1e-6, "{}", nov[0].max_tm);
        let empty = novelty(&[query], &[]).unwrap();
        assert_eq!(empty[0].max_tm, 0.0);
        assert_eq!(empty[0].best_reference, None);
    }

    /// A compact random CA chain (3.8 Å steps, no CA closer than 4 Å to an earlier one).
    fn random_chain(n: usize, seed: u64) -> Vec<Vec3> {
        let mut st = seed;
        let mut next = move || {
            st = st.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (st >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut pts = vec![Vec3::zeros()];
        let mut dir = Vec3::new(1.0, 0.0, 0.0);
        while pts.len() < n {
            let last = pts[pts.len() - 1];
            let mut placed = false;
            for _ in 0..200 {
                let step = (dir * 0.8 + Vec3::new(next(), next(), next()) - last * 0.02).normalize() * 3.8;
                let cand = last + step;
                if pts[..pts.len() - 1].iter().all(|p| (p - cand).norm() > 4.0) {
                    dir = step.normalize();
                    pts.push(cand);
                    placed = true;
                    break;
                }
            }
            if !placed {
                pts.push(last + Vec3::new(0.0, 0.0, 3.8));
            }
        }
        pts
    }

    /// Queries and references with a range of similarities: references contain noisy,
    /// truncated or extended copies of some queries, plus unrelated chains of many lengths.
    fn novelty_set() -> (Vec<Vec<Vec3>>, Vec<Vec<Vec3>>) {
        let queries: Vec<Vec<Vec3>> = (0..4).map(|k| random_chain(50 + 20 * k, 100 + k as u64)).collect();
        let mut refs: Vec<Vec<Vec3>> = Vec::new();
        let mut st = 9u64;
        let mut noise = move |amp: f64| {
            st = st.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((st >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * amp
        };
        for (k, q) in queries.iter().enumerate() {
            let amp = 1.0 + 1.5 * k as f64;
            refs.push(q.iter().map(|p| p + Vec3::new(noise(amp), noise(amp), noise(amp))).collect());
            refs.push(q[..q.len() * 2 / 3].to_vec());
            let mut ext = q.clone();
            ext.extend(random_chain(30, 500 + k as u64).iter().map(|p| p + q[q.len() - 1] + Vec3::new(3.8, 0.0, 0.0)));
            refs.push(ext);
        }
        for k in 0..8 {
            refs.push(random_chain(20 + 25 * k, 300 + k as u64));
        }
        (queries, refs)
    }

    #[test]
    fn two_stage_novelty_equals_exhaustive() {
        let (queries, refs) = novelty_set();
        let exhaustive = novelty_with(&queries, &refs, NoveltySearch::Exhaustive).unwrap();
        // With every reference a candidate, only the provable stage-2 pruning acts: the result
        // must be bit-identical to the exhaustive search. The default (top 8 of 20, stage 1
        // and its pruning active) finds the same maxima on this set.
        let all = novelty_with(&queries, &refs, NoveltySearch::TwoStage { top_k: refs.len() }).unwrap();
        let two = novelty(&queries, &refs).unwrap();
        let one = novelty_with(&queries, &refs, NoveltySearch::TwoStage { top_k: 1 }).unwrap();
        for q in 0..queries.len() {
            let e = &exhaustive[q];
            assert_eq!(all[q].max_tm.to_bits(), e.max_tm.to_bits(), "query {q}");
            assert_eq!(all[q].best_reference, e.best_reference, "query {q}");
            assert_eq!(two[q].max_tm.to_bits(), e.max_tm.to_bits(), "query {q}");
            assert_eq!(two[q].best_reference, e.best_reference, "query {q}");
            // top_k 1: still an exact TM-score of some reference, never above the maximum.
            assert!(one[q].max_tm <= e.max_tm + 1e-12);
            assert!(e.max_tm > 0.5, "query {q}: the set should contain a close reference");
        }
    }

    #[test]
    fn length_bound_holds_and_prunes() {
        // TM normalised by the query can never exceed min(Lq, Lr)/Lq.
        let (queries, refs) = novelty_set();
        for q in &queries {
            for r in &refs {
                let tm = tm::tm_align(q, r).unwrap().tm_a;
                assert!(tm <= tm_upper_bound(q.len(), r.len()), "{tm} > bound for {} vs {}", q.len(), r.len());
            }
        }
        assert_eq!(tm_upper_bound(100, 40), 0.4);
        assert_eq!(tm_upper_bound(100, 400), 1.0);
    }

    #[test]
    fn novelty_rejects_short_or_non_finite_chains() {
        let ok = random_chain(30, 1);
        let short = vec![Vec3::zeros(), Vec3::new(3.8, 0.0, 0.0)];
        let mut nan = ok.clone();
        nan[3].x = f64::NAN;
        let one = std::slice::from_ref(&ok);
        assert!(matches!(novelty(std::slice::from_ref(&short), one), Err(EvalError::TooShort { .. })));
        assert!(matches!(novelty(one, &[ok.clone(), short]), Err(EvalError::TooShort { .. })));
        assert!(matches!(novelty(one, &[nan]), Err(EvalError::NonFinite { .. })));
    }
}
