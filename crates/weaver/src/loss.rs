//! Batches of training examples and the per-sample denoising loss (FrameDiff, Yim et al. 2023
//! §4 and App. I.1, with an auxiliary intra-domain distance term for near-rigid domains).
//!
//! For a sample noised to time `t` with conditional scores `s_rot` (rotations) and a network
//! prediction x̂₀ of the clean frames, the terms are (all per sample, masked means over
//! residues or residue pairs, lengths in nm):
//!
//! - **rotation score matching**: `‖ŝ_rot − s_rot‖² / scaling_rot(t)²`, with `ŝ_rot` the
//!   score implied by x̂₀ ([`protforge_flow::Se3Diffuser::score_targets_batch`]);
//! - **translation x₀ loss**: `‖x̂₀ − x₀‖²` of the CA positions (FrameDiff's `trans_x0` loss,
//!   used for every `t < 1`);
//! - **local distance loss** (FrameDiff's auxiliary distogram loss, only for `t < aux_t_max`):
//!   `(d̂_ij − d_ij)²` over CA pairs closer than `local_cutoff_ang` in the data;
//! - **intra-domain distance loss** (ours, for `t < intra_t_max`): `(d̂_ij − d_ij)²` over every
//!   CA pair of the same domain, so a predicted domain keeps the shape its spliced map
//!   prescribes and moves as a rigid body.
//!
//! The **likelihood surrogate** of Diffusion-DPO ([`crate::dpo`]) is the diffusion part
//! `w_rot · rot + w_trans · trans` (the weighted denoising error, Wallace et al. 2023 §4).

use crate::WeaverError;
use crate::dataset::Example;
use crate::features::{CondTensors, cond_tensors};
use crate::frames::batch_rigids;
use crate::model::{ANG_PER_NM, WeaverModel};
use candle_core::{D, DType, Device, Tensor};
use protforge_flow::Se3Diffuser;
use protforge_flow::se3_diffusion::{NoisedBatch, score_matching_loss};
use protforge_se3::{Rigid, Rigids};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Weights and switches of the loss terms (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Weight of the rotation score-matching term (FrameDiff 0.5).
    pub rot_weight: f64,
    /// Weight of the translation x₀ term (FrameDiff 1.0).
    pub trans_weight: f64,
    /// Weight of the local distance term (FrameDiff 0.25 · 1.0).
    pub local_weight: f64,
    /// CA pairs closer than this (Å) in the data enter the local distance term (FrameDiff 6).
    pub local_cutoff_ang: f64,
    /// The local term applies for `t < aux_t_max` (FrameDiff 0.25).
    pub aux_t_max: f64,
    /// Weight of the intra-domain distance term.
    pub intra_weight: f64,
    /// The intra-domain term applies for `t < intra_t_max`.
    pub intra_t_max: f64,
    /// Training times are drawn uniformly from `[t_min, 1]` (FrameDiff `min_t` 0.01).
    pub t_min: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            rot_weight: 0.5,
            trans_weight: 1.0,
            local_weight: 0.25,
            local_cutoff_ang: 6.0,
            aux_t_max: 0.25,
            intra_weight: 0.25,
            intra_t_max: 0.5,
            t_min: 0.01,
        }
    }
}

impl LossConfig {
    /// Check the values.
    ///
    /// # Errors
    /// [`WeaverError::BadConfig`].
    pub fn validate(&self) -> Result<(), WeaverError> {
        let weights = [self.rot_weight, self.trans_weight, self.local_weight, self.intra_weight, self.local_cutoff_ang];
        if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(WeaverError::BadConfig { what: "loss weights", reason: "must be finite and non-negative".into() });
        }
        if !(self.t_min > 0.0 && self.t_min < 1.0) {
            return Err(WeaverError::BadConfig { what: "t_min", reason: format!("{} is not in (0, 1)", self.t_min) });
        }
        Ok(())
    }

    /// Draw a training time uniformly from `[t_min, 1]`.
    pub fn sample_t<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.t_min + (1.0 - self.t_min) * rng.random::<f64>()
    }
}

/// A padded batch of examples as tensors.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// Clean frames `[B, L]` (Å), identity at padding.
    pub rigids_0: Rigids,
    /// Conditioning.
    pub cond: CondTensors,
    /// `[B, L, L]` true CA distances (nm).
    pub dist_0: Tensor,
    /// `[B, L, L]` 1 for pairs of the same domain (i ≠ j).
    pub intra_mask: Tensor,
    /// `[B, L, L]` 1 for pairs closer than the local cutoff (i ≠ j, both residues).
    pub local_mask: Tensor,
}

