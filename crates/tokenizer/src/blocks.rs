//! A pre-norm transformer block whose attention is biased by a pair representation and
//! also reads it as values (the scalar and pair parts of AlphaFold2's IPA, Suppl. Alg. 22,
//! without points). The encoder runs it over geometric pair features; the decoder trunk
//! over the decoded pair representation.
//!
//! Module tree: `attn_norm`, `q`, `k`, `v` (no bias), `pair_bias` (no bias), `out`,
//! `mlp_norm`, `mlp` ([`SwiGlu`]).

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use protforge_nn::{LayerNorm, SwiGlu};

/// Pair-biased self-attention + SwiGLU, each behind a LayerNorm with a residual.
///
/// For head `h`: `a_ij = softmax_j(q_i·k_j / √d_h + w_h·z_ij + mask_j)`; outputs
/// `Σ_j a_ij v_j` and `Σ_j a_ij z_ij` for every head, concatenated and projected by `out`.
#[derive(Debug, Clone)]
pub struct PairBlock {
    attn_norm: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    pair_bias: Linear,
    out: Linear,
    mlp_norm: LayerNorm,
    mlp: SwiGlu,
    heads: usize,
    pair_dim: usize,
}

impl PairBlock {
    /// A block over width `dim` (multiple of `heads`) reading pairs of width `pair_dim`.
    ///
    /// # Errors
    /// `dim` not a multiple of `heads`; candle VarBuilder errors.
    pub fn new(dim: usize, heads: usize, pair_dim: usize, mlp_hidden: usize, vb: VarBuilder) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            candle_core::bail!("PairBlock: width {dim} is not a multiple of {heads} heads");
        }
        Ok(Self {
            attn_norm: LayerNorm::new(dim, true, vb.pp("attn_norm"))?,
            q: candle_nn::linear_no_bias(dim, dim, vb.pp("q"))?,
            k: candle_nn::linear_no_bias(dim, dim, vb.pp("k"))?,
            v: candle_nn::linear_no_bias(dim, dim, vb.pp("v"))?,
            pair_bias: candle_nn::linear_no_bias(pair_dim, heads, vb.pp("pair_bias"))?,
            out: candle_nn::linear(dim + heads * pair_dim, dim, vb.pp("out"))?,
            mlp_norm: LayerNorm::new(dim, true, vb.pp("mlp_norm"))?,
            mlp: SwiGlu::new(dim, mlp_hidden, vb.pp("mlp"))?,
            heads,
            pair_dim,
        })
    }

    /// `s: [B, L, D]`, `z: [B, L, L, C]`, `key_mask: [B, 1, 1, L]` additive
    /// ([`protforge_nn::attention::key_padding_mask`]) → `[B, L, D]`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn forward(&self, s: &Tensor, z: &Tensor, key_mask: &Tensor) -> Result<Tensor> {
        let (b, l, d) = s.dims3()?;
        let (h, dh) = (self.heads, d / self.heads);
        let x = self.attn_norm.forward(s)?;
        let split = |t: Tensor| -> Result<Tensor> { t.reshape((b, l, h, dh))?.transpose(1, 2)?.contiguous() }; // [B, H, L, dh]
        let q = split(self.q.forward(&x)?)?;
        let k = split(self.k.forward(&x)?)?;
        let v = split(self.v.forward(&x)?)?;
        let bias = self.pair_bias.forward(z)?.permute((0, 3, 1, 2))?; // [B, H, L, L]
        let logits = ((q.matmul(&k.t()?)? * (1.0 / (dh as f64).sqrt()))? + bias)?.broadcast_add(key_mask)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?; // [B, H, L, L]
        let o = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?; // [B, L, D]
        let probs_i = probs.transpose(1, 2)?.contiguous()?.reshape((b * l, h, l))?; // [B·L, H, L]
        let z_i = z.contiguous()?.reshape((b * l, l, self.pair_dim))?; // [B·L, L, C]
        let o_pair = probs_i.matmul(&z_i)?.reshape((b, l, h * self.pair_dim))?; // [B, L, H·C]
        let s = (s + self.out.forward(&Tensor::cat(&[&o, &o_pair], D::Minus1)?)?)?;
        &s + self.mlp.forward(&self.mlp_norm.forward(&s)?)?
    }
}
