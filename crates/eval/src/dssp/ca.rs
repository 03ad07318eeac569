//! Secondary structure from CA positions only, for CA traces.
//!
//! Our own rule set, in the spirit of P-SEA (Labesse et al. 1997, CABIOS 13:291) and the CA
//! distance rules of TM-align's `sec_str` (Zhang & Skolnick 2005), but arranged to mimic
//! DSSP's structure so that it agrees with it as well as CA geometry allows:
//!
//! Thresholds are the fields of [`CaSsParams`] (Å, radians):
//! - **Segments.** Consecutive residues are bonded when both have a CA, they share a chain id
//!   and CA(i)–CA(i+1) ≤ `max_ca_bond`.
//! - **α-helix.** A *CA 4-turn* starts at `i` when CA(i..=i+4) lie in one segment, the two CA
//!   virtual torsions (i..i+3) and (i+1..i+4) lie in `helix_torsion` (α-helix ≈ +50°) and
//!   |CA(i)–CA(i+4)| lies in `helix_d4` (α-helix ≈ 6.2 Å). As in DSSP, two consecutive
//!   4-turns at `i−1` and `i` make residues `i..=i+3` helix, which trims helix ends like DSSP.
//! - **3₁₀-helix.** Likewise two consecutive *CA 3-turns* (torsion in `helix_torsion`,
//!   |CA(i)–CA(i+3)| ≤ `helix_d3`) make `i..=i+2` helix.
//! - **Strand.** A *CA bridge* pairs `i` and `j` (j ≥ i+3, neither helix) when CA(i)–CA(j) <
//!   `bridge_d`, both are locally extended (CA virtual angle > `extended_angle`) and the flanks
//!   are close too: antiparallel (i−1, j+1) and (i+1, j−1), or parallel (i−1, j−1) and
//!   (i+1, j+1), each < `flank_d`. Bridged residues are strand; a one-residue gap between strand
//!   residues of one segment is filled (β-bulge-like).
//! - Everything else is coil.
//!
//! The defaults were chosen by a coordinate search on 400 training chains against `mkdssp`
//! (Q3 0.895) and are reported on the validation chains in `docs/BENCHMARKS.md` (Q3 ≈ 0.89).
//! Reconstructing N, C, O from the CA trace and running full DSSP would likely do better.
//!
//! Agreement with `mkdssp` on real chains is measured in `docs/BENCHMARKS.md`.

use protforge_se3::{Vec3, dihedral};
use protforge_structure::Backbone;
use protforge_structure::atom;

use super::Ss3;
use crate::neighbors::CellList;

/// Thresholds of the CA-only rules (Å and radians). [`Default`] holds the values tuned on
/// training chains against `mkdssp` (see `docs/BENCHMARKS.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaSsParams {
    /// Longest CA(i)–CA(i+1) distance (Å) counted as a chain connection (trans peptide: 3.8 Å).
    pub max_ca_bond: f64,
    /// CA virtual torsion range (radians) of a helical turn (α-helix ≈ +50°).
    pub helix_torsion: (f64, f64),
    /// CA(i)–CA(i+4) distance range (Å) of an α-helical 4-turn (ideal ≈ 6.2 Å).
    pub helix_d4: (f64, f64),
    /// Largest CA(i)–CA(i+3) distance (Å) of a 3₁₀ 3-turn (ideal ≈ 5.0–5.3 Å); 0 disables.
    pub helix_d3: f64,
    /// Largest CA–CA distance (Å) between the two central residues of a CA bridge.
    pub bridge_d: f64,
    /// Largest CA–CA distance (Å) between the flanking residues of a CA bridge.
    pub flank_d: f64,
    /// Smallest CA virtual bond angle (radians) of a locally extended residue.
    pub extended_angle: f64,
}

impl Default for CaSsParams {
    fn default() -> Self {
        Self {
            max_ca_bond: 4.3,
            helix_torsion: (30f64.to_radians(), 90f64.to_radians()),
            helix_d4: (5.8, 7.0),
            helix_d3: 6.0,
            bridge_d: 5.5,
            flank_d: 6.0,
            extended_angle: 100f64.to_radians(),
        }
    }
}

