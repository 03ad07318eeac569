//! Training utilities with exact resume: [`AdamW`] with exposed moments,
//! [`clip_grad_norm`], [`LrSchedule`], parameter [`Ema`], [`TrainCheckpoint`] (a
//! training-state directory written atomically), [`Params`] (variables + AdamW + EMA) and the
//! one training loop every trainer runs, [`run_loop`] (through [`Trainee`]).
//!
//! # Randomness and exact resume
//!
//! No RNG is serialised. The convention is that **all randomness of optimizer step `k`
//! (batch sampling, noise, flow times) is drawn from [`step_rng`]`(seed, k)`** =
//! `protforge_flow::rng::seeded(protforge_flow::rng::sample_seed(seed, k))`, and data order
//! of epoch `e` from a generator derived the same way from `(seed, e)`. A run resumed from
//! a checkpoint at step `k` therefore replays steps `k, k+1, …` exactly: the model tensors,
//! AdamW moments and step count, and EMA shadow are restored bit for bit.
//!
//! # A trainer
//!
//! ```text
//! // new(): build the model on `varmap`, initialise it, then
//! let mut params = Params::new(&varmap, adamw, ema_decay)?;
//! let state = params.resume(&TrainCheckpoint::new(out.join("checkpoint")), resume, &cfg)?
//!     .unwrap_or_else(|| TrainState::fresh(cfg.seed, cfg.clone()));
//! // Trainee::train_step(): all randomness from step_rng(seed, state.step)
//! let loss = model.loss(&batch(&mut step_rng(seed, state.step))?)?;
//! let grad_norm = params.step(&loss, schedule.lr(state.step), clip)?;
//! state.step += 1;
//! // Trainee::validate(): params.swap_ema() around the validation pass
//! // the CLI: trainer.run(&train, &val, max_steps, &mut |report, val| …)
//! ```

mod ema;
mod harness;
mod optim;
mod params;
mod schedule;

pub use ema::{EMA_COUNT_KEY, Ema};
pub use harness::{CsvRow, LoopSettings, OnStep, Trainee, ValRow, run_loop};
pub use params::Params;
pub use optim::{ADAMW_STEP_KEY, AdamW, AdamWConfig, clip_grad_norm, default_decay, grad_norm};
pub use schedule::LrSchedule;

use crate::NnError;
use crate::checkpoint::{CONFIG_FILE, WEIGHTS_FILE, write_atomic};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File name of the EMA tensors in a training-state directory.
pub const EMA_FILE: &str = "ema.safetensors";
/// File name of the optimizer state in a training-state directory.
pub const OPTIM_FILE: &str = "optim.safetensors";
/// File name of the counters and config in a training-state directory.
pub const STATE_FILE: &str = "state.json";

/// The generator for all randomness of optimizer step `step` of a run with seed `seed`
/// (see the module docs): `seeded(sample_seed(seed, step))`.
#[must_use]
pub fn step_rng(seed: u64, step: u64) -> StdRng {
    protforge_flow::rng::seeded(protforge_flow::rng::sample_seed(seed, step))
}

/// Counters and settings of a training run, stored as `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState<C> {
    /// Optimizer steps completed (the next step to run is `step`).
    pub step: u64,
    /// Epochs completed.
    pub epoch: u64,
    /// Run seed (see [`step_rng`]).
    pub seed: u64,
    /// Best validation loss so far, if validated.
    pub best_val_loss: Option<f64>,
    /// Accumulated training wall time in seconds.
    pub wall_time_s: f64,
    /// The model/training configuration (also written as `config.json`).
    pub config: C,
}

impl<C> TrainState<C> {
    /// The state of a run that has not taken a step yet.
    pub fn fresh(seed: u64, config: C) -> Self {
        Self { step: 0, epoch: 0, seed, best_val_loss: None, wall_time_s: 0.0, config }
    }
}

