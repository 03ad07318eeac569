//! The STAR-MD network (Shoghi et al. 2026, arXiv 2602.02128, §3): per-frame Invariant Point
//! Attention plus joint spatio-temporal attention over (residue, frame) tokens, block-causal
//! over frames, conditioned by AdaLN on the diffusion time and the log physical stride, and
//! predicting the clean backbone frames of noisy frames (the SE(3) scores follow from them,
//! FrameDiff §4).
//!
//! **Tokens.** Every (residue, frame) token starts from a learned amino-acid embedding plus a
//! projection of the initial frame's backbone dihedrals (the conditioning that replaces the
//! paper's frozen OpenFold features) plus a learned role embedding (history or noisy frame).
//! IPA is biased by static pair features: a relative-position embedding and Gaussian radial
//! basis functions of the initial frame's CA–CA distances.
//!
//! **Block** (× `blocks`): AdaLN-Zero → IPA per frame; `st_layers` × (AdaLN-Zero → joint
//! attention with 2-D RoPE → AdaLN-Zero → SwiGLU); backbone update `T ← T ∘ ΔT`
//! (AlphaFold2 Alg. 23) of the noisy frames only (history frames keep their given geometry).
//! The paper's pair-track EdgeTransition is left out: the pair features are static.
//!
//! **Training pass** ([`StarMd::forward_window`]): `F` history frames ‖ `F` noisy frames with
//! the mask of [`crate::attention::frame_visible`], every noisy frame predicted at once.
//! **Rollout passes**: [`StarMd::append_history`] adds one history frame to a
//! [`FrameCache`]; [`StarMd::denoise`] predicts one noisy frame from the cache. Both give the
//! same numbers as the training pass (tested).
//!
//! **Previous-frame anchor** (a protforge extension, on when the config has `anchor`). In the
//! paper the structure module of a noisy frame starts from the noisy frame itself, so at high
//! diffusion times the clean frame must be rebuilt from invariant token features alone, which
//! a CPU-sized model does not learn to Å precision. With the anchor, noisy frame `ℓ ≥ 1`
//! starts instead from the Gaussian posterior mean of its clean frame under the prior "clean ≈
//! history frame `ℓ − 1` (before context noise; in a rollout the previous generated frame)
//! superposed (CA Kabsch) on the noisy frame", per residue:
//! translations `a + w (x_t − α a)` with `w = α s² / (α² s² + σ²)` (VP mean coefficient `α`,
//! conditional deviation `σ` in Å, prior width `s = sigma_ang`), rotations on the geodesic
//! from the anchor towards the noisy rotation at `s_r² / (s_r² + σ_r(t)²)` (IGSO(3) `σ_r`).
//! Every noisy token also gets [`ANCHOR_FEATURES`] invariant features: the noisy and the anchor
//! frames expressed in its start frame (rotation matrix; translation in units of `√(s² + σ²)`,
//! their expected size, so the uninformative offsets of high `t` stay O(1)) and a has-anchor
//! flag. The superposition makes the start frames equivariant with the noisy frame and
//! independent of the history's global pose, so the equivariance below still holds. Frame 0
//! of a training window (no history) starts from the noisy frame with the flag off.
//!
//! **Units.** Frames cross this API in Å; inside, translations are in nm (Å × 0.1, as
//! AlphaFold2's structure module), converted in one place (the shared pass behind all three).
//!
//! **Equivariance.** Token features are invariant, IPA reads frames only through invariant
//! quantities, and the backbone update acts in each residue's local frame, so the predicted
//! clean frames of a noisy frame move with any rigid motion of that noisy frame and do not
//! depend on the global pose of the history frames.

use crate::StarMdError;
use crate::attention::{FrameCache, StAttention, history_noisy_mask, rope_2d_tables};
use crate::config::{AnchorConfig, StarMdConfig};
use crate::features::{AA_VOCAB, Conditioning, INIT_FEATURES};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, VarMap};
use protforge_nn::init::{InitRule, default_init_rule, init_seeded_with};
use protforge_nn::ipa::{BackboneUpdate, InvariantPointAttention};
use protforge_nn::layers::{AdaLn, SwiGlu, gated_residual, sinusoidal_embedding};
use protforge_se3::kabsch::superpose;
use protforge_se3::{Rigid, Rigids, Rotations, Vec3, so3};

/// Å → nm inside the network.
pub const NM_PER_ANG: f64 = 0.1;

/// Per-residue anchor features: noisy frame in the start frame (9 rotation entries, 3
/// translation in units of `√(s² + σ(t)²)`), anchor frame in the start frame (the same 12),
/// has-anchor flag.
pub const ANCHOR_FEATURES: usize = 25;

/// Scale of diffusion times and normalised log strides before the sinusoidal embedding.
const TIME_SCALE: f64 = 1000.0;
/// Longest period of the sinusoidal embeddings of time and stride.
const TIME_MAX_PERIOD: f64 = 10_000.0;

/// One joint spatio-temporal attention layer with its SwiGLU transition, both AdaLN-Zero.
#[derive(Debug, Clone)]
struct StLayer {
    attn_norm: AdaLn,
    attn: StAttention,
    mlp_norm: AdaLn,
    mlp: SwiGlu,
}

/// One diffusion block.
#[derive(Debug, Clone)]
struct Block {
    ipa_norm: AdaLn,
    ipa: InvariantPointAttention,
    st: Vec<StLayer>,
    bb_update: BackboneUpdate,
}

/// The network. Parameter tree: `aa_embed`, `init_proj`, `role_embed`, `relpos_embed`,
/// `dist_proj`, `cond_in`, `cond_out`, `anchor_proj` (with the anchor), `blocks.{i}.{ipa_norm, ipa, st.{j}.{attn_norm, attn,
/// mlp_norm, mlp}, bb_update}`.
#[derive(Debug, Clone)]
pub struct StarMd {
    cfg: StarMdConfig,
    aa_embed: Embedding,
    init_proj: Linear,
    role_embed: Embedding,
    relpos_embed: Embedding,
    dist_proj: Linear,
    cond_in: Linear,
    cond_out: Linear,
    anchor_proj: Option<Linear>,
    blocks: Vec<Block>,
    device: Device,
}

