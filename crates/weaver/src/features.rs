//! Conditioning features of the assembly model, computed from [`SplicedMap`]s on the CPU and
//! uploaded as index tensors (the network embeds each index with a learned table, which equals
//! a Linear layer on the one-hot features without materialising them).
//!
//! Per residue pair `(i, j)`:
//! - **spliced distance**: the bin of `d_ij` (equal width on `[0, dist_max_ang)`, larger
//!   distances in the last bin) for intra-domain pairs, or the extra "unknown" index
//!   `dist_bins` for inter-domain and linker pairs (the −1 entries of the map);
//! - **relative sequence position**: `clip(j − i, ±relpos_max) + relpos_max`;
//! - **pair type**: same domain, different domains, query linker / key domain, query domain /
//!   key linker, both linker, padding ([`crate::config::N_PAIR_TYPES`]).
//!
//! Per residue: its domain index (capped at `max_domains − 1`), or the linker or padding
//! category. Linker residues have no known distances: they are free.

use crate::WeaverError;
use crate::config::WeaverConfig;
use crate::splice::SplicedMap;
use candle_core::{DType, Device, Tensor};

/// Pair type: both residues in the same domain.
pub const PAIR_SAME_DOMAIN: u32 = 0;
/// Pair type: residues in two different domains.
pub const PAIR_OTHER_DOMAIN: u32 = 1;
/// Pair type: query residue in a linker, key residue in a domain.
pub const PAIR_LINKER_DOMAIN: u32 = 2;
/// Pair type: query residue in a domain, key residue in a linker.
pub const PAIR_DOMAIN_LINKER: u32 = 3;
/// Pair type: both residues in linkers.
pub const PAIR_LINKER_LINKER: u32 = 4;
/// Pair type: either residue is padding.
pub const PAIR_PADDING: u32 = 5;

/// Index tensors of a batch of `B` conditioning maps padded to length `L`.
#[derive(Debug, Clone)]
pub struct CondTensors {
    /// `[B, L, L]` u32 spliced-distance bin (`dist_bins` = unknown).
    pub dist_idx: Tensor,
    /// `[B, L, L]` u32 clipped relative position.
    pub relpos_idx: Tensor,
    /// `[B, L, L]` u32 pair type.
    pub pair_type: Tensor,
    /// `[B, L]` u32 node category (domain index, `max_domains` = linker, `max_domains + 1` =
    /// padding).
    pub node_cat: Tensor,
    /// `[B, L]` f32, 1 for residues and 0 for padding.
    pub mask: Tensor,
    /// Length of each map.
    pub lens: Vec<usize>,
}

impl CondTensors {
    /// Batch size.
    #[must_use]
    pub fn batch(&self) -> usize {
        self.lens.len()
    }

    /// Padded length.
    #[must_use]
    pub fn padded_len(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0)
    }

    /// The batch with every element repeated `k` times in place (`[a, a, b, b]` for k = 2), e.g.
    /// for winner and loser of a preference pair, or `K` samples of one input.
    ///
    /// # Errors
    /// Candle errors.
    pub fn repeat_each(&self, k: usize) -> Result<Self, WeaverError> {
        let b = self.batch();
        let idx: Vec<u32> = (0..b).flat_map(|i| std::iter::repeat_n(i as u32, k)).collect();
        let idx = Tensor::from_vec(idx, b * k, self.mask.device())?;
        Ok(Self {
            dist_idx: self.dist_idx.index_select(&idx, 0)?,
            relpos_idx: self.relpos_idx.index_select(&idx, 0)?,
            pair_type: self.pair_type.index_select(&idx, 0)?,
            node_cat: self.node_cat.index_select(&idx, 0)?,
            mask: self.mask.index_select(&idx, 0)?,
            lens: self.lens.iter().flat_map(|&n| std::iter::repeat_n(n, k)).collect(),
        })
    }

    /// Concatenate two batches of the same padded length along the batch axis.
    ///
    /// # Errors
    /// Candle errors (different padded lengths).
    pub fn cat(&self, other: &Self) -> Result<Self, WeaverError> {
        let c = |a: &Tensor, b: &Tensor| Tensor::cat(&[a, b], 0);
        Ok(Self {
            dist_idx: c(&self.dist_idx, &other.dist_idx)?,
            relpos_idx: c(&self.relpos_idx, &other.relpos_idx)?,
            pair_type: c(&self.pair_type, &other.pair_type)?,
            node_cat: c(&self.node_cat, &other.node_cat)?,
            mask: c(&self.mask, &other.mask)?,
            lens: self.lens.iter().chain(&other.lens).copied().collect(),
        })
    }
}

/// The distance bin of `d` (Å).
#[must_use]
pub fn distance_bin(d: f64, cfg: &WeaverConfig) -> u32 {
    let k = (d.max(0.0) / cfg.bin_width()).floor();
    (k as usize).min(cfg.dist_bins - 1) as u32
}

/// Pair type of residues with domains `a` (query) and `b` (key).
#[must_use]
pub fn pair_type(a: Option<usize>, b: Option<usize>) -> u32 {
    match (a, b) {
        (Some(x), Some(y)) if x == y => PAIR_SAME_DOMAIN,
        (Some(_), Some(_)) => PAIR_OTHER_DOMAIN,
        (None, Some(_)) => PAIR_LINKER_DOMAIN,
        (Some(_), None) => PAIR_DOMAIN_LINKER,
        (None, None) => PAIR_LINKER_LINKER,
    }
}

