//! STAR-MD architecture and diffusion settings: the `config.json` that travels with the
//! weights. Every shared width is declared once (`d_single`, `d_pair`, `d_cond`) and the
//! sub-layer configurations are derived from it.

use crate::StarMdError;
use protforge_flow::Se3DiffusionConfig;
use protforge_nn::ipa::IpaConfig;
use serde::{Deserialize, Serialize};

/// Head sizes of the per-frame Invariant Point Attention (AlphaFold2 Suppl. Alg. 22); its
/// single and pair widths are [`StarMdConfig::d_single`] and [`StarMdConfig::d_pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpaHeads {
    /// Width of each head's scalar queries, keys and values.
    pub d_hidden: usize,
    /// Number of heads.
    pub n_heads: usize,
    /// Query/key points per head.
    pub n_qk_points: usize,
    /// Value points per head.
    pub n_v_points: usize,
}

/// Previous-frame anchor of the structure module (a protforge extension, not in the paper;
/// `crate::model` docs): the structure module of noisy frame `ℓ` starts from the Gaussian
/// posterior mean of its clean frame under the prior "clean frame ≈ history frame `ℓ − 1`,
/// superposed on the noisy frame", with these prior widths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// Prior standard deviation of each translation coordinate (Å). Measured on the training
    /// MD (CA displacement per coordinate after superposition, 10–250 ps apart): 0.4–1.8 Å.
    pub sigma_ang: f64,
    /// Prior standard deviation of the residue-frame rotation (rad).
    pub sigma_rad: f64,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self { sigma_ang: 1.0, sigma_rad: 0.2 }
    }
}

/// The STAR-MD network and its SE(3) diffusion (`weights/starmd/config.json`).
///
/// Shapes below use `N` residues, `F` frames, `D = d_single`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarMdConfig {
    /// Width `D` of the per-(residue, frame) token features.
    pub d_single: usize,
    /// Width of the static pair features (relative position + initial-frame CA distances)
    /// that bias IPA.
    pub d_pair: usize,
    /// Width of the AdaLN conditioning (diffusion time and log physical stride).
    pub d_cond: usize,
    /// Diffusion blocks (each: IPA, `st_layers` joint attention layers, backbone update).
    pub blocks: usize,
    /// Joint spatio-temporal attention layers per block (STAR-MD: 2).
    pub st_layers: usize,
    /// Heads of the joint attention; `D / heads` must be a multiple of 4 (2-D RoPE).
    pub heads: usize,
    /// SwiGLU hidden width as a multiple of `D`.
    pub mlp_ratio: usize,
    /// Per-frame IPA head sizes.
    pub ipa: IpaHeads,
    /// Relative sequence positions are clipped to `±max_relpos` (one-hot of `2·max_relpos + 1`).
    pub max_relpos: usize,
    /// Gaussian radial basis functions of the initial-frame CA–CA distances.
    pub dist_bins: usize,
    /// Centre of the last distance basis function (Å); the first is at 0.
    pub dist_max_ang: f64,
    /// RoPE frequency base of the residue axis.
    pub rope_base_residue: f64,
    /// RoPE frequency base of the frame axis.
    pub rope_base_frame: f64,
    /// Frames per training window (STAR-MD: 8); a rollout attends to at most
    /// `window_frames − 1` history frames unless asked for the full history.
    pub window_frames: usize,
    /// Shortest physical stride Δt the model was trained on (ns).
    pub dt_min_ns: f64,
    /// Longest physical stride Δt the model was trained on (ns).
    pub dt_max_ns: f64,
    /// Largest context-noise time: history frames are noised to `τ ~ U[0, context_noise]`
    /// in training and rollout (STAR-MD: 0.1; 0 disables it).
    pub context_noise: f64,
    /// SE(3) diffusion (VP translations, IGSO(3) rotations, reverse sampler).
    pub diffusion: Se3DiffusionConfig,
    /// Previous-frame anchor of the structure module (`None`: the structure module starts
    /// from the noisy frames, as in the paper and FrameDiff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AnchorConfig>,
    /// Longest stride (ns) the training trajectories allowed, when it is below `dt_max_ns`:
    /// strides above it were never trained on, so [`Self::dt_range`] stops there. The trainer
    /// writes it into exported weights; it is not architecture (`dt_max_ns` still scales the
    /// stride embedding) and not part of a run's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dt_data_max_ns: Option<f64>,
}

