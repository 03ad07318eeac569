//! Architecture and diffusion settings of the assembly model (`config.json` beside the weights).
//!
//! ProteinWeaver publishes no sizes (MODELS.md §4); the network is a CPU-sized FrameDiff-style
//! IPA trunk (Yim et al. 2023; FrameFlow `configs/model.yaml` uses 6 blocks, node 256, edge
//! 128) and the diffusion uses the ConfRover/STAR-MD SE(3) settings of
//! [`protforge_flow::Se3DiffusionConfig`] with fewer sampling steps.

use crate::WeaverError;
use protforge_flow::Se3DiffusionConfig;
use protforge_flow::se3_diffusion::SamplerConfig;
use protforge_nn::ipa::IpaConfig;
use serde::{Deserialize, Serialize};

/// Pair categories of [`crate::features`]: same domain, different domains, query linker /
/// key domain, query domain / key linker, both linker, and padding.
pub const N_PAIR_TYPES: usize = 6;

/// The assembly network and its diffusion (serde, unknown fields rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeaverConfig {
    /// Longest chain (residues) the model accepts.
    pub max_len: usize,
    /// At most this many domains get their own node category; later domains share the last.
    pub max_domains: usize,
    /// Width of the per-residue (single) representation.
    pub d_single: usize,
    /// Width of the pair representation.
    pub d_pair: usize,
    /// Number of IPA blocks (each: IPA, transition, backbone update).
    pub n_blocks: usize,
    /// IPA: width of each head's scalar queries/keys/values.
    pub ipa_hidden: usize,
    /// IPA: heads.
    pub ipa_heads: usize,
    /// IPA: query/key points per head.
    pub ipa_qk_points: usize,
    /// IPA: value points per head.
    pub ipa_v_points: usize,
    /// Transition (SwiGLU) hidden width as a multiple of `d_single`.
    pub transition_mult: usize,
    /// Distance bins of the spliced map and of the noisy structure, equal width on
    /// `[0, dist_max_ang)`; larger distances fall in the last bin.
    pub dist_bins: usize,
    /// Upper edge (Å) of the distance bins.
    pub dist_max_ang: f64,
    /// Relative sequence positions are clipped to `±relpos_max`.
    pub relpos_max: usize,
    /// Width of the sinusoidal embedding of the diffusion time.
    pub t_embed: usize,
    /// SE(3) diffusion (t = 0 data, t = 1 noise) and its sampler.
    pub diffusion: Se3DiffusionConfig,
}

impl WeaverConfig {
    /// The CPU recipe: 4 IPA blocks, single 128, pair 32 (0.77 M parameters, 3.1 MB), 100 SDE
    /// sampling steps.
    #[must_use]
    pub fn cpu_small() -> Self {
        Self {
            max_len: 512,
            max_domains: 8,
            d_single: 128,
            d_pair: 32,
            n_blocks: 4,
            ipa_hidden: 16,
            ipa_heads: 4,
            ipa_qk_points: 4,
            ipa_v_points: 8,
            transition_mult: 2,
            dist_bins: 24,
            dist_max_ang: 36.0,
            relpos_max: 32,
            t_embed: 32,
            diffusion: Se3DiffusionConfig {
                sampler: SamplerConfig { num_steps: 100, ..SamplerConfig::default() },
                ..Se3DiffusionConfig::default()
            },
        }
    }

    /// A tiny configuration for tests (small IGSO(3) tables, 4 sampling steps).
    #[must_use]
    pub fn tiny() -> Self {
        let mut diffusion = Se3DiffusionConfig::default();
        diffusion.so3.num_sigma = 16;
        diffusion.so3.num_omega = 128;
        diffusion.sampler.num_steps = 4;
        Self {
            max_len: 96,
            max_domains: 4,
            d_single: 16,
            d_pair: 8,
            n_blocks: 2,
            ipa_hidden: 4,
            ipa_heads: 2,
            ipa_qk_points: 2,
            ipa_v_points: 2,
            transition_mult: 2,
            dist_bins: 8,
            dist_max_ang: 24.0,
            relpos_max: 8,
            t_embed: 8,
            diffusion,
        }
    }

    /// The IPA layer sizes.
    #[must_use]
    pub fn ipa(&self) -> IpaConfig {
        IpaConfig {
            d_single: self.d_single,
            d_pair: self.d_pair,
            d_hidden: self.ipa_hidden,
            n_heads: self.ipa_heads,
            n_qk_points: self.ipa_qk_points,
            n_v_points: self.ipa_v_points,
        }
    }

    /// Node categories: one per domain index (`max_domains`), linker, padding.
    #[must_use]
    pub fn node_categories(&self) -> usize {
        self.max_domains + 2
    }

    /// Width of a distance bin (Å).
    #[must_use]
    pub fn bin_width(&self) -> f64 {
        self.dist_max_ang / self.dist_bins as f64
    }

    /// Check every setting.
    ///
    /// # Errors
    /// [`WeaverError::BadConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<(), WeaverError> {
        let bad = |what: &'static str, reason: &str| Err(WeaverError::BadConfig { what, reason: reason.to_string() });
        for (what, v) in [
            ("max_len", self.max_len),
            ("max_domains", self.max_domains),
            ("d_single", self.d_single),
            ("d_pair", self.d_pair),
            ("n_blocks", self.n_blocks),
            ("transition_mult", self.transition_mult),
            ("dist_bins", self.dist_bins),
            ("relpos_max", self.relpos_max),
            ("t_embed", self.t_embed),
        ] {
            if v == 0 {
                return bad(what, "must be positive");
            }
        }
        if self.max_len < 8 {
            return bad("max_len", "must be at least 8");
        }
        if !(self.dist_max_ang.is_finite() && self.dist_max_ang > 0.0) {
            return bad("dist_max_ang", "must be a positive number of Å");
        }
        self.ipa().validate().map_err(|e| WeaverError::BadConfig { what: "ipa", reason: e.to_string() })?;
        self.diffusion.sampler.validate()?;
        self.diffusion.so3.validate()?;
        self.diffusion.r3.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for cfg in [WeaverConfig::cpu_small(), WeaverConfig::tiny()] {
            cfg.validate().unwrap();
            let json = serde_json::to_string(&cfg).unwrap();
            let back: WeaverConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, cfg);
        }
        let bad = WeaverConfig { d_pair: 0, ..WeaverConfig::tiny() };
        assert!(bad.validate().unwrap_err().to_string().contains("d_pair"));
        let json = serde_json::to_string(&WeaverConfig::tiny()).unwrap().replace("\"max_len\"", "\"max_length\"");
        assert!(serde_json::from_str::<WeaverConfig>(&json).is_err());
    }
}
