//! Multi-scale decomposition of a CA trace (PAR §3.1, "q_decompose").
//!
//! A protein of length `L` is represented at increasing sizes `size(1) < … < size(n) = L`.
//! `Down(x, size)` summarises the trace at `size` points along the sequence and
//! `Up(x, size)` interpolates a coarse trace to a finer size. Both are linear maps, returned
//! here as dense row-major weight matrices `[to, from]` so the model applies them as a matmul
//! (`x_to = W · x_from`, coordinates `[from, 3] → [to, 3]`).
//!
//! Scale `i` of a length-`L` protein has positions `linspace(1, L, size(i))` (1-based residue
//! index units), which the networks embed so all scales share one positional frame.

use crate::ParError;
use serde::{Deserialize, Serialize};

/// How the scale sizes of a protein are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScaleSpec {
    /// Fixed sizes (PAR's default `{64, 128, 256}`): a protein with
    /// `L ∈ (size(i), size(i+1)]` uses `size(1) … size(i)` and then `L` itself, i.e. `i + 1`
    /// autoregressive steps; `L ≤ size(1)` is a single scale (PAR reduces to Proteina).
    Lengths {
        /// Strictly increasing sizes.
        sizes: Vec<usize>,
    },
    /// Fractions of the length, e.g. `{1/4, 1/2, 1}`; the last scale is always `L`.
    Ratios {
        /// Strictly increasing fractions in (0, 1].
        ratios: Vec<f64>,
    },
}

impl ScaleSpec {
    /// PAR's default 3-scale configuration `{64, 128, 256}`.
    #[must_use]
    pub fn default_three() -> Self {
        Self::Lengths { sizes: vec![64, 128, 256] }
    }

    /// The 5-scale configuration `{16, 32, 64, 128, 256}` used for point prompts and motifs.
    #[must_use]
    pub fn five() -> Self {
        Self::Lengths { sizes: vec![16, 32, 64, 128, 256] }
    }

    /// Check the specification.
    ///
    /// # Errors
    /// [`ParError::BadScales`] if sizes/ratios are empty, not increasing or out of range.
    pub fn validate(&self) -> Result<(), ParError> {
        match self {
            Self::Lengths { sizes } => {
                if sizes.is_empty() || sizes[0] == 0 || sizes.windows(2).any(|w| w[1] <= w[0]) {
                    return Err(ParError::BadScales(format!("sizes {sizes:?} must be positive and strictly increasing")));
                }
            }
            Self::Ratios { ratios } => {
                if ratios.is_empty()
                    || ratios.iter().any(|&r| !(r > 0.0 && r <= 1.0))
                    || ratios.windows(2).any(|w| w[1] <= w[0])
                {
                    return Err(ParError::BadScales(format!("ratios {ratios:?} must be increasing in (0, 1]")));
                }
            }
        }
        Ok(())
    }

    /// Sizes of every scale for a protein of `len` residues: strictly increasing, ending at
    /// `len`. Empty only for `len == 0`.
    #[must_use]
    pub fn sizes(&self, len: usize) -> Vec<usize> {
        if len == 0 {
            return Vec::new();
        }
        let mut out: Vec<usize> = match self {
            Self::Lengths { sizes } => sizes.iter().copied().filter(|&s| s < len).collect(),
            Self::Ratios { ratios } => {
                ratios.iter().map(|&r| ((r * len as f64).round() as usize).clamp(1, len)).filter(|&s| s < len).collect()
            }
        };
        out.push(len);
        out.dedup();
        out
    }
}

/// Kernel of the downsampling operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Downsample {
    /// Centroids of equal-length sequence windows (area interpolation): each coarse point is
    /// the mean of the residues (fractionally) covered by its window. PAR describes its
    /// downsampled points as "centroids".
    #[default]
    Area,
    /// Linear interpolation at positions `linspace(0, L − 1, size)`.
    Linear,
}

/// Positions of a scale in residue-index units: `linspace(1, len, size)`.
#[must_use]
pub fn positions(len: usize, size: usize) -> Vec<f32> {
    match size {
        0 => Vec::new(),
        1 => vec![(1.0 + len as f32) / 2.0],
        _ => (0..size).map(|j| 1.0 + (len as f32 - 1.0) * j as f32 / (size as f32 - 1.0)).collect(),
    }
}

/// Linear interpolation weights `[to, from]` at positions `linspace(0, from − 1, to)`
/// (align-corners). Used for `Up` and for [`Downsample::Linear`].
#[must_use]
pub fn linear_weights(from: usize, to: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; to * from];
    if from == 0 || to == 0 {
        return w;
    }
    for j in 0..to {
        let p = if to == 1 { (from as f64 - 1.0) / 2.0 } else { j as f64 * (from as f64 - 1.0) / (to as f64 - 1.0) };
        let i0 = (p.floor() as usize).min(from - 1);
        let i1 = (i0 + 1).min(from - 1);
        let f = (p - i0 as f64) as f32;
        w[j * from + i0] += 1.0 - f;
        w[j * from + i1] += f;
    }
    w
}

/// Area (window-mean) weights `[to, from]`: coarse point `j` averages the residues covered by
/// the window `[j·from/to, (j+1)·from/to)`, with fractional coverage at the window edges.
/// Each row sums to 1. For `to ≥ from` this degenerates to nearest-window copying.
#[must_use]
pub fn area_weights(from: usize, to: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; to * from];
    if from == 0 || to == 0 {
        return w;
    }
    let step = from as f64 / to as f64;
    for j in 0..to {
        let (a, b) = (j as f64 * step, (j + 1) as f64 * step);
        let mut i = a.floor() as usize;
        while (i as f64) < b && i < from {
            let overlap = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
            w[j * from + i] += (overlap / step) as f32;
            i += 1;
        }
    }
    w
}

