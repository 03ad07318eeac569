//! Tokenizer training: random crops of dataset chains in random poses, the DPLM-2 loss
//! (FAPE + distogram + LFQ commitment and entropy), AdamW with warm-up and cosine decay,
//! gradient clipping, EMA weights, and checkpoints with exact resume (the conventions of
//! `protforge_par::train`).
//!
//! Reproducibility: every random draw of step `k` comes from
//! [`protforge_nn::train::step_rng`]`(seed, k)`, so a run resumed from a checkpoint at step `k`
//! replays exactly the steps an uninterrupted run would take.

use crate::TokenizerError;
use crate::config::TokenizerConfig;
use crate::features::{ChainAtoms, encoder_input, targets};
use crate::loss::LossWeights;
use crate::model::{Tokenizer, init_rule};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use protforge_data::{Dataset, Split};
use protforge_nn::init::init_seeded_with;
use protforge_nn::train::{
    AdamWConfig, CsvRow, LoopSettings, LrSchedule, Params, TrainCheckpoint, TrainState, Trainee, ValRow, step_rng,
};
use protforge_se3::{Rotation, Vec3, kabsch};
use protforge_structure::Backbone;
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Salt of the validation batches' generator (fixed crops and poses at every validation).
const VAL_SALT: u64 = 0x7045_4b31_5a11;

/// Training settings (`--config` file), with the model architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Architecture (written as `config.json` beside the weights).
    pub model: TokenizerConfig,
    /// Run seed (initialisation and every step's randomness).
    pub seed: u64,
    /// Optimizer steps in total.
    pub steps: u64,
    /// Residues per batch: a batch of crops of length `L` holds `max(1, tokens / L)` chains.
    pub tokens_per_batch: usize,
    /// Longest crop (residues).
    pub crop_max: usize,
    /// Chains shorter than this are not used.
    pub crop_min: usize,
    /// Learning-rate schedule.
    pub lr: LrSchedule,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    /// EMA decay of the exported weights.
    pub ema_decay: f64,
    /// Loss weights and FAPE settings.
    pub loss: LossWeights,
    /// Validate every this many steps.
    pub val_every: u64,
    /// Validation batches (fixed: the same crops and poses every time).
    pub val_batches: u64,
    /// Log a training row every this many steps.
    pub log_every: u64,
    /// Save a checkpoint at least this often (minutes of wall time).
    pub checkpoint_minutes: f64,
}

impl TrainConfig {
    /// The CPU recipe (2 cores): DPLM-2's optimizer settings (AdamW, lr 5e-4, β = (0.9, 0.98),
    /// weight decay 0.01, clip 1.0) with warm-up and cosine decay; 384 residues per batch in
    /// crops of up to 256 (one 256-residue crop, or e.g. three of 128), so the rotary
    /// post-quantizer sees sequence separations up to 255. The cost of a step grows with
    /// `batch · length²` (pair tensors), which this keeps near `65 536`.
    #[must_use]
    pub fn cpu() -> Self {
        let steps = 40_000;
        Self {
            model: TokenizerConfig::cpu(),
            seed: 0,
            steps,
            tokens_per_batch: 384,
            crop_max: 256,
            crop_min: 40,
            lr: LrSchedule::WarmupCosine { warmup: 1_000, total: steps, peak: 5e-4, floor: 1e-5 },
            adamw: AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: 0.01 },
            grad_clip: 1.0,
            ema_decay: 0.999,
            loss: LossWeights::default(),
            val_every: 1_000,
            val_batches: 16,
            log_every: 10,
            checkpoint_minutes: 5.0,
        }
    }

    /// A tiny configuration for tests.
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            model: TokenizerConfig::tiny(),
            steps: 6,
            tokens_per_batch: 40,
            crop_max: 20,
            crop_min: 10,
            lr: LrSchedule::WarmupCosine { warmup: 2, total: 6, peak: 1e-3, floor: 1e-4 },
            val_every: 3,
            val_batches: 2,
            log_every: 1,
            ..Self::cpu()
        }
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`TokenizerError::BadConfig`] naming the field.
    pub fn validate(&self) -> Result<(), TokenizerError> {
        self.model.validate()?;
        self.lr.validate()?;
        self.adamw.validate()?;
        let bad = |m: String| Err(TokenizerError::BadConfig(m));
        if self.crop_max == 0 || self.crop_min > self.crop_max || self.tokens_per_batch == 0 {
            return bad(format!(
                "need 0 < crop_min ({}) <= crop_max ({}) and tokens_per_batch > 0",
                self.crop_min, self.crop_max
            ));
        }
        if self.val_every == 0 || self.log_every == 0 {
            return bad("val_every and log_every must be positive".to_string());
        }
        if self.grad_clip.is_nan() || self.grad_clip <= 0.0 {
            return bad(format!("grad_clip {} must be positive", self.grad_clip));
        }
        let u = self.loss.fape_unclamped_fraction;
        if !(0.0..=1.0).contains(&u) {
            return bad(format!("loss.fape_unclamped_fraction {u} must be in [0, 1]"));
        }
        Ok(())
    }
}

