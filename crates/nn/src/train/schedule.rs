//! Learning-rate schedules.

use crate::NnError;
use serde::{Deserialize, Serialize};

/// Learning rate as a function of the optimizer step.
///
/// **Indexing convention:** `lr(step)` is the rate used for the update numbered `step`,
/// counting from 0 (i.e. pass the number of steps already taken, `AdamW::step_count()`
/// *before* calling `step`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The same rate at every step.
    Constant {
        /// Learning rate.
        lr: f64,
    },
    /// Linear warm-up then cosine decay (Loshchilov & Hutter 2017, SGDR without restarts;
    /// Goyal et al. 2017 warm-up):
    /// - `step < warmup`: `peak · (step + 1) / warmup` (so step 0 already trains and step
    ///   `warmup − 1` reaches `peak`);
    /// - `warmup ≤ step < total`: `floor + (peak − floor) · ½(1 + cos(π·p))`,
    ///   `p = (step − warmup) / (total − warmup)` (so `lr(warmup) = peak`);
    /// - `step ≥ total`: `floor`.
    WarmupCosine {
        /// Number of warm-up steps (may be 0).
        warmup: u64,
        /// Step at which the decay reaches `floor` (must exceed `warmup`).
        total: u64,
        /// Peak learning rate.
        peak: f64,
        /// Final learning rate (`0 ≤ floor ≤ peak`).
        floor: f64,
    },
}

impl LrSchedule {
    /// The learning rate of update number `step` (0-based).
    #[must_use]
    pub fn lr(&self, step: u64) -> f64 {
        match *self {
            Self::Constant { lr } => lr,
            Self::WarmupCosine { warmup, total, peak, floor } => {
                if step < warmup {
                    peak * (step + 1) as f64 / warmup as f64
                } else if step >= total {
                    floor
                } else {
                    let p = (step - warmup) as f64 / (total - warmup) as f64;
                    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
                }
            }
        }
    }

    /// Check the parameters: rates finite and non-negative, `floor ≤ peak`, `total > warmup`.
    ///
    /// # Errors
    /// [`NnError::BadParameter`] explaining the violation.
    pub fn validate(&self) -> Result<(), NnError> {
        let bad = |reason: String| Err(NnError::BadParameter { what: "learning-rate schedule", reason });
        match *self {
            Self::Constant { lr } if !(lr.is_finite() && lr >= 0.0) => bad(format!("lr {lr}")),
            Self::WarmupCosine { peak, floor, .. }
                if !(peak.is_finite() && floor.is_finite() && 0.0 <= floor && floor <= peak) =>
            {
                bad(format!("need 0 <= floor ({floor}) <= peak ({peak})"))
            }
            Self::WarmupCosine { warmup, total, .. } if total <= warmup => {
                bad(format!("total ({total}) must exceed warmup ({warmup})"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_cosine_endpoints_and_monotonicity() {
        let s = LrSchedule::WarmupCosine { warmup: 10, total: 110, peak: 1e-3, floor: 1e-5 };
        s.validate().unwrap();
        assert!((s.lr(0) - 1e-4).abs() < 1e-15);
        assert!((s.lr(9) - 1e-3).abs() < 1e-15);
        assert!((s.lr(10) - 1e-3).abs() < 1e-15);
        assert!((s.lr(60) - (1e-5 + (1e-3 - 1e-5) * 0.5)).abs() < 1e-12, "midpoint");
        assert!((s.lr(110) - 1e-5).abs() < 1e-15);
        assert!((s.lr(10_000) - 1e-5).abs() < 1e-15);
        for k in 0..9 {
            assert!(s.lr(k + 1) > s.lr(k), "warm-up must increase at {k}");
        }
        for k in 10..120 {
            assert!(s.lr(k + 1) <= s.lr(k), "decay must not increase at {k}");
        }
        assert!(s.lr(109) > 1e-5 && s.lr(109) < 1.1e-5);
        let no_warm = LrSchedule::WarmupCosine { warmup: 0, total: 4, peak: 2.0, floor: 0.0 };
        assert_eq!(no_warm.lr(0), 2.0);
        assert!((no_warm.lr(2) - 1.0).abs() < 1e-12);
        assert_eq!(no_warm.lr(4), 0.0);
    }

    #[test]
    fn constant_serde_and_validation() {
        let c = LrSchedule::Constant { lr: 3e-4 };
        assert_eq!((c.lr(0), c.lr(1_000_000)), (3e-4, 3e-4));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"kind":"constant","lr":0.0003}"#);
        let back: LrSchedule =
            serde_json::from_str(r#"{"kind":"warmup_cosine","warmup":5,"total":50,"peak":0.001,"floor":0.0}"#).unwrap();
        assert!(matches!(back, LrSchedule::WarmupCosine { warmup: 5, .. }));
        assert!(LrSchedule::WarmupCosine { warmup: 5, total: 5, peak: 1.0, floor: 0.0 }.validate().is_err());
        assert!(LrSchedule::WarmupCosine { warmup: 0, total: 5, peak: 1.0, floor: 2.0 }.validate().is_err());
        assert!(LrSchedule::Constant { lr: f64::NAN }.validate().is_err());
    }
}
