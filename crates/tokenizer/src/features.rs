//! Input features and training targets of a batch of backbones, computed in f64 on the CPU.
//!
//! Every encoder feature is invariant under a global rotation and translation of the input:
//! it is expressed in a residue's own backbone frame (OpenFold `from_3_points(N, CA, C)`
//! convention, [`protforge_se3::Rigid::from_three_points`]) or is a distance or dihedral.
//! Computing them in f64 from relative quantities makes the invariance exact up to the final
//! cast to f32, so token ids do not depend on the pose of the input.
//!
//! - Node features (`[B, L, 9]`): `sin, cos, valid` of φᵢ, ψᵢ, ωᵢ (zeros where the neighbour is
//!   missing or not bonded, i.e. C–N farther than [`PEPTIDE_BOND_MAX_ANG`]).
//! - Pair features (`[B, L, L, rbf_bins + 13]`): Gaussian radial basis of |CAⱼ − CAᵢ|, the unit
//!   direction of CAⱼ in frame i (3), the relative rotation `Rᵢᵀ Rⱼ` (9, row-major), and a
//!   validity flag; all zero for pairs with a masked residue.
//! - Relative positions `clip(j − i, ±relpos_max) + relpos_max`, shared by the batch (`[1, L, L]`).
//!
//! A residue is valid when its N, CA and C are present and not collinear. Coordinates are Å.

use crate::TokenizerError;
use crate::config::TokenizerConfig;
use candle_core::{Device, Tensor};
use protforge_se3::{Rigid, Rigids, Rotation, Rotations, Vec3, dihedral::dihedral};
use protforge_structure::{Backbone, atom};
use rayon::prelude::*;

/// Width of the node features.
pub const NODE_FEATS: usize = 9;
/// Pair features besides the radial basis: direction (3), relative rotation (9), validity (1).
pub const PAIR_EXTRA_FEATS: usize = 13;
/// Largest C–N distance (Å) still treated as a peptide bond (ideal 1.33 Å).
pub const PEPTIDE_BOND_MAX_ANG: f64 = 2.0;

/// N, CA, C of one chain (Å) and which residues are valid.
#[derive(Debug, Clone)]
pub struct ChainAtoms {
    /// `[L][3]` N, CA, C positions (Å; arbitrary where invalid).
    pub atoms: Vec<[Vec3; 3]>,
    /// Residue frames (identity where invalid).
    pub frames: Vec<Rigid>,
    /// Whether N, CA and C are present and give a frame.
    pub valid: Vec<bool>,
}

impl ChainAtoms {
    /// Extract N, CA, C and frames from a single-chain backbone.
    #[must_use]
    pub fn from_backbone(bb: &Backbone) -> Self {
        let n = bb.len();
        let mut atoms = Vec::with_capacity(n);
        let mut frames = Vec::with_capacity(n);
        let mut valid = Vec::with_capacity(n);
        for (coords, mask) in bb.coords.iter().zip(&bb.atom_mask) {
            let get = |k: usize| Vec3::new(f64::from(coords[k][0]), f64::from(coords[k][1]), f64::from(coords[k][2]));
            let a = [get(atom::N), get(atom::CA), get(atom::C)];
            let present = mask[atom::N] && mask[atom::CA] && mask[atom::C];
            let frame = if present { Rigid::from_three_points(a[0], a[1], a[2]).ok() } else { None };
            valid.push(frame.is_some());
            frames.push(frame.unwrap_or_else(Rigid::identity));
            atoms.push(a);
        }
        Self { atoms, frames, valid }
    }

    /// Number of residues.
    #[must_use]
    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    /// Whether the chain has no residues.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }

    /// Whether residues `i` and `i + 1` are both valid and joined by a peptide bond.
    fn bonded(&self, i: usize) -> bool {
        i + 1 < self.len()
            && self.valid[i]
            && self.valid[i + 1]
            && (self.atoms[i + 1][0] - self.atoms[i][2]).norm() <= PEPTIDE_BOND_MAX_ANG
    }

    /// `[L · 9]` node features (see the module docs).
    #[must_use]
    pub fn node_features(&self) -> Vec<f32> {
        let l = self.len();
        let mut out = vec![0f32; l * NODE_FEATS];
        let mut put = |i: usize, slot: usize, angle: f64| {
            let o = i * NODE_FEATS + 3 * slot;
            out[o] = angle.sin() as f32;
            out[o + 1] = angle.cos() as f32;
            out[o + 2] = 1.0;
        };
        for i in 0..l {
            let [n, ca, c] = self.atoms[i];
            if i > 0 && self.bonded(i - 1) {
                put(i, 0, dihedral(self.atoms[i - 1][2], n, ca, c));
            }
            if self.bonded(i) {
                let [n1, ca1, _] = self.atoms[i + 1];
                put(i, 1, dihedral(n, ca, c, n1));
                put(i, 2, dihedral(ca, c, n1, ca1));
            }
        }
        out
    }

