//! PAR networks: the autoregressive transformer `T_θ` and the flow decoder `v_θ`.
//!
//! Units: coordinates are **nm** inside the model (Proteina's `ang_to_nm`); callers convert
//! from Å at the boundary ([`ANG_PER_NM`]).
//!
//! Shapes: a batch holds `B` proteins of the same length `L`; scale `i` has `s_i` points.
//! - AR input of scale 0: learned `bos` tokens at the scale-0 positions; of scale `i ≥ 1`:
//!   `Up(context_{i−1}, s_i)` `[B, s_i, 3]`. All scales are concatenated (`T = Σ s_i` tokens),
//!   attention is full within a scale and causal across scales (PAR §3.2, as VAR).
//! - Decoder: `x_t [B, s_i, 3]`, `t [B]`, `z_i [B, s_i, D_ar]`, positions `[s_i]` → `v [B, s_i, 3]`.

use crate::config::ParConfig;
use crate::scales::positions;
use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};
use protforge_nn::attention::{AttnInputs, KvCache, block_causal_mask};
use protforge_nn::block::{BlockConfig, TransformerBlock};
use protforge_nn::layers::{LayerNorm, sinusoidal_embedding};

/// Å per nm.
pub const ANG_PER_NM: f64 = 10.0;
/// Period of the sinusoidal position features (residue-index units).
const POS_MAX_PERIOD: f64 = 2048.0;
/// Flow time is scaled by this before its sinusoidal embedding.
const TIME_SCALE: f64 = 1000.0;

/// Sinusoidal features of scale positions `linspace(1, len, size)`: `[size, dim]`.
fn position_features(len: usize, size: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let p = Tensor::from_vec(positions(len, size), size, device)?;
    sinusoidal_embedding(&p, dim, POS_MAX_PERIOD)
}

/// Resolution features of a scale of `size` points of a length-`len` chain:
/// `[1 if size == len else 0, ln(len / size)]` → `[1, 2]` (see `ParConfig::resolution_features`).
fn resolution_features(len: usize, size: usize, device: &Device) -> Result<Tensor> {
    let full = if size == len { 1.0f32 } else { 0.0 };
    let ratio = (len.max(1) as f32 / size.max(1) as f32).ln();
    Tensor::from_vec(vec![full, ratio], (1, 2), device)
}

/// The autoregressive transformer `T_θ` (PAR §3.2).
#[derive(Debug, Clone)]
pub struct ArTransformer {
    bos: Tensor,
    coord_in: Linear,
    res_in: Option<Linear>,
    pos_in: Linear,
    scale_emb: Embedding,
    blocks: Vec<TransformerBlock>,
    out_norm: LayerNorm,
    fourier_dim: usize,
}

impl ArTransformer {
    /// Build from the config; parameters under `vb` (`bos`, `coord_in`, `pos_in`,
    /// `scale_emb`, `blocks.{i}`, `out_norm`).
    ///
    /// # Errors
    /// Candle errors.
    pub fn new(cfg: &ParConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.ar.dim;
        let block = BlockConfig {
            d_model: d,
            n_heads: cfg.ar.heads,
            mlp_hidden: d * cfg.ar.mlp_ratio,
            d_cond: None,
            qk_norm: true,
        };
        Ok(Self {
            bos: vb.get(d, "bos")?,
            coord_in: candle_nn::linear(3, d, vb.pp("coord_in"))?,
            res_in: if cfg.resolution_features {
                Some(candle_nn::linear(2, d, vb.pp("res_in").pp(protforge_nn::init::ZERO_INIT))?)
            } else {
                None
            },
            pos_in: candle_nn::linear(cfg.fourier_dim, d, vb.pp("pos_in"))?,
            scale_emb: candle_nn::embedding(cfg.max_scales, d, vb.pp("scale_emb"))?,
            blocks: (0..cfg.ar.layers)
                .map(|i| TransformerBlock::new(&block, vb.pp(format!("blocks.{i}"))))
                .collect::<Result<Vec<_>>>()?,
            out_norm: LayerNorm::new(d, true, vb.pp("out_norm"))?,
            fourier_dim: cfg.fourier_dim,
        })
    }

