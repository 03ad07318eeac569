//! Training of the assembly model: batches of native multi-domain crops with linker windows
//! ([`crate::dataset`]), noised with the SE(3) diffusion and scored with [`crate::loss`]; AdamW,
//! gradient clipping, EMA and a resumable checkpoint (the conventions of `protforge-par`).
//!
//! Reproducibility: every random draw of step `k` (chains, crops, linkers, times, noise) comes
//! from [`protforge_nn::train::step_rng`]`(seed, k)`, so a run resumed at step `k` replays the
//! steps an uninterrupted run would take.
//!
//! Run directory: `checkpoint/` (resumable state), `best/` (EMA weights with the lowest
//! validation loss: `config.json` + `model.safetensors`, a shippable weights folder),
//! `train.csv` and `val.csv`.

use crate::WeaverError;
use crate::config::WeaverConfig;
use crate::dataset::{DomainSet, ExampleParams, sample_example};
use crate::domains::DomainParams;
use crate::loss::{LossConfig, TrainBatch, loss_terms, mean_f64, noise_batch};
use crate::model::{WeaverModel, init_rule};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use protforge_flow::Se3Diffuser;
use protforge_flow::rng::seeded;
use protforge_nn::init::init_seeded_with;
use protforge_nn::train::{AdamWConfig, CsvRow, LoopSettings, LrSchedule, Params, TrainCheckpoint, TrainState, Trainee, ValRow, step_rng};
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Training settings (`--config` file) with the model architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Architecture and diffusion.
    pub model: WeaverConfig,
    /// Run seed (initialisation and every step's randomness).
    pub seed: u64,
    /// Optimizer steps in total.
    pub steps: u64,
    /// Chains per batch.
    pub batch_size: usize,
    /// How examples are cut from native chains.
    pub examples: ExampleParams,
    /// Loss weights and training-time range.
    pub loss: LossConfig,
    /// Domain parser settings (used when the domain cache is built).
    pub domains: DomainParams,
    /// Chains with at least this many domains are used.
    pub min_domains: usize,
    /// Learning-rate schedule.
    pub lr: LrSchedule,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    /// EMA decay of the exported weights.
    pub ema_decay: f64,
    /// Validate every this many steps.
    pub val_every: u64,
    /// Validation batches (fixed: same chains, crops, times and noise every time).
    pub val_batches: u64,
    /// Log a training row every this many steps.
    pub log_every: u64,
    /// Save a checkpoint at least this often (minutes of wall time).
    pub checkpoint_minutes: f64,
    /// Warm start from a weights folder (ignored when resuming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

impl TrainConfig {
    /// The CPU recipe: batches of 3 crops of ≤ 256 residues, 12,000 steps. Measured 1.45
    /// CPU-seconds per step on one thread of the 2-core machine (≈ 1.1 s per step on two idle
    /// cores), 1.4 GB RSS.
    #[must_use]
    pub fn cpu_small() -> Self {
        Self {
            model: WeaverConfig::cpu_small(),
            seed: 0,
            steps: 12_000,
            batch_size: 3,
            examples: ExampleParams::default(),
            loss: LossConfig::default(),
            domains: DomainParams::default(),
            min_domains: 2,
            lr: LrSchedule::WarmupCosine { warmup: 500, total: 12_000, peak: 3e-4, floor: 3e-5 },
            adamw: AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() },
            grad_clip: 1.0,
            ema_decay: 0.999,
            val_every: 500,
            val_batches: 16,
            log_every: 10,
            checkpoint_minutes: 5.0,
            init_from: None,
        }
    }

    /// A tiny configuration for tests.
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            model: WeaverConfig::tiny(),
            steps: 6,
            batch_size: 2,
            examples: ExampleParams { crop_max: 48, linker_min: 2, linker_max: 6, ..ExampleParams::default() },
            lr: LrSchedule::WarmupCosine { warmup: 2, total: 6, peak: 1e-3, floor: 1e-4 },
            val_every: 3,
            val_batches: 2,
            log_every: 1,
            ..Self::cpu_small()
        }
    }

    /// Check every setting.
    ///
    /// # Errors
    /// [`WeaverError::BadConfig`] and the validations of the parts.
    pub fn validate(&self) -> Result<(), WeaverError> {
        self.model.validate()?;
        self.examples.validate()?;
        self.loss.validate()?;
        self.lr.validate()?;
        self.adamw.validate()?;
        if self.batch_size == 0 || self.steps == 0 || self.val_batches == 0 || self.val_every == 0 || self.log_every == 0 {
            return Err(WeaverError::BadConfig { what: "training counts", reason: "batch_size, steps, val_every, val_batches and log_every must be positive".into() });
        }
        if self.examples.crop_max > self.model.max_len {
            return Err(WeaverError::BadConfig { what: "crop_max", reason: format!("{} exceeds the model's max_len {}", self.examples.crop_max, self.model.max_len) });
        }
        if self.min_domains < 2 {
            return Err(WeaverError::BadConfig { what: "min_domains", reason: "assembly needs at least 2 domains".into() });
        }
        Ok(())
    }
}

