//! PAR training: batches of CA crops, the multi-scale flow-matching loss with noisy context
//! learning and scheduled sampling (PAR §3.3–3.4), and the resumable training loop.
//!
//! Reproducibility: every random draw of step `k` comes from
//! [`protforge_nn::train::step_rng`]`(seed, k)`, so a run resumed from a checkpoint at step
//! `k` replays exactly the steps an uninterrupted run would take.

use crate::ParError;
use crate::config::{ExposureBias, ParConfig};
use crate::model::{ANG_PER_NM, DecoderInput, ParModel};
use crate::sampler::{DecoderField, SampleOptions};
use crate::scales::{down_weights, linear_weights};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use protforge_flow::TimeDistribution;
use protforge_flow::r3::{IntegrateOptions, center, integrate, interpolate, predict_data, velocity_target};
use protforge_flow::rng::randn;
use protforge_nn::NnError;
use protforge_nn::attention::KvCache;
use protforge_nn::init::init_seeded;
use protforge_nn::train::{AdamWConfig, CsvRow, LoopSettings, LrSchedule, Params, TrainCheckpoint, TrainState, Trainee, step_rng};
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Training settings (`--config` file), with the model architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Architecture.
    pub model: ParConfig,
    /// Run seed (initialisation and every step's randomness).
    pub seed: u64,
    /// Optimizer steps in total.
    pub steps: u64,
    /// Residues per batch: a batch of crops of length `L` holds `max(1, tokens / L)` chains.
    pub tokens_per_batch: usize,
    /// Longest crop (residues).
    pub crop_max: usize,
    /// Shortest crop (residues).
    pub crop_min: usize,
    /// Learning-rate schedule.
    pub lr: LrSchedule,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    /// EMA decay of the shipped weights.
    pub ema_decay: f64,
    /// Distribution of flow times.
    pub time: TimeDistribution,
    /// Exposure-bias mitigation switches.
    pub exposure: ExposureBias,
    /// Probability of training a scale with self-conditioning input.
    pub self_cond_prob: f64,
    /// Auxiliary local-distance loss on the predicted clean coordinates (off by default).
    #[serde(default)]
    pub aux_distance: AuxDistance,
    /// Validate every this many steps.
    pub val_every: u64,
    /// Validation batches (fixed: same crops, times and noise every time).
    pub val_batches: u64,
    /// Log a training row every this many steps.
    pub log_every: u64,
    /// Save a checkpoint at least this often (minutes of wall time).
    pub checkpoint_minutes: f64,
    /// Warm start: a weights folder whose `model.safetensors` tensors are loaded over the
    /// seeded initialisation of a new run. Every saved tensor must exist in this architecture
    /// with the same shape; parameters the file lacks (inputs added since, which start at zero)
    /// keep their initialisation. Ignored when resuming (the checkpoint holds the weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Also export the EMA weights to `out/snapshots/step_<N>/` every this many steps (for
    /// equal-budget ablations and sample-quality curves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
}

impl TrainConfig {
    /// The CPU recipe used for the shipped weights.
    #[must_use]
    pub fn cpu_small() -> Self {
        Self {
            model: ParConfig::cpu_small(),
            seed: 0,
            steps: 60_000,
            tokens_per_batch: 384,
            crop_max: 256,
            crop_min: 40,
            lr: LrSchedule::WarmupCosine { warmup: 1000, total: 60_000, peak: 5e-4, floor: 5e-5 },
            adamw: AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() },
            grad_clip: 1.0,
            ema_decay: 0.999,
            time: TimeDistribution::default(),
            exposure: ExposureBias::default(),
            self_cond_prob: 0.5,
            aux_distance: AuxDistance::default(),
            val_every: 500,
            val_batches: 24,
            log_every: 10,
            checkpoint_minutes: 5.0,
            init_from: None,
            snapshot_every: None,
        }
    }

    /// A tiny configuration for tests.
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            model: ParConfig::tiny(),
            steps: 6,
            tokens_per_batch: 40,
            crop_max: 20,
            crop_min: 10,
            lr: LrSchedule::WarmupCosine { warmup: 2, total: 6, peak: 1e-3, floor: 1e-4 },
            val_every: 3,
            val_batches: 2,
            log_every: 1,
            ..Self::cpu_small()
        }
    }
}

/// CA traces (Å) of the chains of one split, with sampling weights.
#[derive(Debug, Clone)]
pub struct CaSet {
    /// `[n_chains][len][3]` CA coordinates in Å.
    pub traces: Vec<Vec<[f32; 3]>>,
    /// Sampling weight of each chain (e.g. 1 / cluster size).
    pub weights: Vec<f64>,
}

