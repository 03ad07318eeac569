//! Reconstruction losses: backbone FAPE (AlphaFold2 Suppl. Alg. 28) and the distogram
//! cross-entropy (AlphaFold2 Suppl. 1.9.8), plus placing N, CA, C on predicted frames.

use crate::TokenizerError;
use candle_core::{D, DType, Tensor};
use protforge_se3::geometry::{IDEAL_C_LOCAL, IDEAL_CA_LOCAL, IDEAL_N_LOCAL};
use protforge_se3::{Rigids, Rotations};
use serde::{Deserialize, Serialize};

type Result<T> = std::result::Result<T, TokenizerError>;

/// Squared-distance epsilon of FAPE (Å²; AlphaFold2 uses 1e-4 Å², i.e. ε = 0.01 Å).
const FAPE_EPS_ANG2: f64 = 1e-4;

/// Loss weights and FAPE settings (AlphaFold2 / DPLM-2 `StructureVQLoss`: FAPE 1.0, distogram 0.3).
///
/// As in AlphaFold2 (Suppl. 1.11.5) and OpenFold's `backbone_loss`, the FAPE term mixes the
/// clamped and the unclamped error: `(1 − u)·FAPE_clamped + u·FAPE_unclamped`, `u = 0.1`
/// (OpenFold draws "clamp this batch" with probability 0.9; the fixed mixture has the same
/// expectation without extra randomness). The unclamped part is what pulls far-apart residues
/// into place while every pair error is still above the clamp, as at the start of training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossWeights {
    /// Weight of the backbone FAPE (mean over structure-module iterations).
    pub fape: f64,
    /// Weight of the distogram cross-entropy.
    pub distogram: f64,
    /// FAPE clamp distance (Å; AlphaFold2: 10).
    pub fape_clamp_ang: f64,
    /// FAPE length scale `Z` (Å; AlphaFold2: 10).
    pub fape_scale_ang: f64,
    /// Weight `u` of the unclamped FAPE in the FAPE term (AlphaFold2/OpenFold: 0.1).
    #[serde(default = "default_unclamped_fraction")]
    pub fape_unclamped_fraction: f64,
}

fn default_unclamped_fraction() -> f64 {
    0.1
}

impl Default for LossWeights {
    fn default() -> Self {
        Self { fape: 1.0, distogram: 0.3, fape_clamp_ang: 10.0, fape_scale_ang: 10.0, fape_unclamped_fraction: default_unclamped_fraction() }
    }
}

/// Frames `[B, L]` with a unit axis inserted after `L`: `[B, L, 1]`.
fn unsqueeze_frames(frames: &Rigids, axis: usize) -> Result<Rigids> {
    let rots = Rotations::new(frames.rots.mats.unsqueeze(axis)?)?;
    Ok(Rigids::new(rots, frames.trans.unsqueeze(axis)?)?)
}

/// N, CA, C placed on frames `[B, L]` (Å) with ideal local geometry
/// ([`protforge_se3::geometry`]): `[B, 3L, 3]`, residue-major (N₀, CA₀, C₀, N₁, …).
///
/// # Errors
/// Candle errors.
pub fn backbone_atoms(frames: &Rigids) -> Result<Tensor> {
    let (b, l, _) = frames.trans.dims3()?;
    let local: Vec<f32> = [IDEAL_N_LOCAL, IDEAL_CA_LOCAL, IDEAL_C_LOCAL].iter().flatten().map(|&v| v as f32).collect();
    let local = Tensor::from_vec(local, (1, 1, 3, 3), frames.trans.device())?; // [1, 1, 3 atoms, 3]
    let atoms = unsqueeze_frames(frames, 2)?.apply(&local)?; // [B, L, 3, 3]
    Ok(atoms.reshape((b, 3 * l, 3))?)
}

