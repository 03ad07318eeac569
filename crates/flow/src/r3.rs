//! Flow matching on (R³)ⁿ, as in Proteina (Geffner et al., ICLR 2025, §3 and eqs. 1–3) and
//! PAR's decoder (Qu et al. 2026, §3.3).
//!
//! Convention: `t = 0` is noise `x₀ ~ N(0, I)`, `t = 1` is data `x₁`. The interpolant is
//! `x_t = t·x₁ + (1 − t)·x₀`, its velocity `v = x₁ − x₀`. Coordinates here are whatever unit
//! the model uses (nm for PAR); nothing in this module converts units.
//!
//! Tensor shapes: `x [B, N, 3]`, `mask [B, N]` (1.0 present / 0.0 padding), times `t [B]`
//! or a scalar when every sample shares one time.

use crate::FlowError;
use crate::schedule::{GSchedule, Integrator};
use candle_core::{D, DType, Tensor};
use rand::Rng;

/// Time after which the sampler always takes ODE steps (Proteina: the score
/// `(t·v − x)/(1 − t)` becomes ill-conditioned near `t = 1`).
pub const ODE_AFTER_T: f64 = 0.99;

/// `x_t = t·x₁ + (1 − t)·x₀`.
///
/// `x_noise, x_data: [B, N, 3]`, `t: [B]` → `[B, N, 3]`.
///
/// # Errors
/// Candle shape errors.
pub fn interpolate(x_noise: &Tensor, x_data: &Tensor, t: &Tensor) -> Result<Tensor, FlowError> {
    let t = t.reshape((t.elem_count(), 1, 1))?;
    Ok((x_data.broadcast_mul(&t)? + x_noise.broadcast_mul(&(1.0 - &t)?)?)?)
}

/// The flow-matching regression target `v = x₁ − x₀` (PAR eq. for L, Proteina eq. 4).
///
/// # Errors
/// Candle shape errors.
pub fn velocity_target(x_noise: &Tensor, x_data: &Tensor) -> Result<Tensor, FlowError> {
    Ok((x_data - x_noise)?)
}

/// Score of the noisy marginal from the velocity: `s = (t·v − x_t) / (1 − t)`
/// (Proteina `vf_to_score` with unit reference scale; PAR §3.3). Requires `t < 1`.
///
/// `x_t, v: [B, N, 3]`, scalar `t`.
///
/// # Errors
/// [`FlowError::BadParameter`] for `t ∉ [0, 1)`.
pub fn velocity_to_score(x_t: &Tensor, v: &Tensor, t: f64) -> Result<Tensor, FlowError> {
    if !(0.0..1.0).contains(&t) {
        return Err(FlowError::BadParameter { what: "score time", reason: format!("t = {t} must be in [0, 1)") });
    }
    Ok(((v * t)? - x_t)?.affine(1.0 / (1.0 - t), 0.0)?)
}

/// One-step estimate of the data from the velocity: `x̂₁ = x_t + (1 − t)·v`. Used for
/// self-conditioning and for PAR's scheduled sampling.
///
/// `x_t, v: [B, N, 3]`, `t: [B]`.
///
/// # Errors
/// Candle shape errors.
pub fn predict_data(x_t: &Tensor, v: &Tensor, t: &Tensor) -> Result<Tensor, FlowError> {
    let t = t.reshape((t.elem_count(), 1, 1))?;
    Ok((x_t + v.broadcast_mul(&(1.0 - &t)?)?)?)
}

/// Remove the (masked) centre of mass of each sample: `x [B, N, 3]`, `mask [B, N]`.
/// Padding positions are set to zero.
///
/// # Errors
/// Candle shape errors.
pub fn center(x: &Tensor, mask: &Tensor) -> Result<Tensor, FlowError> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?; // [B, N, 1]
    let count = m.sum_keepdim(1)?.clamp(1.0, f64::MAX)?; // [B, 1, 1]
    let com = x.broadcast_mul(&m)?.sum_keepdim(1)?.broadcast_div(&count)?; // [B, 1, 3]
    Ok(x.broadcast_sub(&com)?.broadcast_mul(&m)?)
}