impl CaSet {
    /// The chains of `split` in a dataset file, weighted by inverse cluster size.
    ///
    /// # Errors
    /// Dataset errors.
    pub fn from_dataset(ds: &protforge_data::Dataset, split: protforge_data::Split) -> Result<Self, protforge_data::DataError> {
        let all_weights = ds.cluster_weights(Some(split));
        let mut traces = Vec::new();
        let mut weights = Vec::new();
        for i in ds.split_indices(split) {
            if let Some(bb) = ds.chain(i) {
                traces.push(bb.ca());
                weights.push(all_weights[i]);
            }
        }
        Ok(Self { traces, weights })
    }
}

/// Uniformly random rotation matrix (row-major) from a normalised Gaussian quaternion.
fn random_rotation<R: Rng + ?Sized>(rng: &mut R) -> [[f32; 3]; 3] {
    let mut q: [f64; 4] = std::array::from_fn(|_| rng.sample(StandardNormal));
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    q.iter_mut().for_each(|v| *v /= n);
    let [w, x, y, z] = q;
    [
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y)],
        [2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x)],
        [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)],
    ]
    .map(|r| r.map(|v| v as f32))
}

/// Draw a batch: crops of one length `L` (uniform between `crop_min` and the length of a
/// cluster-weighted first chain, capped at `crop_max`), centred, randomly rotated, in nm.
/// → `[B, L, 3]`.
///
/// # Errors
/// Candle errors; an empty set.
pub fn sample_batch<R: Rng + ?Sized>(set: &CaSet, cfg: &TrainConfig, rng: &mut R, device: &Device) -> candle_core::Result<Tensor> {
    let dist = WeightedIndex::new(&set.weights).map_err(|e| candle_core::Error::Msg(format!("sampling weights: {e}")))?;
    let first = dist.sample(rng);
    // Crop length uniform in [crop_min, min(chain length, crop_max)] (the whole chain when it
    // is shorter than crop_min).
    let longest = set.traces[first].len().min(cfg.crop_max);
    let len = if longest > cfg.crop_min { rng.random_range(cfg.crop_min..=longest) } else { longest };
    let b = (cfg.tokens_per_batch / len.max(1)).max(1);
    let mut chosen = vec![first];
    let mut tries = 0;
    while chosen.len() < b && tries < 50 * b {
        tries += 1;
        let i = dist.sample(rng);
        if set.traces[i].len() >= len {
            chosen.push(i);
        }
    }
    let mut data = Vec::with_capacity(chosen.len() * len * 3);
    for &i in &chosen {
        let trace = &set.traces[i];
        let start = rng.random_range(0..=trace.len() - len);
        let crop = &trace[start..start + len];
        let mut mean = [0.0f32; 3];
        for p in crop {
            for k in 0..3 {
                mean[k] += p[k] / len as f32;
            }
        }
        let r = random_rotation(rng);
        for p in crop {
            let c = [p[0] - mean[0], p[1] - mean[1], p[2] - mean[2]];
            for row in &r {
                data.push((row[0] * c[0] + row[1] * c[1] + row[2] * c[2]) / ANG_PER_NM as f32);
            }
        }
    }
    Tensor::from_vec(data, (chosen.len(), len, 3), device)
}

/// `[to, from]` weights as a batched operator applied to `x [B, from, 3]` → `[B, to, 3]`.
fn apply(w: Vec<f32>, from: usize, to: usize, x: &Tensor) -> candle_core::Result<Tensor> {
    let b = x.dim(0)?;
    Tensor::from_vec(w, (1, to, from), x.device())?.repeat((b, 1, 1))?.matmul(&x.contiguous()?)
}

fn ones_mask(b: usize, n: usize, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::ones((b, n), DType::F32, device)
}

/// Auxiliary loss on the one-step clean estimate `x̂₁ = x_t + (1 − t)·v` (FrameDiff's pairwise
/// distance loss, Yim et al. 2023 §4.2, adapted to CA flow matching; PAR itself trains on the
/// velocity MSE alone). For samples with `t ≥ t_min`, the squared error (Å²) of every pairwise
/// distance whose true value is below `cutoff_nm` (bonded neighbours and close contacts) is
/// averaged; the term is `weight ·` that mean. It targets exactly the local geometry (3.8 Å
/// CA–CA bonds, no clashes) a small, briefly trained decoder gets wrong first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuxDistance {
    /// Weight of the term (0 disables it).
    pub weight: f64,
    /// Pairs closer than this in the true structure (nm) enter the loss.
    pub cutoff_nm: f64,
    /// Only samples with flow time at least this (near data) enter the loss.
    pub t_min: f64,
}

impl Default for AuxDistance {
    fn default() -> Self {
        Self { weight: 0.0, cutoff_nm: 0.6, t_min: 0.75 }
    }
}

