//! Trajectory (ensemble) metrics in the style of AlphaFlow/MDGen (Jing et al. 2024,
//! `scripts/analyze_ensembles.py`), on CA atoms (Å), plus validity and drift over time.
//!
//! Conventions: every frame is first superimposed (Kabsch on CA) onto a fixed structure — the
//! initial/topology structure — and all metrics use those superposed coordinates, as AlphaFlow
//! superposes every ensemble onto the crystal structure.
//!
//! - **RMSF** per residue: `√(mean_f |x_f − x̄|²)` (Å).
//! - **Pairwise RMSD**: RMSD of every frame pair *without re-alignment* (frames are already
//!   superposed), summarised as mean, median, 5th/95th percentiles and a histogram.
//! - **PCA**: top-2 principal components of the *reference* ensemble (flattened superposed CA
//!   coordinates); both ensembles are projected on them. `W2` is the exact 2-Wasserstein distance
//!   between equal-size subsamples of the projected point sets (optimal matching by the
//!   Hungarian algorithm), in Å of projected coordinate, and also scaled `×10/√n_atoms` as
//!   AlphaFlow reports it; `JSD` is the Jensen–Shannon divergence (bits, in [0, 1]) of the two
//!   10×10 histograms over the common bounding box.
//! - **Validity** per frame: no non-adjacent CA pair (`|i − j| ≥ 2`) closer than 3.0 Å and no
//!   consecutive CA–CA distance above 4.2 Å.
//! - **RMSD to the initial structure** per frame (after superposition).

use crate::EvalError;
use nalgebra::DMatrix;
use protforge_se3::{Vec3, kabsch};
use serde::Serialize;

/// CA pairs closer than this (Å, non-adjacent) make a frame invalid.
pub const CLASH_CA: f64 = 3.0;
/// Consecutive CA atoms further apart than this (Å) make a frame invalid (chain break).
pub const BREAK_CA: f64 = 4.2;
/// Histogram bins per PC axis for the JSD.
pub const PCA_BINS: usize = 10;
/// At most this many frames enter the exact W2 matching (evenly subsampled).
pub const W2_MAX_FRAMES: usize = 500;

/// Summary of a distribution of values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Histogram bin edges (`bins + 1` values).
    pub edges: Vec<f64>,
    /// Counts per bin.
    pub counts: Vec<usize>,
}

/// Metrics of one trajectory, optionally against a reference ensemble.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrajectoryReport {
    /// Frames analysed.
    pub n_frames: usize,
    /// Residues (CA atoms).
    pub n_residues: usize,
    /// CA RMSF per residue (Å).
    pub rmsf: Vec<f64>,
    /// Pairwise CA RMSD over frame pairs (Å).
    pub pairwise_rmsd: Distribution,
    /// Per frame: no CA clash and no chain break.
    pub valid: Vec<bool>,
    /// Fraction of valid frames.
    pub valid_frac: f64,
    /// Per frame: CA RMSD to the initial structure after superposition (Å).
    pub rmsd_to_initial: Vec<f64>,
    /// Comparison with the reference ensemble, if one was given.
    pub reference: Option<ReferenceComparison>,
}

/// How a trajectory compares with a reference ensemble of the same protein.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceComparison {
    /// Reference frames.
    pub n_frames: usize,
    /// Reference CA RMSF per residue (Å).
    pub rmsf: Vec<f64>,
    /// Pearson r between the two RMSF profiles.
    pub rmsf_pearson: f64,
    /// Reference pairwise CA RMSD (Å).
    pub pairwise_rmsd: Distribution,
    /// Fraction of variance of the reference explained by its PC1 and PC2.
    pub pc_variance_frac: [f64; 2],
    /// Exact W2 between the projections on the reference's top-2 PCs (Å).
    pub pca_w2: f64,
    /// `pca_w2 · 10 / √n_atoms` (AlphaFlow's scaling).
    pub pca_w2_scaled: f64,
    /// Jensen–Shannon divergence (bits) of the 10×10 PC histograms.
    pub pca_jsd: f64,
}

