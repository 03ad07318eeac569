//! AdamW with checkpointable state, and global-norm gradient clipping.

use crate::NnError;
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// AdamW hyper-parameters (the learning rate is passed to every [`AdamW::step`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// Decay of the first moment (0.9).
    pub beta1: f64,
    /// Decay of the second moment (0.999).
    pub beta2: f64,
    /// Denominator epsilon, added to `sqrt(v̂)` (1e-8).
    pub eps: f64,
    /// Decoupled weight decay λ (0.0); the update subtracts `lr·λ·θ`.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamWConfig {
    /// Check the ranges: `0 ≤ β < 1`, `eps > 0`, `weight_decay ≥ 0`.
    ///
    /// # Errors
    /// [`NnError::BadParameter`] naming the field.
    pub fn validate(&self) -> Result<(), NnError> {
        let bad = |what: &'static str, v: f64| NnError::BadParameter { what, reason: format!("{v} out of range") };
        if !(0.0..1.0).contains(&self.beta1) {
            return Err(bad("adamw beta1", self.beta1));
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return Err(bad("adamw beta2", self.beta2));
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return Err(bad("adamw eps", self.eps));
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return Err(bad("adamw weight_decay", self.weight_decay));
        }
        Ok(())
    }
}

/// Default weight-decay predicate: decay tensors of rank ≥ 2 (Linear and embedding weights)
/// and not biases or LayerNorm scales (rank 1) or parameters named `*bias`.
#[must_use]
pub fn default_decay(name: &str, shape: &[usize]) -> bool {
    shape.len() >= 2 && !name.ends_with("bias")
}

#[derive(Debug)]
struct Param {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// AdamW (Loshchilov & Hutter 2019, Alg. 2; the update of `torch.optim.AdamW`):
///
/// ```text
/// t ← t + 1
/// θ ← θ − lr·λ·θ                      (only if decayed)
/// m ← β₁ m + (1 − β₁) g ;  v ← β₂ v + (1 − β₂) g²
/// θ ← θ − lr · (m / (1 − β₁ᵗ)) / (sqrt(v / (1 − β₂ᵗ)) + ε)
/// ```
///
/// Unlike candle's AdamW, the moments and step count are exposed through
/// [`AdamW::state_tensors`] / [`AdamW::load_state`] for exact resume. A variable without a
/// gradient in the store is left unchanged (moments too), as in PyTorch; `t` is global.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<Param>,
    cfg: AdamWConfig,
    step: u64,
}

/// Key of the step counter in [`AdamW::state_tensors`].
pub const ADAMW_STEP_KEY: &str = "step";
const M_PREFIX: &str = "exp_avg.";
const V_PREFIX: &str = "exp_avg_sq.";

impl AdamW {
    /// An optimizer over `vars` (e.g. [`crate::init::named_vars`]) with [`default_decay`].
    ///
    /// # Errors
    /// Invalid config; candle errors allocating the moments.
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self, NnError> {
        Self::with_decay(vars, cfg, default_decay)
    }

