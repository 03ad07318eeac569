//! Shared candle code for protforge models.
//!
//! For now this holds what every model needs before any network exists: device selection
//! ([`device`]) and checkpoint I/O ([`checkpoint`]: `config.json` + `model.safetensors` in one
//! directory, with a SHA-256 checksum recorded in output manifests). Attention, IPA, AdaLN and
//! the training utilities arrive with the model issues.

pub mod checkpoint;
pub mod device;
pub mod error;

pub use checkpoint::{Checkpoint, CheckpointInfo};
pub use device::DeviceSpec;
pub use error::NnError;
