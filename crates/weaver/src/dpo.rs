//! Preference alignment of the assembly model with Diffusion-DPO (Wallace et al. 2023, "Diffusion
//! Model Alignment Using Direct Preference Optimization", arXiv 2311.12908, eq. 14).
//! ProteinWeaver's alignment is reported as SPPO over ranked samples (MODELS.md §4); we use the
//! closely related pairwise Diffusion-DPO objective.
//!
//! **Preference data.** For each training input (a native multi-domain crop with linker windows,
//! [`crate::dataset::sample_example`]) the frozen base model samples `K` assemblies
//! ([`crate::sampler`]); each is scored with [`crate::score::score_assembly`]; the best and the
//! worst form a (winner, loser) pair if their totals differ by at least `min_gap`.
//!
//! **Objective.** With `ℓ_θ(x₀, t, ε)` the per-sample denoising loss (the likelihood surrogate
//! of [`crate::loss`]: weighted rotation score matching plus translation x₀ error, an ELBO
//! term up to constants) and the frozen reference (base) model `ℓ_ref`, for one pair noised at
//! a shared time `t` with a shared noise draw (the winner and the loser get the same `ε`, as in
//! the Diffusion-DPO reference training script):
//!
//! ```text
//! Δ_w = ℓ_θ(x_w) − ℓ_ref(x_w)        Δ_l = ℓ_θ(x_l) − ℓ_ref(x_l)
//! L_DPO = −log σ(−β (Δ_w − Δ_l)) = softplus(β (Δ_w − Δ_l))
//! ```
//!
//! (eq. 14 with the constant `T ω(λ_t)` folded into β). The reference terms are the
//! KL-regularisation of DPO: the policy is rewarded only for denoising winners better *than the
//! base model does*, relative to losers. At `θ = ref` the loss is `log 2`; it falls below `log 2`
//! exactly when the policy prefers the winner more than the reference does. An optional
//! supervised term `sft_weight · ℓ_θ(x_w)` keeps the winners likely.

use crate::WeaverError;
use crate::config::WeaverConfig;
use crate::dataset::{DomainSet, ExampleParams, sample_example};
use crate::frames::{ca_of, centred};
use crate::loss::{LossConfig, TrainBatch, loss_terms, mean_f64, noise_batch};
use crate::model::WeaverModel;
use crate::sampler::{AssemblyInput, SampleOptions, Sampler};
use crate::score::{ScoreBreakdown, ScoreConfig, score_assembly};
use crate::splice::spliced_distance_map;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use protforge_flow::Se3Diffuser;
use protforge_flow::rng::seeded;
use protforge_nn::init::named_vars;
use protforge_nn::ipa::softplus;
use protforge_nn::train::{AdamWConfig, CsvRow, LoopSettings, LrSchedule, Params, TrainCheckpoint, TrainState, Trainee, ValRow, set_vars, step_rng};
use protforge_se3::Rigid;
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The Diffusion-DPO loss per pair (module docs): `[P]` surrogate losses of the policy and the
/// reference on winners and losers → `[P]` losses `softplus(β ((ℓ_θ,w − ℓ_ref,w) − (ℓ_θ,l − ℓ_ref,l)))`.
///
/// # Errors
/// Candle shape errors.
pub fn dpo_loss(policy_w: &Tensor, policy_l: &Tensor, ref_w: &Tensor, ref_l: &Tensor, beta: f64) -> Result<Tensor, WeaverError> {
    let z = dpo_margin(policy_w, policy_l, ref_w, ref_l, beta)?;
    Ok(softplus(&z)?)
}

/// `β ((ℓ_θ,w − ℓ_ref,w) − (ℓ_θ,l − ℓ_ref,l))`: negative when the policy prefers the winner more
/// than the reference does (the implicit reward margin, negated).
///
/// # Errors
/// Candle shape errors.
pub fn dpo_margin(policy_w: &Tensor, policy_l: &Tensor, ref_w: &Tensor, ref_l: &Tensor, beta: f64) -> Result<Tensor, WeaverError> {
    let dw = (policy_w - ref_w.detach())?;
    let dl = (policy_l - ref_l.detach())?;
    Ok(((dw - dl)? * beta)?)
}

/// One preference pair: the input (native crop frames and its layout) and two assemblies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreferencePair {
    /// Source chain id and crop `start..end`.
    pub source: (String, usize, usize),
    /// Domain of each residue (`None` = linker).
    pub domain_of: Vec<Option<usize>>,
    /// Native frames of the input, `[qw, qx, qy, qz, x, y, z]` (Å), defining the spliced map.
    pub input: Vec<[f64; 7]>,
    /// The preferred assembly (frames as `input`).
    pub winner: Vec<[f64; 7]>,
    /// The other assembly.
    pub loser: Vec<[f64; 7]>,
    /// Score of the winner.
    pub score_winner: ScoreBreakdown,
    /// Score of the loser.
    pub score_loser: ScoreBreakdown,
}

