//! The tokenizer network: invariant encoder → pre-quantizer → LFQ → post-quantizer → IPA
//! structure decoder, and the batch-level `tokenize` / `detokenize` entry points.
//!
//! Module tree (= `model.safetensors` names): `encoder.{node_in, pair_in, relpos, pair_norm,
//! blocks.N}`, `pre_quant.{norm, lin1, lin2}`, `post_quant.{norm, lin1, lin2, blocks.N,
//! final_norm}`, `decoder.{relpos, left, right, prod_a, prod_b, pair_norm, pair_transitions.N, trunk.N,
//! structure.{norm_s, norm_z, lin_in, ipa, norm_ipa, transition.{lin1, lin2, lin3},
//! norm_transition, bb_update}, distogram}`.

use crate::blocks::PairBlock;
use crate::config::TokenizerConfig;
use crate::features::{ChainAtoms, EncoderInput, NODE_FEATS, PAIR_EXTRA_FEATS, Targets, encoder_input, length_mask, relpos};
use crate::lfq::{Lfq, LfqLosses, Quantized, codes_from_tokens};
use crate::loss::{FapeTarget, LossWeights, backbone_atoms, distogram_loss, fape};
use crate::TokenizerError;
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};
use protforge_nn::attention::{AttnInputs, Rope, key_padding_mask};
use protforge_nn::init::InitRule;
use protforge_nn::ipa::{BackboneUpdate, InvariantPointAttention, IpaConfig};
use protforge_nn::{BlockConfig, LayerNorm, TransformerBlock};
use protforge_se3::geometry::{ANGLE_CA_C_O, BOND_C_O, IDEAL_C_LOCAL, IDEAL_N_LOCAL, place_atom, place_oxygen};
use protforge_se3::{Rigid, Rigids, Vec3};
use protforge_structure::{Backbone, residue};

type Result<T> = std::result::Result<T, TokenizerError>;

/// Path segment of the backbone-update Linear, zero-initialised by [`init_rule`].
pub const BB_UPDATE: &str = "bb_update";

/// The initialisation rule of the tokenizer: [`protforge_nn::init::default_init_rule`], except
/// the structure module's backbone update, which starts at zero so the first frames are the
/// identity (AlphaFold2 Suppl. 1.8 "final" initialisation of Alg. 23).
#[must_use]
pub fn init_rule(name: &str, shape: &[usize]) -> InitRule {
    if name.split('.').any(|seg| seg == BB_UPDATE) {
        InitRule::Zeros
    } else {
        protforge_nn::init::default_init_rule(name, shape)
    }
}

/// The SE(3)-invariant encoder (see [`crate::features`] for its inputs).
#[derive(Debug, Clone)]
pub struct Encoder {
    node_in: Linear,
    pair_in: Linear,
    relpos: Embedding,
    pair_norm: LayerNorm,
    blocks: Vec<PairBlock>,
}

impl Encoder {
    /// Build from the config.
    ///
    /// # Errors
    /// Candle VarBuilder errors.
    pub fn new(cfg: &TokenizerConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let e = &cfg.encoder;
        Ok(Self {
            node_in: candle_nn::linear(NODE_FEATS, e.dim, vb.pp("node_in"))?,
            pair_in: candle_nn::linear(e.rbf_bins + PAIR_EXTRA_FEATS, e.pair_dim, vb.pp("pair_in"))?,
            relpos: candle_nn::embedding(2 * cfg.relpos_max + 1, e.pair_dim, vb.pp("relpos"))?,
            pair_norm: LayerNorm::new(e.pair_dim, true, vb.pp("pair_norm"))?,
            blocks: (0..e.layers)
                .map(|i| PairBlock::new(e.dim, e.heads, e.pair_dim, e.mlp_ratio * e.dim, vb.pp(format!("blocks.{i}"))))
                .collect::<candle_core::Result<Vec<_>>>()?,
        })
    }

