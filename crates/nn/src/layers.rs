//! Basic differentiable layers: LayerNorm from elementary ops, the SwiGLU MLP, adaptive
//! LayerNorm with AdaLN-Zero gating (DiT, Peebles & Xie 2023; Proteina, Geffner et al. 2025)
//! and sinusoidal embeddings of continuous values.
//!
//! Everything here is built from basic candle ops, so gradients flow (candle's fused
//! `ops::layer_norm` and `candle_nn::LayerNorm` have no backward; RUST-NOTES §2.1).
//! Constructors follow candle-transformers: `new(dims…, vb)`, parameter names mirror the
//! module tree (`vb.pp("…")`).

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder};

/// Variance epsilon of [`LayerNorm`] (PyTorch's default).
pub const LN_EPS: f64 = 1e-5;

/// Path segment of every AdaLN-Zero modulation Linear. Parameters whose name contains
/// `.adaln_mod.` (or starts with `adaln_mod.`) are zero-initialised by
/// [`crate::init::init_seeded`], so a block starts as the identity.
pub const ADALN_MOD: &str = "adaln_mod";

/// Layer normalisation over the last dimension (Ba et al. 2016), built from basic ops.
///
/// `y = (x − mean) / sqrt(var + eps) · weight + bias`, with the biased variance (divide by D)
/// and `eps = 1e-5`, as `torch.nn.LayerNorm`. Parameters (when `affine`): `weight` `[D]`
/// (initialised to 1) and `bias` `[D]` (initialised to 0).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    dim: usize,
}

impl LayerNorm {
    /// A LayerNorm over a last dimension of size `dim`; `affine = false` gives a
    /// parameter-free normalisation (used inside [`AdaLn`]).
    ///
    /// # Errors
    /// Candle errors from the VarBuilder (e.g. shape mismatch when loading).
    pub fn new(dim: usize, affine: bool, vb: VarBuilder) -> Result<Self> {
        let (weight, bias) = if affine {
            (
                Some(vb.get_with_hints(dim, "weight", Init::Const(1.0))?),
                Some(vb.get_with_hints(dim, "bias", Init::Const(0.0))?),
            )
        } else {
            (None, None)
        };
        Ok(Self { weight, bias, dim })
    }

    /// Size of the normalised (last) dimension.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Normalise over the last dimension without affine parameters: `[.., D] → [.., D]`.
///
/// # Errors
/// Candle shape/dtype errors.
pub fn layer_norm_plain(x: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    xc.broadcast_div(&(var + eps)?.sqrt()?)
}

impl Module for LayerNorm {
    /// `x: [.., D] → [.., D]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = layer_norm_plain(x, LN_EPS)?;
        if let Some(w) = &self.weight {
            y = y.broadcast_mul(w)?;
        }
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        Ok(y)
    }
}

/// SwiGLU feed-forward network (Shazeer 2020, "GLU Variants Improve Transformer"), the MLP
/// of Proteina's transition blocks.
///
/// `w_in: D → 2·H` (no bias) produces `[value | gate]`; the output is
/// `w_out(value · SiLU(gate))` with `w_out: H → D` (no bias). Shapes `[.., D] → [.., D]`.
#[derive(Debug, Clone)]
pub struct SwiGlu {
    w_in: Linear,
    w_out: Linear,
    hidden: usize,
}

impl SwiGlu {
    /// A SwiGLU MLP with model width `dim` and hidden width `hidden`.
    /// Parameters: `w_in.weight` `[2·hidden, dim]`, `w_out.weight` `[dim, hidden]`.
    ///
    /// # Errors
    /// Candle errors from the VarBuilder.
    pub fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            w_in: candle_nn::linear_no_bias(dim, 2 * hidden, vb.pp("w_in"))?,
            w_out: candle_nn::linear_no_bias(hidden, dim, vb.pp("w_out"))?,
            hidden,
        })
    }
}

impl Module for SwiGlu {
    /// `x: [.., D] → [.., D]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.w_in.forward(x)?;
        let value = h.narrow(D::Minus1, 0, self.hidden)?;
        let gate = h.narrow(D::Minus1, self.hidden, self.hidden)?;
        self.w_out.forward(&(value * gate.silu()?)?)
    }
}