fn check_frames(context: &'static str, which: &str, frames: &[Vec<Vec3>], n: usize) -> Result<(), EvalError> {
    if frames.is_empty() || n < 3 {
        return Err(EvalError::TooShort { context, which: which.to_string(), len: if frames.is_empty() { 0 } else { n }, min: 3 });
    }
    for f in frames {
        if f.len() != n {
            return Err(EvalError::LengthMismatch { context, left_name: "frame", left: f.len(), right_name: "structure", right: n });
        }
        if let Some(index) = f.iter().position(|p| !(p.x.is_finite() && p.y.is_finite() && p.z.is_finite())) {
            return Err(EvalError::NonFinite { context, which: which.to_string(), index });
        }
    }
    Ok(())
}

/// Superimpose every frame onto `target` (Kabsch on all CA atoms).
///
/// # Errors
/// Shape errors; superposition failure.
pub fn superpose_frames(frames: &[Vec<Vec3>], target: &[Vec3]) -> Result<Vec<Vec<Vec3>>, EvalError> {
    check_frames("superpose_frames", "trajectory", frames, target.len())?;
    frames
        .iter()
        .map(|f| {
            let sup = kabsch::superpose(f, target)?;
            Ok(f.iter().map(|&p| sup.rigid.apply(p)).collect())
        })
        .collect()
}

/// CA RMSF per residue (Å) of already-superposed frames.
#[must_use]
pub fn rmsf(frames: &[Vec<Vec3>]) -> Vec<f64> {
    let n = frames.first().map_or(0, Vec::len);
    let nf = frames.len().max(1) as f64;
    (0..n)
        .map(|i| {
            let mean = frames.iter().map(|f| f[i]).sum::<Vec3>() / nf;
            (frames.iter().map(|f| (f[i] - mean).norm_squared()).sum::<f64>() / nf).sqrt()
        })
        .collect()
}

/// Pearson correlation of two equal-length series (NaN if either is constant or empty).
#[must_use]
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return f64::NAN;
    }
    let (ma, mb) = (a[..n].iter().sum::<f64>() / n as f64, b[..n].iter().sum::<f64>() / n as f64);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b).take(n) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 { f64::NAN } else { sab / (saa * sbb).sqrt() }
}

