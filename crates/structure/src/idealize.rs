//! CA-trace idealisation: the smallest-move correction of a generated CA trace to real
//! chain geometry before it is written or completed to N/CA/C/O.
//!
//! A generated trace (PAR samples CA coordinates with a learned velocity field) carries
//! model error: virtual bonds that are a few tenths of an Å off, and occasionally two
//! residues too close. Downstream tools (ProteinMPNN, DSSP, the backbone rebuild of
//! [`crate::rebuild`]) assume real geometry, so the trace is corrected by iterative constraint
//! projection (Gauss–Seidel sweeps of pairwise distance projections, as in SHAKE
//! (Ryckaert et al. 1977) and position-based dynamics (Müller et al. 2007)):
//!
//! - **virtual bond** `|x_{i+1} − x_i| = bond` (equality, default 3.80 Å: the median of
//!   real chains),
//! - **virtual angle** `|x_{i+2} − x_i| ≥ min_i_i2` (default 4.90 Å: the 0.1st percentile of
//!   the validation chains, i.e. a CA–CA–CA angle of at least ≈ 80°),
//! - **excluded volume** `|x_j − x_i| ≥ min_nonlocal` for `|i − j| ≥ 3` (default 4.0 Å; on the
//!   validation chains 99.99 % of such pairs are farther apart).
//!
//! Each projection moves the two residues along their separation vector by the least amount
//! that satisfies the constraint, split by inverse mass: residues marked fixed (a motif)
//! never move, and pairs of two fixed residues are left as they are (a motif's own geometry
//! is the user's). Sweeps stop when the largest violation is below `tolerance`. The result
//! records how far the trace moved (RMSD, no superposition: the correction is local), which is
//! the honest measure of how far the raw sample was from valid.
//!
//! Coordinates in Å.

use protforge_se3::Vec3;
use serde::{Deserialize, Serialize};

/// Why [`idealize_ca`] refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdealizeError {
    /// A coordinate is NaN or infinite.
    #[error("idealize: residue {0} has non-finite coordinates")]
    NonFinite(usize),
    /// The `fixed` mask does not have one entry per residue.
    #[error("idealize: fixed mask has {mask} entries for {residues} residues")]
    MaskLength {
        /// Entries in the mask.
        mask: usize,
        /// Residues in the trace.
        residues: usize,
    },
    /// A target distance or the tolerance is not a positive number.
    #[error("idealize: distances and tolerance must be positive numbers ({0})")]
    BadParams(String),
}

/// Constraint targets and iteration limits of [`idealize_ca`] (all distances in Å).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IdealizeParams {
    /// Target CA–CA virtual bond length.
    pub bond: f64,
    /// Smallest allowed CA(i)–CA(i+2) distance.
    pub min_i_i2: f64,
    /// Smallest allowed distance between CAs at least 3 apart in sequence.
    pub min_nonlocal: f64,
    /// Largest number of Gauss–Seidel sweeps.
    pub max_sweeps: usize,
    /// Stop when every constraint is violated by less than this.
    pub tolerance: f64,
}

impl Default for IdealizeParams {
    fn default() -> Self {
        Self { bond: 3.80, min_i_i2: 4.90, min_nonlocal: 4.0, max_sweeps: 2000, tolerance: 0.005 }
    }
}

/// What [`idealize_ca`] did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IdealizeReport {
    /// Sweeps run.
    pub sweeps: usize,
    /// Whether every constraint ended within `tolerance`.
    pub converged: bool,
    /// Largest constraint violation before (Å).
    pub max_violation_before: f64,
    /// Largest constraint violation after (Å).
    pub max_violation_after: f64,
    /// RMSD between the input and the output trace (Å, no superposition).
    pub rmsd_moved: f64,
}

/// A pair constraint: `Equal` (bond) or `AtLeast` (angle, excluded volume).
#[derive(Clone, Copy)]
enum Kind {
    Equal,
    AtLeast,
}

/// Signed violation of a pair constraint at distance `d` (0 when satisfied).
fn violation(kind: Kind, d: f64, target: f64) -> f64 {
    match kind {
        Kind::Equal => d - target,
        Kind::AtLeast => (d - target).min(0.0),
    }
}