fn to7(f: &[Rigid]) -> Vec<[f64; 7]> {
    f.iter().map(Rigid::to_tensor7).collect()
}

fn from7(v: &[[f64; 7]]) -> Result<Vec<Rigid>, WeaverError> {
    Ok(v.iter().map(Rigid::from_tensor7).collect::<Result<Vec<_>, _>>()?)
}

impl PreferencePair {
    /// Frames of the input, winner and loser (Å, centred) and the spliced map of the input.
    ///
    /// # Errors
    /// Malformed frames or layout.
    pub fn decode(&self) -> Result<(crate::splice::SplicedMap, Vec<Rigid>, Vec<Rigid>), WeaverError> {
        let input = from7(&self.input)?;
        let map = spliced_distance_map(&ca_of(&input), &self.domain_of)?;
        let (w, l) = (centred(&from7(&self.winner)?), centred(&from7(&self.loser)?));
        if w.len() != map.len || l.len() != map.len {
            return Err(WeaverError::BadLayout(format!("pair from {}: {} / {} frames for {} residues", self.source.0, w.len(), l.len(), map.len)));
        }
        Ok((map, w, l))
    }
}

/// How preference pairs are generated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    /// Training inputs (each gives at most one pair).
    pub num_inputs: usize,
    /// Held-out (validation-split) inputs for the validation pairs.
    pub num_val_inputs: usize,
    /// Assemblies sampled per input (K ≥ 2).
    pub k_samples: usize,
    /// Inputs are cut like training examples, with this crop length and linker range.
    pub examples: ExampleParams,
    /// Smallest score difference between winner and loser.
    pub min_gap: f64,
    /// Sampler settings of the base model.
    pub sample: SampleOptions,
}

/// Preference-alignment settings (`--config` of `protforge train weaver-dpo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoConfig {
    /// Weights folder of the base (reference) model.
    pub base: PathBuf,
    /// Run seed.
    pub seed: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Preference pairs.
    pub pairs: PairConfig,
    /// The preference score.
    pub score: ScoreConfig,
    /// DPO temperature β (on per-sample losses of order 1; Wallace et al. use β = 2000–5000
    /// on sums over a latent image with `T ω(λ_t)` ≈ 1000 folded in).
    pub beta: f64,
    /// Weight of the supervised term on winners.
    pub sft_weight: f64,
    /// Pairs per batch.
    pub batch_pairs: usize,
    /// Surrogate weights (`rot_weight`, `trans_weight`) and time range (`t_min`).
    pub loss: LossConfig,
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
    /// Noise draws per validation pair.
    pub val_draws: u64,
    /// Log a row every this many steps.
    pub log_every: u64,
    /// Save a checkpoint at least this often (minutes).
    pub checkpoint_minutes: f64,
}

impl DpoConfig {
    /// The CPU recipe: 256 inputs × 4 samples of crops ≤ 160 residues with 50 sampling steps,
    /// then 2,000 DPO steps of 4 pairs.
    #[must_use]
    pub fn cpu() -> Self {
        Self {
            base: PathBuf::from("runs/weaver/best"),
            seed: 0,
            steps: 2000,
            pairs: PairConfig {
                num_inputs: 256,
                num_val_inputs: 32,
                k_samples: 4,
                examples: ExampleParams { crop_max: 160, linker_min: 6, linker_max: 16, ..ExampleParams::default() },
                min_gap: 0.05,
                sample: SampleOptions { num_steps: Some(50), ..SampleOptions::default() },
            },
            score: ScoreConfig::default(),
            beta: 20.0,
            sft_weight: 0.0,
            batch_pairs: 4,
            loss: LossConfig::default(),
            lr: LrSchedule::WarmupCosine { warmup: 100, total: 2000, peak: 5e-5, floor: 5e-6 },
            adamw: AdamWConfig::default(),
            grad_clip: 1.0,
            ema_decay: 0.99,
            val_every: 200,
            val_draws: 4,
            log_every: 10,
            checkpoint_minutes: 5.0,
        }
    }