    /// Input tokens of scale `scale` for a length-`len` protein of `size` points:
    /// `bos` (scale 0) or `coord_in(context)` (`context [B, size, 3]` nm), plus position and
    /// scale embeddings. → `[B, size, D_ar]`.
    fn tokens(&self, b: usize, len: usize, size: usize, scale: usize, context: Option<&Tensor>) -> Result<Tensor> {
        let device = self.bos.device();
        let pos = self.pos_in.forward(&position_features(len, size, self.fourier_dim, device)?)?; // [size, D]
        let sc = self.scale_emb.forward(&Tensor::new(&[scale as u32], device)?)?; // [1, D]
        let mut base = pos.broadcast_add(&sc)?; // [size, D]
        if let Some(res) = &self.res_in {
            base = base.broadcast_add(&res.forward(&resolution_features(len, size, device)?)?)?;
        }
        let base = base.unsqueeze(0)?; // [1, size, D]
        match context {
            None => base.broadcast_add(&self.bos)?.repeat((b, 1, 1)),
            Some(ctx) => self.coord_in.forward(ctx)?.broadcast_add(&base),
        }
    }

    /// Teacher-forced pass over all scales at once with the block-causal mask.
    ///
    /// `contexts[i]` is `Up(context_i, sizes[i+1])` `[B, sizes[i+1], 3]` for `i < n−1`.
    /// Returns `z_i [B, sizes[i], D_ar]` for every scale.
    ///
    /// # Errors
    /// Candle errors.
    pub fn forward_all(&self, len: usize, sizes: &[usize], contexts: &[Tensor], b: usize) -> Result<Vec<Tensor>> {
        let mut toks = Vec::with_capacity(sizes.len());
        for (i, &s) in sizes.iter().enumerate() {
            toks.push(self.tokens(b, len, s, i, if i == 0 { None } else { Some(&contexts[i - 1]) })?);
        }
        let mut x = Tensor::cat(&toks, 1)?; // [B, T, D]
        let mask = block_causal_mask(sizes, x.device())?;
        let inputs = AttnInputs { mask: Some(&mask), ..AttnInputs::default() };
        for block in &self.blocks {
            x = block.forward(&x, None, &inputs, None)?;
        }
        let x = self.out_norm.forward(&x)?;
        let mut out = Vec::with_capacity(sizes.len());
        let mut offset = 0;
        for &s in sizes {
            out.push(x.narrow(1, offset, s)?);
            offset += s;
        }
        Ok(out)
    }

    /// One autoregressive step with a KV cache (one cache per block): the tokens of scale
    /// `scale` attend to themselves and to every cached earlier scale. → `z [B, size, D_ar]`.
    ///
    /// # Errors
    /// Candle errors; the cache must hold exactly the earlier scales of this protein.
    pub fn step(
        &self,
        len: usize,
        size: usize,
        scale: usize,
        context: Option<&Tensor>,
        b: usize,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let mut x = self.tokens(b, len, size, scale, context)?;
        let inputs = AttnInputs::default();
        for (block, c) in self.blocks.iter().zip(cache.iter_mut()) {
            x = block.forward(&x, None, &inputs, Some(c))?;
        }
        self.out_norm.forward(&x)
    }

    /// Number of transformer blocks (= caches needed by [`Self::step`]).
    #[must_use]
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }
}

/// Inputs of one decoder call.
#[derive(Debug, Clone, Copy)]
pub struct DecoderInput<'a> {
    /// Noisy coordinates `[B, s, 3]` (nm).
    pub x_t: &'a Tensor,
    /// Flow time per sample `[B]` (`0` noise, `1` data).
    pub t: &'a Tensor,
    /// AR embedding of this scale `[B, s, D_ar]`.
    pub z: &'a Tensor,
    /// Self-conditioning estimate `[B, s, 3]` (nm), if any.
    pub x_sc: Option<&'a Tensor>,
    /// Protein length `L` (defines this scale's positions `linspace(1, L, s)`).
    pub len: usize,
}

/// The flow decoder `v_θ` (PAR §3.3; Proteina's non-equivariant transformer with pair bias
/// from current-coordinate distances and sequence separation, scaled for CPU). The pair
/// features (thermometer-encoded distances of `x_t` and of the self-conditioning estimate, and
/// signed log sequence separation) are projected straight to every block's per-head bias;
/// unlike Proteina there is no pair representation to update, which keeps the `O(s²)` work
/// small on CPU.
#[derive(Debug, Clone)]
pub struct FlowDecoder {
    x_in: Linear,
    sc_in: Linear,
    pos_in: Linear,
    t_in: Linear,
    t_out: Linear,
    z_in: Linear,
    res_in: Option<Linear>,
    pair_bias: Linear,
    nbr_in: Option<Linear>,
    blocks: Vec<TransformerBlock>,
    out_norm: LayerNorm,
    out: Linear,
    dist_edges: Tensor,
    sep_edges: Vec<f32>,
    sep_exact: usize,
    fourier_dim: usize,
    self_condition: bool,
    /// Separation features per `(len, size)`: constant, but needed at every sampling step.
    sep_cache: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(usize, usize), Tensor>>>,
}

