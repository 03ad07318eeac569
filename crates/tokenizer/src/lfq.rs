//! Lookup-free quantization (LFQ; Yu et al. 2024, "Language Model Beats Diffusion —
//! Tokenizer is Key to Visual Generation", MAGVIT-v2 §3.1), as in DPLM-2's `modules/lfq.py`.
//!
//! Each residue's pre-quantized vector `x ∈ R^K` (`K` = bits, 13 in DPLM-2) is quantized per
//! dimension to `q_d = +1` if `x_d > 0`, else `−1`. The token id is **big-endian**, as in the
//! DPLM-2 code (`mask = 2 ** arange(K−1, −1, −1)`): dimension 0 is the most significant bit,
//! `id = Σ_d [q_d > 0] · 2^(K−1−d)`. (The paper's formula, `Σ_k 2^(k−1) 1{·}`, is
//! little-endian; the released DPLM-2 checkpoints and token files follow the code.)
//!
//! Training uses the straight-through estimator `x + (q − x).detach()`, the commitment loss
//! `mean((x − q)²)` and the entropy loss `H_sample − H_codebook` at temperature `τ` over the
//! `2^K` codes with logits `2 x·c` (per-sample entropy minimised, entropy of the batch-average
//! code distribution maximised).

use crate::config::QuantizerConfig;
use candle_core::{D, DType, Device, Result, Tensor};

/// The id of a bit vector, big-endian: `bits[0]` is the most significant bit.
///
/// ```
/// use protforge_tokenizer::lfq::{index_from_bits, bits_from_index};
/// let mut bits = [false; 13];
/// bits[0] = true; // most significant
/// assert_eq!(index_from_bits(&bits), 4096);
/// bits[12] = true;
/// assert_eq!(index_from_bits(&bits), 4097);
/// assert_eq!(bits_from_index(4097, 13), bits.to_vec());
/// ```
#[must_use]
pub fn index_from_bits(bits: &[bool]) -> u16 {
    bits.iter().fold(0u16, |acc, &b| (acc << 1) | u16::from(b))
}

/// The `n_bits` bits of `index`, big-endian (`[0]` is the most significant).
#[must_use]
pub fn bits_from_index(index: u16, n_bits: usize) -> Vec<bool> {
    (0..n_bits).map(|d| (index >> (n_bits - 1 - d)) & 1 == 1).collect()
}

/// The bits of `index` as a string of `0`/`1`, most significant first (for JSON output).
#[must_use]
pub fn bits_string(index: u16, n_bits: usize) -> String {
    bits_from_index(index, n_bits).into_iter().map(|b| if b { '1' } else { '0' }).collect()
}

/// The ±1 code vectors of token ids, padded: `tokens[b]` fills row `b` of `[B, L, bits]`
/// (`L` = `len`); positions beyond a record are −1 (the code of id 0).
///
/// # Errors
/// Candle errors; a record longer than `len`.
pub fn codes_from_tokens(tokens: &[Vec<u16>], len: usize, n_bits: usize, device: &Device) -> Result<Tensor> {
    let mut data = vec![-1f32; tokens.len() * len * n_bits];
    for (b, rec) in tokens.iter().enumerate() {
        if rec.len() > len {
            candle_core::bail!("codes_from_tokens: record {b} has {} tokens, more than {len}", rec.len());
        }
        for (i, &t) in rec.iter().enumerate() {
            for (d, bit) in bits_from_index(t, n_bits).into_iter().enumerate() {
                if bit {
                    data[(b * len + i) * n_bits + d] = 1.0;
                }
            }
        }
    }
    Tensor::from_vec(data, (tokens.len(), len, n_bits), device)
}

/// Quantizer output.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// `[B, L, K]` codes in {−1, +1}, carrying the straight-through gradient to `x`.
    pub codes: Tensor,
    /// `[B, L]` big-endian token ids (u32).
    pub indices: Tensor,
}

/// The auxiliary losses of one batch (scalars).
#[derive(Debug, Clone)]
pub struct LfqLosses {
    /// `mean((x − sign(x))²)` over valid residues and bits.
    pub commitment: Tensor,
    /// Mean per-residue entropy of the code distribution (nats).
    pub per_sample_entropy: Tensor,
    /// Entropy of the batch-average code distribution (nats).
    pub codebook_entropy: Tensor,
    /// `commitment_weight · commitment + entropy_weight · (per_sample − codebook)`.
    pub loss: Tensor,
}

/// The lookup-free quantizer (no parameters).
#[derive(Debug, Clone)]
pub struct Lfq {
    cfg: QuantizerConfig,
    /// `[K]` place values `2^(K−1−d)` (big-endian).
    place: Tensor,
    /// `[2^K, K]` bits of every code (1 = +1), for the codebook entropy.
    code_bits: Tensor,
}

