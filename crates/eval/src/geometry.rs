//! Backbone geometry validity on CA atoms (Å): CA–CA virtual bonds, steric clashes and radius
//! of gyration, plus per-structure and aggregate reports for `protforge eval backbones`.
//!
//! Conventions used by every function here:
//! - Only residues whose CA is present (`atom_mask[i][CA]`) are used.
//! - **Sequence neighbours** are residues `i`, `i+1` (adjacent in storage order, both with a
//!   CA) with the same chain id whose residue numbers differ by 0 (insertion code) or 1. A larger
//!   jump in numbering is a chain break and that pair is not a bond. Generated backbones are
//!   numbered 1..N, so all their neighbours count, however stretched.
//! - **Clash**: a CA pair closer than [`CLASH_DISTANCE`] Å that is either in the same chain with
//!   storage-index separation |i−j| ≥ 3, or in different chains.

use protforge_se3::Vec3;
use protforge_structure::{Backbone, atom};
use rayon::prelude::*;

use crate::dssp::{self, SsMethod};
use crate::neighbors::CellList;

/// Lower end (Å) of the accepted CA–CA virtual bond range.
pub const CA_BOND_MIN: f64 = 3.6;
/// Upper end (Å) of the accepted CA–CA virtual bond range.
pub const CA_BOND_MAX: f64 = 4.0;
/// CA–CA distance (Å) below which two non-adjacent residues clash.
pub const CLASH_DISTANCE: f64 = 3.0;
/// Smallest same-chain index separation |i−j| for a clash.
pub const CLASH_MIN_SEPARATION: usize = 3;
/// Prefactor (Å) of the compact-protein radius of gyration scaling `Rg ≈ 2.2 · N^0.38`
/// (Skolnick et al. 1997, J. Mol. Biol. 265:217).
pub const RG_PREFACTOR: f64 = 2.2;
/// Exponent of the radius of gyration scaling.
pub const RG_EXPONENT: f64 = 0.38;

/// Statistics of CA–CA virtual bond lengths between sequence neighbours.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CaBondStats {
    /// Number of neighbour pairs measured.
    pub n_bonds: usize,
    /// Number of them with length in [3.6, 4.0] Å.
    pub n_ok: usize,
    /// Mean length in Å (0 when there are no bonds).
    pub mean: f64,
    /// Population standard deviation in Å (0 when there are no bonds).
    pub sd: f64,
    /// `n_ok / n_bonds` (0 when there are no bonds).
    pub ok_frac: f64,
}

/// Steric clashes between CA atoms.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ClashStats {
    /// Number of clashing CA pairs.
    pub n_clashes: usize,
    /// Whether there is at least one clash.
    pub has_clash: bool,
    /// Fraction of CA-bearing residues involved in at least one clash.
    pub clash_residue_frac: f64,
}

/// Geometry and secondary structure of one backbone.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackboneReport {
    /// Number of residues (entries of the backbone).
    pub n_res: usize,
    /// Number of residues with a CA.
    pub n_ca: usize,
    /// CA–CA virtual bonds.
    pub ca_bonds: CaBondStats,
    /// CA clashes.
    pub clashes: ClashStats,
    /// Radius of gyration of the CA atoms in Å.
    pub rg: f64,
    /// `rg / (2.2 · n_ca^0.38)`; about 1 for a compact globule (0 without CA atoms).
    pub rg_ratio: f64,
    /// 3-state secondary structure string (`H`/`E`/`C`, one letter per residue).
    pub ss: String,
    /// Which assignment method produced `ss`.
    pub ss_method: SsMethod,
    /// Fraction of helix residues.
    pub helix_frac: f64,
    /// Fraction of strand residues.
    pub strand_frac: f64,
    /// Fraction of coil residues.
    pub coil_frac: f64,
}

