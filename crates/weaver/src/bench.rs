//! Re-assembly metrics and the random-placement baseline (issue 6, "what to report").
//!
//! A held-out native multi-domain chain is re-assembled from its own domains (with the linker
//! windows of [`crate::dataset`] freed). The assembly is compared with the native on CA atoms:
//!
//! - **global TM-score** with residue `i` ↔ residue `i` (`protforge_eval::tm::tm_score`,
//!   normalised by the native length); success is TM ≥ 0.5;
//! - **interface RMSD**: CA RMSD after superposition over the interface residues, those with a
//!   CA of another domain within [`INTERFACE_CUTOFF_ANG`] in the native (CAPRI's iRMSD on CA);
//! - **clash**: any CA pair with `|i − j| ≥ 3` closer than 3 Å; **linker validity**: every
//!   linker/junction CA–CA bond in [3.6, 4.0] Å and no threaded linker residue
//!   ([`crate::score`]).
//!
//! The **baseline** ([`random_placement`]) keeps every native domain, turns it by a uniformly
//! random rotation and puts domain `k` next to domain `k − 1` in a uniformly random direction,
//! at the smallest centre distance (from `0.8 (r_{k−1} + r_k)`, growing by 1 Å, `r` the
//! domain's radius of gyration ×1.3) at which no CA of it is within 4 Å of a CA already placed;
//! linker CAs are spaced evenly on the segment between the flanking domain termini.

use crate::WeaverError;
use crate::frames::ca_of;
use crate::sampler::AssemblyInput;
use crate::score::{ScoreConfig, score_assembly};
use protforge_eval::geometry::radius_of_gyration_points;
use protforge_se3::kabsch::superpose;
use protforge_se3::{Rigid, Rotation, Vec3};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// Native CA–CA distance (Å) within which residues of two domains form the interface.
pub const INTERFACE_CUTOFF_ANG: f64 = 10.0;

/// Smallest CA–CA distance (Å) between domains accepted by the baseline placement.
pub const BASELINE_MIN_GAP_ANG: f64 = 4.0;

/// Metrics of one re-assembled chain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reassembly {
    /// Global TM-score to the native (residue correspondence by index).
    pub tm: f64,
    /// Interface CA RMSD (Å); `None` when the native has no interface residues.
    pub interface_rmsd: Option<f64>,
    /// At least one CA clash.
    pub clash: bool,
    /// Linker bonds in range and no threading.
    pub linker_valid: bool,
}

/// Interface residues of a native chain (module docs).
#[must_use]
pub fn interface_residues(native_ca: &[Vec3], domain_of: &[Option<usize>]) -> Vec<usize> {
    let c2 = INTERFACE_CUTOFF_ANG * INTERFACE_CUTOFF_ANG;
    (0..native_ca.len())
        .filter(|&i| {
            domain_of[i].is_some_and(|a| {
                (0..native_ca.len()).any(|j| domain_of[j].is_some_and(|b| b != a) && (native_ca[i] - native_ca[j]).norm_squared() < c2)
            })
        })
        .collect()
}

/// Compare an assembly with the native (module docs). `domain_of` is the layout (None =
/// linker) shared by both.
///
/// # Errors
/// [`WeaverError::BadLayout`] for different lengths; TM-score and geometry errors.
pub fn reassembly_metrics(native: &[Rigid], assembly: &[Rigid], domain_of: &[Option<usize>]) -> Result<Reassembly, WeaverError> {
    if native.len() != assembly.len() || native.len() != domain_of.len() {
        return Err(WeaverError::BadLayout(format!("native {}, assembly {}, layout {} residues", native.len(), assembly.len(), domain_of.len())));
    }
    let (nat, asm) = (ca_of(native), ca_of(assembly));
    let tm = protforge_eval::tm::tm_score(&asm, &nat)?.tm;
    let iface = interface_residues(&nat, domain_of);
    let interface_rmsd = if iface.len() >= 3 {
        let a: Vec<Vec3> = iface.iter().map(|&i| asm[i]).collect();
        let n: Vec<Vec3> = iface.iter().map(|&i| nat[i]).collect();
        Some(superpose(&a, &n)?.rmsd)
    } else {
        None
    };
    let s = score_assembly(&asm, domain_of, &ScoreConfig::default())?;
    Ok(Reassembly { tm, interface_rmsd, clash: s.n_clashes > 0, linker_valid: s.linker_bond_ok_frac == 1.0 && s.n_threaded == 0 })
}

/// A uniformly random unit vector (a normalised standard normal 3-vector).
fn unit_vector<R: Rng + ?Sized>(rng: &mut R) -> Vec3 {
    loop {
        let v = Vec3::new(rng.sample(StandardNormal), rng.sample(StandardNormal), rng.sample(StandardNormal));
        let n = v.norm();
        if n > 1e-9 {
            return v / n;
        }
    }
}

/// A uniformly random rotation (Shoemake's method through a random unit quaternion).
fn random_rotation<R: Rng + ?Sized>(rng: &mut R) -> Rotation {
    let (u1, u2, u3): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
    let tau = std::f64::consts::TAU;
    let q = [
        (1.0 - u1).sqrt() * (tau * u2).sin(),
        (1.0 - u1).sqrt() * (tau * u2).cos(),
        u1.sqrt() * (tau * u3).sin(),
        u1.sqrt() * (tau * u3).cos(),
    ];
    let q = if q[0] < 0.0 { q.map(|v| -v) } else { q };
    Rotation::from_quaternion(q).unwrap_or_else(|_| Rotation::identity())
}