/// Pairwise distances of `x [B, s, 3]` (nm): `[B, s, s]`, smoothed at 0 (`√(d² + 1e-6)`) so
/// the gradient stays finite on the diagonal.
fn pair_distances(x: &Tensor) -> candle_core::Result<Tensor> {
    let diff = x.unsqueeze(2)?.broadcast_sub(&x.unsqueeze(1)?)?;
    (diff.sqr()?.sum(candle_core::D::Minus1)? + 1e-6)?.sqrt()
}

/// The [`AuxDistance`] term of one scale (unweighted, Å²); `None` when no pair qualifies.
fn aux_distance_loss(x1_hat: &Tensor, x1: &Tensor, t: &Tensor, cfg: &AuxDistance) -> candle_core::Result<Option<Tensor>> {
    let (b, s, _) = x1.dims3()?;
    let d_true = pair_distances(&x1.detach())?;
    let d_pred = pair_distances(x1_hat)?;
    let eye = Tensor::eye(s, DType::F32, x1.device())?.unsqueeze(0)?;
    let near = d_true.lt(cfg.cutoff_nm)?.to_dtype(DType::F32)?.broadcast_sub(&eye)?.relu()?;
    let late = t.ge(cfg.t_min)?.to_dtype(DType::F32)?.reshape((b, 1, 1))?;
    let mask = near.broadcast_mul(&late)?;
    let count = mask.sum_all()?.to_scalar::<f32>()?;
    if count < 1.0 {
        return Ok(None);
    }
    let err = ((d_pred - d_true)? * (ANG_PER_NM))?.sqr()?;
    Ok(Some((err.mul(&mask)?.sum_all()? / f64::from(count))?))
}

fn sample_times<R: Rng + ?Sized>(dist: &TimeDistribution, b: usize, rng: &mut R, device: &Device) -> candle_core::Result<Tensor> {
    let t: Vec<f32> = (0..b).map(|_| dist.sample(rng).map(|t| t as f32).unwrap_or(0.5)).collect();
    Tensor::from_vec(t, b, device)
}

/// The training targets `x^i = Down(x, s_i)`, centred, of `x [B, L, 3]` (nm), one per scale.
///
/// # Errors
/// Candle errors.
pub fn scale_targets(model: &ParModel, x: &Tensor) -> Result<Vec<Tensor>, protforge_flow::FlowError> {
    let (b, len, _) = x.dims3()?;
    let mcfg = &model.cfg;
    let sizes = mcfg.scales.sizes(len);
    let mut targets = Vec::with_capacity(sizes.len());
    for &s in &sizes {
        let xi = if s == len { x.clone() } else { apply(down_weights(mcfg.downsample, len, s), len, s, x)? };
        targets.push(center(&xi, &ones_mask(b, s, x.device())?)?);
    }
    Ok(targets)
}

/// `Up(context_i)` to the next scale's size for every context: `[B, sizes[i+1], 3]`.
fn upsample_contexts(sizes: &[usize], contexts: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
    contexts.iter().enumerate().map(|(i, c)| apply(linear_weights(sizes[i], sizes[i + 1]), sizes[i], sizes[i + 1], c)).collect()
}

/// Contexts of multi-step scheduled sampling ([`ExposureBias::sampled_context`]): for scales
/// `0..n−1` in order, the truth `targets[i] [B, s_i, 3]` (nm) noised to one `t₀` per scale
/// and integrated to `t = 1` by the decoder, conditioned on the AR embedding of the contexts
/// sampled before it. Returns `n − 1` detached tensors `[B, s_i, 3]` (nm, centred).
fn sampled_contexts<R: Rng + ?Sized>(
    model: &ParModel,
    targets: &[Tensor],
    sizes: &[usize],
    len: usize,
    cfg: &TrainConfig,
    rng: &mut R,
) -> Result<Vec<Tensor>, ParError> {
    let n = sizes.len();
    let b = targets[0].dim(0)?;
    let device = targets[0].device();
    let defaults = SampleOptions::default();
    let steps = cfg.exposure.sampled_steps;
    let unit = defaults.grid.times(steps.steps)?;
    let io = IntegrateOptions {
        integrator: steps.integrator,
        g: defaults.g,
        gamma: defaults.noise_scale,
        self_condition: model.decoder.self_condition(),
    };
    let mut contexts: Vec<Tensor> = Vec::with_capacity(n - 1);
    let mut cache = KvCache::for_layers(model.ar.n_layers());
    for i in 0..n - 1 {
        let up = match contexts.last() {
            Some(prev) => Some(apply(linear_weights(sizes[i - 1], sizes[i]), sizes[i - 1], sizes[i], prev)?),
            None => None,
        };
        let z = model.ar.step(len, sizes[i], i, up.as_ref(), b, &mut cache)?.detach();
        let t0 = cfg.time.sample(rng)?;
        let mask = ones_mask(b, sizes[i], device)?;
        let eps = center(&randn(rng, &[b, sizes[i], 3], device)?, &mask)?;
        let x_t0 = interpolate(&eps, &targets[i], &Tensor::full(t0 as f32, b, device)?)?;
        let grid: Vec<f64> = unit.iter().map(|u| t0 + (1.0 - t0) * u).collect();
        let field = DecoderField { decoder: &model.decoder, z: &z, len };
        contexts.push(integrate(&field, &x_t0, &mask, &grid, &io, &mut &mut *rng)?.detach());
    }
    Ok(contexts)
}

