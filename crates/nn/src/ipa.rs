//! Invariant Point Attention and the backbone update of AlphaFold2's structure module
//! (Jumper et al. 2021, Suppl. Alg. 22 and Alg. 23; the reference implementation is
//! OpenFold's `model/structure_module.py`, read for the maths only).
//!
//! Frames are [`Rigids`] with rotations `[B, L, 3, 3]` and translations `[B, L, 3]`. IPA is
//! indifferent to the length unit of the translations (AlphaFold2 runs it in nm, i.e. Å / 10);
//! its point weights assume points of order one in that unit.
//!
//! Every op has a candle backward (softmax is `candle_nn::ops::softmax`, no fused kernels), so
//! IPA trains. Its scalar output is invariant under a global rigid motion `g` of the input
//! frames (`T_i ↦ g ∘ T_i`): the attention logits depend only on distances between points in the
//! global frame, and the point outputs are mapped back into each residue's local frame.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//! use protforge_nn::ipa::{InvariantPointAttention, IpaConfig};
//! use protforge_se3::Rigids;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = IpaConfig { d_single: 16, d_pair: 8, d_hidden: 4, n_heads: 2, n_qk_points: 2, n_v_points: 3 };
//! let varmap = VarMap::new();
//! let ipa = InvariantPointAttention::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
//! let s = Tensor::zeros((1, 5, 16), DType::F32, &Device::Cpu)?;
//! let z = Tensor::zeros((1, 5, 5, 8), DType::F32, &Device::Cpu)?;
//! let frames = Rigids::identity(&[1, 5], &Device::Cpu)?;
//! let mask = Tensor::ones((1, 5), DType::F32, &Device::Cpu)?;
//! assert_eq!(ipa.forward(&s, &z, &frames, &mask)?.dims(), &[1, 5, 16]);
//! # Ok(()) }
//! ```

use crate::attention::MASK_NEG;
use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder};
use protforge_se3::{Rigids, Rotations, Se3Error};
use serde::{Deserialize, Serialize};

/// `ln(e − 1)`: the softplus pre-image of 1. The head weights are stored as offsets from it,
/// so the default (zero-centred) initialisation gives `γ_h ≈ 1` as in AlphaFold2.
const SOFTPLUS_INV_ONE: f64 = 0.541_324_854_612_918_1;

/// Norm epsilon of the output points (`sqrt(|o|² + eps)`, OpenFold's 1e-8).
const POINT_NORM_EPS: f64 = 1e-8;

/// Convert a geometry error into a candle error (keeping candle's own errors as they are).
pub(crate) fn se3_err(e: Se3Error) -> candle_core::Error {
    match e {
        Se3Error::Candle(c) => c,
        other => candle_core::Error::msg(other),
    }
}

/// Sizes of an [`InvariantPointAttention`] layer (with the AlphaFold2 Suppl. Alg. 22 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpaConfig {
    /// Width of the single representation `s` (`c_s` in Alg. 22).
    pub d_single: usize,
    /// Width of the pair representation `z` (`c_z` in Alg. 22).
    pub d_pair: usize,
    /// Width of each head's scalar queries, keys and values (`c` in Alg. 22).
    pub d_hidden: usize,
    /// Number of heads (`N_head` in Alg. 22).
    pub n_heads: usize,
    /// Query/key points per head (`N_query_points` in Alg. 22).
    pub n_qk_points: usize,
    /// Value points per head (`N_point_values` in Alg. 22).
    pub n_v_points: usize,
}

impl IpaConfig {
    /// Check that every size is positive.
    ///
    /// # Errors
    /// [`crate::NnError::BadParameter`] naming the first zero size.
    pub fn validate(&self) -> std::result::Result<(), crate::NnError> {
        for (what, v) in [
            ("ipa d_single", self.d_single),
            ("ipa d_pair", self.d_pair),
            ("ipa d_hidden", self.d_hidden),
            ("ipa n_heads", self.n_heads),
            ("ipa n_qk_points", self.n_qk_points),
            ("ipa n_v_points", self.n_v_points),
        ] {
            if v == 0 {
                return Err(crate::NnError::BadParameter { what, reason: "must be positive".to_string() });
            }
        }
        Ok(())
    }