/// `log σ(x) = −softplus(−x)`, stable: `min(x, 0) − ln(1 + e^(−|x|))`.
fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    x.neg()?.relu()?.neg()? - (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

impl Lfq {
    /// A quantizer with `cfg.bits` bits on `device`.
    ///
    /// # Errors
    /// Candle errors.
    pub fn new(cfg: &QuantizerConfig, device: &Device) -> Result<Self> {
        let k = cfg.bits;
        let place: Vec<f32> = (0..k).map(|d| (1u32 << (k - 1 - d)) as f32).collect();
        let n = 1usize << k;
        let bits: Vec<f32> = (0..n).flat_map(|c| (0..k).map(move |d| f32::from(u8::from((c >> (k - 1 - d)) & 1 == 1)))).collect();
        Ok(Self {
            cfg: cfg.clone(),
            place: Tensor::from_vec(place, k, device)?,
            code_bits: Tensor::from_vec(bits, (n, k), device)?,
        })
    }

    /// Number of bits `K`.
    #[must_use]
    pub fn bits(&self) -> usize {
        self.cfg.bits
    }

    /// Quantize `x: [B, L, K]` (already multiplied by the residue mask, so padding gives id 0).
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn quantize(&self, x: &Tensor) -> Result<Quantized> {
        let positive = x.gt(0.0)?.to_dtype(DType::F32)?; // [B, L, K]
        let q = positive.affine(2.0, -1.0)?;
        let codes = (x + (q - x)?.detach())?;
        let indices = positive.broadcast_mul(&self.place)?.sum(D::Minus1)?.to_dtype(DType::U32)?; // [B, L]
        Ok(Quantized { codes, indices })
    }

    /// Commitment and entropy losses of `x: [B, L, K]` over the residues with `mask = 1`
    /// (`mask: [B, L]`).
    ///
    /// The code distribution of a residue factorises over bits: with `u_d = 4 x_d / τ`,
    /// `P(c) = Π_d σ(c_d u_d)`. Its entropy is the sum of the per-bit binary entropies, and
    /// `log P(c) = Σ_d log σ(−u_d) + Σ_d [c_d = +1] u_d`, so all `2^K` probabilities come from one
    /// `[N, K] × [K, 2^K]` product.
    ///
    /// # Errors
    /// Candle shape errors.
    pub fn losses(&self, x: &Tensor, mask: &Tensor) -> Result<LfqLosses> {
        let k = self.cfg.bits;
        let x = x.flatten_to(1)?; // [N, K]
        let m = mask.to_dtype(DType::F32)?.flatten_all()?; // [N]
        let n_valid = m.sum_all()?.maximum(1.0)?;
        let q = x.gt(0.0)?.to_dtype(DType::F32)?.affine(2.0, -1.0)?;
        let commit = (&x - q)?.sqr()?.sum(D::Minus1)?; // [N]
        let commitment = ((commit * &m)?.sum_all()? / (k as f64))?.div(&n_valid)?;

        let u = (&x * (4.0 / self.cfg.entropy_temperature))?;
        let ls_pos = log_sigmoid(&u)?;
        let ls_neg = log_sigmoid(&u.neg()?)?;
        let p = ls_pos.exp()?;
        let bit_entropy = ((&p * &ls_pos)? + (p.affine(-1.0, 1.0)? * &ls_neg)?)?.neg()?.sum(D::Minus1)?; // [N]
        let per_sample_entropy = (bit_entropy * &m)?.sum_all()?.div(&n_valid)?;
        let log_probs = u.matmul(&self.code_bits.t()?)?.broadcast_add(&ls_neg.sum_keepdim(D::Minus1)?)?; // [N, 2^K]
        let probs = log_probs.exp()?;
        let avg = m.unsqueeze(0)?.matmul(&probs)?.squeeze(0)?.broadcast_div(&n_valid)?; // [2^K]
        let codebook_entropy = (&avg * (&avg + 1e-5)?.log()?)?.sum_all()?.neg()?;
        let entropy = (&per_sample_entropy - &codebook_entropy)?;
        let loss = ((&commitment * self.cfg.commitment_weight)? + (entropy * self.cfg.entropy_weight)?)?;
        Ok(LfqLosses { commitment, per_sample_entropy, codebook_entropy, loss })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lfq(bits: usize) -> Lfq {
        Lfq::new(&QuantizerConfig { bits, ..QuantizerConfig::dplm2() }, &Device::Cpu).unwrap()
    }

    #[test]
    fn index_is_big_endian_like_the_dplm2_code() {
        let q = lfq(13);
        // Only dimension 0 positive → the most significant bit → 4096; only dimension 12 → 1.
        let mut rows = vec![vec![-1f32; 13]; 5];
        rows[0][0] = 0.3;
        rows[1][12] = 2.0;
        rows[2] = vec![1.0; 13];
        rows[3][1] = 0.5; // 2^11
        rows[3][11] = 0.5; // 2^1
        // rows[4] all negative → 0; exact zero is negative (DPLM-2: x > 0).
        rows[4][5] = 0.0;
        let x = Tensor::new(rows, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let out = q.quantize(&x).unwrap();
        assert_eq!(out.indices.to_vec2::<u32>().unwrap(), vec![vec![4096, 1, 8191, 2048 + 2, 0]]);
        let codes = out.codes.to_vec3::<f32>().unwrap();
        assert_eq!(codes[0][0][0], 1.0);
        assert!(codes[0][0][1..].iter().all(|&c| c == -1.0));
        assert_eq!(codes[0][4][5], -1.0);
        // Scalar helpers and code vectors agree with the tensor path.
        assert_eq!(index_from_bits(&bits_from_index(2050, 13)), 2050);
        assert_eq!(bits_string(4096, 13), "1000000000000");
        assert_eq!(bits_string(1, 13), "0000000000001");
        let back = codes_from_tokens(&[vec![4096, 1, 8191, 2050, 0]], 6, 13, &Device::Cpu).unwrap();
        assert_eq!(q.quantize(&back).unwrap().indices.to_vec2::<u32>().unwrap(), vec![vec![4096, 1, 8191, 2050, 0, 0]]);
        assert!(codes_from_tokens(&[vec![1, 2]], 1, 13, &Device::Cpu).is_err());
    }

    #[test]
    fn straight_through_passes_the_gradient() {
        let q = lfq(3);
        let x = candle_core::Var::from_tensor(&Tensor::new(&[[[0.2f32, -0.7, 1.5]]], &Device::Cpu).unwrap()).unwrap();
        let out = q.quantize(x.as_tensor()).unwrap();
        assert_eq!(out.codes.to_vec3::<f32>().unwrap(), vec![vec![vec![1.0, -1.0, 1.0]]]);
        let w = Tensor::new(&[[[1f32, 2.0, 3.0]]], &Device::Cpu).unwrap();
        let g = (out.codes * w).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(x.as_tensor()).unwrap().to_vec3::<f32>().unwrap(), vec![vec![vec![1.0, 2.0, 3.0]]]);
    }

    #[test]
    fn losses_match_a_direct_softmax_over_all_codes() {
        let q = Lfq::new(&QuantizerConfig { bits: 4, entropy_temperature: 0.5, ..QuantizerConfig::dplm2() }, &Device::Cpu).unwrap();
        let xs = [[0.3f32, -0.2, 0.05, -1.0], [0.1, 0.4, -0.3, 0.2], [9.0, 9.0, 9.0, 9.0]];
        let mask = [1f32, 1.0, 0.0];
        let x = Tensor::new(&xs, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let m = Tensor::new(&[mask], &Device::Cpu).unwrap();
        let l = q.losses(&x, &m).unwrap();
        // Reference: explicit softmax over the 16 codes of logits 2 x·c / τ, in f64.
        let mut avg = [0f64; 16];
        let mut h_sample = 0.0;
        let mut commit = 0.0;
        for (r, row) in xs.iter().take(2).enumerate() {
            let logits: Vec<f64> = (0..16)
                .map(|c| (0..4).map(|d| 2.0 * f64::from(row[d]) * if (c >> (3 - d)) & 1 == 1 { 1.0 } else { -1.0 }).sum::<f64>() / 0.5)
                .collect();
            let mx = logits.iter().copied().fold(f64::MIN, f64::max);
            let z: f64 = logits.iter().map(|v| (v - mx).exp()).sum();
            let p: Vec<f64> = logits.iter().map(|v| (v - mx).exp() / z).collect();
            h_sample -= p.iter().map(|v| v * v.ln()).sum::<f64>() / 2.0;
            for c in 0..16 {
                avg[c] += p[c] / 2.0;
            }
            commit += row.iter().map(|&v| (f64::from(v) - f64::from(v).signum()).powi(2)).sum::<f64>() / 8.0;
            assert!(r < 2);
        }
        let h_code = -avg.iter().map(|a| a * (a + 1e-5).ln()).sum::<f64>();
        let get = |t: &Tensor| f64::from(t.to_scalar::<f32>().unwrap());
        assert!((get(&l.per_sample_entropy) - h_sample).abs() < 1e-4, "{} vs {h_sample}", get(&l.per_sample_entropy));
        assert!((get(&l.codebook_entropy) - h_code).abs() < 1e-4, "{} vs {h_code}", get(&l.codebook_entropy));
        assert!((get(&l.commitment) - commit).abs() < 1e-5);
        let want = 0.25 * commit + 0.1 * (h_sample - h_code);
        assert!((get(&l.loss) - want).abs() < 1e-4);
    }
}
