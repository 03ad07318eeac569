//! SE(3) diffusion over per-residue backbone frames: FrameDiff (Yim et al., "SE(3) diffusion
//! model with application to protein backbone generation", ICML 2023, §3–4; reference
//! `jasonkyuyim/se3_diffusion` `data/se3_diffuser.py`) with the settings that ConfRover
//! (`ByteDance-Seed/ConfRover`, `configs/model/confrover.yaml`) and STAR-MD use. Shared by
//! STAR-MD and ProteinWeaver.
//!
//! Translations follow the VP-SDE of [`crate::r3_vp`], rotations the IGSO(3) diffusion of
//! [`crate::so3_diffusion`]; the two are independent given the data, so the score of a frame
//! is the pair (translation score, rotation score).
//!
//! **Time convention: `t = 0` is data, `t = 1` is noise** (the opposite of the flow-matching
//! modules). Sampling runs from `t_max = 1` down to `t_min = 0.01` in `num_steps = 200`
//! Euler(–Maruyama) steps by default (ConfRover `EulerSampler`).
//!
//! **Units.** Translations in Å; translation scores in 1/(scaled unit) (nm⁻¹ with the default
//! coordinate scaling 0.1); rotation scores are tangent vectors in the body frame of `R_t`
//! (1/radian). Under a global rotation `Q` of the data and the noisy frames, translation
//! scores rotate with `Q` and body-frame rotation scores are unchanged.
//!
//! **Training** (FrameDiff §4): draw `t`, noise the frames with
//! [`Se3Diffuser::forward_marginal_batch`], predict the clean frames, turn the prediction into
//! scores with [`Se3Diffuser::score_targets_batch`] (differentiable), and weight the squared
//! errors with [`score_matching_loss`] and the returned score scalings.
//!
//! ```
//! use protforge_flow::rng::seeded;
//! use protforge_flow::se3_diffusion::{Se3Diffuser, Se3DiffusionConfig};
//! use protforge_flow::so3_diffusion::So3Config;
//! use protforge_se3::{Rigid, Vec3};
//!
//! let cfg = Se3DiffusionConfig {
//!     so3: So3Config { num_sigma: 32, num_omega: 256, ..So3Config::default() },
//!     ..Se3DiffusionConfig::default()
//! };
//! let diffuser = Se3Diffuser::new(cfg).unwrap();
//! let frames: Vec<Rigid> = (0..4).map(|i| Rigid::from_translation(Vec3::new(3.8 * i as f64, 0.0, 0.0))).collect();
//! let noised = diffuser.forward_marginal(&frames, 0.5, None, &mut seeded(0)).unwrap();
//! assert_eq!(noised.rigids_t.len(), 4);
//! // The score targets of the noised frames given the data are the returned scores.
//! let targets = diffuser.score_targets(&noised.rigids_t, &frames, 0.5).unwrap();
//! assert!((targets.trans[0] - noised.scores.trans[0]).norm() < 1e-9);
//! assert_eq!(diffuser.reverse_times().unwrap().len(), 201);
//! ```

use candle_core::{D, Device, Tensor};
use protforge_se3::batched::{Rigids, Rotations};
use protforge_se3::{Rigid, Vec3};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::FlowError;
use crate::r3_vp::{VpConfig, VpDiffuser};
use crate::schedule::{Integrator, TimeGrid};
use crate::so3_diffusion::{So3Config, So3Diffuser};

/// Check `t ∈ (0, 1]`.
pub(crate) fn check_time(t: f64) -> Result<(), FlowError> {
    if t > 0.0 && t <= 1.0 {
        Ok(())
    } else {
        Err(FlowError::BadParameter { what: "diffusion time", reason: format!("t = {t} must be in (0, 1]") })
    }
}

/// Check that two lengths agree.
pub(crate) fn check_len(what: &'static str, a: usize, b: usize) -> Result<(), FlowError> {
    if a == b { Ok(()) } else { Err(FlowError::BadParameter { what, reason: format!("length mismatch ({a} vs {b})") }) }
}

/// One reverse-time step from `t` to `t − dt`, shared by the translation and rotation parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReverseStep {
    /// Current time, in (0, 1].
    pub t: f64,
    /// Step size, in (0, t].
    pub dt: f64,
    /// Euler–Maruyama on the reverse SDE, or Euler on the probability-flow ODE.
    pub integrator: Integrator,
    /// Noise scale γ ≥ 0 of SDE steps (1 samples the model; < 1 is low temperature).
    pub noise_scale: f64,
    /// Move the centre of the (masked) translations to the origin after the step
    /// (translations only, FrameDiff `center=True`).
    pub center: bool,
}

impl ReverseStep {
    /// Check the step.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] unless `t ∈ (0, 1]`, `dt ∈ (0, t]` and `noise_scale ≥ 0`.
    pub fn validate(&self) -> Result<(), FlowError> {
        check_time(self.t)?;
        if !(self.dt > 0.0 && self.dt <= self.t + 1e-12) {
            return Err(FlowError::BadParameter {
                what: "reverse step",
                reason: format!("dt = {} must be in (0, t = {}]", self.dt, self.t),
            });
        }
        if !(self.noise_scale.is_finite() && self.noise_scale >= 0.0) {
            return Err(FlowError::BadParameter {
                what: "noise_scale",
                reason: format!("{} is not a non-negative number", self.noise_scale),
            });
        }
        Ok(())
    }
}