    /// Encoder features `[B, L, dim]`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn forward(&self, x: &EncoderInput) -> candle_core::Result<Tensor> {
        let key_mask = key_padding_mask(&x.mask)?;
        let mut s = self.node_in.forward(&x.node)?;
        let z = self.pair_in.forward(&x.pair)?.broadcast_add(&self.relpos.forward(&x.relpos)?)?;
        let z = self.pair_norm.forward(&z)?; // [B, L, L, C]
        for block in &self.blocks {
            s = block.forward(&s, &z, &key_mask)?;
        }
        Ok(s)
    }
}

/// `LN → Linear → ReLU → Linear` (DPLM-2's `pre_quant` and the MLP of `post_quant`).
#[derive(Debug, Clone)]
struct Mlp2 {
    norm: LayerNorm,
    lin1: Linear,
    lin2: Linear,
}

impl Mlp2 {
    fn new(d_in: usize, d_out: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            norm: LayerNorm::new(d_in, true, vb.pp("norm"))?,
            lin1: candle_nn::linear(d_in, d_out, vb.pp("lin1"))?,
            lin2: candle_nn::linear(d_out, d_out, vb.pp("lin2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.lin2.forward(&self.lin1.forward(&self.norm.forward(x)?)?.relu()?)
    }
}

/// The post-quantizer: MLP then a rotary transformer and a final LayerNorm.
#[derive(Debug, Clone)]
pub struct PostQuant {
    mlp: Mlp2,
    blocks: Vec<TransformerBlock>,
    rope: Rope,
    final_norm: LayerNorm,
}

impl PostQuant {
    /// Build from the config.
    ///
    /// # Errors
    /// Candle VarBuilder errors.
    pub fn new(cfg: &TokenizerConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let p = &cfg.post_quant;
        let block = BlockConfig { d_model: p.dim, n_heads: p.heads, mlp_hidden: p.mlp_ratio * p.dim, d_cond: None, qk_norm: false };
        Ok(Self {
            mlp: Mlp2::new(cfg.quantizer.bits, p.dim, vb.clone())?,
            blocks: (0..p.layers)
                .map(|i| TransformerBlock::new(&block, vb.pp(format!("blocks.{i}"))))
                .collect::<candle_core::Result<Vec<_>>>()?,
            rope: Rope::new(p.dim / p.heads, p.rope_base)?,
            final_norm: LayerNorm::new(p.dim, true, vb.pp("final_norm"))?,
        })
    }

    /// `codes: [B, L, bits]`, `mask: [B, L]` → `[B, L, dim]`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn forward(&self, codes: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let l = codes.dim(1)?;
        let mut x = self.mlp.forward(codes)?;
        let positions = Tensor::arange(0u32, l as u32, codes.device())?.to_dtype(DType::F32)?;
        let tables = self.rope.tables(&positions)?;
        let key_mask = key_padding_mask(mask)?;
        let inputs = AttnInputs { bias: None, mask: Some(&key_mask), rope: Some(&tables) };
        for block in &self.blocks {
            x = block.forward(&x, None, &inputs, None)?;
        }
        self.final_norm.forward(&x)
    }
}

/// Residual pair MLP `z + W₂ ReLU(W₁ LN(z))` (hidden `2·c_z`).
#[derive(Debug, Clone)]
struct PairTransition {
    norm: LayerNorm,
    lin1: Linear,
    lin2: Linear,
}

impl PairTransition {
    fn new(c: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            norm: LayerNorm::new(c, true, vb.pp("norm"))?,
            lin1: candle_nn::linear(c, 2 * c, vb.pp("lin1"))?,
            lin2: candle_nn::linear(2 * c, c, vb.pp("lin2"))?,
        })
    }

    fn forward(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        z + self.lin2.forward(&self.lin1.forward(&self.norm.forward(z)?)?.relu()?)?
    }
}

/// AlphaFold2's structure module (Suppl. Alg. 20, backbone only): IPA, transition and
/// backbone update, repeated with shared weights; rotations are detached between iterations.
#[derive(Debug, Clone)]
struct StructureModule {
    norm_s: LayerNorm,
    norm_z: LayerNorm,
    lin_in: Linear,
    ipa: InvariantPointAttention,
    norm_ipa: LayerNorm,
    transition: [Linear; 3],
    norm_transition: LayerNorm,
    bb_update: BackboneUpdate,
    iterations: usize,
    trans_scale_ang: f64,
}