    /// A tiny configuration for tests.
    #[must_use]
    pub fn tiny(base: PathBuf) -> Self {
        Self {
            base,
            steps: 4,
            pairs: PairConfig {
                num_inputs: 3,
                num_val_inputs: 2,
                k_samples: 2,
                examples: ExampleParams { crop_max: 40, linker_min: 2, linker_max: 4, ..ExampleParams::default() },
                min_gap: 0.0,
                sample: SampleOptions { num_steps: Some(2), ..SampleOptions::default() },
            },
            batch_pairs: 2,
            lr: LrSchedule::Constant { lr: 1e-3 },
            val_every: 2,
            val_draws: 1,
            log_every: 1,
            ..Self::cpu()
        }
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`WeaverError::BadConfig`].
    pub fn validate(&self) -> Result<(), WeaverError> {
        self.lr.validate()?;
        self.adamw.validate()?;
        self.loss.validate()?;
        self.pairs.examples.validate()?;
        let bad = |what: &'static str, reason: &str| Err(WeaverError::BadConfig { what, reason: reason.into() });
        if self.pairs.k_samples < 2 {
            return bad("k_samples", "need at least 2 samples per input to form a pair");
        }
        if self.pairs.num_inputs == 0 || self.pairs.num_val_inputs == 0 || self.batch_pairs == 0 || self.steps == 0 || self.val_every == 0 || self.log_every == 0 || self.val_draws == 0 {
            return bad("counts", "num_inputs, num_val_inputs, batch_pairs, steps, val_every, val_draws and log_every must be positive");
        }
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return bad("beta", "must be a positive number");
        }
        if !(self.sft_weight.is_finite() && self.sft_weight >= 0.0) {
            return bad("sft_weight", "must be non-negative");
        }
        Ok(())
    }
}

/// Score every sample of an input; returns the breakdowns in sample order.
///
/// # Errors
/// As [`score_assembly`].
pub fn score_samples(samples: &[Vec<Rigid>], domain_of: &[Option<usize>], cfg: &ScoreConfig) -> Result<Vec<ScoreBreakdown>, WeaverError> {
    samples.iter().map(|f| score_assembly(&ca_of(f), domain_of, cfg)).collect()
}

/// Where and how many preference pairs [`generate_pairs`] makes.
#[derive(Debug, Clone)]
pub struct PairJob {
    /// Inputs `0..n_inputs`.
    pub n_inputs: usize,
    /// Input `i` draws everything from `step_rng(seed ^ salt, i)`.
    pub salt: u64,
    /// The JSON-lines file (appended to).
    pub path: PathBuf,
}

/// Generate preference pairs with the base `model` for the inputs of `job` not yet in its file,
/// appending one JSON line per input (`{"index": i, "pair": {…} | null}`), so an interrupted
/// run continues where it stopped. `on_input` sees `(i, pair made?)`.
///
/// # Errors
/// Sampling, scoring and I/O errors.
pub fn generate_pairs(
    model: &WeaverModel,
    set: &DomainSet,
    cfg: &DpoConfig,
    job: &PairJob,
    dev: &Device,
    on_input: &mut dyn FnMut(usize, bool),
) -> Result<(), WeaverError> {
    let (n_inputs, salt, path) = (job.n_inputs, job.salt, job.path.as_path());
    if set.is_empty() {
        return Err(WeaverError::NoData("no multi-domain chains to build preference pairs from".into()));
    }
    let done = count_lines(path)?;
    let sampler = Sampler::new(model, &cfg.pairs.sample)?;
    let weights: Vec<f64> = set.chains.iter().map(|c| c.weight.max(1e-12)).collect();
    let dist = WeightedIndex::new(&weights).map_err(|e| WeaverError::NoData(format!("chain weights: {e}")))?;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(WeaverError::io(path))?;
    for i in done..n_inputs {
        let mut rng = step_rng(cfg.seed ^ salt, i as u64);
        let ex = sample_example(&set.chains[dist.sample(&mut rng)], &cfg.pairs.examples, &mut rng)?;
        let input = AssemblyInput::from_native(&ex.frames, &ex.map.domain_of)?;
        let mut rngs: Vec<StdRng> = (0..cfg.pairs.k_samples).map(|_| seeded(rng.random())).collect();
        let samples: Vec<Vec<Rigid>> = sampler.sample(&input, &mut rngs, dev)?.into_iter().map(|a| a.frames).collect();
        let scores = score_samples(&samples, &ex.map.domain_of, &cfg.score)?;
        let order = |a: &usize, b: &usize| scores[*a].total.total_cmp(&scores[*b].total);
        let best = (0..scores.len()).max_by(order).unwrap_or(0);
        let worst = (0..scores.len()).min_by(order).unwrap_or(0);
        let pair = (best != worst && scores[best].total - scores[worst].total >= cfg.pairs.min_gap).then(|| PreferencePair {
            source: ex.source.clone(),
            domain_of: ex.map.domain_of.clone(),
            input: to7(&ex.frames),
            winner: to7(&samples[best]),
            loser: to7(&samples[worst]),
            score_winner: scores[best],
            score_loser: scores[worst],
        });
        let line = serde_json::json!({ "index": i, "pair": pair });
        writeln!(file, "{line}").map_err(WeaverError::io(path))?;
        on_input(i, pair.is_some());
    }
    Ok(())
}