/// Settings of the reverse-time sampler.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Number of reverse steps (default 200, as ConfRover and STAR-MD).
    pub num_steps: usize,
    /// Last time evaluated (default 0.01).
    pub t_min: f64,
    /// First time (default 1.0).
    pub t_max: f64,
    /// Spacing of the steps: `grid` maps onto `[t_max → t_min]` with its `0` at `t_max`, so
    /// grids that refine towards `1` refine towards the data. Default uniform.
    pub grid: TimeGrid,
    /// SDE (default, ConfRover `mode: sde`) or probability-flow ODE.
    pub integrator: Integrator,
    /// Noise scale γ of SDE steps (default 1).
    pub noise_scale: f64,
    /// Re-centre the translations after every step (default true).
    pub center: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            num_steps: 200,
            t_min: 0.01,
            t_max: 1.0,
            grid: TimeGrid::Uniform,
            integrator: Integrator::Sde,
            noise_scale: 1.0,
            center: true,
        }
    }
}

impl SamplerConfig {
    /// Check the settings.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] unless `num_steps ≥ 1`, `0 < t_min < t_max ≤ 1` and
    /// `noise_scale ≥ 0`.
    pub fn validate(&self) -> Result<(), FlowError> {
        if self.num_steps == 0 {
            return Err(FlowError::BadParameter { what: "num_steps", reason: "must be at least 1".into() });
        }
        if !(self.t_min > 0.0 && self.t_min < self.t_max && self.t_max <= 1.0) {
            return Err(FlowError::BadParameter {
                what: "sampler time range",
                reason: format!("t_min = {}, t_max = {} (need 0 < t_min < t_max ≤ 1)", self.t_min, self.t_max),
            });
        }
        if !(self.noise_scale.is_finite() && self.noise_scale >= 0.0) {
            return Err(FlowError::BadParameter {
                what: "noise_scale",
                reason: format!("{} is not a non-negative number", self.noise_scale),
            });
        }
        Ok(())
    }

    /// The `num_steps + 1` sampling times, decreasing from exactly `t_max` to exactly `t_min`.
    /// Step `k` evaluates the model at `times[k]` and moves to `times[k + 1]`.
    ///
    /// # Errors
    /// As [`Self::validate`] and [`TimeGrid::times`].
    pub fn times(&self) -> Result<Vec<f64>, FlowError> {
        self.validate()?;
        let tau = self.grid.times(self.num_steps)?;
        let mut t: Vec<f64> = tau.iter().map(|u| self.t_max - u * (self.t_max - self.t_min)).collect();
        t[0] = self.t_max;
        t[self.num_steps] = self.t_min;
        Ok(t)
    }
}

/// All settings of the SE(3) diffusion (serde; missing fields take the defaults, unknown
/// fields are rejected). Defaults are STAR-MD's: VP 0.1 → 20 with scaling 0.1, logarithmic
/// IGSO(3) σ 0.1 → 1.5, 200 SDE steps from 1.0 to 0.01.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Se3DiffusionConfig {
    /// Translation diffusion.
    pub r3: VpConfig,
    /// Rotation diffusion.
    pub so3: So3Config,
    /// Reverse-time sampler.
    pub sampler: SamplerConfig,
}

/// Per-residue scores of a set of frames.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameScores {
    /// Translation scores, 1/(scaled unit).
    pub trans: Vec<Vec3>,
    /// Rotation scores, body frame, 1/radian.
    pub rot: Vec<Vec3>,
}

/// FrameDiff's score scalings at one time: divide squared score errors by their squares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreScaling {
    /// RMS of one coordinate of the translation score, 1/(scaled unit).
    pub trans: f64,
    /// RMS of one component of the rotation score, 1/radian.
    pub rot: f64,
}

/// Frames noised to time `t` with their conditional scores.
#[derive(Debug, Clone, PartialEq)]
pub struct NoisedFrames {
    /// Noisy frames (Å).
    pub rigids_t: Vec<Rigid>,
    /// Conditional scores (the DSM targets); zero for residues that are not diffused.
    pub scores: FrameScores,
    /// Score scalings at `t`.
    pub scaling: ScoreScaling,
}

/// Batched scores: both `[B, L, 3]` f32.
#[derive(Debug, Clone)]
pub struct ScoreTensors {
    /// Translation scores `[B, L, 3]`, 1/(scaled unit).
    pub trans: Tensor,
    /// Rotation scores `[B, L, 3]`, body frame, 1/radian.
    pub rot: Tensor,
}

/// A batch of frames noised to per-sample times.
#[derive(Debug, Clone)]
pub struct NoisedBatch {
    /// Noisy frames, batch shape `[B, L]` (Å).
    pub rigids_t: Rigids,
    /// Conditional scores `[B, L, 3]` (zero where not diffused).
    pub scores: ScoreTensors,
    /// Score scalings, one per sample.
    pub scaling: Vec<ScoreScaling>,
}

/// A network (with its conditioning) that predicts the scores of noisy frames; the sampler
/// knows only frames and time.
pub trait ScoreModel {
    /// Scores `[B, L, 3]` (translation in 1/(scaled unit), rotation in the body frame) of the
    /// frames `rigids_t` (batch shape `[B, L]`, Å) at time `t` (shared by the batch).
    ///
    /// # Errors
    /// Whatever the network returns.
    fn scores(&self, rigids_t: &Rigids, t: f64) -> Result<ScoreTensors, FlowError>;
}

