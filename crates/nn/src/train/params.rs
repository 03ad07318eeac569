//! [`Params`]: the trainable state every protforge trainer carries — the model's variables,
//! their AdamW moments and their EMA shadow — with the operations all trainers share
//! (gradient step, checkpoint, resume, warm start, EMA export).

use super::{AdamW, AdamWConfig, Ema, TrainCheckpoint, TrainState, clip_grad_norm, set_vars_subset};
use crate::NnError;
use crate::init::named_vars;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// The variables of a model under training, with AdamW and an EMA of the weights.
pub struct Params {
    vars: Vec<(String, Var)>,
    opt: AdamW,
    ema: Ema,
    ema_decay: f64,
}

impl Params {
    /// Take the (already initialised) variables of `varmap`, sorted by name.
    ///
    /// # Errors
    /// Invalid AdamW or EMA settings.
    pub fn new(varmap: &VarMap, adamw: AdamWConfig, ema_decay: f64) -> Result<Self, NnError> {
        let vars = named_vars(varmap);
        let opt = AdamW::new(vars.clone(), adamw)?;
        let ema = Ema::new(&vars, ema_decay)?;
        Ok(Self { vars, opt, ema, ema_decay })
    }

    /// The variables by name.
    #[must_use]
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Number of trainable scalars.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Warm start: set every variable saved in the weights folder `dir` (names and shapes must
    /// match; others keep their values) and restart the EMA from the new weights.
    ///
    /// # Errors
    /// Missing or mismatched weights.
    pub fn init_from(&mut self, dir: &Path, device: &Device) -> Result<(), NnError> {
        let tensors = crate::Checkpoint::new(dir).load_tensors(device)?;
        set_vars_subset(&self.vars, &tensors, &format!("{} (init_from)", dir.display()))?;
        self.ema = Ema::new(&self.vars, self.ema_decay)?;
        Ok(())
    }

    /// Resume from `ckpt` when `resume` is set and it exists ([`TrainCheckpoint::resume`]);
    /// `None` for a fresh run.
    ///
    /// # Errors
    /// Restore errors; [`NnError::ConfigChanged`] for a checkpoint of another configuration.
    pub fn resume<C: DeserializeOwned + PartialEq>(&mut self, ckpt: &TrainCheckpoint, resume: bool, config: &C) -> Result<Option<TrainState<C>>, NnError> {
        ckpt.resume(resume, config, &self.vars, &mut self.opt, Some(&mut self.ema))
    }

    /// Backpropagate `loss`, clip the gradient to norm `clip`, and, when its norm is finite,
    /// take one AdamW step at learning rate `lr` and update the EMA (a non-finite gradient
    /// skips the update). Returns the gradient norm before clipping.
    ///
    /// # Errors
    /// Candle and optimizer errors.
    pub fn step(&mut self, loss: &Tensor, lr: f64, clip: f64) -> Result<f64, NnError> {
        let mut grads = loss.backward()?;
        let norm = clip_grad_norm(&mut grads, &self.vars, clip)?;
        if norm.is_finite() {
            self.opt.step(&grads, lr)?;
            self.ema.update()?;
        }
        Ok(norm)
    }

    /// Exchange the raw and the EMA weights (call twice around a validation pass).
    ///
    /// # Errors
    /// Candle errors.
    pub fn swap_ema(&mut self) -> Result<(), NnError> {
        self.ema.swap()
    }

    /// Save the full training state with `state` to `ckpt` (atomically).
    ///
    /// # Errors
    /// I/O errors naming the path.
    pub fn save<C: Serialize>(&self, ckpt: &TrainCheckpoint, state: &TrainState<C>) -> Result<(), NnError> {
        ckpt.save(state, &self.vars, &self.opt, Some(&self.ema))
    }

    /// Write the EMA weights with the model config to `dir` (a weights folder).
    ///
    /// # Errors
    /// I/O errors naming the path.
    pub fn export_ema<M: Serialize>(&self, dir: &Path, model_config: &M) -> Result<(), NnError> {
        crate::Checkpoint::new(dir).save(model_config, &self.ema.tensors())
    }
}