impl StructureModule {
    fn new(cfg: &TokenizerConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let (c_s, d) = (cfg.post_quant.dim, &cfg.decoder);
        let ipa = IpaConfig {
            d_single: c_s,
            d_pair: d.pair_dim,
            d_hidden: d.ipa_hidden,
            n_heads: d.ipa_heads,
            n_qk_points: d.ipa_qk_points,
            n_v_points: d.ipa_v_points,
        };
        let tv = vb.pp("transition");
        Ok(Self {
            norm_s: LayerNorm::new(c_s, true, vb.pp("norm_s"))?,
            norm_z: LayerNorm::new(d.pair_dim, true, vb.pp("norm_z"))?,
            lin_in: candle_nn::linear(c_s, c_s, vb.pp("lin_in"))?,
            ipa: InvariantPointAttention::new(&ipa, vb.pp("ipa"))?,
            norm_ipa: LayerNorm::new(c_s, true, vb.pp("norm_ipa"))?,
            transition: [
                candle_nn::linear(c_s, c_s, tv.pp("lin1"))?,
                candle_nn::linear(c_s, c_s, tv.pp("lin2"))?,
                candle_nn::linear(c_s, c_s, tv.pp("lin3"))?,
            ],
            norm_transition: LayerNorm::new(c_s, true, vb.pp("norm_transition"))?,
            bb_update: BackboneUpdate::new(c_s, vb.pp(BB_UPDATE))?,
            iterations: d.iterations,
            trans_scale_ang: d.trans_scale_ang,
        })
    }

    /// Frames after every iteration, translations in Å.
    fn forward(&self, s: &Tensor, z: &Tensor, mask: &Tensor) -> Result<Vec<Rigids>> {
        let (b, l, _) = s.dims3()?;
        let z = self.norm_z.forward(z)?;
        let mut s = self.lin_in.forward(&self.norm_s.forward(s)?)?;
        let mut frames = Rigids::identity(&[b, l], s.device())?; // translations in units of trans_scale_ang
        let mut out = Vec::with_capacity(self.iterations);
        for _ in 0..self.iterations {
            s = self.norm_ipa.forward(&(&s + self.ipa.forward(&s, &z, &frames, mask)?)?)?;
            let [t1, t2, t3] = &self.transition;
            let t = t3.forward(&t2.forward(&t1.forward(&s)?.relu()?)?.relu()?)?;
            s = self.norm_transition.forward(&(&s + t)?)?;
            frames = frames.compose(&self.bb_update.update(&s)?)?;
            out.push(frames.scale_translation(self.trans_scale_ang)?);
            frames = Rigids::new(frames.rots.detach(), frames.trans.clone())?;
        }
        Ok(out)
    }
}

/// Decoder output.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Frames after each structure-module iteration, `[B, L]`, translations in Å (last = final).
    pub frames: Vec<Rigids>,
    /// `[B, L, L, bins]` distogram logits.
    pub distogram: Tensor,
}

impl Decoded {
    /// The final frames.
    ///
    /// # Errors
    /// [`TokenizerError::BadInput`] if there are no iterations (prevented by config validation).
    pub fn final_frames(&self) -> Result<&Rigids> {
        self.frames.last().ok_or_else(|| TokenizerError::BadInput("decoder ran no iterations".to_string()))
    }
}

/// The structure decoder: pair initialisation, pair transitions, pair-attention trunk,
/// structure module and distogram head.
#[derive(Debug, Clone)]
pub struct Decoder {
    relpos: Embedding,
    left: Linear,
    right: Linear,
    prod_a: Linear,
    prod_b: Linear,
    pair_norm: LayerNorm,
    pair_transitions: Vec<PairTransition>,
    trunk: Vec<PairBlock>,
    structure: StructureModule,
    distogram: Linear,
    relpos_max: usize,
}