/// The SE(3) diffuser: VP-SDE translations plus IGSO(3) rotations, per residue.
#[derive(Debug, Clone)]
pub struct Se3Diffuser {
    cfg: Se3DiffusionConfig,
    r3: VpDiffuser,
    so3: So3Diffuser,
}

/// `(B, L)` of a `[B, L]` batch of frames.
fn batch_dims(rigids: &Rigids, what: &'static str) -> Result<(usize, usize), FlowError> {
    match *rigids.batch_shape() {
        [b, l] => Ok((b, l)),
        ref other => {
            Err(FlowError::BadParameter { what, reason: format!("frames must have batch shape [B, L], got {other:?}") })
        }
    }
}

/// `[B, L, 3]` tensor → B·L vectors (row-major).
fn vec3s_from_tensor(t: &Tensor) -> Result<Vec<Vec3>, FlowError> {
    let v: Vec<f32> = t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1()?;
    Ok(v.chunks_exact(3).map(|c| Vec3::new(f64::from(c[0]), f64::from(c[1]), f64::from(c[2]))).collect())
}

/// B·L vectors → `[B, L, 3]` f32 tensor.
fn tensor_from_vec3s(v: &[Vec3], b: usize, l: usize, dev: &Device) -> Result<Tensor, FlowError> {
    let data: Vec<f32> = v.iter().flat_map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect();
    Ok(Tensor::from_vec(data, (b, l, 3), dev)?)
}

/// B·L frames → batch shape `[B, L]`.
fn rigids_from_rows(rows: &[Rigid], b: usize, l: usize, dev: &Device) -> Result<Rigids, FlowError> {
    let flat = Rigids::from_scalar(rows, dev)?;
    let rots = Rotations::new(flat.rots.mats.reshape((b, l, 3, 3))?)?;
    Ok(Rigids::new(rots, flat.trans.reshape((b, l, 3))?)?)
}

/// Optional `[B, L]` mask (> 0.5 is on) → B·L booleans.
fn mask_rows(mask: Option<&Tensor>, b: usize, l: usize) -> Result<Option<Vec<bool>>, FlowError> {
    let Some(m) = mask else { return Ok(None) };
    if m.dims() != [b, l] {
        return Err(FlowError::BadParameter {
            what: "diffusion mask",
            reason: format!("expected [{b}, {l}], got {:?}", m.dims()),
        });
    }
    let v: Vec<f32> = m.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1()?;
    Ok(Some(v.into_iter().map(|x| x > 0.5).collect()))
}