/// How one Euler step moves `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepMode {
    /// `x ← x + v·dt`.
    Ode,
    /// `x ← x + (v + g·s)·dt + √(2·g·γ·dt)·ε`, with `s` from [`velocity_to_score`]
    /// (Proteina `step_euler`, "sc" mode; PAR's SDE). `γ` is the noise scale (PAR: 0.3–0.45);
    /// `γ = 1` samples the learned distribution, `γ < 1` is low-temperature sampling.
    Sde {
        /// g(t) at this step.
        g: f64,
        /// Noise scale γ ≥ 0.
        gamma: f64,
    },
}

/// One Euler(-Maruyama) step from time `t` to `t + dt`.
///
/// `x_t, v: [B, N, 3]`; `noise` is a standard-normal tensor of the same shape, required for
/// [`StepMode::Sde`] (draw it with [`crate::rng::randn`]).
///
/// # Errors
/// [`FlowError::BadParameter`] if an SDE step has no noise or negative `g`/`γ`; candle errors.
pub fn euler_step(
    x_t: &Tensor,
    v: &Tensor,
    t: f64,
    dt: f64,
    mode: StepMode,
    noise: Option<&Tensor>,
) -> Result<Tensor, FlowError> {
    match mode {
        StepMode::Ode => Ok((x_t + (v * dt)?)?),
        StepMode::Sde { g, gamma } => {
            if g < 0.0 || gamma < 0.0 {
                return Err(FlowError::BadParameter { what: "SDE step", reason: format!("g = {g}, gamma = {gamma}") });
            }
            let noise = noise.ok_or(FlowError::BadParameter { what: "SDE step", reason: "no noise given".into() })?;
            let score = velocity_to_score(x_t, v, t)?;
            let drift = (v + (score * g)?)?;
            let std = (2.0 * g * gamma * dt).sqrt();
            Ok(((x_t + (drift * dt)?)? + (noise * std)?)?)
        }
    }
}

/// A network (plus its conditioning) that predicts the velocity at `(x_t, t)`.
///
/// Implementors capture everything else they need (PAR's AR embedding `z`, masks, motif
/// constraints); the sampler knows only coordinates and time.
pub trait VelocityField {
    /// Velocity `[B, N, 3]` at `x_t [B, N, 3]` and time `t` (shared by the batch).
    /// `self_cond` is the previous step's data estimate `x̂₁ [B, N, 3]`, if any.
    ///
    /// # Errors
    /// Whatever the network returns.
    fn velocity(&self, x_t: &Tensor, t: f64, self_cond: Option<&Tensor>) -> Result<Tensor, FlowError>;
}

/// Settings of [`integrate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntegrateOptions {
    /// ODE or SDE (SDE steps switch to ODE after [`ODE_AFTER_T`]).
    pub integrator: Integrator,
    /// g(t) of the SDE.
    pub g: GSchedule,
    /// Noise scale γ of the SDE.
    pub gamma: f64,
    /// Feed the previous step's `x̂₁` back to the network.
    pub self_condition: bool,
}

/// A source of standard-normal noise tensors of a requested shape `[B, N, 3]`.
pub trait NoiseSource {
    /// Draw a tensor of the given shape on `device`.
    ///
    /// # Errors
    /// Candle errors.
    fn draw(&mut self, shape: &[usize], device: &candle_core::Device) -> candle_core::Result<Tensor>;
}

impl<R: Rng> NoiseSource for R {
    fn draw(&mut self, shape: &[usize], device: &candle_core::Device) -> candle_core::Result<Tensor> {
        crate::rng::randn(self, shape, device)
    }
}

/// Noise with one generator per batch element: sample `b` of every draw comes from
/// `rngs[b]`, so a sample's trajectory does not depend on which other samples share its batch.
#[derive(Debug)]
pub struct PerSampleNoise<'a, R: Rng>(pub &'a mut [R]);