impl FlowDecoder {
    /// Build from the config; parameters under `vb`.
    ///
    /// # Errors
    /// Candle errors.
    pub fn new(cfg: &ParConfig, vb: VarBuilder) -> Result<Self> {
        let dc = &cfg.decoder;
        let d = dc.dim;
        let block = BlockConfig {
            d_model: d,
            n_heads: dc.heads,
            mlp_hidden: d * dc.mlp_ratio,
            d_cond: Some(dc.cond_dim),
            qk_norm: true,
        };
        let device = vb.device().clone();
        // Thermometer edges: distances 0.1 nm … dist_max_nm (Proteina bins 0.1–3 nm).
        let dist_edges: Vec<f32> = (0..dc.dist_bins)
            .map(|k| (0.1 + (dc.dist_max_nm - 0.1) * k as f64 / (dc.dist_bins.max(2) - 1) as f64) as f32)
            .collect();
        // Signed log-separation edges, symmetric around 0.
        let umax = (1.0 + cfg.max_len as f64).ln();
        let sep_edges: Vec<f32> = (0..dc.seq_sep_bins)
            .map(|k| (-umax + 2.0 * umax * (k as f64 + 0.5) / dc.seq_sep_bins as f64) as f32)
            .collect();
        let sep_exact = if dc.seq_sep_exact > 0 { 2 * dc.seq_sep_exact + 1 } else { 0 };
        let pair_features = 2 * dc.dist_bins + dc.seq_sep_bins + sep_exact;
        Ok(Self {
            x_in: candle_nn::linear(3, d, vb.pp("x_in"))?,
            sc_in: candle_nn::linear(3, d, vb.pp("sc_in"))?,
            pos_in: candle_nn::linear(cfg.fourier_dim, d, vb.pp("pos_in"))?,
            t_in: candle_nn::linear(cfg.fourier_dim, dc.cond_dim, vb.pp("t_in"))?,
            t_out: candle_nn::linear(dc.cond_dim, dc.cond_dim, vb.pp("t_out"))?,
            z_in: candle_nn::linear(cfg.ar.dim, dc.cond_dim, vb.pp("z_in"))?,
            res_in: if cfg.resolution_features {
                Some(candle_nn::linear(2, dc.cond_dim, vb.pp("res_in").pp(protforge_nn::init::ZERO_INIT))?)
            } else {
                None
            },
            pair_bias: candle_nn::linear(pair_features, dc.heads * dc.layers, vb.pp("pair_bias"))?,
            nbr_in: if dc.neighbour_features {
                Some(candle_nn::linear(NBR_FEATURES, d, vb.pp("nbr_in").pp(protforge_nn::init::ZERO_INIT))?)
            } else {
                None
            },
            blocks: (0..dc.layers)
                .map(|i| TransformerBlock::new(&block, vb.pp(format!("blocks.{i}"))))
                .collect::<Result<Vec<_>>>()?,
            out_norm: LayerNorm::new(d, false, vb.pp("out_norm"))?,
            out: candle_nn::linear(d, 3, vb.pp("out"))?,
            dist_edges: Tensor::from_vec(dist_edges, dc.dist_bins, &device)?,
            sep_edges,
            sep_exact: dc.seq_sep_exact,
            fourier_dim: cfg.fourier_dim,
            self_condition: dc.self_condition,
            sep_cache: std::sync::Arc::default(),
        })
    }

    /// Whether the decoder was built to take self-conditioning input.
    #[must_use]
    pub fn self_condition(&self) -> bool {
        self.self_condition
    }

