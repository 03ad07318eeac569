//! Multi-head self-attention with additive pair bias and masks, QK-LayerNorm, rotary
//! position embeddings with fractional positions, block-causal masks and a KV cache for
//! block-wise autoregressive decoding (VAR, Tian et al. 2024; PAR, Qu et al. 2026).
//!
//! Masks are **additive** f32 tensors: `0` where attention is allowed and [`MASK_NEG`]
//! where it is not. A large finite value (instead of `−inf`) keeps fully masked rows finite
//! (they become uniform instead of NaN). Masks of different kinds combine by
//! `broadcast_add`.
//!
//! Softmax is `candle_nn::ops::softmax` (differentiable); the fused `softmax_last_dim` and
//! candle's `rope` kernels have no backward (RUST-NOTES §2.1).

use crate::layers::LayerNorm;
use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

/// Additive mask value for forbidden attention pairs.
pub const MASK_NEG: f32 = -1e9;

/// Optional extras for one attention call. All shapes use `Nk` = number of keys, which is
/// `Nq` without a cache and `cached + Nq` with a [`KvCache`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AttnInputs<'a> {
    /// Additive attention bias `[B, H, Nq, Nk]` (e.g. a pair bias projected per head).
    pub bias: Option<&'a Tensor>,
    /// Additive mask `[B or 1, 1, Nq or 1, Nk]` (see [`key_padding_mask`], [`block_causal_mask`]).
    pub mask: Option<&'a Tensor>,
    /// Rotary tables for the **new** tokens (queries and the keys appended this call).
    pub rope: Option<&'a RopeTables>,
}

/// Multi-head scaled dot-product self-attention (Vaswani et al. 2017) with optional
/// QK-LayerNorm (Dehghani et al. 2023; Proteina's `use_qkln`), an additive bias (pair bias,
/// as in AlphaFold2 / Proteina) and an additive mask.
///
/// Parameters: `q`, `k`, `v`, `o` Linears `[D, D]` (q/k/v without bias, `o` with bias);
/// with `qk_norm`, affine LayerNorms `q_norm`, `k_norm` over the full width `D` applied to
/// the projected queries and keys before splitting into heads and before RoPE.
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<LayerNorm>,
    k_norm: Option<LayerNorm>,
    n_heads: usize,
    head_dim: usize,
}

impl MultiHeadAttention {
    /// Self-attention over width `d_model` split into `n_heads` heads.
    ///
    /// # Errors
    /// If `d_model` is not a positive multiple of `n_heads`; candle VarBuilder errors.
    pub fn new(d_model: usize, n_heads: usize, qk_norm: bool, vb: VarBuilder) -> Result<Self> {
        if n_heads == 0 || d_model == 0 || !d_model.is_multiple_of(n_heads) {
            candle_core::bail!("MultiHeadAttention: d_model {d_model} is not a positive multiple of n_heads {n_heads}");
        }
        let (q_norm, k_norm) = if qk_norm {
            (Some(LayerNorm::new(d_model, true, vb.pp("q_norm"))?), Some(LayerNorm::new(d_model, true, vb.pp("k_norm"))?))
        } else {
            (None, None)
        };
        Ok(Self {
            q: candle_nn::linear_no_bias(d_model, d_model, vb.pp("q"))?,
            k: candle_nn::linear_no_bias(d_model, d_model, vb.pp("k"))?,
            v: candle_nn::linear_no_bias(d_model, d_model, vb.pp("v"))?,
            o: candle_nn::linear(d_model, d_model, vb.pp("o"))?,
            q_norm,
            k_norm,
            n_heads,
            head_dim: d_model / n_heads,
        })
    }