/// Project the pair `(a, b)` onto its constraint; returns the violation before the move.
/// `w` are inverse masses (0 = fixed). Coincident points are pulled apart along a direction
/// fixed by the indices (deterministic).
fn project(x: &mut [Vec3], w: &[f64], a: usize, b: usize, kind: Kind, target: f64) -> f64 {
    let delta = x[b] - x[a];
    let d = delta.norm();
    let v = violation(kind, d, target);
    let wsum = w[a] + w[b];
    if v == 0.0 || wsum == 0.0 {
        return if wsum == 0.0 { 0.0 } else { v };
    }
    let dir = if d > 1e-9 {
        delta / d
    } else {
        let k = (a * 7 + b * 13) as f64;
        Vec3::new(k.cos(), k.sin(), 0.5).normalize()
    };
    let corr = dir * (v / wsum);
    x[a] += corr * w[a];
    x[b] -= corr * w[b];
    v
}

/// Largest constraint violation of a trace (pairs of two fixed residues excluded); bond `i`
/// (residues `i`, `i + 1`) has target length `bonds[i]`.
fn max_violation(x: &[Vec3], w: &[f64], bonds: &[f64], p: &IdealizeParams) -> f64 {
    let n = x.len();
    let mut worst: f64 = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            if w[i] + w[j] == 0.0 {
                continue;
            }
            let (kind, target) = match j - i {
                1 => (Kind::Equal, bonds[i]),
                2 => (Kind::AtLeast, p.min_i_i2),
                _ => (Kind::AtLeast, p.min_nonlocal),
            };
            worst = worst.max(violation(kind, (x[j] - x[i]).norm(), target).abs());
        }
    }
    worst
}

/// Largest violation (Å) of the constraints [`idealize_ca_with_bonds`] enforces, without
/// moving anything: bond `i` (residues `i`, `i + 1`) against `bonds[i]`, CA(i)–CA(i+2) against
/// `params.min_i_i2` and farther pairs against `params.min_nonlocal`. Equals the
/// `max_violation_before` of an idealisation with no fixed residues.
///
/// # Errors
/// [`IdealizeError::BadParams`] for a `bonds` list of the wrong length.
pub fn ca_violation(ca: &[Vec3], bonds: &[f64], params: &IdealizeParams) -> Result<f64, IdealizeError> {
    if bonds.len() != ca.len().saturating_sub(1) {
        return Err(IdealizeError::BadParams(format!("{} bond targets for {} residues", bonds.len(), ca.len())));
    }
    Ok(max_violation(ca, &vec![1.0; ca.len()], bonds, params))
}

/// Idealise a single-chain CA trace (Å, consecutive residues bonded) by constraint projection;
/// see the module docs. `fixed[i]` keeps residue `i` in place (empty = none fixed).
///
/// # Errors
/// [`IdealizeError`] for non-finite coordinates, invalid parameters or a `fixed` mask of the
/// wrong length.
pub fn idealize_ca(ca: &[Vec3], fixed: &[bool], params: &IdealizeParams) -> Result<(Vec<Vec3>, IdealizeReport), IdealizeError> {
    idealize_ca_with_bonds(ca, fixed, &vec![params.bond; ca.len().saturating_sub(1)], params)
}

