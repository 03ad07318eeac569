//! Joint spatio-temporal attention over (residue, frame) tokens (STAR-MD §3): 2-D rotary
//! position embeddings on (residue index, frame index), the block-causal mask of the
//! clean-history ‖ noisy-frames training sequence, and a KV cache that holds per-residue
//! keys and values only.
//!
//! Tokens are laid out frame-major: token `f·N + i` is residue `i` of frame `f`.

use crate::StarMdError;
use candle_core::{D, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use protforge_nn::attention::{MASK_NEG, RopeTables, apply_rope};
use protforge_nn::layers::LayerNorm;

/// 2-D RoPE tables (Su et al. 2021, RoFormer; the axial 2-D form of Heo et al. 2024) for the
/// tokens `(residue[j], frame[j])`: of the `Dh/2` rotation pairs `(p, p + Dh/2)` of a head,
/// pairs `p < Dh/4` turn with the residue index at frequencies `base_residue^(−p/(Dh/4))`
/// and pairs `p ≥ Dh/4` with the frame index at `base_frame^(−(p − Dh/4)/(Dh/4))`.
/// The score `q·k` of two rotated vectors then depends on the positions only through
/// `(Δresidue, Δframe)`. Angles are computed in f64. Returns tables `[1, 1, T, Dh/2]` for
/// [`apply_rope`].
///
/// # Errors
/// [`StarMdError::BadConfig`] if `head_dim` is not a positive multiple of 4 or the position
/// lists differ in length; candle errors.
pub fn rope_2d_tables(
    residue: &[f64],
    frame: &[f64],
    head_dim: usize,
    base_residue: f64,
    base_frame: f64,
    device: &Device,
) -> Result<RopeTables, StarMdError> {
    if head_dim == 0 || !head_dim.is_multiple_of(4) || residue.len() != frame.len() {
        return Err(StarMdError::config(
            "2-D RoPE",
            format!(
                "head_dim {head_dim} (multiple of 4), {} residue vs {} frame positions",
                residue.len(),
                frame.len()
            ),
        ));
    }
    let quarter = head_dim / 4;
    let freq = |base: f64, p: usize| base.powf(-(p as f64) / quarter as f64);
    let freqs: Vec<(bool, f64)> = (0..2 * quarter)
        .map(|p| if p < quarter { (true, freq(base_residue, p)) } else { (false, freq(base_frame, p - quarter)) })
        .collect();
    let mut cos = Vec::with_capacity(residue.len() * 2 * quarter);
    let mut sin = Vec::with_capacity(residue.len() * 2 * quarter);
    for (&r, &f) in residue.iter().zip(frame) {
        for &(is_res, w) in &freqs {
            let angle = if is_res { r * w } else { f * w };
            // Narrowing the f64 angle's sine and cosine to the f32 tensors.
            #[allow(clippy::cast_possible_truncation)]
            {
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
    }
    let shape = (1, 1, residue.len(), 2 * quarter);
    Ok(RopeTables { cos: Tensor::from_vec(cos, shape, device)?, sin: Tensor::from_vec(sin, shape, device)? })
}

/// Whether a token of frame `q` may attend to a token of frame `k` in the training sequence
/// of `F` clean-history frames followed by `F` noisy frames (frames `0..F` are history,
/// `F..2F` noisy): history frame `ℓ` sees history frames `≤ ℓ`; noisy frame `ℓ` sees history
/// frames `< ℓ` and itself (block diffusion, Arriola et al. 2025; STAR-MD §3.2).
#[must_use]
pub fn frame_visible(q: usize, k: usize, n_frames: usize) -> bool {
    match (q < n_frames, k < n_frames) {
        (true, true) => k <= q,
        (true, false) => false,
        (false, true) => k < q - n_frames,
        (false, false) => k == q,
    }
}

/// The additive block-causal mask `[1, 1, 2F·N, 2F·N]` of [`frame_visible`] (0 allowed,
/// [`MASK_NEG`] forbidden) for `F` frames of `N` residues.
///
/// # Errors
/// Candle errors building the tensor.
pub fn history_noisy_mask(n_frames: usize, n_res: usize, device: &Device) -> Result<Tensor, StarMdError> {
    let t = 2 * n_frames * n_res;
    let mut data = Vec::with_capacity(t * t);
    for q in 0..t {
        let fq = q / n_res;
        data.extend((0..t).map(|k| if frame_visible(fq, k / n_res, n_frames) { 0.0 } else { MASK_NEG }));
    }
    Ok(Tensor::from_vec(data, (1, 1, t, t), device)?)
}

/// Cached keys and values of one attention layer: `[B, H, T, Dh]` each, keys already rotated.
#[derive(Debug, Clone)]
pub struct LayerKv {
    k: Tensor,
    v: Tensor,
}

/// KV cache of a rollout: per attention layer, the keys and values of the per-residue tokens
/// of the history frames (no pair features are cached, so memory is
/// `O(layers · frames · N · D)`, linear in the number of frames). With `max_frames`, only the
/// most recent frames are kept (a sliding window over the history).
#[derive(Debug, Clone)]
pub struct FrameCache {
    layers: Vec<Option<LayerKv>>,
    frames: usize,
    max_frames: Option<usize>,
}

impl FrameCache {
    /// An empty cache for `n_layers` attention layers keeping at most `max_frames` frames
    /// (`None`: all).
    #[must_use]
    pub fn new(n_layers: usize, max_frames: Option<usize>) -> Self {
        Self { layers: vec![None; n_layers], frames: 0, max_frames }
    }

    /// Frames currently held.
    #[must_use]
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Bytes held by the cached keys and values.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|kv| (kv.k.elem_count() + kv.v.elem_count()) * kv.k.dtype().size_in_bytes())
            .sum()
    }

    /// Cached keys and values of layer `i`, if any.
    #[must_use]
    pub fn layer(&self, i: usize) -> Option<&LayerKv> {
        self.layers.get(i).and_then(Option::as_ref)
    }

    /// Append the keys and values `[B, H, N, Dh]` of one new frame to layer `i` (dropping the
    /// oldest frame when the window is full).
    ///
    /// # Errors
    /// [`StarMdError::BadConfig`] for a bad layer; candle shape errors.
    pub fn push(&mut self, i: usize, k: Tensor, v: Tensor) -> Result<(), StarMdError> {
        let n = k.dim(2)?;
        let slot = self.layers.get_mut(i).ok_or_else(|| StarMdError::config("cache layer", format!("{i}")))?;
        let (mut k, mut v) = match slot.take() {
            Some(old) => (Tensor::cat(&[&old.k, &k], 2)?, Tensor::cat(&[&old.v, &v], 2)?),
            None => (k.contiguous()?, v.contiguous()?),
        };
        if let Some(m) = self.max_frames {
            let len = k.dim(2)?;
            if len > m * n {
                k = k.narrow(2, len - m * n, m * n)?.contiguous()?;
                v = v.narrow(2, len - m * n, m * n)?.contiguous()?;
            }
        }
        *slot = Some(LayerKv { k, v });
        Ok(())
    }

    /// Record that one frame was pushed to every layer.
    pub fn finish_frame(&mut self) {
        self.frames = self.max_frames.map_or(self.frames + 1, |m| (self.frames + 1).min(m));
    }
}

/// Multi-head self-attention over spatio-temporal tokens with QK-LayerNorm and 2-D RoPE
/// (Vaswani et al. 2017; Dehghani et al. 2023 for QK-norm), which can also attend to the
/// keys and values of a [`FrameCache`] layer without copying them: the scores against the
/// cache and against the new tokens are normalised by one softmax.
///
/// Parameters: `q`, `k`, `v` `[D, D]` (no bias), `o` `[D, D]` with bias, affine LayerNorms
/// `q_norm`, `k_norm` over `D`.
#[derive(Debug, Clone)]
pub struct StAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: LayerNorm,
    k_norm: LayerNorm,
    heads: usize,
    head_dim: usize,
}

