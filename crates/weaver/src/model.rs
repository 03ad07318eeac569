//! The assembly network: a FrameDiff-style IPA trunk (Yim et al. 2023, §4 and App. I.2;
//! AlphaFold2 Suppl. Alg. 20–23) that reads noisy residue frames, the diffusion time and the
//! spliced-map conditioning, and predicts the clean frames.
//!
//! ```text
//! s⁰ = LN(E_node[category] + W_t · sin/cos(1000 t))                       [B, L, c_s]
//! z_c = E_dist[spliced bin] + E_rel[j − i] + E_type[pair type]
//! z  = LN(z_c + W₂ SiLU(W₁ z_c)) + E_xt[bin of |CA_i − CA_j| of x_t]      [B, L, L, c_z]
//! T  = x_t frames, translations in nm (Å / 10)
//! per block: s = LN(s + IPA(s, z, T));  s = LN(s + SwiGLU(s));  T = T ∘ BackboneUpdate(s)
//! output: T with translations back in Å — the prediction of the clean frames x̂₀
//! ```
//!
//! The scores of the reverse SDE follow from x̂₀ with
//! [`protforge_flow::Se3Diffuser::score_targets_batch`] (FrameDiff's parameterisation). The
//! backbone updates start at zero (AlphaFold2), so the untrained network predicts x̂₀ = x_t.

use crate::WeaverError;
use crate::config::{N_PAIR_TYPES, WeaverConfig};
use crate::features::CondTensors;
use candle_core::{D, DType, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};
use protforge_nn::LayerNorm;
use protforge_nn::SwiGlu;
use protforge_nn::init::InitRule;
use protforge_nn::ipa::{BackboneUpdate, InvariantPointAttention};
use protforge_nn::layers::sinusoidal_embedding;
use protforge_se3::Rigids;

/// Å per nm: the trunk works on translations in nm (FrameDiff's coordinate scaling 0.1).
pub const ANG_PER_NM: f64 = 10.0;

/// Path segment of the backbone-update layers (zero-initialised by [`init_rule`]).
pub const BB_UPDATE: &str = "bb_update";

/// Initialisation rule of this model: [`protforge_nn::init::default_init_rule`], except the
/// backbone updates, which start at zero (AlphaFold2 Suppl. 1.11.4 "final" init).
#[must_use]
pub fn init_rule(name: &str, shape: &[usize]) -> InitRule {
    if name.split('.').any(|seg| seg == BB_UPDATE) {
        InitRule::Zeros
    } else {
        protforge_nn::init::default_init_rule(name, shape)
    }
}

#[derive(Debug, Clone)]
struct Block {
    ipa: InvariantPointAttention,
    ipa_norm: LayerNorm,
    transition: SwiGlu,
    transition_norm: LayerNorm,
    bb_update: BackboneUpdate,
}

impl Block {
    fn new(cfg: &WeaverConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            ipa: InvariantPointAttention::new(&cfg.ipa(), vb.pp("ipa"))?,
            ipa_norm: LayerNorm::new(cfg.d_single, true, vb.pp("ipa_norm"))?,
            transition: SwiGlu::new(cfg.d_single, cfg.transition_mult * cfg.d_single, vb.pp("transition"))?,
            transition_norm: LayerNorm::new(cfg.d_single, true, vb.pp("transition_norm"))?,
            bb_update: BackboneUpdate::new(cfg.d_single, vb.pp(BB_UPDATE))?,
        })
    }
}

/// The assembly network (module docs). Parameter names: `node_emb`, `time_proj`,
/// `node_norm`, `dist_emb`, `xt_emb`, `relpos_emb`, `type_emb`, `pair_mlp.{0,1}`,
/// `pair_norm`, `blocks.{k}.{ipa, ipa_norm, transition, transition_norm, bb_update}`.
#[derive(Debug, Clone)]
pub struct WeaverModel {
    node_emb: Embedding,
    time_proj: Linear,
    node_norm: LayerNorm,
    dist_emb: Embedding,
    xt_emb: Embedding,
    relpos_emb: Embedding,
    type_emb: Embedding,
    pair_mlp: (Linear, Linear),
    pair_norm: LayerNorm,
    blocks: Vec<Block>,
    /// The configuration.
    pub cfg: WeaverConfig,
}