impl<R: Rng> NoiseSource for PerSampleNoise<'_, R> {
    fn draw(&mut self, shape: &[usize], device: &candle_core::Device) -> candle_core::Result<Tensor> {
        let rest = &shape[1..];
        let parts = self.0.iter_mut().map(|r| crate::rng::randn(r, rest, device)).collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::stack(&parts, 0)
    }
}

/// Integrate from `x_start` at `grid[0]` to `grid[last]` (Proteina `full_simulation`).
///
/// `x_start, mask`: `[B, N, 3]`, `[B, N]`. Each step evaluates the field at `grid[k]` and
/// moves to `grid[k+1]`; the state is re-centred after every step. SDE noise comes from
/// `noise` (a seeded generator, or [`PerSampleNoise`]).
///
/// # Errors
/// Errors of the field or of candle.
pub fn integrate<F: VelocityField + ?Sized, N: NoiseSource + ?Sized>(
    field: &F,
    x_start: &Tensor,
    mask: &Tensor,
    grid: &[f64],
    opts: &IntegrateOptions,
    noise: &mut N,
) -> Result<Tensor, FlowError> {
    let mut x = center(x_start, mask)?;
    let mut x1_hat: Option<Tensor> = None;
    for w in grid.windows(2) {
        let (t, dt) = (w[0], w[1] - w[0]);
        let v = field.velocity(&x, t, x1_hat.as_ref().filter(|_| opts.self_condition))?;
        if opts.self_condition {
            let tt = Tensor::full(t as f32, x.dim(0)?, x.device())?;
            x1_hat = Some(predict_data(&x, &v, &tt)?.detach());
        }
        let mode = match opts.integrator {
            Integrator::Sde if t <= ODE_AFTER_T => StepMode::Sde { g: opts.g.g(t), gamma: opts.gamma },
            _ => StepMode::Ode,
        };
        let eps = match mode {
            StepMode::Sde { .. } => Some(noise.draw(x.dims(), x.device())?),
            StepMode::Ode => None,
        };
        x = center(&euler_step(&x, &v, t, dt, mode, eps.as_ref())?, mask)?;
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{randn, seeded};
    use crate::schedule::TimeGrid;
    use candle_core::Device;

    /// Exact velocity for data distributed as N(0, σ²·I) (per coordinate):
    /// `E[x₁ − x₀ | x_t] = x_t · (tσ² − (1 − t)) / (t²σ² + (1 − t)²)`.
    struct GaussianData {
        sigma: f64,
    }

    impl VelocityField for GaussianData {
        fn velocity(&self, x_t: &Tensor, t: f64, _: Option<&Tensor>) -> Result<Tensor, FlowError> {
            let s2 = self.sigma * self.sigma;
            let k = (t * s2 - (1.0 - t)) / (t * t * s2 + (1.0 - t).powi(2));
            Ok((x_t * k)?)
        }
    }

    fn std_of(x: &Tensor) -> f64 {
        let v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
        (v.iter().map(|&a| (f64::from(a) - mean).powi(2)).sum::<f64>() / n).sqrt()
    }

    fn run(integrator: Integrator, gamma: f64, grid: TimeGrid, steps: usize) -> f64 {
        let dev = Device::Cpu;
        let mut rng = seeded(11);
        let (b, n) = (64, 64);
        let x0 = randn(&mut rng, &[b, n, 3], &dev).unwrap();
        let mask = Tensor::ones((b, n), DType::F32, &dev).unwrap();
        let grid = grid.times(steps).unwrap();
        let opts = IntegrateOptions { integrator, g: GSchedule::InverseT, gamma, self_condition: false };
        let x = integrate(&GaussianData { sigma: 3.0 }, &x0, &mask, &grid, &opts, &mut rng).unwrap();
        std_of(&x)
    }

    #[test]
    fn ode_and_sde_recover_the_data_distribution() {
        // Centring removes 1/N of the variance: expected std is 3·√(1 − 1/64).
        let target = 3.0 * (1.0 - 1.0 / 64.0f64).sqrt();
        // Euler on a uniform grid is accurate enough at 500 steps; the log grid (coarse near
        // noise by design) underestimates the spread by ~4% at 200 steps.
        let ode = run(Integrator::Ode, 1.0, TimeGrid::Uniform, 500);
        let sde = run(Integrator::Sde, 1.0, TimeGrid::Uniform, 500);
        assert!((ode - target).abs() < 0.06, "ode std {ode}");
        assert!((sde - target).abs() < 0.1, "sde std {sde}");
        let ode_log = run(Integrator::Ode, 1.0, TimeGrid::Log { p: 2.0 }, 200);
        assert!((ode_log - target).abs() < 0.2, "log-grid ode std {ode_log}");
    }

    #[test]
    fn low_temperature_sde_shrinks_the_spread() {
        let full = run(Integrator::Sde, 1.0, TimeGrid::Log { p: 2.0 }, 200);
        let cold = run(Integrator::Sde, 0.3, TimeGrid::Log { p: 2.0 }, 200);
        assert!(cold < 0.9 * full, "gamma 0.3 std {cold} vs gamma 1 std {full}");
    }

    #[test]
    fn interpolant_target_score_and_prediction_agree() {
        let dev = Device::Cpu;
        let mut rng = seeded(5);
        let x0 = randn(&mut rng, &[2, 5, 3], &dev).unwrap();
        let x1 = randn(&mut rng, &[2, 5, 3], &dev).unwrap();
        let t = Tensor::new(&[0.25f32, 0.25], &dev).unwrap();
        let xt = interpolate(&x0, &x1, &t).unwrap();
        let v = velocity_target(&x0, &x1).unwrap();
        // Endpoints of the interpolant.
        let at0 = interpolate(&x0, &x1, &Tensor::new(&[0f32, 0.0], &dev).unwrap()).unwrap();
        let at1 = interpolate(&x0, &x1, &Tensor::new(&[1f32, 1.0], &dev).unwrap()).unwrap();
        let max = |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(max(&at0, &x0) < 1e-6 && max(&at1, &x1) < 1e-6);
        // The one-step prediction with the true velocity recovers the data exactly.
        assert!(max(&predict_data(&xt, &v, &t).unwrap(), &x1) < 1e-5);
        // The score of the conditional path N(t·x₁, (1−t)²) is −x₀/(1−t).
        let s = velocity_to_score(&xt, &v, 0.25).unwrap();
        assert!(max(&s, &(x0 * (-1.0 / 0.75)).unwrap()) < 1e-5);
        assert!(velocity_to_score(&xt, &v, 1.0).is_err());
    }

    #[test]
    fn centering_respects_the_mask() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[[1f32, 2.0, 3.0], [3.0, 2.0, 1.0], [100.0, 100.0, 100.0]]], &dev).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 0.0]], &dev).unwrap();
        let c = center(&x, &mask).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(c[0][0], [-1.0, 0.0, 1.0]);
        assert_eq!(c[0][1], [1.0, 0.0, -1.0]);
        assert_eq!(c[0][2], [0.0, 0.0, 0.0]);
    }

    #[test]
    fn per_sample_noise_is_independent_of_batch_company() {
        let mut alone = [seeded(7)];
        let a = PerSampleNoise(&mut alone).draw(&[1, 4, 3], &Device::Cpu).unwrap();
        let mut pair = [seeded(9), seeded(7)];
        let b = PerSampleNoise(&mut pair).draw(&[2, 4, 3], &Device::Cpu).unwrap();
        assert_eq!(a.get(0).unwrap().to_vec2::<f32>().unwrap(), b.get(1).unwrap().to_vec2::<f32>().unwrap());
    }

    #[test]
    fn sde_step_needs_noise() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 2, 3), DType::F32, &dev).unwrap();
        assert!(euler_step(&x, &x, 0.5, 0.1, StepMode::Sde { g: 1.0, gamma: 0.5 }, None).is_err());
        assert!(euler_step(&x, &x, 0.5, 0.1, StepMode::Ode, None).is_ok());
    }
}