    /// As [`AdamW::new`] with a custom weight-decay predicate `decay(name, shape)`.
    ///
    /// # Errors
    /// Invalid config; candle errors allocating the moments.
    pub fn with_decay(
        vars: Vec<(String, Var)>,
        cfg: AdamWConfig,
        decay: impl Fn(&str, &[usize]) -> bool,
    ) -> Result<Self, NnError> {
        cfg.validate()?;
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let m = var.zeros_like()?;
                let v = var.zeros_like()?;
                let decay = decay(&name, var.dims());
                Ok(Param { name, var, m, v, decay })
            })
            .collect::<Result<Vec<_>, NnError>>()?;
        Ok(Self { params, cfg, step: 0 })
    }

    /// Number of steps taken (the `t` of the bias correction after the last step).
    #[must_use]
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The hyper-parameters.
    #[must_use]
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Names of the parameters that receive weight decay.
    #[must_use]
    pub fn decayed(&self) -> Vec<&str> {
        self.params.iter().filter(|p| p.decay).map(|p| p.name.as_str()).collect()
    }

    /// One update with learning rate `lr` from the gradients in `grads`.
    ///
    /// # Errors
    /// Candle errors (e.g. a gradient whose shape differs from its variable).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<(), NnError> {
        self.step += 1;
        let t = self.step as f64;
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.cfg;
        let bc1 = 1.0 - beta1.powf(t);
        let bc2 = 1.0 - beta2.powf(t);
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let g = g.detach();
            let m = ((p.m.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?).detach();
            let v = ((p.v.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?).detach();
            let mut theta = p.var.as_detached_tensor();
            if p.decay && weight_decay > 0.0 {
                theta = theta.affine(1.0 - lr * weight_decay, 0.0)?;
            }
            let denom = v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, eps)?;
            let update = m.affine(lr / bc1, 0.0)?.div(&denom)?;
            p.var.set(&(theta - update)?)?;
            p.m = m;
            p.v = v;
        }
        Ok(())
    }

    /// Moments and step count as named tensors: `exp_avg.<name>`, `exp_avg_sq.<name>` and
    /// `step` (an `i64` scalar of shape `[1]`), ready for `safetensors` (exact round trip).
    ///
    /// # Errors
    /// Candle errors building the step tensor.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>, NnError> {
        let mut out = HashMap::with_capacity(2 * self.params.len() + 1);
        for p in &self.params {
            out.insert(format!("{M_PREFIX}{}", p.name), p.m.clone());
            out.insert(format!("{V_PREFIX}{}", p.name), p.v.clone());
        }
        let device = self.params.first().map_or(candle_core::Device::Cpu, |p| p.var.device().clone());
        out.insert(ADAMW_STEP_KEY.to_string(), Tensor::new(&[self.step as i64], &device)?);
        Ok(out)
    }

    /// Restore moments and step count saved by [`AdamW::state_tensors`]. Every parameter
    /// must be present with its shape; extra entries are an error too.
    ///
    /// # Errors
    /// [`NnError::StateMismatch`] naming the missing, extra or mis-shaped tensor.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<(), NnError> {
        let mismatch = |reason: String| NnError::StateMismatch { what: "optimizer".to_string(), reason };
        if state.len() != 2 * self.params.len() + 1 {
            return Err(mismatch(format!("{} tensors saved, {} expected", state.len(), 2 * self.params.len() + 1)));
        }
        let step = state.get(ADAMW_STEP_KEY).ok_or_else(|| mismatch("no step counter".to_string()))?;
        let step = step.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
        let step = match step.as_slice() {
            [s] if *s >= 0 => *s as u64,
            _ => return Err(mismatch(format!("bad step counter {step:?}"))),
        };
        let mut loaded = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let get = |prefix: &str| -> Result<Tensor, NnError> {
                let key = format!("{prefix}{}", p.name);
                let t = state.get(&key).ok_or_else(|| mismatch(format!("missing {key}")))?;
                if t.dims() != p.var.dims() {
                    return Err(mismatch(format!("{key}: shape {:?}, parameter {:?}", t.dims(), p.var.dims())));
                }
                Ok(t.to_dtype(p.var.dtype())?.to_device(p.var.device())?)
            };
            loaded.push((get(M_PREFIX)?, get(V_PREFIX)?));
        }
        for (p, (m, v)) in self.params.iter_mut().zip(loaded) {
            p.m = m;
            p.v = v;
        }
        self.step = step;
        Ok(())
    }
}

/// Global L2 norm of the gradients of `vars` (missing gradients count as zero), in f64.
///
/// # Errors
/// Candle errors.
pub fn grad_norm(grads: &GradStore, vars: &[(String, Var)]) -> Result<f64, NnError> {
    let mut total = 0f64;
    for (_, var) in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    Ok(total.sqrt())
}

