//! Exponential moving average of parameters (Polyak & Juditsky 1992; the EMA weights that
//! diffusion/flow models such as Proteina evaluate and release).

use crate::NnError;
use candle_core::{DType, Tensor, Var};
use std::collections::HashMap;

/// Key of the update counter in [`Ema::state_tensors`] (never a parameter name, which
/// always comes from a `vb.pp` path).
pub const EMA_COUNT_KEY: &str = "__ema_num_updates";

/// EMA of a set of variables: after each optimizer step, `shadow ← d·shadow + (1 − d)·θ`.
///
/// Holds handles to the live variables, so [`Ema::copy_to_model`] and [`Ema::swap`] can
/// put the averaged weights into the model for validation or export.
#[derive(Debug)]
pub struct Ema {
    decay: f64,
    entries: Vec<(String, Var, Tensor)>,
    num_updates: u64,
}

impl Ema {
    /// Start an EMA of `vars` (copied as the initial shadow) with decay `d ∈ [0, 1)`.
    ///
    /// # Errors
    /// [`NnError::BadParameter`] for a decay outside `[0, 1)`.
    pub fn new(vars: &[(String, Var)], decay: f64) -> Result<Self, NnError> {
        if !(0.0..1.0).contains(&decay) {
            return Err(NnError::BadParameter { what: "ema decay", reason: format!("{decay} not in [0, 1)") });
        }
        let entries = vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.clone(), v.as_detached_tensor().copy()?)))
            .collect::<Result<Vec<_>, NnError>>()?;
        Ok(Self { decay, entries, num_updates: 0 })
    }

    /// The decay `d`.
    #[must_use]
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// Number of [`Ema::update`] calls so far.
    #[must_use]
    pub fn num_updates(&self) -> u64 {
        self.num_updates
    }

    /// `shadow ← d·shadow + (1 − d)·θ` for every variable.
    ///
    /// # Errors
    /// Candle errors.
    pub fn update(&mut self) -> Result<(), NnError> {
        let d = self.decay;
        for (_, var, shadow) in &mut self.entries {
            let theta = var.as_detached_tensor();
            *shadow = (shadow.affine(d, 0.0)? + theta.affine(1.0 - d, 0.0)?)?.detach();
        }
        self.num_updates += 1;
        Ok(())
    }

    /// Overwrite the live variables with the averaged values (e.g. before exporting the
    /// final weights).
    ///
    /// # Errors
    /// Candle errors.
    pub fn copy_to_model(&self) -> Result<(), NnError> {
        for (_, var, shadow) in &self.entries {
            var.set(shadow)?;
        }
        Ok(())
    }

    /// Exchange live and averaged values. Call once before validation with EMA weights and
    /// once after to restore the training weights (two swaps are the identity).
    ///
    /// # Errors
    /// Candle errors.
    pub fn swap(&mut self) -> Result<(), NnError> {
        for (_, var, shadow) in &mut self.entries {
            let live = var.as_detached_tensor().copy()?;
            var.set(shadow)?;
            *shadow = live;
        }
        Ok(())
    }

    /// The averaged tensors by parameter name (for `model.safetensors`-style export with
    /// [`crate::Checkpoint::save`]).
    #[must_use]
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.entries.iter().map(|(n, _, s)| (n.clone(), s.clone())).collect()
    }

    /// [`Ema::tensors`] plus the update counter under [`EMA_COUNT_KEY`].
    ///
    /// # Errors
    /// Candle errors building the counter tensor.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>, NnError> {
        let mut out = self.tensors();
        let device = self.entries.first().map_or(candle_core::Device::Cpu, |e| e.1.device().clone());
        out.insert(EMA_COUNT_KEY.to_string(), Tensor::new(&[self.num_updates as i64], &device)?);
        Ok(out)
    }

    /// Restore the shadow (and counter, if present) from [`Ema::state_tensors`] output.
    ///
    /// # Errors
    /// [`NnError::StateMismatch`] for missing, extra or mis-shaped tensors.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<(), NnError> {
        let mismatch = |reason: String| NnError::StateMismatch { what: "ema".to_string(), reason };
        let has_count = state.contains_key(EMA_COUNT_KEY);
        if state.len() != self.entries.len() + usize::from(has_count) {
            return Err(mismatch(format!("{} tensors saved, {} parameters", state.len(), self.entries.len())));
        }
        let mut shadows = Vec::with_capacity(self.entries.len());
        for (name, var, _) in &self.entries {
            let t = state.get(name).ok_or_else(|| mismatch(format!("missing {name}")))?;
            if t.dims() != var.dims() {
                return Err(mismatch(format!("{name}: shape {:?}, parameter {:?}", t.dims(), var.dims())));
            }
            shadows.push(t.to_dtype(var.dtype())?.to_device(var.device())?);
        }
        if let Some(c) = state.get(EMA_COUNT_KEY) {
            match c.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?.as_slice() {
                [n] if *n >= 0 => self.num_updates = *n as u64,
                other => return Err(mismatch(format!("bad update counter {other:?}"))),
            }
        }
        for (e, s) in self.entries.iter_mut().zip(shadows) {
            e.2 = s;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn ema_math_swap_and_state() {
        let v = Var::from_tensor(&Tensor::new(&[1f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let vars = vec![("p.weight".to_string(), v.clone())];
        let mut ema = Ema::new(&vars, 0.9).unwrap();
        v.set(&Tensor::new(&[2f32, 0.0], &Device::Cpu).unwrap()).unwrap();
        ema.update().unwrap();
        v.set(&Tensor::new(&[4f32, 1.0], &Device::Cpu).unwrap()).unwrap();
        ema.update().unwrap();
        // s1 = 0.9·1 + 0.1·2 = 1.1, s2 = 0.9·1.1 + 0.1·4 = 1.39; second: −1.8 → −1.62 + 0.1 = −1.52.
        let s = ema.tensors()["p.weight"].to_vec1::<f32>().unwrap();
        assert!((s[0] - 1.39).abs() < 1e-6 && (s[1] + 1.52).abs() < 1e-6, "{s:?}");
        assert_eq!(ema.num_updates(), 2);
        ema.swap().unwrap();
        assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), s);
        ema.swap().unwrap();
        assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), vec![4.0, 1.0]);
        let state = ema.state_tensors().unwrap();
        let mut fresh = Ema::new(&vars, 0.9).unwrap();
        fresh.load_state(&state).unwrap();
        assert_eq!(fresh.num_updates(), 2);
        fresh.copy_to_model().unwrap();
        assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), s);
        assert!(Ema::new(&vars, 1.0).is_err());
        let mut bad = state.clone();
        bad.insert("p.weight".to_string(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
        assert!(matches!(fresh.load_state(&bad), Err(NnError::StateMismatch { .. })));
    }
}