impl TrainBatch {
    /// Batch examples (frames and maps) for the model of `model_cfg`.
    ///
    /// # Errors
    /// As [`cond_tensors`]; candle errors.
    pub fn new(
        examples: &[(&[Rigid], &crate::splice::SplicedMap)],
        model_cfg: &crate::WeaverConfig,
        loss: &LossConfig,
        dev: &Device,
    ) -> Result<Self, WeaverError> {
        let frames: Vec<&[Rigid]> = examples.iter().map(|e| e.0).collect();
        let maps: Vec<&crate::splice::SplicedMap> = examples.iter().map(|e| e.1).collect();
        for (f, m) in &frames.iter().zip(&maps).collect::<Vec<_>>() {
            if f.len() != m.len {
                return Err(WeaverError::BadLayout(format!("{} frames for a map of {} residues", f.len(), m.len)));
            }
        }
        let cond = cond_tensors(&maps, model_cfg, dev)?;
        let (rigids_0, _) = batch_rigids(&frames, dev)?;
        let (b, l) = (examples.len(), cond.padded_len());
        let mut dist = vec![0f32; b * l * l];
        let mut intra = vec![0f32; b * l * l];
        let mut local = vec![0f32; b * l * l];
        for (k, (f, m)) in frames.iter().zip(&maps).enumerate() {
            for i in 0..f.len() {
                for j in 0..f.len() {
                    if i == j {
                        continue;
                    }
                    let d = (f[i].trans - f[j].trans).norm();
                    let at = (k * l + i) * l + j;
                    dist[at] = (d / ANG_PER_NM) as f32;
                    if d < loss.local_cutoff_ang {
                        local[at] = 1.0;
                    }
                    if matches!((m.domain_of[i], m.domain_of[j]), (Some(a), Some(c)) if a == c) {
                        intra[at] = 1.0;
                    }
                }
            }
        }
        Ok(Self {
            rigids_0,
            cond,
            dist_0: Tensor::from_vec(dist, (b, l, l), dev)?,
            intra_mask: Tensor::from_vec(intra, (b, l, l), dev)?,
            local_mask: Tensor::from_vec(local, (b, l, l), dev)?,
        })
    }

    /// Batch training examples.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn from_examples(examples: &[&Example], model_cfg: &crate::WeaverConfig, loss: &LossConfig, dev: &Device) -> Result<Self, WeaverError> {
        let pairs: Vec<(&[Rigid], &crate::splice::SplicedMap)> = examples.iter().map(|e| (e.frames.as_slice(), &e.map)).collect();
        Self::new(&pairs, model_cfg, loss, dev)
    }

    /// Batch size.
    #[must_use]
    pub fn batch(&self) -> usize {
        self.cond.batch()
    }
}

/// Noise a batch to times `t` (one per sample) with one generator per sample; padding stays
/// clean.
///
/// # Errors
/// Diffusion errors (bad times, wrong counts).
pub fn noise_batch<R: Rng>(diffuser: &Se3Diffuser, batch: &TrainBatch, t: &[f64], rngs: &mut [R]) -> Result<NoisedBatch, WeaverError> {
    Ok(diffuser.forward_marginal_batch(&batch.rigids_0, t, Some(&batch.cond.mask), rngs)?)
}

/// The per-sample loss terms, each `[B]`.
#[derive(Debug, Clone)]
pub struct LossTerms {
    /// Rotation score matching.
    pub rot: Tensor,
    /// Translation x₀ (nm²).
    pub trans: Tensor,
    /// Local distance (nm², zero where `t ≥ aux_t_max`).
    pub local: Tensor,
    /// Intra-domain distance (nm², zero where `t ≥ intra_t_max`).
    pub intra: Tensor,
    /// The weighted sum of all terms.
    pub total: Tensor,
    /// The diffusion part `w_rot · rot + w_trans · trans` (the DPO likelihood surrogate).
    pub surrogate: Tensor,
}

/// Masked mean over the last two axes: `Σ x·m / (Σ m + ε)`, `[B, L, L] → [B]`.
fn pair_mean(x: &Tensor, m: &Tensor) -> candle_core::Result<Tensor> {
    let num = (x * m)?.sum(D::Minus1)?.sum(D::Minus1)?;
    let den = (m.sum(D::Minus1)?.sum(D::Minus1)? + 1e-6)?;
    num / den
}

/// `[B, L, L]` pairwise distances of `[B, L, 3]`, smoothed at zero (`√(d² + 1e-8)`).
fn pair_dist(x: &Tensor) -> candle_core::Result<Tensor> {
    let diff = x.unsqueeze(2)?.broadcast_sub(&x.unsqueeze(1)?)?; // [B, L, L, 3]
    (diff.sqr()?.sum(D::Minus1)? + 1e-8)?.sqrt()
}

/// A `[B]` f32 tensor that is 1 where `t < t_max`.
fn time_gate(t: &[f64], t_max: f64, dev: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_vec(t.iter().map(|&v| if v < t_max { 1f32 } else { 0.0 }).collect::<Vec<_>>(), t.len(), dev)
}

