//! DPLM-2 structure tokenizer: backbones ↔ discrete structure tokens (Wang et al. 2025,
//! "DPLM-2: A Multimodal Diffusion Protein Language Model", arXiv 2410.13782; reference code
//! bytedance/dplm `src/byprot/models/structok/`, read for the maths only).
//!
//! - [`features`]: SE(3)-invariant inputs from N, CA, C (local-frame pair geometry, dihedrals),
//!   computed in f64, and training targets.
//! - [`model`]: the network. The encoder is our own (DPLM-2 uses the frozen ESM-IF1 GVP encoder,
//!   whose weights we cannot ship): a transformer with pair-biased attention over the invariant
//!   features. Then DPLM-2's `pre_quant` (LN → Linear(d, 13) → ReLU → Linear(13, 13), masked),
//!   the 13-bit [`lfq`] quantizer (8192 codes, **big-endian** ids as in the DPLM-2 code), the
//!   `post_quant` MLP + 4-layer rotary transformer, and an IPA structure decoder
//!   ([`protforge_nn::ipa`]) predicting residue frames, hence N, CA, C (O from the next N).
//! - [`loss`]: backbone FAPE (clamped at 10 Å, mixed with 10 % unclamped FAPE as in AlphaFold2)
//!   and the distogram cross-entropy.
//! - [`tokens`]: DPLM-2 token text (`0123,4095,…`) and FASTA records.
//! - [`train`]: the resumable training loop.
//!
//! ```no_run
//! use candle_core::{DType, Device};
//! use candle_nn::VarBuilder;
//! use protforge_nn::Checkpoint;
//! use protforge_tokenizer::{Tokenizer, TokenizerConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ck = Checkpoint::new("weights/tokenizer");
//! let cfg: TokenizerConfig = ck.load_config()?;
//! let vb = VarBuilder::from_tensors(ck.load_tensors(&Device::Cpu)?, DType::F32, &Device::Cpu);
//! let model = Tokenizer::new(&cfg, vb)?;
//! let bb = protforge_structure::read_backbone("1ubq.pdb".as_ref(), &Default::default())?.backbone;
//! let tokens = model.tokenize(&[bb])?;
//! println!("{}", protforge_tokenizer::tokens::format_tokens(&tokens[0]));
//! let decoded = model.detokenize(&tokens)?; // N, CA, C, O in Å
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod blocks;
pub mod config;
mod error;
pub mod features;
pub mod lfq;
pub mod loss;
pub mod model;
pub mod tokens;
pub mod train;

pub use config::{DecoderConfig, EncoderConfig, PostQuantConfig, QuantizerConfig, TokenizerConfig};
pub use error::TokenizerError;
pub use loss::LossWeights;
pub use model::{Tokenizer, length_batches};
pub use tokens::{TokenRecord, format_tokens, parse_fasta, parse_tokens, read_fasta, write_fasta};