/// Loss terms of a step or a validation pass (batch means).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LossReport {
    /// Weighted total.
    pub total: f64,
    /// Rotation score matching.
    pub rot: f64,
    /// Translation x₀ (nm²).
    pub trans: f64,
    /// Local distance (nm²).
    pub local: f64,
    /// Intra-domain distance (nm²).
    pub intra: f64,
}

/// What a training run reports per step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepReport {
    /// Steps completed.
    pub step: u64,
    /// Training loss terms of the step.
    pub loss: LossReport,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Draw a batch of examples from `set` and noise it: returns the batch, its times and the
/// noised frames. All randomness comes from `rng`.
///
/// # Errors
/// [`WeaverError::NoData`] for an empty set; example, batching and diffusion errors.
pub fn draw_batch<R: Rng>(
    set: &DomainSet,
    cfg: &TrainConfig,
    diffuser: &Se3Diffuser,
    rng: &mut R,
    dev: &Device,
) -> Result<(TrainBatch, Vec<f64>, protforge_flow::se3_diffusion::NoisedBatch), WeaverError> {
    if set.is_empty() {
        return Err(WeaverError::NoData("no multi-domain chains to train on".into()));
    }
    let weights: Vec<f64> = set.chains.iter().map(|c| c.weight.max(1e-12)).collect();
    let dist = WeightedIndex::new(&weights).map_err(|e| WeaverError::NoData(format!("chain weights: {e}")))?;
    let examples = (0..cfg.batch_size).map(|_| sample_example(&set.chains[dist.sample(rng)], &cfg.examples, rng)).collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&crate::dataset::Example> = examples.iter().collect();
    let batch = TrainBatch::from_examples(&refs, &cfg.model, &cfg.loss, dev)?;
    let t: Vec<f64> = (0..cfg.batch_size).map(|_| cfg.loss.sample_t(rng)).collect();
    let mut rngs: Vec<StdRng> = (0..cfg.batch_size).map(|_| seeded(rng.random())).collect();
    let noised = noise_batch(diffuser, &batch, &t, &mut rngs)?;
    Ok((batch, t, noised))
}

/// A training run in `out` (module docs).
pub struct Trainer {
    cfg: TrainConfig,
    out: PathBuf,
    model: WeaverModel,
    diffuser: Se3Diffuser,
    params: Params,
    state: TrainState<TrainConfig>,
    device: Device,
}

impl Trainer {
    /// Start a new run, or resume `out/checkpoint` when `resume` is set and it exists.
    ///
    /// # Errors
    /// Invalid config, unreadable checkpoint, or a checkpoint whose config differs.
    pub fn new(cfg: TrainConfig, out: &Path, resume: bool, device: Device) -> Result<Self, WeaverError> {
        cfg.validate()?;
        std::fs::create_dir_all(out).map_err(WeaverError::io(out))?;
        let varmap = VarMap::new();
        let model = WeaverModel::new(&cfg.model, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
        init_seeded_with(&varmap, cfg.seed, init_rule)?;
        let diffuser = Se3Diffuser::new(cfg.model.diffusion)?;
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
        Ok(Self { cfg, out: out.to_path_buf(), model, diffuser, params, state, device })
    }

    /// Steps completed so far.
    #[must_use]
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// The model being trained.
    #[must_use]
    pub fn model(&self) -> &WeaverModel {
        &self.model
    }

    fn report(terms: &crate::loss::LossTerms) -> Result<LossReport, WeaverError> {
        Ok(LossReport {
            total: mean_f64(&terms.total)?,
            rot: mean_f64(&terms.rot)?,
            trans: mean_f64(&terms.trans)?,
            local: mean_f64(&terms.local)?,
            intra: mean_f64(&terms.intra)?,
        })
    }
}

impl Trainee for Trainer {
    type Config = TrainConfig;
    type Data = DomainSet;
    type Step = StepReport;
    type Val = LossReport;
    type Error = WeaverError;