/// The chunks produced by an [`AdaLnModulation`] with three outputs, each `[B, N, D]`
/// (or `[B, 1, D]` for a per-sequence conditioning).
#[derive(Debug, Clone)]
pub struct Modulation {
    /// Additive shift applied after normalisation.
    pub shift: Tensor,
    /// Multiplicative scale, used as `1 + scale`.
    pub scale: Tensor,
    /// Residual gate (AdaLN-Zero): the sub-block output is multiplied by it.
    pub gate: Tensor,
}

/// The AdaLN modulation network of DiT (Peebles & Xie 2023, §3.2 "adaLN-Zero"):
/// `c ↦ Linear(SiLU(c))`, split into `n_chunks` tensors of width `D`.
///
/// The Linear (named `adaln_mod`, see [`ADALN_MOD`]) has weight `[n_chunks·D, C]` and bias
/// `[n_chunks·D]`, both initialised to zero, so all shifts, scales and gates start at 0
/// and every AdaLN-Zero block starts as the identity.
#[derive(Debug, Clone)]
pub struct AdaLnModulation {
    linear: Linear,
    d_model: usize,
    n_chunks: usize,
}

impl AdaLnModulation {
    /// A modulation from a conditioning of width `d_cond` to `n_chunks` chunks of width
    /// `d_model`. Parameters live under `vb.pp("adaln_mod")`.
    ///
    /// # Errors
    /// Candle errors from the VarBuilder.
    pub fn new(d_cond: usize, d_model: usize, n_chunks: usize, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp(ADALN_MOD);
        let w = vb.get_with_hints((n_chunks * d_model, d_cond), "weight", Init::Const(0.0))?;
        let b = vb.get_with_hints(n_chunks * d_model, "bias", Init::Const(0.0))?;
        Ok(Self { linear: Linear::new(w, Some(b)), d_model, n_chunks })
    }

    /// `c: [B, N, C] → n_chunks × [B, N, D]` (any leading shape works).
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn chunks(&self, c: &Tensor) -> Result<Vec<Tensor>> {
        let h = self.linear.forward(&c.silu()?)?;
        (0..self.n_chunks).map(|i| h.narrow(D::Minus1, i * self.d_model, self.d_model)).collect()
    }

    /// The (shift, scale, gate) triple; requires `n_chunks == 3`.
    ///
    /// # Errors
    /// If this modulation does not have exactly three chunks, or on candle shape errors.
    pub fn modulation(&self, c: &Tensor) -> Result<Modulation> {
        if self.n_chunks != 3 {
            candle_core::bail!("AdaLnModulation::modulation needs 3 chunks, this one has {}", self.n_chunks);
        }
        let mut it = self.chunks(c)?.into_iter();
        match (it.next(), it.next(), it.next()) {
            (Some(shift), Some(scale), Some(gate)) => Ok(Modulation { shift, scale, gate }),
            _ => candle_core::bail!("AdaLnModulation produced fewer than 3 chunks"),
        }
    }
}

/// `x · (1 + scale) + shift`, broadcasting `shift`/`scale` (`[B, N or 1, D]`) over `x` `[B, N, D]`.
///
/// # Errors
/// Candle shape errors.
pub fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    x.broadcast_mul(&(scale + 1.0)?)?.broadcast_add(shift)
}

/// `x + gate · y` (AdaLN-Zero gated residual), broadcasting `gate` over `y`.
///
/// # Errors
/// Candle shape errors.
pub fn gated_residual(x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor> {
    x + y.broadcast_mul(gate)?
}

/// Adaptive LayerNorm with AdaLN-Zero gate (DiT, Peebles & Xie 2023; the per-token
/// conditioning form used by Proteina, Geffner et al. 2025).
///
/// Given tokens `x` `[B, N, D]` and a conditioning `c` `[B, N, C]` (per token) or
/// `[B, 1, C]` (per sequence), [`AdaLn::forward`] returns `LN(x)·(1 + scale(c)) + shift(c)`
/// and the `gate(c)` for the residual; the caller computes
/// `x + gate · sublayer(modulated)` (see [`gated_residual`]). LN has no affine parameters.
/// At initialisation the modulation is zero, so the output is `LN(x)` and the gate is 0.
#[derive(Debug, Clone)]
pub struct AdaLn {
    modulation: AdaLnModulation,
}

impl AdaLn {
    /// An adaptive LayerNorm over width `d_model` conditioned on width `d_cond`.
    /// Parameters: `adaln_mod.weight` `[3·d_model, d_cond]`, `adaln_mod.bias` `[3·d_model]`.
    ///
    /// # Errors
    /// Candle errors from the VarBuilder.
    pub fn new(d_model: usize, d_cond: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { modulation: AdaLnModulation::new(d_cond, d_model, 3, vb)? })
    }

    /// `x: [B, N, D]`, `c: [B, N or 1, C]` → (modulated `[B, N, D]`, gate `[B, N or 1, D]`).
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn forward(&self, x: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let m = self.modulation.modulation(c)?;
        let y = modulate(&layer_norm_plain(x, LN_EPS)?, &m.shift, &m.scale)?;
        Ok((y, m.gate))
    }
}

