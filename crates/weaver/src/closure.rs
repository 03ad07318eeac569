//! Linker closure: the smallest movement of the linker residues that gives them real chain
//! geometry while every domain residue stays where the sampler placed it.
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
    fn closure_rejects_bad_input() {
        let (mut ca, dom) = layout();
        assert!(matches!(close_linkers(&ca[..10], &dom), Err(WeaverError::BadLayout(_))));
        ca[22] = Vec3::new(f64::NAN, 0.0, 0.0);
        assert!(matches!(close_linkers(&ca, &dom), Err(WeaverError::NonFinite { index: 22, .. })));
    }
}
