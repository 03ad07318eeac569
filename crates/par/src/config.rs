//! PAR configuration: architecture (travels with the weights in `config.json`) and training
//! settings. Every shared dimension is declared once.

use crate::ParError;
use crate::scales::{Downsample, ScaleSpec};
use protforge_flow::{Integrator, ScaleSteps};
use serde::{Deserialize, Serialize};

/// Architecture of the autoregressive transformer `T_θ` (PAR §3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArConfig {
    /// Token width.
    pub dim: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads (`dim` must divide evenly).
    pub heads: usize,
    /// Hidden width of the SwiGLU transition, as a multiple of `dim`.
    pub mlp_ratio: usize,
}

/// Architecture of the flow decoder `v_θ` (PAR §3.3, Proteina's non-equivariant transformer
/// scaled for CPU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    /// Token width.
    pub dim: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Hidden width of the SwiGLU transition, as a multiple of `dim`.
    pub mlp_ratio: usize,
    /// Width of the AdaLN conditioning (time embedding + AR embedding `z`).
    pub cond_dim: usize,
    /// Distance bins of the current coordinates `x_t` (Proteina: 64 bins, 0.1–3 nm).
    pub dist_bins: usize,
    /// Largest binned distance (nm).
    pub dist_max_nm: f64,
    /// Bins of relative sequence separation (signed, clipped).
    pub seq_sep_bins: usize,
    /// Feed the previous data estimate back as input (Proteina/PAR self-conditioning).
    pub self_condition: bool,
    /// Per-residue features of the sequence neighbours: displacements to residues i±1 and
    /// i±2 of `x_t` and of the self-conditioning estimate (nm / 0.38), through a zero-initialised
    /// projection. They give the decoder the exact local geometry (CA–CA bonds, clashes) that
    /// the 0.15 nm-wide distance bins blur. Off in configs that predate it.
    #[serde(default)]
    pub neighbour_features: bool,
    /// One-hot bins of the rounded sequence separation `Δ ∈ [−K, K]` between the two points of
    /// a pair (residue-index units), on top of the log bins: `2K + 1` pair features. The 21 log
    /// bins put Δ = ±1 and ±2 in one bin, so without these the bias cannot single out the
    /// bonded neighbour (Proteina one-hot encodes every offset up to ±63). 0 = off (configs
    /// that predate it).
    #[serde(default)]
    pub seq_sep_exact: usize,
}

/// Full PAR model configuration (`weights/par/config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParConfig {
    /// How scale sizes are chosen from the length.
    pub scales: ScaleSpec,
    /// Kernel of `Down`.
    pub downsample: Downsample,
    /// Longest chain the model accepts (residues).
    pub max_len: usize,
    /// Largest number of scales (embedding table size).
    pub max_scales: usize,
    /// Width of sinusoidal position/time features before projection.
    pub fourier_dim: usize,
    /// AR transformer.
    pub ar: ArConfig,
    /// Flow decoder.
    pub decoder: DecoderConfig,
    /// Tell both networks the resolution of the scale they work on: `[s = L, ln(L / s)]` for
    /// `s` points of a length-`L` chain, through a zero-initialised projection into the AR
    /// tokens and the decoder's conditioning. Without it, a coarse scale just below `L` (128
    /// points of a 130-residue chain: window centroids 1.9–3.8 Å apart) and the full-resolution
    /// scale look the same, and the decoder hedges between their spacings. Off in configs that
    /// predate it.
    #[serde(default)]
    pub resolution_features: bool,
}

impl ParConfig {
    /// A small model that trains on 2 CPU cores: 3 scales `{64, 128, 256}`.
    #[must_use]
    pub fn cpu_small() -> Self {
        Self {
            scales: ScaleSpec::default_three(),
            downsample: Downsample::Area,
            max_len: 512,
            max_scales: 8,
            fourier_dim: 64,
            ar: ArConfig { dim: 96, layers: 3, heads: 4, mlp_ratio: 2 },
            decoder: DecoderConfig {
                dim: 128,
                layers: 5,
                heads: 4,
                mlp_ratio: 2,
                cond_dim: 96,
                dist_bins: 20,
                dist_max_nm: 3.0,
                seq_sep_bins: 21,
                self_condition: true,
                neighbour_features: true,
                seq_sep_exact: 0,
            },
            resolution_features: false,
        }
    }