/// Chains of one split with sampling weights.
#[derive(Debug, Clone)]
pub struct ChainSet {
    /// Single-chain backbones (Å).
    pub chains: Vec<Backbone>,
    /// Sampling weight of each chain (1 / cluster size).
    pub weights: Vec<f64>,
}

impl ChainSet {
    /// The chains of `split` with at least `min_len` residues, weighted by inverse cluster size.
    #[must_use]
    pub fn from_dataset(ds: &Dataset, split: Split, min_len: usize) -> Self {
        let w = ds.cluster_weights(Some(split));
        let (chains, weights) = ds
            .split_indices(split)
            .into_iter()
            .filter_map(|i| ds.chain(i).filter(|c| c.len() >= min_len).map(|c| (c, w[i])))
            .unzip();
        Self { chains, weights }
    }
}

/// A uniformly random rotation (normalised Gaussian quaternion).
fn random_rotation<R: Rng + ?Sized>(rng: &mut R) -> Rotation {
    let q: [f64; 4] = std::array::from_fn(|_| rng.sample(StandardNormal));
    Rotation::from_quaternion(q).unwrap_or_else(|_| Rotation::identity())
}

/// Draw a batch: crops of one length `L` (from a cluster-weighted first chain, capped at
/// `crop_max`) of `max(1, tokens_per_batch / L)` chains, each centred and in a random pose.
///
/// # Errors
/// [`TokenizerError::BadInput`] for an empty set or invalid weights.
pub fn sample_batch<R: Rng + ?Sized>(set: &ChainSet, cfg: &TrainConfig, rng: &mut R) -> Result<Vec<Backbone>, TokenizerError> {
    let dist = WeightedIndex::new(&set.weights).map_err(|e| TokenizerError::BadInput(format!("sampling weights: {e}")))?;
    let first = dist.sample(rng);
    let len = set.chains[first].len().min(cfg.crop_max).max(1);
    let b = (cfg.tokens_per_batch / len).max(1);
    let mut chosen = vec![first];
    let mut tries = 0;
    while chosen.len() < b && tries < 50 * b {
        tries += 1;
        let i = dist.sample(rng);
        if set.chains[i].len() >= len {
            chosen.push(i);
        }
    }
    Ok(chosen
        .into_iter()
        .map(|i| {
            let chain = &set.chains[i];
            let start = rng.random_range(0..=chain.len() - len);
            let mut crop = chain.slice(start, start + len);
            let rot = random_rotation(rng);
            let shift = Vec3::new(rng.sample(StandardNormal), rng.sample(StandardNormal), rng.sample(StandardNormal)) * 10.0;
            let present: Vec<Vec3> = crop
                .coords
                .iter()
                .zip(&crop.atom_mask)
                .flat_map(|(r, m)| r.iter().zip(m).filter(|(_, k)| **k).map(|(p, _)| to_vec3(*p)))
                .collect();
            let centre = present.iter().sum::<Vec3>() / present.len().max(1) as f64;
            for r in &mut crop.coords {
                for p in r.iter_mut() {
                    let q = rot.apply(to_vec3(*p) - centre) + shift;
                    *p = [q.x as f32, q.y as f32, q.z as f32];
                }
            }
            crop
        })
        .collect())
}

fn to_vec3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