fn count_lines(path: &Path) -> Result<usize, WeaverError> {
    if !path.is_file() {
        return Ok(0);
    }
    let f = std::fs::File::open(path).map_err(WeaverError::io(path))?;
    Ok(std::io::BufReader::new(f).lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).count())
}

/// Read the pairs of a file written by [`generate_pairs`] (skipping inputs without a pair).
///
/// # Errors
/// I/O and JSON errors naming the file.
pub fn load_pairs(path: &Path) -> Result<Vec<PreferencePair>, WeaverError> {
    #[derive(Deserialize)]
    struct Line {
        pair: Option<PreferencePair>,
    }
    let text = std::fs::read_to_string(path).map_err(WeaverError::io(path))?;
    let mut out = Vec::new();
    for (k, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line: Line = serde_json::from_str(l).map_err(|e| WeaverError::Json { path: path.to_path_buf(), message: format!("line {}: {e}", k + 1) })?;
        out.extend(line.pair);
    }
    Ok(out)
}

/// DPO statistics of a batch or a validation pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DpoReport {
    /// Mean DPO loss.
    pub loss: f64,
    /// Fraction of pairs whose margin favours the winner (margin < 0).
    pub accuracy: f64,
    /// Mean margin `β (Δ_w − Δ_l)`.
    pub margin: f64,
}

/// What the DPO run reports per step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DpoStepReport {
    /// Steps completed.
    pub step: u64,
    /// Batch statistics.
    pub train: DpoReport,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate.
    pub lr: f64,
}

/// The frozen base model of a weights folder (also the reference policy).
///
/// # Errors
/// Missing or mismatched weights.
pub fn load_model(dir: &Path, dev: &Device) -> Result<WeaverModel, WeaverError> {
    let ck = protforge_nn::Checkpoint::new(dir);
    let cfg: WeaverConfig = ck.load_config()?;
    let tensors = ck.load_tensors(dev)?;
    WeaverModel::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, dev))
}

/// A Diffusion-DPO run in `out`: `pairs_train.jsonl`, `pairs_val.jsonl`, `checkpoint/`,
/// `best/` (EMA weights with the lowest validation DPO loss), `dpo_train.csv`, `dpo_val.csv`.
pub struct DpoTrainer {
    cfg: DpoConfig,
    out: PathBuf,
    reference: WeaverModel,
    policy: WeaverModel,
    diffuser: Se3Diffuser,
    params: Params,
    state: TrainState<DpoConfig>,
    device: Device,
}

const TRAIN_PAIRS: &str = "pairs_train.jsonl";
const VAL_PAIRS: &str = "pairs_val.jsonl";
const TRAIN_SALT: u64 = 0x00d0_0001;
const VAL_SALT: u64 = 0x00d0_0002;