/// Run `model` on a noised batch and compute the loss terms (module docs).
///
/// # Errors
/// Model, diffusion and candle errors.
pub fn loss_terms(
    model: &WeaverModel,
    diffuser: &Se3Diffuser,
    batch: &TrainBatch,
    noised: &NoisedBatch,
    t: &[f64],
    cfg: &LossConfig,
) -> Result<LossTerms, WeaverError> {
    let dev = batch.rigids_0.trans.device();
    let mask = &batch.cond.mask; // [B, L]
    let pred = model.forward(&noised.rigids_t, t, &batch.cond)?;
    let scores = diffuser.score_targets_batch(&noised.rigids_t, &pred, t)?;
    let rot_scaling: Vec<f64> = noised.scaling.iter().map(|s| s.rot).collect();
    let rot = score_matching_loss(&scores.rot, &noised.scores.rot, &rot_scaling, mask)?;
    let x_hat = (&pred.trans / ANG_PER_NM)?; // [B, L, 3] nm
    let x_0 = (&batch.rigids_0.trans / ANG_PER_NM)?;
    let se = (&x_hat - &x_0)?.sqr()?.sum(D::Minus1)?; // [B, L]
    let trans = ((se * mask)?.sum(D::Minus1)? / (mask.sum(D::Minus1)? + 1e-6)?)?;
    let d_err = (pair_dist(&x_hat)? - &batch.dist_0)?.sqr()?; // [B, L, L]
    let local = (pair_mean(&d_err, &batch.local_mask)? * time_gate(t, cfg.aux_t_max, dev)?)?;
    let intra = (pair_mean(&d_err, &batch.intra_mask)? * time_gate(t, cfg.intra_t_max, dev)?)?;
    let surrogate = ((&rot * cfg.rot_weight)? + (&trans * cfg.trans_weight)?)?;
    let total = ((&surrogate + (&local * cfg.local_weight)?)? + (&intra * cfg.intra_weight)?)?;
    Ok(LossTerms { rot, trans, local, intra, total, surrogate })
}

/// Mean of a `[B]` tensor as f64.
///
/// # Errors
/// Candle errors.
pub fn mean_f64(x: &Tensor) -> Result<f64, WeaverError> {
    Ok(f64::from(x.mean_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{helix, tiny_model};
    use crate::splice::spliced_distance_map;

    #[test]
    fn terms_are_finite_gated_and_zero_for_a_perfect_prediction() {
        let (_, model) = tiny_model(4);
        let diffuser = Se3Diffuser::new(model.cfg.diffusion).unwrap();
        let ca = helix(20, 0.0);
        let frames: Vec<Rigid> = crate::frames::centred(&ca.iter().map(|&p| Rigid::from_translation(p)).collect::<Vec<_>>());
        let labels: Vec<Option<usize>> = (0..20).map(|i| if i < 8 { Some(0) } else if i < 11 { None } else { Some(1) }).collect();
        let ca_c: Vec<_> = frames.iter().map(|f| f.trans).collect();
        let map = spliced_distance_map(&ca_c, &labels).unwrap();
        let short = &frames[..15];
        let map_short = spliced_distance_map(&ca_c[..15], &labels[..15]).unwrap();
        let cfg = LossConfig::default();
        let batch = TrainBatch::new(&[(&frames, &map), (short, &map_short)], &model.cfg, &cfg, &Device::Cpu).unwrap();
        assert_eq!(batch.batch(), 2);
        let intra = batch.intra_mask.to_vec3::<f32>().unwrap();
        assert_eq!((intra[0][0][1], intra[0][0][12], intra[0][9][9], intra[0][12][13]), (1.0, 0.0, 0.0, 1.0));
        let t = [0.1, 0.9];
        let mut rngs = vec![protforge_flow::rng::seeded(1), protforge_flow::rng::seeded(2)];
        let noised = noise_batch(&diffuser, &batch, &t, &mut rngs).unwrap();
        let terms = loss_terms(&model, &diffuser, &batch, &noised, &t, &cfg).unwrap();
        let v = |x: &Tensor| x.to_vec1::<f32>().unwrap();
        assert!(v(&terms.total).iter().all(|x| x.is_finite() && *x > 0.0));
        assert_eq!(v(&terms.local)[1], 0.0, "t = 0.9 is past aux_t_max");
        assert_eq!(v(&terms.intra)[1], 0.0, "t = 0.9 is past intra_t_max");
        assert!(v(&terms.intra)[0] > 0.0);
        // Pairwise distance and x0 terms vanish for the clean frames themselves.
        let x_0 = (&batch.rigids_0.trans / ANG_PER_NM).unwrap();
        let d_err = (pair_dist(&x_0).unwrap() - &batch.dist_0).unwrap().sqr().unwrap();
        assert!(v(&pair_mean(&d_err, &batch.intra_mask).unwrap()).iter().all(|x| *x < 1e-6));
    }
}