    fn settings(&self) -> LoopSettings {
        LoopSettings::new(self.cfg.steps, self.cfg.log_every, self.cfg.val_every, self.cfg.checkpoint_minutes)
    }

    fn out_dir(&self) -> &Path {
        &self.out
    }

    fn state_mut(&mut self) -> &mut TrainState<TrainConfig> {
        &mut self.state
    }

    /// Mean losses over the fixed validation batches, with the EMA weights.
    ///
    /// # Errors
    /// Data and candle errors.
    fn validate(&mut self, val: &DomainSet) -> Result<LossReport, WeaverError> {
        self.params.swap_ema()?;
        let result = (|| -> Result<LossReport, WeaverError> {
            let mut sum = LossReport::default();
            for j in 0..self.cfg.val_batches {
                let mut rng = step_rng(self.cfg.seed ^ 0x0005_eed0_f7a1, j);
                let (batch, t, noised) = draw_batch(val, &self.cfg, &self.diffuser, &mut rng, &self.device)?;
                let r = Self::report(&loss_terms(&self.model, &self.diffuser, &batch, &noised, &t, &self.cfg.loss)?)?;
                sum.total += r.total;
                sum.rot += r.rot;
                sum.trans += r.trans;
                sum.local += r.local;
                sum.intra += r.intra;
            }
            let n = self.cfg.val_batches as f64;
            Ok(LossReport { total: sum.total / n, rot: sum.rot / n, trans: sum.trans / n, local: sum.local / n, intra: sum.intra / n })
        })();
        self.params.swap_ema()?;
        result
    }

    /// One optimizer step.
    ///
    /// # Errors
    /// Data, candle and optimizer errors.
    fn train_step(&mut self, train: &DomainSet) -> Result<StepReport, WeaverError> {
        let step = self.state.step;
        let mut rng = step_rng(self.cfg.seed, step);
        let (batch, t, noised) = draw_batch(train, &self.cfg, &self.diffuser, &mut rng, &self.device)?;
        let terms = loss_terms(&self.model, &self.diffuser, &batch, &noised, &t, &self.cfg.loss)?;
        let loss = terms.total.mean_all()?;
        let lr = self.cfg.lr.lr(step);
        let grad_norm = self.params.step(&loss, lr, self.cfg.grad_clip)?;
        self.state.step += 1;
        Ok(StepReport { step: self.state.step, loss: Self::report(&terms)?, grad_norm, lr })
    }

    /// Save the checkpoint (atomically).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn save(&self) -> Result<(), WeaverError> {
        self.params.save(&TrainCheckpoint::new(self.out.join("checkpoint")), &self.state)?;
        Ok(())
    }

    /// Write the EMA weights with the model config to `dir` (a shippable weights folder).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn export_ema(&self, dir: &Path) -> Result<(), WeaverError> {
        self.params.export_ema(dir, &self.cfg.model)?;
        Ok(())
    }
}

impl LossReport {
    fn columns(&self) -> String {
        format!("{:.5},{:.5},{:.5},{:.5},{:.5}", self.total, self.rot, self.trans, self.local, self.intra)
    }
}

impl CsvRow for StepReport {
    fn header() -> &'static str {
        "loss,rot,trans,local,intra,grad_norm,lr"
    }

    fn row(&self) -> String {
        format!("{},{:.4},{:.3e}", self.loss.columns(), self.grad_norm, self.lr)
    }
}

impl CsvRow for LossReport {
    fn header() -> &'static str {
        "val_loss,rot,trans,local,intra"
    }

    fn row(&self) -> String {
        self.columns()
    }
}