impl Decoder {
    /// Build from the config.
    ///
    /// # Errors
    /// Candle VarBuilder errors.
    pub fn new(cfg: &TokenizerConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let (c_s, d) = (cfg.post_quant.dim, &cfg.decoder);
        let c_z = d.pair_dim;
        Ok(Self {
            relpos: candle_nn::embedding(2 * cfg.relpos_max + 1, c_z, vb.pp("relpos"))?,
            left: candle_nn::linear(c_s, c_z, vb.pp("left"))?,
            right: candle_nn::linear_no_bias(c_s, c_z, vb.pp("right"))?,
            prod_a: candle_nn::linear(c_s, c_z, vb.pp("prod_a"))?,
            prod_b: candle_nn::linear(c_s, c_z, vb.pp("prod_b"))?,
            pair_norm: LayerNorm::new(c_z, true, vb.pp("pair_norm"))?,
            pair_transitions: (0..d.pair_transitions)
                .map(|i| PairTransition::new(c_z, vb.pp(format!("pair_transitions.{i}"))))
                .collect::<candle_core::Result<Vec<_>>>()?,
            trunk: (0..d.trunk_layers)
                .map(|i| PairBlock::new(c_s, d.trunk_heads, c_z, cfg.post_quant.mlp_ratio * c_s, vb.pp(format!("trunk.{i}"))))
                .collect::<candle_core::Result<Vec<_>>>()?,
            structure: StructureModule::new(cfg, vb.pp("structure"))?,
            distogram: candle_nn::linear(c_z, d.distogram_bins, vb.pp("distogram"))?,
            relpos_max: cfg.relpos_max,
        })
    }

    /// `s: [B, L, c_s]` (post-quantizer output), `mask: [B, L]` → frames and distogram.
    ///
    /// The pair representation is `LN(relpos(j − i) + left(s_i) + right(s_j) + prod_a(s_i) ⊙ prod_b(s_j))`,
    /// refined by the pair transitions; the distogram reads its symmetrised form.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn forward(&self, s: &Tensor, mask: &Tensor) -> Result<Decoded> {
        let l = s.dim(1)?;
        let rel = self.relpos.forward(&relpos(l, self.relpos_max, s.device())?)?; // [1, L, L, C]
        let outer = self.prod_a.forward(s)?.unsqueeze(2)?.broadcast_mul(&self.prod_b.forward(s)?.unsqueeze(1)?)?; // [B, L, L, C]
        let sum = self.left.forward(s)?.unsqueeze(2)?.broadcast_add(&self.right.forward(s)?.unsqueeze(1)?)?;
        let mut z = self.pair_norm.forward(&(outer + sum)?.broadcast_add(&rel)?)?;
        for t in &self.pair_transitions {
            z = t.forward(&z)?;
        }
        let key_mask = key_padding_mask(mask)?;
        let mut s = s.clone();
        for block in &self.trunk {
            s = block.forward(&s, &z, &key_mask)?;
        }
        let frames = self.structure.forward(&s, &z, mask)?;
        let sym = (&z + z.transpose(1, 2)?)?;
        let distogram = self.distogram.forward(&sym)?;
        Ok(Decoded { frames, distogram })
    }
}

/// Losses of one batch: the total (for backward) and its parts as numbers.
#[derive(Debug, Clone)]
pub struct LossParts {
    /// `w_fape·fape + w_dist·distogram + LFQ loss` (scalar tensor).
    pub total: Tensor,
    /// Clamped backbone FAPE, mean over iterations (units of `fape_scale_ang`); the loss
    /// mixes in the unclamped FAPE ([`LossWeights::fape_unclamped_fraction`]).
    pub fape: f32,
    /// Distogram cross-entropy (nats).
    pub distogram: f32,
    /// LFQ commitment loss.
    pub commitment: f32,
    /// LFQ entropy loss `H_sample − H_codebook` (nats).
    pub entropy: f32,
    /// Reconstruction part `w_fape·fape + w_dist·distogram`.
    pub reconstruction: f32,
}

/// The full tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    cfg: TokenizerConfig,
    encoder: Encoder,
    pre_quant: Mlp2,
    lfq: Lfq,
    post_quant: PostQuant,
    decoder: Decoder,
    device: Device,
}