impl DpoTrainer {
    /// Start (policy = base weights) or resume a run.
    ///
    /// # Errors
    /// Invalid config, missing base weights, a checkpoint with another configuration.
    pub fn new(cfg: DpoConfig, out: &Path, resume: bool, device: Device) -> Result<Self, WeaverError> {
        cfg.validate()?;
        std::fs::create_dir_all(out).map_err(WeaverError::io(out))?;
        let reference = load_model(&cfg.base, &device)?;
        let base_tensors = protforge_nn::Checkpoint::new(&cfg.base).load_tensors(&device)?;
        let varmap = VarMap::new();
        let policy = WeaverModel::new(&reference.cfg, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
        set_vars(&named_vars(&varmap), &base_tensors, &format!("{} (base)", cfg.base.display()))?;
        let diffuser = Se3Diffuser::new(reference.cfg.diffusion)?;
        let mut params = Params::new(&varmap, cfg.adamw, cfg.ema_decay)?;
        let state = params.resume(&TrainCheckpoint::new(out.join("checkpoint")), resume, &cfg)?.unwrap_or_else(|| TrainState::fresh(cfg.seed, cfg.clone()));
        Ok(Self { cfg, out: out.to_path_buf(), reference, policy, diffuser, params, state, device })
    }

    /// Steps completed.
    #[must_use]
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// The policy being trained.
    #[must_use]
    pub fn policy(&self) -> &WeaverModel {
        &self.policy
    }

    /// Sample and score the training and validation pairs with the base model (resumable:
    /// inputs already in the files are skipped). `on_input(split, i, made)` reports progress.
    ///
    /// # Errors
    /// As [`generate_pairs`].
    pub fn prepare_pairs(&self, train: &DomainSet, val: &DomainSet, on_input: &mut dyn FnMut(&str, usize, bool)) -> Result<(Vec<PreferencePair>, Vec<PreferencePair>), WeaverError> {
        let (tp, vp) = (self.out.join(TRAIN_PAIRS), self.out.join(VAL_PAIRS));
        let train_job = PairJob { n_inputs: self.cfg.pairs.num_inputs, salt: TRAIN_SALT, path: tp.clone() };
        let val_job = PairJob { n_inputs: self.cfg.pairs.num_val_inputs, salt: VAL_SALT, path: vp.clone() };
        generate_pairs(&self.reference, train, &self.cfg, &train_job, &self.device, &mut |i, m| on_input("train", i, m))?;
        generate_pairs(&self.reference, val, &self.cfg, &val_job, &self.device, &mut |i, m| on_input("val", i, m))?;
        let (t, v) = (load_pairs(&tp)?, load_pairs(&vp)?);
        if t.is_empty() || v.is_empty() {
            return Err(WeaverError::NoData(format!("{} training and {} validation pairs: need both (lower pairs.min_gap?)", t.len(), v.len())));
        }
        Ok((t, v))
    }

    /// DPO statistics and the loss tensor of a set of pairs under one noise draw.
    fn pair_loss<R: Rng>(&self, pairs: &[&PreferencePair], rng: &mut R) -> Result<(Tensor, Tensor, DpoReport), WeaverError> {
        let decoded = pairs.iter().map(|p| p.decode()).collect::<Result<Vec<_>, _>>()?;
        let mut items: Vec<(&[Rigid], &crate::splice::SplicedMap)> = decoded.iter().map(|(m, w, _)| (w.as_slice(), m)).collect();
        items.extend(decoded.iter().map(|(m, _, l)| (l.as_slice(), m)));
        let batch = TrainBatch::new(&items, &self.policy.cfg, &self.cfg.loss, &self.device)?;
        let p = pairs.len();
        let tp: Vec<f64> = (0..p).map(|_| self.cfg.loss.sample_t(rng)).collect();
        let t: Vec<f64> = tp.iter().chain(&tp).copied().collect();
        // One noise draw per pair, shared by its winner and loser (same t, same ε), as in the
        // Diffusion-DPO reference training script: the pair difference then measures the
        // structures, not the noise.
        let seeds: Vec<u64> = (0..p).map(|_| rng.random()).collect();
        let mut rngs: Vec<StdRng> = seeds.iter().chain(&seeds).map(|&s| seeded(s)).collect();
        let noised = noise_batch(&self.diffuser, &batch, &t, &mut rngs)?;
        let pol = loss_terms(&self.policy, &self.diffuser, &batch, &noised, &t, &self.cfg.loss)?.surrogate;
        let reference = loss_terms(&self.reference, &self.diffuser, &batch, &noised, &t, &self.cfg.loss)?.surrogate.detach();
        let (pw, pl) = (pol.narrow(0, 0, p)?, pol.narrow(0, p, p)?);
        let (rw, rl) = (reference.narrow(0, 0, p)?, reference.narrow(0, p, p)?);
        let margin = dpo_margin(&pw, &pl, &rw, &rl, self.cfg.beta)?;
        let losses = softplus(&margin)?;
        let m: Vec<f32> = margin.to_vec1()?;
        let report = DpoReport {
            loss: mean_f64(&losses)?,
            accuracy: m.iter().filter(|&&x| x < 0.0).count() as f64 / p as f64,
            margin: m.iter().map(|&x| f64::from(x)).sum::<f64>() / p as f64,
        };
        Ok((losses.mean_all()?, pw.mean_all()?, report))
    }
}

impl Trainee for DpoTrainer {
    type Config = DpoConfig;
    type Data = [PreferencePair];
    type Step = DpoStepReport;
    type Val = DpoReport;
    type Error = WeaverError;

    fn settings(&self) -> LoopSettings {
        LoopSettings {
            validate_at_start: true,
            log_prefix: "dpo_",
            ..LoopSettings::new(self.cfg.steps, self.cfg.log_every, self.cfg.val_every, self.cfg.checkpoint_minutes)
        }
    }

    fn out_dir(&self) -> &Path {
        &self.out
    }

    fn state_mut(&mut self) -> &mut TrainState<DpoConfig> {
        &mut self.state
    }