/// Output of one [`StAttention`] call: the attended tokens and the new keys and values (for
/// the cache).
#[derive(Debug, Clone)]
pub struct AttnOutput {
    /// `[B, T, D]`.
    pub out: Tensor,
    /// Rotated keys of the new tokens `[B, H, T, Dh]`.
    pub k: Tensor,
    /// Values of the new tokens `[B, H, T, Dh]`.
    pub v: Tensor,
}

impl StAttention {
    /// Attention over width `d` with `heads` heads.
    ///
    /// # Errors
    /// If `d` is not a positive multiple of `heads`; candle VarBuilder errors.
    pub fn new(d: usize, heads: usize, vb: VarBuilder) -> Result<Self, StarMdError> {
        if heads == 0 || d == 0 || !d.is_multiple_of(heads) {
            return Err(StarMdError::config("attention heads", format!("{d} is not a multiple of {heads}")));
        }
        Ok(Self {
            q: candle_nn::linear_no_bias(d, d, vb.pp("q"))?,
            k: candle_nn::linear_no_bias(d, d, vb.pp("k"))?,
            v: candle_nn::linear_no_bias(d, d, vb.pp("v"))?,
            o: candle_nn::linear(d, d, vb.pp("o"))?,
            q_norm: LayerNorm::new(d, true, vb.pp("q_norm"))?,
            k_norm: LayerNorm::new(d, true, vb.pp("k_norm"))?,
            heads,
            head_dim: d / heads,
        })
    }