    /// A tiny model for tests (odd sizes to catch shape bugs).
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            scales: ScaleSpec::Lengths { sizes: vec![4, 8] },
            downsample: Downsample::Area,
            max_len: 64,
            max_scales: 4,
            fourier_dim: 10,
            ar: ArConfig { dim: 12, layers: 2, heads: 3, mlp_ratio: 2 },
            decoder: DecoderConfig {
                dim: 15,
                layers: 2,
                heads: 3,
                mlp_ratio: 2,
                cond_dim: 11,
                dist_bins: 5,
                dist_max_nm: 3.0,
                seq_sep_bins: 9,
                self_condition: true,
                neighbour_features: true,
                seq_sep_exact: 3,
            },
            resolution_features: true,
        }
    }

    /// Check the configuration.
    ///
    /// # Errors
    /// [`ParError::BadScales`] naming the first inconsistent field.
    pub fn validate(&self) -> Result<(), ParError> {
        self.scales.validate()?;
        let bad = |m: String| Err(ParError::BadScales(m));
        if !self.ar.dim.is_multiple_of(self.ar.heads) {
            return bad(format!("ar.dim {} is not divisible by ar.heads {}", self.ar.dim, self.ar.heads));
        }
        if !self.decoder.dim.is_multiple_of(self.decoder.heads) {
            return bad(format!(
                "decoder.dim {} is not divisible by decoder.heads {}",
                self.decoder.dim, self.decoder.heads
            ));
        }
        if !self.fourier_dim.is_multiple_of(2) {
            return bad(format!("fourier_dim {} must be even", self.fourier_dim));
        }
        if self.decoder.seq_sep_bins.is_multiple_of(2) {
            return bad(format!("decoder.seq_sep_bins {} must be odd (symmetric around 0)", self.decoder.seq_sep_bins));
        }
        let n = self.scales.sizes(self.max_len).len();
        if n > self.max_scales {
            return bad(format!("max_len {} needs {n} scales but max_scales is {}", self.max_len, self.max_scales));
        }
        Ok(())
    }
}

/// Exposure-bias mitigation and other training switches (PAR §3.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureBias {
    /// Noisy context learning: context `w·x + (1 − w)·ε`, `w ~ U[0, 1]`.
    pub noisy_context: bool,
    /// Probability of replacing the context by the decoder's one-step prediction
    /// `x_t + (1 − t)·v_θ` (scheduled sampling); 0 disables it.
    pub scheduled_sampling: f64,
    /// Probability that a step trains on *sampled* contexts instead (multi-step scheduled
    /// sampling), checked before the two switches above; 0 disables it. Coarse to fine, each
    /// context scale's truth is noised to a time `t₀` from the training time distribution and
    /// integrated to `t = 1` by the decoder (`sampled_steps` Euler steps over `[t₀, 1]`, the
    /// default sampler's grid, `g` and noise scale, with self-conditioning), given the AR
    /// embedding of the contexts sampled before it; then every scale is trained given these
    /// contexts, with gradients stopped through them. Unlike the one-step prediction from true
    /// contexts, these are sharp samples whose errors compound across scales, as at inference.
    pub sampled_context: f64,
    /// Integrator and step count of the context samples over `[t₀, 1]`.
    pub sampled_steps: ScaleSteps,
}

impl Default for ExposureBias {
    fn default() -> Self {
        Self {
            noisy_context: true,
            scheduled_sampling: 0.5,
            sampled_context: 0.0,
            sampled_steps: ScaleSteps { integrator: Integrator::Sde, steps: 10 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for cfg in [ParConfig::cpu_small(), ParConfig::tiny()] {
            cfg.validate().unwrap();
            let text = serde_json::to_string(&cfg).unwrap();
            let back: ParConfig = serde_json::from_str(&text).unwrap();
            assert_eq!(back, cfg);
        }
    }

    #[test]
    fn unknown_fields_and_bad_heads_are_rejected() {
        let mut v = serde_json::to_value(ParConfig::tiny()).unwrap();
        v["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<ParConfig>(v).is_err());
        let mut cfg = ParConfig::tiny();
        cfg.decoder.heads = 4;
        assert!(cfg.validate().unwrap_err().to_string().contains("divisible"));
    }
}