/// What a training run reports per step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepReport {
    /// Step just completed (1-based count of updates).
    pub step: u64,
    /// Total training loss.
    pub loss: f32,
    /// Backbone FAPE (units of 10 Å by default).
    pub fape: f32,
    /// Distogram cross-entropy.
    pub distogram: f32,
    /// LFQ commitment loss.
    pub commitment: f32,
    /// LFQ entropy loss (per-sample minus codebook entropy).
    pub entropy: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Validation results (EMA weights, fixed batches).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ValReport {
    /// Mean reconstruction loss `w_fape·FAPE_clamped + w_dist·distogram` (selects `best/`);
    /// the unclamped FAPE mixed into the training loss is left out, so the figure stays
    /// comparable across values of [`LossWeights::fape_unclamped_fraction`].
    pub loss: f64,
    /// Mean FAPE.
    pub fape: f64,
    /// Mean distogram cross-entropy.
    pub distogram: f64,
    /// Mean CA RMSD (Å) of the decoded crops after superposition.
    pub ca_rmsd: f64,
    /// Fraction of the codebook used by the validation residues.
    pub code_usage: f64,
    /// Perplexity `exp(H)` of the validation code distribution.
    pub perplexity: f64,
}

/// A training run in `out`: checkpoint in `out/checkpoint`, best EMA weights in
/// `out/best/{config.json, model.safetensors}`, logs in `out/train.csv` and `out/val.csv`.
pub struct Trainer {
    cfg: TrainConfig,
    out: PathBuf,
    model: Tokenizer,
    params: Params,
    state: TrainState<TrainConfig>,
    device: Device,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TokenizerError + '_ {
    move |source| TokenizerError::Io { path: path.to_path_buf(), source }
}

impl Trainer {
    /// Start a new run, or resume `out/checkpoint` when `resume` is set and it exists.
    ///
    /// # Errors
    /// Invalid config, unreadable checkpoint, or a checkpoint whose config differs.
    pub fn new(cfg: TrainConfig, out: &Path, resume: bool, device: Device) -> Result<Self, TokenizerError> {
        cfg.validate()?;
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = Tokenizer::new(&cfg.model, vb)?;
        init_seeded_with(&varmap, cfg.seed, init_rule)?;
        let mut params = Params::new(&varmap, cfg.adamw, cfg.ema_decay)?;
        let state = params.resume(&TrainCheckpoint::new(out.join("checkpoint")), resume, &cfg)?.unwrap_or_else(|| TrainState::fresh(cfg.seed, cfg.clone()));
        Ok(Self { cfg, out: out.to_path_buf(), model, params, state, device })
    }

    /// Steps completed so far.
    #[must_use]
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// The model being trained.
    #[must_use]
    pub fn model(&self) -> &Tokenizer {
        &self.model
    }

    fn validate_current(&self, val: &ChainSet) -> Result<ValReport, TokenizerError> {
        let n_codes = self.cfg.model.n_codes();
        let mut counts = vec![0u64; n_codes];
        let (mut loss, mut fape, mut dist, mut rmsd_sum, mut n_rmsd) = (0.0, 0.0, 0.0, 0.0, 0usize);
        for j in 0..self.cfg.val_batches {
            let mut rng = step_rng(self.cfg.seed ^ VAL_SALT, j);
            let chains = sample_batch(val, &self.cfg, &mut rng)?;
            let atoms: Vec<ChainAtoms> = chains.iter().map(ChainAtoms::from_backbone).collect();
            let x = encoder_input(&atoms, &self.cfg.model, &self.device)?;
            let t = targets(&atoms, &self.cfg.model, &self.device)?;
            let (parts, dec, q) = self.model.loss(&x, &t, &self.cfg.loss)?;
            // Selection metric on the clamped FAPE only, so that it does not move when
            // `fape_unclamped_fraction` changes between runs or on resume.
            loss += self.cfg.loss.fape * f64::from(parts.fape) + self.cfg.loss.distogram * f64::from(parts.distogram);
            fape += f64::from(parts.fape);
            dist += f64::from(parts.distogram);
            let ids = q.indices.to_vec2::<u32>()?;
            let pred = dec.final_frames()?.trans.to_vec3::<f32>()?;
            for (k, c) in atoms.iter().enumerate() {
                let valid: Vec<usize> = (0..c.len()).filter(|&i| c.valid[i]).collect();
                for &i in &valid {
                    counts[ids[k][i] as usize] += 1;
                }
                let p: Vec<Vec3> = valid.iter().map(|&i| { let v = &pred[k][i]; Vec3::new(f64::from(v[0]), f64::from(v[1]), f64::from(v[2])) }).collect();
                let truth: Vec<Vec3> = valid.iter().map(|&i| c.atoms[i][1]).collect();
                if let Ok(sup) = kabsch::superpose(&p, &truth) {
                    rmsd_sum += sup.rmsd;
                    n_rmsd += 1;
                }
            }
        }
        let nb = self.cfg.val_batches.max(1) as f64;
        let total: u64 = counts.iter().sum();
        let entropy: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total as f64;
                -p * p.ln()
            })
            .sum();
        Ok(ValReport {
            loss: loss / nb,
            fape: fape / nb,
            distogram: dist / nb,
            ca_rmsd: rmsd_sum / n_rmsd.max(1) as f64,
            code_usage: counts.iter().filter(|&&c| c > 0).count() as f64 / n_codes as f64,
            perplexity: entropy.exp(),
        })
    }
}