impl Tokenizer {
    /// Build from the config (validated here); parameters from `vb`.
    ///
    /// # Errors
    /// Invalid config; candle VarBuilder errors (e.g. weights that do not match the config).
    pub fn new(cfg: &TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            encoder: Encoder::new(cfg, vb.pp("encoder"))?,
            pre_quant: Mlp2::new(cfg.encoder.dim, cfg.quantizer.bits, vb.pp("pre_quant"))?,
            lfq: Lfq::new(&cfg.quantizer, vb.device())?,
            post_quant: PostQuant::new(cfg, vb.pp("post_quant"))?,
            decoder: Decoder::new(cfg, vb.pp("decoder"))?,
            device: vb.device().clone(),
            cfg: cfg.clone(),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &TokenizerConfig {
        &self.cfg
    }

    /// The device the model runs on.
    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Pre-quantized vectors `[B, L, bits]`, zero where `mask = 0` (DPLM-2: padding → id 0).
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn pre_quant(&self, x: &EncoderInput) -> Result<Tensor> {
        let h = self.pre_quant.forward(&self.encoder.forward(x)?)?;
        Ok(h.broadcast_mul(&x.mask.unsqueeze(D::Minus1)?)?)
    }

    /// Quantize pre-quantized vectors (see [`Lfq::quantize`]).
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn quantize(&self, pre: &Tensor) -> Result<Quantized> {
        Ok(self.lfq.quantize(pre)?)
    }

    /// LFQ commitment and entropy losses (see [`Lfq::losses`]).
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn quantizer_losses(&self, pre: &Tensor, mask: &Tensor) -> Result<LfqLosses> {
        Ok(self.lfq.losses(pre, mask)?)
    }

    /// Decode codes `[B, L, bits]` (±1) with residue mask `[B, L]`.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn decode(&self, codes: &Tensor, mask: &Tensor) -> Result<Decoded> {
        let s = self.post_quant.forward(codes, mask)?;
        self.decoder.forward(&s, mask)
    }

    /// The training loss of a batch (inputs and targets from [`crate::features`]) and the
    /// decoder output.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn loss(&self, x: &EncoderInput, t: &Targets, w: &LossWeights) -> Result<(LossParts, Decoded, Quantized)> {
        let pre = self.pre_quant(x)?;
        let q = self.quantize(&pre)?;
        let lfq = self.quantizer_losses(&pre, &x.mask)?;
        let dec = self.decode(&q.codes, &x.mask)?;
        let (b, l) = x.mask.dims2()?;
        let atom_mask = x.mask.unsqueeze(2)?.broadcast_as((b, l, 3))?.reshape((b, 3 * l))?;
        let target = FapeTarget::new(&t.frames, &t.atoms, &x.mask, &atom_mask)?;
        let mut clamped = Tensor::zeros((), DType::F32, &self.device)?;
        let mut unclamped = Tensor::zeros((), DType::F32, &self.device)?;
        for frames in &dec.frames {
            let (c, u) = fape(frames, &backbone_atoms(frames)?, &target, w.fape_clamp_ang, w.fape_scale_ang)?;
            clamped = (clamped + c)?;
            unclamped = (unclamped + u)?;
        }
        let iters = dec.frames.len().max(1) as f64;
        let fape_mean = (clamped / iters)?;
        let u = w.fape_unclamped_fraction;
        let fape_term = ((&fape_mean * (1.0 - u))? + (unclamped * (u / iters))?)?;
        let dist = distogram_loss(&dec.distogram, &t.dist_bins, &x.mask)?;
        let recon = ((&fape_term * w.fape)? + (&dist * w.distogram)?)?;
        let total = (&recon + &lfq.loss)?;
        let scalar = |t: &Tensor| t.to_scalar::<f32>();
        let entropy = (&lfq.per_sample_entropy - &lfq.codebook_entropy)?;
        let parts = LossParts {
            fape: scalar(&fape_mean)?,
            distogram: scalar(&dist)?,
            commitment: scalar(&lfq.commitment)?,
            entropy: scalar(&entropy)?,
            reconstruction: scalar(&recon)?,
            total,
        };
        Ok((parts, dec, q))
    }

    /// Token ids of single-chain backbones, one batch (padded to the longest). Residues
    /// without N, CA and C get id 0, as padding does in DPLM-2.
    ///
    /// # Errors
    /// [`TokenizerError::BadInput`] for an empty batch or an empty chain; candle errors.
    pub fn tokenize(&self, chains: &[Backbone]) -> Result<Vec<Vec<u16>>> {
        if let Some(i) = chains.iter().position(Backbone::is_empty) {
            return Err(TokenizerError::BadInput(format!("chain {i} of the batch has no residues")));
        }
        let atoms: Vec<ChainAtoms> = chains.iter().map(ChainAtoms::from_backbone).collect();
        let x = encoder_input(&atoms, &self.cfg, &self.device)?;
        let ids = self.quantize(&self.pre_quant(&x)?)?.indices.to_vec2::<u32>()?;
        Ok(ids
            .into_iter()
            .zip(&x.lengths)
            .map(|(row, &n)| row.into_iter().take(n).map(|v| u16::try_from(v).unwrap_or(u16::MAX)).collect())
            .collect())
    }

    /// Backbones (N, CA, C, O; poly-glycine, chain A, Å) decoded from token ids, one batch.
    ///
    /// # Errors
    /// [`TokenizerError::BadInput`] for an empty batch, an empty record or an id out of range;
    /// candle errors.
    pub fn detokenize(&self, tokens: &[Vec<u16>]) -> Result<Vec<Backbone>> {
        if tokens.is_empty() {
            return Err(TokenizerError::BadInput("empty batch".to_string()));
        }
        let n_codes = self.cfg.n_codes();
        for (i, rec) in tokens.iter().enumerate() {
            if rec.is_empty() {
                return Err(TokenizerError::BadInput(format!("record {i} of the batch has no tokens")));
            }
            if let Some(t) = rec.iter().find(|&&t| usize::from(t) >= n_codes) {
                return Err(TokenizerError::BadInput(format!("record {i}: token {t} is not below {n_codes}")));
            }
        }
        let lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
        let l = lengths.iter().copied().max().unwrap_or(1);
        let codes = codes_from_tokens(tokens, l, self.cfg.quantizer.bits, &self.device)?;
        let mask = length_mask(&lengths, l, &self.device)?;
        let dec = self.decode(&codes, &mask)?;
        let frames = dec.final_frames()?.to_scalar()?;
        Ok(lengths.iter().enumerate().map(|(b, &n)| backbone_from_frames(&frames[b * l..b * l + n])).collect())
    }
}