/// Static token and pair features of a batch of proteins ([`StarMd::prepare`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Token features shared by all frames `[B, N, D]`.
    s0: Tensor,
    /// Pair features `[B, N, N, d_pair]`.
    z: Tensor,
    b: usize,
    n: usize,
}

impl Prepared {
    /// `(B, N)`.
    #[must_use]
    pub fn dims(&self) -> (usize, usize) {
        (self.b, self.n)
    }
}

/// Inputs of one training pass over windows of `F` frames of `N` residues.
#[derive(Debug, Clone, Copy)]
pub struct WindowInput<'a> {
    /// History frames `[B, F, N]` (Å), already context-noised.
    pub history: &'a Rigids,
    /// Context-noise time of each history frame, `B·F` values (row-major), in [0, 1].
    pub history_t: &'a [f64],
    /// Noisy frames `[B, F, N]` (Å).
    pub noisy: &'a Rigids,
    /// Diffusion time of each noisy frame, `B·F` values, in [0, 1].
    pub noisy_t: &'a [f64],
    /// Physical stride of each window (ns), `B` values.
    pub dt_ns: &'a [f64],
    /// The history frames before context noise `[B, F, N]` (Å): the anchors of the next
    /// noisy frames (`None`: the context-noised history).
    pub previous: Option<&'a Rigids>,
}

/// One noisy frame per sample to denoise against a [`FrameCache`] ([`StarMd::denoise`]).
#[derive(Debug, Clone, Copy)]
pub struct NoisyQuery<'a> {
    /// Noisy frames `[B, N]` (Å).
    pub noisy: &'a Rigids,
    /// Diffusion time of each, `B` values.
    pub t: &'a [f64],
    /// Physical stride of each sample (ns), `B` values.
    pub dt_ns: &'a [f64],
    /// Frame index (RoPE frame position) of the noisy frames.
    pub position: f64,
    /// The last history frame `[B, N]` (Å) before context noise (in a rollout: the previous
    /// generated frame); used when the config has the previous-frame anchor.
    pub anchor: Option<&'a Rigids>,
}

/// Role of a frame in the token sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    History = 0,
    Noisy = 1,
}

/// Frames of one role entering a pass: `[B, F, N]` (Å), one time per (sample, frame) and the
/// frame positions (RoPE frame index) shared by the batch; noisy parts with the anchor carry
/// their anchor features `[B, F, N, ANCHOR_FEATURES]` (and `rigids` are the start frames).
struct Part<'a> {
    rigids: &'a Rigids,
    t: &'a [f64],
    positions: &'a [f64],
    role: Role,
    features: Option<&'a Tensor>,
}

