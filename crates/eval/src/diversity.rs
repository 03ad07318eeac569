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
//!   normalised by the **query** length (`tm_a` of `tm_align(query, reference)`).

use protforge_se3::Vec3;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::EvalError;
use crate::tm::{self, pairwise_tm};

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

/// For each query, its highest TM-score to `reference` (normalised by the query length),
/// all query × reference pairs in parallel (rayon).
///
/// # Errors
/// The first [`tm::tm_align`] error (a chain with fewer than 3 residues, non-finite).
pub fn novelty(queries: &[Vec<Vec3>], reference: &[Vec<Vec3>]) -> Result<Vec<Novelty>, EvalError> {
    let nr = reference.len();
    let scores = (0..queries.len() * nr)
        .into_par_iter()
        .map(|k| tm::tm_align(&queries[k / nr], &reference[k % nr]).map(|r| r.tm_a))
        .collect::<Result<Vec<f64>, EvalError>>()?;
    Ok((0..queries.len())
        .map(|q| {
            let row = &scores[q * nr..(q + 1) * nr];
            let best = row.iter().enumerate().fold(None, |best: Option<(usize, f64)>, (r, &s)| match best {
                Some((_, bs)) if bs >= s => best,
                _ => Some((r, s)),
            });
            Novelty { max_tm: best.map_or(0.0, |b| b.1), best_reference: best.map(|b| b.0) }
        })
        .collect())
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
}