    /// `[B, T, D] → [B, H, T, Dh]` (contiguous).
    fn split(&self, x: &Tensor) -> Result<Tensor, StarMdError> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
    }

    /// Attend `x [B, T, D]` (rotary tables of its `T` tokens, optional additive `mask`
    /// broadcastable to `[B, H, T, T]` among the new tokens) to itself and, with `past`, to
    /// every cached token as well → `[B, T, D]` plus the new keys and values.
    ///
    /// # Errors
    /// Candle shape errors (e.g. a cache of another batch size).
    pub fn forward(
        &self,
        x: &Tensor,
        rope: &RopeTables,
        mask: Option<&Tensor>,
        past: Option<&LayerKv>,
    ) -> Result<AttnOutput, StarMdError> {
        let (b, t, d) = x.dims3()?;
        let q = apply_rope(&self.split(&self.q_norm.forward(&self.q.forward(x)?)?)?, rope)?;
        let k = apply_rope(&self.split(&self.k_norm.forward(&self.k.forward(x)?)?)?, rope)?;
        let v = self.split(&self.v.forward(x)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?; // [B, H, T, T]
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let out = match past {
            None => candle_nn::ops::softmax(&scores, D::Minus1)?.matmul(&v)?,
            Some(kv) => {
                let tc = kv.k.dim(2)?;
                let past_scores = (q.matmul(&kv.k.t()?)? * scale)?; // [B, H, T, Tc]
                let probs = candle_nn::ops::softmax(&Tensor::cat(&[&past_scores, &scores], D::Minus1)?, D::Minus1)?;
                let p_past = probs.narrow(D::Minus1, 0, tc)?.contiguous()?;
                let p_new = probs.narrow(D::Minus1, tc, t)?.contiguous()?;
                (p_past.matmul(&kv.v)? + p_new.matmul(&v)?)?
            }
        }; // [B, H, T, Dh]
        let out = out.transpose(1, 2)?.reshape((b, t, d))?;
        Ok(AttnOutput { out: self.o.forward(&out)?, k, v })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::VarMap;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn rand_tensor(rng: &mut StdRng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<_>>(), shape, &Device::Cpu)
            .unwrap()
    }

    #[test]
    fn mask_follows_the_history_noisy_rule() {
        let (f, n) = (3, 2);
        let m = history_noisy_mask(f, n, &Device::Cpu).unwrap().squeeze(0).unwrap().squeeze(0).unwrap();
        let m = m.to_vec2::<f32>().unwrap();
        let ok = |q: usize, k: usize| m[q * n][k * n] == 0.0;
        // History frames: causal, inclusive.
        assert!(ok(0, 0) && ok(2, 0) && ok(2, 2) && !ok(0, 1));
        // History never sees noisy frames.
        assert!((0..f).all(|q| (f..2 * f).all(|k| !ok(q, k))));
        // Noisy frame ℓ (index f + ℓ): history < ℓ and itself only.
        assert!(!ok(f, 0) && ok(f, f) && !ok(f, f + 1));
        assert!(ok(f + 2, 0) && ok(f + 2, 1) && !ok(f + 2, 2) && ok(f + 2, f + 2) && !ok(f + 2, f + 1));
        // Whole frames share one rule: every residue pair of two frames agrees.
        for (q, row) in m.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                assert_eq!(*v == 0.0, frame_visible(q / n, k / n, f));
            }
        }
    }

    #[test]
    fn rope_2d_scores_depend_only_on_relative_positions() {
        let (dh, heads) = (12, 1);
        let mut rng = StdRng::seed_from_u64(3);
        let q = rand_tensor(&mut rng, &[1, heads, 1, dh]);
        let k = rand_tensor(&mut rng, &[1, heads, 1, dh]);
        let score = |qr: f64, qf: f64, kr: f64, kf: f64| -> f32 {
            let tq = rope_2d_tables(&[qr], &[qf], dh, 1000.0, 100.0, &Device::Cpu).unwrap();
            let tk = rope_2d_tables(&[kr], &[kf], dh, 1000.0, 100.0, &Device::Cpu).unwrap();
            let a = apply_rope(&q, &tq).unwrap();
            let b = apply_rope(&k, &tk).unwrap();
            (a * b).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()
        };
        let s = score(3.0, 1.0, 7.0, 4.0);
        for (dr, df) in [(5.0, 0.0), (0.0, 9.0), (-2.0, 30.0), (40.0, 250.0)] {
            let shifted = score(3.0 + dr, 1.0 + df, 7.0 + dr, 4.0 + df);
            assert!((s - shifted).abs() < 1e-5, "shift ({dr}, {df}): {s} vs {shifted}");
        }
        // Both axes matter.
        assert!((s - score(3.0, 1.0, 8.0, 4.0)).abs() > 1e-4);
        assert!((s - score(3.0, 1.0, 7.0, 5.0)).abs() > 1e-4);
        // Zero positions leave vectors unchanged.
        let t0 = rope_2d_tables(&[0.0], &[0.0], dh, 1000.0, 100.0, &Device::Cpu).unwrap();
        let d =
            (apply_rope(&q, &t0).unwrap() - &q).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-7);
        assert!(rope_2d_tables(&[0.0], &[0.0], 6, 1000.0, 100.0, &Device::Cpu).is_err());
    }

    #[test]
    fn cached_attention_equals_attention_over_the_concatenation() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let attn = StAttention::new(16, 2, vb).unwrap();
        protforge_nn::init::init_seeded(&varmap, 1).unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let (n, frames) = (3, 3);
        let x = rand_tensor(&mut rng, &[2, frames * n, 16]);
        let pos_r: Vec<f64> = (0..frames * n).map(|j| (j % n) as f64).collect();
        let pos_f: Vec<f64> = (0..frames * n).map(|j| (j / n) as f64).collect();
        let rope = rope_2d_tables(&pos_r, &pos_f, 8, 1000.0, 100.0, &Device::Cpu).unwrap();
        // Frame-causal mask over the three frames.
        let mask: Vec<f32> = (0..frames * n)
            .flat_map(|q| (0..frames * n).map(move |k| if k / n <= q / n { 0.0 } else { MASK_NEG }))
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, frames * n, frames * n), &Device::Cpu).unwrap();
        let full = attn.forward(&x, &rope, Some(&mask), None).unwrap().out;
        let mut cache = FrameCache::new(1, None);
        for f in 0..frames {
            let xf = x.narrow(1, f * n, n).unwrap();
            let rf =
                rope_2d_tables(&pos_r[f * n..(f + 1) * n], &pos_f[f * n..(f + 1) * n], 8, 1000.0, 100.0, &Device::Cpu)
                    .unwrap();
            let o = attn.forward(&xf, &rf, None, cache.layer(0)).unwrap();
            let d = (o.out - full.narrow(1, f * n, n).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-5, "frame {f}: {d}");
            cache.push(0, o.k, o.v).unwrap();
            cache.finish_frame();
        }
        assert_eq!(cache.frames(), 3);
        assert_eq!(cache.bytes(), 2 * 2 * 2 * 9 * 8 * 4);
        // A window of 2 frames keeps only the last two.
        let mut w = FrameCache::new(1, Some(2));
        for _ in 0..3 {
            let k = rand_tensor(&mut rng, &[2, 2, n, 8]);
            w.push(0, k.clone(), k).unwrap();
            w.finish_frame();
        }
        assert_eq!((w.frames(), w.layer(0).unwrap().k.dim(2).unwrap()), (2, 2 * n));
    }
}
