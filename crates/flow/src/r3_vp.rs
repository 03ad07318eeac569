//! Variance-preserving (VP) SDE diffusion of translations, the R³ half of FrameDiff's SE(3)
//! diffusion (Yim et al., ICML 2023, §3, reference `data/r3_diffuser.py`), with the settings
//! of ConfRover and STAR-MD (`b_min = 0.1`, `b_max = 20`, coordinate scaling 0.1).
//!
//! **Time convention (SE(3) diffusion, opposite to [`crate::r3`]): `t = 0` is data, `t = 1`
//! is noise.**
//!
//! **Units.** Positions cross this API in Å. Internally they are multiplied by
//! `coordinate_scaling` `s` (0.1: Å → nm), `y = s·x`. Scores are gradients of the log density
//! with respect to the *scaled* coordinates, in 1/(scaled unit) (nm⁻¹ for `s = 0.1`), as in
//! FrameDiff, so they are the targets the networks regress.
//!
//! **Maths** (Song et al., ICLR 2021, VP SDE eq. 11). Forward:
//! `dy = −½β(t) y dt + √β(t) dW` with `β(t) = b_min + t (b_max − b_min)`. With
//! `B(t) = ∫₀ᵗ β = t b_min + ½ t² (b_max − b_min)` the marginal is
//! `y_t | y₀ ~ N(e^{−B/2} y₀, (1 − e^{−B}) I)`, whose score is
//! `∇ log p_{t|0}(y_t | y₀) = −(y_t − e^{−B/2} y₀) / (1 − e^{−B})`.
//! Reverse time (Song et al. eq. 6, probability-flow ODE eq. 13), integrated from `t` to
//! `t − dt` by Euler(–Maruyama):
//! `y ← y − [f − g² ∇log p] dt + γ g √dt z` (SDE) or `y ← y − [f − ½ g² ∇log p] dt` (ODE),
//! with `f = −½β y`, `g = √β` and noise scale `γ`.
//!
//! **Loss weight** (FrameDiff §4, DSM weights `λ_t = 1/E‖∇ log p_{t|0}‖²` per coordinate):
//! divide the squared score error by [`VpDiffuser::score_scaling`]`(t)² = 1/(1 − e^{−B(t)})`.

use candle_core::Tensor;
use protforge_se3::Vec3;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::FlowError;
use crate::schedule::Integrator;
use crate::se3_diffusion::{ReverseStep, check_len, check_time};

/// The noise rate β(t) of the forward SDE (per unit diffusion time, dimensionless).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BetaSchedule {
    /// `β(t) = b_min + t (b_max − b_min)` (FrameDiff, ConfRover, STAR-MD: 0.1 → 20).
    Linear {
        /// β(0), ≥ 0.
        b_min: f64,
        /// β(1), ≥ `b_min` and > 0.
        b_max: f64,
    },
}

impl Default for BetaSchedule {
    /// Linear from 0.1 to 20 (FrameDiff, ConfRover `r3.min_b / max_b`).
    fn default() -> Self {
        Self::Linear { b_min: 0.1, b_max: 20.0 }
    }
}

impl BetaSchedule {
    /// Check the parameters.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] unless `0 ≤ b_min ≤ b_max`, `b_max > 0`, both finite.
    pub fn validate(&self) -> Result<(), FlowError> {
        match *self {
            Self::Linear { b_min, b_max } => {
                if b_min.is_finite() && b_max.is_finite() && b_min >= 0.0 && b_max >= b_min && b_max > 0.0 {
                    Ok(())
                } else {
                    Err(FlowError::BadParameter {
                        what: "linear beta schedule",
                        reason: format!("b_min = {b_min}, b_max = {b_max} (need 0 ≤ b_min ≤ b_max, b_max > 0)"),
                    })
                }
            }
        }
    }

    /// β(t); `t` is clamped to [0, 1].
    #[must_use]
    pub fn beta(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match *self {
            Self::Linear { b_min, b_max } => b_min + t * (b_max - b_min),
        }
    }

    /// `B(t) = ∫₀ᵗ β(s) ds` (FrameDiff's `marginal_b_t`); `t` is clamped to [0, 1].
    #[must_use]
    pub fn integral(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match *self {
            Self::Linear { b_min, b_max } => t * b_min + 0.5 * t * t * (b_max - b_min),
        }
    }
}