    /// Width of the concatenated head outputs fed to the output projection:
    /// `H · (c + c_z + 4 · N_point_values)` (scalar values, pair values, point values and
    /// their norms).
    #[must_use]
    pub fn concat_width(&self) -> usize {
        self.n_heads * (self.d_hidden + self.d_pair + 4 * self.n_v_points)
    }
}

/// Frames with an extra unit axis after the residue axis: rotations `[B, L, 1, 3, 3]`,
/// translations `[B, L, 1, 3]`, so they broadcast against points `[B, L, P, 3]`.
fn per_point(frames: &Rigids) -> Result<Rigids> {
    let rots = Rotations::new(frames.rots.mats.unsqueeze(2)?).map_err(se3_err)?;
    Rigids::new(rots, frames.trans.unsqueeze(2)?).map_err(se3_err)
}

/// Invariant Point Attention (AlphaFold2 Suppl. Alg. 22).
///
/// For head `h`, residues `i` (query) and `j` (key) with frames `T_i`, `T_j`:
///
/// ```text
/// a_ij^h = softmax_j( w_L · ( q_i^h·k_j^h / √c + b_ij^h − γ_h · w_C / 2 · Σ_p |T_i ∘ q_ip^h − T_j ∘ k_jp^h|² ) )
/// ```
///
/// with `w_L = √(1/3)`, `w_C = √(2 / (9 · N_query_points))` and `γ_h = softplus(θ_h + ln(e − 1))`
/// (so `θ_h = 0` gives `γ_h = 1`). Outputs per head: `Σ_j a_ij z_ij`, `Σ_j a_ij v_j`, the point
/// values `T_i⁻¹ ∘ Σ_j a_ij (T_j ∘ v_jp)` and their norms, concatenated and projected to `c_s`.
///
/// Parameters: `q`, `k`, `v` `[H·c, c_s]`, `q_points`, `k_points` `[H·P_qk·3, c_s]`,
/// `v_points` `[H·P_v·3, c_s]` (all with bias), `pair_bias` `[H, c_z]` (no bias),
/// `head_weights` `[H]` and `out` `[c_s, H·(c + c_z + 4·P_v)]` with bias.
///
/// Masked keys (`mask = 0`) get zero attention weight; their features, pair entries and
/// frames do not influence the output of other residues. Translations are centred on the
/// masked mean of the frames' translations before the point terms (a global translation,
/// which leaves the result unchanged), so f32 rounding does not grow with the distance of the
/// structure from the origin.
#[derive(Debug, Clone)]
pub struct InvariantPointAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    q_points: Linear,
    k_points: Linear,
    v_points: Linear,
    pair_bias: Linear,
    head_weights: Tensor,
    out: Linear,
    cfg: IpaConfig,
}

impl InvariantPointAttention {
    /// Build the layer; parameter names as in the type docs.
    ///
    /// # Errors
    /// A zero size in `cfg`; candle VarBuilder errors.
    pub fn new(cfg: &IpaConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let IpaConfig { d_single, d_pair, d_hidden, n_heads, n_qk_points, n_v_points } = *cfg;
        let hc = n_heads * d_hidden;
        Ok(Self {
            q: candle_nn::linear(d_single, hc, vb.pp("q"))?,
            k: candle_nn::linear(d_single, hc, vb.pp("k"))?,
            v: candle_nn::linear(d_single, hc, vb.pp("v"))?,
            q_points: candle_nn::linear(d_single, n_heads * n_qk_points * 3, vb.pp("q_points"))?,
            k_points: candle_nn::linear(d_single, n_heads * n_qk_points * 3, vb.pp("k_points"))?,
            v_points: candle_nn::linear(d_single, n_heads * n_v_points * 3, vb.pp("v_points"))?,
            pair_bias: candle_nn::linear_no_bias(d_pair, n_heads, vb.pp("pair_bias"))?,
            head_weights: vb.get_with_hints(n_heads, "head_weights", Init::Const(0.0))?,
            out: candle_nn::linear(cfg.concat_width(), d_single, vb.pp("out"))?,
            cfg: *cfg,
        })
    }

