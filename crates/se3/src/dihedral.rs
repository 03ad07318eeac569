//! Dihedral (torsion) angles and backbone φ/ψ/ω.
//!
//! IUPAC-IUB 1970 convention (Biochemistry 9, 3471): looking along p1 → p2, the angle is
//! positive when the near bond p1−p0 must turn clockwise (≤ 180°) to eclipse the far bond
//! p2−p3. Result in radians, in `(−π, π]`. An α-helix has φ ≈ −57°, ψ ≈ −47°.

use crate::Vec3;

/// Dihedral angle (radians, `(−π, π]`) of the four points, IUPAC sign.
///
/// `atan2(|b₂| b₁·(b₂×b₃), (b₁×b₂)·(b₂×b₃))` with `bᵢ = pᵢ − pᵢ₋₁`. Returns NaN only for NaN
/// input; degenerate (collinear) input gives 0.
///
/// ```
/// use protforge_se3::{dihedral::dihedral, Vec3};
/// let d = dihedral(Vec3::new(1.0, 0.0, 0.0), Vec3::zeros(), Vec3::z(), Vec3::new(0.0, 1.0, 1.0));
/// assert!((d - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
/// ```
#[must_use]
pub fn dihedral(p0: Vec3, p1: Vec3, p2: Vec3, p3: Vec3) -> f64 {
    let b1 = p1 - p0;
    let b2 = p2 - p1;
    let b3 = p3 - p2;
    let n2 = b2.cross(&b3);
    let y = b2.norm() * b1.dot(&n2);
    let x = b1.cross(&b2).dot(&n2);
    y.atan2(x)
}

/// Backbone torsions per residue (radians). `None` where a neighbour is missing
/// (first residue's φ, last residue's ψ and ω).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dihedrals {
    /// φᵢ = dihedral(Cᵢ₋₁, Nᵢ, CAᵢ, Cᵢ).
    pub phi: Vec<Option<f64>>,
    /// ψᵢ = dihedral(Nᵢ, CAᵢ, Cᵢ, Nᵢ₊₁).
    pub psi: Vec<Option<f64>>,
    /// ωᵢ = dihedral(CAᵢ, Cᵢ, Nᵢ₊₁, CAᵢ₊₁) (the peptide bond after residue i; ≈ ±π for trans).
    pub omega: Vec<Option<f64>>,
}