    /// Number of heads `H`.
    #[must_use]
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    /// Width of one head `D / H`.
    #[must_use]
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// `[B, N, D] → [B, H, N, D/H]` (contiguous).
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, _) = x.dims3()?;
        x.reshape((b, n, self.n_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// Self-attention of `x` `[B, Nq, D]` → `[B, Nq, D]`.
    ///
    /// With `cache = Some(c)`, the keys/values of `x` are appended to `c` and the queries
    /// attend to all cached keys plus the new ones (`Nk = cached + Nq`); no mask is needed
    /// for block-causal decoding, since every cached key lies in an earlier block.
    ///
    /// # Errors
    /// Candle shape errors (e.g. a bias or mask whose shape does not broadcast to
    /// `[B, H, Nq, Nk]`).
    pub fn forward(&self, x: &Tensor, inputs: &AttnInputs<'_>, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (b, nq, d) = x.dims3()?;
        let mut q = self.q.forward(x)?;
        let mut k = self.k.forward(x)?;
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let mut q = self.split_heads(&q)?;
        let mut k = self.split_heads(&k)?;
        let v = self.split_heads(&self.v.forward(x)?)?;
        if let Some(rope) = inputs.rope {
            q = apply_rope(&q, rope)?;
            k = apply_rope(&k, rope)?;
        }
        let (k, v) = match cache {
            Some(c) => c.append(&k, &v)?,
            None => (k, v),
        };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?; // [B, H, Nq, Nk]
        if let Some(bias) = inputs.bias {
            scores = scores.broadcast_add(bias)?;
        }
        if let Some(mask) = inputs.mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let out = probs.matmul(&v)?; // [B, H, Nq, Dh]
        let out = out.transpose(1, 2)?.reshape((b, nq, d))?;
        self.o.forward(&out)
    }
}

/// Key-value cache of one attention layer: keys and values `[B, H, T, D/H]` of all tokens
/// seen so far (keys already rotated if RoPE is used).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
}

impl KvCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// One empty cache per layer.
    #[must_use]
    pub fn for_layers(n_layers: usize) -> Vec<Self> {
        vec![Self::default(); n_layers]
    }

    /// Number of cached tokens `T`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.k.as_ref().and_then(|k| k.dim(2).ok()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop all cached tokens.
    pub fn reset(&mut self) {
        self.k = None;
        self.v = None;
    }

    /// Append new keys/values `[B, H, Nnew, Dh]` and return all keys/values
    /// `[B, H, T + Nnew, Dh]`.
    ///
    /// # Errors
    /// Candle shape errors if batch, heads or head width differ from the cached ones.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let k = match &self.k {
            Some(old) => Tensor::cat(&[old, k], 2)?,
            None => k.clone(),
        };
        let v = match &self.v {
            Some(old) => Tensor::cat(&[old, v], 2)?,
            None => v.clone(),
        };
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        Ok((k, v))
    }
}

/// Additive key-padding mask: `mask` `[B, N]` with 1 (or true) = real token, 0 = padding →
/// `[B, 1, 1, N]` f32 with `0` for real keys and [`MASK_NEG`] for padded keys.
///
/// # Errors
/// Candle shape/dtype errors.
pub fn key_padding_mask(mask: &Tensor) -> Result<Tensor> {
    let (b, n) = mask.dims2()?;
    let m = mask.to_dtype(DType::F32)?;
    // valid (1) → 0, padded (0) → MASK_NEG.
    m.affine(-f64::from(MASK_NEG), f64::from(MASK_NEG))?.reshape((b, 1, 1, n))
}

/// Block-causal additive mask `[1, 1, T, T]`, `T = Σ block_sizes`: a token of block `i`
/// attends to every token of blocks `0..=i` (full attention inside a block, causal across
/// blocks), as in VAR's next-scale prediction (Tian et al. 2024) and PAR (Qu et al. 2026).
///
/// # Errors
/// Candle errors building the tensor.
pub fn block_causal_mask(block_sizes: &[usize], device: &Device) -> Result<Tensor> {
    let block_of: Vec<usize> =
        block_sizes.iter().enumerate().flat_map(|(i, &s)| std::iter::repeat_n(i, s)).collect();
    let t = block_of.len();
    let data: Vec<f32> = block_of
        .iter()
        .flat_map(|&bq| block_of.iter().map(move |&bk| if bk <= bq { 0.0 } else { MASK_NEG }))
        .collect();
    Tensor::from_vec(data, (1, 1, t, t), device)
}

/// Plain causal additive mask `[1, 1, N, N]` (token `i` attends to `j ≤ i`).
///
/// # Errors
/// Candle errors building the tensor.
pub fn causal_mask(n: usize, device: &Device) -> Result<Tensor> {
    block_causal_mask(&vec![1; n], device)
}

/// Rotary position embedding (Su et al. 2021, RoFormer) for one head width, with the
/// "rotate-half" pairing `(i, i + Dh/2)` of GPT-NeoX / LLaMA and frequencies
/// `θ_i = base^(−2i/Dh)`, `i < Dh/2`. Positions may be fractional.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    head_dim: usize,
    base: f64,
}