    /// The layer sizes.
    #[must_use]
    pub fn config(&self) -> &IpaConfig {
        &self.cfg
    }

    /// Points `[B, L, H·P·3]` from `proj`, placed in the global frame and laid out per head:
    /// `[B, H, L, P·3]`.
    fn global_points(&self, proj: &Linear, s: &Tensor, frames: &Rigids, n_points: usize) -> Result<Tensor> {
        let (b, l, _) = s.dims3()?;
        let h = self.cfg.n_heads;
        let local = proj.forward(s)?.reshape((b, l, h * n_points, 3))?; // [B, L, H·P, 3]
        let global = frames.apply(&local).map_err(se3_err)?; // [B, L, H·P, 3]
        global.reshape((b, l, h, n_points * 3))?.transpose(1, 2)?.contiguous() // [B, H, L, P·3]
    }

    /// `s: [B, L, c_s]`, `z: [B, L, L, c_z]`, frames `[B, L]` (rotations `[B, L, 3, 3]`,
    /// translations `[B, L, 3]`), `mask: [B, L]` (1 = residue present) → `[B, L, c_s]`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn forward(&self, s: &Tensor, z: &Tensor, frames: &Rigids, mask: &Tensor) -> Result<Tensor> {
        let (b, l, _) = s.dims3()?;
        let IpaConfig { d_pair, d_hidden, n_heads: h, n_qk_points, n_v_points, .. } = self.cfg;
        let mask = mask.to_dtype(DType::F32)?;
        // Centre the translations on their masked mean (a global translation).
        let w = mask.unsqueeze(2)?; // [B, L, 1]
        let count = w.sum_keepdim(1)?.maximum(1.0)?; // [B, 1, 1]
        let centroid = frames.trans.broadcast_mul(&w)?.sum_keepdim(1)?.broadcast_div(&count)?.detach(); // [B, 1, 3]
        let centred = Rigids::new(frames.rots.clone(), frames.trans.broadcast_sub(&centroid)?).map_err(se3_err)?;
        let point_frames = per_point(&centred)?;

        let heads = |lin: &Linear| -> Result<Tensor> {
            lin.forward(s)?.reshape((b, l, h, d_hidden))?.transpose(1, 2)?.contiguous() // [B, H, L, c]
        };
        let (q, k, v) = (heads(&self.q)?, heads(&self.k)?, heads(&self.v)?);
        let w_l = (1.0f64 / 3.0).sqrt();
        let w_c = (2.0 / (9.0 * n_qk_points as f64)).sqrt();

        // Scalar term and pair bias.
        let scalar = (q.matmul(&k.t()?)? * (1.0 / (d_hidden as f64).sqrt()))?; // [B, H, L, L]
        let bias = self.pair_bias.forward(z)?.permute((0, 3, 1, 2))?; // [B, H, L, L]
        // Point term: Σ_p |a_ip − b_jp|² = |a_i|² + |b_j|² − 2 a_i·b_j.
        let qp = self.global_points(&self.q_points, s, &point_frames, n_qk_points)?; // [B, H, L, P·3]
        let kp = self.global_points(&self.k_points, s, &point_frames, n_qk_points)?;
        let qn = qp.sqr()?.sum_keepdim(D::Minus1)?; // [B, H, L, 1]
        let kn = kp.sqr()?.sum_keepdim(D::Minus1)?.transpose(2, 3)?; // [B, H, 1, L]
        let d2 = (qn.broadcast_add(&kn)? - (qp.matmul(&kp.t()?)? * 2.0)?)?; // [B, H, L, L]
        let gamma = softplus(&(&self.head_weights + SOFTPLUS_INV_ONE)?)?.reshape((1, h, 1, 1))?;
        let point = d2.broadcast_mul(&(gamma * (w_c / 2.0))?)?;
        let key_mask = mask.affine(-f64::from(MASK_NEG), f64::from(MASK_NEG))?.reshape((b, 1, 1, l))?;
        let logits = (((scalar + bias)? - point)? * w_l)?.broadcast_add(&key_mask)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?; // [B, H, L, L]

