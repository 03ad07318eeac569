//! RFdiffusion-style contig specifications for motif scaffolding.
//!
//! Syntax (RFdiffusion `contigmap.contigs`, as in the motif-scaffolding benchmark):
//! segments separated by `,` (also accepted: `/` and spaces);
//! - `a-b` — a scaffold segment of `a..=b` new residues (`0-30` may be empty); `n` — exactly `n`;
//! - `Xs-e` — motif residues `s..=e` (author numbering) of chain `X` of the motif file,
//!   kept in that order; a single residue is `X100-100` (or `X100`).
//!
//! Example: `10-40,A163-181,10-40` with total length `50-75` (5TPN).

use crate::ParError;
use protforge_structure::Backbone;
use rand::Rng;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// One segment of a contig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Segment {
    /// New residues, `min..=max` of them.
    Scaffold {
        /// Fewest residues.
        min: usize,
        /// Most residues.
        max: usize,
    },
    /// Fixed residues `start..=end` (author numbers) of `chain` in the motif structure.
    Motif {
        /// Chain id in the motif file.
        chain: String,
        /// First residue number.
        start: i32,
        /// Last residue number (inclusive).
        end: i32,
    },
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scaffold { min, max } if min == max => write!(f, "{min}"),
            Self::Scaffold { min, max } => write!(f, "{min}-{max}"),
            Self::Motif { chain, start, end } => write!(f, "{chain}{start}-{end}"),
        }
    }
}

/// A parsed contig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contig {
    text: String,
    segments: Vec<Segment>,
}

impl FromStr for Contig {
    type Err = ParError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ParError::BadContig { contig: text.to_string(), reason };
        let tokens: Vec<&str> =
            text.split(|c: char| c == ',' || c == '/' || c.is_whitespace()).filter(|t| !t.is_empty()).collect();
        if tokens.is_empty() {
            return Err(bad("no segments".into()));
        }
        let mut segments = Vec::with_capacity(tokens.len());
        for tok in tokens {
            let first = tok.chars().next().unwrap_or(' ');
            let seg = if first.is_ascii_alphabetic() {
                let chain: String = tok.chars().take_while(char::is_ascii_alphabetic).collect();
                let rest = &tok[chain.len()..];
                let (start, end) = match split_range(rest) {
                    Some((s, e)) => (parse_int::<i32>(s), parse_int::<i32>(e)),
                    None => (parse_int::<i32>(rest), parse_int::<i32>(rest)),
                };
                let (Some(start), Some(end)) = (start, end) else {
                    return Err(bad(format!("segment '{tok}' is not of the form A10-25 (chain letter, residue numbers)")));
                };
                if end < start {
                    return Err(bad(format!("segment '{tok}' ends before it starts")));
                }
                Segment::Motif { chain, start, end }
            } else {
                let (min, max) = match split_range(tok) {
                    Some((a, b)) => (parse_int::<usize>(a), parse_int::<usize>(b)),
                    None => {
                        let n = parse_int::<usize>(tok);
                        (n, n)
                    }
                };
                let (Some(min), Some(max)) = (min, max) else {
                    return Err(bad(format!("segment '{tok}' is neither a length range like 10-40 nor a motif like A163-181")));
                };
                if max < min {
                    return Err(bad(format!("segment '{tok}': {max} < {min}")));
                }
                Segment::Scaffold { min, max }
            };
            segments.push(seg);
        }
        Self::from_segments(text, segments)
    }
}

impl Contig {
    /// A contig from already-parsed segments; `text` is how it is shown in messages.
    ///
    /// # Errors
    /// [`ParError::BadContig`] if there is no motif segment.
    pub fn from_segments(text: &str, segments: Vec<Segment>) -> Result<Self, ParError> {
        if !segments.iter().any(|s| matches!(s, Segment::Motif { .. })) {
            return Err(ParError::BadContig {
                contig: text.to_string(),
                reason: "no motif segment (e.g. A163-181); for unconditional generation use `protforge generate`".into(),
            });
        }
        Ok(Self { text: text.to_string(), segments })
    }
}

fn split_range(s: &str) -> Option<(&str, &str)> {
    // A leading '-' would be a negative residue number, not a range separator.
    let idx = s.char_indices().skip(1).find(|&(_, c)| c == '-').map(|(i, _)| i)?;
    Some((&s[..idx], &s[idx + 1..]))
}

fn parse_int<T: FromStr>(s: &str) -> Option<T> {
    s.trim().parse().ok()
}