/// A training-state directory:
/// `config.json` + `model.safetensors` (so it is also a valid [`crate::Checkpoint`]),
/// `ema.safetensors` (optional), `optim.safetensors`, `state.json`.
///
/// [`TrainCheckpoint::save`] writes everything into a sibling temporary directory and then
/// swaps it in with renames, so the directory always holds one complete, consistent state.
/// (If the process dies between the two renames, the previous state survives as
/// `<dir>.old-<pid>` next to it.)
#[derive(Debug, Clone)]
pub struct TrainCheckpoint {
    dir: PathBuf,
}

fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let mut name = dir.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(format!(".{tag}-{}", std::process::id()));
    dir.with_file_name(name)
}

fn write_json<T: Serialize>(value: &T, path: &Path) -> Result<(), NnError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| NnError::BadConfig { path: path.to_path_buf(), message: e.to_string() })?;
    write_atomic(path, text.as_bytes())
}

fn save_tensors(map: &HashMap<String, Tensor>, path: &Path) -> Result<(), NnError> {
    candle_core::safetensors::save(map, path).map_err(|e| NnError::BadTensors { path: path.to_path_buf(), message: e.to_string() })
}

/// The current values of `vars` by name.
#[must_use]
pub fn var_tensors(vars: &[(String, Var)]) -> HashMap<String, Tensor> {
    vars.iter().map(|(n, v)| (n.clone(), v.as_detached_tensor())).collect()
}

/// Set variables from a tensor map that covers a subset of them (a warm start of a grown
/// model): every saved tensor must match a variable of the same name and shape; variables
/// without a saved tensor keep their values. Returns the names left untouched.
///
/// # Errors
/// [`NnError::StateMismatch`] (naming `what`) for a saved tensor with no variable or another shape.
pub fn set_vars_subset(vars: &[(String, Var)], tensors: &HashMap<String, Tensor>, what: &str) -> Result<Vec<String>, NnError> {
    let mismatch = |reason: String| NnError::StateMismatch { what: what.to_string(), reason };
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let var = vars.iter().find(|(n, _)| n == name).map(|(_, v)| v).ok_or_else(|| mismatch(format!("{name} is not a variable of this model")))?;
        if tensors[name].dims() != var.dims() {
            return Err(mismatch(format!("{name}: shape {:?}, variable {:?}", tensors[name].dims(), var.dims())));
        }
    }
    let mut untouched = Vec::new();
    for (name, var) in vars {
        match tensors.get(name) {
            Some(t) => var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?,
            None => untouched.push(name.clone()),
        }
    }
    Ok(untouched)
}

/// Set every variable from a tensor map with exactly the same names and shapes.
///
/// # Errors
/// [`NnError::StateMismatch`] (naming `what`) for missing, extra or mis-shaped tensors.
pub fn set_vars(vars: &[(String, Var)], tensors: &HashMap<String, Tensor>, what: &str) -> Result<(), NnError> {
    let mismatch = |reason: String| NnError::StateMismatch { what: what.to_string(), reason };
    if tensors.len() != vars.len() {
        let extra: Vec<&String> = tensors.keys().filter(|k| !vars.iter().any(|(n, _)| n == *k)).take(3).collect();
        return Err(mismatch(format!("{} tensors saved, {} variables (extra: {extra:?})", tensors.len(), vars.len())));
    }
    for (name, var) in vars {
        let t = tensors.get(name).ok_or_else(|| mismatch(format!("missing {name}")))?;
        if t.dims() != var.dims() {
            return Err(mismatch(format!("{name}: shape {:?}, variable {:?}", t.dims(), var.dims())));
        }
    }
    for (name, var) in vars {
        if let Some(t) = tensors.get(name) {
            var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
        }
    }
    Ok(())
}

