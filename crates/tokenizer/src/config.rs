//! Tokenizer architecture (`config.json` beside `model.safetensors`). Every shared size is
//! declared once: the post-quantizer width is the decoder's single width, `relpos_max` serves
//! the encoder and the decoder, `quantizer.bits` fixes the codebook.

use crate::TokenizerError;
use serde::{Deserialize, Serialize};

/// The SE(3)-invariant encoder: a transformer over per-residue local-frame features with
/// pair-biased attention over geometric pair features (see [`crate::features`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Token width.
    pub dim: usize,
    /// Pair-attention blocks.
    pub layers: usize,
    /// Attention heads (`dim` must be a multiple).
    pub heads: usize,
    /// Width of the embedded pair features.
    pub pair_dim: usize,
    /// Hidden width of the SwiGLU MLP as a multiple of `dim`.
    pub mlp_ratio: usize,
    /// Gaussian radial basis functions of the CA–CA distance.
    pub rbf_bins: usize,
    /// Centre of the last radial basis function (Å); the first is at 0.
    pub rbf_max_ang: f64,
}

/// The lookup-free quantizer (LFQ; Yu et al. 2024, MAGVIT-v2; DPLM-2's `modules/lfq.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizerConfig {
    /// Bits per residue; the codebook has `2^bits` codes (DPLM-2: 13 → 8192).
    pub bits: usize,
    /// Weight of the entropy loss (DPLM-2: 0.1).
    pub entropy_weight: f64,
    /// Weight of the commitment loss (DPLM-2: 0.25).
    pub commitment_weight: f64,
    /// Softmax temperature of the entropy loss (DPLM-2: 0.01).
    pub entropy_temperature: f64,
}

/// The post-quantizer: `LN(bits) → Linear(bits, dim) → ReLU → Linear(dim, dim)`, then a
/// transformer with rotary position embeddings and a final LayerNorm (DPLM-2 `post_quant`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostQuantConfig {
    /// Width; also the single width `c_s` of the structure decoder.
    pub dim: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Hidden width of the SwiGLU MLP as a multiple of `dim`.
    pub mlp_ratio: usize,
    /// RoPE frequency base.
    pub rope_base: f64,
}

/// The structure decoder: pair initialisation, pair-attention trunk, AlphaFold2 structure
/// module with IPA (shared weights across iterations) and a distogram head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    /// Width of the pair representation `c_z`.
    pub pair_dim: usize,
    /// Residual pair MLPs applied after the pair initialisation.
    pub pair_transitions: usize,
    /// Pair-attention blocks refining the single representation before the structure module.
    pub trunk_layers: usize,
    /// Heads of the trunk blocks.
    pub trunk_heads: usize,
    /// Structure-module iterations (AlphaFold2: 8; weights shared).
    pub iterations: usize,
    /// IPA heads.
    pub ipa_heads: usize,
    /// IPA scalar width per head.
    pub ipa_hidden: usize,
    /// IPA query/key points per head.
    pub ipa_qk_points: usize,
    /// IPA value points per head.
    pub ipa_v_points: usize,
    /// Å per unit of the structure module's translations (AlphaFold2: 10, i.e. nm).
    pub trans_scale_ang: f64,
    /// Distogram bins (the first and last are open-ended).
    pub distogram_bins: usize,
    /// First distogram bin edge (Å; AlphaFold2: 2.3125).
    pub distogram_min_ang: f64,
    /// Last distogram bin edge (Å; AlphaFold2: 21.6875).
    pub distogram_max_ang: f64,
}

/// The full tokenizer (`weights/tokenizer/config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// Relative sequence positions are clipped to `±relpos_max` (encoder and decoder).
    pub relpos_max: usize,
    /// Encoder.
    pub encoder: EncoderConfig,
    /// Quantizer.
    pub quantizer: QuantizerConfig,
    /// Post-quantizer.
    pub post_quant: PostQuantConfig,
    /// Decoder.
    pub decoder: DecoderConfig,
}

impl TokenizerConfig {
    /// The architecture sized for training on 2 CPU cores: DPLM-2's quantizer and
    /// post-quantizer exactly (13 bits, 128-d, 4 layers, 8 heads), a 4-layer 128-d encoder,
    /// a 2-block pair-attention trunk and a 6-iteration IPA structure module with `c_z = 32`
    /// (no pair transitions: every `[B, L, L, c_z]` op costs about as much as a whole
    /// attention layer on this hardware).
    #[must_use]
    pub fn cpu() -> Self {
        Self {
            relpos_max: 32,
            encoder: EncoderConfig { dim: 128, layers: 4, heads: 8, pair_dim: 32, mlp_ratio: 2, rbf_bins: 16, rbf_max_ang: 20.0 },
            quantizer: QuantizerConfig::dplm2(),
            post_quant: PostQuantConfig { dim: 128, layers: 4, heads: 8, mlp_ratio: 2, rope_base: 10_000.0 },
            decoder: DecoderConfig {
                pair_dim: 32,
                pair_transitions: 0,
                trunk_layers: 2,
                trunk_heads: 8,
                iterations: 6,
                ipa_heads: 8,
                ipa_hidden: 16,
                ipa_qk_points: 4,
                ipa_v_points: 8,
                trans_scale_ang: 10.0,
                distogram_bins: 64,
                distogram_min_ang: 2.3125,
                distogram_max_ang: 21.6875,
            },
        }
    }