/// Where one contig segment lands in a designed chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacedSegment {
    /// The segment as written in the contig.
    pub spec: String,
    /// First design residue (0-based).
    pub start: usize,
    /// Number of residues.
    pub len: usize,
    /// For motif segments: indices of the motif residues in the motif backbone, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motif_indices: Option<Vec<usize>>,
}

/// A concrete design layout: total length and the placement of every segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// Total residues.
    pub length: usize,
    /// Segments in chain order.
    pub segments: Vec<PlacedSegment>,
}

impl Placement {
    /// `(design index, motif backbone index)` for every motif residue.
    #[must_use]
    pub fn motif_pairs(&self) -> Vec<(usize, usize)> {
        self.segments
            .iter()
            .filter_map(|s| s.motif_indices.as_ref().map(|m| (s.start, m)))
            .flat_map(|(start, m)| m.iter().enumerate().map(move |(k, &src)| (start + k, src)))
            .collect()
    }
}

impl Contig {
    /// The text this contig was parsed from.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The segments in chain order.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Indices into `motif` of every motif segment's residues.
    ///
    /// # Errors
    /// [`ParError::MotifNotFound`] naming the segment, when its chain or any of its residues
    /// is absent or lacks a CA atom.
    pub fn resolve(&self, motif: &Backbone) -> Result<Vec<Vec<usize>>, ParError> {
        let chains = motif.chains();
        let mut out = Vec::new();
        for seg in &self.segments {
            let Segment::Motif { chain, start, end } = seg else { continue };
            if !chains.contains(chain) {
                return Err(ParError::MotifNotFound {
                    segment: seg.to_string(),
                    reason: format!("chain '{chain}' not in the motif structure (chains: {})", chains.join(", ")),
                });
            }
            let mut idx = Vec::new();
            for number in *start..=*end {
                let found = (0..motif.len()).find(|&i| {
                    motif.chain_ids[i] == *chain && motif.residue_ids[i].number == number && motif.residue_ids[i].insertion.is_none()
                });
                match found {
                    Some(i) if motif.atom_mask[i][1] => idx.push(i),
                    Some(_) => {
                        return Err(ParError::MotifNotFound {
                            segment: seg.to_string(),
                            reason: format!("residue {chain}{number} has no CA atom"),
                        });
                    }
                    None => {
                        return Err(ParError::MotifNotFound {
                            segment: seg.to_string(),
                            reason: format!("residue {chain}{number} is not in the motif structure"),
                        });
                    }
                }
            }
            out.push(idx);
        }
        Ok(out)
    }

    /// Smallest and largest total length the contig allows, given motif segment lengths.
    #[must_use]
    pub fn length_bounds(&self) -> (usize, usize) {
        self.segments.iter().fold((0, 0), |(lo, hi), s| match s {
            Segment::Scaffold { min, max } => (lo + min, hi + max),
            Segment::Motif { start, end, .. } => {
                let n = (end - start + 1) as usize;
                (lo + n, hi + n)
            }
        })
    }