/// 3-state assignment from CA positions (see the module docs); coil where CA is absent.
pub(crate) fn assign(bb: &Backbone, p: &CaSsParams) -> Vec<Ss3> {
    let keep: Vec<usize> = (0..bb.len())
        .filter(|&i| bb.atom_mask.get(i).is_some_and(|m| m[atom::CA]))
        .collect();
    let n = keep.len();
    let ca: Vec<Vec3> = keep
        .iter()
        .map(|&i| {
            let p = bb.coords[i][atom::CA];
            Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
        })
        .collect();
    let dist = |a: usize, b: usize| (ca[a] - ca[b]).norm();
    // CA virtual torsion (a, a+1, a+2, a+3), radians; degenerate input gives 0 (never helical).
    let torsion = |a: usize| dihedral(ca[a], ca[a + 1], ca[a + 2], ca[a + 3]);
    let mut seg = vec![0usize; n];
    for k in 1..n {
        let same_chain = bb.chain_ids.get(keep[k]) == bb.chain_ids.get(keep[k - 1]);
        let bonded = same_chain && dist(k - 1, k) <= p.max_ca_bond;
        seg[k] = if bonded { seg[k - 1] } else { seg[k - 1] + 1 };
    }
    let conn = |a: usize, b: usize| seg[a] == seg[b];
    let in_range = |x: f64, r: (f64, f64)| x >= r.0 && x <= r.1;

    let mut ss = vec![Ss3::Coil; n];

    // Helix from consecutive CA 4-turns.
    let turn4: Vec<bool> = (0..n)
        .map(|i| {
            i + 4 < n
                && conn(i, i + 4)
                && in_range(torsion(i), p.helix_torsion)
                && in_range(torsion(i + 1), p.helix_torsion)
                && in_range(dist(i, i + 4), p.helix_d4)
        })
        .collect();
    for i in 1..n {
        if turn4[i] && turn4[i - 1] {
            for s in &mut ss[i..(i + 4).min(n)] {
                *s = Ss3::Helix;
            }
        }
    }

    // 3₁₀ helix from consecutive CA 3-turns, only where not already helix (DSSP's G rule).
    if p.helix_d3 > 0.0 {
        let turn3: Vec<bool> = (0..n)
            .map(|i| {
                i + 3 < n
                    && conn(i, i + 3)
                    && in_range(torsion(i), p.helix_torsion)
                    && dist(i, i + 3) <= p.helix_d3
            })
            .collect();
        for i in 1..n {
            if turn3[i] && turn3[i - 1] && i + 2 < n {
                for s in &mut ss[i..=i + 2] {
                    *s = Ss3::Helix;
                }
            }
        }
    }

    // Strand from CA bridges.
    // Virtual bond angle CA(i−1)–CA(i)–CA(i+1); `angle` is 0 (not extended) when degenerate.
    let extended: Vec<bool> = (0..n)
        .map(|i| {
            i >= 1
                && i + 1 < n
                && conn(i - 1, i + 1)
                && (ca[i - 1] - ca[i]).angle(&(ca[i + 1] - ca[i])) > p.extended_angle
        })
        .collect();
    let close = |a: usize, b: usize, d: f64| dist(a, b) < d;
    let candidate = |i: usize| extended[i] && ss[i] != Ss3::Helix;
    let mut strand = vec![false; n];
    // `extended` is false at both chain ends, so i − 1 and j + 1 exist for candidates.
    for (i, j) in CellList::new(&ca, p.bridge_d).pairs() {
        if j <= i + 2 || !candidate(i) || !candidate(j) {
            continue;
        }
        let anti = close(i - 1, j + 1, p.flank_d) && close(i + 1, j - 1, p.flank_d);
        let para = close(i - 1, j - 1, p.flank_d) && close(i + 1, j + 1, p.flank_d);
        if anti || para {
            strand[i] = true;
            strand[j] = true;
        }
    }
    for i in 1..n.saturating_sub(1) {
        if !strand[i] && strand[i - 1] && strand[i + 1] && conn(i - 1, i + 1) && ss[i] != Ss3::Helix
        {
            strand[i] = true;
        }
    }
    for i in 0..n {
        if strand[i] && ss[i] != Ss3::Helix {
            ss[i] = Ss3::Strand;
        }
    }

    let mut out = vec![Ss3::Coil; bb.len()];
    for (k, &i) in keep.iter().enumerate() {
        out[i] = ss[k];
    }
    out
}
