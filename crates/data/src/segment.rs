//! Splitting chains into continuous segments at chain breaks.
//!
//! A residue is *usable* when all four backbone atoms (N, CA, C, O) are present and finite.
//! A segment is a maximal run of usable residues of one chain in which every consecutive
//! CA–CA distance is at most `max_ca_gap` (default [`DEFAULT_MAX_CA_GAP`] Å). So a chain
//! breaks
//! - between two residues whose CA atoms are more than `max_ca_gap` apart (a gap in the
//!   model: missing residues, or a trans peptide bond stretched beyond physical range), and
//! - at every residue that lacks any backbone atom (or has a non-finite coordinate); that
//!   residue itself is dropped.
//!
//! Also a change of chain id ends a segment. The 4.2 Å cut is the usual one for a broken
//! peptide bond: consecutive CA atoms are 3.80 Å apart for a trans peptide and about 2.9 Å
//! for a cis one (Engh & Huber 1991 geometry).

use protforge_structure::{Backbone, atom};
use std::ops::Range;

/// Default maximum CA–CA distance between consecutive residues of one segment (Å).
pub const DEFAULT_MAX_CA_GAP: f32 = 4.2;

fn usable(bb: &Backbone, i: usize) -> bool {
    bb.atom_mask[i].iter().all(|&m| m) && bb.coords[i].iter().flatten().all(|v| v.is_finite())
}

fn ca_distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// Residue ranges `[start, end)` of the continuous segments of `bb` (see the module docs),
/// in order. Segments of every length are returned, including length 1; filter afterwards.
///
/// `max_ca_gap` is in Å.
#[must_use]
pub fn segments(bb: &Backbone, max_ca_gap: f32) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for i in 0..bb.len() {
        if !usable(bb, i) {
            if let Some(s) = start.take() {
                out.push(s..i);
            }
            continue;
        }
        if let Some(s) = start {
            let same_chain = bb.chain_ids.get(i) == bb.chain_ids.get(i - 1);
            let gap = ca_distance(bb.coords[i - 1][atom::CA], bb.coords[i][atom::CA]);
            if !same_chain || gap > max_ca_gap {
                out.push(s..i);
                start = Some(i);
            }
        } else {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(s..bb.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straight chain with CA atoms 3.8 Å apart along x and the other atoms nearby.
    fn line(n: usize) -> Backbone {
        let coords = (0..n)
            .map(|i| {
                let x = i as f32 * 3.8;
                [[x - 1.0, 0.5, 0.0], [x, 0.0, 0.0], [x + 1.0, 0.5, 0.0], [x + 1.2, 1.6, 0.0]]
            })
            .collect();
        Backbone::from_coords(coords, vec![0; n])
    }

    #[test]
    fn unbroken_chain_is_one_segment() {
        assert_eq!(segments(&line(10), DEFAULT_MAX_CA_GAP), vec![0..10]);
    }

    #[test]
    fn splits_at_ca_gap() {
        let mut bb = line(10);
        for r in &mut bb.coords[6..] {
            for a in r.iter_mut() {
                a[0] += 1.0; // CA5–CA6 becomes 4.8 Å
            }
        }
        assert_eq!(segments(&bb, DEFAULT_MAX_CA_GAP), vec![0..6, 6..10]);
        // A looser threshold joins them again.
        assert_eq!(segments(&bb, 5.0), vec![0..10]);
    }

    #[test]
    fn residue_missing_an_atom_is_a_break_and_dropped() {
        let mut bb = line(10);
        bb.atom_mask[3][atom::O] = false;
        bb.coords[8][atom::N][1] = f32::NAN;
        assert_eq!(segments(&bb, DEFAULT_MAX_CA_GAP), vec![0..3, 4..8, 9..10]);
    }

    #[test]
    fn chain_id_change_ends_a_segment() {
        let mut bb = line(6);
        for c in &mut bb.chain_ids[3..] {
            *c = "B".into();
        }
        assert_eq!(segments(&bb, DEFAULT_MAX_CA_GAP), vec![0..3, 3..6]);
    }

    #[test]
    fn empty_and_all_masked() {
        assert!(segments(&Backbone::default(), DEFAULT_MAX_CA_GAP).is_empty());
        let bb = Backbone::from_ca(&[[0.0; 3], [3.8, 0.0, 0.0]], None);
        assert!(segments(&bb, DEFAULT_MAX_CA_GAP).is_empty());
    }
}
