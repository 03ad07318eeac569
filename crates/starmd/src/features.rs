//! Geometry at the boundary of the network: backbone frames from N, CA, C, the backbone atoms
//! rebuilt from frames, the initial-frame features that condition every token, and centring.
//!
//! Coordinates are in Å here; the network converts to nm in one place ([`crate::model`]).

use crate::StarMdError;
use candle_core::{Device, Tensor};
use protforge_se3::geometry::{ANGLE_CA_C_O, BOND_C_O, IDEAL_C_LOCAL, IDEAL_N_LOCAL, place_atom, place_oxygen};
use protforge_se3::{Rigid, Vec3, backbone_dihedrals};
use protforge_structure::residue;

/// Number of per-residue initial-frame features: `sin, cos` of φ, ψ and ω (zeros where the
/// angle is undefined at a terminus).
pub const INIT_FEATURES: usize = 6;

/// Size of the amino-acid vocabulary: the 20 standard types plus unknown (AlphaFold order).
pub const AA_VOCAB: usize = residue::UNKNOWN as usize + 1;

fn v3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

fn f3(v: Vec3) -> [f32; 3] {
    // Narrowing to the f32 coordinates of the structure types.
    #[allow(clippy::cast_possible_truncation)]
    [v.x as f32, v.y as f32, v.z as f32]
}

/// Backbone frames (Å) of residues given as N, CA, C, O (Å): origin CA, OpenFold
/// `from_3_points(N, CA, C)` convention.
///
/// # Errors
/// [`StarMdError::Se3`] naming a degenerate residue (coincident or collinear N, CA, C).
pub fn backbone_frames(coords: &[[[f32; 3]; 4]]) -> Result<Vec<Rigid>, StarMdError> {
    coords.iter().map(|r| Ok(Rigid::from_three_points(v3(r[0]), v3(r[1]), v3(r[2]))?)).collect()
}

/// Frames moved so that their translations (CA atoms) have zero mean.
#[must_use]
pub fn centered(frames: &[Rigid]) -> Vec<Rigid> {
    if frames.is_empty() {
        return Vec::new();
    }
    let com = frames.iter().map(|r| r.trans).sum::<Vec3>() / frames.len() as f64;
    frames.iter().map(|r| Rigid::new(r.rot, r.trans - com)).collect()
}

/// Position of the carbonyl O of the last residue in its own frame (Å), used to rebuild the
/// last O of generated frames (no next residue fixes it). Falls back to the ideal position
/// for ψ = 180° when the residue has no O.
#[must_use]
pub fn last_oxygen_local(coords: &[[[f32; 3]; 4]], mask: &[[bool; 4]]) -> Vec3 {
    // ψ = 180° puts O cis to N about CA–C: dihedral N–CA–C–O = ψ + 180° = 0.
    let fallback =
        place_atom(Vec3::from(IDEAL_N_LOCAL), Vec3::zeros(), Vec3::from(IDEAL_C_LOCAL), BOND_C_O, ANGLE_CA_C_O, 0.0);
    let (Some(last), Some(m)) = (coords.last(), mask.last()) else { return fallback };
    if !m.iter().all(|&b| b) {
        return fallback;
    }
    match Rigid::from_three_points(v3(last[0]), v3(last[1]), v3(last[2])) {
        Ok(frame) => frame.apply_inverse(v3(last[3])),
        Err(_) => fallback,
    }
}

/// Backbone atoms N, CA, C, O (Å) from frames (Å): N and C at their ideal positions in each
/// frame (Engh & Huber), O placed in the peptide plane from CAᵢ, Cᵢ and Nᵢ₊₁; the last O at
/// `last_o_local` in its frame.
#[must_use]
pub fn atoms_from_frames(frames: &[Rigid], last_o_local: Vec3) -> Vec<[[f32; 3]; 4]> {
    let (n_local, c_local) = (Vec3::from(IDEAL_N_LOCAL), Vec3::from(IDEAL_C_LOCAL));
    let n: Vec<Vec3> = frames.iter().map(|f| f.apply(n_local)).collect();
    let c: Vec<Vec3> = frames.iter().map(|f| f.apply(c_local)).collect();
    (0..frames.len())
        .map(|i| {
            let ca = frames[i].trans;
            let o = match n.get(i + 1) {
                Some(&n_next) => place_oxygen(ca, c[i], n_next),
                None => frames[i].apply(last_o_local),
            };
            [f3(n[i]), f3(ca), f3(c[i]), f3(o)]
        })
        .collect()
}

