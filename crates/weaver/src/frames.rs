//! Residue frames ↔ backbones (Å), and batches of frames as tensors.
//!
//! A frame is the OpenFold `from_3_points(N, CA, C)` rigid ([`Rigid::from_three_points`]):
//! origin at CA. A backbone is rebuilt from frames with the ideal N and C of
//! [`protforge_se3::geometry`] and the carbonyl O placed in the peptide plane towards the next
//! residue's N (the last O with ψ = 0).

use crate::WeaverError;
use candle_core::{Device, Tensor};
use protforge_se3::geometry::{ANGLE_CA_C_O, BOND_C_O, IDEAL_C_LOCAL, IDEAL_N_LOCAL, place_atom, place_oxygen};
use protforge_se3::{Rigid, Rigids, Rotation, Rotations, Vec3};
use protforge_structure::{Backbone, atom, residue};

/// `[f32; 3]` → `Vec3`.
#[must_use]
pub fn vec3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

/// `Vec3` → `[f32; 3]` (narrowing to the f32 coordinates of the structure types).
#[must_use]
#[allow(clippy::cast_possible_truncation)]
pub fn f32x3(p: &Vec3) -> [f32; 3] {
    [p.x as f32, p.y as f32, p.z as f32]
}

/// Frames of the residues of `bb` that have N, CA and C (in order), with their indices.
///
/// # Errors
/// [`WeaverError::Se3`] for collinear N, CA, C.
pub fn frames_from_backbone(bb: &Backbone) -> Result<(Vec<Rigid>, Vec<usize>), WeaverError> {
    let mut frames = Vec::with_capacity(bb.len());
    let mut idx = Vec::with_capacity(bb.len());
    for (i, (c, m)) in bb.coords.iter().zip(&bb.atom_mask).enumerate() {
        if m[atom::N] && m[atom::CA] && m[atom::C] {
            frames.push(Rigid::from_three_points(vec3(c[atom::N]), vec3(c[atom::CA]), vec3(c[atom::C]))?);
            idx.push(i);
        }
    }
    Ok((frames, idx))
}

/// N, CA, C, O (Å) of a chain with ideal geometry in the given frames.
#[must_use]
pub fn atoms_from_frames(frames: &[Rigid]) -> Vec<[Vec3; 4]> {
    let (n_local, c_local) = (Vec3::from(IDEAL_N_LOCAL), Vec3::from(IDEAL_C_LOCAL));
    let nca: Vec<(Vec3, Vec3, Vec3)> = frames.iter().map(|f| (f.apply(n_local), f.trans, f.apply(c_local))).collect();
    nca.iter()
        .enumerate()
        .map(|(i, &(n, ca, c))| {
            let o = match nca.get(i + 1) {
                Some(&(n_next, _, _)) => place_oxygen(ca, c, n_next),
                None => place_atom(n, ca, c, BOND_C_O, ANGLE_CA_C_O, 0.0),
            };
            [n, ca, c, o]
        })
        .collect()
}

/// A single-chain poly-glycine backbone (chain A, residues numbered from 1) from frames.
#[must_use]
pub fn backbone_from_frames(frames: &[Rigid]) -> Backbone {
    let coords = atoms_from_frames(frames).iter().map(|a| a.map(|p| f32x3(&p))).collect();
    Backbone::from_coords(coords, vec![residue::aatype_from_one('G'); frames.len()])
}

/// CA positions (frame origins, Å).
#[must_use]
pub fn ca_of(frames: &[Rigid]) -> Vec<Vec3> {
    frames.iter().map(|f| f.trans).collect()
}

/// Move frames so that their CA centroid is at the origin.
#[must_use]
pub fn centred(frames: &[Rigid]) -> Vec<Rigid> {
    let n = frames.len().max(1) as f64;
    let c: Vec3 = frames.iter().map(|f| f.trans).sum::<Vec3>() / n;
    frames.iter().map(|f| Rigid::new(f.rot, f.trans - c)).collect()
}