/// Conditioning tensors of a batch of maps (padded to the longest).
///
/// # Errors
/// [`WeaverError::TooLong`] for a map longer than `cfg.max_len`; [`WeaverError::BadLayout`]
/// for an empty batch; candle errors.
pub fn cond_tensors(maps: &[&SplicedMap], cfg: &WeaverConfig, dev: &Device) -> Result<CondTensors, WeaverError> {
    let b = maps.len();
    if b == 0 {
        return Err(WeaverError::BadLayout("empty batch of conditioning maps".into()));
    }
    let l = maps.iter().map(|m| m.len).max().unwrap_or(0);
    if l > cfg.max_len {
        return Err(WeaverError::TooLong { len: l, max: cfg.max_len });
    }
    let unknown = cfg.dist_bins as u32;
    let r = cfg.relpos_max as i64;
    let linker_cat = cfg.max_domains as u32;
    let mut dist = vec![unknown; b * l * l];
    let mut pair = vec![PAIR_PADDING; b * l * l];
    let mut node = vec![linker_cat + 1; b * l];
    let mut mask = vec![0f32; b * l];
    for (k, m) in maps.iter().enumerate() {
        for i in 0..m.len {
            node[k * l + i] = match m.domain_of[i] {
                Some(d) => d.min(cfg.max_domains - 1) as u32,
                None => linker_cat,
            };
            mask[k * l + i] = 1.0;
            for j in 0..m.len {
                let at = (k * l + i) * l + j;
                let d = m.get(i, j);
                if d >= 0.0 {
                    dist[at] = distance_bin(f64::from(d), cfg);
                }
                pair[at] = pair_type(m.domain_of[i], m.domain_of[j]);
            }
        }
    }
    let relpos: Vec<u32> = (0..l * l).map(|x| ((x % l) as i64 - (x / l) as i64).clamp(-r, r) as u32 + r as u32).collect();
    let relpos = Tensor::from_vec(relpos, (1, l, l), dev)?.broadcast_as((b, l, l))?.contiguous()?;
    Ok(CondTensors {
        dist_idx: Tensor::from_vec(dist, (b, l, l), dev)?,
        relpos_idx: relpos,
        pair_type: Tensor::from_vec(pair, (b, l, l), dev)?,
        node_cat: Tensor::from_vec(node, (b, l), dev)?,
        mask: Tensor::from_vec(mask, (b, l), dev)?.to_dtype(DType::F32)?,
        lens: maps.iter().map(|m| m.len).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splice::assemble_map;
    use protforge_se3::Vec3;

    fn line(n: usize) -> Vec<Vec3> {
        (0..n).map(|i| Vec3::new(3.8 * i as f64, 0.0, 0.0)).collect()
    }

    #[test]
    fn indices_follow_the_map() {
        let cfg = WeaverConfig::tiny(); // 8 bins of 3 Å, relpos ±8
        let a = assemble_map(&[line(3), line(2)], &[2]).unwrap(); // D D D L L D D
        let b = assemble_map(&[line(2), line(2)], &[1]).unwrap(); // D D L D D
        let c = cond_tensors(&[&a, &b], &cfg, &Device::Cpu).unwrap();
        assert_eq!(c.lens, vec![7, 5]);
        let dist = c.dist_idx.to_vec3::<u32>().unwrap();
        assert_eq!(dist[0][0][0], 0);
        assert_eq!(dist[0][0][1], 1); // 3.8 Å → bin 1
        assert_eq!(dist[0][0][2], 2); // 7.6 Å → bin 2
        assert_eq!(dist[0][0][5], 8); // inter-domain → unknown
        assert_eq!(dist[0][3][3], 8); // linker → unknown
        let pt = c.pair_type.to_vec3::<u32>().unwrap();
        assert_eq!(pt[0][0][1], PAIR_SAME_DOMAIN);
        assert_eq!(pt[0][0][6], PAIR_OTHER_DOMAIN);
        assert_eq!(pt[0][3][0], PAIR_LINKER_DOMAIN);
        assert_eq!(pt[0][0][3], PAIR_DOMAIN_LINKER);
        assert_eq!(pt[0][3][4], PAIR_LINKER_LINKER);
        assert_eq!(pt[1][0][6], PAIR_PADDING);
        let node = c.node_cat.to_vec2::<u32>().unwrap();
        assert_eq!(node[0], vec![0, 0, 0, 4, 4, 1, 1]);
        assert_eq!(node[1], vec![0, 0, 4, 1, 1, 5, 5]);
        let rel = c.relpos_idx.to_vec3::<u32>().unwrap();
        assert_eq!((rel[0][0][0], rel[0][0][6], rel[0][6][0]), (8, 14, 2));
        assert_eq!(c.mask.to_vec2::<f32>().unwrap()[1], vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let r = c.repeat_each(2).unwrap();
        assert_eq!(r.lens, vec![7, 7, 5, 5]);
        assert_eq!(r.node_cat.to_vec2::<u32>().unwrap()[3], node[1]);
        assert_eq!(c.cat(&c).unwrap().batch(), 4);
        let long = assemble_map(&[line(60), line(60)], &[5]).unwrap();
        assert!(matches!(cond_tensors(&[&long], &cfg, &Device::Cpu), Err(WeaverError::TooLong { len: 125, max: 96 })));
    }
}