    /// Thermometer encoding of pairwise distances of `x [B, s, 3]` (nm, no gradient):
    /// `[B, s, s, bins]`, entry k = 1 if `d ≥ edge_k`.
    fn distance_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.detach();
        let diff = x.unsqueeze(2)?.broadcast_sub(&x.unsqueeze(1)?)?; // [B, s, s, 3]
        let d = diff.sqr()?.sum(D::Minus1)?.sqrt()?; // [B, s, s]
        d.unsqueeze(D::Minus1)?.broadcast_ge(&self.dist_edges)?.to_dtype(DType::F32)
    }

    /// Thermometer encoding of the signed log sequence separation of this scale's positions,
    /// followed by the one-hot bins of the rounded separation in `[−K, K]` when
    /// `seq_sep_exact = K > 0`: `[1, s, s, seq_sep_bins (+ 2K + 1)]`.
    fn separation_features(&self, len: usize, size: usize, device: &Device) -> Result<Tensor> {
        if let Some(t) = self.sep_cache.lock().ok().and_then(|c| c.get(&(len, size)).cloned()) {
            return Ok(t);
        }
        let t = self.compute_separation_features(len, size, device)?;
        if let Ok(mut c) = self.sep_cache.lock() {
            c.insert((len, size), t.clone());
        }
        Ok(t)
    }

    fn compute_separation_features(&self, len: usize, size: usize, device: &Device) -> Result<Tensor> {
        let p = positions(len, size);
        let exact = if self.sep_exact > 0 { 2 * self.sep_exact + 1 } else { 0 };
        let k = self.sep_edges.len() + exact;
        let mut v = Vec::with_capacity(size * size * k);
        let half = self.sep_exact as f32;
        for &pi in &p {
            for &pj in &p {
                let s = pj - pi;
                let u = s.signum() * s.abs().ln_1p();
                v.extend(self.sep_edges.iter().map(|&e| if u >= e { 1.0f32 } else { 0.0 }));
                if exact > 0 {
                    let r = s.round();
                    v.extend((0..exact).map(|j| if r.abs() <= half && j as f32 == r + half { 1.0f32 } else { 0.0 }));
                }
            }
        }
        Tensor::from_vec(v, (1, size, size, k), device)
    }

    /// Predicted velocity `[B, s, 3]` (nm per unit time).
    ///
    /// # Errors
    /// Candle errors.
    pub fn forward(&self, inp: &DecoderInput<'_>) -> Result<Tensor> {
        let (b, s, _) = inp.x_t.dims3()?;
        let device = inp.x_t.device();
        let sc = match inp.x_sc {
            Some(x) if self.self_condition => x.clone(),
            _ => inp.x_t.zeros_like()?,
        };
        let pos = self.pos_in.forward(&position_features(inp.len, s, self.fourier_dim, device)?)?; // [s, D]
        let mut h = (self.x_in.forward(inp.x_t)? + self.sc_in.forward(&sc)?)?.broadcast_add(&pos)?; // [B, s, D]
        if let Some(nbr) = &self.nbr_in {
            let f = Tensor::cat(&[neighbour_displacements(inp.x_t)?, neighbour_displacements(&sc)?], D::Minus1)?; // [B, s, 24]
            h = (h + nbr.forward(&f)?)?;
        }

        let t_feat = sinusoidal_embedding(&(inp.t * TIME_SCALE)?, self.fourier_dim, 10_000.0)?; // [B, F]
        let t_emb = self.t_out.forward(&self.t_in.forward(&t_feat)?.silu()?)?.unsqueeze(1)?; // [B, 1, C]
        let mut cond = self.z_in.forward(inp.z)?.broadcast_add(&t_emb)?; // [B, s, C]
        if let Some(res) = &self.res_in {
            cond = cond.broadcast_add(&res.forward(&resolution_features(inp.len, s, device)?)?)?;
        }
        let cond = cond.silu()?;

        let pair = Tensor::cat(
            &[
                self.distance_features(inp.x_t)?,
                self.distance_features(&sc)?,
                self.separation_features(inp.len, s, device)?.repeat((b, 1, 1, 1))?,
            ],
            D::Minus1,
        )?; // [B, s, s, F_pair]
        // One projection for every block's per-head bias: [B, s, s, H·layers] → [B, H·layers, s, s].
        let bias_all = self.pair_bias.forward(&pair)?.permute((0, 3, 1, 2))?.contiguous()?;
        let heads = bias_all.dim(1)? / self.blocks.len().max(1);
        for (l, block) in self.blocks.iter().enumerate() {
            let bias = bias_all.narrow(1, l * heads, heads)?; // [B, H, s, s]
            let inputs = AttnInputs { bias: Some(&bias), ..AttnInputs::default() };
            h = block.forward(&h, Some(&cond), &inputs, None)?;
        }
        self.out.forward(&self.out_norm.forward(&h)?)
    }
}

/// Neighbour features per residue: 4 displacements × 3 coordinates.
const NBR_FEATURES: usize = 24;