    /// A tiny model for tests (odd sizes to catch shape bugs; the quantizer is DPLM-2's).
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            relpos_max: 5,
            encoder: EncoderConfig { dim: 15, layers: 2, heads: 3, pair_dim: 7, mlp_ratio: 2, rbf_bins: 6, rbf_max_ang: 20.0 },
            quantizer: QuantizerConfig::dplm2(),
            post_quant: PostQuantConfig { dim: 12, layers: 1, heads: 3, mlp_ratio: 2, rope_base: 100.0 },
            decoder: DecoderConfig {
                pair_dim: 6,
                pair_transitions: 1,
                trunk_layers: 1,
                trunk_heads: 2,
                iterations: 2,
                ipa_heads: 2,
                ipa_hidden: 4,
                ipa_qk_points: 2,
                ipa_v_points: 3,
                trans_scale_ang: 10.0,
                distogram_bins: 9,
                distogram_min_ang: 2.3125,
                distogram_max_ang: 21.6875,
            },
        }
    }

    /// Number of codes `2^bits`.
    #[must_use]
    pub fn n_codes(&self) -> usize {
        1 << self.quantizer.bits
    }

    /// Check the configuration.
    ///
    /// # Errors
    /// [`TokenizerError::BadConfig`] naming the first inconsistent field.
    pub fn validate(&self) -> Result<(), TokenizerError> {
        let bad = |m: String| Err(TokenizerError::BadConfig(m));
        let e = &self.encoder;
        let q = &self.quantizer;
        let p = &self.post_quant;
        let d = &self.decoder;
        let positive = [
            ("relpos_max", self.relpos_max),
            ("encoder.dim", e.dim),
            ("encoder.heads", e.heads),
            ("encoder.pair_dim", e.pair_dim),
            ("encoder.mlp_ratio", e.mlp_ratio),
            ("encoder.rbf_bins", e.rbf_bins),
            ("post_quant.dim", p.dim),
            ("post_quant.heads", p.heads),
            ("post_quant.mlp_ratio", p.mlp_ratio),
            ("decoder.pair_dim", d.pair_dim),
            ("decoder.trunk_heads", d.trunk_heads),
            ("decoder.iterations", d.iterations),
            ("decoder.ipa_heads", d.ipa_heads),
            ("decoder.ipa_hidden", d.ipa_hidden),
            ("decoder.ipa_qk_points", d.ipa_qk_points),
            ("decoder.ipa_v_points", d.ipa_v_points),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} must be positive"));
        }
        if !(1..=13).contains(&q.bits) {
            return bad(format!("quantizer.bits {} must be in 1..=13 (4-digit token text)", q.bits));
        }
        for (name, v) in [
            ("quantizer.entropy_weight", q.entropy_weight),
            ("quantizer.commitment_weight", q.commitment_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} {v} must be a non-negative number"));
            }
        }
        if !(q.entropy_temperature.is_finite() && q.entropy_temperature > 0.0) {
            return bad(format!("quantizer.entropy_temperature {} must be positive", q.entropy_temperature));
        }
        for (name, dim, heads) in
            [("encoder", e.dim, e.heads), ("post_quant", p.dim, p.heads), ("decoder trunk", p.dim, d.trunk_heads)]
        {
            if !dim.is_multiple_of(heads) {
                return bad(format!("{name}: width {dim} is not divisible by {heads} heads"));
            }
        }
        if !(p.dim / p.heads).is_multiple_of(2) {
            return bad(format!("post_quant: head width {} must be even for rotary embeddings", p.dim / p.heads));
        }
        if p.rope_base.is_nan() || p.rope_base <= 1.0 {
            return bad(format!("post_quant.rope_base {} must exceed 1", p.rope_base));
        }
        if !(e.rbf_max_ang.is_finite() && e.rbf_max_ang > 0.0) || e.rbf_bins < 2 {
            return bad("encoder: need rbf_bins >= 2 and rbf_max_ang > 0".to_string());
        }
        if !(d.trans_scale_ang.is_finite() && d.trans_scale_ang > 0.0) {
            return bad(format!("decoder.trans_scale_ang {} must be positive", d.trans_scale_ang));
        }
        if d.distogram_bins < 2 || !(d.distogram_min_ang > 0.0 && d.distogram_max_ang > d.distogram_min_ang) {
            return bad("decoder: need distogram_bins >= 2 and 0 < distogram_min_ang < distogram_max_ang".to_string());
        }
        Ok(())
    }
}

impl QuantizerConfig {
    /// DPLM-2's LFQ settings: 13 bits, entropy weight 0.1 at temperature 0.01, commitment 0.25.
    #[must_use]
    pub fn dplm2() -> Self {
        Self { bits: 13, entropy_weight: 0.1, commitment_weight: 0.25, entropy_temperature: 0.01 }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for cfg in [TokenizerConfig::cpu(), TokenizerConfig::tiny()] {
            cfg.validate().unwrap();
            let back: TokenizerConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
            assert_eq!(back, cfg);
        }
        assert_eq!(TokenizerConfig::cpu().n_codes(), 8192);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let mut v = serde_json::to_value(TokenizerConfig::tiny()).unwrap();
        v["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<TokenizerConfig>(v).is_err());
        let mut cfg = TokenizerConfig::tiny();
        cfg.quantizer.bits = 14;
        assert!(cfg.validate().unwrap_err().to_string().contains("bits"));
        let mut cfg = TokenizerConfig::tiny();
        cfg.encoder.heads = 4;
        assert!(cfg.validate().unwrap_err().to_string().contains("divisible"));
        let mut cfg = TokenizerConfig::tiny();
        cfg.decoder.iterations = 0;
        assert!(cfg.validate().unwrap_err().to_string().contains("iterations"));
    }
}