/// Per-scale flow-matching losses of one batch (PAR eq. for L: mean over scales of the
/// per-residue velocity MSE), with noisy context learning, scheduled sampling and sampled
/// contexts as configured ([`ExposureBias`]). `x [B, L, 3]` in nm, centred. Returns the total loss and the per-scale values.
///
/// # Errors
/// Candle errors.
pub fn batch_loss<R: Rng + ?Sized>(model: &ParModel, x: &Tensor, cfg: &TrainConfig, rng: &mut R) -> Result<(Tensor, Vec<f32>), ParError> {
    let (b, len, _) = x.dims3()?;
    let device = x.device();
    let mcfg = &model.cfg;
    let sizes = mcfg.scales.sizes(len);
    let n = sizes.len();
    let targets = scale_targets(model, x)?;
    let upsample = |ctx: &[Tensor]| upsample_contexts(&sizes, ctx);
    let sampled = n > 1 && cfg.exposure.sampled_context > 0.0 && rng.random::<f64>() < cfg.exposure.sampled_context;
    let contexts = if sampled {
        sampled_contexts(model, &targets, &sizes, len, cfg, rng)?
    } else {
        // Contexts for scales 1..n: noisy context learning on the ground truth.
        let mut contexts: Vec<Tensor> = Vec::with_capacity(n.saturating_sub(1));
        for (i, xi) in targets.iter().take(n - 1).enumerate() {
            let ctx = if cfg.exposure.noisy_context {
                let w: Vec<f32> = (0..b).map(|_| rng.random::<f32>()).collect();
                let w = Tensor::from_vec(w, b, device)?;
                let eps = randn(rng, &[b, sizes[i], 3], device)?;
                interpolate(&eps, xi, &w)?
            } else {
                xi.clone()
            };
            contexts.push(ctx);
        }
        // Scheduled sampling: replace the contexts by the decoder's one-step predictions.
        if n > 1 && cfg.exposure.scheduled_sampling > 0.0 && rng.random::<f64>() < cfg.exposure.scheduled_sampling {
            let zs = model.ar.forward_all(len, &sizes, &upsample(&contexts)?, b)?;
            for i in 0..n - 1 {
                let t = sample_times(&cfg.time, b, rng, device)?;
                let eps = center(&randn(rng, &[b, sizes[i], 3], device)?, &ones_mask(b, sizes[i], device)?)?;
                let x_t = interpolate(&eps, &targets[i], &t)?;
                let z = zs[i].detach();
                let v = model.decoder.forward(&DecoderInput { x_t: &x_t, t: &t, z: &z, x_sc: None, len })?;
                contexts[i] = predict_data(&x_t, &v, &t)?.detach();
            }
        }
        contexts
    };
    let zs = model.ar.forward_all(len, &sizes, &upsample(&contexts)?, b)?;
    let mut total = Tensor::zeros((), DType::F32, device)?;
    let mut parts = Vec::with_capacity(n);
    for (i, xi) in targets.iter().enumerate() {
        let t = sample_times(&cfg.time, b, rng, device)?;
        let eps = center(&randn(rng, &[b, sizes[i], 3], device)?, &ones_mask(b, sizes[i], device)?)?;
        let x_t = interpolate(&eps, xi, &t)?;
        let x_sc = if model.decoder.self_condition() && rng.random::<f64>() < cfg.self_cond_prob {
            let v0 = model.decoder.forward(&DecoderInput { x_t: &x_t, t: &t, z: &zs[i], x_sc: None, len })?;
            Some(predict_data(&x_t, &v0, &t)?.detach())
        } else {
            None
        };
        let v = model.decoder.forward(&DecoderInput { x_t: &x_t, t: &t, z: &zs[i], x_sc: x_sc.as_ref(), len })?;
        let mut loss_i = (&v - velocity_target(&eps, xi)?)?.sqr()?.mean_all()?;
        if cfg.aux_distance.weight > 0.0
            && let Some(aux) = aux_distance_loss(&predict_data(&x_t, &v, &t)?, xi, &t, &cfg.aux_distance)?
        {
            loss_i = (loss_i + (aux * cfg.aux_distance.weight)?)?;
        }
        parts.push(loss_i.to_scalar::<f32>()?);
        total = (total + loss_i)?;
    }
    Ok(((total / n as f64)?, parts))
}