fn rmsd_no_fit(a: &[Vec3], b: &[Vec3]) -> f64 {
    (a.iter().zip(b).map(|(p, q)| (p - q).norm_squared()).sum::<f64>() / a.len().max(1) as f64).sqrt()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Summarise values with a `bins`-bin histogram over `[0, max]`.
#[must_use]
pub fn distribution(mut values: Vec<f64>, bins: usize) -> Distribution {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let max = values.last().copied().unwrap_or(0.0).max(1e-9);
    let bins = bins.max(1);
    let edges: Vec<f64> = (0..=bins).map(|k| max * k as f64 / bins as f64).collect();
    let mut counts = vec![0usize; bins];
    for &v in &values {
        counts[((v / max * bins as f64) as usize).min(bins - 1)] += 1;
    }
    Distribution {
        mean: if values.is_empty() { f64::NAN } else { values.iter().sum::<f64>() / values.len() as f64 },
        median: quantile(&values, 0.5),
        p05: quantile(&values, 0.05),
        p95: quantile(&values, 0.95),
        edges,
        counts,
    }
}

/// Pairwise RMSD (Å, no re-alignment) over all frame pairs, or over pairs of an evenly spaced
/// subsample of at most `max_frames` frames.
#[must_use]
pub fn pairwise_rmsd(frames: &[Vec<Vec3>], max_frames: usize) -> Vec<f64> {
    let idx = even_subsample(frames.len(), max_frames);
    let mut out = Vec::with_capacity(idx.len() * idx.len().saturating_sub(1) / 2);
    for (k, &i) in idx.iter().enumerate() {
        for &j in &idx[k + 1..] {
            out.push(rmsd_no_fit(&frames[i], &frames[j]));
        }
    }
    out
}

fn even_subsample(n: usize, max: usize) -> Vec<usize> {
    if n <= max || max == 0 {
        return (0..n).collect();
    }
    (0..max).map(|k| k * n / max).collect()
}

/// Per frame: `true` if no non-adjacent CA pair is closer than [`CLASH_CA`] and no bonded
/// consecutive pair is further than [`BREAK_CA`]. `bonded[i]` says whether residues `i` and
/// `i + 1` are joined by a peptide bond (`None`: all are); gaps in the input structure
/// (missing residues, chain ends) are not breaks.
#[must_use]
pub fn frame_validity(frames: &[Vec<Vec3>], bonded: Option<&[bool]>) -> Vec<bool> {
    frames
        .iter()
        .map(|f| {
            let broken = f.windows(2).enumerate().any(|(i, w)| bonded.is_none_or(|b| b.get(i).copied().unwrap_or(true)) && (w[1] - w[0]).norm() > BREAK_CA);
            let clash = (0..f.len()).any(|i| ((i + 2)..f.len()).any(|j| (f[i] - f[j]).norm() < CLASH_CA));
            !broken && !clash
        })
        .collect()
}

/// Top-2 principal axes (unit vectors of length `3n`) and the mean of flattened frames, with
/// the fraction of variance each explains.
fn top2_pcs(frames: &[Vec<Vec3>]) -> (Vec<f64>, [Vec<f64>; 2], [f64; 2]) {
    let (nf, dim) = (frames.len(), frames[0].len() * 3);
    let mut mean = vec![0.0; dim];
    for f in frames {
        for (i, p) in f.iter().enumerate() {
            for k in 0..3 {
                mean[3 * i + k] += p[k] / nf as f64;
            }
        }
    }
    let x = DMatrix::from_fn(nf, dim, |r, c| frames[r][c / 3][c % 3] - mean[c]);
    // PCs from the smaller Gram/covariance eigenproblem.
    let total: f64 = x.iter().map(|v| v * v).sum();
    let (vecs, vals): (Vec<Vec<f64>>, Vec<f64>) = if nf < dim {
        let gram = &x * x.transpose();
        let eig = nalgebra::SymmetricEigen::new(gram);
        let mut order: Vec<usize> = (0..nf).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        order
            .iter()
            .take(2)
            .map(|&k| {
                let u = eig.eigenvectors.column(k);
                let v = x.transpose() * u;
                let norm = v.norm().max(1e-12);
                (v.iter().map(|e| e / norm).collect(), eig.eigenvalues[k].max(0.0))
            })
            .unzip()
    } else {
        let cov = x.transpose() * &x;
        let eig = nalgebra::SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        order.iter().take(2).map(|&k| (eig.eigenvectors.column(k).iter().copied().collect(), eig.eigenvalues[k].max(0.0))).unzip()
    };
    let mut pcs = [vec![0.0; dim], vec![0.0; dim]];
    let mut frac = [0.0; 2];
    for k in 0..vecs.len().min(2) {
        pcs[k].clone_from(&vecs[k]);
        frac[k] = if total > 0.0 { vals[k] / total } else { 0.0 };
    }
    (mean, pcs, frac)
}

fn project(frames: &[Vec<Vec3>], mean: &[f64], pcs: &[Vec<f64>; 2]) -> Vec<[f64; 2]> {
    frames
        .iter()
        .map(|f| {
            let mut out = [0.0; 2];
            for (i, p) in f.iter().enumerate() {
                for k in 0..3 {
                    let c = p[k] - mean[3 * i + k];
                    out[0] += c * pcs[0][3 * i + k];
                    out[1] += c * pcs[1][3 * i + k];
                }
            }
            out
        })
        .collect()
}

/// Minimum-cost perfect matching of a square cost matrix (Hungarian algorithm with potentials,
/// O(n³); Kuhn 1955, Munkres 1957). Returns `assignment[row] = column`.
#[must_use]
pub fn hungarian(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    // 1-based arrays with a virtual column 0, as in the classic shortest-augmenting-path form.
    let (mut u, mut v) = (vec![0.0f64; n + 1], vec![0.0f64; n + 1]);
    let mut way = vec![0usize; n + 1];
    let mut col_of_row_owner = vec![0usize; n + 1]; // p[j]: row matched to column j
    for i in 1..=n {
        col_of_row_owner[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = col_of_row_owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[col_of_row_owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if col_of_row_owner[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            col_of_row_owner[j0] = col_of_row_owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0usize; n];
    for j in 1..=n {
        if col_of_row_owner[j] > 0 {
            assignment[col_of_row_owner[j] - 1] = j - 1;
        }
    }
    assignment
}

/// Exact 2-Wasserstein distance between two equal-weight 2-D point sets, using evenly spaced
/// subsamples of a common size `min(|a|, |b|, W2_MAX_FRAMES)`.
#[must_use]
pub fn w2_exact(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    let m = a.len().min(b.len()).min(W2_MAX_FRAMES);
    if m == 0 {
        return f64::NAN;
    }
    let ia = even_subsample(a.len(), m);
    let ib = even_subsample(b.len(), m);
    let cost: Vec<Vec<f64>> = ia
        .iter()
        .map(|&i| ib.iter().map(|&j| (a[i][0] - b[j][0]).powi(2) + (a[i][1] - b[j][1]).powi(2)).collect())
        .collect();
    let assign = hungarian(&cost);
    (assign.iter().enumerate().map(|(r, &c)| cost[r][c]).sum::<f64>() / m as f64).sqrt()
}

/// Jensen–Shannon divergence (bits) of two `bins × bins` histograms of 2-D points over their
/// common bounding box.
#[must_use]
pub fn jsd_2d(a: &[[f64; 2]], b: &[[f64; 2]], bins: usize) -> f64 {
    let all = a.iter().chain(b);
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in all {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let hist = |pts: &[[f64; 2]]| {
        let mut h = vec![0.0f64; bins * bins];
        for p in pts {
            let cell = |k: usize| (((p[k] - lo[k]) / (hi[k] - lo[k]).max(1e-12) * bins as f64) as usize).min(bins - 1);
            h[cell(0) * bins + cell(1)] += 1.0 / pts.len().max(1) as f64;
        }
        h
    };
    let (p, q) = (hist(a), hist(b));
    let kl = |x: &[f64], m: &[f64]| x.iter().zip(m).filter(|(xi, _)| **xi > 0.0).map(|(xi, mi)| xi * (xi / mi).log2()).sum::<f64>();
    let m: Vec<f64> = p.iter().zip(&q).map(|(x, y)| 0.5 * (x + y)).collect();
    0.5 * kl(&p, &m) + 0.5 * kl(&q, &m)
}

/// All metrics of `frames` (CA, Å, any frame of reference), superposed onto `initial`; with a
/// `reference` ensemble of the same residues, also the comparison. Pairwise RMSDs use at most
/// `max_pair_frames` evenly spaced frames per ensemble; `bonded` as in [`frame_validity`].
///
/// # Errors
/// [`EvalError::TooShort`] (no frames, < 3 residues), [`EvalError::LengthMismatch`] (residue
/// counts differ), [`EvalError::NonFinite`], superposition failures.
pub fn analyze(
    frames: &[Vec<Vec3>],
    initial: &[Vec3],
    reference: Option<&[Vec<Vec3>]>,
    max_pair_frames: usize,
    bonded: Option<&[bool]>,
) -> Result<TrajectoryReport, EvalError> {
    let fit = superpose_frames(frames, initial)?;
    let rmsd_to_initial: Vec<f64> = fit.iter().map(|f| rmsd_no_fit(f, initial)).collect();
    let valid = frame_validity(frames, bonded);
    let valid_frac = valid.iter().filter(|&&v| v).count() as f64 / valid.len().max(1) as f64;
    let own_rmsf = rmsf(&fit);
    let reference = match reference {
        None => None,
        Some(r) => {
            let rfit = superpose_frames(r, initial)?;
            let r_rmsf = rmsf(&rfit);
            let (mean, pcs, frac) = top2_pcs(&rfit);
            let (pa, pb) = (project(&rfit, &mean, &pcs), project(&fit, &mean, &pcs));
            let w2 = w2_exact(&pa, &pb);
            Some(ReferenceComparison {
                n_frames: r.len(),
                rmsf_pearson: pearson(&own_rmsf, &r_rmsf),
                rmsf: r_rmsf,
                pairwise_rmsd: distribution(pairwise_rmsd(&rfit, max_pair_frames), 20),
                pc_variance_frac: frac,
                pca_w2: w2,
                pca_w2_scaled: w2 * 10.0 / (initial.len() as f64).sqrt(),
                pca_jsd: jsd_2d(&pa, &pb, PCA_BINS),
            })
        }
    };
    Ok(TrajectoryReport {
        n_frames: frames.len(),
        n_residues: initial.len(),
        rmsf: own_rmsf,
        pairwise_rmsd: distribution(pairwise_rmsd(&fit, max_pair_frames), 20),
        valid,
        valid_frac,
        rmsd_to_initial,
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protforge_se3::{Rigid, Rotation};
    use rand::{Rng, SeedableRng};

    fn helix(n: usize) -> Vec<Vec3> {
        (0..n).map(|i| {
            let a = i as f64 * 100f64.to_radians();
            Vec3::new(2.3 * a.cos(), 2.3 * a.sin(), 1.5 * i as f64)
        }).collect()
    }

    /// Frames: the helix with residue-dependent Gaussian noise (σ_i grows along the chain),
    /// each under a random rigid motion.
    fn ensemble(n_frames: usize, scale: f64, seed: u64) -> Vec<Vec<Vec3>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let base = helix(20);
        (0..n_frames)
            .map(|_| {
                let g = Rigid::new(
                    Rotation::from_axis_angle(&Vec3::new(rng.random(), rng.random(), rng.random::<f64>() + 0.1), rng.random::<f64>() * 3.0).unwrap(),
                    Vec3::new(rng.random::<f64>() * 10.0, 0.0, -5.0),
                );
                base.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let s = scale * (0.05 + 0.02 * i as f64);
                        let noise = Vec3::new(rng.sample::<f64, _>(rand_distr::StandardNormal), rng.sample::<f64, _>(rand_distr::StandardNormal), rng.sample::<f64, _>(rand_distr::StandardNormal));
                        g.apply(p + noise * s)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn rmsf_is_invariant_to_rigid_motions_and_tracks_the_noise_profile() {
        let frames = ensemble(200, 1.0, 1);
        let r = analyze(&frames, &helix(20), None, 100, None).unwrap();
        // Noise grows along the chain: RMSF correlates with the residue index.
        let idx: Vec<f64> = (0..20).map(f64::from).collect();
        assert!(pearson(&r.rmsf, &idx) > 0.9, "{:?}", r.rmsf);
        assert!(r.rmsd_to_initial.iter().all(|&d| d < 1.5));
        // Noise of σ up to 0.43 Å per coordinate stretches some CA–CA bonds past 4.2 Å.
        assert!(r.valid_frac < 1.0);
        assert_eq!(analyze(&[helix(20)], &helix(20), None, 10, None).unwrap().valid_frac, 1.0);
        assert!(r.pairwise_rmsd.mean > 0.1 && r.pairwise_rmsd.mean < 1.5);
    }

    #[test]
    fn same_distribution_scores_better_than_a_different_one() {
        let init = helix(20);
        let reference = ensemble(150, 1.0, 2);
        let same = analyze(&ensemble(150, 1.0, 3), &init, Some(&reference), 100, None).unwrap().reference.unwrap();
        let wider = analyze(&ensemble(150, 3.0, 4), &init, Some(&reference), 100, None).unwrap().reference.unwrap();
        assert!(same.rmsf_pearson > 0.8);
        assert!(same.pca_w2 < wider.pca_w2, "{} vs {}", same.pca_w2, wider.pca_w2);
        assert!(same.pca_jsd < wider.pca_jsd, "{} vs {}", same.pca_jsd, wider.pca_jsd);
        assert!((0.0..=1.0).contains(&same.pca_jsd));
    }

    #[test]
    fn validity_flags_clashes_and_breaks() {
        let mut f = helix(10);
        assert_eq!(frame_validity(&[f.clone()], None), vec![true]);
        f[9] = f[8] + Vec3::new(5.0, 0.0, 0.0);
        assert_eq!(frame_validity(&[f.clone()], None), vec![false]);
        // A gap in the input (residues 8 and 9 not bonded) is not a break.
        let mut bonded = vec![true; 9];
        bonded[8] = false;
        assert_eq!(frame_validity(&[f.clone()], Some(&bonded)), vec![true]);
        let mut g = helix(10);
        g[5] = g[2] + Vec3::new(0.5, 0.0, 0.0);
        assert_eq!(frame_validity(&[g], None), vec![false]);
    }

    #[test]
    fn hungarian_finds_the_optimum() {
        let cost = vec![vec![4.0, 1.0, 3.0], vec![2.0, 0.0, 5.0], vec![3.0, 2.0, 2.0]];
        let a = hungarian(&cost);
        let total: f64 = a.iter().enumerate().map(|(r, &c)| cost[r][c]).sum();
        assert_eq!(total, 5.0, "{a:?}");
        // Brute force on random 6×6 matrices.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..20 {
            let c: Vec<Vec<f64>> = (0..6).map(|_| (0..6).map(|_| rng.random::<f64>()).collect()).collect();
            let a = hungarian(&c);
            let got: f64 = a.iter().enumerate().map(|(r, &k)| c[r][k]).sum();
            let mut best = f64::INFINITY;
            let mut perm: Vec<usize> = (0..6).collect();
            permute(&mut perm, 0, &c, &mut best);
            assert!((got - best).abs() < 1e-12, "{got} vs {best}");
        }
    }

    fn permute(p: &mut Vec<usize>, k: usize, c: &[Vec<f64>], best: &mut f64) {
        if k == p.len() {
            *best = best.min(p.iter().enumerate().map(|(r, &j)| c[r][j]).sum());
            return;
        }
        for i in k..p.len() {
            p.swap(k, i);
            permute(p, k + 1, c, best);
            p.swap(k, i);
        }
    }

    #[test]
    fn w2_of_shifted_sets_is_the_shift() {
        let a: Vec<[f64; 2]> = (0..50).map(|i| [f64::from(i), f64::from(i % 7)]).collect();
        let b: Vec<[f64; 2]> = a.iter().map(|p| [p[0] + 3.0, p[1] - 4.0]).collect();
        assert!((w2_exact(&a, &b) - 5.0).abs() < 1e-9);
        assert!(jsd_2d(&a, &a, 10) < 1e-12);
    }

    #[test]
    fn bad_input_is_an_error() {
        let init = helix(20);
        assert!(analyze(&[], &init, None, 10, None).is_err());
        assert!(analyze(&[helix(19)], &init, None, 10, None).is_err());
        let mut bad = helix(20);
        bad[3].x = f64::NAN;
        assert!(analyze(&[bad], &init, None, 10, None).is_err());
    }
}