/// Aggregate over a set of backbones. The JSON keys are a stable interface read by other tools.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AggregateReport {
    /// Number of structures.
    pub n: usize,
    /// Fraction of all CA–CA neighbour bonds of all structures (pooled) in [3.6, 4.0] Å.
    pub ca_bond_ok_frac: f64,
    /// Fraction of structures with at least one CA clash.
    pub clash_frac: f64,
    /// Mean over structures of the per-structure helix fraction.
    pub helix_frac: f64,
    /// Mean over structures of the per-structure strand fraction.
    pub strand_frac: f64,
    /// Median over structures of `rg_ratio`.
    pub median_rg_ratio: f64,
    /// Mean pairwise TM-score within the set (from `diversity`).
    pub mean_pairwise_tm: f64,
    /// Number of clusters at TM-score 0.5 (from `diversity`).
    pub clusters_tm05: usize,
    /// Median over structures of the highest TM-score to any reference structure; omitted
    /// from JSON when no reference set was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_max_tm_to_reference: Option<f64>,
}

fn ca_f64(bb: &Backbone, i: usize) -> Vec3 {
    let p = bb.coords[i][atom::CA];
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

fn has_ca(bb: &Backbone, i: usize) -> bool {
    bb.atom_mask.get(i).is_some_and(|m| m[atom::CA])
}

/// Whether residues `i` and `i+1` are sequence neighbours (see the module docs).
#[must_use]
pub fn are_neighbours(bb: &Backbone, i: usize) -> bool {
    let j = i + 1;
    if j >= bb.len() || !has_ca(bb, i) || !has_ca(bb, j) {
        return false;
    }
    if bb.chain_ids.get(i) != bb.chain_ids.get(j) {
        return false;
    }
    match (bb.residue_ids.get(i), bb.residue_ids.get(j)) {
        (Some(a), Some(b)) => matches!(i64::from(b.number) - i64::from(a.number), 0 | 1),
        _ => true,
    }
}

/// CA–CA virtual bond lengths (Å) between all sequence neighbours, in order.
#[must_use]
pub fn ca_bond_lengths(bb: &Backbone) -> Vec<f64> {
    (0..bb.len().saturating_sub(1))
        .filter(|&i| are_neighbours(bb, i))
        .map(|i| (ca_f64(bb, i) - ca_f64(bb, i + 1)).norm())
        .collect()
}

/// Mean, standard deviation and fraction in [3.6, 4.0] Å of the CA–CA virtual bonds.
#[must_use]
pub fn ca_bond_stats(bb: &Backbone) -> CaBondStats {
    let d = ca_bond_lengths(bb);
    let n = d.len();
    if n == 0 {
        return CaBondStats {
            n_bonds: 0,
            n_ok: 0,
            mean: 0.0,
            sd: 0.0,
            ok_frac: 0.0,
        };
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let n_ok = d
        .iter()
        .filter(|&&x| (CA_BOND_MIN..=CA_BOND_MAX).contains(&x))
        .count();
    CaBondStats {
        n_bonds: n,
        n_ok,
        mean,
        sd: var.sqrt(),
        ok_frac: n_ok as f64 / n as f64,
    }
}

/// All clashing CA pairs `(i, j)`, `i < j` (storage indices), sorted; found with a cell list.
#[must_use]
pub fn ca_clash_pairs(bb: &Backbone) -> Vec<(usize, usize)> {
    let idx: Vec<usize> = (0..bb.len()).filter(|&i| has_ca(bb, i)).collect();
    let pts: Vec<Vec3> = idx.iter().map(|&i| ca_f64(bb, i)).collect();
    // `idx` is increasing, so the pairs stay sorted and `i < j` after mapping back.
    CellList::new(&pts, CLASH_DISTANCE)
        .pairs()
        .into_iter()
        .map(|(a, b)| (idx[a], idx[b]))
        .filter(|&(i, j)| {
            let same_chain = bb.chain_ids.get(i) == bb.chain_ids.get(j);
            !same_chain || j - i >= CLASH_MIN_SEPARATION
        })
        .collect()
}

/// Clash count, flag and fraction of residues involved.
#[must_use]
pub fn clash_stats(bb: &Backbone) -> ClashStats {
    let pairs = ca_clash_pairs(bb);
    let n_ca = (0..bb.len()).filter(|&i| has_ca(bb, i)).count();
    let mut involved = vec![false; bb.len()];
    for &(i, j) in &pairs {
        involved[i] = true;
        involved[j] = true;
    }
    let n_inv = involved.iter().filter(|&&b| b).count();
    ClashStats {
        n_clashes: pairs.len(),
        has_clash: !pairs.is_empty(),
        clash_residue_frac: if n_ca == 0 {
            0.0
        } else {
            n_inv as f64 / n_ca as f64
        },
    }
}

/// Radius of gyration (Å) of the CA atoms: `sqrt(mean |x_i − centroid|²)`; 0 without CAs.
#[must_use]
pub fn radius_of_gyration(bb: &Backbone) -> f64 {
    let pts: Vec<Vec3> = (0..bb.len())
        .filter(|&i| has_ca(bb, i))
        .map(|i| ca_f64(bb, i))
        .collect();
    radius_of_gyration_points(&pts)
}

/// Radius of gyration (Å) of a point set (Å); 0 for an empty set.
#[must_use]
pub fn radius_of_gyration_points(pts: &[Vec3]) -> f64 {
    if pts.is_empty() {
        return 0.0;
    }
    let n = pts.len() as f64;
    let c: Vec3 = pts.iter().map(|p| p / n).sum();
    (pts.iter().map(|p| (p - c).norm_squared()).sum::<f64>() / n).sqrt()
}

/// Expected radius of gyration (Å) of a compact protein of `n` residues: `2.2 · n^0.38`.
#[must_use]
pub fn expected_rg(n: usize) -> f64 {
    RG_PREFACTOR * (n as f64).powf(RG_EXPONENT)
}

/// Geometry and secondary structure report of one backbone (SS via [`dssp::dssp_with_method`]).
#[must_use]
pub fn backbone_report(bb: &Backbone) -> BackboneReport {
    let n_ca = (0..bb.len()).filter(|&i| has_ca(bb, i)).count();
    let rg = radius_of_gyration(bb);
    let (ss, ss_method) = dssp::dssp_with_method(bb);
    let fr = dssp::ss_fractions(&ss);
    BackboneReport {
        n_res: bb.len(),
        n_ca,
        ca_bonds: ca_bond_stats(bb),
        clashes: clash_stats(bb),
        rg,
        rg_ratio: if n_ca == 0 {
            0.0
        } else {
            rg / expected_rg(n_ca)
        },
        ss: dssp::ss_string(&ss),
        ss_method,
        helix_frac: fr.helix,
        strand_frac: fr.strand,
        coil_frac: fr.coil,
    }
}

/// [`backbone_report`] of many backbones, in parallel (rayon), in input order.
#[must_use]
pub fn backbone_reports(bbs: &[Backbone]) -> Vec<BackboneReport> {
    bbs.par_iter().map(backbone_report).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// Aggregate per-structure reports with the diversity numbers computed elsewhere
/// (`mean_pairwise_tm`, `clusters_tm05`, and the optional novelty median).
///
/// Definitions: `ca_bond_ok_frac` pools all bonds of all structures; `clash_frac` is the
/// fraction of structures with ≥ 1 clash; `helix_frac`/`strand_frac` are means of the
/// per-structure fractions (each structure weighs the same); `median_rg_ratio` is the median
/// of per-structure ratios. With no structures every fraction is 0.
#[must_use]
pub fn aggregate(
    reports: &[BackboneReport],
    mean_pairwise_tm: f64,
    clusters_tm05: usize,
    median_max_tm_to_reference: Option<f64>,
) -> AggregateReport {
    let n = reports.len();
    let bonds: usize = reports.iter().map(|r| r.ca_bonds.n_bonds).sum();
    let ok: usize = reports.iter().map(|r| r.ca_bonds.n_ok).sum();
    let mean = |f: fn(&BackboneReport) -> f64| {
        if n == 0 {
            0.0
        } else {
            reports.iter().map(f).sum::<f64>() / n as f64
        }
    };
    AggregateReport {
        n,
        ca_bond_ok_frac: if bonds == 0 {
            0.0
        } else {
            ok as f64 / bonds as f64
        },
        clash_frac: mean(|r| if r.clashes.has_clash { 1.0 } else { 0.0 }),
        helix_frac: mean(|r| r.helix_frac),
        strand_frac: mean(|r| r.strand_frac),
        median_rg_ratio: median(reports.iter().map(|r| r.rg_ratio).collect()),
        mean_pairwise_tm,
        clusters_tm05,
        median_max_tm_to_reference,
    }
}

/// Median of the values, ignoring NaN (0 for an empty input). Convenience for callers that
/// compute `median_max_tm_to_reference`.
#[must_use]
pub fn median_of(values: &[f64]) -> f64 {
    median(values.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protforge_structure::ResidueId;

    /// A straight CA trace along x with the given consecutive spacings (Å).
    fn trace(spacings: &[f32]) -> Backbone {
        let mut x = 0.0;
        let mut pts = vec![[0.0, 0.0, 0.0]];
        for &s in spacings {
            x += s;
            pts.push([x, 0.0, 0.0]);
        }
        Backbone::from_ca(&pts, None)
    }

    #[test]
    fn ca_bond_statistics() {
        let bb = trace(&[3.8, 3.8, 4.5, 3.5, 3.8]);
        let s = ca_bond_stats(&bb);
        assert_eq!(s.n_bonds, 5);
        assert_eq!(s.n_ok, 3);
        assert!((s.ok_frac - 0.6).abs() < 1e-12);
        assert!((s.mean - 19.4 / 5.0).abs() < 1e-5);
        let var = [3.8f64, 3.8, 4.5, 3.5, 3.8]
            .iter()
            .map(|x| (x - 3.88).powi(2))
            .sum::<f64>()
            / 5.0;
        assert!((s.sd - var.sqrt()).abs() < 1e-5);
    }

    #[test]
    fn bonds_skip_numbering_gaps_chains_and_missing_ca() {
        let mut bb = trace(&[3.8, 9.0, 3.8, 3.8, 3.8]);
        // Residue numbering jumps 2 -> 10 across the long 9 Å "bond": a chain break.
        for (i, r) in bb.residue_ids.iter_mut().enumerate() {
            *r = ResidueId::new(if i < 2 { i as i32 + 1 } else { i as i32 + 8 });
        }
        assert_eq!(ca_bond_stats(&bb).n_bonds, 4);
        assert_eq!(ca_bond_stats(&bb).ok_frac, 1.0);
        // A chain-id change also breaks the chain.
        bb.chain_ids[4] = "B".to_string();
        bb.chain_ids[5] = "B".to_string();
        assert_eq!(ca_bond_stats(&bb).n_bonds, 3);
        // A missing CA removes its bonds: (0, 1) goes, (2, 3) and (4, 5) stay.
        bb.atom_mask[1][atom::CA] = false;
        assert_eq!(ca_bond_stats(&bb).n_bonds, 2);
        // Insertion codes (same number) count as neighbours.
        let mut ins = trace(&[3.8]);
        ins.residue_ids[1] = ResidueId {
            number: 1,
            insertion: Some('A'),
        };
        assert_eq!(ca_bond_stats(&ins).n_bonds, 1);
    }

    #[test]
    fn forced_clash_is_found() {
        // A square-ish hairpin: residue 5 comes back to 2.5 Å of residue 0.
        let pts = [
            [0.0, 0.0, 0.0],
            [3.8, 0.0, 0.0],
            [7.6, 0.0, 0.0],
            [7.6, 3.8, 0.0],
            [3.8, 3.8, 0.0],
            [0.0, 2.5, 0.0],
        ];
        let bb = Backbone::from_ca(&pts, None);
        let pairs = ca_clash_pairs(&bb);
        assert_eq!(pairs, vec![(0, 5)]);
        let c = clash_stats(&bb);
        assert!(c.has_clash);
        assert_eq!(c.n_clashes, 1);
        assert!((c.clash_residue_frac - 2.0 / 6.0).abs() < 1e-12);
        // |i - j| < 3 in the same chain is never a clash, even when close.
        let close = trace(&[0.9, 0.9, 0.9]);
        assert_eq!(ca_clash_pairs(&close), vec![(0, 3)]);
        // Across chains every close pair counts.
        let mut two = trace(&[2.0]);
        two.chain_ids[1] = "B".to_string();
        assert_eq!(ca_clash_pairs(&two), vec![(0, 1)]);
        assert!(!clash_stats(&trace(&[3.8; 10])).has_clash);
    }

    #[test]
    fn radius_of_gyration_of_known_sets() {
        let square = [
            Vec3::new(1.0, 0.0, 5.0),
            Vec3::new(-1.0, 0.0, 5.0),
            Vec3::new(0.0, 1.0, 5.0),
            Vec3::new(0.0, -1.0, 5.0),
        ];
        assert!((radius_of_gyration_points(&square) - 1.0).abs() < 1e-12);
        // Cube of side 2: every vertex is sqrt(3) from the centre.
        let mut cube = Vec::new();
        for x in [-1.0, 1.0] {
            for y in [-1.0, 1.0] {
                for z in [-1.0, 1.0] {
                    cube.push(Vec3::new(x + 10.0, y, z));
                }
            }
        }
        assert!((radius_of_gyration_points(&cube) - 3f64.sqrt()).abs() < 1e-12);
        // Two points 3.8 Å apart: Rg = 1.9.
        let bb = trace(&[3.8]);
        assert!((radius_of_gyration(&bb) - 1.9).abs() < 1e-6);
        let r = backbone_report(&bb);
        assert!((r.rg_ratio - 1.9 / (2.2 * 2f64.powf(0.38))).abs() < 1e-6);
        assert!((expected_rg(100) - 2.2 * 100f64.powf(0.38)).abs() < 1e-12);
    }

    #[test]
    fn aggregate_keys_and_values() {
        let good = backbone_report(&trace(&[3.8; 9]));
        let mut bad = backbone_report(&trace(&[4.5, 3.8, 3.8, 3.8]));
        bad.clashes.has_clash = true;
        bad.helix_frac = 0.5;
        let agg = aggregate(&[good.clone(), bad.clone()], 0.3, 2, None);
        assert_eq!(agg.n, 2);
        assert!((agg.ca_bond_ok_frac - 12.0 / 13.0).abs() < 1e-12);
        assert!((agg.clash_frac - 0.5).abs() < 1e-12);
        assert!((agg.helix_frac - 0.25).abs() < 1e-12);
        assert!((agg.median_rg_ratio - 0.5 * (good.rg_ratio + bad.rg_ratio)).abs() < 1e-12);
        let v = serde_json::to_value(&agg).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "ca_bond_ok_frac",
                "clash_frac",
                "clusters_tm05",
                "helix_frac",
                "mean_pairwise_tm",
                "median_rg_ratio",
                "n",
                "strand_frac"
            ]
        );
        let with_ref = serde_json::to_value(aggregate(&[good], 0.0, 1, Some(0.7))).unwrap();
        assert_eq!(with_ref["median_max_tm_to_reference"], 0.7);
        let empty = aggregate(&[], 0.0, 0, None);
        assert_eq!(empty.n, 0);
        assert_eq!(empty.median_rg_ratio, 0.0);
        assert_eq!(median_of(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn report_uses_ca_fallback_for_traces() {
        let r = backbone_report(&trace(&[3.8; 5]));
        assert_eq!(r.ss_method, SsMethod::CaGeometry);
        assert_eq!(r.ss, "CCCCCC");
        assert_eq!(r.n_ca, 6);
        assert!((r.coil_frac - 1.0).abs() < 1e-12);
        assert_eq!(backbone_reports(&[Backbone::default()])[0].n_res, 0);
    }
}
