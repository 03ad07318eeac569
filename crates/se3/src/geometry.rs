//! Ideal peptide geometry (Å, radians) and atom placement.
//!
//! Bond lengths and angles are the Engh & Huber (1991) values,
//! "Accurate bond and angle parameters for X-ray protein structure refinement",
//! Acta Cryst. A47, 392–400 (Table 3, non-Gly/non-Pro residues), the same values used by
//! AlphaFold 2's `residue_constants` for the backbone.
//!
//! Local coordinates are given in the backbone frame of [`crate::Rigid::from_three_points`]
//! (OpenFold `from_3_points(N, CA, C)` convention: CA at the origin, N on the −x axis, C in
//! the xy plane with y > 0). Rebuilding N and C from a frame is `frame.apply(IDEAL_N_LOCAL)`;
//! O needs the next residue's N and is placed with [`place_oxygen`].

use crate::Vec3;

/// N–CA bond length (Å), Engh & Huber 1991.
pub const BOND_N_CA: f64 = 1.458;
/// CA–C bond length (Å), Engh & Huber 1991.
pub const BOND_CA_C: f64 = 1.525;
/// Peptide C–N bond length (Å), Engh & Huber 1991.
pub const BOND_C_N: f64 = 1.329;
/// Carbonyl C=O bond length (Å), Engh & Huber 1991.
pub const BOND_C_O: f64 = 1.231;

/// N–CA–C angle τ (radians) = 111.2°, Engh & Huber 1991.
pub const ANGLE_N_CA_C: f64 = 111.2 * std::f64::consts::PI / 180.0;
/// CA–C–N angle (radians) = 116.2°, Engh & Huber 1991.
pub const ANGLE_CA_C_N: f64 = 116.2 * std::f64::consts::PI / 180.0;
/// C–N–CA angle (radians) = 121.7°, Engh & Huber 1991.
pub const ANGLE_C_N_CA: f64 = 121.7 * std::f64::consts::PI / 180.0;
/// CA–C=O angle (radians) = 120.1°, Engh & Huber 1991.
pub const ANGLE_CA_C_O: f64 = 120.1 * std::f64::consts::PI / 180.0;
/// O=C–N angle (radians) = 122.7°, Engh & Huber 1991.
pub const ANGLE_O_C_N: f64 = 122.7 * std::f64::consts::PI / 180.0;

/// Consecutive CA–CA distance across a trans peptide (Å), the standard 3.80 Å virtual bond.
pub const CA_CA_TRANS: f64 = 3.80;
/// Consecutive CA–CA distance across a cis peptide (Å), ≈ 2.8 Å (2.77 Å with the ideal
/// values of this module; observed cis-Pro peptides are ≈ 2.8–2.9 Å).
pub const CA_CA_CIS: f64 = 2.80;
/// ω of a trans peptide (radians).
pub const OMEGA_TRANS: f64 = std::f64::consts::PI;

/// Ideal α-helix φ (radians) = −57°.
pub const HELIX_PHI: f64 = -57.0 * std::f64::consts::PI / 180.0;
/// Ideal α-helix ψ (radians) = −47°.
pub const HELIX_PSI: f64 = -47.0 * std::f64::consts::PI / 180.0;

/// Ideal N in the backbone frame (Å): `(−|N–CA|, 0, 0)`.
pub const IDEAL_N_LOCAL: [f64; 3] = [-BOND_N_CA, 0.0, 0.0];
/// Ideal CA in the backbone frame (Å): the origin.
pub const IDEAL_CA_LOCAL: [f64; 3] = [0.0, 0.0, 0.0];
/// Ideal C in the backbone frame (Å): `|CA–C| (cos(π − τ), sin(π − τ), 0)` with τ = N–CA–C.
pub const IDEAL_C_LOCAL: [f64; 3] = [0.551_477_469_375_190_9, 1.421_793_796_853_656, 0.0];

/// [`IDEAL_N_LOCAL`], [`IDEAL_CA_LOCAL`], [`IDEAL_C_LOCAL`] as vectors (Å).
#[must_use]
pub fn ideal_backbone_local() -> [Vec3; 3] {
    [
        Vec3::from(IDEAL_N_LOCAL),
        Vec3::from(IDEAL_CA_LOCAL),
        Vec3::from(IDEAL_C_LOCAL),
    ]
}

/// Place atom `d` from three reference atoms (NeRF; Parsons et al. 2005, J. Comput. Chem. 26, 1063):
/// `|c − d| = bond` (Å), angle `b–c–d = angle` (radians), `dihedral(a, b, c, d) = torsion`
/// (radians, IUPAC sign as in [`crate::dihedral::dihedral`]).
///
/// Degenerate (collinear) `a, b, c` give a non-finite result.
#[must_use]
pub fn place_atom(a: Vec3, b: Vec3, c: Vec3, bond: f64, angle: f64, torsion: f64) -> Vec3 {
    let bc = (c - b).normalize();
    let n = (b - a).cross(&bc).normalize();
    let m = n.cross(&bc);
    let d_local = Vec3::new(
        -bond * angle.cos(),
        bond * angle.sin() * torsion.cos(),
        bond * angle.sin() * torsion.sin(),
    );
    c + bc * d_local.x + m * d_local.y + n * d_local.z
}