/// Precomputed `cos`/`sin` tables `[B or 1, 1, N, Dh/2]` for a set of positions.
#[derive(Debug, Clone)]
pub struct RopeTables {
    /// `cos(pos · θ_i)`.
    pub cos: Tensor,
    /// `sin(pos · θ_i)`.
    pub sin: Tensor,
}

impl Rope {
    /// RoPE over a head width `head_dim` (even) with frequency base `base` (10 000 usually).
    ///
    /// # Errors
    /// If `head_dim` is zero or odd, or `base <= 1`.
    pub fn new(head_dim: usize, base: f64) -> Result<Self> {
        if head_dim == 0 || !head_dim.is_multiple_of(2) || base.partial_cmp(&1.0) != Some(std::cmp::Ordering::Greater) {
            candle_core::bail!("Rope: head_dim must be even and positive, base > 1 (got {head_dim}, {base})");
        }
        Ok(Self { head_dim, base })
    }

    /// Tables for `positions` `[N]` (shared by the batch) or `[B, N]` (per sequence, e.g.
    /// PAR's `linspace(1, L_b, n)` with a different `L_b` per protein).
    ///
    /// # Errors
    /// Candle shape errors for positions of rank other than 1 or 2.
    pub fn tables(&self, positions: &Tensor) -> Result<RopeTables> {
        let pos = positions.to_dtype(DType::F32)?;
        let pos = match pos.rank() {
            1 => pos.unsqueeze(0)?,
            2 => pos,
            r => candle_core::bail!("Rope::tables: positions must be [N] or [B, N], got rank {r}"),
        };
        let half = self.head_dim / 2;
        let freqs: Vec<f32> =
            (0..half).map(|i| self.base.powf(-2.0 * i as f64 / self.head_dim as f64) as f32).collect();
        let freqs = Tensor::from_vec(freqs, half, pos.device())?;
        let angles = pos.unsqueeze(D::Minus1)?.broadcast_mul(&freqs)?.unsqueeze(1)?; // [B, 1, N, half]
        Ok(RopeTables { cos: angles.cos()?, sin: angles.sin()? })
    }
}

/// Rotate `x` `[B, H, N, Dh]` by the tables (`[B or 1, 1, N, Dh/2]`), rotate-half pairing:
/// `y₁ = x₁ cos − x₂ sin`, `y₂ = x₁ sin + x₂ cos` with `x₁ = x[.., :Dh/2]`, `x₂ = x[.., Dh/2:]`.
/// Built from basic ops, so it is differentiable; it equals `candle_nn::rotary_emb::rope_slow`
/// for integer positions.
///
/// # Errors
/// Candle shape errors (e.g. odd `Dh` or mismatched `N`).
pub fn apply_rope(x: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    let dh = x.dim(D::Minus1)?;
    let half = dh / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let y1 = (x1.broadcast_mul(&tables.cos)? - x2.broadcast_mul(&tables.sin)?)?;
    let y2 = (x1.broadcast_mul(&tables.sin)? + x2.broadcast_mul(&tables.cos)?)?;
    Tensor::cat(&[y1, y2], D::Minus1)
}