/// Initial-frame features per residue: `[sin φ, cos φ, sin ψ, cos ψ, sin ω, cos ω]`
/// (radians; zeros where the angle is undefined).
#[must_use]
pub fn dihedral_features(coords: &[[[f32; 3]; 4]]) -> Vec<[f32; INIT_FEATURES]> {
    let pick = |k: usize| coords.iter().map(|r| v3(r[k])).collect::<Vec<_>>();
    let d = backbone_dihedrals(&pick(0), &pick(1), &pick(2));
    #[allow(clippy::cast_possible_truncation)]
    let sc = |a: Option<f64>| a.map_or([0.0, 0.0], |a| [a.sin() as f32, a.cos() as f32]);
    (0..coords.len())
        .map(|i| {
            let [a, b] = sc(d.phi[i]);
            let [c, e] = sc(d.psi[i]);
            let [f, g] = sc(d.omega[i]);
            [a, b, c, e, f, g]
        })
        .collect()
}

/// Static conditioning of a batch of proteins (all of the same length `N`): the residue
/// types and the features of an initial frame. The network turns it into token and pair
/// features once per batch or rollout ([`crate::model::StarMd::prepare`]).
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// Residue types `[B, N]` (u32, AlphaFold order, 20 = unknown).
    pub aatype: Tensor,
    /// Initial-frame dihedral features `[B, N, 6]` ([`dihedral_features`]).
    pub init_single: Tensor,
    /// Initial-frame CA positions `[B, N, 3]` (Å).
    pub init_ca: Tensor,
}

impl Conditioning {
    /// Conditioning from per-protein residue types and initial backbones (N, CA, C, O in Å).
    ///
    /// # Errors
    /// [`StarMdError::BadConfig`] for an empty batch or proteins of different lengths;
    /// candle errors.
    pub fn new(aatype: &[&[u8]], init: &[&[[[f32; 3]; 4]]], device: &Device) -> Result<Self, StarMdError> {
        let b = aatype.len();
        let n = aatype.first().map_or(0, |a| a.len());
        if b == 0
            || n == 0
            || init.len() != b
            || aatype.iter().any(|a| a.len() != n)
            || init.iter().any(|c| c.len() != n)
        {
            return Err(StarMdError::config("conditioning", format!("need {b} proteins of one positive length")));
        }
        let types: Vec<u32> =
            aatype.iter().flat_map(|a| a.iter().map(|&t| u32::from(t.min(residue::UNKNOWN)))).collect();
        let single: Vec<f32> = init.iter().flat_map(|c| dihedral_features(c).into_iter().flatten()).collect();
        let ca: Vec<f32> = init.iter().flat_map(|c| c.iter().flat_map(|r| r[1])).collect();
        Ok(Self {
            aatype: Tensor::from_vec(types, (b, n), device)?,
            init_single: Tensor::from_vec(single, (b, n, INIT_FEATURES), device)?,
            init_ca: Tensor::from_vec(ca, (b, n, 3), device)?,
        })
    }

    /// `(B, N)`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn dims(&self) -> Result<(usize, usize), StarMdError> {
        Ok(self.aatype.dims2()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protforge_se3::geometry::{HELIX_PHI, HELIX_PSI, OMEGA_TRANS, build_backbone};

    fn helix(n: usize) -> Vec<[[f32; 3]; 4]> {
        build_backbone(n, &vec![HELIX_PHI; n], &vec![HELIX_PSI; n], &vec![OMEGA_TRANS; n])
            .into_iter()
            .map(|r| r.map(f3))
            .collect()
    }

    #[test]
    fn frames_round_trip_to_atoms() {
        let coords = helix(9);
        let frames = backbone_frames(&coords).unwrap();
        let o_last = last_oxygen_local(&coords, &[[true; 4]; 9]);
        let atoms = atoms_from_frames(&frames, o_last);
        for (a, b) in atoms.iter().zip(&coords) {
            for k in 0..4 {
                let d = (v3(a[k]) - v3(b[k])).norm();
                assert!(d < 1e-3, "atom {k}: {d} Å");
            }
        }
        let c = centered(&frames);
        assert!(c.iter().map(|r| r.trans).sum::<Vec3>().norm() < 1e-9);
    }

    #[test]
    fn dihedral_features_of_a_helix() {
        let f = dihedral_features(&helix(5));
        assert_eq!(f[0][..2], [0.0, 0.0], "no φ at the N terminus");
        assert!((f64::from(f[2][0]) - HELIX_PHI.sin()).abs() < 1e-4);
        assert!((f64::from(f[2][3]) - HELIX_PSI.cos()).abs() < 1e-4);
        assert_eq!(f[4][2..], [0.0; 4], "no ψ, ω at the C terminus");
        let cond = Conditioning::new(&[&[0, 1, 2, 3, 4]], &[&helix(5)], &Device::Cpu).unwrap();
        assert_eq!(cond.dims().unwrap(), (1, 5));
        assert!(Conditioning::new(&[&[0, 1]], &[&helix(5)], &Device::Cpu).is_err());
    }
}