/// Displacements `x_{i+k} − x_i` for `k ∈ {−2, −1, 1, 2}` of `x [B, s, 3]` (nm), divided by the
/// CA–CA bond length (0.38 nm) and zero where the neighbour does not exist: `[B, s, 12]`.
/// No gradient flows through them (they are input features, like the distance bins).
fn neighbour_displacements(x: &Tensor) -> Result<Tensor> {
    let x = x.detach();
    let (b, s, _) = x.dims3()?;
    let mut parts = Vec::with_capacity(4);
    for k in [-2i64, -1, 1, 2] {
        let m = k.unsigned_abs() as usize;
        if m >= s {
            parts.push(Tensor::zeros((b, s, 3), x.dtype(), x.device())?);
            continue;
        }
        let pad = Tensor::zeros((b, m, 3), x.dtype(), x.device())?;
        let d = if k > 0 {
            // x_{i+m} − x_i for i < s − m, zero for the last m residues.
            Tensor::cat(&[(x.narrow(1, m, s - m)? - x.narrow(1, 0, s - m)?)?, pad], 1)?
        } else {
            // x_{i−m} − x_i for i ≥ m, zero for the first m residues.
            Tensor::cat(&[pad, (x.narrow(1, 0, s - m)? - x.narrow(1, m, s - m)?)?], 1)?
        };
        parts.push(d);
    }
    Tensor::cat(&parts, D::Minus1)? / 0.38
}

/// PAR: AR transformer + flow decoder.
#[derive(Debug, Clone)]
pub struct ParModel {
    /// The configuration the model was built from.
    pub cfg: ParConfig,
    /// `T_θ`.
    pub ar: ArTransformer,
    /// `v_θ`.
    pub decoder: FlowDecoder,
}