/// [`idealize_ca`] with one target length per virtual bond (`bonds[i]` for residues `i`,
/// `i + 1`; `params.bond` is not used): keeps a known chain's own bonds, e.g. the ≈ 2.9 Å of a
/// cis peptide, which the single 3.80 Å target would stretch.
///
/// # Errors
/// As [`idealize_ca`], and [`IdealizeError::BadParams`] for a `bonds` list of the wrong length
/// or with a non-positive entry.
pub fn idealize_ca_with_bonds(
    ca: &[Vec3],
    fixed: &[bool],
    bonds: &[f64],
    params: &IdealizeParams,
) -> Result<(Vec<Vec3>, IdealizeReport), IdealizeError> {
    if bonds.len() != ca.len().saturating_sub(1) || bonds.iter().any(|b| !(b.is_finite() && *b > 0.0)) {
        return Err(IdealizeError::BadParams(format!("{} bond targets for {} residues", bonds.len(), ca.len())));
    }
    if !fixed.is_empty() && fixed.len() != ca.len() {
        return Err(IdealizeError::MaskLength { mask: fixed.len(), residues: ca.len() });
    }
    if let Some(i) = ca.iter().position(|p| !(p.x.is_finite() && p.y.is_finite() && p.z.is_finite())) {
        return Err(IdealizeError::NonFinite(i));
    }
    let p = params;
    let positive = [p.bond, p.min_i_i2, p.min_nonlocal, p.tolerance];
    if positive.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(IdealizeError::BadParams(format!("{p:?}")));
    }
    let n = ca.len();
    let w: Vec<f64> = (0..n).map(|i| if fixed.get(i).copied().unwrap_or(false) { 0.0 } else { 1.0 }).collect();
    let mut x = ca.to_vec();
    let before = max_violation(&x, &w, bonds, p);
    let mut sweeps = 0;
    let mut worst = before;
    // Excluded-volume candidates are pairs within `min_nonlocal + margin`; the list is rebuilt
    // whenever the trace may have moved by more than half the margin since it was built.
    let margin = 2.0;
    let cutoff2 = (p.min_nonlocal + margin).powi(2);
    let mut near: Vec<(usize, usize)> = Vec::new();
    let mut anchor = x.clone();
    let mut stale = true;
    while worst >= p.tolerance && sweeps < p.max_sweeps {
        if stale {
            near.clear();
            for i in 0..n {
                for j in i + 3..n {
                    if w[i] + w[j] > 0.0 && (x[j] - x[i]).norm_squared() < cutoff2 {
                        near.push((i, j));
                    }
                }
            }
            anchor.clone_from(&x);
        }
        worst = 0.0;
        for (i, &bond) in bonds.iter().enumerate() {
            worst = worst.max(project(&mut x, &w, i, i + 1, Kind::Equal, bond).abs());
        }
        for i in 0..n.saturating_sub(2) {
            worst = worst.max(project(&mut x, &w, i, i + 2, Kind::AtLeast, p.min_i_i2).abs());
        }
        for &(i, j) in &near {
            worst = worst.max(project(&mut x, &w, i, j, Kind::AtLeast, p.min_nonlocal).abs());
        }
        sweeps += 1;
        stale = x.iter().zip(&anchor).any(|(a, b)| (a - b).norm() > margin / 2.0);
    }
    // The sweep maxima are measured before each projection; report the final state exactly.
    let after = max_violation(&x, &w, bonds, p);
    let rmsd = if n == 0 { 0.0 } else { (x.iter().zip(ca).map(|(a, b)| (a - b).norm_squared()).sum::<f64>() / n as f64).sqrt() };
    let report = IdealizeReport {
        sweeps,
        converged: after < p.tolerance,
        max_violation_before: before,
        max_violation_after: after,
        rmsd_moved: rmsd,
    };
    Ok((x, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ideal α-helix CA trace (rise 1.5 Å, 100° per residue, radius 2.3 Å).
    fn helix(n: usize) -> Vec<Vec3> {
        (0..n)
            .map(|i| {
                let a = (i as f64) * 100f64.to_radians();
                Vec3::new(2.3 * a.cos(), 2.3 * a.sin(), 1.5 * i as f64)
            })
            .collect()
    }

    /// Deterministic pseudo-random offsets in [-amp, amp]³.
    fn jitter(x: &[Vec3], amp: f64, seed: u64) -> Vec<Vec3> {
        let mut s = seed;
        let mut r = move || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * amp
        };
        x.iter().map(|p| p + Vec3::new(r(), r(), r())).collect()
    }

    fn check_geometry(x: &[Vec3], p: &IdealizeParams, tol: f64) {
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let d = (x[j] - x[i]).norm();
                match j - i {
                    1 => assert!((d - p.bond).abs() < tol, "bond {i}: {d}"),
                    2 => assert!(d > p.min_i_i2 - tol, "angle {i}: {d}"),
                    _ => assert!(d > p.min_nonlocal - tol, "pair {i},{j}: {d}"),
                }
            }
        }
    }

    #[test]
    fn per_bond_targets_keep_a_cis_peptide() {
        let mut h = jitter(&helix(12), 0.3, 5);
        let mut bonds = vec![3.8; 11];
        bonds[5] = 2.9;
        let p = IdealizeParams::default();
        let (x, rep) = idealize_ca_with_bonds(&h, &[], &bonds, &p).unwrap();
        assert!(rep.converged, "{rep:?}");
        assert_eq!(ca_violation(&h, &bonds, &p).unwrap(), rep.max_violation_before);
        assert!(ca_violation(&x, &bonds, &p).unwrap() < p.tolerance);
        assert!(ca_violation(&h, &bonds[1..], &p).is_err());
        for (i, b) in bonds.iter().enumerate() {
            assert!(((x[i + 1] - x[i]).norm() - b).abs() < 0.01, "bond {i}");
        }
        assert!(idealize_ca_with_bonds(&h, &[], &bonds[1..], &p).is_err());
        h.truncate(1);
        assert!(idealize_ca_with_bonds(&h, &[], &[], &p).unwrap().1.converged);
    }

    #[test]
    fn real_geometry_is_left_nearly_unchanged() {
        let h = helix(40);
        let p = IdealizeParams::default();
        let (x, rep) = idealize_ca(&h, &[], &p).unwrap();
        // This helix has bonds of 3.83 Å and CA(i)–CA(i+2) ≈ 5.4 Å: only the bonds change.
        assert!(rep.max_violation_before < 0.035, "{rep:?}");
        assert!(rep.rmsd_moved < 0.03, "{rep:?}");
        assert!(rep.converged);
        check_geometry(&x, &p, 0.01);
    }

    #[test]
    fn noisy_and_compressed_traces_are_repaired() {
        let p = IdealizeParams::default();
        for seed in 0..5 {
            // Shrunk by 35 % (bonds ≈ 2.5 Å, like an under-trained sampler) plus 0.6 Å noise.
            let bad: Vec<Vec3> = jitter(&helix(60), 0.6, seed).iter().map(|v| v * 0.65).collect();
            let (x, rep) = idealize_ca(&bad, &[], &p).unwrap();
            assert!(rep.max_violation_before > 1.0, "{rep:?}");
            assert!(rep.converged, "seed {seed}: {rep:?}");
            check_geometry(&x, &p, 0.01);
        }
    }

    #[test]
    fn fixed_residues_do_not_move() {
        let p = IdealizeParams::default();
        let bad: Vec<Vec3> = jitter(&helix(30), 0.8, 3).iter().map(|v| v * 0.8).collect();
        let fixed: Vec<bool> = (0..30).map(|i| (10..20).contains(&i)).collect();
        let (x, rep) = idealize_ca(&bad, &fixed, &p).unwrap();
        for i in 10..20 {
            assert_eq!(x[i], bad[i], "residue {i} moved");
        }
        assert!(rep.converged, "{rep:?}");
        // Constraints between a fixed and a free residue hold; fixed-fixed pairs are exempt.
        for i in 0..30 {
            for j in i + 1..30 {
                if fixed[i] && fixed[j] {
                    continue;
                }
                let d = (x[j] - x[i]).norm();
                match j - i {
                    1 => assert!((d - p.bond).abs() < 0.01),
                    2 => assert!(d > p.min_i_i2 - 0.01),
                    _ => assert!(d > p.min_nonlocal - 0.01),
                }
            }
        }
    }

    #[test]
    fn coincident_points_are_separated_and_results_are_deterministic() {
        let mut pts = helix(12);
        pts[5] = pts[4];
        pts[9] = pts[2];
        let p = IdealizeParams::default();
        let (a, ra) = idealize_ca(&pts, &[], &p).unwrap();
        let (b, _) = idealize_ca(&pts, &[], &p).unwrap();
        assert_eq!(a, b);
        assert!(ra.converged, "{ra:?}");
        check_geometry(&a, &p, 0.01);
    }

    #[test]
    fn bad_input_is_an_error() {
        let p = IdealizeParams::default();
        let mut h = helix(5);
        assert!(idealize_ca(&h, &[true; 4], &p).is_err());
        h[2].y = f64::NAN;
        assert!(idealize_ca(&h, &[], &p).is_err());
        let neg = IdealizeParams { bond: -1.0, ..p };
        assert!(idealize_ca(&helix(5), &[], &neg).is_err());
        assert!(idealize_ca(&[], &[], &p).unwrap().0.is_empty());
    }
}
