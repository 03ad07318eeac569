//! STAR-MD training: windows of MD frames, context noise on the history, SE(3) denoising
//! score matching on every noisy frame in one pass, and the resumable training loop
//! (checkpoint, EMA, validation CSV, best weights) of `protforge train starmd`.
//!
//! **Loss** per noisy frame (FrameDiff, Yim et al. 2023 §4; STAR-MD Table 8 weights):
//! - rotations: DSM on the IGSO(3) scores implied by the predicted clean frames, weighted by
//!   `1/scaling(t)²` ([`score_matching_loss`]), weight `rot` (0.5);
//! - translations: for `t ≤ trans_x0_threshold` the squared error of the predicted clean
//!   CA positions in nm (FrameDiff's `trans_x0_threshold`; its default 1.0 means always),
//!   otherwise DSM on the VP scores; weight `trans` (1.0);
//!   With `superposed_x0` the predicted CA positions are first superposed on the true ones
//!   (per frame, Kabsch of the detached prediction, so the rotation is a constant): at high `t`
//!   the noisy frame carries no information about the global pose, and the plain error then
//!   rewards shrinking the prediction towards its centroid instead of getting its shape right;
//! - for `t ≤ aux_t_max` (0.25): the squared error (nm²) of the N, CA, C atoms rebuilt from the
//!   frames (`bb_atoms`, 0.25) and of their pairwise distances below `dist_cutoff_ang`
//!   (`dist_map`, 0.25; FrameDiff §4.2).
//!
//! **Context noise** (STAR-MD §3.3): every history frame is noised to its own
//! `τ ~ U[0, context_noise]` by the same forward process, and its AdaLN time is `τ`.
//!
//! **Reproducibility**: every random draw of step `k` comes from
//! [`protforge_nn::train::step_rng`]`(seed, k)`, so a run resumed at step `k` replays the
//! steps of an uninterrupted run exactly (given the same data files).

use crate::StarMdError;
use crate::config::StarMdConfig;
use crate::data::{LoadOptions, MdSet, Window, WindowSpec, sample_batch};
use crate::features::{Conditioning, backbone_frames};
use crate::model::{NM_PER_ANG, StarMd, WindowInput, init_weights};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use protforge_flow::Se3Diffuser;
use protforge_flow::se3_diffusion::score_matching_loss;
use protforge_nn::train::{
    AdamWConfig, CsvRow, LoopSettings, LrSchedule, Params, TrainCheckpoint, TrainState, Trainee, step_rng,
};
use protforge_se3::geometry::{IDEAL_C_LOCAL, IDEAL_N_LOCAL};
use protforge_se3::kabsch::superpose;
use protforge_se3::{Rigid, Rigids, Rotations, Vec3};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Loss weights and switches (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossWeights {
    /// Rotation score loss (STAR-MD: 0.5).
    pub rot: f64,
    /// Translation loss (STAR-MD: 1.0).
    pub trans: f64,
    /// Backbone-atom loss for `t ≤ aux_t_max` (STAR-MD: 0.25).
    pub bb_atoms: f64,
    /// Distance-map loss for `t ≤ aux_t_max` (STAR-MD: 0.25).
    pub dist_map: f64,
    /// Largest diffusion time of the auxiliary losses (0.25).
    pub aux_t_max: f64,
    /// Translation loss is the clean-position error at `t ≤` this, DSM above (FrameDiff: 1.0).
    pub trans_x0_threshold: f64,
    /// Atom pairs closer than this in the true frame enter the distance-map loss (Å; 6).
    pub dist_cutoff_ang: f64,
    /// Superpose the predicted clean CA positions on the true ones before the translation
    /// error (module docs; a protforge extension, off in FrameDiff and STAR-MD).
    #[serde(default)]
    pub superposed_x0: bool,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            rot: 0.5,
            trans: 1.0,
            bb_atoms: 0.25,
            dist_map: 0.25,
            aux_t_max: 0.25,
            trans_x0_threshold: 1.0,
            dist_cutoff_ang: 6.0,
            superposed_x0: false,
        }
    }
}