/// Sinusoidal embedding of continuous values (Vaswani et al. 2017, §3.5; the DiT timestep
/// embedding): for `values` `[..]` returns `[.., dim]` laid out as
/// `[sin(v·f_0) … sin(v·f_{h−1}) | cos(v·f_0) … cos(v·f_{h−1})]`, with `h = dim / 2` and
/// `f_i = max_period^(−i/h)` (so `f_0 = 1`). If `dim` is odd a zero column is appended.
///
/// Values need not be integers: use it for flow time `t ∈ [0, 1]` (scaled by the caller,
/// e.g. `t·1000`) and for fractional residue positions such as PAR's `linspace(1, L, size)`.
///
/// # Errors
/// Candle errors; `dim == 0` is rejected.
pub fn sinusoidal_embedding(values: &Tensor, dim: usize, max_period: f64) -> Result<Tensor> {
    if dim == 0 {
        candle_core::bail!("sinusoidal_embedding: dim must be positive");
    }
    let half = dim / 2;
    let device = values.device();
    let values = values.to_dtype(DType::F32)?;
    let mut parts = Vec::with_capacity(3);
    if half > 0 {
        let freqs: Vec<f32> =
            (0..half).map(|i| (-(max_period.ln()) * i as f64 / half as f64).exp() as f32).collect();
        let freqs = Tensor::from_vec(freqs, half, device)?;
        let args = values.unsqueeze(D::Minus1)?.broadcast_mul(&freqs)?;
        parts.push(args.sin()?);
        parts.push(args.cos()?);
    }
    if dim % 2 == 1 {
        let mut shape = values.dims().to_vec();
        shape.push(1);
        parts.push(Tensor::zeros(shape, DType::F32, device)?);
    }
    Tensor::cat(&parts, D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn rand_tensor(rng: &mut StdRng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.random_range(-1.5f32..1.5)).collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn layer_norm_matches_hand_computation() {
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let ln = LayerNorm::new(3, true, vb.pp("ln")).unwrap();
        varmap.set_one("ln.weight", Tensor::new(&[2f32, 1.0, 0.5], &Device::Cpu).unwrap()).unwrap();
        varmap.set_one("ln.bias", Tensor::new(&[0f32, 1.0, -1.0], &Device::Cpu).unwrap()).unwrap();
        let x = Tensor::new(&[[1f32, 2.0, 6.0], [-1.0, -1.0, -1.0]], &Device::Cpu).unwrap();
        let y = ln.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        // Row 0: mean 3, biased var (4 + 1 + 9)/3 = 14/3.
        let s = (14.0f64 / 3.0 + 1e-5).sqrt();
        let want0 = [2.0 * (-2.0 / s), 1.0 * (-1.0 / s) + 1.0, 0.5 * (3.0 / s) - 1.0];
        for (a, b) in y[0].iter().zip(want0) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
        }
        // Row 1 is constant: normalises to 0, output = bias.
        assert_eq!(y[1], vec![0.0, 1.0, -1.0]);
        assert_eq!(varmap.all_vars().len(), 2);
        let plain = LayerNorm::new(3, false, vb.pp("plain")).unwrap();
        assert_eq!(varmap.all_vars().len(), 2, "affine=false must create no parameters");
        let z = plain.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        assert!((z[0][0] as f64 + 2.0 / s).abs() < 1e-5);
    }

    #[test]
    fn swiglu_matches_hand_computation() {
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let mlp = SwiGlu::new(2, 1, vb).unwrap();
        // w_in rows: value = x0 + x1, gate = x0 - x1; w_out = [[2], [-1]].
        varmap.set_one("w_in.weight", Tensor::new(&[[1f32, 1.0], [1.0, -1.0]], &Device::Cpu).unwrap()).unwrap();
        varmap.set_one("w_out.weight", Tensor::new(&[[2f32], [-1.0]], &Device::Cpu).unwrap()).unwrap();
        let y = mlp.forward(&Tensor::new(&[[0.5f32, -0.25]], &Device::Cpu).unwrap()).unwrap();
        let y = y.to_vec2::<f32>().unwrap();
        let (v, g) = (0.25f64, 0.75f64);
        let h = v * g / (1.0 + (-g).exp());
        assert!((f64::from(y[0][0]) - 2.0 * h).abs() < 1e-6 && (f64::from(y[0][1]) + h).abs() < 1e-6, "{y:?}");
    }

    #[test]
    fn adaln_zero_is_plain_layer_norm_with_zero_gate_at_init() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let ada = AdaLn::new(5, 7, vb.pp("norm")).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let x = rand_tensor(&mut rng, &[2, 3, 5]);
        let c = rand_tensor(&mut rng, &[2, 3, 7]);
        let (y, gate) = ada.forward(&x, &c).unwrap();
        let ln = layer_norm_plain(&x, LN_EPS).unwrap();
        assert_eq!(y.to_vec3::<f32>().unwrap(), ln.to_vec3::<f32>().unwrap());
        assert_eq!(gate.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
        assert_eq!(gate.dims(), &[2, 3, 5]);
        let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["norm.adaln_mod.bias", "norm.adaln_mod.weight"]);
    }

    #[test]
    fn adaln_modulates_with_per_sequence_conditioning() {
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let ada = AdaLn::new(2, 1, vb).unwrap();
        // Bias only: shift = [1, 2], scale = [0.5, -1], gate = [3, 4].
        varmap
            .set_one("adaln_mod.bias", Tensor::new(&[1f32, 2.0, 0.5, -1.0, 3.0, 4.0], &Device::Cpu).unwrap())
            .unwrap();
        let x = Tensor::new(&[[[1f32, 3.0], [0.0, -2.0]]], &Device::Cpu).unwrap(); // [1, 2, 2]
        let c = Tensor::zeros((1, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let (y, gate) = ada.forward(&x, &c).unwrap();
        let y = y.to_vec3::<f32>().unwrap();
        // LN of [1, 3] = [-1, 1] (up to eps); ·(1 + scale) + shift = [-1.5 + 1, 0 + 2].
        assert!((y[0][0][0] + 0.5).abs() < 1e-4 && (y[0][0][1] - 2.0).abs() < 1e-4, "{y:?}");
        assert_eq!(gate.to_vec3::<f32>().unwrap(), vec![vec![vec![3.0, 4.0]]]);
        let r = gated_residual(&x, &Tensor::ones((1, 2, 2), DType::F32, &Device::Cpu).unwrap(), &gate).unwrap();
        assert_eq!(r.to_vec3::<f32>().unwrap()[0][1], vec![3.0, 2.0]);
    }

    #[test]
    fn sinusoidal_embedding_values_and_shapes() {
        let v = Tensor::new(&[[0f32, 2.5], [1.0, 7.25]], &Device::Cpu).unwrap();
        let e = sinusoidal_embedding(&v, 6, 10_000.0).unwrap();
        assert_eq!(e.dims(), &[2, 2, 6]);
        let e = e.to_vec3::<f32>().unwrap();
        // Position 0 → sin = 0, cos = 1.
        assert_eq!(e[0][0], vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        // Fractional position 2.5, frequency index 1: f_1 = 10000^(−1/3).
        let f1 = 10_000f64.powf(-1.0 / 3.0);
        assert!((f64::from(e[0][1][1]) - (2.5 * f1).sin()).abs() < 1e-6);
        assert!((f64::from(e[0][1][4]) - (2.5 * f1).cos()).abs() < 1e-6);
        assert!((f64::from(e[1][1][0]) - 7.25f64.sin()).abs() < 1e-6);
        let odd = sinusoidal_embedding(&Tensor::new(&[3f32], &Device::Cpu).unwrap(), 5, 100.0).unwrap();
        assert_eq!(odd.dims(), &[1, 5]);
        assert_eq!(odd.to_vec2::<f32>().unwrap()[0][4], 0.0);
        assert!(sinusoidal_embedding(&v, 0, 100.0).is_err());
    }
}