impl Se3Diffuser {
    /// Validate the settings and build both diffusers (precomputes the IGSO(3) tables).
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for invalid settings.
    pub fn new(cfg: Se3DiffusionConfig) -> Result<Self, FlowError> {
        cfg.sampler.validate()?;
        Ok(Self { r3: VpDiffuser::new(cfg.r3)?, so3: So3Diffuser::new(cfg.so3)?, cfg })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &Se3DiffusionConfig {
        &self.cfg
    }

    /// The translation diffuser.
    #[must_use]
    pub fn r3(&self) -> &VpDiffuser {
        &self.r3
    }

    /// The rotation diffuser.
    #[must_use]
    pub fn so3(&self) -> &So3Diffuser {
        &self.so3
    }

    /// The sampler's `num_steps + 1` times, from `t_max` down to `t_min`.
    ///
    /// # Errors
    /// As [`SamplerConfig::times`].
    pub fn reverse_times(&self) -> Result<Vec<f64>, FlowError> {
        self.cfg.sampler.times()
    }

    /// Score scalings at `t` (translation, rotation).
    #[must_use]
    pub fn score_scaling(&self, t: f64) -> ScoreScaling {
        ScoreScaling { trans: self.r3.score_scaling(t), rot: self.so3.score_scaling(t) }
    }

    /// Noise frames (Å) to time `t ∈ (0, 1]` and return them with their conditional scores.
    /// Residues whose `diffuse_mask` entry is false keep their frame and get zero scores.
    /// Translations are not centred here: centre the data first (FrameDiff does it in the data
    /// pipeline). Draws the translation noise of every residue, then the rotation noise.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for a bad `t` or mask length.
    pub fn forward_marginal<R: Rng + ?Sized>(
        &self,
        rigids_0: &[Rigid],
        t: f64,
        diffuse_mask: Option<&[bool]>,
        rng: &mut R,
    ) -> Result<NoisedFrames, FlowError> {
        if let Some(m) = diffuse_mask {
            check_len("diffusion mask", rigids_0.len(), m.len())?;
        }
        let trans_0: Vec<Vec3> = rigids_0.iter().map(|r| r.trans).collect();
        let rots_0: Vec<_> = rigids_0.iter().map(|r| r.rot).collect();
        let (trans_t, mut trans_score) = self.r3.forward_marginal(&trans_0, t, rng)?;
        let (rots_t, mut rot_score) = self.so3.forward_marginal(&rots_0, t, rng)?;
        let mut rigids_t: Vec<Rigid> = rots_t.into_iter().zip(trans_t).map(|(r, x)| Rigid::new(r, x)).collect();
        if let Some(m) = diffuse_mask {
            for (i, &on) in m.iter().enumerate() {
                if !on {
                    rigids_t[i] = rigids_0[i];
                    trans_score[i] = Vec3::zeros();
                    rot_score[i] = Vec3::zeros();
                }
            }
        }
        Ok(NoisedFrames {
            rigids_t,
            scores: FrameScores { trans: trans_score, rot: rot_score },
            scaling: self.score_scaling(t),
        })
    }

    /// Conditional scores of `rigids_t` given `rigids_0` at time `t` (FrameDiff
    /// `calc_trans_score` + `calc_rot_score`): the targets of denoising score matching, or the
    /// scores implied by a network's prediction of the clean frames.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for a bad `t` or different lengths.
    pub fn score_targets(&self, rigids_t: &[Rigid], rigids_0: &[Rigid], t: f64) -> Result<FrameScores, FlowError> {
        check_len("score targets", rigids_t.len(), rigids_0.len())?;
        let tr = |r: &[Rigid]| r.iter().map(|x| x.trans).collect::<Vec<_>>();
        let ro = |r: &[Rigid]| r.iter().map(|x| x.rot).collect::<Vec<_>>();
        Ok(FrameScores {
            trans: self.r3.score(&tr(rigids_t), &tr(rigids_0), t)?,
            rot: self.so3.score(&ro(rigids_t), &ro(rigids_0), t)?,
        })
    }

    /// One reverse step of the frames from `t` to `t − dt` with the sampler's integrator, noise
    /// scale and centring. Residues whose `mask` entry is false are unchanged (and excluded
    /// from the centre). SDE steps draw the translation noise of every residue, then the
    /// rotation noise.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for a bad step or mismatched lengths.
    pub fn reverse_step<R: Rng + ?Sized>(
        &self,
        rigids_t: &[Rigid],
        scores: &FrameScores,
        t: f64,
        dt: f64,
        mask: Option<&[bool]>,
        rng: &mut R,
    ) -> Result<Vec<Rigid>, FlowError> {
        let s = &self.cfg.sampler;
        let step = ReverseStep { t, dt, integrator: s.integrator, noise_scale: s.noise_scale, center: s.center };
        let trans: Vec<Vec3> = rigids_t.iter().map(|r| r.trans).collect();
        let rots: Vec<_> = rigids_t.iter().map(|r| r.rot).collect();
        let trans = self.r3.reverse_step(&trans, &scores.trans, &step, mask, rng)?;
        let rots = self.so3.reverse_step(&rots, &scores.rot, &step, mask, rng)?;
        Ok(rots.into_iter().zip(trans).map(|(r, x)| Rigid::new(r, x)).collect())
    }

    /// `n` frames from the reference distribution: translations `N(0, I)` in scaled units
    /// (10 Å std per coordinate by default), rotations IGSO(3)(σ_max). Draws all translations,
    /// then all rotations.
    pub fn sample_ref<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<Rigid> {
        let trans = self.r3.sample_ref(n, rng);
        let rots = self.so3.sample_ref(n, rng);
        rots.into_iter().zip(trans).map(|(r, x)| Rigid::new(r, x)).collect()
    }

    /// Batched [`Self::forward_marginal`]: frames of batch shape `[B, L]`, one time per sample,
    /// optional `diffuse_mask [B, L]` (1 = diffuse), one generator per sample (so a sample's
    /// noise does not depend on the rest of the batch).
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for bad shapes, times or `rngs.len() ≠ B`; candle errors.
    pub fn forward_marginal_batch<R: Rng>(
        &self,
        rigids_0: &Rigids,
        t: &[f64],
        diffuse_mask: Option<&Tensor>,
        rngs: &mut [R],
    ) -> Result<NoisedBatch, FlowError> {
        let (b, l) = batch_dims(rigids_0, "forward_marginal_batch")?;
        check_len("forward_marginal_batch times", b, t.len())?;
        check_len("forward_marginal_batch generators", b, rngs.len())?;
        let rows = rigids_0.to_scalar()?;
        let mask = mask_rows(diffuse_mask, b, l)?;
        let (mut frames, mut trans, mut rot, mut scaling) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, rng) in rngs.iter_mut().enumerate() {
            let m = mask.as_ref().map(|m| &m[i * l..(i + 1) * l]);
            let n = self.forward_marginal(&rows[i * l..(i + 1) * l], t[i], m, rng)?;
            frames.extend(n.rigids_t);
            trans.extend(n.scores.trans);
            rot.extend(n.scores.rot);
            scaling.push(n.scaling);
        }
        let dev = rigids_0.trans.device();
        Ok(NoisedBatch {
            rigids_t: rigids_from_rows(&frames, b, l, dev)?,
            scores: ScoreTensors {
                trans: tensor_from_vec3s(&trans, b, l, dev)?,
                rot: tensor_from_vec3s(&rot, b, l, dev)?,
            },
            scaling,
        })
    }

    /// Batched, differentiable [`Self::score_targets`]: frames of batch shape `[B, L]`, one time
    /// per sample → scores `[B, L, 3]`. Gradients flow into both `rigids_t` and `rigids_0`
    /// (use it on a network's prediction of the clean frames).
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for bad shapes or times; candle errors.
    pub fn score_targets_batch(
        &self,
        rigids_t: &Rigids,
        rigids_0: &Rigids,
        t: &[f64],
    ) -> Result<ScoreTensors, FlowError> {
        batch_dims(rigids_t, "score_targets_batch")?;
        Ok(ScoreTensors {
            trans: self.r3.score_tensor(&rigids_t.trans, &rigids_0.trans, t)?,
            rot: self.so3.score_tensor(&rigids_t.rots, &rigids_0.rots, t)?,
        })
    }

