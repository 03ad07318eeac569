//! Sampling time grids, the SDE noise coefficient g(t) and per-scale step plans.
//!
//! Convention: `t = 0` is noise, `t = 1` is data. A grid for `n` steps has `n + 1` entries,
//! starts at exactly 0 and ends at exactly 1; the network is evaluated at the first `n`
//! entries and the last one only defines the final step size.

use crate::FlowError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How sampling times are spread over [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimeGrid {
    /// Evenly spaced.
    Uniform,
    /// `u^p` for evenly spaced `u`; `p > 1` puts more steps near noise.
    Power {
        /// Exponent, > 0.
        p: f64,
    },
    /// Proteina's "log" schedule: `t = 1 − logspace(−p, 0)` reversed, then rescaled to
    /// [0, 1]. Steps get finer towards `t = 1` (data), where structure details form.
    /// Proteina and PAR sample with `p = 2`.
    Log {
        /// Decades spanned, > 0.
        p: f64,
    },
}

impl Default for TimeGrid {
    /// The log grid with `p = 2` (Proteina's and PAR's default).
    fn default() -> Self {
        Self::Log { p: 2.0 }
    }
}

impl TimeGrid {
    /// The `n_steps + 1` grid times, increasing from exactly 0 to exactly 1.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for `n_steps == 0` or a non-positive/non-finite `p`.
    pub fn times(&self, n_steps: usize) -> Result<Vec<f64>, FlowError> {
        if n_steps == 0 {
            return Err(FlowError::BadParameter { what: "step count", reason: "must be at least 1".into() });
        }
        let n = n_steps as f64;
        let u = (0..=n_steps).map(|i| i as f64 / n);
        let raw: Vec<f64> = match *self {
            Self::Uniform => u.collect(),
            Self::Power { p } => {
                check_positive("power grid p", p)?;
                u.map(|u| u.powf(p)).collect()
            }
            Self::Log { p } => {
                check_positive("log grid p", p)?;
                // logspace(-p, 0, n+1) is 10^(-p + p·u); flipped and subtracted from 1.
                let mut t: Vec<f64> = u.map(|u| 1.0 - 10f64.powf(-p + p * u)).collect();
                t.reverse();
                t
            }
        };
        Ok(rescale_unit(raw))
    }
}

fn check_positive(what: &'static str, p: f64) -> Result<(), FlowError> {
    if p.is_finite() && p > 0.0 {
        Ok(())
    } else {
        Err(FlowError::BadParameter { what, reason: format!("{p} is not a positive number") })
    }
}

/// Affinely map values onto [0, 1] so the first is exactly 0 and the last exactly 1.
fn rescale_unit(mut t: Vec<f64>) -> Vec<f64> {
    let (lo, hi) = (t[0], t[t.len() - 1]);
    for v in &mut t {
        *v = (*v - lo) / (hi - lo);
    }
    let last = t.len() - 1;
    t[0] = 0.0;
    t[last] = 1.0;
    t
}

/// The noise coefficient g(t) of the sampling SDE
/// `dx = [v + g(t)·s] dt + √(2·g(t)·γ) dW` (Proteina eq. 3 with score scale 1).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GSchedule {
    /// `g(t) = 1 / (t + 0.01)`: Proteina's `1/t` mode, used by PAR (the default).
    #[default]
    InverseT,
    /// `g(t) = (1 − t) / (t + 0.01)`.
    Ratio,
    /// A constant `g`.
    Constant {
        /// The value, ≥ 0.
        g: f64,
    },
}

impl GSchedule {
    /// Offset in the denominators, as Proteina (keeps g finite at t = 0).
    pub const EPS: f64 = 0.01;

    /// g(t) for `t ∈ [0, 1)`; `t` is clamped to `[0, 1 − 1e-5]`.
    #[must_use]
    pub fn g(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0 - 1e-5);
        match *self {
            Self::InverseT => 1.0 / (t + Self::EPS),
            Self::Ratio => (1.0 - t) / (t + Self::EPS),
            Self::Constant { g } => g.max(0.0),
        }
    }
}

/// Integrator of one scale: the deterministic ODE `dx = v dt` or the SDE with score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrator {
    /// Euler on `dx = v dt`.
    Ode,
    /// Euler–Maruyama on `dx = [v + g s] dt + √(2 g γ) dW`.
    Sde,
}