/// Seed of the fixed validation batches (equal to `seed ^ VAL_SEED` of earlier versions for
/// seed 0, so the recorded curves of seed-0 runs are unchanged).
const VAL_SEED: u64 = 0x0005_eed0_f7a1;

/// What a training run reports per step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepReport {
    /// Step just completed (1-based count of updates).
    pub step: u64,
    /// Training loss of the step.
    pub loss: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Network/optimizer/checkpoint error.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// Candle error.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Flow error.
    #[error(transparent)]
    Flow(#[from] protforge_flow::FlowError),
    /// Invalid model config, or a model error while building a batch's loss.
    #[error(transparent)]
    Config(#[from] crate::ParError),
    /// File error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A training run in `out`: checkpoint in `out/checkpoint`, best EMA weights in
/// `out/best/{config.json, model.safetensors}`, logs in `out/train.csv` and `out/val.csv`.
pub struct Trainer {
    cfg: TrainConfig,
    out: PathBuf,
    model: ParModel,
    params: Params,
    state: TrainState<TrainConfig>,
    device: Device,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.to_path_buf(), source }
}

impl Trainer {
    /// Start a new run, or resume `out/checkpoint` when `resume` is set and it exists.
    ///
    /// # Errors
    /// Invalid config, unreadable checkpoint, or a checkpoint whose config differs.
    pub fn new(cfg: TrainConfig, out: &Path, resume: bool, device: Device) -> Result<Self, TrainError> {
        cfg.model.validate()?;
        cfg.lr.validate()?;
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = ParModel::new(&cfg.model, vb)?;
        init_seeded(&varmap, cfg.seed)?;
        let mut params = Params::new(&varmap, cfg.adamw, cfg.ema_decay)?;
        let state = match params.resume(&TrainCheckpoint::new(out.join("checkpoint")), resume, &cfg)? {
            Some(state) => state,
            None => {
                if let Some(dir) = &cfg.init_from {
                    params.init_from(dir, &device)?;
                }
                TrainState::fresh(cfg.seed, cfg.clone())
            }
        };
        Ok(Self { cfg, out: out.to_path_buf(), model, params, state, device })
    }

    /// Steps completed so far.
    #[must_use]
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// The model being trained.
    #[must_use]
    pub fn model(&self) -> &ParModel {
        &self.model
    }
}

impl Trainee for Trainer {
    type Config = TrainConfig;
    type Data = CaSet;
    type Step = StepReport;
    type Val = f64;
    type Error = TrainError;

    fn settings(&self) -> LoopSettings {
        LoopSettings {
            snapshot_every: self.cfg.snapshot_every,
            ..LoopSettings::new(self.cfg.steps, self.cfg.log_every, self.cfg.val_every, self.cfg.checkpoint_minutes)
        }
    }

    fn out_dir(&self) -> &Path {
        &self.out
    }

    fn state_mut(&mut self) -> &mut TrainState<TrainConfig> {
        &mut self.state
    }

    /// Mean loss over the fixed validation batches, with the EMA weights.
    ///
    /// The batches (crops, rotations, noise, times) depend only on [`VAL_SEED`] and the batch
    /// index, not on the training seed, so runs with different seeds (e.g. a continuation with a
    /// fresh data order) are scored on the same batches and their curves are comparable.
    ///
    /// # Errors
    /// Candle errors.
    fn validate(&mut self, val: &CaSet) -> Result<f64, TrainError> {
        self.params.swap_ema()?;
        let result = (|| -> Result<f64, TrainError> {
            let mut sum = 0.0;
            for j in 0..self.cfg.val_batches {
                let mut rng = step_rng(VAL_SEED, j);
                let x = sample_batch(val, &self.cfg, &mut rng, &self.device)?;
                let (loss, _) = batch_loss(&self.model, &x, &self.cfg, &mut rng)?;
                sum += f64::from(loss.to_scalar::<f32>()?);
            }
            Ok(sum / self.cfg.val_batches.max(1) as f64)
        })();
        self.params.swap_ema()?;
        result
    }

    /// One optimizer step.
    ///
    /// # Errors
    /// Candle/optimizer errors.
    fn train_step(&mut self, train: &CaSet) -> Result<StepReport, TrainError> {
        let step = self.state.step;
        let mut rng = step_rng(self.cfg.seed, step);
        let x = sample_batch(train, &self.cfg, &mut rng, &self.device)?;
        let (loss, _) = batch_loss(&self.model, &x, &self.cfg, &mut rng)?;
        let lr = self.cfg.lr.lr(step);
        let grad_norm = self.params.step(&loss, lr, self.cfg.grad_clip)?;
        self.state.step += 1;
        Ok(StepReport { step: self.state.step, loss: loss.to_scalar::<f32>()?, grad_norm, lr })
    }

    /// Save the checkpoint (atomically).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn save(&self) -> Result<(), TrainError> {
        self.params.save(&TrainCheckpoint::new(self.out.join("checkpoint")), &self.state)?;
        Ok(())
    }

    /// Write the EMA weights with the model config to `dir` (a shippable weights folder).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn export_ema(&self, dir: &Path) -> Result<(), TrainError> {
        self.params.export_ema(dir, &self.cfg.model)?;
        Ok(())
    }
}