/// Settings of the translation diffusion (serde: `{"schedule": {"kind": "linear", "b_min": 0.1,
/// "b_max": 20.0}, "coordinate_scaling": 0.1}`; missing fields take the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VpConfig {
    /// β(t).
    pub schedule: BetaSchedule,
    /// Factor from Å to the diffusion's coordinates (0.1: Å → nm), > 0.
    pub coordinate_scaling: f64,
}

impl Default for VpConfig {
    fn default() -> Self {
        Self { schedule: BetaSchedule::default(), coordinate_scaling: 0.1 }
    }
}

impl VpConfig {
    /// Check the parameters.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for a bad schedule or a non-positive scaling.
    pub fn validate(&self) -> Result<(), FlowError> {
        self.schedule.validate()?;
        if !(self.coordinate_scaling.is_finite() && self.coordinate_scaling > 0.0) {
            return Err(FlowError::BadParameter {
                what: "coordinate_scaling",
                reason: format!("{} is not a positive number", self.coordinate_scaling),
            });
        }
        Ok(())
    }
}

/// The VP-SDE diffuser of translations (FrameDiff's `R3Diffuser`). See the module docs for the
/// units: positions in Å, scores in 1/(scaled unit).
#[derive(Debug, Clone)]
pub struct VpDiffuser {
    cfg: VpConfig,
}

/// A standard-normal 3-vector from `rng`.
pub(crate) fn randn3<R: Rng + ?Sized>(rng: &mut R) -> Vec3 {
    Vec3::new(rng.sample(StandardNormal), rng.sample(StandardNormal), rng.sample(StandardNormal))
}

impl VpDiffuser {
    /// A diffuser with validated settings.
    ///
    /// # Errors
    /// As [`VpConfig::validate`].
    pub fn new(cfg: VpConfig) -> Result<Self, FlowError> {
        cfg.validate()?;
        Ok(Self { cfg })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &VpConfig {
        &self.cfg
    }

    /// Å → scaled coordinates.
    #[must_use]
    pub fn scale(&self, x_ang: &Vec3) -> Vec3 {
        x_ang * self.cfg.coordinate_scaling
    }

    /// Scaled coordinates → Å.
    #[must_use]
    pub fn unscale(&self, y: &Vec3) -> Vec3 {
        y / self.cfg.coordinate_scaling
    }

    /// Mean coefficient `e^{−B(t)/2}` of `y_t | y₀` (`√ᾱ_t`); 1 at `t = 0`.
    #[must_use]
    pub fn mean_coef(&self, t: f64) -> f64 {
        (-0.5 * self.cfg.schedule.integral(t)).exp()
    }

    /// Conditional variance `1 − e^{−B(t)}` of `y_t | y₀` per coordinate (scaled units²);
    /// 0 at `t = 0`.
    #[must_use]
    pub fn conditional_var(&self, t: f64) -> f64 {
        -(-self.cfg.schedule.integral(t)).exp_m1()
    }

    /// Drift coefficient `−½β(t)`: the forward drift is `drift_coef(t) · y`.
    #[must_use]
    pub fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.cfg.schedule.beta(t)
    }

    /// Diffusion coefficient `g(t) = √β(t)`.
    #[must_use]
    pub fn diffusion_coef(&self, t: f64) -> f64 {
        self.cfg.schedule.beta(t).sqrt()
    }

    /// FrameDiff's translation score scaling `1/√(1 − e^{−B(t)})`, the RMS of one coordinate
    /// of the conditional score. Divide squared score errors by its square (DSM weight).
    /// Infinite at `t = 0`.
    #[must_use]
    pub fn score_scaling(&self, t: f64) -> f64 {
        1.0 / self.conditional_var(t).sqrt()
    }

    /// Sample `x_t ~ p_{t|0}(· | x₀)` for each position and return it (Å) with the conditional
    /// score (1/scaled unit). Draws 3 normals per position, in order.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for `t ∉ (0, 1]`.
    pub fn forward_marginal<R: Rng + ?Sized>(
        &self,
        x0_ang: &[Vec3],
        t: f64,
        rng: &mut R,
    ) -> Result<(Vec<Vec3>, Vec<Vec3>), FlowError> {
        check_time(t)?;
        let (a, var) = (self.mean_coef(t), self.conditional_var(t));
        let std = var.sqrt();
        let mut x_t = Vec::with_capacity(x0_ang.len());
        let mut score = Vec::with_capacity(x0_ang.len());
        for x0 in x0_ang {
            let z = randn3(rng);
            x_t.push(self.unscale(&(self.scale(x0) * a + z * std)));
            score.push(-z / std);
        }
        Ok((x_t, score))
    }

