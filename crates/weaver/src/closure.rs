//! Post-sampling refinement of an assembly: rigid separation of overlapping domains, then
//! linker closure. Both are optional in `protforge assemble` and reported separately from the
//! raw samples in every benchmark.
//!
//! **Separation** ([`separate_domains`]): the sampler can place two domains so that they
//! interpenetrate. Like the "slide" move of rigid-body docking (RosettaDock, Gray et al. 2003),
//! the most-clashing domain pair is pushed apart along the line joining their CA centroids, each
//! by half a step of [`SEPARATION_STEP_ANG`], until no CA pair of two different domains is closer
//! than `min_dist` (default 4.0 Å, the idealiser's excluded-volume distance). Domains only
//! translate, so each stays an exact rigid copy of its input.
//!
//! **Linker closure** ([`close_linkers`]): the smallest movement of the linker residues that
//! gives them real chain geometry while every domain residue stays where it is.
//!
//! The sampler projects each domain onto a rigid copy of its input (`crate::sampler`), so
//! domain geometry is exact, but linker residues are the network's free prediction: their
//! CA–CA virtual bonds scatter around 3.8 Å (2–8 Å on CPU-trained weights) and they can run
//! through a domain. Closure runs the CA-trace idealiser of `protforge_structure::idealize`
//! with every domain residue fixed: linker bonds (including the two bonds that join a linker to
//! its domains) are projected to 3.80 Å, CA(i)–CA(i+2) to at least 4.9 Å and every other CA pair
//! involving a linker residue to at least 4.0 Å. Pairs of two domain residues are exempt, so a
//! clash *between* two domains is left as sampled (closure cannot move a domain).
//!
//! Coordinates in Å.

use crate::WeaverError;
use protforge_se3::Vec3;
use protforge_structure::idealize::{IdealizeParams, idealize_ca};
use serde::Serialize;

/// Translation per separation move (Å), split between the two domains of the pair.
pub const SEPARATION_STEP_ANG: f64 = 0.5;
/// Largest number of separation moves before [`separate_domains`] gives up (it then reports
/// the clashes that remain).
pub const SEPARATION_MAX_MOVES: usize = 400;

/// What [`separate_domains`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeparationReport {
    /// Translation applied to each domain (Å), in domain order.
    pub shifts: Vec<[f64; 3]>,
    /// Inter-domain CA pairs closer than `min_dist` before.
    pub close_pairs_before: usize,
    /// The same after (0 unless the move limit was reached).
    pub close_pairs_after: usize,
}

/// Inter-domain CA pairs closer than `min_dist`, per domain pair `(a, b)` with `a < b`.
fn close_pairs(ca: &[Vec3], members: &[Vec<usize>], min_dist: f64) -> Vec<((usize, usize), usize)> {
    let m2 = min_dist * min_dist;
    let mut out = Vec::new();
    for a in 0..members.len() {
        for b in a + 1..members.len() {
            let n = members[a].iter().map(|&i| members[b].iter().filter(|&&j| (ca[i] - ca[j]).norm_squared() < m2).count()).sum();
            if n > 0 {
                out.push(((a, b), n));
            }
        }
    }
    out
}