/// Batch `B` chains of frames into `[B, L]` tensors (`L` = the longest), padding with identity
/// frames; also returns the `[B, L]` f32 mask (1 = residue).
///
/// # Errors
/// Candle errors.
pub fn batch_rigids(chains: &[&[Rigid]], dev: &Device) -> Result<(Rigids, Tensor), WeaverError> {
    let b = chains.len();
    let l = chains.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut rots = Vec::with_capacity(b * l);
    let mut trans = Vec::with_capacity(b * l * 3);
    let mut mask = Vec::with_capacity(b * l);
    for c in chains {
        for i in 0..l {
            match c.get(i) {
                Some(f) => {
                    rots.push(f.rot);
                    trans.extend(f32x3(&f.trans));
                    mask.push(1f32);
                }
                None => {
                    rots.push(Rotation::identity());
                    trans.extend([0f32; 3]);
                    mask.push(0.0);
                }
            }
        }
    }
    let mats = Rotations::from_scalar(&rots, dev)?.mats.reshape((b, l, 3, 3))?; // [B, L, 3, 3]
    let rigids = Rigids::new(Rotations::new(mats)?, Tensor::from_vec(trans, (b, l, 3), dev)?)?;
    Ok((rigids, Tensor::from_vec(mask, (b, l), dev)?))
}

/// Split `[B, L]` frames back into chains of the given lengths.
///
/// # Errors
/// Candle errors; [`WeaverError::BadLayout`] if `lens` does not fit the batch.
pub fn unbatch_rigids(rigids: &Rigids, lens: &[usize]) -> Result<Vec<Vec<Rigid>>, WeaverError> {
    let [b, l] = *rigids.batch_shape() else {
        return Err(WeaverError::BadLayout(format!("frames of batch shape {:?}, expected [B, L]", rigids.batch_shape())));
    };
    if lens.len() != b || lens.iter().any(|&n| n > l) {
        return Err(WeaverError::BadLayout(format!("lengths {lens:?} do not fit a [{b}, {l}] batch")));
    }
    let rows = rigids.to_scalar()?;
    Ok(lens.iter().enumerate().map(|(k, &n)| rows[k * l..k * l + n].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_chain() -> Backbone {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/backbones/barnase_A.pdb");
        protforge_structure::io::read_backbone(&path, &protforge_structure::io::ReadOptions::default()).unwrap().backbone
    }

    #[test]
    fn frames_round_trip_through_a_backbone() {
        let bb = test_chain();
        let (frames, idx) = frames_from_backbone(&bb).unwrap();
        assert_eq!(frames.len(), idx.len());
        let rebuilt = backbone_from_frames(&frames);
        // CA exact, N and C within the ideal-geometry error, O near the real one.
        for (k, &i) in idx.iter().enumerate().take(frames.len() - 1) {
            for (a, tol) in [(atom::CA, 1e-3), (atom::N, 0.3), (atom::C, 0.3), (atom::O, 0.7)] {
                let d = (vec3(rebuilt.coords[k][a]) - vec3(bb.coords[i][a])).norm();
                assert!(d < tol, "residue {i} atom {a}: {d} Å");
            }
        }
        let (again, _) = frames_from_backbone(&rebuilt).unwrap();
        for (a, b) in frames.iter().zip(&again) {
            assert!((a.trans - b.trans).norm() < 1e-3 && a.rot.angle_to(&b.rot) < 1e-3);
        }
    }

    #[test]
    fn batching_pads_and_unbatches() {
        let (frames, _) = frames_from_backbone(&test_chain()).unwrap();
        let a = &frames[..5];
        let b = &frames[10..13];
        let (rig, mask) = batch_rigids(&[a, b], &Device::Cpu).unwrap();
        assert_eq!(rig.batch_shape(), &[2, 5]);
        assert_eq!(mask.to_vec2::<f32>().unwrap()[1], vec![1.0, 1.0, 1.0, 0.0, 0.0]);
        let back = unbatch_rigids(&rig, &[5, 3]).unwrap();
        assert!((back[1][2].trans - frames[12].trans).norm() < 1e-4);
        assert!(unbatch_rigids(&rig, &[5, 6]).is_err());
        let c = centred(a);
        assert!(c.iter().map(|f| f.trans).sum::<Vec3>().norm() < 1e-9);
    }
}