/// 2-D RoPE: the first half of each head is rotated by `first` (e.g. residue index), the
/// second half by `second` (e.g. frame index); tables come from a [`Rope`] of width `Dh/2`.
/// `x`: `[B, H, N, Dh]` with `Dh` divisible by 4.
///
/// # Errors
/// Candle shape errors.
pub fn apply_rope_2d(x: &Tensor, first: &RopeTables, second: &RopeTables) -> Result<Tensor> {
    let dh = x.dim(D::Minus1)?;
    let a = apply_rope(&x.narrow(D::Minus1, 0, dh / 2)?, first)?;
    let b = apply_rope(&x.narrow(D::Minus1, dh / 2, dh - dh / 2)?, second)?;
    Tensor::cat(&[a, b], D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn rand_tensor(rng: &mut StdRng, shape: &[usize]) -> Tensor {
        Tensor::from_vec(rand_vec(rng, shape.iter().product()), shape, &Device::Cpu).unwrap()
    }

    fn build(d: usize, h: usize, qk_norm: bool, seed: u64) -> (VarMap, MultiHeadAttention) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let attn = MultiHeadAttention::new(d, h, qk_norm, vb.pp("attn")).unwrap();
        crate::init::init_seeded(&varmap, seed).unwrap();
        (varmap, attn)
    }

    fn get(varmap: &VarMap, name: &str) -> Vec<Vec<f32>> {
        let t = varmap.data().lock().unwrap()[name].as_tensor().clone();
        if t.rank() == 1 { vec![t.to_vec1().unwrap()] } else { t.to_vec2().unwrap() }
    }

    /// y = x Wᵀ (+ b) on one row.
    fn lin(w: &[Vec<f32>], x: &[f64]) -> Vec<f64> {
        w.iter().map(|row| row.iter().zip(x).map(|(a, b)| f64::from(*a) * b).sum()).collect()
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // index-based reference mirrors the formula
    fn attention_with_bias_and_mask_matches_naive_reference() {
        let (d, h, b, n) = (6, 3, 2, 5);
        let (varmap, attn) = build(d, h, false, 11);
        let mut rng = StdRng::seed_from_u64(5);
        let x = rand_tensor(&mut rng, &[b, n, d]);
        let bias = rand_tensor(&mut rng, &[b, h, n, n]);
        let pad = Tensor::new(&[[1f32, 1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]], &Device::Cpu).unwrap();
        let mask = key_padding_mask(&pad).unwrap().broadcast_add(&causal_mask(n, &Device::Cpu).unwrap()).unwrap();
        let inputs = AttnInputs { bias: Some(&bias), mask: Some(&mask), rope: None };
        let got = attn.forward(&x, &inputs, None).unwrap().to_vec3::<f32>().unwrap();

        let (wq, wk, wv, wo, bo) =
            (get(&varmap, "attn.q.weight"), get(&varmap, "attn.k.weight"), get(&varmap, "attn.v.weight"), get(&varmap, "attn.o.weight"), get(&varmap, "attn.o.bias"));
        let xs = x.to_vec3::<f32>().unwrap();
        let bs: Vec<Vec<Vec<Vec<f32>>>> = (0..b).map(|i| bias.get(i).unwrap().to_vec3().unwrap()).collect();
        let padv = pad.to_vec2::<f32>().unwrap();
        let dh = d / h;
        for bi in 0..b {
            let row = |i: usize| xs[bi][i].iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
            let qs: Vec<Vec<f64>> = (0..n).map(|i| lin(&wq, &row(i))).collect();
            let ks: Vec<Vec<f64>> = (0..n).map(|i| lin(&wk, &row(i))).collect();
            let vs: Vec<Vec<f64>> = (0..n).map(|i| lin(&wv, &row(i))).collect();
            for i in 0..n {
                let mut concat = vec![0.0; d];
                for hh in 0..h {
                    let r = hh * dh..(hh + 1) * dh;
                    let allowed: Vec<usize> = (0..n).filter(|&j| j <= i && padv[bi][j] > 0.5).collect();
                    let logits: Vec<f64> = allowed
                        .iter()
                        .map(|&j| {
                            let dot: f64 = qs[i][r.clone()].iter().zip(&ks[j][r.clone()]).map(|(a, c)| a * c).sum();
                            dot / (dh as f64).sqrt() + f64::from(bs[bi][hh][i][j])
                        })
                        .collect();
                    let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = logits.iter().map(|l| (l - mx).exp()).sum();
                    for (a, &j) in allowed.iter().enumerate() {
                        let p = (logits[a] - mx).exp() / z;
                        for c in r.clone() {
                            concat[c] += p * vs[j][c];
                        }
                    }
                }
                let out = lin(&wo, &concat);
                for c in 0..d {
                    let want = out[c] + f64::from(bo[0][c]);
                    assert!((f64::from(got[bi][i][c]) - want).abs() < 1e-5, "b{bi} i{i} c{c}: {} vs {want}", got[bi][i][c]);
                }
            }
        }
    }

    #[test]
    fn block_causal_mask_shape_and_values() {
        let m = block_causal_mask(&[1, 2, 3], &Device::Cpu).unwrap();
        assert_eq!(m.dims(), &[1, 1, 6, 6]);
        let m = m.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        let block = [0, 1, 1, 2, 2, 2];
        for i in 0..6 {
            for j in 0..6 {
                let want = if block[j] <= block[i] { 0.0 } else { MASK_NEG };
                assert_eq!(m[i][j], want, "({i}, {j})");
            }
        }
        // Within block 1 both directions are allowed; block 0 cannot see block 1.
        assert_eq!((m[1][2], m[2][1], m[0][1]), (0.0, 0.0, MASK_NEG));
        let c = causal_mask(3, &Device::Cpu).unwrap().squeeze(0).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(c, vec![vec![0.0, MASK_NEG, MASK_NEG], vec![0.0, 0.0, MASK_NEG], vec![0.0, 0.0, 0.0]]);
        let kp = key_padding_mask(&Tensor::new(&[[1u8, 0, 1]], &Device::Cpu).unwrap()).unwrap();
        assert_eq!(kp.dims(), &[1, 1, 1, 3]);
        assert_eq!(kp.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![0.0, MASK_NEG, 0.0]);
    }

    #[test]
    fn fully_masked_rows_stay_finite() {
        let (_, attn) = build(4, 2, true, 1);
        let mut rng = StdRng::seed_from_u64(2);
        let x = rand_tensor(&mut rng, &[1, 3, 4]);
        let pad = Tensor::zeros((1, 3), DType::F32, &Device::Cpu).unwrap();
        let mask = key_padding_mask(&pad).unwrap();
        let y = attn.forward(&x, &AttnInputs { mask: Some(&mask), ..Default::default() }, None).unwrap();
        assert!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn rope_matches_candle_rope_slow_for_integer_positions() {
        let mut rng = StdRng::seed_from_u64(9);
        let (b, h, n, dh) = (2, 3, 5, 8);
        let x = rand_tensor(&mut rng, &[b, h, n, dh]);
        let rope = Rope::new(dh, 10_000.0).unwrap();
        let pos = Tensor::arange(0f32, n as f32, &Device::Cpu).unwrap();
        let t = rope.tables(&pos).unwrap();
        let ours = apply_rope(&x, &t).unwrap();
        let cos = t.cos.squeeze(0).unwrap().squeeze(0).unwrap();
        let sin = t.sin.squeeze(0).unwrap().squeeze(0).unwrap();
        let theirs = candle_nn::rotary_emb::rope_slow(&x, &cos, &sin).unwrap();
        let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn rope_scores_depend_only_on_fractional_offsets() {
        let mut rng = StdRng::seed_from_u64(4);
        let dh = 6;
        let rope = Rope::new(dh, 100.0).unwrap();
        let q = rand_tensor(&mut rng, &[1, 1, 1, dh]);
        let k = rand_tensor(&mut rng, &[1, 1, 1, dh]);
        let score = |pq: f32, pk: f32| {
            let tq = rope.tables(&Tensor::new(&[pq], &Device::Cpu).unwrap()).unwrap();
            let tk = rope.tables(&Tensor::new(&[pk], &Device::Cpu).unwrap()).unwrap();
            let a = apply_rope(&q, &tq).unwrap();
            let b = apply_rope(&k, &tk).unwrap();
            (a * b).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()
        };
        let s1 = score(1.25, 3.5);
        let s2 = score(10.75, 13.0);
        assert!((s1 - s2).abs() < 1e-4, "{s1} vs {s2}");
        assert!((score(0.0, 0.0) - (q.clone() * k.clone()).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).abs() < 1e-6);
        // Rotation preserves norms; per-batch positions broadcast over heads.
        let x = rand_tensor(&mut rng, &[2, 3, 4, dh]);
        let pos = Tensor::new(&[[1f32, 1.5, 2.0, 2.5], [1.0, 4.0, 7.0, 10.0]], &Device::Cpu).unwrap();
        let y = apply_rope(&x, &rope.tables(&pos).unwrap()).unwrap();
        let nx = x.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let ny = y.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((nx - ny).abs() < 1e-4);
        assert!(Rope::new(5, 100.0).is_err() && Rope::new(4, 1.0).is_err());
    }

    #[test]
    fn rope_2d_rotates_halves_independently() {
        let mut rng = StdRng::seed_from_u64(8);
        let x = rand_tensor(&mut rng, &[1, 2, 3, 8]);
        let rope = Rope::new(4, 100.0).unwrap();
        let zero = rope.tables(&Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap()).unwrap();
        let pos = rope.tables(&Tensor::new(&[0.5f32, 2.0, 3.0], &Device::Cpu).unwrap()).unwrap();
        let y = apply_rope_2d(&x, &zero, &pos).unwrap();
        // First half untouched by zero positions, second half rotated.
        let a = y.narrow(3, 0, 4).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, x.narrow(3, 0, 4).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let b2 = apply_rope(&x.narrow(3, 4, 4).unwrap(), &pos).unwrap();
        let diff = (y.narrow(3, 4, 4).unwrap() - b2).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn bad_head_count_is_an_error() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        assert!(MultiHeadAttention::new(10, 3, false, vb.clone()).is_err());
        assert!(MultiHeadAttention::new(10, 0, false, vb).is_err());
    }
}