/// The random-placement baseline of `input` (module docs); needs the input's domain frames.
///
/// # Errors
/// [`WeaverError::BadLayout`] if a domain residue has no input frame.
pub fn random_placement<R: Rng + ?Sized>(input: &AssemblyInput, rng: &mut R) -> Result<Vec<Rigid>, WeaverError> {
    let members = input.domain_members();
    let mut out: Vec<Option<Rigid>> = vec![None; input.len()];
    let mut placed: Vec<Vec3> = Vec::new();
    let mut prev: Option<(Vec3, f64)> = None;
    for idx in &members {
        let frames = idx
            .iter()
            .map(|&i| input.domain_frames[i])
            .collect::<Option<Vec<Rigid>>>()
            .ok_or_else(|| WeaverError::BadLayout("the baseline needs the input domain structures".into()))?;
        let ca = ca_of(&frames);
        let centre = ca.iter().sum::<Vec3>() / ca.len().max(1) as f64;
        let radius = 1.3 * radius_of_gyration_points(&ca);
        let rot = random_rotation(rng);
        let (target, mut dist, dir) = match prev {
            None => (Vec3::zeros(), 0.0, Vec3::zeros()),
            Some((c, r)) => (c, 0.8 * (r + radius), unit_vector(rng)),
        };
        let place = |d: f64| -> Vec<Rigid> {
            let g = Rigid::new(rot, target + dir * d - rot.apply(centre));
            frames.iter().map(|f| g.compose(f)).collect()
        };
        let mut moved = place(dist);
        while !placed.is_empty() && moved.iter().any(|f| placed.iter().any(|p| (f.trans - p).norm() < BASELINE_MIN_GAP_ANG)) {
            dist += 1.0;
            moved = place(dist);
        }
        placed.extend(moved.iter().map(|f| f.trans));
        for (&i, f) in idx.iter().zip(moved) {
            out[i] = Some(f);
        }
        prev = Some((target + dir * dist, radius));
    }
    // Linkers: evenly spaced CAs between the flanking placed residues.
    let n = out.len();
    let mut i = 0;
    while i < n {
        if out[i].is_some() {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && out[i].is_none() {
            i += 1;
        }
        let a = start.checked_sub(1).and_then(|k| out[k]).map(|f| f.trans);
        let b = out.get(i).copied().flatten().map(|f| f.trans);
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => (a, a + unit_vector(rng) * 3.8 * (i - start + 1) as f64),
            (None, Some(b)) => (b + unit_vector(rng) * 3.8 * (i - start + 1) as f64, b),
            (None, None) => (Vec3::zeros(), Vec3::new(3.8 * (i - start + 1) as f64, 0.0, 0.0)),
        };
        let m = (i - start + 1) as f64;
        for (k, slot) in out.iter_mut().enumerate().take(i).skip(start) {
            *slot = Some(Rigid::from_translation(a + (b - a) * ((k - start + 1) as f64 / m)));
        }
    }
    Ok(out.into_iter().map(|f| f.unwrap_or_else(Rigid::identity)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::helix;

    fn native() -> (Vec<Rigid>, Vec<Option<usize>>) {
        let mut ca = helix(20, 0.0);
        ca.extend(helix(20, 1.0).into_iter().rev().map(|p| p + Vec3::new(9.0, 0.0, 0.0)));
        let frames = ca.into_iter().map(Rigid::from_translation).collect();
        let labels = (0..40).map(|i| if (18..22).contains(&i) { None } else { Some(usize::from(i >= 20)) }).collect();
        (frames, labels)
    }

    #[test]
    fn the_native_scores_perfectly_and_the_baseline_does_not_clash() {
        let (nat, lab) = native();
        let m = reassembly_metrics(&nat, &nat, &lab).unwrap();
        assert!((m.tm - 1.0).abs() < 1e-9);
        assert!(m.interface_rmsd.unwrap() < 1e-6);
        let iface = interface_residues(&ca_of(&nat), &lab);
        assert!(!iface.is_empty() && iface.iter().all(|&i| lab[i].is_some()));
        let input = AssemblyInput::from_native(&nat, &lab).unwrap();
        for seed in 0..5 {
            let base = random_placement(&input, &mut protforge_flow::rng::seeded(seed)).unwrap();
            assert_eq!(base.len(), 40);
            let members = input.domain_members();
            let min_gap = members[0].iter().flat_map(|&i| members[1].iter().map(move |&j| (i, j))).map(|(i, j)| (base[i].trans - base[j].trans).norm()).fold(f64::MAX, f64::min);
            assert!(min_gap >= BASELINE_MIN_GAP_ANG, "seed {seed}: {min_gap}");
            // Domains stay rigid.
            let a: Vec<Vec3> = members[1].iter().map(|&i| base[i].trans).collect();
            let b: Vec<Vec3> = members[1].iter().map(|&i| nat[i].trans).collect();
            assert!(superpose(&a, &b).unwrap().rmsd < 1e-6);
            let mb = reassembly_metrics(&nat, &base, &lab).unwrap();
            assert!(mb.tm < 1.0);
        }
        assert!(reassembly_metrics(&nat, &nat[1..], &lab).is_err());
    }
}