        // Scalar values.
        let o = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h * d_hidden))?; // [B, L, H·c]
        // Pair values: for each (b, i), [H, L] @ [L, c_z].
        let probs_i = probs.transpose(1, 2)?.contiguous()?.reshape((b * l, h, l))?; // [B·L, H, L]
        let z_i = z.contiguous()?.reshape((b * l, l, d_pair))?; // [B·L, L, c_z]
        let o_pair = probs_i.matmul(&z_i)?.reshape((b, l, h * d_pair))?; // [B, L, H·c_z]
        // Point values, back in each residue's local frame.
        let vp = self.global_points(&self.v_points, s, &point_frames, n_v_points)?; // [B, H, L, P_v·3]
        let o_pts = probs.matmul(&vp)?.transpose(1, 2)?.reshape((b, l, h * n_v_points, 3))?; // [B, L, H·P_v, 3]
        let o_pts = point_frames.apply_inverse(&o_pts).map_err(se3_err)?; // [B, L, H·P_v, 3]
        let o_norm = (o_pts.sqr()?.sum(D::Minus1)? + POINT_NORM_EPS)?.sqrt()?; // [B, L, H·P_v]
        let o_pts = o_pts.reshape((b, l, h * n_v_points * 3))?;

        let cat = Tensor::cat(&[&o, &o_pts, &o_norm, &o_pair], D::Minus1)?; // [B, L, concat_width]
        self.out.forward(&cat)
    }
}

/// `softplus(x) = ln(1 + eˣ)`, stable for large `|x|`: `relu(x) + ln(1 + e^(−|x|))`.
///
/// # Errors
/// Candle errors.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Backbone update (AlphaFold2 Suppl. Alg. 23): `Linear(c_s, 6)` gives `(b, c, d, t)`; the
/// update is the rotation of the quaternion `(1, b, c, d) / |(1, b, c, d)|` and the translation
/// `t` (in the unit of the frames), applied as `T ← T ∘ T_update`.
///
/// Parameters: `linear.weight` `[6, c_s]`, `linear.bias` `[6]`. AlphaFold2 initialises them to
/// zero (the first update is the identity); do so with an init rule on the name.
#[derive(Debug, Clone)]
pub struct BackboneUpdate {
    linear: Linear,
}