impl WeaverModel {
    /// Build the network (validating `cfg`).
    ///
    /// # Errors
    /// [`WeaverError::BadConfig`]; candle VarBuilder errors (e.g. weights of another shape).
    pub fn new(cfg: &WeaverConfig, vb: VarBuilder) -> Result<Self, WeaverError> {
        cfg.validate()?;
        let (ds, dp) = (cfg.d_single, cfg.d_pair);
        let blocks = (0..cfg.n_blocks).map(|k| Block::new(cfg, vb.pp(format!("blocks.{k}")))).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            node_emb: candle_nn::embedding(cfg.node_categories(), ds, vb.pp("node_emb"))?,
            time_proj: candle_nn::linear(cfg.t_embed, ds, vb.pp("time_proj"))?,
            node_norm: LayerNorm::new(ds, true, vb.pp("node_norm"))?,
            dist_emb: candle_nn::embedding(cfg.dist_bins + 1, dp, vb.pp("dist_emb"))?,
            xt_emb: candle_nn::embedding(cfg.dist_bins, dp, vb.pp("xt_emb"))?,
            relpos_emb: candle_nn::embedding(2 * cfg.relpos_max + 1, dp, vb.pp("relpos_emb"))?,
            type_emb: candle_nn::embedding(N_PAIR_TYPES, dp, vb.pp("type_emb"))?,
            pair_mlp: (candle_nn::linear(dp, dp, vb.pp("pair_mlp.0"))?, candle_nn::linear(dp, dp, vb.pp("pair_mlp.1"))?),
            pair_norm: LayerNorm::new(dp, true, vb.pp("pair_norm"))?,
            blocks,
            cfg: cfg.clone(),
        })
    }

    /// `[B, L, L]` u32 distance bins of the CA positions (frame origins, Å) of `rigids_t`
    /// (no gradient).
    fn xt_bins(&self, rigids_t: &Rigids) -> candle_core::Result<Tensor> {
        let x = rigids_t.trans.detach(); // [B, L, 3]
        let diff = x.unsqueeze(2)?.broadcast_sub(&x.unsqueeze(1)?)?; // [B, L, L, 3]
        let d = diff.sqr()?.sum(D::Minus1)?.sqrt()?; // [B, L, L]
        (d / self.cfg.bin_width())?.floor()?.clamp(0.0, (self.cfg.dist_bins - 1) as f64)?.to_dtype(DType::U32)
    }

    /// The conditioning part of the pair representation, `[B, L, L, c_z]`:
    /// `LN(z_c + W₂ SiLU(W₁ z_c))` with `z_c = E_dist + E_rel + E_type` (module docs). It does not
    /// depend on the noisy frames, so a sampler computes it once per run.
    ///
    /// # Errors
    /// Candle errors.
    pub fn pair_features(&self, cond: &CondTensors) -> Result<Tensor, WeaverError> {
        let z = ((self.dist_emb.forward(&cond.dist_idx)? + self.relpos_emb.forward(&cond.relpos_idx)?)?
            + self.type_emb.forward(&cond.pair_type)?)?; // [B, L, L, c_z]
        let upd = self.pair_mlp.1.forward(&self.pair_mlp.0.forward(&z)?.silu()?)?;
        Ok(self.pair_norm.forward(&(z + upd)?)?)
    }

    /// Predict the clean frames x̂₀ `[B, L]` (Å) from noisy frames `rigids_t` `[B, L]` (Å) at
    /// diffusion times `t` (one per sample, in (0, 1]) under the conditioning `cond`.
    ///
    /// # Errors
    /// [`WeaverError::BadLayout`] if the shapes disagree; candle errors.
    pub fn forward(&self, rigids_t: &Rigids, t: &[f64], cond: &CondTensors) -> Result<Rigids, WeaverError> {
        self.forward_with_pair(rigids_t, t, cond, &self.pair_features(cond)?)
    }

    /// [`Self::forward`] with precomputed [`Self::pair_features`] of `cond`.
    ///
    /// # Errors
    /// [`WeaverError::BadLayout`] if the shapes disagree; candle errors.
    pub fn forward_with_pair(&self, rigids_t: &Rigids, t: &[f64], cond: &CondTensors, pair: &Tensor) -> Result<Rigids, WeaverError> {
        let (b, l) = match *rigids_t.batch_shape() {
            [b, l] => (b, l),
            ref other => return Err(WeaverError::BadLayout(format!("frames of batch shape {other:?}, expected [B, L]"))),
        };
        if cond.node_cat.dims() != [b, l] || t.len() != b || pair.dims()[..3] != [b, l, l] {
            return Err(WeaverError::BadLayout(format!(
                "frames [{b}, {l}], conditioning {:?}, pair features {:?}, {} times",
                cond.node_cat.dims(),
                pair.dims(),
                t.len()
            )));
        }
        let dev = rigids_t.trans.device();
        let tt: Vec<f32> = t.iter().map(|v| (v * 1000.0) as f32).collect();
        let temb = sinusoidal_embedding(&Tensor::from_vec(tt, b, dev)?, self.cfg.t_embed, 10_000.0)?; // [B, t_embed]
        let temb = self.time_proj.forward(&temb)?.unsqueeze(1)?; // [B, 1, c_s]
        let s = self.node_emb.forward(&cond.node_cat)?.broadcast_add(&temb)?; // [B, L, c_s]
        let mut s = self.node_norm.forward(&s)?;
        let z = (pair + self.xt_emb.forward(&self.xt_bins(rigids_t)?)?)?; // [B, L, L, c_z]

        let mut frames = rigids_t.scale_translation(1.0 / ANG_PER_NM)?;
        for block in &self.blocks {
            s = block.ipa_norm.forward(&(&s + block.ipa.forward(&s, &z, &frames, &cond.mask)?)?)?;
            s = block.transition_norm.forward(&(&s + block.transition.forward(&s)?)?)?;
            frames = block.bb_update.apply(&frames, &s)?;
        }
        Ok(frames.scale_translation(ANG_PER_NM)?)
    }

    /// Number of parameters of a model with this configuration.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn count_params(cfg: &WeaverConfig) -> Result<usize, WeaverError> {
        let varmap = candle_nn::VarMap::new();
        Self::new(cfg, VarBuilder::from_varmap(&varmap, DType::F32, &candle_core::Device::Cpu))?;
        Ok(varmap.all_vars().iter().map(|v| v.elem_count()).sum())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::features::cond_tensors;
    use crate::splice::assemble_map;
    use candle_core::Device;
    use candle_nn::VarMap;
    use protforge_se3::{Rigid, Rotation, Vec3};

    /// A seeded tiny model with the backbone updates perturbed away from zero.
    pub(crate) fn tiny_model(seed: u64) -> (VarMap, WeaverModel) {
        let varmap = VarMap::new();
        let model = WeaverModel::new(&WeaverConfig::tiny(), VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        protforge_nn::init::init_seeded_with(&varmap, seed, |n, s| {
            if n.contains(BB_UPDATE) { InitRule::Normal { std: 0.05 } } else { init_rule(n, s) }
        })
        .unwrap();
        (varmap, model)
    }

    pub(crate) fn helix(n: usize, phase: f64) -> Vec<Vec3> {
        (0..n).map(|i| {
            let a = i as f64 * 1.745 + phase;
            Vec3::new(2.3 * a.cos(), 2.3 * a.sin(), 1.5 * i as f64)
        }).collect()
    }

    fn random_frames(n: usize, seed: u64) -> Vec<Rigid> {
        use rand::Rng;
        let mut rng = protforge_flow::rng::seeded(seed);
        (0..n)
            .map(|_| {
                let axis = Vec3::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
                let rot = Rotation::from_axis_angle(&axis, rng.random_range(0.0..3.0)).unwrap();
                Rigid::new(rot, Vec3::new(rng.random_range(-9.0..9.0), rng.random_range(-9.0..9.0), rng.random_range(-9.0..9.0)))
            })
            .collect()
    }

    #[test]
    fn output_is_equivariant_and_every_parameter_trains() {
        let (varmap, model) = tiny_model(1);
        let map = assemble_map(&[helix(9, 0.0), helix(7, 1.0)], &[3]).unwrap();
        let cond = cond_tensors(&[&map], &model.cfg, &Device::Cpu).unwrap();
        let frames = random_frames(map.len, 2);
        let (x, _) = crate::frames::batch_rigids(&[&frames], &Device::Cpu).unwrap();
        let y = model.forward(&x, &[0.4], &cond).unwrap().to_scalar().unwrap();
        // Moving the input by a global rigid motion moves the prediction by the same motion.
        let g = Rigid::new(Rotation::from_axis_angle(&Vec3::new(0.3, -1.0, 0.5), 1.1).unwrap(), Vec3::new(4.0, -7.0, 2.0));
        let moved: Vec<Rigid> = frames.iter().map(|f| g.compose(f)).collect();
        let (xm, _) = crate::frames::batch_rigids(&[&moved], &Device::Cpu).unwrap();
        let ym = model.forward(&xm, &[0.4], &cond).unwrap().to_scalar().unwrap();
        for (a, b) in y.iter().zip(&ym) {
            let want = g.compose(a);
            assert!((want.trans - b.trans).norm() < 2e-3, "{:?} vs {:?}", want.trans, b.trans);
            assert!(want.rot.angle_to(&b.rot) < 2e-3);
        }
        let pred = model.forward(&x, &[0.4], &cond).unwrap();
        let loss = (pred.trans.sqr().unwrap().sum_all().unwrap() + pred.rots.mats.sum_all().unwrap()).unwrap();
        let missing = protforge_nn::train::vars_missing_grad(&varmap, &loss).unwrap();
        assert!(missing.is_empty(), "no gradient: {missing:?}");
        assert!(WeaverModel::count_params(&WeaverConfig::cpu_small()).unwrap() > 100_000);
    }

    #[test]
    fn untrained_model_returns_its_input() {
        let varmap = VarMap::new();
        let model = WeaverModel::new(&WeaverConfig::tiny(), VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        protforge_nn::init::init_seeded_with(&varmap, 0, init_rule).unwrap();
        let map = assemble_map(&[helix(5, 0.0), helix(5, 1.0)], &[2]).unwrap();
        let cond = cond_tensors(&[&map], &model.cfg, &Device::Cpu).unwrap();
        let frames = random_frames(map.len, 3);
        let (x, _) = crate::frames::batch_rigids(&[&frames], &Device::Cpu).unwrap();
        let y = model.forward(&x, &[0.9], &cond).unwrap();
        let d = (y.trans - &x.trans).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-4, "{d}");
    }
}