/// Push overlapping domains apart by rigid translations (module docs).
///
/// `ca`: `[L]` CA positions (Å); `domain_of`: `[L]`. Returns the moved trace (linker residues
/// unchanged: [`close_linkers`] reconnects them) and a report whose `shifts[d]` is the
/// translation of domain `d`.
///
/// # Errors
/// [`WeaverError::BadLayout`] when the lengths differ or `min_dist` is not positive;
/// [`WeaverError::NonFinite`] for a NaN or infinite coordinate.
pub fn separate_domains(ca: &[Vec3], domain_of: &[Option<usize>], min_dist: f64) -> Result<(Vec<Vec3>, SeparationReport), WeaverError> {
    if ca.len() != domain_of.len() {
        return Err(WeaverError::BadLayout(format!("domain separation: {} CA positions for a layout of {} residues", ca.len(), domain_of.len())));
    }
    if !(min_dist.is_finite() && min_dist > 0.0) {
        return Err(WeaverError::BadLayout(format!("domain separation: minimum distance must be positive, got {min_dist}")));
    }
    if let Some(index) = ca.iter().position(|p| !p.iter().all(|c| c.is_finite())) {
        return Err(WeaverError::NonFinite { context: "domain separation", index });
    }
    let n_domains = domain_of.iter().flatten().max().map_or(0, |&d| d + 1);
    let mut members = vec![Vec::new(); n_domains];
    for (i, d) in domain_of.iter().enumerate() {
        if let Some(d) = d {
            members[*d].push(i);
        }
    }
    let mut out = ca.to_vec();
    let mut shifts = vec![Vec3::zeros(); n_domains];
    let before: usize = close_pairs(&out, &members, min_dist).iter().map(|p| p.1).sum();
    let centroid = |x: &[Vec3], idx: &[usize]| idx.iter().fold(Vec3::zeros(), |acc, &i| acc + x[i]) / idx.len().max(1) as f64;
    for _ in 0..SEPARATION_MAX_MOVES {
        let pairs = close_pairs(&out, &members, min_dist);
        let Some(&((a, b), _)) = pairs.iter().max_by_key(|p| p.1) else { break };
        let axis = centroid(&out, &members[b]) - centroid(&out, &members[a]);
        // Coincident centroids: a fixed direction keeps the result deterministic.
        let dir = if axis.norm() > 1e-6 { axis.normalize() } else { Vec3::x() };
        let half = dir * (SEPARATION_STEP_ANG / 2.0);
        for &i in &members[a] {
            out[i] -= half;
        }
        for &i in &members[b] {
            out[i] += half;
        }
        shifts[a] -= half;
        shifts[b] += half;
    }
    let after = close_pairs(&out, &members, min_dist).iter().map(|p| p.1).sum();
    Ok((out, SeparationReport { shifts: shifts.iter().map(|s| [s.x, s.y, s.z]).collect(), close_pairs_before: before, close_pairs_after: after }))
}

/// What [`close_linkers`] did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClosureReport {
    /// Every constraint ended within the idealiser's tolerance.
    pub converged: bool,
    /// Largest constraint violation before closure (Å; domain–domain pairs excluded).
    pub max_violation_before: f64,
    /// Largest constraint violation after closure (Å).
    pub max_violation_after: f64,
    /// RMSD (Å, no superposition) between the sampled and the closed linker residues; 0 when
    /// there are no linkers.
    pub linker_rmsd_moved: f64,
}