impl BackboneUpdate {
    /// The update from a single representation of width `d_single`; parameters under `linear`.
    ///
    /// # Errors
    /// Candle VarBuilder errors.
    pub fn new(d_single: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { linear: candle_nn::linear(d_single, 6, vb.pp("linear"))? })
    }

    /// The update transforms: `s: [B, L, c_s]` → frames `[B, L]`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn update(&self, s: &Tensor) -> Result<Rigids> {
        let u = self.linear.forward(s)?; // [B, L, 6]
        let bcd = u.narrow(D::Minus1, 0, 3)?;
        let quat = Tensor::cat(&[&bcd.ones_like()?.narrow(D::Minus1, 0, 1)?, &bcd], D::Minus1)?; // [B, L, 4]
        let rots = Rotations::from_quaternions(&quat).map_err(se3_err)?;
        Rigids::new(rots, u.narrow(D::Minus1, 3, 3)?.contiguous()?).map_err(se3_err)
    }

    /// `frames ∘ update(s)`: the frames after one update (Alg. 20 line 10).
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn apply(&self, frames: &Rigids, s: &Tensor) -> Result<Rigids> {
        frames.compose(&self.update(s)?).map_err(se3_err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const CFG: IpaConfig = IpaConfig { d_single: 13, d_pair: 7, d_hidden: 5, n_heads: 3, n_qk_points: 4, n_v_points: 5 };

    fn rand_tensor(rng: &mut StdRng, shape: &[usize], scale: f32) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Random frames `[b, l]`: uniform-ish rotations from random quaternions, translations in ±`t`.
    fn rand_frames(rng: &mut StdRng, b: usize, l: usize, t: f32) -> Rigids {
        let q = rand_tensor(rng, &[b, l, 4], 1.0);
        let rots = Rotations::from_quaternions(&q).unwrap();
        Rigids::new(rots, rand_tensor(rng, &[b, l, 3], t)).unwrap()
    }

    fn build(seed: u64) -> (VarMap, InvariantPointAttention) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let ipa = InvariantPointAttention::new(&CFG, vb.pp("ipa")).unwrap();
        crate::init::init_seeded(&varmap, seed).unwrap();
        (varmap, ipa)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn global_rigid_motion_leaves_output_unchanged() {
        let (_, ipa) = build(3);
        let mut rng = StdRng::seed_from_u64(11);
        let (b, l) = (2, 9);
        let s = rand_tensor(&mut rng, &[b, l, CFG.d_single], 1.0);
        let z = rand_tensor(&mut rng, &[b, l, l, CFG.d_pair], 1.0);
        let frames = rand_frames(&mut rng, b, l, 2.0);
        let mask = Tensor::new(&[[1f32, 1., 1., 0., 1., 1., 1., 1., 0.], [1., 1., 1., 1., 1., 1., 1., 1., 1.]], &Device::Cpu).unwrap();
        let y = ipa.forward(&s, &z, &frames, &mask).unwrap();
        for trial in 0..3 {
            // One rigid motion per batch element, broadcast over residues.
            let g = rand_frames(&mut rng, b, 1, 10.0 * (trial + 1) as f32);
            let moved = g.compose(&frames).unwrap();
            let y2 = ipa.forward(&s, &z, &moved, &mask).unwrap();
            let d = max_diff(&y, &y2);
            assert!(d < 1e-4, "trial {trial}: max |Δ| = {d}");
        }
        // A different relative arrangement does change the output.
        let other = rand_frames(&mut rng, b, l, 2.0);
        assert!(max_diff(&y, &ipa.forward(&s, &z, &other, &mask).unwrap()) > 1e-3);
    }

    #[test]
    fn masked_residues_are_ignored() {
        let (_, ipa) = build(5);
        let mut rng = StdRng::seed_from_u64(2);
        let (b, l) = (1, 7);
        let s = rand_tensor(&mut rng, &[b, l, CFG.d_single], 1.0);
        let z = rand_tensor(&mut rng, &[b, l, l, CFG.d_pair], 1.0);
        let frames = rand_frames(&mut rng, b, l, 2.0);
        let keep = [1f32, 1., 0., 1., 1., 0., 1.];
        let mask = Tensor::new(&[keep], &Device::Cpu).unwrap();
        let y = ipa.forward(&s, &z, &frames, &mask).unwrap();
        // Scramble everything that belongs to the masked residues 2 and 5.
        let m1 = mask.reshape((b, l, 1)).unwrap();
        let mix = |x: &Tensor, noise: &Tensor, m: &Tensor| -> Tensor {
            (x.broadcast_mul(m).unwrap() + noise.broadcast_mul(&(m.affine(-1.0, 1.0).unwrap())).unwrap()).unwrap()
        };
        let s2 = mix(&s, &rand_tensor(&mut rng, &[b, l, CFG.d_single], 50.0), &m1);
        let pair_m = m1.broadcast_mul(&mask.reshape((b, 1, l)).unwrap()).unwrap().unsqueeze(3).unwrap(); // [B, L, L, 1]
        let z2 = mix(&z, &rand_tensor(&mut rng, &[b, l, l, CFG.d_pair], 50.0), &pair_m);
        let far = rand_frames(&mut rng, b, l, 500.0);
        let rot_m = m1.unsqueeze(3).unwrap();
        let frames2 = Rigids::new(
            Rotations::new(mix(&frames.rots.mats, &far.rots.mats, &rot_m)).unwrap(),
            mix(&frames.trans, &far.trans, &m1),
        )
        .unwrap();
        let y2 = ipa.forward(&s2, &z2, &frames2, &mask).unwrap();
        let kept: Vec<usize> = (0..l).filter(|&i| keep[i] == 1.0).collect();
        let idx = Tensor::new(kept.iter().map(|&i| i as u32).collect::<Vec<_>>().as_slice(), &Device::Cpu).unwrap();
        let d = max_diff(&y.index_select(&idx, 1).unwrap(), &y2.index_select(&idx, 1).unwrap());
        assert!(d < 1e-5, "unmasked outputs changed by {d}");
    }

    #[test]
    fn every_parameter_gets_a_gradient() {
        let (varmap, ipa) = build(7);
        let mut rng = StdRng::seed_from_u64(4);
        let (b, l) = (2, 5);
        let s = rand_tensor(&mut rng, &[b, l, CFG.d_single], 1.0);
        let z = rand_tensor(&mut rng, &[b, l, l, CFG.d_pair], 1.0);
        let frames = rand_frames(&mut rng, b, l, 2.0);
        let mask = Tensor::ones((b, l), DType::F32, &Device::Cpu).unwrap();
        let loss = ipa.forward(&s, &z, &frames, &mask).unwrap().sqr().unwrap().sum_all().unwrap();
        let missing = crate::train::vars_missing_grad(&varmap, &loss).unwrap();
        assert!(missing.is_empty(), "no gradient: {missing:?}");
        assert_eq!(varmap.all_vars().len(), 16);
    }

    #[test]
    fn backbone_update_is_identity_at_zero_and_composes() {
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let up = BackboneUpdate::new(4, vb.pp("bb")).unwrap();
        crate::init::init_seeded_with(&varmap, 0, |_, _| crate::init::InitRule::Zeros).unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        let frames = rand_frames(&mut rng, 1, 3, 3.0);
        let s = rand_tensor(&mut rng, &[1, 3, 4], 1.0);
        let same = up.apply(&frames, &s).unwrap();
        assert!(max_diff(&same.trans, &frames.trans) < 1e-6 && max_diff(&same.rots.mats, &frames.rots.mats) < 1e-6);
        // Bias (b, c, d, t) = (0, 0, 0, 1, 2, 3): a pure translation in the local frame.
        varmap.set_one("bb.linear.bias", Tensor::new(&[0f32, 0., 0., 1., 2., 3.], &Device::Cpu).unwrap()).unwrap();
        let moved = up.apply(&frames, &s).unwrap();
        let t_local = Tensor::new(&[[[1f32, 2., 3.]]], &Device::Cpu).unwrap().broadcast_as((1, 3, 3)).unwrap().contiguous().unwrap();
        let want = frames.apply(&t_local).unwrap();
        assert!(max_diff(&moved.trans, &want) < 1e-5);
        assert!(max_diff(&softplus(&Tensor::new(&[0f32, 100.0, -100.0], &Device::Cpu).unwrap()).unwrap(), &Tensor::new(&[std::f32::consts::LN_2, 100.0, 0.0], &Device::Cpu).unwrap()) < 1e-6);
    }
}