impl ParModel {
    /// Build both networks (`ar.*`, `decoder.*`).
    ///
    /// # Errors
    /// Candle errors.
    pub fn new(cfg: &ParConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            cfg: cfg.clone(),
            ar: ArTransformer::new(cfg, vb.pp("ar"))?,
            decoder: FlowDecoder::new(cfg, vb.pp("decoder"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_displacements_are_zero_padded_bond_vectors() {
        let x =
            Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 0.38, 0.0, 0.0, 0.38, 0.38, 0.0], (1, 3, 3), &Device::Cpu).unwrap();
        let f = neighbour_displacements(&x).unwrap().to_vec3::<f32>().unwrap();
        // Residue 1: k = −2 absent, k = −1 → (−1, 0, 0), k = +1 → (0, 1, 0), k = +2 absent.
        let want = [0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        for (a, b) in f[0][1].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", f[0][1]);
        }
        // Residue 0: k = +2 → (1, 1, 0).
        assert!((f[0][0][9] - 1.0).abs() < 1e-6 && (f[0][0][10] - 1.0).abs() < 1e-6);
    }
    use crate::scales::linear_weights;
    use candle_nn::VarMap;
    use protforge_flow::rng::{randn, seeded};
    use protforge_nn::init::{InitRule, default_init_rule, init_seeded_with};

    fn tiny() -> (ParConfig, VarMap, ParModel) {
        let cfg = ParConfig::tiny();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = ParModel::new(&cfg, vb).unwrap();
        // Perturb the AdaLN-Zero modulation so gradients reach every parameter.
        init_seeded_with(&varmap, 3, |name, shape| {
            if name.contains("adaln_mod") { InitRule::Normal { std: 0.3 } } else { default_init_rule(name, shape) }
        })
        .unwrap();
        (cfg, varmap, model)
    }

    fn up(ctx: &Tensor, to: usize) -> Tensor {
        let (b, from, _) = ctx.dims3().unwrap();
        let w = Tensor::from_vec(linear_weights(from, to), (to, from), &Device::Cpu).unwrap();
        w.unsqueeze(0).unwrap().repeat((b, 1, 1)).unwrap().matmul(ctx).unwrap()
    }

    #[test]
    fn kv_cached_ar_equals_full_pass() {
        let (cfg, _vm, model) = tiny();
        let len = 13;
        let sizes = cfg.scales.sizes(len);
        assert_eq!(sizes, vec![4, 8, 13]);
        let mut rng = seeded(1);
        let xs: Vec<Tensor> = sizes.iter().map(|&s| randn(&mut rng, &[2, s, 3], &Device::Cpu).unwrap()).collect();
        let contexts: Vec<Tensor> = (1..sizes.len()).map(|i| up(&xs[i - 1], sizes[i])).collect();
        let full = model.ar.forward_all(len, &sizes, &contexts, 2).unwrap();
        let mut cache = KvCache::for_layers(model.ar.n_layers());
        for (i, &s) in sizes.iter().enumerate() {
            let ctx = if i == 0 { None } else { Some(&contexts[i - 1]) };
            let z = model.ar.step(len, s, i, ctx, 2, &mut cache).unwrap();
            let diff = (z - &full[i]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "scale {i}: cached vs full differ by {diff}");
        }
    }

    #[test]
    fn ar_scales_are_causal() {
        // Changing the context of the last scale must not change earlier scales' outputs.
        let (cfg, _vm, model) = tiny();
        let len = 13;
        let sizes = cfg.scales.sizes(len);
        let mut rng = seeded(2);
        let mut contexts: Vec<Tensor> =
            (1..sizes.len()).map(|i| randn(&mut rng, &[1, sizes[i], 3], &Device::Cpu).unwrap()).collect();
        let a = model.ar.forward_all(len, &sizes, &contexts, 1).unwrap();
        contexts[1] = randn(&mut rng, &[1, sizes[2], 3], &Device::Cpu).unwrap();
        let b = model.ar.forward_all(len, &sizes, &contexts, 1).unwrap();
        for i in 0..2 {
            let d = (&a[i] - &b[i]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(d, 0.0, "scale {i} saw the future");
        }
        let d = (&a[2] - &b[2]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d > 1e-4);
    }

    #[test]
    fn decoder_shapes_and_every_parameter_gets_a_gradient() {
        let (cfg, varmap, model) = tiny();
        let len = 13;
        let sizes = cfg.scales.sizes(len);
        let mut rng = seeded(4);
        let contexts: Vec<Tensor> =
            (1..sizes.len()).map(|i| randn(&mut rng, &[2, sizes[i], 3], &Device::Cpu).unwrap()).collect();
        let zs = model.ar.forward_all(len, &sizes, &contexts, 2).unwrap();
        let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
        for (i, &s) in sizes.iter().enumerate() {
            let x_t = randn(&mut rng, &[2, s, 3], &Device::Cpu).unwrap();
            let x_sc = randn(&mut rng, &[2, s, 3], &Device::Cpu).unwrap();
            let t = Tensor::new(&[0.3f32, 0.8], &Device::Cpu).unwrap();
            let v =
                model.decoder.forward(&DecoderInput { x_t: &x_t, t: &t, z: &zs[i], x_sc: Some(&x_sc), len }).unwrap();
            assert_eq!(v.dims(), &[2, s, 3]);
            loss = (loss + v.sqr().unwrap().mean_all().unwrap()).unwrap();
        }
        let missing = protforge_nn::train::vars_missing_grad(&varmap, &loss).unwrap();
        assert!(missing.is_empty(), "parameters without gradient: {missing:?}");
    }

    #[test]
    fn exact_separation_bins_tell_the_bonded_neighbour_apart() {
        let (cfg, _vm, model) = tiny();
        let k = cfg.decoder.seq_sep_exact;
        let (logs, exact) = (cfg.decoder.seq_sep_bins, 2 * k + 1);
        let len = 9;
        let f = model.decoder.compute_separation_features(len, len, &Device::Cpu).unwrap();
        assert_eq!(f.dims(), &[1, len, len, logs + exact]);
        let f = f.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        let one_hot = |i: usize, j: usize| f[i][j][logs..].to_vec();
        // Δ = +1 and Δ = +2 differ, each is a single bin, and Δ beyond ±K has none.
        assert_ne!(one_hot(4, 5), one_hot(4, 6));
        for (i, j) in [(4, 5), (4, 6), (4, 3), (4, 4)] {
            assert_eq!(one_hot(i, j).iter().sum::<f32>(), 1.0, "pair ({i}, {j})");
        }
        assert_eq!(one_hot(4, 5)[k + 1], 1.0);
        assert_eq!(one_hot(0, 8).iter().sum::<f32>(), 0.0);
    }

    #[test]
    fn resolution_features_mark_the_full_scale() {
        let dev = Device::Cpu;
        let full = resolution_features(130, 130, &dev).unwrap().to_vec2::<f32>().unwrap();
        let coarse = resolution_features(130, 128, &dev).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(full, vec![vec![1.0, 0.0]]);
        assert_eq!(coarse[0][0], 0.0);
        assert!((coarse[0][1] - (130f32 / 128.0).ln()).abs() < 1e-6);
    }
}