    /// Batched [`Self::reverse_step`] (computed in f64 on the CPU, returned as f32 on the
    /// frames' device): `mask [B, L]` (1 = update), one generator per sample.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for bad shapes or step; candle errors.
    pub fn reverse_step_batch<R: Rng>(
        &self,
        rigids_t: &Rigids,
        scores: &ScoreTensors,
        t: f64,
        dt: f64,
        mask: Option<&Tensor>,
        rngs: &mut [R],
    ) -> Result<Rigids, FlowError> {
        let (b, l) = batch_dims(rigids_t, "reverse_step_batch")?;
        check_len("reverse_step_batch generators", b, rngs.len())?;
        for (what, s) in [("translation scores", &scores.trans), ("rotation scores", &scores.rot)] {
            if s.dims() != [b, l, 3] {
                return Err(FlowError::BadParameter {
                    what,
                    reason: format!("expected [{b}, {l}, 3], got {:?}", s.dims()),
                });
            }
        }
        let rows = rigids_t.to_scalar()?;
        let trans = vec3s_from_tensor(&scores.trans)?;
        let rot = vec3s_from_tensor(&scores.rot)?;
        let mask = mask_rows(mask, b, l)?;
        let mut out = Vec::with_capacity(b * l);
        for (i, rng) in rngs.iter_mut().enumerate() {
            let r = i * l..(i + 1) * l;
            let s = FrameScores { trans: trans[r.clone()].to_vec(), rot: rot[r.clone()].to_vec() };
            let m = mask.as_ref().map(|m| &m[r.clone()]);
            out.extend(self.reverse_step(&rows[r], &s, t, dt, m, rng)?);
        }
        rigids_from_rows(&out, b, l, rigids_t.trans.device())
    }

    /// Batched [`Self::sample_ref`]: `[B, L]` frames, one generator per sample.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] if `rngs.len() ≠ b`; candle errors.
    pub fn sample_ref_batch<R: Rng>(
        &self,
        b: usize,
        l: usize,
        dev: &Device,
        rngs: &mut [R],
    ) -> Result<Rigids, FlowError> {
        check_len("sample_ref_batch generators", b, rngs.len())?;
        let rows: Vec<Rigid> = rngs.iter_mut().flat_map(|rng| self.sample_ref(l, rng)).collect();
        rigids_from_rows(&rows, b, l, dev)
    }

    /// Generate `[B, L]` frames: start from the reference distribution and take the sampler's
    /// reverse steps with the scores of `model`, ending at `t_min` (FrameDiff and ConfRover
    /// then use the model's clean-frame prediction at `t_min` as the output; that is the
    /// caller's choice). `mask [B, L]` (1 = generate) freezes padding at its reference draw.
    ///
    /// # Errors
    /// Errors of the model, of the steps, or of candle.
    pub fn sample<M: ScoreModel + ?Sized, R: Rng>(
        &self,
        model: &M,
        b: usize,
        l: usize,
        mask: Option<&Tensor>,
        dev: &Device,
        rngs: &mut [R],
    ) -> Result<Rigids, FlowError> {
        let times = self.reverse_times()?;
        let mut x = self.sample_ref_batch(b, l, dev, rngs)?;
        for w in times.windows(2) {
            let scores = model.scores(&x, w[0])?;
            x = self.reverse_step_batch(&x, &scores, w[0], w[0] - w[1], mask, rngs)?;
        }
        Ok(x)
    }
}