/// Steps and integrator of one scale of a multi-scale sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleSteps {
    /// ODE or SDE.
    pub integrator: Integrator,
    /// Number of steps, ≥ 1.
    pub steps: usize,
}

/// Per-scale plan, written `sde:400,ode:2,ode:2` (PAR's fast S/O/O sampler, Table 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalePlan(pub Vec<ScaleSteps>);

impl ScalePlan {
    /// The plan for scale `i`; scales beyond the plan reuse its last entry.
    #[must_use]
    pub fn scale(&self, i: usize) -> ScaleSteps {
        self.0.get(i).or_else(|| self.0.last()).copied().unwrap_or(ScaleSteps { integrator: Integrator::Sde, steps: 400 })
    }
}

impl FromStr for ScalePlan {
    type Err = FlowError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| FlowError::BadPlan { text: text.to_string(), reason };
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (mode, steps) = part.split_once(':').ok_or_else(|| bad(format!("'{part}' has no ':'")))?;
            let integrator = match mode.trim().to_ascii_lowercase().as_str() {
                "sde" => Integrator::Sde,
                "ode" => Integrator::Ode,
                other => return Err(bad(format!("unknown integrator '{other}' (use sde or ode)"))),
            };
            let steps: usize = steps.trim().parse().map_err(|_| bad(format!("'{steps}' is not a step count")))?;
            if steps == 0 {
                return Err(bad("a scale needs at least 1 step".into()));
            }
            out.push(ScaleSteps { integrator, steps });
        }
        Ok(Self(out))
    }
}

impl fmt::Display for ScalePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|s| format!("{}:{}", if s.integrator == Integrator::Sde { "sde" } else { "ode" }, s.steps))
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grids() -> Vec<TimeGrid> {
        vec![TimeGrid::Uniform, TimeGrid::Power { p: 2.0 }, TimeGrid::Log { p: 2.0 }, TimeGrid::Log { p: 0.5 }]
    }

    #[test]
    fn grids_have_exact_endpoints_length_and_increase() {
        for g in grids() {
            for n in [1, 2, 7, 400] {
                let t = g.times(n).unwrap();
                assert_eq!(t.len(), n + 1, "{g:?}");
                assert_eq!(t[0], 0.0);
                assert_eq!(t[n], 1.0);
                assert!(t.windows(2).all(|w| w[1] > w[0]), "{g:?} not strictly increasing");
            }
        }
    }

    #[test]
    fn log_grid_refines_towards_data() {
        let t = TimeGrid::Log { p: 2.0 }.times(10).unwrap();
        let first = t[1] - t[0];
        let last = t[10] - t[9];
        assert!(first > 10.0 * last, "first step {first}, last step {last}");
        // Uniform steps are equal.
        let u = TimeGrid::Uniform.times(4).unwrap();
        assert_eq!(u, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn bad_grid_parameters() {
        assert!(TimeGrid::Uniform.times(0).is_err());
        assert!(TimeGrid::Log { p: 0.0 }.times(5).is_err());
        assert!(TimeGrid::Power { p: f64::NAN }.times(5).is_err());
    }

    #[test]
    fn g_schedules_endpoints_and_monotonicity() {
        let g = GSchedule::InverseT;
        assert!((g.g(0.0) - 100.0).abs() < 1e-9);
        assert!((g.g(1.0) - 1.0 / (1.0 - 1e-5 + 0.01)).abs() < 1e-9);
        let r = GSchedule::Ratio;
        assert!(r.g(1.0) < 1e-3);
        let ts: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
        for s in [g, r] {
            assert!(ts.windows(2).all(|w| s.g(w[1]) < s.g(w[0])), "{s:?} must decrease");
        }
        assert_eq!(GSchedule::Constant { g: -1.0 }.g(0.3), 0.0);
    }

    #[test]
    fn plans_parse_print_and_extend() {
        let p: ScalePlan = "sde:400, ode:2,ODE:2".parse().unwrap();
        assert_eq!(p.0.len(), 3);
        assert_eq!(p.scale(0), ScaleSteps { integrator: Integrator::Sde, steps: 400 });
        assert_eq!(p.scale(5), ScaleSteps { integrator: Integrator::Ode, steps: 2 });
        assert_eq!(p.to_string(), "sde:400,ode:2,ode:2");
        for bad in ["", "sde", "sde:0", "rk4:10", "sde:x"] {
            let e = bad.parse::<ScalePlan>().unwrap_err().to_string();
            assert!(e.contains("invalid step schedule"), "{e}");
        }
    }
}