impl Trainee for Trainer {
    type Config = TrainConfig;
    type Data = ChainSet;
    type Step = StepReport;
    type Val = ValReport;
    type Error = TokenizerError;

    fn settings(&self) -> LoopSettings {
        LoopSettings::new(self.cfg.steps, self.cfg.log_every, self.cfg.val_every, self.cfg.checkpoint_minutes)
    }

    fn out_dir(&self) -> &Path {
        &self.out
    }

    fn state_mut(&mut self) -> &mut TrainState<TrainConfig> {
        &mut self.state
    }

    /// Validation metrics over the fixed validation batches, with the EMA weights.
    ///
    /// # Errors
    /// Candle errors.
    fn validate(&mut self, val: &ChainSet) -> Result<ValReport, TokenizerError> {
        self.params.swap_ema()?;
        let result = self.validate_current(val);
        self.params.swap_ema()?;
        result
    }

    /// One optimizer step.
    ///
    /// # Errors
    /// Candle/optimizer errors.
    fn train_step(&mut self, train: &ChainSet) -> Result<StepReport, TokenizerError> {
        let step = self.state.step;
        let mut rng = step_rng(self.cfg.seed, step);
        let chains = sample_batch(train, &self.cfg, &mut rng)?;
        let atoms: Vec<ChainAtoms> = chains.iter().map(ChainAtoms::from_backbone).collect();
        let x = encoder_input(&atoms, &self.cfg.model, &self.device)?;
        let t = targets(&atoms, &self.cfg.model, &self.device)?;
        let (parts, _, _) = self.model.loss(&x, &t, &self.cfg.loss)?;
        let lr = self.cfg.lr.lr(step);
        let grad_norm = self.params.step(&parts.total, lr, self.cfg.grad_clip)?;
        self.state.step += 1;
        Ok(StepReport {
            step: self.state.step,
            loss: parts.total.to_scalar::<f32>()?,
            fape: parts.fape,
            distogram: parts.distogram,
            commitment: parts.commitment,
            entropy: parts.entropy,
            grad_norm,
            lr,
        })
    }

    /// Save the checkpoint (atomically).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn save(&self) -> Result<(), TokenizerError> {
        self.params.save(&TrainCheckpoint::new(self.out.join("checkpoint")), &self.state)?;
        Ok(())
    }

    /// Write the EMA weights with the model config to `dir` (a shippable weights folder).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    fn export_ema(&self, dir: &Path) -> Result<(), TokenizerError> {
        self.params.export_ema(dir, &self.cfg.model)?;
        Ok(())
    }
}

impl CsvRow for StepReport {
    fn header() -> &'static str {
        "loss,fape,distogram,commitment,entropy,grad_norm,lr"
    }

    fn row(&self) -> String {
        format!(
            "{:.5},{:.5},{:.5},{:.5},{:.5},{:.4},{:.3e}",
            self.loss, self.fape, self.distogram, self.commitment, self.entropy, self.grad_norm, self.lr
        )
    }
}

impl CsvRow for ValReport {
    fn header() -> &'static str {
        "val_loss,fape,distogram,ca_rmsd,code_usage,perplexity"
    }

    fn row(&self) -> String {
        format!("{:.5},{:.5},{:.5},{:.3},{:.4},{:.1}", self.loss, self.fape, self.distogram, self.ca_rmsd, self.code_usage, self.perplexity)
    }
}

impl ValRow for ValReport {
    fn selection_loss(&self) -> f64 {
        self.loss
    }
}