/// `[B, L, 3, M]`: every atom `j` (`atoms: [B, M, 3]`) in every frame `i` (`frames: [B, L]`),
/// `R_iᵀ (x_j − t_i) = R_iᵀ x_j − R_iᵀ t_i`. The all-pairs rotation is one batched matmul
/// (f32 on CPU) instead of a `[B, L, M, 3, 3]` broadcast, whose backward is far slower.
fn local_coords(frames: &Rigids, atoms: &Tensor) -> Result<Tensor> {
    let (b, l, _) = frames.trans.dims3()?;
    let m = atoms.dim(1)?;
    let rt = frames.rots.mats.transpose(2, 3)?.contiguous()?.reshape((b, 3 * l, 3))?; // rows of R_iᵀ: [B, 3L, 3]
    let rx = rt.matmul(&atoms.transpose(1, 2)?.contiguous()?)?.reshape((b, l, 3, m))?; // [B, L, 3, M]
    let rt_t = frames.rots.apply_inverse(&frames.trans)?.unsqueeze(3)?; // [B, L, 3, 1]
    Ok(rx.broadcast_sub(&rt_t)?)
}

/// The true side of FAPE, computed once per batch: the true atoms in every true frame and
/// the pair weights.
#[derive(Debug, Clone)]
pub struct FapeTarget {
    /// `[B, L, 3, M]` true atom `j` in true frame `i` (Å).
    local: Tensor,
    /// `[B, L, M]` 1 where frame `i` and atom `j` are both valid.
    weights: Tensor,
    /// Number of valid pairs (at least 1), a scalar.
    count: Tensor,
}

impl FapeTarget {
    /// `frames: [B, L]` (Å), `atoms: [B, M, 3]` (Å), `frame_mask: [B, L]`, `atom_mask: [B, M]`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn new(frames: &Rigids, atoms: &Tensor, frame_mask: &Tensor, atom_mask: &Tensor) -> Result<Self> {
        let local = local_coords(frames, atoms)?.detach();
        let weights = frame_mask.to_dtype(DType::F32)?.unsqueeze(2)?.broadcast_mul(&atom_mask.to_dtype(DType::F32)?.unsqueeze(1)?)?;
        let count = weights.sum_all()?.maximum(1.0)?;
        Ok(Self { local, weights, count })
    }
}

/// Frame-aligned point error (AlphaFold2 Suppl. Alg. 28) in units of `scale`, clamped and
/// unclamped (scalars, in that order):
///
/// `mean over valid (i, j) of min(clamp, √(|T_i⁻¹ x_j − T_i^true⁻¹ x_j^true|² + ε)) / scale`,
/// and the same mean without the `min`.
///
/// `frames: [B, L]` (Å) and `atoms: [B, M, 3]` (Å) are the prediction; gradients flow into both.
///
/// # Errors
/// Candle shape errors.
pub fn fape(frames: &Rigids, atoms: &Tensor, target: &FapeTarget, clamp: f64, scale: f64) -> Result<(Tensor, Tensor)> {
    let diff = (local_coords(frames, atoms)? - &target.local)?.sqr()?; // [B, L, 3, M]
    let d = (diff.sum(2)? + FAPE_EPS_ANG2)?.sqrt()?; // [B, L, M]
    let mean = |d: Tensor| -> Result<Tensor> { Ok(((d * &target.weights)?.sum_all()?.div(&target.count)? / scale)?) };
    Ok((mean(d.minimum(clamp)?)?, mean(d)?))
}