    /// `[L · L · (bins + 13)]` pair features (see the module docs), row `i` major.
    #[must_use]
    pub fn pair_features(&self, rbf_bins: usize, rbf_max_ang: f64) -> Vec<f32> {
        let l = self.len();
        let width = rbf_bins + PAIR_EXTRA_FEATS;
        let spacing = rbf_max_ang / (rbf_bins - 1).max(1) as f64;
        let mut out = vec![0f32; l * l * width];
        let inv: Vec<Rotation> = self.frames.iter().map(|f| f.rot.inverse()).collect();
        for i in (0..l).filter(|&i| self.valid[i]) {
            let ca_i = self.atoms[i][1];
            for j in (0..l).filter(|&j| self.valid[j]) {
                let o = (i * l + j) * width;
                let v = self.atoms[j][1] - ca_i;
                let d = v.norm();
                for k in 0..rbf_bins {
                    let z = (d - k as f64 * spacing) / spacing;
                    out[o + k] = (-z * z).exp() as f32;
                }
                if d > 1e-6 {
                    let dir = inv[i].apply(v) / d;
                    for k in 0..3 {
                        out[o + rbf_bins + k] = dir[k] as f32;
                    }
                }
                let rel = inv[i].compose(&self.frames[j].rot);
                let m = rel.matrix();
                for r in 0..3 {
                    for c in 0..3 {
                        out[o + rbf_bins + 3 + 3 * r + c] = m[(r, c)] as f32;
                    }
                }
                out[o + width - 1] = 1.0;
            }
        }
        out
    }
}

/// Relative positions `clip(j − i, ±max) + max` for a length `l`: `[1, L, L]` u32.
///
/// # Errors
/// Candle errors.
pub fn relpos(l: usize, max: usize, device: &Device) -> candle_core::Result<Tensor> {
    let m = max as i64;
    let data: Vec<u32> = (0..l as i64).flat_map(|i| (0..l as i64).map(move |j| ((j - i).clamp(-m, m) + m) as u32)).collect();
    Tensor::from_vec(data, (1, l, l), device)
}

/// Encoder inputs of a padded batch.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    /// `[B, L]` 1 for valid residues, 0 for invalid and padding.
    pub mask: Tensor,
    /// `[B, L, 9]` node features.
    pub node: Tensor,
    /// `[B, L, L, rbf_bins + 13]` pair features.
    pub pair: Tensor,
    /// `[1, L, L]` relative-position indices.
    pub relpos: Tensor,
    /// Residues of each chain (before padding).
    pub lengths: Vec<usize>,
}

/// Training targets of a padded batch (Å).
#[derive(Debug, Clone)]
pub struct Targets {
    /// True backbone frames `[B, L]` (identity where invalid).
    pub frames: Rigids,
    /// `[B, 3L, 3]` true N, CA, C (residue-major: N₀, CA₀, C₀, N₁, …).
    pub atoms: Tensor,
    /// `[B, L, L]` u32 distogram bin of the virtual-CB distance.
    pub dist_bins: Tensor,
}

/// Virtual Cβ from N, CA, C (ideal tetrahedral geometry; the constants of ProteinMPNN and
/// RFdiffusion): `CB = −0.58273431·a + 0.56802827·b − 0.54067466·c + CA`, `b = CA − N`,
/// `c = C − CA`, `a = b × c` (Å).
#[must_use]
pub fn virtual_cb(n: Vec3, ca: Vec3, c: Vec3) -> Vec3 {
    let b = ca - n;
    let cc = c - ca;
    let a = b.cross(&cc);
    -0.582_734_31 * a + 0.568_028_27 * b - 0.540_674_66 * cc + ca
}

/// Distogram bin of a distance: the number of the `bins − 1` edges, evenly spaced over
/// `[min, max]` (Å), that lie below `d` (so bins 0 and `bins − 1` are open-ended).
#[must_use]
pub fn distogram_bin(d: f64, bins: usize, min: f64, max: f64) -> u32 {
    let n_edges = bins - 1;
    let step = if n_edges > 1 { (max - min) / (n_edges - 1) as f64 } else { 0.0 };
    (0..n_edges).filter(|&k| min + k as f64 * step < d).count() as u32
}