/// How a pass uses the KV cache.
enum KvMode<'a> {
    /// Full pass with a mask, no cache.
    Off(&'a Tensor),
    /// Attend to the cache, leave it unchanged.
    Read(&'a FrameCache),
    /// Attend to the cache, then append this frame's keys and values.
    Append(&'a mut FrameCache),
}

/// Rigids of batch shape `batch` (same number of frames).
fn reshape_rigids(r: &Rigids, batch: &[usize]) -> Result<Rigids, StarMdError> {
    let mut m = batch.to_vec();
    m.extend([3, 3]);
    let mut t = batch.to_vec();
    t.push(3);
    Ok(Rigids::new(Rotations::new(r.rots.mats.reshape(m)?)?, r.trans.reshape(t)?)?)
}

/// `[B, F, N]` rigids concatenated along the frame axis.
fn cat_frames(parts: &[&Rigids]) -> Result<Rigids, StarMdError> {
    let mats: Vec<&Tensor> = parts.iter().map(|r| &r.rots.mats).collect();
    let trans: Vec<&Tensor> = parts.iter().map(|r| &r.trans).collect();
    Ok(Rigids::new(Rotations::new(Tensor::cat(&mats, 1)?)?, Tensor::cat(&trans, 1)?)?)
}

/// Frames `start..start + len` of `[B, F, N]` rigids.
fn narrow_frames(r: &Rigids, start: usize, len: usize) -> Result<Rigids, StarMdError> {
    Ok(Rigids::new(
        Rotations::new(r.rots.mats.narrow(1, start, len)?.contiguous()?)?,
        r.trans.narrow(1, start, len)?.contiguous()?,
    )?)
}

/// `(B, F, N)` of frames with batch shape `[B, F, N]`.
fn bfn(r: &Rigids, what: &'static str) -> Result<(usize, usize, usize), StarMdError> {
    match *r.batch_shape() {
        [b, f, n] => Ok((b, f, n)),
        ref other => Err(StarMdError::config(what, format!("frames must have batch shape [B, F, N], got {other:?}"))),
    }
}

impl StarMd {
    /// Build the network (parameters under `vb`; initialise new ones with [`init_weights`]).
    ///
    /// # Errors
    /// An invalid configuration; candle VarBuilder errors (e.g. weights of other shapes).
    pub fn new(cfg: &StarMdConfig, vb: VarBuilder) -> Result<Self, StarMdError> {
        cfg.validate()?;
        let d = cfg.d_single;
        let blocks = (0..cfg.blocks)
            .map(|i| {
                let vb = vb.pp(format!("blocks.{i}"));
                let st = (0..cfg.st_layers)
                    .map(|j| {
                        let vb = vb.pp(format!("st.{j}"));
                        Ok(StLayer {
                            attn_norm: AdaLn::new(d, cfg.d_cond, vb.pp("attn_norm"))?,
                            attn: StAttention::new(d, cfg.heads, vb.pp("attn"))?,
                            mlp_norm: AdaLn::new(d, cfg.d_cond, vb.pp("mlp_norm"))?,
                            mlp: SwiGlu::new(d, cfg.mlp_ratio * d, vb.pp("mlp"))?,
                        })
                    })
                    .collect::<Result<Vec<_>, StarMdError>>()?;
                Ok(Block {
                    ipa_norm: AdaLn::new(d, cfg.d_cond, vb.pp("ipa_norm"))?,
                    ipa: InvariantPointAttention::new(&cfg.ipa_config(), vb.pp("ipa"))?,
                    st,
                    bb_update: BackboneUpdate::new(d, vb.pp("bb_update"))?,
                })
            })
            .collect::<Result<Vec<_>, StarMdError>>()?;
        Ok(Self {
            aa_embed: candle_nn::embedding(AA_VOCAB, d, vb.pp("aa_embed"))?,
            init_proj: candle_nn::linear(INIT_FEATURES, d, vb.pp("init_proj"))?,
            role_embed: candle_nn::embedding(2, d, vb.pp("role_embed"))?,
            relpos_embed: candle_nn::embedding(2 * cfg.max_relpos + 1, cfg.d_pair, vb.pp("relpos_embed"))?,
            dist_proj: candle_nn::linear(cfg.dist_bins, cfg.d_pair, vb.pp("dist_proj"))?,
            cond_in: candle_nn::linear(2 * cfg.d_cond, cfg.d_cond, vb.pp("cond_in"))?,
            cond_out: candle_nn::linear(cfg.d_cond, cfg.d_cond, vb.pp("cond_out"))?,
            anchor_proj: match cfg.anchor {
                Some(_) => Some(candle_nn::linear(ANCHOR_FEATURES, d, vb.pp("anchor_proj"))?),
                None => None,
            },
            blocks,
            device: vb.device().clone(),
            cfg: cfg.clone(),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &StarMdConfig {
        &self.cfg
    }

    /// The device of the parameters.
    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of joint-attention layers (the layers of a [`FrameCache`]).
    #[must_use]
    pub fn attention_layers(&self) -> usize {
        self.cfg.blocks * self.cfg.st_layers
    }

    /// An empty KV cache for a rollout keeping at most `max_frames` history frames
    /// (`None`: the whole history).
    #[must_use]
    pub fn new_cache(&self, max_frames: Option<usize>) -> FrameCache {
        FrameCache::new(self.attention_layers(), max_frames)
    }

    /// Static features of a batch: tokens `s0 = aa_embed(aatype) + init_proj(dihedrals)`
    /// `[B, N, D]`; pairs `z = relpos_embed(clip(j − i)) + dist_proj(RBF(|CA_i − CA_j|))`
    /// `[B, N, N, d_pair]` (initial-frame distances in Å).
    ///
    /// # Errors
    /// Candle errors.
    pub fn prepare(&self, cond: &Conditioning) -> Result<Prepared, StarMdError> {
        let (b, n) = cond.dims()?;
        let dev = cond.aatype.device();
        let s0 = (self.aa_embed.forward(&cond.aatype)? + self.init_proj.forward(&cond.init_single)?)?; // [B, N, D]
        let r = self.cfg.max_relpos as i64;
        let rel: Vec<u32> = (0..n as i64)
            .flat_map(|i| (0..n as i64).map(move |j| u32::try_from((j - i).clamp(-r, r) + r).unwrap_or(0)))
            .collect();
        let rel = self.relpos_embed.forward(&Tensor::from_vec(rel, (n, n), dev)?)?.unsqueeze(0)?; // [1, N, N, P]
        let ca = &cond.init_ca;
        let dist = (ca.unsqueeze(2)?.broadcast_sub(&ca.unsqueeze(1)?)?.sqr()?.sum(D::Minus1)? + 1e-8)?.sqrt()?; // [B, N, N]
        let bins = self.cfg.dist_bins;
        let step = if bins > 1 { self.cfg.dist_max_ang / (bins - 1) as f64 } else { self.cfg.dist_max_ang };
        let centres: Vec<f32> = (0..bins).map(|k| (k as f64 * step) as f32).collect();
        let centres = Tensor::from_vec(centres, bins, dev)?;
        let rbf = (dist.unsqueeze(D::Minus1)?.broadcast_sub(&centres)? / step)?.sqr()?.neg()?.exp()?; // [B, N, N, bins]
        let z = self.dist_proj.forward(&rbf)?.broadcast_add(&rel)?; // [B, N, N, P]
        Ok(Prepared { s0, z, b, n })
    }

    /// AdaLN conditioning `[M, 1, d_cond]` of `M` frames from their diffusion times and
    /// strides: an MLP of `[sin-emb(1000·t), sin-emb(1000·u)]` with
    /// `u = ln(Δt/Δt_min) / ln(Δt_max/Δt_min)` (0 when the range is one value).
    fn conditioning(&self, t: &[f64], dt_ns: &[f64], dev: &Device) -> Result<Tensor, StarMdError> {
        let m = t.len();
        let span = (self.cfg.dt_max_ns / self.cfg.dt_min_ns).ln();
        #[allow(clippy::cast_possible_truncation)]
        let u: Vec<f32> = dt_ns
            .iter()
            .map(|&dt| if span > 0.0 { ((dt / self.cfg.dt_min_ns).ln() / span * TIME_SCALE) as f32 } else { 0.0 })
            .collect();
        #[allow(clippy::cast_possible_truncation)]
        let t: Vec<f32> = t.iter().map(|&x| (x * TIME_SCALE) as f32).collect();
        let c = self.cfg.d_cond;
        let et = sinusoidal_embedding(&Tensor::from_vec(t, m, dev)?, c, TIME_MAX_PERIOD)?;
        let eu = sinusoidal_embedding(&Tensor::from_vec(u, m, dev)?, c, TIME_MAX_PERIOD)?;
        let h = self.cond_in.forward(&Tensor::cat(&[et, eu], D::Minus1)?)?.silu()?;
        Ok(self.cond_out.forward(&h)?.unsqueeze(1)?) // [M, 1, C]
    }

    /// One pass over the frames of `parts` (history parts first), returning all frames after
    /// the blocks `[B, F_total, N]` (nm). Only frames of role `Noisy` are updated.
    fn run(
        &self,
        prep: &Prepared,
        dt_ns: &[f64],
        parts: &[Part<'_>],
        mut kv: KvMode<'_>,
    ) -> Result<Rigids, StarMdError> {
        let (b, n) = (prep.b, prep.n);
        let dev = prep.s0.device().clone();
        if dt_ns.len() != b {
            return Err(StarMdError::config("strides", format!("{} values for a batch of {b}", dt_ns.len())));
        }
        let mut frames_of = Vec::with_capacity(parts.len());
        for p in parts {
            let (pb, f, pn) = bfn(p.rigids, "STAR-MD frames")?;
            if pb != b || pn != n || p.t.len() != b * f || p.positions.len() != f {
                return Err(StarMdError::config(
                    "STAR-MD frames",
                    format!(
                        "[{pb}, {f}, {pn}] with {} times and {} positions for a batch [{b}, N = {n}]",
                        p.t.len(),
                        p.positions.len()
                    ),
                ));
            }
            frames_of.push(f);
        }
        let f_tot: usize = frames_of.iter().sum();
        let n_hist: usize = parts.iter().zip(&frames_of).filter(|(p, _)| p.role == Role::History).map(|(_, f)| f).sum();
        if parts.iter().take_while(|p| p.role == Role::History).count()
            != parts.iter().filter(|p| p.role == Role::History).count()
        {
            return Err(StarMdError::config("STAR-MD frames", "history frames must come first"));
        }
        let rigids = cat_frames(&parts.iter().map(|p| p.rigids).collect::<Vec<_>>())?.scale_translation(NM_PER_ANG)?; // [B, F, N] nm
        // Times and strides per (sample, frame), sample-major.
        let mut times = Vec::with_capacity(b * f_tot);
        let mut roles = Vec::with_capacity(f_tot);
        let mut positions = Vec::with_capacity(f_tot);
        for bi in 0..b {
            for (p, &f) in parts.iter().zip(&frames_of) {
                times.extend_from_slice(&p.t[bi * f..(bi + 1) * f]);
            }
        }
        for (p, &f) in parts.iter().zip(&frames_of) {
            roles.extend(std::iter::repeat_n(p.role as u32, f));
            positions.extend_from_slice(p.positions);
        }
        let strides: Vec<f64> = dt_ns.iter().flat_map(|&d| std::iter::repeat_n(d, f_tot)).collect();
        let c = self.conditioning(&times, &strides, &dev)?; // [B·F, 1, C]
        let d = self.cfg.d_single;
        let role = self.role_embed.forward(&Tensor::from_vec(roles, f_tot, &dev)?)?.reshape((1, f_tot, 1, d))?;
        let mut s = prep.s0.unsqueeze(1)?.broadcast_add(&role)?; // [B, F, N, D]
        if let Some(proj) = &self.anchor_proj {
            let extra = parts
                .iter()
                .zip(&frames_of)
                .map(|(p, &f)| match p.features {
                    Some(x) => Ok(proj.forward(x)?),
                    None => Ok(Tensor::zeros((b, f, n, d), DType::F32, &dev)?),
                })
                .collect::<Result<Vec<_>, StarMdError>>()?;
            s = s.broadcast_add(&Tensor::cat(&extra, 1)?)?;
        }
        let mut s = s.reshape((b * f_tot, n, d))?; // [B·F, N, D]
        let z = prep.z.unsqueeze(1)?.broadcast_as((b, f_tot, n, n, self.cfg.d_pair))?.reshape((
            b * f_tot,
            n,
            n,
            self.cfg.d_pair,
        ))?;
        let res_pos: Vec<f64> = (0..f_tot).flat_map(|_| (0..n).map(|i| i as f64)).collect();
        let frame_pos: Vec<f64> = positions.iter().flat_map(|&p| std::iter::repeat_n(p, n)).collect();
        let rope = rope_2d_tables(
            &res_pos,
            &frame_pos,
            self.cfg.head_dim(),
            self.cfg.rope_base_residue,
            self.cfg.rope_base_frame,
            &dev,
        )?;
        let ones = Tensor::ones((b * f_tot, n), DType::F32, &dev)?;
        let mut rigids = rigids;
        for (bi, blk) in self.blocks.iter().enumerate() {
            let flat = reshape_rigids(&rigids, &[b * f_tot, n])?;
            let (h, g) = blk.ipa_norm.forward(&s, &c)?;
            s = gated_residual(&s, &blk.ipa.forward(&h, &z, &flat, &ones)?, &g)?;
            for (li, layer) in blk.st.iter().enumerate() {
                let (h, g) = layer.attn_norm.forward(&s, &c)?;
                let x = h.reshape((b, f_tot * n, d))?;
                let layer_idx = bi * self.cfg.st_layers + li;
                let a = match &kv {
                    KvMode::Off(mask) => layer.attn.forward(&x, &rope, Some(mask), None)?,
                    KvMode::Read(cache) => layer.attn.forward(&x, &rope, None, cache.layer(layer_idx))?,
                    KvMode::Append(cache) => layer.attn.forward(&x, &rope, None, cache.layer(layer_idx))?,
                };
                if let KvMode::Append(cache) = &mut kv {
                    cache.push(layer_idx, a.k, a.v)?;
                }
                s = gated_residual(&s, &a.out.reshape((b * f_tot, n, d))?, &g)?;
                let (h, g) = layer.mlp_norm.forward(&s, &c)?;
                s = gated_residual(&s, &layer.mlp.forward(&h)?, &g)?;
            }
            let n_noisy = f_tot - n_hist;
            if n_noisy > 0 {
                let noisy = reshape_rigids(&narrow_frames(&rigids, n_hist, n_noisy)?, &[b * n_noisy, n])?;
                let s_noisy = s.reshape((b, f_tot, n, d))?.narrow(1, n_hist, n_noisy)?.reshape((b * n_noisy, n, d))?;
                let updated = reshape_rigids(&blk.bb_update.apply(&noisy, &s_noisy)?, &[b, n_noisy, n])?;
                rigids =
                    if n_hist > 0 { cat_frames(&[&narrow_frames(&rigids, 0, n_hist)?, &updated])? } else { updated };
            }
        }
        if let KvMode::Append(cache) = kv {
            cache.finish_frame();
        }
        Ok(rigids)
    }

    /// Start frames `[B, F, N]` (Å) and anchor features `[B, F, N, ANCHOR_FEATURES]` of noisy
    /// frames `[B, F, N]` (Å) at times `t` (one per (sample, frame)), given the previous
    /// history frame of each (sample, frame) (`None`: no history, start from the noisy frame).
    /// See the module docs; computed in f64 outside the autograd graph (inputs only).
    fn anchored(&self, noisy: &Rigids, prev: &[Option<&[Rigid]>], t: &[f64]) -> Result<(Rigids, Tensor), StarMdError> {
        let (b, f, n) = bfn(noisy, "noisy frames")?;
        let a = self.cfg.anchor.unwrap_or_default();
        if prev.len() != b * f || t.len() != b * f {
            return Err(StarMdError::config(
                "anchor",
                format!("{} anchors / {} times for {} frames", prev.len(), t.len(), b * f),
            ));
        }
        let rows = noisy.to_scalar()?;
        let mut start = Vec::with_capacity(rows.len());
        let mut feats = Vec::with_capacity(rows.len() * ANCHOR_FEATURES);
        for (m, (x, &tm)) in rows.chunks(n.max(1)).zip(t).enumerate() {
            let (s, fe) = anchor_start(&self.cfg, &a, x, prev[m], tm);
            start.extend(s);
            feats.extend(fe);
        }
        let dev = noisy.trans.device();
        let start = reshape_rigids(&Rigids::from_scalar(&start, dev)?, &[b, f, n])?;
        Ok((start, Tensor::from_vec(feats, (b, f, n, ANCHOR_FEATURES), dev)?))
    }

    /// Training pass: predict the clean frames of every noisy frame of `F`-frame windows in
    /// one pass (block-causal mask) → `[B, F, N]` (Å).
    ///
    /// # Errors
    /// Mismatched shapes or time counts; candle errors.
    pub fn forward_window(&self, prep: &Prepared, input: &WindowInput<'_>) -> Result<Rigids, StarMdError> {
        let (b, f, n) = bfn(input.noisy, "noisy frames")?;
        let positions: Vec<f64> = (0..f).map(|i| i as f64).collect();
        let mask = history_noisy_mask(f, n, prep.s0.device())?;
        let (start, features) = if self.cfg.anchor.is_some() {
            let hist = input.previous.unwrap_or(input.history).to_scalar()?;
            let prev: Vec<Option<&[Rigid]>> =
                (0..b * f).map(|m| (m % f > 0).then(|| &hist[(m - 1) * n..m * n])).collect();
            let (start, features) = self.anchored(input.noisy, &prev, input.noisy_t)?;
            (start, Some(features))
        } else {
            (input.noisy.clone(), None)
        };
        let parts = [
            Part {
                rigids: input.history,
                t: input.history_t,
                positions: &positions,
                role: Role::History,
                features: None,
            },
            Part {
                rigids: &start,
                t: input.noisy_t,
                positions: &positions,
                role: Role::Noisy,
                features: features.as_ref(),
            },
        ];
        let out = self.run(prep, input.dt_ns, &parts, KvMode::Off(&mask))?;
        Ok(narrow_frames(&out, f, f)?.scale_translation(1.0 / NM_PER_ANG)?)
    }

    /// Rollout: push one history frame `[B, N]` (Å, context-noised to times `tau`, one per
    /// sample) at frame index `position` through the network, appending its keys and values
    /// to `cache`.
    ///
    /// # Errors
    /// Mismatched shapes; candle errors.
    pub fn append_history(
        &self,
        prep: &Prepared,
        cache: &mut FrameCache,
        frame: &Rigids,
        tau: &[f64],
        dt_ns: &[f64],
        position: f64,
    ) -> Result<(), StarMdError> {
        let framed = reshape_rigids(frame, &[prep.b, 1, prep.n])?;
        let part = Part { rigids: &framed, t: tau, positions: &[position], role: Role::History, features: None };
        self.run(prep, dt_ns, &[part], KvMode::Append(cache))?;
        Ok(())
    }

    /// Rollout: the predicted clean frames `[B, N]` (Å) of the noisy frames of `q`, attending
    /// to the history in `cache` (unchanged).
    ///
    /// # Errors
    /// Mismatched shapes; candle errors.
    pub fn denoise(&self, prep: &Prepared, cache: &FrameCache, q: &NoisyQuery<'_>) -> Result<Rigids, StarMdError> {
        let NoisyQuery { noisy, t, dt_ns, position, anchor } = *q;
        let framed = reshape_rigids(noisy, &[prep.b, 1, prep.n])?;
        let (start, features) = match (self.cfg.anchor, anchor) {
            (Some(_), anchor) => {
                let rows = anchor.map(Rigids::to_scalar).transpose()?;
                let n = prep.n;
                let prev: Vec<Option<&[Rigid]>> =
                    (0..prep.b).map(|m| rows.as_ref().map(|r| &r[m * n..(m + 1) * n])).collect();
                let (start, features) = self.anchored(&framed, &prev, t)?;
                (start, Some(features))
            }
            (None, _) => (framed, None),
        };
        let part = Part { rigids: &start, t, positions: &[position], role: Role::Noisy, features: features.as_ref() };
        let out = self.run(prep, dt_ns, &[part], KvMode::Read(cache))?;
        reshape_rigids(&out.scale_translation(1.0 / NM_PER_ANG)?, &[prep.b, prep.n])
    }
}

/// `x` in the local coordinates of `start`: 9 rotation entries, 3 translation entries in units
/// of `unit_ang` Å.
fn local_features(start: &Rigid, x: &Rigid, unit_ang: f64) -> [f64; 12] {
    let rel = start.inverse().compose(x);
    let r = rel.rot.matrix();
    let p = rel.trans / unit_ang;
    [r[(0, 0)], r[(0, 1)], r[(0, 2)], r[(1, 0)], r[(1, 1)], r[(1, 2)], r[(2, 0)], r[(2, 1)], r[(2, 2)], p.x, p.y, p.z]
}

/// Start frames and anchor features (`N × ANCHOR_FEATURES`) of one noisy frame `x` (Å) at
/// diffusion time `t` with previous history frame `prev` (module docs). A superposition that
/// fails (degenerate points) counts as no anchor.
fn anchor_start(
    cfg: &StarMdConfig,
    a: &AnchorConfig,
    x: &[Rigid],
    prev: Option<&[Rigid]>,
    t: f64,
) -> (Vec<Rigid>, Vec<f32>) {
    let fit = prev.filter(|p| p.len() == x.len()).and_then(|p| {
        let mobile: Vec<Vec3> = p.iter().map(|r| r.trans).collect();
        let target: Vec<Vec3> = x.iter().map(|r| r.trans).collect();
        superpose(&mobile, &target).ok().map(|s| (p, s.rigid))
    });
    let mut start = Vec::with_capacity(x.len());
    let mut feats = Vec::with_capacity(x.len() * ANCHOR_FEATURES);
    #[allow(clippy::cast_possible_truncation)]
    let mut push = |row: &[f64]| feats.extend(row.iter().map(|&v| v as f32));
    match fit {
        None => {
            for r in x {
                start.push(*r);
                push(&local_features(r, r, 1.0));
                push(&[0.0; 13]);
            }
        }
        Some((p, g)) => {
            let r3 = &cfg.diffusion.r3;
            let integral = r3.schedule.integral(t);
            let alpha = (-0.5 * integral).exp();
            let var_ang = -(-integral).exp_m1() / (r3.coordinate_scaling * r3.coordinate_scaling);
            let s2 = a.sigma_ang * a.sigma_ang;
            let w_trans = alpha * s2 / (alpha * alpha * s2 + var_ang);
            // Translation features in units of their expected size (prior width plus noise),
            // so that at high t the uninformative noisy offsets stay O(1) instead of tens of Å.
            let unit = (s2 + var_ang).sqrt();
            let so3_cfg = &cfg.diffusion.so3;
            let (sig_r, _) = so3_cfg.schedule.sigma_and_rate(t, so3_cfg.min_sigma, so3_cfg.max_sigma);
            let w_rot = a.sigma_rad * a.sigma_rad / (a.sigma_rad * a.sigma_rad + sig_r * sig_r);
            // Blend about the noisy frame's CA centroid (the superposed anchor shares it), so
            // the start frames move with any rigid motion of the noisy frame.
            let c = x.iter().map(|r| r.trans).sum::<Vec3>() / x.len().max(1) as f64;
            for (r, q) in x.iter().zip(p) {
                let anchor = g.compose(q);
                let (ra, rx) = (anchor.trans - c, r.trans - c);
                let trans = c + ra + (rx - ra * alpha) * w_trans;
                let s = Rigid::new(so3::geodesic(&anchor.rot, &r.rot, w_rot), trans);
                start.push(s);
                push(&local_features(&s, r, unit));
                push(&local_features(&s, &anchor, unit));
                push(&[1.0]);
            }
        }
    }
    (start, feats)
}

/// Deterministic initialisation of a freshly built model: [`default_init_rule`] except the
/// backbone updates, which start at zero (AlphaFold2 Suppl. 1.8.2: the first update is the
/// identity).
///
/// # Errors
/// Candle errors.
pub fn init_weights(varmap: &VarMap, seed: u64) -> Result<(), StarMdError> {
    init_seeded_with(varmap, seed, |name, shape| {
        if name.split('.').any(|seg| seg == "bb_update") { InitRule::Zeros } else { default_init_rule(name, shape) }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{backbone_frames, centered};
    use protforge_se3::{Rigid, Vec3, so3};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    fn randn3(rng: &mut StdRng) -> Vec3 {
        Vec3::new(rng.sample(StandardNormal), rng.sample(StandardNormal), rng.sample(StandardNormal))
    }

    /// A random compact chain of `n` frames (Å), centred.
    fn chain(n: usize, rng: &mut StdRng) -> Vec<Rigid> {
        let mut p = Vec3::zeros();
        let frames: Vec<Rigid> = (0..n)
            .map(|_| {
                let d = randn3(rng);
                p += d / d.norm() * 3.8;
                Rigid::new(so3::exp(&(randn3(rng) * 1.2)), p)
            })
            .collect();
        centered(&frames)
    }

    /// A tiny model with every parameter (including the zero-initialised gates and updates)
    /// set to small random values, so every path is active.
    fn model(seed: u64) -> (VarMap, StarMd) {
        model_with(seed, true)
    }

    /// As [`model`], with or without the previous-frame anchor.
    fn model_with(seed: u64, anchor: bool) -> (VarMap, StarMd) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let cfg = StarMdConfig { anchor: anchor.then(Default::default), ..StarMdConfig::tiny() };
        let m = StarMd::new(&cfg, vb).unwrap();
        init_weights(&varmap, seed).unwrap();
        protforge_nn::init::init_seeded_with(&varmap, seed + 1, |name, shape| match default_init_rule(name, shape) {
            InitRule::Zeros => InitRule::Normal { std: 0.1 },
            other => other,
        })
        .unwrap();
        (varmap, m)
    }

    struct Setup {
        prep: Prepared,
        history: Vec<Vec<Rigid>>,
        noisy: Vec<Vec<Rigid>>,
        t_hist: Vec<f64>,
        t_noisy: Vec<f64>,
    }

    /// One sample (B = 1) of `f` frames of `n` residues.
    fn setup(m: &StarMd, f: usize, n: usize, seed: u64) -> Setup {
        let mut rng = StdRng::seed_from_u64(seed);
        let init = chain(n, &mut rng);
        let atoms = crate::features::atoms_from_frames(&init, Vec3::new(0.6, 1.0, 0.0));
        let aatype: Vec<u8> = (0..n).map(|i| (i * 7 % 20) as u8).collect();
        let cond = Conditioning::new(&[&aatype], &[&atoms], &Device::Cpu).unwrap();
        assert_eq!(backbone_frames(&atoms).unwrap().len(), n);
        let history: Vec<Vec<Rigid>> = (0..f).map(|_| chain(n, &mut rng)).collect();
        // Noisy frame ℓ: history frame ℓ − 1 (ℓ = 0: a fresh chain) moved rigidly and jittered,
        // as in MD, so the anchor superposition is well conditioned.
        let noisy = (0..f)
            .map(|l| {
                let base = if l == 0 { chain(n, &mut rng) } else { history[l - 1].clone() };
                let g = Rigid::new(so3::exp(&(randn3(&mut rng) * 2.0)), randn3(&mut rng) * 3.0);
                base.iter()
                    .map(|r| {
                        let moved = g.compose(r);
                        Rigid::new(
                            moved.rot.compose(&so3::exp(&(randn3(&mut rng) * 0.2))),
                            moved.trans + randn3(&mut rng),
                        )
                    })
                    .collect()
            })
            .collect();
        Setup {
            prep: m.prepare(&cond).unwrap(),
            history,
            noisy,
            t_hist: (0..f).map(|_| rng.random_range(0.0..0.1)).collect(),
            t_noisy: (0..f).map(|_| rng.random_range(0.05..1.0)).collect(),
        }
    }

    fn up(frames: &[Vec<Rigid>]) -> Rigids {
        let rows: Vec<Rigid> = frames.iter().flatten().copied().collect();
        reshape_rigids(&Rigids::from_scalar(&rows, &Device::Cpu).unwrap(), &[1, frames.len(), frames[0].len()]).unwrap()
    }

    fn window(m: &StarMd, s: &Setup) -> Vec<Rigid> {
        let (h, x) = (up(&s.history), up(&s.noisy));
        let input = WindowInput {
            history: &h,
            history_t: &s.t_hist,
            noisy: &x,
            noisy_t: &s.t_noisy,
            dt_ns: &[0.1],
            previous: None,
        };
        m.forward_window(&s.prep, &input).unwrap().to_scalar().unwrap()
    }

    /// Largest difference of two frame sets: translations relative to their size (f32 keeps
    /// about 7 significant digits of coordinates of tens of Å), rotation matrix entries absolute.
    fn max_frame_diff(a: &[Rigid], b: &[Rigid]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| {
                let trans = (x.trans - y.trans).norm() / (1.0 + x.trans.norm().max(y.trans.norm()));
                trans.max((x.rot.matrix() - y.rot.matrix()).abs().max())
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn kv_cached_rollout_passes_equal_the_training_pass() {
        for anchor in [true, false] {
            let (_, m) = model_with(3, anchor);
            kv_cached_rollout_passes_equal_the_training_pass_for(&m);
        }
    }

    fn kv_cached_rollout_passes_equal_the_training_pass_for(m: &StarMd) {
        let (f, n) = (4, 7);
        let s = setup(m, f, n, 11);
        let full = window(m, &s);
        let mut cache = m.new_cache(None);
        for l in 0..f {
            let x = Rigids::from_scalar(&s.noisy[l], &Device::Cpu).unwrap();
            let anchor = (l > 0).then(|| {
                reshape_rigids(&Rigids::from_scalar(&s.history[l - 1], &Device::Cpu).unwrap(), &[1, n]).unwrap()
            });
            let noisy = reshape_rigids(&x, &[1, n]).unwrap();
            let q = NoisyQuery {
                noisy: &noisy,
                t: &[s.t_noisy[l]],
                dt_ns: &[0.1],
                position: l as f64,
                anchor: anchor.as_ref(),
            };
            let pred = m.denoise(&s.prep, &cache, &q).unwrap();
            let d = max_frame_diff(&pred.to_scalar().unwrap(), &full[l * n..(l + 1) * n]);
            assert!(d < 1e-5, "frame {l}: cached and full passes differ by {d}");
            let h = reshape_rigids(&Rigids::from_scalar(&s.history[l], &Device::Cpu).unwrap(), &[1, n]).unwrap();
            m.append_history(&s.prep, &mut cache, &h, &[s.t_hist[l]], &[0.1], l as f64).unwrap();
        }
        assert_eq!(cache.frames(), f);
        // Memory is linear in frames: every frame adds the same number of bytes.
        let per_frame = 2 * m.attention_layers() * n * m.config().d_single * 4;
        assert_eq!(cache.bytes(), f * per_frame);
    }

    #[test]
    fn noisy_frames_see_only_earlier_history() {
        for anchor in [true, false] {
            let (_, m) = model_with(5, anchor);
            noisy_frames_see_only_earlier_history_for(&m);
        }
    }

    fn noisy_frames_see_only_earlier_history_for(m: &StarMd) {
        let (f, n) = (4, 6);
        let s = setup(m, f, n, 2);
        let base = window(m, &s);
        let mut rng = StdRng::seed_from_u64(99);
        // Perturb history frame 1: noisy frames 0 and 1 are unchanged, 2 and 3 change.
        let mut s2 = Setup {
            history: s.history.clone(),
            noisy: s.noisy.clone(),
            t_hist: s.t_hist.clone(),
            t_noisy: s.t_noisy.clone(),
            prep: s.prep.clone(),
        };
        s2.history[1] = chain(n, &mut rng);
        let out = window(m, &s2);
        for l in 0..f {
            let d = max_frame_diff(&out[l * n..(l + 1) * n], &base[l * n..(l + 1) * n]);
            if l <= 1 {
                assert!(d < 1e-6, "noisy frame {l} saw history frame 1 ({d})");
            } else {
                assert!(d > 1e-4, "noisy frame {l} ignored history frame 1 ({d})");
            }
        }
        // Perturb noisy frame 2: only its own prediction changes.
        let mut s3 = Setup {
            history: s.history.clone(),
            noisy: s.noisy.clone(),
            t_hist: s.t_hist.clone(),
            t_noisy: s.t_noisy.clone(),
            prep: s.prep.clone(),
        };
        s3.noisy[2] = chain(n, &mut rng);
        let out = window(m, &s3);
        for l in 0..f {
            let d = max_frame_diff(&out[l * n..(l + 1) * n], &base[l * n..(l + 1) * n]);
            assert_eq!(d < 1e-6, l != 2, "noisy frame {l}: {d}");
        }
    }

    #[test]
    fn predictions_are_equivariant_under_global_rigid_motions() {
        for anchor in [true, false] {
            let (_, m) = model_with(7, anchor);
            predictions_are_equivariant_under_global_rigid_motions_for(&m);
        }
    }

    fn predictions_are_equivariant_under_global_rigid_motions_for(m: &StarMd) {
        let (f, n) = (3, 6);
        let s = setup(m, f, n, 4);
        let base = window(m, &s);
        let mut rng = StdRng::seed_from_u64(8);
        // Move every noisy frame by one rigid motion g and each history frame by its own.
        let g = Rigid::new(so3::exp(&Vec3::new(0.9, -2.1, 0.4)), Vec3::new(3.0, -7.0, 5.0));
        let moved = Setup {
            history: s
                .history
                .iter()
                .map(|fr| {
                    let h = Rigid::new(so3::exp(&(randn3(&mut rng) * 2.0)), randn3(&mut rng) * 10.0);
                    fr.iter().map(|r| h.compose(r)).collect()
                })
                .collect(),
            noisy: s.noisy.iter().map(|fr| fr.iter().map(|r| g.compose(r)).collect()).collect(),
            t_hist: s.t_hist.clone(),
            t_noisy: s.t_noisy.clone(),
            prep: s.prep.clone(),
        };
        let out = window(m, &moved);
        let want: Vec<Rigid> = base.iter().map(|r| g.compose(r)).collect();
        let d = max_frame_diff(&out, &want);
        assert!(d < 2e-4, "prediction is not equivariant: {d}");
    }

    #[test]
    fn anchor_start_runs_from_the_anchor_to_the_noisy_frame() {
        let cfg = StarMdConfig::tiny();
        let a = cfg.anchor.unwrap();
        let mut rng = StdRng::seed_from_u64(21);
        let prev = chain(9, &mut rng);
        // The noisy frame: the previous one moved rigidly, plus per-residue jitter.
        let g = Rigid::new(so3::exp(&Vec3::new(0.3, 1.9, -0.8)), Vec3::new(1.0, 2.0, -3.0));
        let x: Vec<Rigid> = prev
            .iter()
            .map(|r| {
                let moved = g.compose(r);
                Rigid::new(moved.rot.compose(&so3::exp(&(randn3(&mut rng) * 0.3))), moved.trans + randn3(&mut rng))
            })
            .collect();
        let aligned: Vec<Rigid> = {
            let fit = superpose(
                &prev.iter().map(|r| r.trans).collect::<Vec<_>>(),
                &x.iter().map(|r| r.trans).collect::<Vec<_>>(),
            )
            .unwrap()
            .rigid;
            prev.iter().map(|r| fit.compose(r)).collect()
        };
        let (low, f_low) = anchor_start(&cfg, &a, &x, Some(&prev), 1e-4);
        let (high, f_high) = anchor_start(&cfg, &a, &x, Some(&prev), 1.0);
        assert_eq!((f_low.len(), f_high.len()), (9 * ANCHOR_FEATURES, 9 * ANCHOR_FEATURES));
        for i in 0..9 {
            assert!((low[i].trans - x[i].trans).norm() < 0.01, "t → 0 starts at the noisy frame");
            assert!((high[i].trans - aligned[i].trans).norm() < 0.01, "t = 1 starts at the superposed anchor");
            assert!(so3::log(&high[i].rot.inverse().compose(&aligned[i].rot)).norm() < 0.05);
            // At t → 0 the rotation noise is IGSO(3) σ(t) ≈ σ_min, so the start stays on the geodesic
            // from the anchor to the noisy rotation at s_r² / (s_r² + σ_min²).
            let w = {
                let so3c = &cfg.diffusion.so3;
                let sig = so3c.schedule.sigma_and_rate(1e-4, so3c.min_sigma, so3c.max_sigma).0;
                a.sigma_rad.powi(2) / (a.sigma_rad.powi(2) + sig * sig)
            };
            let want = so3::geodesic(&aligned[i].rot, &x[i].rot, w);
            assert!(so3::log(&low[i].rot.inverse().compose(&want)).norm() < 1e-9);
            assert_eq!(f_low[(i + 1) * ANCHOR_FEATURES - 1], 1.0, "has-anchor flag");
        }
        // No history: the noisy frame itself, flag off.
        let (none, f_none) = anchor_start(&cfg, &a, &x, None, 0.5);
        assert_eq!(none, x);
        assert!(
            f_none.chunks(ANCHOR_FEATURES).all(|c| c[ANCHOR_FEATURES - 1] == 0.0 && c[12..].iter().all(|&v| v == 0.0))
        );
        // The features do not see the global pose of either input.
        let h = Rigid::new(so3::exp(&Vec3::new(-1.2, 0.4, 2.2)), Vec3::new(-5.0, 8.0, 0.5));
        let moved_x: Vec<Rigid> = x.iter().map(|r| h.compose(r)).collect();
        let moved_prev: Vec<Rigid> = prev.iter().map(|r| g.compose(&h.compose(r))).collect();
        let (_, f_moved) = anchor_start(&cfg, &a, &moved_x, Some(&moved_prev), 0.5);
        let (_, f_mid) = anchor_start(&cfg, &a, &x, Some(&prev), 0.5);
        let d = f_moved.iter().zip(&f_mid).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(d < 1e-4, "anchor features depend on the global pose ({d})");
    }

    #[test]
    fn every_parameter_gets_a_gradient() {
        let (varmap, m) = model(9);
        let s = setup(&m, 3, 5, 6);
        let (h, x) = (up(&s.history), up(&s.noisy));
        let input = WindowInput {
            history: &h,
            history_t: &s.t_hist,
            noisy: &x,
            noisy_t: &s.t_noisy,
            dt_ns: &[0.3],
            previous: None,
        };
        let out = m.forward_window(&s.prep, &input).unwrap();
        let loss = (out.trans.sqr().unwrap().sum_all().unwrap() + out.rots.mats.sum_all().unwrap()).unwrap();
        let missing = protforge_nn::train::vars_missing_grad(&varmap, &loss).unwrap();
        assert!(missing.is_empty(), "no gradient: {missing:?}");
    }
}
