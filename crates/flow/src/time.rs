//! Training-time distributions over `t ∈ [0, 1]` (`t = 0` noise, `t = 1` data).

use crate::FlowError;
use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

/// Distribution of the interpolation time during training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimeDistribution {
    /// U(0, 1).
    Uniform,
    /// Beta(a, b).
    Beta {
        /// First shape parameter, > 0.
        a: f64,
        /// Second shape parameter, > 0.
        b: f64,
    },
    /// With probability `p_uniform` U(0, 1), otherwise Beta(a, b). Proteina's
    /// `mix_unif_beta` with `a = 1.9, b = 1, p_uniform = 0.02` (its default, used by PAR):
    /// most mass near `t = 1`, where the fine structure is learned.
    MixUniformBeta {
        /// Probability of the uniform component, in [0, 1].
        p_uniform: f64,
        /// Beta first shape parameter.
        a: f64,
        /// Beta second shape parameter.
        b: f64,
    },
}

impl Default for TimeDistribution {
    fn default() -> Self {
        Self::MixUniformBeta { p_uniform: 0.02, a: 1.9, b: 1.0 }
    }
}

impl TimeDistribution {
    /// Check the parameters.
    ///
    /// # Errors
    /// [`FlowError::BadParameter`] for non-positive Beta shapes or `p_uniform ∉ [0, 1]`.
    pub fn validate(&self) -> Result<(), FlowError> {
        let (a, b, p) = match *self {
            Self::Uniform => return Ok(()),
            Self::Beta { a, b } => (a, b, 0.0),
            Self::MixUniformBeta { p_uniform, a, b } => (a, b, p_uniform),
        };
        if !(a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()) {
            return Err(FlowError::BadParameter { what: "Beta time distribution", reason: format!("a = {a}, b = {b}") });
        }
        if !(0.0..=1.0).contains(&p) {
            return Err(FlowError::BadParameter { what: "p_uniform", reason: format!("{p} is not in [0, 1]") });
        }
        Ok(())
    }

    /// Draw one time.
    ///
    /// # Errors
    /// As [`Self::validate`].
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<f64, FlowError> {
        self.validate()?;
        let beta = |a: f64, b: f64, rng: &mut R| -> Result<f64, FlowError> {
            let d = Beta::new(a, b)
                .map_err(|e| FlowError::BadParameter { what: "Beta time distribution", reason: e.to_string() })?;
            Ok(d.sample(rng))
        };
        match *self {
            Self::Uniform => Ok(rng.random::<f64>()),
            Self::Beta { a, b } => beta(a, b, rng),
            Self::MixUniformBeta { p_uniform, a, b } => {
                if rng.random::<f64>() < p_uniform {
                    Ok(rng.random::<f64>())
                } else {
                    beta(a, b, rng)
                }
            }
        }
    }

    /// Mean of the distribution (for tests and documentation).
    #[must_use]
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Uniform => 0.5,
            Self::Beta { a, b } => a / (a + b),
            Self::MixUniformBeta { p_uniform, a, b } => p_uniform * 0.5 + (1.0 - p_uniform) * a / (a + b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn samples_in_range_with_the_right_mean() {
        let mut rng = StdRng::seed_from_u64(7);
        for d in [TimeDistribution::Uniform, TimeDistribution::Beta { a: 2.0, b: 5.0 }, TimeDistribution::default()] {
            let n = 40_000;
            let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng).unwrap()).collect();
            assert!(xs.iter().all(|&x| (0.0..=1.0).contains(&x)));
            let mean = xs.iter().sum::<f64>() / f64::from(n);
            assert!((mean - d.mean()).abs() < 0.01, "{d:?}: {mean} vs {}", d.mean());
        }
        // Proteina's default is skewed towards data: mean ≈ 0.65.
        assert!((TimeDistribution::default().mean() - (0.01 + 0.98 * 1.9 / 2.9)).abs() < 1e-12);
    }

    #[test]
    fn same_seed_same_times() {
        let d = TimeDistribution::default();
        let a: Vec<f64> = (0..10).map({
            let mut r = StdRng::seed_from_u64(3);
            move |_| d.sample(&mut r).unwrap()
        }).collect();
        let mut r = StdRng::seed_from_u64(3);
        let b: Vec<f64> = (0..10).map(|_| d.sample(&mut r).unwrap()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn bad_parameters() {
        assert!(TimeDistribution::Beta { a: 0.0, b: 1.0 }.validate().is_err());
        assert!(TimeDistribution::MixUniformBeta { p_uniform: 1.5, a: 1.0, b: 1.0 }.validate().is_err());
    }
}