/// N, CA, C, O (Å) of a chain from its residue frames: N and C at their ideal positions in
/// each frame; O in the peptide plane from the next residue's N
/// ([`protforge_se3::geometry::place_oxygen`]), or for the last residue with ideal geometry as
/// if ψ = 180° (N–CA–C–O torsion 0). Residues are glycine, chain A, numbered from 1.
#[must_use]
pub fn backbone_from_frames(frames: &[Rigid]) -> Backbone {
    let n_local = Vec3::from(IDEAL_N_LOCAL);
    let c_local = Vec3::from(IDEAL_C_LOCAL);
    let ncac: Vec<[Vec3; 3]> = frames.iter().map(|f| [f.apply(n_local), f.trans, f.apply(c_local)]).collect();
    let coords = ncac
        .iter()
        .enumerate()
        .map(|(i, &[n, ca, c])| {
            let o = match ncac.get(i + 1) {
                Some(next) => place_oxygen(ca, c, next[0]),
                None => place_atom(n, ca, c, BOND_C_O, ANGLE_CA_C_O, 0.0),
            };
            [n, ca, c, o].map(|p| [p.x as f32, p.y as f32, p.z as f32])
        })
        .collect();
    Backbone::from_coords(coords, vec![residue::aatype_from_one('G'); frames.len()])
}

/// Group record indices into batches for inference: sorted by length, at most `max_batch`
/// records per batch and `batch size × longest² ≤ max_pairs` (the pair tensors dominate
/// memory), at least one record per batch.
#[must_use]
pub fn length_batches(lengths: &[usize], max_batch: usize, max_pairs: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for i in order {
        let l = lengths[i].max(1);
        if !cur.is_empty() && (cur.len() + 1 > max_batch.max(1) || (cur.len() + 1) * l * l > max_pairs) {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(i);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