    /// Validation DPO statistics over `val` pairs (`val_draws` fixed noise draws each), with the
    /// EMA weights.
    ///
    /// # Errors
    /// Candle and decoding errors.
    fn validate(&mut self, val: &[PreferencePair]) -> Result<DpoReport, WeaverError> {
        self.params.swap_ema()?;
        let result = (|| -> Result<DpoReport, WeaverError> {
            let mut sum = DpoReport::default();
            let mut n = 0.0;
            for d in 0..self.cfg.val_draws {
                for (k, chunk) in val.chunks(self.cfg.batch_pairs).enumerate() {
                    let mut rng = step_rng(self.cfg.seed ^ VAL_SALT, d * 1_000_003 + k as u64);
                    let refs: Vec<&PreferencePair> = chunk.iter().collect();
                    let (_, _, r) = self.pair_loss(&refs, &mut rng)?;
                    let w = chunk.len() as f64;
                    sum.loss += r.loss * w;
                    sum.accuracy += r.accuracy * w;
                    sum.margin += r.margin * w;
                    n += w;
                }
            }
            Ok(DpoReport { loss: sum.loss / n, accuracy: sum.accuracy / n, margin: sum.margin / n })
        })();
        self.params.swap_ema()?;
        result
    }

    /// One optimizer step on `batch_pairs` pairs drawn uniformly from `train`.
    ///
    /// # Errors
    /// Candle, decoding and optimizer errors.
    fn train_step(&mut self, train: &[PreferencePair]) -> Result<DpoStepReport, WeaverError> {
        if train.is_empty() {
            return Err(WeaverError::NoData("no preference pairs".into()));
        }
        let step = self.state.step;
        let mut rng = step_rng(self.cfg.seed, step);
        let chosen: Vec<&PreferencePair> = (0..self.cfg.batch_pairs).map(|_| &train[rng.random_range(0..train.len())]).collect();
        let (loss, sft, report) = self.pair_loss(&chosen, &mut rng)?;
        let total = (loss + (sft * self.cfg.sft_weight)?)?;
        let lr = self.cfg.lr.lr(step);
        let grad_norm = self.params.step(&total, lr, self.cfg.grad_clip)?;
        self.state.step += 1;
        Ok(DpoStepReport { step: self.state.step, train: report, grad_norm, lr })
    }

    /// Save the checkpoint (atomically).
    ///
    /// # Errors
    /// I/O errors.
    fn save(&self) -> Result<(), WeaverError> {
        self.params.save(&TrainCheckpoint::new(self.out.join("checkpoint")), &self.state)?;
        Ok(())
    }

    /// Write the EMA policy weights with the model config to `dir`.
    ///
    /// # Errors
    /// I/O errors.
    fn export_ema(&self, dir: &Path) -> Result<(), WeaverError> {
        self.params.export_ema(dir, &self.policy.cfg)?;
        Ok(())
    }
}

impl CsvRow for DpoStepReport {
    fn header() -> &'static str {
        "loss,accuracy,margin,grad_norm,lr"
    }

    fn row(&self) -> String {
        format!("{:.5},{:.4},{:.5},{:.4},{:.3e}", self.train.loss, self.train.accuracy, self.train.margin, self.grad_norm, self.lr)
    }
}

impl CsvRow for DpoReport {
    fn header() -> &'static str {
        "val_loss,val_accuracy,val_margin"
    }

    fn row(&self) -> String {
        format!("{:.5},{:.4},{:.5}", self.loss, self.accuracy, self.margin)
    }
}

impl ValRow for DpoReport {
    fn selection_loss(&self) -> f64 {
        self.loss
    }
}

/// Score shift of one model against another on the same inputs and seeds: per input, each
/// model samples `k` assemblies with the same seeds; the candidate wins an input when its mean
/// total score is higher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// Inputs compared.
    pub n_inputs: usize,
    /// Fraction of inputs where the candidate's mean total score beats the baseline's (ties
    /// count one half).
    pub win_rate: f64,
    /// Mean over samples of each component, baseline then candidate.
    pub baseline: MeanScores,
    /// As `baseline`, for the candidate.
    pub candidate: MeanScores,
}

/// Means of the score components over a set of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MeanScores {
    /// Mean total.
    pub total: f64,
    /// Mean clash term.
    pub clash: f64,
    /// Mean contact term.
    pub contacts: f64,
    /// Mean compactness term.
    pub compactness: f64,
    /// Mean linker term.
    pub linker: f64,
    /// Fraction of valid samples.
    pub valid: f64,
    /// Mean inter-domain contacts.
    pub n_contacts: f64,
    /// Mean Rg ratio.
    pub rg_ratio: f64,
}