/// Training settings (`--config` file) with the model architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Architecture and diffusion (exported as the weights' `config.json`).
    pub model: StarMdConfig,
    /// Run seed (initialisation and every step's randomness).
    pub seed: u64,
    /// Optimizer steps in total.
    pub steps: u64,
    /// Windows per batch (all from one trajectory).
    pub windows_per_batch: usize,
    /// Longest residue crop of a window.
    pub crop_residues: usize,
    /// Smallest diffusion time drawn for noisy frames (`t ~ U[t_min, 1]`; the sampler's 0.01).
    pub t_min: f64,
    /// Loss weights.
    pub loss: LossWeights,
    /// Learning-rate schedule.
    pub lr: LrSchedule,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip (STAR-MD: 1.0).
    pub grad_clip: f64,
    /// EMA decay of the exported weights.
    pub ema_decay: f64,
    /// Also validate on the staged real trajectories with a known stride.
    pub include_staged: bool,
    /// Validate every this many steps.
    pub val_every: u64,
    /// Validation batches (fixed windows, times and noise every time).
    pub val_batches: u64,
    /// Log a training row every this many steps.
    pub log_every: u64,
    /// Save a checkpoint at least this often (minutes of wall time).
    pub checkpoint_minutes: f64,
}

impl TrainConfig {
    /// The CPU recipe: [`StarMdConfig::cpu_small`], 2 windows of 8 frames per step, crops of
    /// at most 64 residues, AdamW 3e-4 with warm-up and cosine decay over 30 000 steps.
    #[must_use]
    pub fn cpu_small() -> Self {
        Self {
            model: StarMdConfig::cpu_small(),
            seed: 0,
            steps: 30_000,
            windows_per_batch: 2,
            crop_residues: 64,
            t_min: 0.01,
            loss: LossWeights::default(),
            lr: LrSchedule::WarmupCosine { warmup: 500, total: 30_000, peak: 3e-4, floor: 3e-5 },
            adamw: AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() },
            grad_clip: 1.0,
            ema_decay: 0.999,
            include_staged: false,
            val_every: 500,
            val_batches: 16,
            log_every: 10,
            checkpoint_minutes: 5.0,
        }
    }

    /// A tiny configuration for tests.
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            model: StarMdConfig::tiny(),
            steps: 6,
            windows_per_batch: 2,
            crop_residues: 8,
            lr: LrSchedule::WarmupCosine { warmup: 2, total: 6, peak: 1e-3, floor: 1e-4 },
            val_every: 3,
            val_batches: 2,
            log_every: 1,
            ..Self::cpu_small()
        }
    }

    /// The window shape of this configuration.
    #[must_use]
    pub fn window_spec(&self) -> WindowSpec {
        WindowSpec {
            frames: self.model.window_frames,
            dt_min_ns: self.model.dt_min_ns,
            dt_max_ns: self.model.dt_max_ns,
            crop: self.crop_residues,
        }
    }

    /// Data loading options of this configuration.
    #[must_use]
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { include_staged: self.include_staged, ..LoadOptions::default() }
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`StarMdError::BadConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), StarMdError> {
        self.model.validate()?;
        self.lr.validate()?;
        self.adamw.validate()?;
        if self.windows_per_batch == 0 || self.crop_residues < 2 {
            return Err(StarMdError::config("batch", "windows_per_batch ≥ 1 and crop_residues ≥ 2 are required"));
        }
        if !(self.t_min > 0.0 && self.t_min < 1.0) {
            return Err(StarMdError::config("t_min", format!("{} not in (0, 1)", self.t_min)));
        }
        if !((0.0..1.0).contains(&self.ema_decay) && self.grad_clip.is_finite() && self.grad_clip > 0.0) {
            return Err(StarMdError::config("ema_decay / grad_clip", "need 0 ≤ ema_decay < 1 and grad_clip > 0"));
        }
        if self.val_every == 0 || self.log_every == 0 {
            return Err(StarMdError::config("val_every / log_every", "must be positive"));
        }
        Ok(())
    }
}

/// A batch on the device: noised frames and everything the loss needs.
struct Batch {
    cond: Conditioning,
    history: Rigids,
    history_t: Vec<f64>,
    noisy: Rigids,
    noisy_t: Vec<f64>,
    dt_ns: Vec<f64>,
    /// Clean frames of the noisy part `[B·F, N]` (Å).
    clean: Rigids,
    /// Target scores `[B·F, N, 3]`.
    target_rot: Tensor,
    /// Rotation score scalings, one per noisy frame.
    rot_scaling: Vec<f64>,
    /// Translation score scalings, one per noisy frame.
    trans_scaling: Vec<f64>,
}

/// `[B·F, N]` rigids → `[B, F, N]`.
fn frames_bfn(r: &Rigids, b: usize, f: usize, n: usize) -> Result<Rigids, StarMdError> {
    Ok(Rigids::new(Rotations::new(r.rots.mats.reshape((b, f, n, 3, 3))?)?, r.trans.reshape((b, f, n, 3))?)?)
}

/// Rigids (Å) of the frames of windows, `[B·F, N]` rows.
fn window_frames(windows: &[Window], dev: &Device) -> Result<(Rigids, Vec<Vec<Rigid>>), StarMdError> {
    let mut rows: Vec<Vec<Rigid>> = Vec::new();
    for w in windows {
        for f in &w.frames {
            rows.push(backbone_frames(f)?);
        }
    }
    let (m, n) = (rows.len(), rows.first().map_or(0, Vec::len));
    let flat: Vec<Rigid> = rows.iter().flatten().copied().collect();
    let r = Rigids::from_scalar(&flat, dev)?;
    Ok((Rigids::new(Rotations::new(r.rots.mats.reshape((m, n, 3, 3))?)?, r.trans.reshape((m, n, 3))?)?, rows))
}

/// Noise the windows: history frames to `τ ~ U[0, context_noise]`, noisy frames to
/// `t ~ U[t_min, 1]` (draws in that order from `rng`).
fn make_batch<R: Rng>(
    windows: &[Window],
    cfg: &TrainConfig,
    diffuser: &Se3Diffuser,
    rng: &mut R,
    dev: &Device,
) -> Result<Batch, StarMdError> {
    let (b, f) = (windows.len(), cfg.model.window_frames);
    let n = windows[0].aatype.len();
    let (clean, rows) = window_frames(windows, dev)?;
    let mut history = Vec::with_capacity(b * f * n);
    let mut history_t = Vec::with_capacity(b * f);
    for row in &rows {
        let tau = rng.random::<f64>() * cfg.model.context_noise;
        if tau > 0.0 {
            history.extend(diffuser.forward_marginal(row, tau, None, rng)?.rigids_t);
        } else {
            history.extend(row.iter().copied());
        }
        history_t.push(tau);
    }
    let noisy_t: Vec<f64> = (0..b * f).map(|_| rng.random_range(cfg.t_min..1.0)).collect();
    let mut noisy = Vec::with_capacity(b * f * n);
    let mut target_rot = Vec::with_capacity(b * f * n * 3);
    let (mut rot_scaling, mut trans_scaling) = (Vec::with_capacity(b * f), Vec::with_capacity(b * f));
    for (row, &t) in rows.iter().zip(&noisy_t) {
        let nf = diffuser.forward_marginal(row, t, None, rng)?;
        noisy.extend(nf.rigids_t);
        #[allow(clippy::cast_possible_truncation)]
        target_rot.extend(nf.scores.rot.iter().flat_map(|v| [v.x as f32, v.y as f32, v.z as f32]));
        rot_scaling.push(nf.scaling.rot);
        trans_scaling.push(nf.scaling.trans);
    }
    let up = |rows: &[Rigid]| -> Result<Rigids, StarMdError> {
        let r = Rigids::from_scalar(rows, dev)?;
        frames_bfn(&r, b, f, n)
    };
    let aatype: Vec<&[u8]> = windows.iter().map(|w| w.aatype.as_slice()).collect();
    let conds: Vec<&[[[f32; 3]; 4]]> = windows.iter().map(|w| w.cond.as_slice()).collect();
    Ok(Batch {
        cond: Conditioning::new(&aatype, &conds, dev)?,
        history: up(&history)?,
        history_t,
        noisy: up(&noisy)?,
        noisy_t,
        dt_ns: windows.iter().map(|w| w.dt_ns).collect(),
        clean,
        target_rot: Tensor::from_vec(target_rot, (b * f, n, 3), dev)?,
        rot_scaling,
        trans_scaling,
    })
}

/// N, CA, C of frames `[M, N]` (nm or Å, same unit as the translations): `[M, 3N, 3]`.
fn frame_atoms(r: &Rigids) -> Result<Tensor, StarMdError> {
    let (m, n) = (r.trans.dim(0)?, r.trans.dim(1)?);
    let dev = r.trans.device();
    let local: Vec<f32> = [IDEAL_N_LOCAL, [0.0; 3], IDEAL_C_LOCAL].iter().flatten().map(|&x| x as f32).collect();
    let local = Tensor::from_vec(local, (1, 1, 3, 3), dev)?.broadcast_as((m, n, 3, 3))?.contiguous()?; // [M, N, atom, xyz]
    let per_atom = Rigids::new(Rotations::new(r.rots.mats.unsqueeze(2)?)?, r.trans.unsqueeze(2)?)?; // [M, N, 1]
    Ok(per_atom.apply(&local)?.reshape((m, 3 * n, 3))?)
}

/// Pairwise distances `[M, A, A]` of atoms `[M, A, 3]`, smoothed at 0.
fn pair_distances(x: &Tensor) -> Result<Tensor, StarMdError> {
    Ok((x.unsqueeze(2)?.broadcast_sub(&x.unsqueeze(1)?)?.sqr()?.sum(D::Minus1)? + 1e-8)?.sqrt()?)
}

/// Points `pred` `[M, N, 3]` superposed per frame on `target` `[M, N, 3]`: `(p − p̄) Rᵀ + q̄`
/// with `R` the Kabsch rotation of the detached `pred` onto `target` (a constant), so the
/// gradient reaches `pred` through the centring and the rotation applied to it.
fn superposed_onto(pred: &Tensor, target: &Tensor) -> Result<Tensor, StarMdError> {
    let (p, q) = (pred.detach().to_vec3::<f32>()?, target.to_vec3::<f32>()?);
    let pts = |frame: &Vec<Vec<f32>>| -> Vec<Vec3> {
        frame.iter().map(|v| Vec3::new(v[0].into(), v[1].into(), v[2].into())).collect()
    };
    let mut rt = Vec::with_capacity(p.len() * 9);
    for (a, b) in p.iter().zip(&q) {
        let r = *superpose(&pts(a), &pts(b))?.rigid.rot.matrix();
        // Row vectors: x Rᵀ, so the matrix stored is Rᵀ.
        #[allow(clippy::cast_possible_truncation)]
        rt.extend((0..3).flat_map(|i| (0..3).map(move |j| r[(j, i)] as f32)));
    }
    let rt = Tensor::from_vec(rt, (p.len(), 3, 3), pred.device())?;
    let centred = pred.broadcast_sub(&pred.mean_keepdim(1)?)?;
    Ok(centred.matmul(&rt)?.broadcast_add(&target.mean_keepdim(1)?)?)
}

/// Per-frame 0/1 weights as a `[M]` tensor.
fn flags(v: impl Iterator<Item = bool>, dev: &Device) -> Result<Tensor, StarMdError> {
    let data: Vec<f32> = v.map(|b| if b { 1.0 } else { 0.0 }).collect();
    let m = data.len();
    Ok(Tensor::from_vec(data, m, dev)?)
}

/// Loss of one batch and its parts (mean over noisy frames).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LossParts {
    /// Weighted total.
    pub total: f32,
    /// Rotation score loss (unweighted).
    pub rot: f32,
    /// Translation loss (unweighted).
    pub trans: f32,
    /// Backbone-atom loss over the frames with `t ≤ aux_t_max` (unweighted, nm²).
    pub bb_atoms: f32,
    /// Distance-map loss over the same frames (unweighted, nm²).
    pub dist_map: f32,
}

/// The loss of a batch: a scalar tensor and its parts.
fn batch_loss(
    model: &StarMd,
    diffuser: &Se3Diffuser,
    batch: &Batch,
    w: &LossWeights,
) -> Result<(Tensor, LossParts), StarMdError> {
    let dev = batch.history.trans.device().clone();
    let prep = model.prepare(&batch.cond)?;
    let input = WindowInput {
        history: &batch.history,
        history_t: &batch.history_t,
        noisy: &batch.noisy,
        noisy_t: &batch.noisy_t,
        dt_ns: &batch.dt_ns,
        previous: Some(&batch.clean),
    };
    let pred = model.forward_window(&prep, &input)?; // [B, F, N] Å
    let (b, f, n) = (batch.dt_ns.len(), batch.noisy_t.len() / batch.dt_ns.len().max(1), batch.clean.trans.dim(1)?);
    let m = b * f;
    let flat = |r: &Rigids| -> Result<Rigids, StarMdError> {
        Ok(Rigids::new(Rotations::new(r.rots.mats.reshape((m, n, 3, 3))?)?, r.trans.reshape((m, n, 3))?)?)
    };
    let (pred, noisy) = (flat(&pred)?, flat(&batch.noisy)?);
    let ones = Tensor::ones((m, n), DType::F32, &dev)?;
    // Rotations: DSM on the implied scores.
    let scores = diffuser.score_targets_batch(&noisy, &pred, &batch.noisy_t)?;
    let rot = score_matching_loss(&scores.rot, &batch.target_rot, &batch.rot_scaling, &ones)?; // [M]
    // Translations: clean-position error (nm²) at small t, DSM above.
    let scale = diffuser.config().r3.coordinate_scaling;
    let pred_ca = if w.superposed_x0 { superposed_onto(&pred.trans, &batch.clean.trans)? } else { pred.trans.clone() };
    let x0_err = ((&pred_ca - &batch.clean.trans)? * scale)?.sqr()?.sum(D::Minus1)?.mean(D::Minus1)?; // [M]
    let target_trans = diffuser.score_targets_batch(&noisy, &batch.clean, &batch.noisy_t)?.trans;
    let trans_dsm = score_matching_loss(&scores.trans, &target_trans, &batch.trans_scaling, &ones)?; // [M]
    let use_x0 = flags(batch.noisy_t.iter().map(|&t| t <= w.trans_x0_threshold), &dev)?;
    let trans = ((x0_err * &use_x0)? + (trans_dsm * use_x0.affine(-1.0, 1.0)?)?)?; // [M]
    // Auxiliary losses on the rebuilt backbone atoms (nm).
    let aux = flags(batch.noisy_t.iter().map(|&t| t <= w.aux_t_max), &dev)?;
    let atoms_pred = frame_atoms(&pred.scale_translation(NM_PER_ANG)?)?;
    let atoms_true = frame_atoms(&batch.clean.scale_translation(NM_PER_ANG)?)?;
    let bb = (&atoms_pred - &atoms_true)?.sqr()?.sum(D::Minus1)?.mean(D::Minus1)?; // [M]
    let d_true = pair_distances(&atoms_true)?;
    let eye = Tensor::eye(3 * n, DType::F32, &dev)?.unsqueeze(0)?;
    let near = d_true.lt(w.dist_cutoff_ang * NM_PER_ANG)?.to_dtype(DType::F32)?.broadcast_sub(&eye)?.relu()?; // [M, A, A]
    let dist_err = (pair_distances(&atoms_pred)? - &d_true)?.sqr()?;
    let dist = ((dist_err * &near)?.sum((1, 2))? / (near.sum((1, 2))? + 1e-6)?)?; // [M]
    let aux_count = f64::from(aux.sum_all()?.to_scalar::<f32>()?).max(1.0);
    let mean = |x: &Tensor| -> Result<Tensor, StarMdError> { Ok(x.mean_all()?) };
    let aux_mean = |x: &Tensor| -> Result<Tensor, StarMdError> { Ok(((x * &aux)?.sum_all()? / aux_count)?) };
    let (rot_m, trans_m, bb_m, dist_m) = (mean(&rot)?, mean(&trans)?, aux_mean(&bb)?, aux_mean(&dist)?);
    let total = ((((&rot_m * w.rot)? + (&trans_m * w.trans)?)? + (&bb_m * w.bb_atoms)?)? + (&dist_m * w.dist_map)?)?;
    let parts = LossParts {
        total: total.to_scalar()?,
        rot: rot_m.to_scalar()?,
        trans: trans_m.to_scalar()?,
        bb_atoms: bb_m.to_scalar()?,
        dist_map: dist_m.to_scalar()?,
    };
    Ok((total, parts))
}

/// What a training step reports.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepReport {
    /// Steps completed.
    pub step: u64,
    /// Loss parts of the step's batch.
    pub loss: LossParts,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Residues of the step's windows.
    pub residues: usize,
}

/// A training run in `out`: resumable state in `out/checkpoint/`, the EMA weights with the
/// best validation loss in `out/best/{config.json, model.safetensors}`, logs `out/train.csv`
/// and `out/val.csv`.
pub struct Trainer {
    cfg: TrainConfig,
    out: PathBuf,
    model: StarMd,
    diffuser: Se3Diffuser,
    params: Params,
    state: TrainState<TrainConfig>,
    device: Device,
    /// Longest stride the training data allow (ns), written into exported weights.
    data_max_dt_ns: Option<f64>,
}

impl Trainer {
    /// Start a new run, or resume `out/checkpoint` when `resume` is set and it exists.
    ///
    /// # Errors
    /// Invalid config, unreadable checkpoint, or a checkpoint trained with another config.
    pub fn new(cfg: TrainConfig, out: &Path, resume: bool, device: Device) -> Result<Self, StarMdError> {
        cfg.validate()?;
        std::fs::create_dir_all(out).map_err(StarMdError::io(out))?;
        let varmap = VarMap::new();
        let model = StarMd::new(&cfg.model, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
        init_weights(&varmap, cfg.seed)?;
        let diffuser = Se3Diffuser::new(cfg.model.diffusion)?;
        let mut params = Params::new(&varmap, cfg.adamw, cfg.ema_decay)?;
        let state = params
            .resume(&TrainCheckpoint::new(out.join("checkpoint")), resume, &cfg)?
            .unwrap_or_else(|| TrainState::fresh(cfg.seed, cfg.clone()));
        Ok(Self { cfg, out: out.to_path_buf(), model, diffuser, params, state, device, data_max_dt_ns: None })
    }

    /// Steps completed so far.
    #[must_use]
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// Record the longest stride (ns) the training data allow; exported weights then accept
    /// rollouts only up to it (`StarMdConfig::dt_data_max_ns`). Not part of the run's
    /// configuration, so a resumed run may see more data.
    pub fn set_data_max_dt_ns(&mut self, max: Option<f64>) {
        self.data_max_dt_ns = max;
    }

    /// The model being trained.
    #[must_use]
    pub fn model(&self) -> &StarMd {
        &self.model
    }

    /// Number of scalar parameters.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.params.n_params()
    }
}

impl Trainee for Trainer {
    type Config = TrainConfig;
    type Data = MdSet;
    type Step = StepReport;
    type Val = f64;
    type Error = StarMdError;

    fn settings(&self) -> LoopSettings {
        LoopSettings::new(self.cfg.steps, self.cfg.log_every, self.cfg.val_every, self.cfg.checkpoint_minutes)
    }

    fn out_dir(&self) -> &Path {
        &self.out
    }

    fn state_mut(&mut self) -> &mut TrainState<TrainConfig> {
        &mut self.state
    }

    /// Mean loss over the fixed validation batches, with the EMA weights.
    ///
    /// # Errors
    /// Data or candle errors.
    fn validate(&mut self, val: &MdSet) -> Result<f64, StarMdError> {
        self.params.swap_ema()?;
        let result = (|| -> Result<f64, StarMdError> {
            let spec = self.cfg.window_spec();
            let mut sum = 0.0;
            for j in 0..self.cfg.val_batches {
                let mut rng = step_rng(self.cfg.seed ^ 0x005e_ed0f_57a4, j);
                let windows = sample_batch(val, &spec, self.cfg.windows_per_batch, &mut rng)?;
                let batch = make_batch(&windows, &self.cfg, &self.diffuser, &mut rng, &self.device)?;
                let (_, parts) = batch_loss(&self.model, &self.diffuser, &batch, &self.cfg.loss)?;
                sum += f64::from(parts.total);
            }
            Ok(sum / self.cfg.val_batches.max(1) as f64)
        })();
        self.params.swap_ema()?;
        result
    }

    /// One optimizer step (skipped, but counted, when the gradient norm is not finite).
    ///
    /// # Errors
    /// Data, candle or optimizer errors.
    fn train_step(&mut self, train: &MdSet) -> Result<StepReport, StarMdError> {
        let step = self.state.step;
        let mut rng = step_rng(self.cfg.seed, step);
        let windows = sample_batch(train, &self.cfg.window_spec(), self.cfg.windows_per_batch, &mut rng)?;
        let batch = make_batch(&windows, &self.cfg, &self.diffuser, &mut rng, &self.device)?;
        let (loss, parts) = batch_loss(&self.model, &self.diffuser, &batch, &self.cfg.loss)?;
        let lr = self.cfg.lr.lr(step);
        let grad_norm = self.params.step(&loss, lr, self.cfg.grad_clip)?;
        self.state.step += 1;
        Ok(StepReport { step: self.state.step, loss: parts, grad_norm, lr, residues: windows[0].aatype.len() })
    }

    /// Save the checkpoint (atomically).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn save(&self) -> Result<(), StarMdError> {
        self.params.save(&TrainCheckpoint::new(self.out.join("checkpoint")), &self.state)?;
        Ok(())
    }

    /// Write the EMA weights with the model config to `dir` (a shippable weights folder).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn export_ema(&self, dir: &Path) -> Result<(), StarMdError> {
        let mut model = self.cfg.model.clone();
        model.dt_data_max_ns = self.data_max_dt_ns.filter(|&d| d < model.dt_max_ns);
        self.params.export_ema(dir, &model)?;
        Ok(())
    }
}

impl CsvRow for StepReport {
    fn header() -> &'static str {
        "loss,rot,trans,bb_atoms,dist_map,grad_norm,lr,residues"
    }

    fn row(&self) -> String {
        let l = self.loss;
        format!(
            "{:.5},{:.5},{:.5},{:.5},{:.5},{:.4},{:.3e},{}",
            l.total, l.rot, l.trans, l.bb_atoms, l.dist_map, self.grad_norm, self.lr, self.residues
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::MdTrajectory;
    use protforge_se3::geometry::{HELIX_PHI, HELIX_PSI, OMEGA_TRANS, build_backbone};
    use rand_distr::StandardNormal;

    /// A toy "trajectory": a 10-residue helix whose torsions wander (ps-spaced frames).
    pub(crate) fn toy_set(n_traj: usize, frames: usize, seed: u64) -> MdSet {
        let mut rng = protforge_flow::rng::seeded(seed);
        let trajectories = (0..n_traj)
            .map(|k| {
                let n = 10;
                let (mut phi, mut psi) = (vec![HELIX_PHI; n], vec![HELIX_PSI; n]);
                let frames = (0..frames)
                    .map(|_| {
                        for i in 0..n {
                            phi[i] += 0.05 * rng.sample::<f64, _>(StandardNormal);
                            psi[i] += 0.05 * rng.sample::<f64, _>(StandardNormal);
                        }
                        #[allow(clippy::cast_possible_truncation)]
                        build_backbone(n, &phi, &psi, &vec![OMEGA_TRANS; n])
                            .into_iter()
                            .map(|r| r.map(|p| [p.x as f32, p.y as f32, p.z as f32]))
                            .collect()
                    })
                    .collect();
                MdTrajectory {
                    name: format!("toy{k}"),
                    protein: format!("toy{k}"),
                    aatype: (0..n as u8).collect(),
                    frames,
                    stride_ps: 10.0,
                }
            })
            .collect();
        MdSet { trajectories }
    }

    #[test]
    fn resume_replays_the_same_run() {
        let (train, val) = (toy_set(2, 40, 1), toy_set(1, 30, 2));
        let cfg = TrainConfig::tiny();
        let dir_a = tempfile::tempdir().unwrap();
        let mut a = Trainer::new(cfg.clone(), dir_a.path(), false, Device::Cpu).unwrap();
        let mut losses_a = Vec::new();
        a.run(&train, &val, None, &mut |r, _| losses_a.push(r.loss.total)).unwrap();

        let dir_b = tempfile::tempdir().unwrap();
        let mut b = Trainer::new(cfg.clone(), dir_b.path(), false, Device::Cpu).unwrap();
        let mut losses_b = Vec::new();
        b.run(&train, &val, Some(3), &mut |r, _| losses_b.push(r.loss.total)).unwrap();
        drop(b);
        let mut b = Trainer::new(cfg.clone(), dir_b.path(), true, Device::Cpu).unwrap();
        assert_eq!(b.step(), 3);
        b.run(&train, &val, None, &mut |r, _| losses_b.push(r.loss.total)).unwrap();
        assert_eq!(losses_a, losses_b, "resumed run diverged");
        assert!(losses_a.iter().all(|l| l.is_finite()));
        assert!(dir_b.path().join("best/model.safetensors").is_file());
        assert!(dir_b.path().join("best/config.json").is_file());
        let csv = std::fs::read_to_string(dir_b.path().join("train.csv")).unwrap();
        assert_eq!(csv.lines().count(), 7, "{csv}");
        let val_csv = std::fs::read_to_string(dir_b.path().join("val.csv")).unwrap();
        assert_eq!(val_csv.lines().count(), 3, "{val_csv}");
        // Resuming with another configuration is refused.
        let other = TrainConfig { seed: 5, ..cfg };
        assert!(matches!(
            Trainer::new(other, dir_b.path(), true, Device::Cpu),
            Err(StarMdError::Nn(protforge_nn::NnError::ConfigChanged { .. }))
        ));
    }

    #[test]
    fn superposed_error_ignores_the_global_pose_and_keeps_gradients() {
        let dev = Device::Cpu;
        let pts: Vec<f32> = (0..12).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7).collect();
        let target = Tensor::from_vec(pts.clone(), (1, 4, 3), &dev).unwrap();
        // The same points rotated by 90° about z and shifted.
        let moved: Vec<f32> = pts.chunks(3).flat_map(|p| [-p[1] + 3.0, p[0] - 1.0, p[2] + 2.0]).collect();
        let var = candle_core::Var::from_tensor(&Tensor::from_vec(moved, (1, 4, 3), &dev).unwrap()).unwrap();
        let aligned = superposed_onto(var.as_tensor(), &target).unwrap();
        let err = (&aligned - &target).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(err < 1e-4, "a rigid copy must superpose exactly ({err})");
        // A deformed prediction keeps a non-zero error and a gradient.
        let bent = (var.as_tensor() * 1.3).unwrap();
        let loss = (superposed_onto(&bent, &target).unwrap() - &target).unwrap().sqr().unwrap().sum_all().unwrap();
        assert!(loss.to_scalar::<f32>().unwrap() > 0.1);
        let g = loss.backward().unwrap();
        let gn = g.get(&var).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(gn > 1e-3, "no gradient through the superposition");
    }

    #[test]
    fn loss_decreases_on_a_fixed_batch() {
        let set = toy_set(1, 40, 3);
        let mut cfg = TrainConfig::tiny();
        cfg.lr = LrSchedule::Constant { lr: 3e-3 };
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(cfg.clone(), dir.path(), false, Device::Cpu).unwrap();
        let mut rng = step_rng(9, 0);
        let windows = sample_batch(&set, &cfg.window_spec(), 2, &mut rng).unwrap();
        let batches: Vec<Batch> = (0..3)
            .map(|k| make_batch(&windows, &cfg, &t.diffuser, &mut step_rng(4, k), &Device::Cpu).unwrap())
            .collect();
        let eval = |t: &Trainer| -> f32 {
            batches.iter().map(|b| batch_loss(&t.model, &t.diffuser, b, &cfg.loss).unwrap().1.total).sum()
        };
        let before = eval(&t);
        for k in 0..40 {
            let (loss, _) = batch_loss(&t.model, &t.diffuser, &batches[k % 3], &cfg.loss).unwrap();
            t.params.step(&loss, 3e-3, 1.0).unwrap();
        }
        let after = eval(&t);
        assert!(after < 0.8 * before, "loss {before} -> {after}");
    }
}