/// Close the linkers of an assembled CA trace (module docs).
///
/// `ca`: `[L]` CA positions (Å); `domain_of`: `[L]`, `Some(d)` for a residue of domain `d`
/// (fixed), `None` for a linker residue (free). Returns the closed trace (domain residues
/// bit-identical to the input) and a report.
///
/// # Errors
/// [`WeaverError::BadLayout`] when the lengths differ; [`WeaverError::NonFinite`] for a NaN
/// or infinite coordinate.
pub fn close_linkers(ca: &[Vec3], domain_of: &[Option<usize>]) -> Result<(Vec<Vec3>, ClosureReport), WeaverError> {
    if ca.len() != domain_of.len() {
        return Err(WeaverError::BadLayout(format!("linker closure: {} CA positions for a layout of {} residues", ca.len(), domain_of.len())));
    }
    if let Some(index) = ca.iter().position(|p| !p.iter().all(|c| c.is_finite())) {
        return Err(WeaverError::NonFinite { context: "linker closure", index });
    }
    let fixed: Vec<bool> = domain_of.iter().map(Option::is_some).collect();
    let (closed, rep) = idealize_ca(ca, &fixed, &IdealizeParams::default()).map_err(|e| WeaverError::BadLayout(format!("linker closure: {e}")))?;
    let linkers: Vec<usize> = (0..ca.len()).filter(|&i| !fixed[i]).collect();
    let linker_rmsd_moved = if linkers.is_empty() {
        0.0
    } else {
        (linkers.iter().map(|&i| (closed[i] - ca[i]).norm_squared()).sum::<f64>() / linkers.len() as f64).sqrt()
    };
    Ok((
        closed,
        ClosureReport {
            converged: rep.converged,
            max_violation_before: rep.max_violation_before,
            max_violation_after: rep.max_violation_after,
            linker_rmsd_moved,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{ScoreConfig, score_assembly};

    /// Two α-helical domains of 20 residues (CA radius 2.3 Å, 100° and 1.5 Å per residue) whose
    /// ends are 18 Å apart, joined by an 8-residue linker placed on a zig-zag straight line:
    /// bonds far from 3.8 Å, but a closed linker exists (9 bonds span up to 34 Å).
    fn layout() -> (Vec<Vec3>, Vec<Option<usize>>) {
        let helix = |origin: Vec3| -> Vec<Vec3> {
            (0..20)
                .map(|i| {
                    let a = i as f64 * 100f64.to_radians();
                    origin + Vec3::new(2.3 * a.cos(), 2.3 * a.sin(), 1.5 * i as f64)
                })
                .collect()
        };
        let d1 = helix(Vec3::new(0.0, 0.0, 0.0));
        let d2 = helix(Vec3::new(15.0, 0.0, 30.0));
        let (a, b) = (d1[19], d2[0]);
        let linker: Vec<Vec3> = (1..=8)
            .map(|k| {
                let t = k as f64 / 9.0;
                a + (b - a) * t + Vec3::new(0.0, if k % 2 == 0 { 2.5 } else { -2.5 }, 0.0)
            })
            .collect();
        let ca: Vec<Vec3> = d1.into_iter().chain(linker).chain(d2).collect();
        let dom: Vec<Option<usize>> = (0..48).map(|i| if i < 20 { Some(0) } else if i < 28 { None } else { Some(1) }).collect();
        (ca, dom)
    }

    #[test]
    fn closure_fixes_linker_bonds_and_keeps_domains() {
        let (ca, dom) = layout();
        let cfg = ScoreConfig::default();
        let before = score_assembly(&ca, &dom, &cfg).unwrap();
        assert!(before.linker_bond_ok_frac < 0.5, "fixture should start with bad bonds ({})", before.linker_bond_ok_frac);
        let (closed, rep) = close_linkers(&ca, &dom).unwrap();
        assert!(rep.converged && rep.max_violation_after < 0.01, "{rep:?}");
        assert!(rep.linker_rmsd_moved > 0.1);
        for i in 0..48 {
            if dom[i].is_some() {
                assert_eq!(closed[i], ca[i], "domain residue {i} moved");
            }
        }
        let after = score_assembly(&closed, &dom, &cfg).unwrap();
        assert_eq!(after.linker_bond_ok_frac, 1.0);
    }

    #[test]
    fn separation_removes_overlap_by_translation_only() {
        let (ca, dom) = layout();
        // Move domain 2 into domain 1.
        let overlap: Vec<Vec3> = ca.iter().zip(&dom).map(|(p, d)| if *d == Some(1) { p - Vec3::new(13.0, 0.0, 28.0) } else { *p }).collect();
        let (moved, rep) = separate_domains(&overlap, &dom, 4.0).unwrap();
        assert!(rep.close_pairs_before > 0 && rep.close_pairs_after == 0, "{rep:?}");
        for i in 0..48 {
            match dom[i] {
                Some(d) => {
                    let s = rep.shifts[d];
                    assert!((moved[i] - overlap[i] - Vec3::new(s[0], s[1], s[2])).norm() < 1e-12, "residue {i} not moved rigidly");
                }
                None => assert_eq!(moved[i], overlap[i]),
            }
        }
        // No overlap: nothing moves.
        let (same, rep) = separate_domains(&ca, &dom, 4.0).unwrap();
        assert_eq!(same, ca);
        assert_eq!(rep.close_pairs_before, 0);
        assert!(separate_domains(&ca, &dom, 0.0).is_err());
    }

    #[test]
    fn closure_rejects_bad_input() {
        let (mut ca, dom) = layout();
        assert!(matches!(close_linkers(&ca[..10], &dom), Err(WeaverError::BadLayout(_))));
        ca[22] = Vec3::new(f64::NAN, 0.0, 0.0);
        assert!(matches!(close_linkers(&ca, &dom), Err(WeaverError::NonFinite { index: 22, .. })));
    }
}