impl MeanScores {
    /// Means of `scores` (zeros for an empty slice).
    #[must_use]
    pub fn of(scores: &[ScoreBreakdown]) -> Self {
        let n = scores.len().max(1) as f64;
        let m = |f: &dyn Fn(&ScoreBreakdown) -> f64| scores.iter().map(f).sum::<f64>() / n;
        Self {
            total: m(&|s| s.total),
            clash: m(&|s| s.clash),
            contacts: m(&|s| s.contacts),
            compactness: m(&|s| s.compactness),
            linker: m(&|s| s.linker),
            valid: m(&|s| f64::from(u8::from(s.valid))),
            n_contacts: m(&|s| s.n_contacts as f64),
            rg_ratio: m(&|s| s.rg_ratio),
        }
    }
}

/// How [`compare_models`] samples and scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareSettings {
    /// Samples per input and model.
    pub k: usize,
    /// Sampler settings (both models).
    pub sample: SampleOptions,
    /// The score.
    pub score: ScoreConfig,
    /// Run seed: sample `j` of input `n` uses `sample_seed(seed, n · k + j)` for both models.
    pub seed: u64,
}

/// Compare `candidate` with `baseline` on `inputs` (see [`Comparison`]).
///
/// # Errors
/// Sampling and scoring errors.
pub fn compare_models(
    baseline: &WeaverModel,
    candidate: &WeaverModel,
    inputs: &[AssemblyInput],
    settings: &CompareSettings,
    dev: &Device,
) -> Result<Comparison, WeaverError> {
    let CompareSettings { k, sample: opts, score, seed } = settings;
    let (k, seed) = (*k, *seed);
    let (sb, sc) = (Sampler::new(baseline, opts)?, Sampler::new(candidate, opts)?);
    let (mut all_b, mut all_c, mut wins) = (Vec::new(), Vec::new(), 0.0);
    for (n, input) in inputs.iter().enumerate() {
        let rngs = || -> Vec<StdRng> { (0..k).map(|j| seeded(protforge_flow::rng::sample_seed(seed, (n * k + j) as u64))).collect() };
        let run = |s: &Sampler, rngs: &mut [StdRng]| -> Result<Vec<ScoreBreakdown>, WeaverError> {
            let frames: Vec<Vec<Rigid>> = s.sample(input, rngs, dev)?.into_iter().map(|a| a.frames).collect();
            score_samples(&frames, &input.map.domain_of, score)
        };
        let b = run(&sb, &mut rngs())?;
        let c = run(&sc, &mut rngs())?;
        let (mb, mc) = (MeanScores::of(&b).total, MeanScores::of(&c).total);
        wins += if mc > mb { 1.0 } else if mc == mb { 0.5 } else { 0.0 };
        all_b.extend(b);
        all_c.extend(c);
    }
    Ok(Comparison {
        n_inputs: inputs.len(),
        win_rate: wins / inputs.len().max(1) as f64,
        baseline: MeanScores::of(&all_b),
        candidate: MeanScores::of(&all_c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn dpo_loss_is_log2_at_the_reference_and_falls_when_winners_are_preferred() {
        let w = t(&[0.8, 1.3, 0.2]);
        let l = t(&[1.1, 0.9, 0.5]);
        let at_ref = dpo_loss(&w, &l, &w, &l, 7.0).unwrap().to_vec1::<f32>().unwrap();
        for v in at_ref {
            assert!((f64::from(v) - std::f64::consts::LN_2).abs() < 1e-6, "{v}");
        }
        // The policy denoises winners better and losers worse than the reference → below log 2.
        let better = dpo_loss(&(&w - 0.1).unwrap(), &(&l + 0.1).unwrap(), &w, &l, 5.0).unwrap().to_vec1::<f32>().unwrap();
        assert!(better.iter().all(|&v| f64::from(v) < std::f64::consts::LN_2));
        // The opposite preference → above log 2; a larger β sharpens both.
        let worse = dpo_loss(&(&w + 0.1).unwrap(), &l, &w, &l, 5.0).unwrap().to_vec1::<f32>().unwrap();
        assert!(worse.iter().all(|&v| f64::from(v) > std::f64::consts::LN_2));
        let sharper = dpo_loss(&(&w + 0.1).unwrap(), &l, &w, &l, 50.0).unwrap().to_vec1::<f32>().unwrap();
        assert!(sharper[0] > worse[0]);
        // Only differences to the reference matter: shifting policy and reference together
        // on the winner leaves the loss unchanged.
        let shifted = dpo_loss(&(&w + 3.0).unwrap(), &l, &(&w + 3.0).unwrap(), &l, 5.0).unwrap().to_vec1::<f32>().unwrap();
        assert!((f64::from(shifted[1]) - std::f64::consts::LN_2).abs() < 1e-6);
        // The gradient lowers the policy's winner loss and raises its loser loss.
        let pw = candle_core::Var::from_tensor(&w).unwrap();
        let pl = candle_core::Var::from_tensor(&l).unwrap();
        let g = dpo_loss(pw.as_tensor(), pl.as_tensor(), &w, &l, 2.0).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(pw.as_tensor()).unwrap().to_vec1::<f32>().unwrap().iter().all(|&x| x > 0.0));
        assert!(g.get(pl.as_tensor()).unwrap().to_vec1::<f32>().unwrap().iter().all(|&x| x < 0.0));
    }

    #[test]
    fn pairs_are_generated_resumably_and_dpo_trains() {
        use crate::train::{TrainConfig, Trainer};
        let (train, val) = (crate::train::tests::toy_set(5, 11), crate::train::tests::toy_set(3, 12));
        let dir = tempfile::tempdir().unwrap();
        let mut base = Trainer::new(TrainConfig::tiny(), &dir.path().join("base"), false, Device::Cpu).unwrap();
        base.run(&train, &val, Some(2), &mut |_, _| {}).unwrap();
        let weights = dir.path().join("base/best");
        assert!(weights.join("model.safetensors").is_file());

        let cfg = DpoConfig::tiny(weights.clone());
        let out = dir.path().join("dpo");
        let trainer = DpoTrainer::new(cfg.clone(), &out, false, Device::Cpu).unwrap();
        // Interrupted pair generation resumes at the next input.
        let tp = out.join(TRAIN_PAIRS);
        let job = PairJob { n_inputs: 2, salt: TRAIN_SALT, path: tp.clone() };
        generate_pairs(&trainer.reference, &train, &cfg, &job, &Device::Cpu, &mut |_, _| {}).unwrap();
        assert_eq!(count_lines(&tp).unwrap(), 2);
        let mut seen = Vec::new();
        let (tr, va) = trainer.prepare_pairs(&train, &val, &mut |s, i, _| seen.push((s.to_string(), i))).unwrap();
        assert_eq!(seen, vec![("train".into(), 2), ("val".into(), 0), ("val".into(), 1)]);
        assert_eq!((tr.len(), va.len()), (3, 2), "min_gap 0 keeps every input");
        for p in &tr {
            assert!(p.score_winner.total >= p.score_loser.total);
            let (map, w, l) = p.decode().unwrap();
            assert_eq!((w.len(), l.len()), (map.len, map.len));
        }
        // At step 0 the policy is the reference: validation loss is log 2 exactly.
        let mut trainer = trainer;
        let v0 = trainer.validate(&va).unwrap();
        assert!((v0.loss - std::f64::consts::LN_2).abs() < 1e-6, "{v0:?}");
        let mut reports = Vec::new();
        trainer.run(&tr, &va, Some(2), &mut |r, _| reports.push(r.train.loss)).unwrap();
        assert_eq!(trainer.step(), 2);
        // Winner and loser share the noise draw: a pair whose loser is its winner has margin 0
        // exactly, although the trained policy differs from the reference on real pairs.
        let twin = PreferencePair { loser: tr[0].winner.clone(), ..tr[0].clone() };
        let (_, _, same) = trainer.pair_loss(&[&twin, &twin], &mut seeded(3)).unwrap();
        assert!(same.margin.abs() < 1e-9 && (same.loss - std::f64::consts::LN_2).abs() < 1e-6, "{same:?}");
        let (_, _, real) = trainer.pair_loss(&[&tr[0], &tr[1]], &mut seeded(3)).unwrap();
        assert!(real.margin.abs() > 1e-9, "{real:?}");
        drop(trainer);
        let mut again = DpoTrainer::new(cfg.clone(), &out, true, Device::Cpu).unwrap();
        assert_eq!(again.step(), 2);
        again.run(&tr, &va, None, &mut |r, _| reports.push(r.train.loss)).unwrap();
        assert_eq!(reports.len(), 4);
        assert!(out.join("best/model.safetensors").is_file());
        // The aligned model can be compared with the base on held-out inputs.
        let aligned = load_model(&out.join("best"), &Device::Cpu).unwrap();
        let ex = sample_example(&val.chains[0], &cfg.pairs.examples, &mut seeded(0)).unwrap();
        let input = AssemblyInput::from_native(&ex.frames, &ex.map.domain_of).unwrap();
        let settings = CompareSettings { k: 2, sample: cfg.pairs.sample, score: cfg.score, seed: 0 };
        let cmp = compare_models(&load_model(&weights, &Device::Cpu).unwrap(), &aligned, &[input], &settings, &Device::Cpu).unwrap();
        assert_eq!(cmp.n_inputs, 1);
        assert!((0.0..=1.0).contains(&cmp.win_rate));
    }
}