/// FrameDiff's weighted denoising-score-matching loss per sample (Yim et al. 2023 §4:
/// `λ_t ‖s_θ − ∇ log p_{t|0}‖²` with `λ_t = 1/scaling(t)²`, averaged over the masked residues):
/// `Σ_l m_l ‖pred − target‖² / scaling_b² / (Σ_l m_l + 1e-10)`.
///
/// `pred, target: [B, L, 3]`, `scaling`: one value per sample (from [`NoisedBatch::scaling`]
/// or [`Se3Diffuser::score_scaling`]), `mask: [B, L]` → `[B]`.
///
/// # Errors
/// [`FlowError::BadParameter`] if `scaling.len() ≠ B` or a scaling is not positive; candle
/// shape errors.
pub fn score_matching_loss(
    pred: &Tensor,
    target: &Tensor,
    scaling: &[f64],
    mask: &Tensor,
) -> Result<Tensor, FlowError> {
    let (b, _, _) = pred.dims3()?;
    check_len("score_matching_loss scalings", b, scaling.len())?;
    if let Some(bad) = scaling.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(FlowError::BadParameter {
            what: "score scaling",
            reason: format!("{bad} is not a positive number"),
        });
    }
    let w: Vec<f32> = scaling.iter().map(|s| (1.0 / (s * s)) as f32).collect();
    let w = Tensor::from_vec(w, b, pred.device())?.to_dtype(pred.dtype())?; // [B]
    let mask = mask.to_dtype(pred.dtype())?;
    let se = (pred - target)?.sqr()?.sum(D::Minus1)?; // [B, L]
    let num = (se * &mask)?.sum(D::Minus1)?; // [B]
    let den = (mask.sum(D::Minus1)? + 1e-10)?; // [B]
    Ok(((num * w)? / den)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use candle_core::DType;
    use protforge_se3::{Rotation, so3};
    use rand::rngs::StdRng;
    use std::sync::OnceLock;

    fn diffuser() -> &'static Se3Diffuser {
        static D: OnceLock<Se3Diffuser> = OnceLock::new();
        D.get_or_init(|| Se3Diffuser::new(Se3DiffusionConfig::default()).unwrap())
    }

    /// A centred random "protein": frames along a noisy helix-like curve (Å).
    fn frames(n: usize, seed: u64) -> Vec<Rigid> {
        let mut rng = seeded(seed);
        let mut out: Vec<Rigid> = (0..n)
            .map(|i| {
                let a = i as f64 * 1.7;
                let x = Vec3::new(2.3 * a.cos(), 2.3 * a.sin(), 1.5 * i as f64) + crate::r3_vp::randn3(&mut rng) * 0.5;
                Rigid::new(so3::exp(&(crate::r3_vp::randn3(&mut rng) * 1.5)), x)
            })
            .collect();
        let com = out.iter().map(|r| r.trans).sum::<Vec3>() / n as f64;
        for r in &mut out {
            r.trans -= com;
        }
        out
    }

    /// Mean rotation angle of IGSO(3)(σ) (midpoint rule; ≈ 1.6σ for small σ).
    fn mean_igso3_angle(sigma: f64) -> f64 {
        let h = std::f64::consts::PI / 4000.0;
        (0..4000)
            .map(|i| {
                let w = (f64::from(i) + 0.5) * h;
                w * protforge_se3::igso3::angle_density(w, sigma) * h
            })
            .sum()
    }

    #[test]
    fn defaults_match_star_md_and_serde_round_trips() {
        let cfg = Se3DiffusionConfig::default();
        assert_eq!(cfg.sampler.num_steps, 200);
        assert_eq!((cfg.sampler.t_min, cfg.sampler.t_max), (0.01, 1.0));
        assert_eq!(cfg.sampler.integrator, Integrator::Sde);
        assert_eq!((cfg.so3.min_sigma, cfg.so3.max_sigma), (0.1, 1.5));
        assert_eq!(cfg.r3.coordinate_scaling, 0.1);
        let json = serde_json::to_string(&cfg).unwrap();
        let back: Se3DiffusionConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        let partial: Se3DiffusionConfig =
            serde_json::from_str(r#"{"sampler": {"num_steps": 50, "integrator": "ode"}}"#).unwrap();
        assert_eq!(partial.sampler.num_steps, 50);
        assert_eq!(partial.sampler.integrator, Integrator::Ode);
        assert_eq!(partial.so3, So3Config::default());
        assert!(serde_json::from_str::<Se3DiffusionConfig>(r#"{"sampler": {"steps": 5}}"#).is_err());
        let bad = Se3DiffusionConfig { sampler: SamplerConfig { t_min: 0.0, ..SamplerConfig::default() }, ..cfg };
        assert!(Se3Diffuser::new(bad).is_err());
    }

    #[test]
    fn reverse_times_endpoints_monotone_and_length() {
        for grid in [TimeGrid::Uniform, TimeGrid::Log { p: 2.0 }] {
            for n in [1, 7, 200] {
                let s = SamplerConfig { num_steps: n, grid, ..SamplerConfig::default() };
                let t = s.times().unwrap();
                assert_eq!(t.len(), n + 1);
                assert_eq!((t[0], t[n]), (1.0, 0.01));
                assert!(t.windows(2).all(|w| w[1] < w[0]));
            }
        }
        let t = SamplerConfig::default().times().unwrap();
        assert!((t[1] - (1.0 - 0.99 / 200.0)).abs() < 1e-12);
        // The log grid refines towards the data (small t).
        let t = SamplerConfig { num_steps: 10, grid: TimeGrid::Log { p: 2.0 }, ..SamplerConfig::default() }
            .times()
            .unwrap();
        assert!(t[0] - t[1] > 10.0 * (t[9] - t[10]));
        assert!(SamplerConfig { num_steps: 0, ..SamplerConfig::default() }.times().is_err());
    }

    #[test]
    fn forward_marginal_respects_the_mask_and_seed() {
        let d = diffuser();
        let f = frames(12, 1);
        let mask: Vec<bool> = (0..12).map(|i| i % 3 != 0).collect();
        let a = d.forward_marginal(&f, 0.4, Some(&mask), &mut seeded(3)).unwrap();
        let b = d.forward_marginal(&f, 0.4, Some(&mask), &mut seeded(3)).unwrap();
        assert_eq!(a, b);
        for i in 0..12 {
            if mask[i] {
                assert!((a.rigids_t[i].trans - f[i].trans).norm() > 1e-6);
            } else {
                assert_eq!(a.rigids_t[i], f[i]);
                assert_eq!((a.scores.trans[i], a.scores.rot[i]), (Vec3::zeros(), Vec3::zeros()));
            }
        }
        // Masked-in residues carry the same noise as without a mask (the stream ignores it).
        let c = d.forward_marginal(&f, 0.4, None, &mut seeded(3)).unwrap();
        assert_eq!(a.rigids_t[1], c.rigids_t[1]);
        assert_eq!(a.scaling, d.score_scaling(0.4));
        assert!(d.forward_marginal(&f, 0.4, Some(&mask[..5]), &mut seeded(3)).is_err());
    }

    #[test]
    fn score_targets_are_equivariant_under_global_rotation() {
        let d = diffuser();
        let f = frames(10, 2);
        let noised = d.forward_marginal(&f, 0.3, None, &mut seeded(4)).unwrap();
        let q = Rigid::from_rotation(so3::exp(&Vec3::new(0.7, -1.9, 0.4)));
        let rot = |fs: &[Rigid]| fs.iter().map(|r| q.compose(r)).collect::<Vec<_>>();
        let s = d.score_targets(&noised.rigids_t, &f, 0.3).unwrap();
        let sq = d.score_targets(&rot(&noised.rigids_t), &rot(&f), 0.3).unwrap();
        for i in 0..10 {
            assert!((sq.trans[i] - q.rot.apply(s.trans[i])).norm() < 1e-9 * (1.0 + s.trans[i].norm()));
            assert!((sq.rot[i] - s.rot[i]).norm() < 1e-7 * (1.0 + s.rot[i].norm()));
        }
        // The batched, differentiable targets agree and transform the same way.
        let dev = Device::Cpu;
        let up = |fs: &[Rigid]| rigids_from_rows(fs, 1, 10, &dev).unwrap();
        let st = d.score_targets_batch(&up(&noised.rigids_t), &up(&f), &[0.3]).unwrap();
        let stq = d.score_targets_batch(&up(&rot(&noised.rigids_t)), &up(&rot(&f)), &[0.3]).unwrap();
        let (tr, ro) = (vec3s_from_tensor(&st.trans).unwrap(), vec3s_from_tensor(&st.rot).unwrap());
        let (trq, roq) = (vec3s_from_tensor(&stq.trans).unwrap(), vec3s_from_tensor(&stq.rot).unwrap());
        for i in 0..10 {
            assert!((tr[i] - s.trans[i]).norm() < 1e-3 * (1.0 + s.trans[i].norm()));
            assert!((ro[i] - s.rot[i]).norm() < 2e-3 * (1.0 + s.rot[i].norm()));
            assert!((trq[i] - q.rot.apply(tr[i])).norm() < 1e-3 * (1.0 + tr[i].norm()));
            assert!((roq[i] - ro[i]).norm() < 2e-3 * (1.0 + ro[i].norm()));
        }
    }

    #[test]
    fn ode_reverse_step_is_equivariant_under_global_rotation() {
        let cfg = Se3DiffusionConfig {
            sampler: SamplerConfig { integrator: Integrator::Ode, ..SamplerConfig::default() },
            ..Se3DiffusionConfig::default()
        };
        let d = Se3Diffuser::new(cfg).unwrap();
        let f = frames(8, 5);
        let x = d.forward_marginal(&f, 0.6, None, &mut seeded(6)).unwrap().rigids_t;
        let s = d.score_targets(&x, &f, 0.6).unwrap();
        let q = Rigid::from_rotation(so3::exp(&Vec3::new(-0.3, 2.2, 1.0)));
        let xq: Vec<Rigid> = x.iter().map(|r| q.compose(r)).collect();
        let sq = FrameScores { trans: s.trans.iter().map(|v| q.rot.apply(*v)).collect(), rot: s.rot.clone() };
        let next = d.reverse_step(&x, &s, 0.6, 0.01, None, &mut seeded(0)).unwrap();
        let next_q = d.reverse_step(&xq, &sq, 0.6, 0.01, None, &mut seeded(0)).unwrap();
        for (a, b) in next.iter().zip(&next_q) {
            let qa = q.compose(a);
            assert!((qa.trans - b.trans).norm() < 1e-9);
            assert!(qa.rot.angle_to(&b.rot) < 1e-9);
        }
    }

    /// The exact score of a point mass at `target` (per sample of the batch).
    struct PointMass {
        target: Rigids,
        diffuser: &'static Se3Diffuser,
    }

    impl ScoreModel for PointMass {
        fn scores(&self, rigids_t: &Rigids, t: f64) -> Result<ScoreTensors, FlowError> {
            let b = rigids_t.batch_shape()[0];
            self.diffuser.score_targets_batch(rigids_t, &self.target, &vec![t; b])
        }
    }

    #[test]
    fn sampling_with_the_exact_score_of_a_point_mass_concentrates_at_it() {
        let d = diffuser();
        let (b, l) = (4, 16);
        let f = frames(l, 7);
        let dev = Device::Cpu;
        let rows: Vec<Rigid> = (0..b).flat_map(|_| f.clone()).collect();
        let model = PointMass { target: rigids_from_rows(&rows, b, l, &dev).unwrap(), diffuser: d };
        let mut rngs: Vec<StdRng> = (0..b as u64).map(seeded).collect();
        let out = d.sample(&model, b, l, None, &dev, &mut rngs).unwrap().to_scalar().unwrap();
        // The exact marginal at t_min = 0.01: ≈ 0.45 Å per coordinate, mean angle ≈ 0.21 rad.
        let t_min = 0.01;
        let trans_std = d.r3().conditional_var(t_min).sqrt() / 0.1;
        let sig = d.so3().sigma(t_min);
        let mut sq = 0.0;
        let mut ang = 0.0;
        for (i, r) in out.iter().enumerate() {
            sq += (r.trans - f[i % l].trans).norm_squared();
            ang += r.rot.angle_to(&f[i % l].rot);
        }
        let n = (b * l) as f64;
        let rms = (sq / (3.0 * n)).sqrt();
        let mean_angle = ang / n;
        // Euler–Maruyama with 200 steps overestimates the spread by ~25% (see the r3_vp tests).
        assert!(rms < 1.5 * trans_std, "translation rms {rms} Å vs marginal std {trans_std} Å");
        let want_angle = mean_igso3_angle(sig);
        assert!((mean_angle / want_angle - 1.0).abs() < 0.15, "mean angle {mean_angle} vs {want_angle}");
        // Same seeds, same samples; a sample does not depend on its batch company.
        let mut rngs: Vec<StdRng> = (0..b as u64).map(seeded).collect();
        let again = d.sample(&model, b, l, None, &dev, &mut rngs).unwrap().to_scalar().unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn batched_noise_is_per_sample_and_reverse_masks() {
        let d = diffuser();
        let l = 6;
        let f = frames(l, 9);
        let dev = Device::Cpu;
        let one = rigids_from_rows(&f, 1, l, &dev).unwrap();
        let two_rows: Vec<Rigid> = f.iter().chain(&f).copied().collect();
        let two = rigids_from_rows(&two_rows, 2, l, &dev).unwrap();
        let a = d.forward_marginal_batch(&one, &[0.5], None, &mut [seeded(11)]).unwrap();
        let b = d.forward_marginal_batch(&two, &[0.2, 0.5], None, &mut [seeded(3), seeded(11)]).unwrap();
        let a_rows = a.rigids_t.to_scalar().unwrap();
        let b_rows = b.rigids_t.to_scalar().unwrap();
        assert_eq!(a_rows[..], b_rows[l..]);
        assert_eq!(b.scaling[1], d.score_scaling(0.5));
        assert_eq!(b.scores.trans.dims(), &[2, l, 3]);
        // Reverse step with a mask keeps masked-out frames.
        let mask = Tensor::from_vec(vec![1f32, 1.0, 0.0, 1.0, 0.0, 1.0], (1, l), &dev).unwrap();
        let next = d.reverse_step_batch(&a.rigids_t, &a.scores, 0.5, 0.01, Some(&mask), &mut [seeded(1)]).unwrap();
        let next_rows = next.to_scalar().unwrap();
        assert_eq!(next_rows[2].trans, a_rows[2].trans);
        assert!(next_rows[2].rot.angle_to(&a_rows[2].rot) < 1e-6);
        assert!((next_rows[0].trans - a_rows[0].trans).norm() > 1e-4);
        // Shape errors.
        assert!(d.forward_marginal_batch(&two, &[0.5], None, &mut [seeded(1), seeded(2)]).is_err());
        assert!(d.forward_marginal_batch(&two, &[0.5, 0.5], None, &mut [seeded(1)]).is_err());
        let bad_mask = Tensor::ones((2, l), DType::F32, &dev).unwrap();
        assert!(d.reverse_step_batch(&a.rigids_t, &a.scores, 0.5, 0.01, Some(&bad_mask), &mut [seeded(1)]).is_err());
    }

    #[test]
    fn score_matching_loss_weights_and_masks() {
        let dev = Device::Cpu;
        let pred = Tensor::from_vec(vec![1f32, 0.0, 0.0, 0.0, 2.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 4.0], (2, 2, 3), &dev)
            .unwrap();
        let target = Tensor::zeros((2, 2, 3), DType::F32, &dev).unwrap();
        let mask = Tensor::from_vec(vec![1f32, 1.0, 1.0, 0.0], (2, 2), &dev).unwrap();
        let loss = score_matching_loss(&pred, &target, &[1.0, 2.0], &mask).unwrap().to_vec1::<f32>().unwrap();
        // Sample 0: (1 + 4)/2 / 1; sample 1: 9/1 / 4 (the masked 16 is ignored).
        assert!((loss[0] - 2.5).abs() < 1e-6 && (loss[1] - 2.25).abs() < 1e-6, "{loss:?}");
        let zero = score_matching_loss(&target, &target, &[1.0, 1.0], &mask).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(zero, vec![0.0, 0.0]);
        assert!(score_matching_loss(&pred, &target, &[1.0], &mask).is_err());
        assert!(score_matching_loss(&pred, &target, &[1.0, 0.0], &mask).is_err());
    }

    #[test]
    fn reference_distribution_has_the_right_spread() {
        let d = diffuser();
        let n = 20_000;
        let r = d.sample_ref(n, &mut seeded(13));
        let ms = r.iter().map(|x| x.trans.norm_squared()).sum::<f64>() / (3 * n) as f64;
        assert!((ms.sqrt() / 10.0 - 1.0).abs() < 0.02, "translation std {}", ms.sqrt());
        let want = mean_igso3_angle(d.so3().sigma(1.0));
        let mean_angle = r.iter().map(|x| x.rot.angle_to(&Rotation::identity())).sum::<f64>() / n as f64;
        assert!((mean_angle / want - 1.0).abs() < 0.02, "{mean_angle} vs {want}");
    }
}