    /// Conditional score `−(y_t − e^{−B/2} y₀)/(1 − e^{−B})` of `x_t` (Å) given `x₀` (Å), in
    /// 1/(scaled unit) (FrameDiff `calc_trans_score` with `scale=True`).
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for `t ∉ (0, 1]` or different lengths.
    pub fn score(&self, x_t_ang: &[Vec3], x0_ang: &[Vec3], t: f64) -> Result<Vec<Vec3>, FlowError> {
        check_time(t)?;
        check_len("VP score", x_t_ang.len(), x0_ang.len())?;
        let (a, var) = (self.mean_coef(t), self.conditional_var(t));
        Ok(x_t_ang.iter().zip(x0_ang).map(|(xt, x0)| -(self.scale(xt) - self.scale(x0) * a) / var).collect())
    }

    /// Tweedie's estimate of the data from a score: `x₀ = (y_t + (1 − e^{−B}) s) / e^{−B/2}`,
    /// unscaled to Å (FrameDiff `calc_trans_0`). The inverse of [`Self::score`].
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for `t ∉ (0, 1]` or different lengths.
    pub fn data_from_score(&self, x_t_ang: &[Vec3], score: &[Vec3], t: f64) -> Result<Vec<Vec3>, FlowError> {
        check_time(t)?;
        check_len("VP data_from_score", x_t_ang.len(), score.len())?;
        let (a, var) = (self.mean_coef(t), self.conditional_var(t));
        Ok(x_t_ang.iter().zip(score).map(|(xt, s)| self.unscale(&((self.scale(xt) + s * var) / a))).collect())
    }

    /// One reverse step from `step.t` to `step.t − step.dt` (module docs), positions in Å,
    /// `score` in 1/(scaled unit). Positions whose `mask` entry is false are returned
    /// unchanged; with `step.center` the centre of the masked positions is moved to the origin.
    /// SDE steps draw 3 normals per position (also for masked-out ones, so the stream does not
    /// depend on the mask); ODE steps draw nothing.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for a bad step (see [`ReverseStep::validate`]) or
    /// mismatched lengths.
    pub fn reverse_step<R: Rng + ?Sized>(
        &self,
        x_t_ang: &[Vec3],
        score: &[Vec3],
        step: &ReverseStep,
        mask: Option<&[bool]>,
        rng: &mut R,
    ) -> Result<Vec<Vec3>, FlowError> {
        step.validate()?;
        check_len("VP reverse step scores", x_t_ang.len(), score.len())?;
        if let Some(m) = mask {
            check_len("VP reverse step mask", x_t_ang.len(), m.len())?;
        }
        let (t, dt) = (step.t, step.dt);
        let f = self.drift_coef(t);
        let g2 = self.cfg.schedule.beta(t);
        let noise_std = step.noise_scale * (g2 * dt).sqrt();
        let mut out = Vec::with_capacity(x_t_ang.len());
        for (i, (x, s)) in x_t_ang.iter().zip(score).enumerate() {
            let y = self.scale(x);
            let y_new = match step.integrator {
                Integrator::Sde => y - (y * f - s * g2) * dt + randn3(rng) * noise_std,
                Integrator::Ode => y - (y * f - s * (0.5 * g2)) * dt,
            };
            let keep = mask.is_some_and(|m| !m[i]);
            out.push(if keep { *x } else { self.unscale(&y_new) });
        }
        if step.center {
            center_masked(&mut out, mask);
        }
        Ok(out)
    }

    /// `n` positions from the reference distribution `N(0, I)` in scaled units, returned in Å
    /// (std `1/coordinate_scaling` Å per coordinate). Draws 3 normals per position.
    pub fn sample_ref<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<Vec3> {
        (0..n).map(|_| self.unscale(&randn3(rng))).collect()
    }