impl TrainCheckpoint {
    /// Refer to a training-state directory; nothing is read yet.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a complete state (its `state.json`) exists.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.dir.join(STATE_FILE).is_file()
    }

    /// Write the full training state atomically (see the type docs).
    ///
    /// # Errors
    /// I/O errors naming the path; candle/serde errors.
    pub fn save<C: Serialize>(
        &self,
        state: &TrainState<C>,
        model: &[(String, Var)],
        optim: &AdamW,
        ema: Option<&Ema>,
    ) -> Result<(), NnError> {
        let tmp = sibling(&self.dir, "tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| NnError::Io { path, source }
        };
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        write_json(&state.config, &tmp.join(CONFIG_FILE))?;
        save_tensors(&var_tensors(model), &tmp.join(WEIGHTS_FILE))?;
        save_tensors(&optim.state_tensors()?, &tmp.join(OPTIM_FILE))?;
        if let Some(ema) = ema {
            save_tensors(&ema.state_tensors()?, &tmp.join(EMA_FILE))?;
        }
        write_json(state, &tmp.join(STATE_FILE))?;
        // Swap in: old → .old-pid, tmp → dir, remove old.
        if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let old = sibling(&self.dir, "old");
        let had_old = self.dir.exists();
        if had_old {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            std::fs::rename(&self.dir, &old).map_err(io(&self.dir))?;
        }
        std::fs::rename(&tmp, &self.dir).map_err(io(&self.dir))?;
        if had_old {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(())
    }

    /// Read `state.json` only.
    ///
    /// # Errors
    /// [`NnError::MissingWeights`] if absent, [`NnError::BadConfig`] if it does not parse.
    pub fn load_state<C: DeserializeOwned>(&self) -> Result<TrainState<C>, NnError> {
        let path = self.dir.join(STATE_FILE);
        if !path.is_file() {
            return Err(NnError::MissingWeights { path, what: "state.json" });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| NnError::Io { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| NnError::BadConfig { path, message: e.to_string() })
    }

    fn load_tensors(&self, file: &str) -> Result<HashMap<String, Tensor>, NnError> {
        let path = self.dir.join(file);
        if !path.is_file() {
            return Err(NnError::MissingWeights { path, what: "training state tensors" });
        }
        candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
            .map_err(|e| NnError::BadTensors { path, message: e.to_string() })
    }

    /// Resume a run: when `resume` is set and a state exists, restore it into the model,
    /// optimizer and EMA (as [`TrainCheckpoint::restore`]) and check it was saved with
    /// `config`; `None` when the run starts fresh.
    ///
    /// # Errors
    /// Restore errors; [`NnError::ConfigChanged`] when the saved configuration differs.
    pub fn resume<C: DeserializeOwned + PartialEq>(
        &self,
        resume: bool,
        config: &C,
        model: &[(String, Var)],
        optim: &mut AdamW,
        ema: Option<&mut Ema>,
    ) -> Result<Option<TrainState<C>>, NnError> {
        if !resume || !self.exists() {
            return Ok(None);
        }
        let state: TrainState<C> = self.restore(model, optim, ema)?;
        if state.config != *config {
            return Err(NnError::ConfigChanged { dir: self.dir.clone() });
        }
        Ok(Some(state))
    }

    /// Restore a saved state into an already-built model (`model` vars, e.g.
    /// [`crate::init::named_vars`]), its optimizer and (optionally) its EMA; returns the
    /// counters and config. Names and shapes must match exactly.
    ///
    /// # Errors
    /// Missing files, [`NnError::StateMismatch`], or an EMA requested but not saved.
    pub fn restore<C: DeserializeOwned>(
        &self,
        model: &[(String, Var)],
        optim: &mut AdamW,
        ema: Option<&mut Ema>,
    ) -> Result<TrainState<C>, NnError> {
        let state = self.load_state()?;
        let weights = self.load_tensors(WEIGHTS_FILE)?;
        let optim_state = self.load_tensors(OPTIM_FILE)?;
        let ema_state = match ema.is_some() {
            true => Some(self.load_tensors(EMA_FILE)?),
            false => None,
        };
        set_vars(model, &weights, WEIGHTS_FILE)?;
        optim.load_state(&optim_state)?;
        if let (Some(ema), Some(s)) = (ema, ema_state) {
            ema.load_state(&s)?;
        }
        Ok(state)
    }
}


/// Names of the variables in `vars` whose gradient is missing from `grads` or identically
/// zero. Use it in tests to catch ops without backward (RUST-NOTES §2.1).
///
/// # Errors
/// Candle errors.
pub fn vars_without_grad(vars: &[(String, Var)], grads: &GradStore) -> Result<Vec<String>, NnError> {
    let mut out = Vec::new();
    for (name, var) in vars {
        let zero = match grads.get(var.as_tensor()) {
            None => true,
            Some(g) => g.abs()?.flatten_all()?.max(0)?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? == 0.0,
        };
        if zero {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// Backpropagate `loss` and return the names of the `varmap` variables (sorted) that get
/// no or an all-zero gradient. An empty result means every parameter trains.
///
/// Note: AdaLN-Zero blocks at initialisation legitimately give zero gradient to everything
/// behind a zero gate; perturb the `adaln_mod` parameters before calling this.
///
/// # Errors
/// Candle errors (e.g. `loss` not a scalar).
pub fn vars_missing_grad(varmap: &VarMap, loss: &Tensor) -> Result<Vec<String>, NnError> {
    let grads = loss.backward()?;
    vars_without_grad(&crate::init::named_vars(varmap), &grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn vars() -> Vec<(String, Var)> {
        let a = Var::from_tensor(&Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[0.5f32, -0.5], &Device::Cpu).unwrap()).unwrap();
        vec![("lin.weight".to_string(), a), ("lin.bias".to_string(), b)]
    }

    #[test]
    fn checkpoint_files_overwrite_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let ck = TrainCheckpoint::new(dir.path().join("run/last"));
        assert!(!ck.exists());
        let v = vars();
        let opt = AdamW::new(v.clone(), AdamWConfig::default()).unwrap();
        let ema = Ema::new(&v, 0.99).unwrap();
        let mut state = TrainState { step: 3, epoch: 1, seed: 9, best_val_loss: Some(0.5), wall_time_s: 1.5, config: serde_json::json!({"d_model": 24}) };
        ck.save(&state, &v, &opt, Some(&ema)).unwrap();
        for f in [CONFIG_FILE, WEIGHTS_FILE, OPTIM_FILE, EMA_FILE, STATE_FILE] {
            assert!(ck.dir().join(f).is_file(), "{f}");
        }
        // Also a valid inference checkpoint.
        let info = crate::Checkpoint::new(ck.dir()).info().unwrap();
        assert_eq!((info.n_tensors, info.n_params), (2, 6));
        state.step = 4;
        ck.save(&state, &v, &opt, None).unwrap();
        let back: TrainState<serde_json::Value> = ck.load_state().unwrap();
        assert_eq!(back, state);
        assert!(!ck.dir().join(EMA_FILE).exists(), "the second save replaced the whole directory");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("run")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no tmp/old directories left");
        // Restoring into a differently named model fails clearly.
        let w = Var::from_tensor(&Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let other = vec![("other.weight".to_string(), w)];
        let mut opt2 = AdamW::new(other.clone(), AdamWConfig::default()).unwrap();
        let err = ck.restore::<serde_json::Value>(&other, &mut opt2, None).unwrap_err().to_string();
        assert!(err.contains("model.safetensors"), "{err}");
        let mut ema2 = Ema::new(&v, 0.99).unwrap();
        let mut opt3 = AdamW::new(v.clone(), AdamWConfig::default()).unwrap();
        assert!(matches!(ck.restore::<serde_json::Value>(&v, &mut opt3, Some(&mut ema2)), Err(NnError::MissingWeights { .. })));
    }

    #[test]
    fn grad_helper_finds_untrained_vars() {
        let v = vars();
        // Only the weight participates; the bias gets no gradient.
        let loss = v[0].1.as_tensor().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        assert_eq!(vars_without_grad(&v, &grads).unwrap(), vec!["lin.bias".to_string()]);
    }

    #[test]
    fn step_rng_is_the_documented_convention() {
        use rand::Rng;
        let a: u64 = step_rng(5, 17).random();
        let b: u64 = protforge_flow::rng::seeded(protforge_flow::rng::sample_seed(5, 17)).random();
        let c: u64 = step_rng(5, 18).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