impl ValRow for LossReport {
    fn selection_loss(&self) -> f64 {
        self.total
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dataset::DomainChain;
    use protforge_se3::Rigid;

    /// Toy multi-domain chains: two helical "domains" side by side joined by a short loop.
    pub(crate) fn toy_set(n: usize, seed: u64) -> DomainSet {
        let mut rng = seeded(seed);
        let chains = (0..n)
            .map(|k| {
                let (la, lb) = (14 + k % 5, 12 + k % 4);
                let phase: f64 = rng.random_range(0.0..6.0);
                let mut ca = crate::model::tests::helix(la, phase);
                let offset = protforge_se3::Vec3::new(10.0, 0.0, 0.0);
                ca.extend(crate::model::tests::helix(lb, phase + 1.0).into_iter().rev().map(|p| p + offset));
                let frames = (0..ca.len())
                    .map(|i| {
                        let prev = ca[i.saturating_sub(1)];
                        let next = ca[(i + 1).min(ca.len() - 1)];
                        Rigid::from_three_points(prev + protforge_se3::Vec3::new(0.0, 0.0, 0.3), ca[i], next).unwrap_or_else(|_| Rigid::from_translation(ca[i]))
                    })
                    .collect();
                let labels = (0..la + lb).map(|i| usize::from(i >= la)).collect();
                DomainChain { id: format!("toy{k}"), frames, labels, weight: 1.0 }
            })
            .collect();
        DomainSet { chains }
    }

    #[test]
    fn resume_replays_the_same_run() {
        let (train, val) = (toy_set(6, 1), toy_set(3, 2));
        let cfg = TrainConfig::tiny();
        let dir_a = tempfile::tempdir().unwrap();
        let mut a = Trainer::new(cfg.clone(), dir_a.path(), false, Device::Cpu).unwrap();
        let mut losses_a = Vec::new();
        a.run(&train, &val, None, &mut |r, _| losses_a.push(r.loss.total)).unwrap();
        assert!(losses_a.iter().all(|l| l.is_finite()));

        let dir_b = tempfile::tempdir().unwrap();
        let mut b = Trainer::new(cfg.clone(), dir_b.path(), false, Device::Cpu).unwrap();
        let mut losses_b = Vec::new();
        b.run(&train, &val, Some(3), &mut |r, _| losses_b.push(r.loss.total)).unwrap();
        drop(b);
        let mut b = Trainer::new(cfg.clone(), dir_b.path(), true, Device::Cpu).unwrap();
        assert_eq!(b.step(), 3);
        b.run(&train, &val, None, &mut |r, _| losses_b.push(r.loss.total)).unwrap();
        assert_eq!(losses_a, losses_b, "resumed run diverged");
        assert!(dir_b.path().join("best/model.safetensors").is_file());
        assert!(dir_b.path().join("best/config.json").is_file());
        let csv = std::fs::read_to_string(dir_b.path().join("train.csv")).unwrap();
        assert_eq!(csv.lines().count(), 7, "{csv}");
        // A different configuration refuses to resume.
        let other = TrainConfig { seed: 5, ..cfg };
        assert!(matches!(Trainer::new(other, dir_b.path(), true, Device::Cpu), Err(WeaverError::Nn(protforge_nn::NnError::ConfigChanged { .. }))));
    }

    #[test]
    fn loss_decreases_on_a_fixed_batch() {
        let set = toy_set(4, 3);
        let mut cfg = TrainConfig::tiny();
        cfg.lr = LrSchedule::Constant { lr: 3e-3 };
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(cfg.clone(), dir.path(), false, Device::Cpu).unwrap();
        let eval = |t: &Trainer| -> f64 {
            (0..4)
                .map(|k| {
                    let (batch, tt, noised) = draw_batch(&set, &cfg, &t.diffuser, &mut step_rng(9, k), &Device::Cpu).unwrap();
                    mean_f64(&loss_terms(&t.model, &t.diffuser, &batch, &noised, &tt, &cfg.loss).unwrap().total).unwrap()
                })
                .sum()
        };
        let before = eval(&t);
        for k in 0..40 {
            let (batch, tt, noised) = draw_batch(&set, &cfg, &t.diffuser, &mut step_rng(9, k % 4), &Device::Cpu).unwrap();
            let loss = loss_terms(&t.model, &t.diffuser, &batch, &noised, &tt, &cfg.loss).unwrap().total.mean_all().unwrap();
            t.params.step(&loss, 3e-3, 1.0).unwrap();
        }
        let after = eval(&t);
        assert!(after < 0.8 * before, "loss {before} -> {after}");
    }
}