/// Carbonyl O of residue i from CAᵢ, Cᵢ and Nᵢ₊₁ (Å): in the peptide plane, at
/// [`BOND_C_O`] from C with angle CA–C–O = [`ANGLE_CA_C_O`], trans to Nᵢ₊₁ about CA–C.
#[must_use]
pub fn place_oxygen(ca: Vec3, c: Vec3, n_next: Vec3) -> Vec3 {
    place_atom(n_next, ca, c, BOND_C_O, ANGLE_CA_C_O, std::f64::consts::PI)
}

/// Build an ideal-geometry backbone (N, CA, C, O per residue, Å) from torsions (radians).
///
/// `phi[0]` is unused; `psi[i]` and `omega[i]` place residue i+1 (ω attached to the residue
/// before the peptide bond, as in [`crate::dihedral::backbone_dihedrals`]). The first residue
/// is in the ideal local frame. The last O is placed with ψ = `psi[last]`.
/// Slices shorter than `n_res` are padded with the helix values and trans ω.
#[must_use]
pub fn build_backbone(n_res: usize, phi: &[f64], psi: &[f64], omega: &[f64]) -> Vec<[Vec3; 4]> {
    let get = |s: &[f64], i: usize, d: f64| s.get(i).copied().unwrap_or(d);
    let mut out: Vec<[Vec3; 4]> = Vec::with_capacity(n_res);
    if n_res == 0 {
        return out;
    }
    let [n0, ca0, c0] = ideal_backbone_local();
    let mut prev = [n0, ca0, c0];
    let mut atoms: Vec<[Vec3; 3]> = vec![prev];
    for i in 1..n_res {
        let [pn, pca, pc] = prev;
        let n = place_atom(
            pn,
            pca,
            pc,
            BOND_C_N,
            ANGLE_CA_C_N,
            get(psi, i - 1, HELIX_PSI),
        );
        let ca = place_atom(
            pca,
            pc,
            n,
            BOND_N_CA,
            ANGLE_C_N_CA,
            get(omega, i - 1, OMEGA_TRANS),
        );
        let c = place_atom(pc, n, ca, BOND_CA_C, ANGLE_N_CA_C, get(phi, i, HELIX_PHI));
        prev = [n, ca, c];
        atoms.push(prev);
    }
    for i in 0..n_res {
        let [n, ca, c] = atoms[i];
        let o = if i + 1 < n_res {
            place_oxygen(ca, c, atoms[i + 1][0])
        } else {
            let psi_last = get(psi, i, HELIX_PSI);
            place_atom(
                n,
                ca,
                c,
                BOND_C_O,
                ANGLE_CA_C_O,
                psi_last + std::f64::consts::PI,
            )
        };
        out.push([n, ca, c, o]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rigid;

    fn angle(a: Vec3, b: Vec3, c: Vec3) -> f64 {
        (a - b).angle(&(c - b))
    }

    #[test]
    fn ideal_local_coordinates_match_the_constants() {
        let [n, ca, c] = ideal_backbone_local();
        assert!(((n - ca).norm() - BOND_N_CA).abs() < 1e-12);
        assert!(((c - ca).norm() - BOND_CA_C).abs() < 1e-12);
        assert!((angle(n, ca, c) - ANGLE_N_CA_C).abs() < 1e-12);
        // and they are in the frame of from_three_points: that frame is the identity
        let f = Rigid::from_three_points(n, ca, c).unwrap();
        assert!((f.rot.matrix() - nalgebra::Matrix3::identity()).abs().max() < 1e-12);
    }

    #[test]
    fn built_backbone_has_ideal_bonds_angles_and_ca_spacing() {
        let bb = build_backbone(8, &[-1.2; 8], &[2.1; 8], &[OMEGA_TRANS; 8]);
        for i in 0..8 {
            let [n, ca, c, o] = bb[i];
            assert!(((ca - n).norm() - BOND_N_CA).abs() < 1e-9);
            assert!(((c - ca).norm() - BOND_CA_C).abs() < 1e-9);
            assert!(((o - c).norm() - BOND_C_O).abs() < 1e-9);
            assert!((angle(n, ca, c) - ANGLE_N_CA_C).abs() < 1e-9);
            assert!((angle(ca, c, o) - ANGLE_CA_C_O).abs() < 1e-9);
            if i + 1 < 8 {
                let [nn, nca, _, _] = bb[i + 1];
                assert!(((nn - c).norm() - BOND_C_N).abs() < 1e-9);
                assert!((angle(ca, c, nn) - ANGLE_CA_C_N).abs() < 1e-9);
                assert!((angle(c, nn, nca) - ANGLE_C_N_CA).abs() < 1e-9);
                // O is in the peptide plane, and O=C–N ≈ 122.7° (EH91 angles at C sum to 359°)
                let plane = crate::dihedral::dihedral(o, ca, c, nn);
                assert!((plane.abs() - std::f64::consts::PI).abs() < 1e-9);
                assert!((angle(o, c, nn) - ANGLE_O_C_N).abs() < 1.5f64.to_radians());
                // trans peptide CA–CA virtual bond
                assert!(
                    ((nca - ca).norm() - CA_CA_TRANS).abs() < 0.03,
                    "{}",
                    (nca - ca).norm()
                );
            }
        }
        let cis = build_backbone(2, &[], &[2.1], &[0.0]);
        let d = (cis[1][1] - cis[0][1]).norm();
        assert!((d - CA_CA_CIS).abs() < 0.05, "cis CA–CA {d}");
    }
}