/// Mean cross-entropy of distogram logits `[B, L, L, bins]` against true bins `[B, L, L]`
/// (u32) over pairs of valid residues (`mask: [B, L]`).
///
/// # Errors
/// Candle shape errors.
pub fn distogram_loss(logits: &Tensor, bins: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = logp.gather(&bins.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?.squeeze(D::Minus1)?.neg()?; // [B, L, L]
    let m = mask.to_dtype(DType::F32)?;
    let w = m.unsqueeze(2)?.broadcast_mul(&m.unsqueeze(1)?)?;
    let n = w.sum_all()?.maximum(1.0)?;
    Ok((nll * w)?.sum_all()?.div(&n)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn frames(b: usize, l: usize, seed: f32) -> Rigids {
        let q: Vec<f32> = (0..b * l * 4).map(|k| ((k as f32 + seed) * 1.37).sin()).collect();
        let t: Vec<f32> = (0..b * l * 3).map(|k| ((k as f32 + seed) * 0.71).cos() * 8.0).collect();
        let rots = Rotations::from_quaternions(&Tensor::from_vec(q, (b, l, 4), &Device::Cpu).unwrap()).unwrap();
        Rigids::new(rots, Tensor::from_vec(t, (b, l, 3), &Device::Cpu).unwrap()).unwrap()
    }

    #[test]
    fn fape_is_zero_for_equal_and_invariant_to_global_motion() {
        let f = frames(2, 4, 0.0);
        let atoms = backbone_atoms(&f).unwrap();
        assert_eq!(atoms.dims(), &[2, 12, 3]);
        let fm = Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap();
        let am = Tensor::ones((2, 12), DType::F32, &Device::Cpu).unwrap();
        let target = FapeTarget::new(&f, &atoms, &fm, &am).unwrap();
        let zero = fape(&f, &atoms, &target, 10.0, 10.0).unwrap().0.to_scalar::<f32>().unwrap();
        assert!(zero < 2e-3, "{zero}"); // √ε / scale = 0.001
        // A global motion of the prediction leaves FAPE unchanged; other frames do not.
        let g = frames(2, 1, 5.0);
        let moved = g.compose(&f).unwrap();
        let moved_atoms = backbone_atoms(&moved).unwrap();
        let other = frames(2, 4, 9.0);
        let v = fape(&moved, &moved_atoms, &target, 10.0, 10.0).unwrap().0.to_scalar::<f32>().unwrap();
        assert!((v - zero).abs() < 1e-4, "{v}");
        let w = fape(&other, &backbone_atoms(&other).unwrap(), &target, 10.0, 10.0).unwrap().0.to_scalar::<f32>().unwrap();
        assert!(w > 0.1 && w <= 1.0, "{w}");
        // Clamp: every error is at most clamp/scale; the unclamped value is not clamped, and
        // equals the clamped one when the clamp is above every error.
        let (tiny, free) = fape(&other, &backbone_atoms(&other).unwrap(), &target, 0.5, 10.0).unwrap();
        let (tiny, free) = (tiny.to_scalar::<f32>().unwrap(), free.to_scalar::<f32>().unwrap());
        assert!(tiny <= 0.05 + 1e-6);
        assert!(free > 2.0 * tiny, "unclamped {free} vs clamped {tiny}");
        let (c, u) = fape(&other, &backbone_atoms(&other).unwrap(), &target, 1e4, 10.0).unwrap();
        assert!((c.to_scalar::<f32>().unwrap() - u.to_scalar::<f32>().unwrap()).abs() < 1e-6);
        assert!((u.to_scalar::<f32>().unwrap() - free).abs() < 1e-6);
    }

    #[test]
    fn distogram_loss_is_cross_entropy_over_valid_pairs() {
        // One batch, 2 residues, 3 bins; uniform logits → ln 3 per pair.
        let logits = Tensor::zeros((1, 2, 2, 3), DType::F32, &Device::Cpu).unwrap();
        let bins = Tensor::new(&[[[0u32, 2], [2, 1]]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0]], &Device::Cpu).unwrap();
        let l = distogram_loss(&logits, &bins, &mask).unwrap().to_scalar::<f32>().unwrap();
        assert!((l - 3f32.ln()).abs() < 1e-6);
        let logits = Tensor::new(&[[[[5f32, 0., 0.], [0., 0., 5.]], [[0., 0., 0.], [0., 0., 0.]]]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 0.0]], &Device::Cpu).unwrap();
        let l = distogram_loss(&logits, &bins, &mask).unwrap().to_scalar::<f32>().unwrap();
        let want = -(5f32.exp() / (5f32.exp() + 2.0)).ln();
        assert!((l - want).abs() < 1e-5, "{l} vs {want}");
    }
}
