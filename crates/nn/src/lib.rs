//! Shared candle code for protforge models.
//!
//! - [`device`]: device selection (`cpu`, `cuda:N`).
//! - [`checkpoint`]: inference checkpoints (`config.json` + `model.safetensors`, SHA-256).
//! - [`layers`]: LayerNorm from basic ops, SwiGLU, AdaLN / AdaLN-Zero modulation,
//!   sinusoidal embeddings of continuous values.
//! - [`attention`]: multi-head attention with pair bias, masks and QK-LayerNorm; key-padding,
//!   causal and block-causal masks; KV cache; 1-D/2-D RoPE with fractional positions.
//! - [`block`]: a pre-norm (optionally AdaLN-Zero conditioned) attention + SwiGLU block.
//! - [`init`]: seeded, reproducible re-initialisation of a `VarMap`.
//! - [`ipa`]: Invariant Point Attention and the backbone update (AlphaFold2 Alg. 22, 23).
//! - [`train`]: AdamW with checkpointable state, gradient clipping, LR schedules, EMA,
//!   training-state directories with exact resume, and a "does every parameter get a
//!   gradient" check.
//!
//! Every layer is built from differentiable basic ops: candle's fused softmax, LayerNorm
//! and RoPE kernels have no backward (RUST-NOTES §2.1). Tensors are f32.

pub mod attention;
pub mod block;
pub mod checkpoint;
pub mod device;
pub mod error;
pub mod init;
pub mod ipa;
pub mod layers;
pub mod train;

pub use attention::{AttnInputs, KvCache, MultiHeadAttention, Rope, RopeTables};
pub use block::{BlockConfig, TransformerBlock};
pub use checkpoint::{Checkpoint, CheckpointInfo};
pub use device::DeviceSpec;
pub use error::NnError;
pub use init::{init_seeded, named_vars};
pub use layers::{AdaLn, AdaLnModulation, LayerNorm, SwiGlu};
pub use train::{AdamW, AdamWConfig, Ema, LrSchedule, TrainCheckpoint, TrainState};