impl StarMdConfig {
    /// A model that trains on 2 CPU cores: `D = 128`, 4 heads, 3 blocks × (IPA + 1 joint
    /// attention layer), static pair width 32, windows of 8 frames, Δt ∈ [0.01, 1] ns.
    #[must_use]
    pub fn cpu_small() -> Self {
        Self {
            d_single: 128,
            d_pair: 32,
            d_cond: 128,
            blocks: 3,
            st_layers: 1,
            heads: 4,
            mlp_ratio: 2,
            ipa: IpaHeads { d_hidden: 16, n_heads: 4, n_qk_points: 4, n_v_points: 8 },
            max_relpos: 32,
            dist_bins: 16,
            dist_max_ang: 20.0,
            rope_base_residue: 1000.0,
            rope_base_frame: 100.0,
            window_frames: 8,
            dt_min_ns: 0.01,
            dt_max_ns: 1.0,
            context_noise: 0.1,
            diffusion: Se3DiffusionConfig::default(),
            anchor: Some(AnchorConfig::default()),
            dt_data_max_ns: None,
        }
    }

    /// A tiny model for tests (small IGSO(3) tables so construction is fast).
    #[must_use]
    pub fn tiny() -> Self {
        let mut diffusion = Se3DiffusionConfig::default();
        diffusion.so3.num_sigma = 32;
        diffusion.so3.num_omega = 256;
        diffusion.sampler.num_steps = 4;
        Self {
            d_single: 16,
            d_pair: 8,
            d_cond: 12,
            blocks: 2,
            st_layers: 1,
            heads: 2,
            mlp_ratio: 2,
            ipa: IpaHeads { d_hidden: 4, n_heads: 2, n_qk_points: 2, n_v_points: 3 },
            max_relpos: 8,
            dist_bins: 6,
            dist_max_ang: 15.0,
            window_frames: 4,
            diffusion,
            ..Self::cpu_small()
        }
    }

    /// Width of one joint-attention head.
    #[must_use]
    pub fn head_dim(&self) -> usize {
        self.d_single / self.heads.max(1)
    }

    /// The IPA layer configuration.
    #[must_use]
    pub fn ipa_config(&self) -> IpaConfig {
        IpaConfig {
            d_single: self.d_single,
            d_pair: self.d_pair,
            d_hidden: self.ipa.d_hidden,
            n_heads: self.ipa.n_heads,
            n_qk_points: self.ipa.n_qk_points,
            n_v_points: self.ipa.n_v_points,
        }
    }

    /// The trained stride range `(shortest, longest)` in ns: `dt_min_ns` to `dt_max_ns`, or to
    /// `dt_data_max_ns` when the training data stopped short of `dt_max_ns`.
    #[must_use]
    pub fn dt_range(&self) -> (f64, f64) {
        (self.dt_min_ns, self.dt_data_max_ns.map_or(self.dt_max_ns, |d| d.min(self.dt_max_ns)))
    }

    /// Whether `dt_ns` lies in the trained stride range [`Self::dt_range`] (with 1e-9 relative
    /// slack).
    #[must_use]
    pub fn dt_in_range(&self, dt_ns: f64) -> bool {
        let (lo, hi) = self.dt_range();
        dt_ns.is_finite() && dt_ns >= lo * (1.0 - 1e-9) && dt_ns <= hi * (1.0 + 1e-9)
    }