fn check_lengths(chains: &[ChainAtoms]) -> Result<usize, TokenizerError> {
    if chains.is_empty() {
        return Err(TokenizerError::BadInput("empty batch".to_string()));
    }
    Ok(chains.iter().map(ChainAtoms::len).max().unwrap_or(0).max(1))
}

/// Encoder inputs for `chains`, padded to the longest (features of each chain in parallel).
///
/// # Errors
/// [`TokenizerError::BadInput`] for an empty batch; candle errors.
pub fn encoder_input(chains: &[ChainAtoms], cfg: &TokenizerConfig, device: &Device) -> Result<EncoderInput, TokenizerError> {
    let l = check_lengths(chains)?;
    let (bins, rmax) = (cfg.encoder.rbf_bins, cfg.encoder.rbf_max_ang);
    let width = bins + PAIR_EXTRA_FEATS;
    let per_chain: Vec<(Vec<f32>, Vec<f32>)> =
        chains.par_iter().map(|c| (c.node_features(), c.pair_features(bins, rmax))).collect();
    let b = chains.len();
    let mut mask = vec![0f32; b * l];
    let mut node = vec![0f32; b * l * NODE_FEATS];
    let mut pair = vec![0f32; b * l * l * width];
    for (k, (c, (nf, pf))) in chains.iter().zip(&per_chain).enumerate() {
        let n = c.len();
        for i in 0..n {
            mask[k * l + i] = f32::from(u8::from(c.valid[i]));
            let row = &pf[i * n * width..(i + 1) * n * width];
            let dst = (k * l + i) * l * width;
            pair[dst..dst + n * width].copy_from_slice(row);
        }
        node[k * l * NODE_FEATS..(k * l + n) * NODE_FEATS].copy_from_slice(nf);
    }
    Ok(EncoderInput {
        mask: Tensor::from_vec(mask, (b, l), device)?,
        node: Tensor::from_vec(node, (b, l, NODE_FEATS), device)?,
        pair: Tensor::from_vec(pair, (b, l, l, width), device)?,
        relpos: relpos(l, cfg.relpos_max, device)?,
        lengths: chains.iter().map(ChainAtoms::len).collect(),
    })
}

/// Training targets for `chains`, padded to the longest.
///
/// # Errors
/// [`TokenizerError::BadInput`] for an empty batch; candle errors.
pub fn targets(chains: &[ChainAtoms], cfg: &TokenizerConfig, device: &Device) -> Result<Targets, TokenizerError> {
    let l = check_lengths(chains)?;
    let b = chains.len();
    let d = &cfg.decoder;
    let mut frames = vec![Rigid::identity(); b * l];
    let mut atoms = vec![0f32; b * l * 9];
    let mut bins = vec![0u32; b * l * l];
    for (k, c) in chains.iter().enumerate() {
        let cb: Vec<Vec3> = c.atoms.iter().map(|a| virtual_cb(a[0], a[1], a[2])).collect();
        for i in 0..c.len() {
            frames[k * l + i] = c.frames[i];
            for (a, p) in c.atoms[i].iter().enumerate() {
                for x in 0..3 {
                    atoms[(k * l + i) * 9 + 3 * a + x] = p[x] as f32;
                }
            }
            for j in 0..c.len() {
                bins[(k * l + i) * l + j] = distogram_bin((cb[j] - cb[i]).norm(), d.distogram_bins, d.distogram_min_ang, d.distogram_max_ang);
            }
        }
    }
    Ok(Targets {
        frames: rigids_from_scalar(&frames, b, l, device)?,
        atoms: Tensor::from_vec(atoms, (b, 3 * l, 3), device)?,
        dist_bins: Tensor::from_vec(bins, (b, l, l), device)?,
    })
}

/// Rigids `[B, L]` from scalar frames laid out row-major (`frames.len() = B·L`).
///
/// # Errors
/// Candle shape errors.
pub fn rigids_from_scalar(frames: &[Rigid], b: usize, l: usize, device: &Device) -> Result<Rigids, TokenizerError> {
    let r = Rigids::from_scalar(frames, device)?;
    Ok(Rigids::new(Rotations::new(r.rots.mats.reshape((b, l, 3, 3))?)?, r.trans.reshape((b, l, 3))?)?)
}