/// Weights `[to, from]` of `Down(·, to)` with the chosen kernel.
#[must_use]
pub fn down_weights(kind: Downsample, from: usize, to: usize) -> Vec<f32> {
    match kind {
        Downsample::Area => area_weights(from, to),
        Downsample::Linear => linear_weights(from, to),
    }
}

/// Apply a `[to, from]` weight matrix to points `[from][3]`.
#[must_use]
pub fn apply_weights(w: &[f32], from: usize, points: &[[f32; 3]]) -> Vec<[f32; 3]> {
    let to = w.len().checked_div(from).unwrap_or(0);
    (0..to)
        .map(|j| {
            let mut acc = [0.0f32; 3];
            for (i, p) in points.iter().enumerate().take(from) {
                let wij = w[j * from + i];
                if wij != 0.0 {
                    for k in 0..3 {
                        acc[k] += wij * p[k];
                    }
                }
            }
            acc
        })
        .collect()
}

/// The multi-scale decomposition `{Down(x, size(1)), …, x}` of a CA trace (Å or nm; the
/// unit is kept). The last element is the input itself.
#[must_use]
pub fn decompose(ca: &[[f32; 3]], sizes: &[usize], kind: Downsample) -> Vec<Vec<[f32; 3]>> {
    let len = ca.len();
    sizes
        .iter()
        .map(|&s| if s == len { ca.to_vec() } else { apply_weights(&down_weights(kind, len, s), len, ca) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_by_length_follow_par() {
        let s = ScaleSpec::default_three();
        assert_eq!(s.sizes(50), vec![50]);
        assert_eq!(s.sizes(64), vec![64]);
        assert_eq!(s.sizes(65), vec![64, 65]);
        assert_eq!(s.sizes(200), vec![64, 128, 200]);
        assert_eq!(s.sizes(256), vec![64, 128, 256]);
        assert_eq!(s.sizes(300), vec![64, 128, 256, 300]);
        assert_eq!(ScaleSpec::five().sizes(100), vec![16, 32, 64, 100]);
        assert!(s.sizes(0).is_empty());
    }

    #[test]
    fn sizes_by_ratio_end_at_length_and_increase() {
        let s = ScaleSpec::Ratios { ratios: vec![0.25, 0.5, 1.0] };
        assert_eq!(s.sizes(100), vec![25, 50, 100]);
        assert_eq!(s.sizes(2), vec![1, 2]);
        for len in 1..300 {
            let v = s.sizes(len);
            assert_eq!(*v.last().unwrap(), len);
            assert!(v.windows(2).all(|w| w[1] > w[0]));
        }
    }

    #[test]
    fn invalid_specs() {
        assert!(ScaleSpec::Lengths { sizes: vec![64, 64] }.validate().is_err());
        assert!(ScaleSpec::Lengths { sizes: vec![] }.validate().is_err());
        assert!(ScaleSpec::Ratios { ratios: vec![0.5, 1.5] }.validate().is_err());
        assert!(ScaleSpec::five().validate().is_ok());
    }

    #[test]
    fn weights_rows_sum_to_one_and_preserve_lines() {
        for (from, to) in [(10, 4), (7, 7), (5, 12), (256, 16), (3, 1)] {
            for w in [linear_weights(from, to), area_weights(from, to)] {
                for j in 0..to {
                    let s: f32 = w[j * from..(j + 1) * from].iter().sum();
                    assert!((s - 1.0).abs() < 1e-5, "row {j} of {from}->{to} sums to {s}");
                }
            }
        }
        // A straight evenly spaced line maps onto the same line (evenly spaced) under linear
        // interpolation; area centroids of a line also lie on it.
        let line: Vec<[f32; 3]> = (0..20).map(|i| [i as f32 * 3.8, 0.0, 0.0]).collect();
        let down = apply_weights(&linear_weights(20, 5), 20, &line);
        let xs: Vec<f32> = down.iter().map(|p| p[0]).collect();
        assert!((xs[0] - 0.0).abs() < 1e-4 && (xs[4] - 19.0 * 3.8).abs() < 1e-4);
        let cent = apply_weights(&area_weights(20, 5), 20, &line);
        assert!((cent[0][0] - 1.5 * 3.8).abs() < 1e-4, "{:?}", cent[0]);
        assert!(cent.iter().all(|p| p[1] == 0.0 && p[2] == 0.0));
    }

    #[test]
    fn decompose_ends_with_the_input() {
        let ca: Vec<[f32; 3]> = (0..100).map(|i| [i as f32, (i as f32).sin(), 0.0]).collect();
        let sizes = ScaleSpec::default_three().sizes(100);
        let scales = decompose(&ca, &sizes, Downsample::Area);
        assert_eq!(scales.iter().map(Vec::len).collect::<Vec<_>>(), vec![64, 100]);
        assert_eq!(scales[1], ca);
    }

    #[test]
    fn positions_span_the_chain() {
        assert_eq!(positions(100, 3), vec![1.0, 50.5, 100.0]);
        assert_eq!(positions(7, 1), vec![4.0]);
    }
}