    /// Check every setting.
    ///
    /// # Errors
    /// [`StarMdError::BadConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), StarMdError> {
        for (what, v) in [
            ("d_single", self.d_single),
            ("d_pair", self.d_pair),
            ("d_cond", self.d_cond),
            ("blocks", self.blocks),
            ("st_layers", self.st_layers),
            ("heads", self.heads),
            ("mlp_ratio", self.mlp_ratio),
            ("dist_bins", self.dist_bins),
        ] {
            if v == 0 {
                return Err(StarMdError::config(what, "must be positive"));
            }
        }
        if !self.d_single.is_multiple_of(self.heads) || !self.head_dim().is_multiple_of(4) {
            return Err(StarMdError::config(
                "heads",
                format!("d_single {} / heads {} must be a multiple of 4 (2-D RoPE)", self.d_single, self.heads),
            ));
        }
        self.ipa_config().validate()?;
        if self.window_frames < 2 {
            return Err(StarMdError::config("window_frames", format!("{} (need at least 2)", self.window_frames)));
        }
        if !(self.dist_max_ang.is_finite() && self.dist_max_ang > 0.0) {
            return Err(StarMdError::config("dist_max_ang", format!("{} is not a positive length", self.dist_max_ang)));
        }
        for (what, base) in [("rope_base_residue", self.rope_base_residue), ("rope_base_frame", self.rope_base_frame)] {
            if !(base.is_finite() && base > 1.0) {
                return Err(StarMdError::config(what, format!("{base} (need > 1)")));
            }
        }
        if !(self.dt_min_ns.is_finite()
            && self.dt_min_ns > 0.0
            && self.dt_max_ns >= self.dt_min_ns
            && self.dt_max_ns.is_finite())
        {
            return Err(StarMdError::config(
                "stride range",
                format!("dt_min_ns = {}, dt_max_ns = {} (need 0 < min <= max)", self.dt_min_ns, self.dt_max_ns),
            ));
        }
        if !(0.0..=1.0).contains(&self.context_noise) {
            return Err(StarMdError::config("context_noise", format!("{} not in [0, 1]", self.context_noise)));
        }
        if let Some(a) = self.anchor
            && !(a.sigma_ang.is_finite() && a.sigma_ang > 0.0 && a.sigma_rad.is_finite() && a.sigma_rad > 0.0)
        {
            return Err(StarMdError::config(
                "anchor",
                format!("sigma_ang = {}, sigma_rad = {} (need positive widths)", a.sigma_ang, a.sigma_rad),
            ));
        }
        self.diffusion.sampler.validate()?;
        self.diffusion.r3.validate()?;
        self.diffusion.so3.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for cfg in [StarMdConfig::cpu_small(), StarMdConfig::tiny()] {
            cfg.validate().unwrap();
            let back: StarMdConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
            assert_eq!(back, cfg);
        }
        assert_eq!(StarMdConfig::cpu_small().diffusion.sampler.num_steps, 200);
        let bad = StarMdConfig { heads: 3, ..StarMdConfig::tiny() };
        assert!(bad.validate().unwrap_err().to_string().contains("multiple of 4"));
        let bad = StarMdConfig { dt_min_ns: 2.0, dt_max_ns: 1.0, ..StarMdConfig::tiny() };
        assert!(bad.validate().is_err());
        let bad =
            StarMdConfig { anchor: Some(AnchorConfig { sigma_ang: 0.0, sigma_rad: 0.2 }), ..StarMdConfig::tiny() };
        assert!(bad.validate().unwrap_err().to_string().contains("anchor"));
        // Configs written before the anchor existed load as the paper's architecture.
        let mut old = serde_json::to_value(StarMdConfig::tiny()).unwrap();
        old.as_object_mut().unwrap().remove("anchor");
        let old: StarMdConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.anchor, None);
        let cfg = StarMdConfig::cpu_small();
        assert!(cfg.dt_in_range(0.01) && cfg.dt_in_range(1.0) && !cfg.dt_in_range(1.5) && !cfg.dt_in_range(f64::NAN));
        // Weights whose data stopped short of dt_max_ns accept only the strides they saw.
        let short = StarMdConfig { dt_data_max_ns: Some(0.14), ..cfg };
        assert_eq!(short.dt_range(), (0.01, 0.14));
        assert!(short.dt_in_range(0.14) && !short.dt_in_range(0.2));
        let text = serde_json::to_string(&short).unwrap();
        assert_eq!(serde_json::from_str::<StarMdConfig>(&text).unwrap(), short);
    }
}