/// `[B, L]` f32 mask of padded length `l` for records of the given lengths (decoding input).
///
/// # Errors
/// Candle errors.
pub fn length_mask(lengths: &[usize], l: usize, device: &Device) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = lengths.iter().flat_map(|&n| (0..l).map(move |i| f32::from(u8::from(i < n)))).collect();
    Tensor::from_vec(data, (lengths.len(), l), device)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An ideal helix of `n` residues (Å).
    pub(crate) fn helix(n: usize) -> Backbone {
        let res = protforge_se3::geometry::build_backbone(n, &[], &[], &[]);
        let coords = res.iter().map(|r| r.map(|p| [p.x as f32, p.y as f32, p.z as f32])).collect();
        Backbone::from_coords(coords, vec![0; n])
    }

    #[test]
    fn features_are_invariant_and_masked() {
        let bb = helix(12);
        let a = ChainAtoms::from_backbone(&bb);
        let g = Rigid::new(Rotation::from_axis_angle(&Vec3::new(0.3, -1.0, 2.0), 2.1).unwrap(), Vec3::new(40.0, -13.0, 7.5));
        let mut moved = bb.clone();
        for r in &mut moved.coords {
            for p in r.iter_mut() {
                let q = g.apply(Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2])));
                *p = [q.x as f32, q.y as f32, q.z as f32];
            }
        }
        let b = ChainAtoms::from_backbone(&moved);
        let diff = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(u, v)| (u - v).abs()).fold(0f32, f32::max);
        assert!(diff(&a.node_features(), &b.node_features()) < 1e-5);
        assert!(diff(&a.pair_features(8, 20.0), &b.pair_features(8, 20.0)) < 1e-5);
        // Helix dihedrals: φ = −57°, ψ = −47°; the first φ and the last ψ/ω are missing.
        let nf = a.node_features();
        assert_eq!(&nf[0..3], &[0.0, 0.0, 0.0]);
        let phi = f64::from(nf[NODE_FEATS]).atan2(f64::from(nf[NODE_FEATS + 1])).to_degrees();
        assert!((phi + 57.0).abs() < 1e-3, "{phi}");
        assert_eq!(nf[11 * NODE_FEATS + 5], 0.0);
        // Remove residue 3's CA: it becomes invalid, its pairs vanish, neighbours lose dihedrals.
        let mut holey = bb.clone();
        holey.atom_mask[3][atom::CA] = false;
        let h = ChainAtoms::from_backbone(&holey);
        assert!(!h.valid[3]);
        let pf = h.pair_features(8, 20.0);
        let w = 8 + PAIR_EXTRA_FEATS;
        assert!(pf[(3 * 12) * w..(4 * 12) * w].iter().all(|&v| v == 0.0));
        assert!(pf[(5 * 12 + 3) * w..(5 * 12 + 4) * w].iter().all(|&v| v == 0.0));
        assert_eq!(pf[(5 * 12 + 6) * w + w - 1], 1.0);
        let nf = h.node_features();
        assert_eq!(nf[2 * NODE_FEATS + 5], 0.0, "psi of residue 2 needs residue 3");
        assert_eq!(nf[4 * NODE_FEATS + 2], 0.0, "phi of residue 4 needs residue 3");
    }

    #[test]
    fn batch_padding_and_targets() {
        let cfg = TokenizerConfig::tiny();
        let chains = [ChainAtoms::from_backbone(&helix(7)), ChainAtoms::from_backbone(&helix(4))];
        let x = encoder_input(&chains, &cfg, &Device::Cpu).unwrap();
        assert_eq!(x.pair.dims(), &[2, 7, 7, cfg.encoder.rbf_bins + PAIR_EXTRA_FEATS]);
        assert_eq!(x.mask.to_vec2::<f32>().unwrap()[1], vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(x.relpos.to_vec3::<u32>().unwrap()[0][0][..3], [5, 6, 7]);
        assert_eq!(x.relpos.to_vec3::<u32>().unwrap()[0][6][0], 0);
        let t = targets(&chains, &cfg, &Device::Cpu).unwrap();
        assert_eq!(t.atoms.dims(), &[2, 21, 3]);
        assert_eq!(t.frames.trans.dims(), &[2, 7, 3]);
        // CA of residue 1 of chain 0 is the frame origin.
        let ca = t.atoms.to_vec3::<f32>().unwrap()[0][4].clone();
        let tr = t.frames.trans.to_vec3::<f32>().unwrap()[0][1].clone();
        assert_eq!(ca, tr);
        assert_eq!(distogram_bin(1.0, 64, 2.3125, 21.6875), 0);
        assert_eq!(distogram_bin(100.0, 64, 2.3125, 21.6875), 63);
        assert_eq!(distogram_bin(2.32, 64, 2.3125, 21.6875), 1);
        assert!(encoder_input(&[], &cfg, &Device::Cpu).is_err());
        let m = length_mask(&[2, 3], 3, &Device::Cpu).unwrap();
        assert_eq!(m.to_vec2::<f32>().unwrap(), vec![vec![1.0, 1.0, 0.0], vec![1.0, 1.0, 1.0]]);
    }
}
