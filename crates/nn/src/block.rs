//! A pre-norm transformer block: attention + SwiGLU, each behind a LayerNorm
//! (`x + f(LN(x))`) or, with a conditioning, behind an AdaLN-Zero
//! (`x + gate(c) · f(LN(x)·(1 + scale(c)) + shift(c))`; DiT, Peebles & Xie 2023;
//! Proteina, Geffner et al. 2025).
//!
//! Module tree: `attn_norm`, `attn` ([`MultiHeadAttention`]), `mlp_norm`, `mlp` ([`SwiGlu`]).

use crate::attention::{AttnInputs, KvCache, MultiHeadAttention};
use crate::layers::{AdaLn, LayerNorm, SwiGlu, gated_residual};
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a [`TransformerBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockConfig {
    /// Token width `D`.
    pub d_model: usize,
    /// Number of attention heads (`D` must be a multiple).
    pub n_heads: usize,
    /// Hidden width of the SwiGLU MLP.
    pub mlp_hidden: usize,
    /// Width `C` of the conditioning; `None` gives plain affine LayerNorms.
    pub d_cond: Option<usize>,
    /// QK-LayerNorm in attention.
    pub qk_norm: bool,
}

#[derive(Debug, Clone)]
enum Norm {
    Plain(LayerNorm),
    Ada(AdaLn),
}

impl Norm {
    fn new(cfg: &BlockConfig, vb: VarBuilder) -> Result<Self> {
        Ok(match cfg.d_cond {
            Some(c) => Self::Ada(AdaLn::new(cfg.d_model, c, vb)?),
            None => Self::Plain(LayerNorm::new(cfg.d_model, true, vb)?),
        })
    }

    /// Returns the normalised input and the residual gate (None = 1).
    fn forward(&self, x: &Tensor, cond: Option<&Tensor>) -> Result<(Tensor, Option<Tensor>)> {
        match (self, cond) {
            (Self::Plain(ln), None) => Ok((ln.forward(x)?, None)),
            (Self::Ada(ada), Some(c)) => {
                let (y, g) = ada.forward(x, c)?;
                Ok((y, Some(g)))
            }
            (Self::Plain(_), Some(_)) => candle_core::bail!("TransformerBlock: conditioning given but d_cond is None"),
            (Self::Ada(_), None) => candle_core::bail!("TransformerBlock: d_cond is set but no conditioning was given"),
        }
    }
}

fn residual(x: &Tensor, y: &Tensor, gate: Option<&Tensor>) -> Result<Tensor> {
    match gate {
        Some(g) => gated_residual(x, y, g),
        None => x + y,
    }
}

/// Pre-norm transformer block (attention then SwiGLU), optionally AdaLN-Zero conditioned.
/// With a conditioning, it is the identity at initialisation.
#[derive(Debug, Clone)]
pub struct TransformerBlock {
    attn_norm: Norm,
    attn: MultiHeadAttention,
    mlp_norm: Norm,
    mlp: SwiGlu,
}

impl TransformerBlock {
    /// Build the block; parameters under `attn_norm`, `attn`, `mlp_norm`, `mlp`.
    ///
    /// # Errors
    /// Bad head count; candle VarBuilder errors.
    pub fn new(cfg: &BlockConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            attn_norm: Norm::new(cfg, vb.pp("attn_norm"))?,
            attn: MultiHeadAttention::new(cfg.d_model, cfg.n_heads, cfg.qk_norm, vb.pp("attn"))?,
            mlp_norm: Norm::new(cfg, vb.pp("mlp_norm"))?,
            mlp: SwiGlu::new(cfg.d_model, cfg.mlp_hidden, vb.pp("mlp"))?,
        })
    }

    /// `x: [B, N, D]`, `cond: [B, N or 1, C]` (required iff `d_cond` is set) → `[B, N, D]`.
    /// With a cache, `x` holds only the new tokens (see [`MultiHeadAttention::forward`]).
    ///
    /// # Errors
    /// Candle shape errors; conditioning given/missing against the config.
    pub fn forward(
        &self,
        x: &Tensor,
        cond: Option<&Tensor>,
        inputs: &AttnInputs<'_>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (h, gate) = self.attn_norm.forward(x, cond)?;
        let x = residual(x, &self.attn.forward(&h, inputs, cache)?, gate.as_ref())?;
        let (h, gate) = self.mlp_norm.forward(&x, cond)?;
        residual(&x, &self.mlp.forward(&h)?, gate.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn rand_tensor(rng: &mut StdRng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn adaln_zero_block_is_identity_at_init() {
        let cfg = BlockConfig { d_model: 12, n_heads: 3, mlp_hidden: 17, d_cond: Some(5), qk_norm: true };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let block = TransformerBlock::new(&cfg, vb.pp("block")).unwrap();
        crate::init::init_seeded(&varmap, 7).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let x = rand_tensor(&mut rng, &[2, 4, 12]);
        let c = rand_tensor(&mut rng, &[2, 4, 5]);
        let y = block.forward(&x, Some(&c), &AttnInputs::default(), None).unwrap();
        assert_eq!(y.to_vec3::<f32>().unwrap(), x.to_vec3::<f32>().unwrap());
        // Per-sequence conditioning too, and a plain block is not the identity.
        let c1 = rand_tensor(&mut rng, &[2, 1, 5]);
        let y1 = block.forward(&x, Some(&c1), &AttnInputs::default(), None).unwrap();
        assert_eq!(y1.to_vec3::<f32>().unwrap(), x.to_vec3::<f32>().unwrap());
        assert!(block.forward(&x, None, &AttnInputs::default(), None).is_err());
        let plain = TransformerBlock::new(&BlockConfig { d_cond: None, ..cfg }, vb.pp("plain")).unwrap();
        crate::init::init_seeded(&varmap, 7).unwrap();
        let z = plain.forward(&x, None, &AttnInputs::default(), None).unwrap();
        let diff = (z - &x).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff > 1e-3);
    }
}
