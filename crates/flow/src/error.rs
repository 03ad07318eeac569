//! Error type of the `flow` crate.

/// Errors from schedules, step plans and flow-matching steps.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A step plan string such as `sde:400,ode:2` could not be parsed.
    #[error("invalid step schedule '{text}': {reason} (expected e.g. 'sde:400,ode:2,ode:2')")]
    BadPlan {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule or distribution parameter is out of range.
    #[error("invalid {what}: {reason}")]
    BadParameter {
        /// The parameter.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error from the SE(3) layer (IGSO(3) tables, batched frames).
    #[error(transparent)]
    Se3(#[from] protforge_se3::Se3Error),
}