impl CsvRow for StepReport {
    fn header() -> &'static str {
        "loss,grad_norm,lr"
    }

    fn row(&self) -> String {
        format!("{:.5},{:.4},{:.3e}", self.loss, self.grad_norm, self.lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy_set(n: usize, seed: u64) -> CaSet {
        let mut rng = protforge_flow::rng::seeded(seed);
        let traces = (0..n)
            .map(|k| {
                let len = 20 + (k % 7);
                let mut p = [0.0f32; 3];
                (0..len)
                    .map(|_| {
                        let d: [f32; 3] = std::array::from_fn(|_| rng.sample::<f32, _>(StandardNormal));
                        let norm = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                        for k in 0..3 {
                            p[k] += 3.8 * d[k] / norm;
                        }
                        p
                    })
                    .collect()
            })
            .collect();
        CaSet { traces, weights: vec![1.0; n] }
    }

    #[test]
    fn batches_are_centred_rotated_and_in_nm() {
        let set = toy_set(10, 1);
        let cfg = TrainConfig::tiny();
        let x = sample_batch(&set, &cfg, &mut step_rng(0, 0), &Device::Cpu).unwrap();
        let (b, l, _) = x.dims3().unwrap();
        assert!((cfg.crop_min..=cfg.crop_max).contains(&l), "crop length {l}");
        assert_eq!(b, (cfg.tokens_per_batch / l).max(1));
        // Crop lengths vary between batches over the whole [crop_min, crop_max] range.
        let lens: std::collections::BTreeSet<usize> =
            (0..200).map(|s| sample_batch(&set, &cfg, &mut step_rng(0, s), &Device::Cpu).unwrap().dim(1).unwrap()).collect();
        assert_eq!(lens.first().copied(), Some(cfg.crop_min));
        assert_eq!(lens.last().copied(), Some(cfg.crop_max));
        let v = x.to_vec3::<f32>().unwrap();
        for chain in &v {
            let mean: f32 = chain.iter().map(|p| p[0]).sum::<f32>() / l as f32;
            assert!(mean.abs() < 1e-5);
            let bond = ((0..3).map(|k| (chain[1][k] - chain[0][k]).powi(2)).sum::<f32>()).sqrt();
            assert!((bond - 0.38).abs() < 1e-4, "CA-CA {bond} nm");
        }
    }

    #[test]
    fn resume_replays_the_same_run() {
        let (train, val) = (toy_set(12, 2), toy_set(4, 3));
        let cfg = TrainConfig::tiny();
        let dir_a = tempfile::tempdir().unwrap();
        let mut a = Trainer::new(cfg.clone(), dir_a.path(), false, Device::Cpu).unwrap();
        let mut losses_a = Vec::new();
        a.run(&train, &val, None, &mut |r, _| losses_a.push(r.loss)).unwrap();

        let dir_b = tempfile::tempdir().unwrap();
        let mut b = Trainer::new(cfg.clone(), dir_b.path(), false, Device::Cpu).unwrap();
        let mut losses_b = Vec::new();
        b.run(&train, &val, Some(3), &mut |r, _| losses_b.push(r.loss)).unwrap();
        b.save().unwrap();
        drop(b);
        let mut b = Trainer::new(cfg.clone(), dir_b.path(), true, Device::Cpu).unwrap();
        assert_eq!(b.step(), 3);
        b.run(&train, &val, None, &mut |r, _| losses_b.push(r.loss)).unwrap();
        assert_eq!(losses_a, losses_b, "resumed run diverged");
        assert!(dir_b.path().join("best/model.safetensors").is_file());
        let dir_c = tempfile::tempdir().unwrap();
        let mut c = Trainer::new(TrainConfig { snapshot_every: Some(2), ..cfg }, dir_c.path(), false, Device::Cpu).unwrap();
        c.run(&train, &val, Some(4), &mut |_, _| {}).unwrap();
        for step in [2, 4] {
            assert!(dir_c.path().join(format!("snapshots/step_{step}/model.safetensors")).is_file());
        }
        assert!(!dir_c.path().join("snapshots/step_3").exists());
        let csv = std::fs::read_to_string(dir_b.path().join("train.csv")).unwrap();
        assert_eq!(csv.lines().count(), 7, "{csv}");
    }

    #[test]
    fn init_from_warm_starts_and_rejects_another_architecture() {
        let (train, val) = (toy_set(12, 2), toy_set(4, 3));
        let src = tempfile::tempdir().unwrap();
        let mut a = Trainer::new(TrainConfig::tiny(), src.path(), false, Device::Cpu).unwrap();
        a.run(&train, &val, Some(2), &mut |_, _| {}).unwrap();
        let weights = src.path().join("export");
        a.export_ema(&weights).unwrap();
        let saved = protforge_nn::Checkpoint::new(&weights).load_tensors(&Device::Cpu).unwrap();

        let cfg = TrainConfig { seed: 99, init_from: Some(weights.clone()), ..TrainConfig::tiny() };
        let dst = tempfile::tempdir().unwrap();
        let mut b = Trainer::new(cfg, dst.path(), false, Device::Cpu).unwrap();
        assert_eq!(b.step(), 0);
        let now = protforge_nn::train::var_tensors(b.params.vars());
        for (name, t) in &saved {
            let diff = (t - &now[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff == 0.0, "{name} not loaded (max |Δ| {diff})");
        }
        // The same weights under another training seed are validated on the same batches.
        let same_seed0 = TrainConfig { init_from: Some(weights.clone()), ..TrainConfig::tiny() };
        let mut b0 = Trainer::new(same_seed0, tempfile::tempdir().unwrap().path(), false, Device::Cpu).unwrap();
        let (v99, v0) = (b.validate(&val).unwrap(), b0.validate(&val).unwrap());
        assert!(v99.is_finite() && v99 == v0, "validation depends on the training seed: {v99} vs {v0}");

        let mut other = TrainConfig { init_from: Some(weights.clone()), ..TrainConfig::tiny() };
        other.model.decoder.dim += 3;
        let dst = tempfile::tempdir().unwrap();
        let err = Trainer::new(other, dst.path(), false, Device::Cpu).err().expect("architecture mismatch must fail");
        assert!(err.to_string().contains("init_from"), "{err}");

        // Growing the model (no neighbour features in the source) is a warm start that
        // computes the same function at step 0: the new input starts at zero.
        let mut small = TrainConfig::tiny();
        small.model.decoder.neighbour_features = false;
        let src2 = tempfile::tempdir().unwrap();
        let mut s = Trainer::new(small, src2.path(), false, Device::Cpu).unwrap();
        s.run(&train, &val, Some(2), &mut |_, _| {}).unwrap();
        s.export_ema(&src2.path().join("export")).unwrap();
        let grown = Trainer::new(
            TrainConfig { init_from: Some(src2.path().join("export")), ..TrainConfig::tiny() },
            tempfile::tempdir().unwrap().path(),
            false,
            Device::Cpu,
        )
        .unwrap();
        let ck = protforge_nn::Checkpoint::new(src2.path().join("export"));
        let old = ParModel::new(
            &ck.load_config().unwrap(),
            candle_nn::VarBuilder::from_tensors(ck.load_tensors(&Device::Cpu).unwrap(), DType::F32, &Device::Cpu),
        )
        .unwrap();
        let mut rng = step_rng(5, 0);
        let x = sample_batch(&val, &TrainConfig::tiny(), &mut rng, &Device::Cpu).unwrap();
        let t = Tensor::full(0.7f32, x.dim(0).unwrap(), &Device::Cpu).unwrap();
        let z = Tensor::ones((x.dim(0).unwrap(), x.dim(1).unwrap(), TrainConfig::tiny().model.ar.dim), DType::F32, &Device::Cpu).unwrap();
        let inp = DecoderInput { x_t: &x, t: &t, z: &z, x_sc: Some(&x), len: x.dim(1).unwrap() };
        let (a, b) = (old.decoder.forward(&inp).unwrap(), grown.model().decoder.forward(&inp).unwrap());
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "grown model differs at step 0 by {diff}");
    }

    #[test]
    fn aux_distance_loss_sees_only_near_pairs_late_in_the_flow() {
        let dev = Device::Cpu;
        // Three points on a line 0.38 nm apart: pairs (0,1), (1,2) are near; (0,2) is 0.76 nm.
        let x1 = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 0.38, 0.0, 0.0, 0.76, 0.0, 0.0], (1, 3, 3), &dev).unwrap();
        let cfg = AuxDistance { weight: 1.0, ..AuxDistance::default() };
        let late = Tensor::new(&[0.9f32], &dev).unwrap();
        let early = Tensor::new(&[0.5f32], &dev).unwrap();
        let same = aux_distance_loss(&x1, &x1, &late, &cfg).unwrap().unwrap().to_scalar::<f32>().unwrap();
        assert!(same < 1e-6, "{same}");
        // Stretch the last point by 0.1 nm: only the (1,2) pair among near pairs changes, by 1 Å.
        let moved = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 0.38, 0.0, 0.0, 0.86, 0.0, 0.0], (1, 3, 3), &dev).unwrap();
        let l = aux_distance_loss(&moved, &x1, &late, &cfg).unwrap().unwrap().to_scalar::<f32>().unwrap();
        // 4 ordered near pairs, two of them (1,2),(2,1) off by 1 Å → mean 0.5 Å².
        assert!((l - 0.5).abs() < 1e-3, "{l}");
        assert!(aux_distance_loss(&moved, &x1, &early, &cfg).unwrap().is_none());
        // The gradient through the smoothed distances is finite.
        let var = candle_core::Var::from_tensor(&moved).unwrap();
        let g = aux_distance_loss(var.as_tensor(), &x1, &late, &cfg).unwrap().unwrap().backward().unwrap();
        let grad = g.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(grad.iter().all(|v| v.is_finite()) && grad.iter().any(|v| v.abs() > 0.0));
    }

    #[test]
    fn loss_decreases_on_a_fixed_batch() {
        let set = toy_set(6, 4);
        let mut cfg = TrainConfig::tiny();
        cfg.lr = LrSchedule::Constant { lr: 3e-3 };
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(cfg.clone(), dir.path(), false, Device::Cpu).unwrap();
        let x = sample_batch(&set, &cfg, &mut step_rng(9, 0), &Device::Cpu).unwrap();
        let eval = |t: &Trainer| -> f32 {
            let mut total = 0.0;
            for k in 0..4 {
                let (l, _) = batch_loss(t.model(), &x, &cfg, &mut step_rng(5, k)).unwrap();
                total += l.to_scalar::<f32>().unwrap();
            }
            total
        };
        let before = eval(&t);
        for _ in 0..30 {
            let (loss, _) = batch_loss(t.model(), &x, &cfg, &mut step_rng(cfg.seed, t.state.step)).unwrap();
            t.params.step(&loss, 3e-3, 1.0).unwrap();
            t.state.step += 1;
        }
        let after = eval(&t);
        assert!(after < 0.8 * before, "loss {before} -> {after}");
    }

    #[test]
    fn sampled_contexts_follow_the_truth_from_late_times_and_change_the_loss() {
        let set = toy_set(6, 4);
        let cfg = TrainConfig::tiny();
        let dir = tempfile::tempdir().unwrap();
        let t = Trainer::new(cfg.clone(), dir.path(), false, Device::Cpu).unwrap();
        let x = sample_batch(&set, &cfg, &mut step_rng(9, 0), &Device::Cpu).unwrap();
        let (_, len, _) = x.dims3().unwrap();
        let sizes = cfg.model.scales.sizes(len);
        assert!(sizes.len() > 2, "{sizes:?}");
        let targets = scale_targets(t.model(), &x).unwrap();
        // RMS distance (nm) of the sampled contexts from the downsampled truth.
        let rms_off = |time: TimeDistribution| -> f32 {
            let c = TrainConfig { time, ..cfg.clone() };
            let ctx = sampled_contexts(t.model(), &targets, &sizes, len, &c, &mut step_rng(3, 0)).unwrap();
            assert_eq!(ctx.len(), sizes.len() - 1);
            let mut total = 0.0;
            for (c, truth) in ctx.iter().zip(&targets) {
                assert_eq!(c.dims(), truth.dims());
                total += (c - truth).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap();
            }
            (total / ctx.len() as f32).sqrt()
        };
        let late = rms_off(TimeDistribution::Beta { a: 400.0, b: 1.0 });
        let any = rms_off(TimeDistribution::Uniform);
        assert!(late < 0.2 * any, "from t0 ≈ 1 the contexts must stay near the truth: {late} vs {any} nm");
        let loss = |p: f64| {
            let mut c = cfg.clone();
            c.exposure.sampled_context = p;
            batch_loss(t.model(), &x, &c, &mut step_rng(7, 0)).unwrap().0.to_scalar::<f32>().unwrap()
        };
        let (off, on) = (loss(0.0), loss(1.0));
        assert!(on.is_finite() && off.is_finite());
        assert_ne!(on, off, "sampled contexts must change the loss");
    }
}