    /// Batched, differentiable conditional score (for scores computed from a network's
    /// prediction of the data, FrameDiff `calc_trans_score`).
    ///
    /// `trans_t, trans_0: [B, L, 3]` in Å, `t`: one time per batch element (each in (0, 1]) →
    /// `[B, L, 3]` in 1/(scaled unit), same dtype as `trans_t`.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for a bad time or `t.len() ≠ B`; candle shape errors.
    pub fn score_tensor(&self, trans_t: &Tensor, trans_0: &Tensor, t: &[f64]) -> Result<Tensor, FlowError> {
        let (b, _, _) = trans_t.dims3()?;
        check_len("VP score_tensor times", b, t.len())?;
        let s = self.cfg.coordinate_scaling;
        let mut coef_t = Vec::with_capacity(b);
        let mut coef_0 = Vec::with_capacity(b);
        for &tb in t {
            check_time(tb)?;
            let (a, var) = (self.mean_coef(tb), self.conditional_var(tb));
            coef_t.push((-s / var) as f32);
            coef_0.push((s * a / var) as f32);
        }
        let dev = trans_t.device();
        let dtype = trans_t.dtype();
        let coef_t = Tensor::from_vec(coef_t, (b, 1, 1), dev)?.to_dtype(dtype)?; // [B, 1, 1]
        let coef_0 = Tensor::from_vec(coef_0, (b, 1, 1), dev)?.to_dtype(dtype)?; // [B, 1, 1]
        Ok((trans_t.broadcast_mul(&coef_t)? + trans_0.to_dtype(dtype)?.broadcast_mul(&coef_0)?)?)
    }
}