    /// Draw a layout: a total length uniformly from the feasible part of `total` (or of the
    /// contig's own bounds), then scaffold lengths within their ranges summing to it (each
    /// extra residue goes to a segment chosen with probability proportional to its remaining
    /// room). `motif_indices` comes from [`Self::resolve`].
    ///
    /// # Errors
    /// [`ParError::Unsatisfiable`] if no layout fits `total`.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        motif_indices: &[Vec<usize>],
        total: Option<(usize, usize)>,
        rng: &mut R,
    ) -> Result<Placement, ParError> {
        let (lo, hi) = self.length_bounds();
        let (want_lo, want_hi) = total.unwrap_or((lo, hi));
        let (t_lo, t_hi) = (lo.max(want_lo), hi.min(want_hi));
        if t_lo > t_hi {
            return Err(ParError::Unsatisfiable { contig: self.text.clone(), min: want_lo, max: want_hi, lo, hi });
        }
        let target = rng.random_range(t_lo..=t_hi);
        let mut lens: Vec<usize> = Vec::new();
        let mut room: Vec<usize> = Vec::new();
        for s in &self.segments {
            if let Segment::Scaffold { min, max } = s {
                lens.push(*min);
                room.push(max - min);
            }
        }
        let mut extra = target - lo;
        while extra > 0 {
            let total_room: usize = room.iter().sum();
            let mut pick = rng.random_range(0..total_room);
            let k = room.iter().position(|&r| {
                if pick < r {
                    true
                } else {
                    pick -= r;
                    false
                }
            });
            let Some(k) = k else { break };
            lens[k] += 1;
            room[k] -= 1;
            extra -= 1;
        }
        let mut segments = Vec::with_capacity(self.segments.len());
        let (mut pos, mut scaffold_k, mut motif_k) = (0usize, 0usize, 0usize);
        for s in &self.segments {
            let (len, motif) = match s {
                Segment::Scaffold { .. } => {
                    scaffold_k += 1;
                    (lens[scaffold_k - 1], None)
                }
                Segment::Motif { .. } => {
                    motif_k += 1;
                    let m = motif_indices.get(motif_k - 1).cloned().unwrap_or_default();
                    (m.len(), Some(m))
                }
            };
            segments.push(PlacedSegment { spec: s.to_string(), start: pos, len, motif_indices: motif });
            pos += len;
        }
        Ok(Placement { length: pos, segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn motif_backbone() -> Backbone {
        // Chain A residues 160..=185 on a line, 3.8 Å apart.
        let coords = (0..26).map(|i| [[0.0; 3], [i as f32 * 3.8, 0.0, 0.0], [0.0; 3], [0.0; 3]]).collect();
        let mut bb = Backbone::from_coords(coords, vec![0; 26]);
        for (k, r) in bb.residue_ids.iter_mut().enumerate() {
            r.number = 160 + k as i32;
        }
        bb
    }

    #[test]
    fn parses_benchmark_contigs() {
        let c: Contig = "10-40,A163-181,10-40".parse().unwrap();
        assert_eq!(c.segments().len(), 3);
        assert_eq!(c.segments()[1], Segment::Motif { chain: "A".into(), start: 163, end: 181 });
        let c: Contig = "A1-7,20,A28-79".parse().unwrap();
        assert_eq!(c.segments()[1], Segment::Scaffold { min: 20, max: 20 });
        let c: Contig = "10-20/A38-38 15-30".parse().unwrap();
        assert_eq!(c.segments().len(), 3);
        assert_eq!(c.to_owned().segments()[1].to_string(), "A38-38");
        let c: Contig = "5-30,A93-97,5-20,A118-120,10-35,A198-200,10-30".parse().unwrap();
        assert_eq!(c.length_bounds(), (30 + 11, 115 + 11));
    }

    #[test]
    fn bad_contigs_say_which_segment() {
        for (text, needle) in [("", "no segments"), ("10-40,A16x-20", "A16x-20"), ("40-10,A1-5", "40-10"), ("10-40", "no motif"), ("A20-10", "ends before")] {
            let e = text.parse::<Contig>().unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn resolve_finds_residues_and_names_missing_ones() {
        let bb = motif_backbone();
        let c: Contig = "10-40,A163-181,10-40".parse().unwrap();
        let idx = c.resolve(&bb).unwrap();
        assert_eq!(idx, vec![(3..=21).collect::<Vec<_>>()]);
        let e = "5,A180-190,5".parse::<Contig>().unwrap().resolve(&bb).unwrap_err().to_string();
        assert!(e.contains("A186") && e.contains("A180-190"), "{e}");
        let e = "5,B1-3,5".parse::<Contig>().unwrap().resolve(&bb).unwrap_err().to_string();
        assert!(e.contains("chain 'B'") && e.contains("chains: A"), "{e}");
    }

    #[test]
    fn samples_respect_ranges_and_total() {
        let bb = motif_backbone();
        let c: Contig = "10-40,A163-181,10-40".parse().unwrap();
        let idx = c.resolve(&bb).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let p = c.sample(&idx, Some((50, 75)), &mut rng).unwrap();
            assert!((50..=75).contains(&p.length));
            assert!((10..=40).contains(&p.segments[0].len) && (10..=40).contains(&p.segments[2].len));
            assert_eq!(p.segments[1].len, 19);
            assert_eq!(p.segments[1].start, p.segments[0].len);
            let pairs = p.motif_pairs();
            assert_eq!(pairs.len(), 19);
            assert_eq!(pairs[0], (p.segments[0].len, 3));
            seen.insert(p.length);
        }
        assert!(seen.len() > 15, "lengths should vary: {seen:?}");
        let e = c.sample(&idx, Some((200, 300)), &mut rng).unwrap_err().to_string();
        assert!(e.contains("cannot produce"), "{e}");
    }
}