/// Clip the gradients of `vars` in place to a global L2 norm of at most `max_norm`
/// (Pascanu et al. 2013; `torch.nn.utils.clip_grad_norm_`: scale by
/// `max_norm / (norm + 1e-6)` when `norm > max_norm`). Returns the norm **before** clipping.
/// A non-finite norm leaves the gradients untouched (the caller should skip the step).
///
/// # Errors
/// Candle errors.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[(String, Var)], max_norm: f64) -> Result<f64, NnError> {
    let norm = grad_norm(grads, vars)?;
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for (_, var) in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), g.affine(scale, 0.0)?);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn var(name: &str, v: &[f32]) -> (String, Var) {
        (name.to_string(), Var::from_tensor(&Tensor::new(v, &Device::Cpu).unwrap()).unwrap())
    }

    #[test]
    fn first_step_matches_hand_computation() {
        // Rank-2 weight (decayed) and a bias (not decayed).
        let w = Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0], [0.5, 3.0]], &Device::Cpu).unwrap()).unwrap();
        let b = var("lin.bias", &[0.25, -0.75]);
        let vars = vec![("lin.weight".to_string(), w.clone()), b.clone()];
        let cfg = AdamWConfig { weight_decay: 0.1, ..AdamWConfig::default() };
        let mut opt = AdamW::new(vars, cfg).unwrap();
        assert_eq!(opt.decayed(), vec!["lin.weight"]);
        // loss = Σ c ⊙ w + Σ b²  →  g_w = c, g_b = 2b.
        let c = Tensor::new(&[[0.5f32, -1.0], [2.0, 1e-3]], &Device::Cpu).unwrap();
        let loss = ((w.as_tensor() * &c).unwrap().sum_all().unwrap() + b.1.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let lr = 0.01;
        opt.step(&grads, lr).unwrap();
        // t = 1: m̂ = g, v̂ = g² → update = lr·g/(|g| + eps).
        let upd = |theta: f64, g: f64, decay: bool| {
            let th = if decay { theta * (1.0 - lr * 0.1) } else { theta };
            th - lr * g / (g.abs() + 1e-8)
        };
        let got_w = w.as_tensor().to_vec2::<f32>().unwrap();
        let (w0, c0) = ([[1.0, -2.0], [0.5, 3.0]], [[0.5, -1.0], [2.0, 1e-3]]);
        for i in 0..2 {
            for j in 0..2 {
                let want = upd(w0[i][j], c0[i][j], true);
                assert!((f64::from(got_w[i][j]) - want).abs() < 1e-6, "w[{i}][{j}] {} vs {want}", got_w[i][j]);
            }
        }
        let got_b = b.1.as_tensor().to_vec1::<f32>().unwrap();
        for (j, b0) in [0.25f64, -0.75].into_iter().enumerate() {
            let want = upd(b0, 2.0 * b0, false);
            assert!((f64::from(got_b[j]) - want).abs() < 1e-6);
        }
        assert_eq!(opt.step_count(), 1);
    }

    #[test]
    fn adamw_decreases_a_quadratic() {
        let x = var("x", &[3.0, -2.0, 0.5]);
        let target = Tensor::new(&[1f32, 1.0, 1.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![x.clone()], AdamWConfig::default()).unwrap();
        let loss_of = || (x.1.as_tensor() - &target).unwrap().sqr().unwrap().sum_all().unwrap();
        let mut prev = loss_of().to_scalar::<f32>().unwrap();
        let first = prev;
        for _ in 0..20 {
            let loss = loss_of();
            let grads = loss.backward().unwrap();
            opt.step(&grads, 0.05).unwrap();
            let now = loss_of().to_scalar::<f32>().unwrap();
            assert!(now < prev, "{now} >= {prev}");
            prev = now;
        }
        assert!(prev < 0.6 * first, "{prev} vs {first}");
    }

    #[test]
    fn state_round_trip_and_mismatch() {
        let x = var("x", &[1.0, 2.0]);
        let mut opt = AdamW::new(vec![x.clone()], AdamWConfig::default()).unwrap();
        let grads = x.1.as_tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&grads, 0.1).unwrap();
        let state = opt.state_tensors().unwrap();
        assert_eq!(state.len(), 3);
        let mut fresh = AdamW::new(vec![x.clone()], AdamWConfig::default()).unwrap();
        fresh.load_state(&state).unwrap();
        assert_eq!(fresh.step_count(), 1);
        assert_eq!(fresh.params[0].v.to_vec1::<f32>().unwrap(), opt.params[0].v.to_vec1::<f32>().unwrap());
        let y = var("y", &[1.0, 2.0]);
        let err = AdamW::new(vec![y], AdamWConfig::default()).unwrap().load_state(&state).unwrap_err().to_string();
        assert!(err.contains("exp_avg.y"), "{err}");
        assert!(AdamW::new(vec![], AdamWConfig { beta2: 1.0, ..AdamWConfig::default() }).is_err());
    }

    #[test]
    fn clipping_scales_to_max_norm_and_returns_pre_clip_norm() {
        let a = var("a", &[3.0]);
        let b = var("b", &[4.0]);
        let vars = vec![a.clone(), b.clone()];
        // loss = a·3/... : grads are (3, 4) for loss = 1.5 a² / 3 ... simply use a·3 + b·4.
        let loss = (a.1.as_tensor().affine(3.0, 0.0).unwrap() + b.1.as_tensor().affine(4.0, 0.0).unwrap()).unwrap().sum_all().unwrap();
        let mut grads = loss.backward().unwrap();
        let n = clip_grad_norm(&mut grads, &vars, 1.0).unwrap();
        assert!((n - 5.0).abs() < 1e-9);
        let after = grad_norm(&grads, &vars).unwrap();
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        let ga = grads.get(a.1.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((f64::from(ga) - 0.6).abs() < 1e-5);
        // Below the threshold nothing changes.
        let n2 = clip_grad_norm(&mut grads, &vars, 10.0).unwrap();
        assert!((n2 - after).abs() < 1e-12);
    }
}
