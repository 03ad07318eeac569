//! Explicit, seeded randomness.
//!
//! candle's CPU RNG cannot be seeded, so every random tensor in protforge is drawn from a
//! [`StdRng`] we own and built with `Tensor::from_vec`.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A generator seeded from `seed`.
#[must_use]
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The seed of sample `index` of a run with seed `run_seed`: a SplitMix64 mix of both, so
/// sample `i` gets the same seed whether it is produced by one run or by shard `k` of `N`.
#[must_use]
pub fn sample_seed(run_seed: u64, index: u64) -> u64 {
    let mut z = run_seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tensor of independent N(0, 1) f32 values of the given shape, drawn from `rng`.
///
/// # Errors
/// Candle errors if the tensor cannot be built.
pub fn randn<R: Rng + ?Sized>(rng: &mut R, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
    Tensor::from_vec(data, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_seeds_are_distinct_and_stable() {
        let seeds: Vec<u64> = (0..1000).map(|i| sample_seed(42, i)).collect();
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
        assert_eq!(sample_seed(42, 17), seeds[17]);
        assert_ne!(sample_seed(43, 17), seeds[17]);
    }

    #[test]
    fn randn_is_reproducible_and_standard() {
        let a = randn(&mut seeded(1), &[4000], &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
        let b = randn(&mut seeded(1), &[4000], &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
        let mean = a.iter().sum::<f32>() / 4000.0;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 4000.0;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.08, "mean {mean} var {var}");
    }
}
