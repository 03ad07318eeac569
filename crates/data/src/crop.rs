//! Random contiguous crops and length-bucketed batching.
//!
//! All randomness comes from the caller's RNG (STYLE.md: explicit, seeded RNGs).

use protforge_structure::Backbone;
use rand::Rng;
use rand::seq::SliceRandom;
use std::ops::Range;

/// A uniformly random window `[start, start + min(len, max_len))` of a chain of `len` residues.
/// Returns `0..len` when the chain fits.
pub fn crop_range<R: Rng + ?Sized>(len: usize, max_len: usize, rng: &mut R) -> Range<usize> {
    if len <= max_len {
        return 0..len;
    }
    let start = rng.random_range(0..=len - max_len);
    start..start + max_len
}

/// A random contiguous crop of at most `max_len` residues (a clone when `bb` already fits).
pub fn crop<R: Rng + ?Sized>(bb: &Backbone, max_len: usize, rng: &mut R) -> Backbone {
    let r = crop_range(bb.len(), max_len, rng);
    if r.len() == bb.len() { bb.clone() } else { bb.slice(r.start, r.end) }
}

/// Group chains into batches of similar length.
///
/// `indices` are the chains to batch (e.g. [`crate::Dataset::train_indices`]), `lengths[i]` the
/// length of chain `i` (indexed by the values in `indices`, e.g. [`crate::Dataset::lengths`]),
/// capped at `max_len` (the crop length) before use. A batch holds chains whose padded size
/// `batch size × longest capped length` stays within `max_residues` (at least one chain per
/// batch). Chains are sorted by capped length with random tie-breaking, packed greedily, and
/// the batch order is shuffled, so each epoch differs with the RNG while padding stays small.
///
/// # Panics
/// If an index in `indices` is out of range of `lengths`.
pub fn length_batches<R: Rng + ?Sized>(
    indices: &[usize],
    lengths: &[usize],
    max_len: usize,
    max_residues: usize,
    rng: &mut R,
) -> Vec<Vec<usize>> {
    let mut order = indices.to_vec();
    order.shuffle(rng);
    // Stable sort keeps the random order among equal lengths.
    order.sort_by_key(|&i| lengths[i].min(max_len));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        let l = lengths[i].min(max_len);
        // Sorted ascending, so `l` is the longest in the batch if added.
        if !current.is_empty() && (current.len() + 1) * l > max_residues {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches.shuffle(rng);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn chain(n: usize) -> Backbone {
        let coords = (0..n).map(|i| [[i as f32; 3]; 4]).collect();
        Backbone::from_coords(coords, (0..n).map(|i| (i % 20) as u8).collect())
    }

    #[test]
    fn crop_is_contiguous_and_bounded() {
        let bb = chain(100);
        let mut rng = StdRng::seed_from_u64(0);
        let mut starts = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = crop(&bb, 30, &mut rng);
            assert_eq!(c.len(), 30);
            let s = c.coords[0][0][0] as usize;
            starts.insert(s);
            for (k, r) in c.coords.iter().enumerate() {
                assert_eq!(r[1][0] as usize, s + k);
            }
            assert!(s + 30 <= 100);
        }
        assert!(starts.len() > 20, "crops should vary");
        assert_eq!(crop(&bb, 500, &mut rng), bb);
        assert_eq!(crop_range(10, 10, &mut rng), 0..10);
    }

    #[test]
    fn batches_cover_all_and_respect_budget() {
        let mut rng = StdRng::seed_from_u64(3);
        let lengths: Vec<usize> = (0..200).map(|i| 40 + (i * 37) % 400).collect();
        let indices: Vec<usize> = (0..200).step_by(2).collect();
        let batches = length_batches(&indices, &lengths, 256, 2048, &mut rng);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, indices);
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i].min(256)).max().unwrap();
            assert!(b.len() == 1 || b.len() * longest <= 2048);
        }
        assert!(batches.iter().any(|b| b.len() > 1));
    }
}