/// Subtract the centre of the masked positions from the masked positions (all positions
/// without a mask). Nothing happens when no position is masked in.
pub(crate) fn center_masked(x: &mut [Vec3], mask: Option<&[bool]>) {
    let on = |i: usize| mask.is_none_or(|m| m[i]);
    let (mut sum, mut count) = (Vec3::zeros(), 0usize);
    for (i, p) in x.iter().enumerate() {
        if on(i) {
            sum += p;
            count += 1;
        }
    }
    if count == 0 {
        return;
    }
    let com = sum / count as f64;
    for (i, p) in x.iter_mut().enumerate() {
        if on(i) {
            *p -= com;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use candle_core::{Device, Var};

    fn vp() -> VpDiffuser {
        VpDiffuser::new(VpConfig::default()).unwrap()
    }

    #[test]
    fn schedule_endpoints_monotonicity_and_derivative() {
        let d = vp();
        let sch = d.config().schedule;
        assert!((sch.beta(0.0) - 0.1).abs() < 1e-12 && (sch.beta(1.0) - 20.0).abs() < 1e-12);
        assert!((sch.integral(1.0) - (0.1 + 0.5 * 19.9)).abs() < 1e-12);
        assert_eq!(sch.integral(0.0), 0.0);
        assert_eq!(d.mean_coef(0.0), 1.0);
        assert_eq!(d.conditional_var(0.0), 0.0);
        let ts: Vec<f64> = (0..=200).map(|i| f64::from(i) / 200.0).collect();
        for w in ts.windows(2) {
            assert!(d.mean_coef(w[1]) < d.mean_coef(w[0]));
            assert!(d.conditional_var(w[1]) > d.conditional_var(w[0]));
            assert!(d.score_scaling(w[1]) < d.score_scaling(w[0]));
            // dB/dt = β and mean² + var = 1 (variance preserving).
            let mid = 0.5 * (w[0] + w[1]);
            let fd = (sch.integral(w[1]) - sch.integral(w[0])) / (w[1] - w[0]);
            assert!((fd - sch.beta(mid)).abs() < 1e-9);
            assert!((d.mean_coef(mid).powi(2) + d.conditional_var(mid) - 1.0).abs() < 1e-12);
            assert!((d.diffusion_coef(mid).powi(2) - sch.beta(mid)).abs() < 1e-12);
        }
        // At t = 1 almost all signal is gone: e^{-B(1)/2} ≈ 0.0066.
        assert!(d.mean_coef(1.0) < 0.007);
    }

    #[test]
    fn forward_marginal_moments_match_closed_form() {
        let d = vp();
        let x0 = Vec3::new(12.0, -7.0, 3.0); // Å
        let n = 40_000;
        let mut rng = seeded(1);
        for t in [0.02, 0.3, 1.0] {
            let (xt, scores) = d.forward_marginal(&vec![x0; n], t, &mut rng).unwrap();
            let ys: Vec<Vec3> = xt.iter().map(|x| d.scale(x)).collect();
            let mean = ys.iter().sum::<Vec3>() / n as f64;
            let var = ys.iter().map(|y| (y - mean).component_mul(&(y - mean))).sum::<Vec3>() / n as f64;
            let (m_ref, v_ref) = (d.scale(&x0) * d.mean_coef(t), d.conditional_var(t));
            let se = (v_ref / n as f64).sqrt();
            assert!((mean - m_ref).amax() < 5.0 * se, "t {t}: mean {mean:?} vs {m_ref:?}");
            for k in 0..3 {
                assert!((var[k] / v_ref - 1.0).abs() < 0.03, "t {t}: var {} vs {v_ref}", var[k]);
            }
            // The returned score equals the closed-form conditional score of the sample.
            let exact = d.score(&xt[..10], &vec![x0; 10], t).unwrap();
            for (a, b) in exact.iter().zip(&scores[..10]) {
                assert!((a - b).norm() < 1e-9 * (1.0 + b.norm()), "{a:?} vs {b:?}");
            }
            // E‖s‖²/3 = score_scaling².
            let ms = scores.iter().map(Vec3::norm_squared).sum::<f64>() / (3 * n) as f64;
            assert!((ms / d.score_scaling(t).powi(2) - 1.0).abs() < 0.03);
        }
    }

    #[test]
    fn score_is_the_gradient_of_the_log_density_and_tweedie_inverts_it() {
        let d = vp();
        let t = 0.4;
        let x0 = Vec3::new(3.0, 1.0, -2.0);
        let xt = Vec3::new(-5.0, 8.0, 1.0);
        let (a, var) = (d.mean_coef(t), d.conditional_var(t));
        let log_p = |y: Vec3| -(y - d.scale(&x0) * a).norm_squared() / (2.0 * var);
        let s = d.score(&[xt], &[x0], t).unwrap()[0];
        let h = 1e-6;
        for k in 0..3 {
            let mut e = Vec3::zeros();
            e[k] = h;
            let y = d.scale(&xt);
            let fd = (log_p(y + e) - log_p(y - e)) / (2.0 * h);
            assert!((fd - s[k]).abs() < 1e-5, "component {k}: {fd} vs {}", s[k]);
        }
        let back = d.data_from_score(&[xt], &[s], t).unwrap()[0];
        assert!((back - x0).norm() < 1e-9);
    }

    /// Run the reverse process with the exact score of a point mass at `x_star` and return
    /// the final positions (Å).
    fn reverse_point_mass(integrator: Integrator, x_star: Vec3, n: usize, steps: usize) -> Vec<Vec3> {
        let d = vp();
        let mut rng = seeded(9);
        let mut x = d.sample_ref(n, &mut rng);
        let t_min = 0.01;
        for k in 0..steps {
            let t = 1.0 - (1.0 - t_min) * k as f64 / steps as f64;
            let dt = (1.0 - t_min) / steps as f64;
            let s = d.score(&x, &vec![x_star; n], t).unwrap();
            let step = ReverseStep { t, dt, integrator, noise_scale: 1.0, center: false };
            x = d.reverse_step(&x, &s, &step, None, &mut rng).unwrap();
        }
        x
    }

    #[test]
    fn reverse_process_with_exact_score_recovers_the_marginal_at_t_min() {
        let d = vp();
        let x_star = Vec3::new(8.0, -4.0, 2.0);
        let n = 4000;
        // Exact marginal at t_min = 0.01: mean e^{−B/2}·x* ≈ 0.999·x*, std √var / s ≈ 0.45 Å.
        let want_mean = x_star * d.mean_coef(0.01);
        let want_std = d.conditional_var(0.01).sqrt() / 0.1;
        for integrator in [Integrator::Sde, Integrator::Ode] {
            // 200 steps (the default) concentrate at the point; Euler–Maruyama overestimates
            // the final spread by ~25% there (stiff near t_min), and converges with more steps.
            for (steps, tol) in [(200, 0.3), (1000, 0.05)] {
                let x = reverse_point_mass(integrator, x_star, n, steps);
                let mean = x.iter().sum::<Vec3>() / n as f64;
                let rms = (x.iter().map(|p| (p - mean).norm_squared()).sum::<f64>() / (3 * n) as f64).sqrt();
                assert!((mean - want_mean).norm() < 0.05, "{integrator:?} {steps}: mean {mean:?}");
                assert!((rms / want_std - 1.0).abs() < tol, "{integrator:?} {steps}: std {rms} vs {want_std}");
            }
        }
    }

    #[test]
    fn reverse_step_masks_centres_and_is_reproducible() {
        let d = vp();
        let x: Vec<Vec3> = (0..5).map(|i| Vec3::new(f64::from(i), 2.0, -1.0) * 3.0).collect();
        let s = vec![Vec3::new(0.5, -0.2, 0.1); 5];
        let mask = [true, false, true, true, false];
        let step = ReverseStep { t: 0.5, dt: 0.01, integrator: Integrator::Sde, noise_scale: 1.0, center: true };
        let a = d.reverse_step(&x, &s, &step, Some(&mask), &mut seeded(4)).unwrap();
        let b = d.reverse_step(&x, &s, &step, Some(&mask), &mut seeded(4)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[1], x[1]);
        assert_eq!(a[4], x[4]);
        let com = (a[0] + a[2] + a[3]) / 3.0;
        assert!(com.norm() < 1e-12);
        let c = d.reverse_step(&x, &s, &step, Some(&mask), &mut seeded(5)).unwrap();
        assert_ne!(a, c);
        // Errors: bad time step, mismatched lengths.
        let bad = ReverseStep { dt: 0.6, ..step };
        assert!(d.reverse_step(&x, &s, &bad, None, &mut seeded(4)).is_err());
        assert!(d.reverse_step(&x, &s[..4], &step, None, &mut seeded(4)).is_err());
        assert!(d.forward_marginal(&x, 0.0, &mut seeded(1)).is_err());
        assert!(d.score(&x, &x, 1.5).is_err());
    }

    #[test]
    fn tensor_score_matches_scalar_and_has_gradients() {
        let d = vp();
        let dev = Device::Cpu;
        let mut rng = seeded(3);
        let (b, l) = (2, 4);
        let x0: Vec<Vec3> = (0..b * l).map(|_| randn3(&mut rng) * 10.0).collect();
        let xt: Vec<Vec3> = (0..b * l).map(|_| randn3(&mut rng) * 10.0).collect();
        let ts = [0.1, 0.8];
        let flat = |v: &[Vec3]| v.iter().flat_map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect::<Vec<f32>>();
        let tt = Tensor::from_vec(flat(&xt), (b, l, 3), &dev).unwrap();
        let t0 = Var::from_tensor(&Tensor::from_vec(flat(&x0), (b, l, 3), &dev).unwrap()).unwrap();
        let s = d.score_tensor(&tt, t0.as_tensor(), &ts).unwrap();
        let got = s.to_vec3::<f32>().unwrap();
        for bi in 0..b {
            let want = d.score(&xt[bi * l..(bi + 1) * l], &x0[bi * l..(bi + 1) * l], ts[bi]).unwrap();
            for li in 0..l {
                for k in 0..3 {
                    let w = want[li][k];
                    assert!((f64::from(got[bi][li][k]) - w).abs() < 1e-4 * (1.0 + w.abs()));
                }
            }
        }
        // ∂ Σ s / ∂ x₀ = s·e^{−B/2}/var per coordinate.
        let grads = s.sum_all().unwrap().backward().unwrap();
        let g = grads.get(t0.as_tensor()).unwrap().to_vec3::<f32>().unwrap();
        for bi in 0..b {
            let want = 0.1 * d.mean_coef(ts[bi]) / d.conditional_var(ts[bi]);
            assert!((f64::from(g[bi][0][0]) / want - 1.0).abs() < 1e-5);
        }
        assert!(d.score_tensor(&tt, t0.as_tensor(), &[0.5]).is_err());
    }

    #[test]
    fn config_serde_and_validation() {
        let cfg: VpConfig = serde_json::from_str(r#"{"coordinate_scaling": 0.25}"#).unwrap();
        assert_eq!(cfg.schedule, BetaSchedule::Linear { b_min: 0.1, b_max: 20.0 });
        assert_eq!(cfg.coordinate_scaling, 0.25);
        let round: VpConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(round, cfg);
        assert!(serde_json::from_str::<VpConfig>(r#"{"scaling": 0.1}"#).is_err());
        assert!(VpDiffuser::new(VpConfig { coordinate_scaling: 0.0, ..VpConfig::default() }).is_err());
        let bad = VpConfig { schedule: BetaSchedule::Linear { b_min: 5.0, b_max: 1.0 }, ..VpConfig::default() };
        assert!(VpDiffuser::new(bad).is_err());
    }
}