/// φ, ψ, ω of a single chain given per-residue N, CA, C (Å).
///
/// Inputs must have equal length (the shortest length is used otherwise). The caller is
/// responsible for chain breaks: residues i and i+1 are assumed bonded. ω is attached to
/// the residue *before* the peptide bond (the mdtraj/DSSP convention puts it on the next
/// residue; shift by one if needed).
#[must_use]
pub fn backbone_dihedrals(n: &[Vec3], ca: &[Vec3], c: &[Vec3]) -> Dihedrals {
    let len = n.len().min(ca.len()).min(c.len());
    let mut out = Dihedrals {
        phi: Vec::with_capacity(len),
        psi: Vec::with_capacity(len),
        omega: Vec::with_capacity(len),
    };
    for i in 0..len {
        out.phi
            .push((i > 0).then(|| dihedral(c[i - 1], n[i], ca[i], c[i])));
        let has_next = i + 1 < len;
        out.psi
            .push(has_next.then(|| dihedral(n[i], ca[i], c[i], n[i + 1])));
        out.omega
            .push(has_next.then(|| dihedral(ca[i], c[i], n[i + 1], ca[i + 1])));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{HELIX_PHI, HELIX_PSI, build_backbone};
    use std::f64::consts::PI;

    #[test]
    fn sign_convention_cis_trans_and_clockwise() {
        let (p0, p1, p2) = (Vec3::new(1.0, 0.0, 0.0), Vec3::zeros(), Vec3::z());
        assert!(dihedral(p0, p1, p2, Vec3::new(1.0, 0.0, 1.0)).abs() < 1e-12); // cis
        assert!((dihedral(p0, p1, p2, Vec3::new(-1.0, 0.0, 1.0)).abs() - PI).abs() < 1e-12); // trans
        // Looking from p1 towards p2 (+z), turning x onto −y is counter-clockwise: negative.
        assert!((dihedral(p0, p1, p2, Vec3::new(0.0, -1.0, 1.0)) + PI / 2.0).abs() < 1e-12);
        // reversing the order of the four points keeps the sign
        let p3 = Vec3::new(0.3, 0.8, 1.4);
        assert!((dihedral(p0, p1, p2, p3) - dihedral(p3, p2, p1, p0)).abs() < 1e-12);
    }

    #[test]
    fn ideal_alpha_helix_is_right_handed_with_expected_geometry() {
        let n_res = 16;
        let bb = build_backbone(n_res, &[HELIX_PHI; 16], &[HELIX_PSI; 16], &[PI; 16]);
        let n: Vec<Vec3> = bb.iter().map(|r| r[0]).collect();
        let ca: Vec<Vec3> = bb.iter().map(|r| r[1]).collect();
        let c: Vec<Vec3> = bb.iter().map(|r| r[2]).collect();
        let d = backbone_dihedrals(&n, &ca, &c);
        assert_eq!(d.phi[0], None);
        assert_eq!(d.psi[n_res - 1], None);
        assert_eq!(d.omega[n_res - 1], None);
        for i in 1..n_res - 1 {
            assert!((d.phi[i].unwrap().to_degrees() + 57.0).abs() < 1e-6);
            assert!((d.psi[i].unwrap().to_degrees() + 47.0).abs() < 1e-6);
            assert!((d.omega[i].unwrap().abs() - PI).abs() < 1e-6);
        }
        // Independent checks of the sign convention: an α-helix (φ, ψ < 0) is right-handed,
        // with 3.6 residues per turn, 1.5 Å rise and i → i+4 C=O···H–N hydrogen bonds.
        for i in 0..n_res - 3 {
            let t = (ca[i + 1] - ca[i])
                .cross(&(ca[i + 2] - ca[i + 1]))
                .dot(&(ca[i + 3] - ca[i + 2]));
            assert!(t > 0.0, "left-handed at {i}");
            let ca_dih = dihedral(ca[i], ca[i + 1], ca[i + 2], ca[i + 3]).to_degrees();
            assert!((ca_dih - 50.0).abs() < 5.0, "CA pseudo-torsion {ca_dih}");
        }
        for i in 0..n_res - 4 {
            let d_on = (bb[i][3] - bb[i + 4][0]).norm();
            assert!((2.7..3.3).contains(&d_on), "O{i}···N{} = {d_on}", i + 4);
            let d3 = (ca[i] - ca[i + 3]).norm();
            assert!((4.8..5.5).contains(&d3), "CA{i}–CA{} = {d3}", i + 3);
        }
        // rise: projection of CA(i)→CA(i+18) (5 turns) over 18 residues
        let rise = (ca[15] - ca[0]).norm() / 15.0;
        assert!((1.4..1.6).contains(&rise), "rise {rise}");
    }

    #[test]
    fn extended_strand_torsions() {
        let phi = -120f64.to_radians();
        let psi = 130f64.to_radians();
        let bb = build_backbone(6, &[phi; 6], &[psi; 6], &[PI; 6]);
        let cols = |k: usize| bb.iter().map(|r| r[k]).collect::<Vec<_>>();
        let d = backbone_dihedrals(&cols(0), &cols(1), &cols(2));
        assert!((d.phi[3].unwrap() - phi).abs() < 1e-9 && (d.psi[3].unwrap() - psi).abs() < 1e-9);
        // β strand: CA(i)–CA(i+2) ≈ 6.4–7.0 Å
        let d2 = (bb[1][1] - bb[3][1]).norm();
        assert!((6.2..7.1).contains(&d2), "{d2}");
    }
}
