//! The preference score of an assembly, used to rank samples for preference alignment
//! ([`crate::dpo`]) and to report their quality. ProteinWeaver ranks samples "through
//! comparative analysis" without publishing the criterion (MODELS.md §4); ours is a documented
//! sum of four terms computed on CA atoms (Å), each in a fixed range:
//!
//! | term | value | range |
//! |---|---|---|
//! | clashes | `−min(1, n_clash / clash_scale)`; a clash is a CA pair with `|i − j| ≥ 3` closer than 3.0 Å (`protforge_eval::geometry`) | [−1, 0] |
//! | interface contacts | `min(1, n_contact / (contact_target · (m − 1)))`; a contact is a CA pair of two different domains closer than `contact_cutoff_ang`, `m` domains | [0, 1] |
//! | compactness | `−min(1, |ln(Rg / (2.2 L^0.38))|)` (Skolnick et al. 1997 compact-globule scaling, `protforge_eval::geometry::expected_rg`) | [−1, 0] |
//! | linker geometry | `(f_bond − 1) − f_thread`: `f_bond` is the fraction of CA–CA bonds touching a linker or crossing a domain boundary with length in [3.6, 4.0] Å; `f_thread` the fraction of linker residues with at least `thread_count` CA of one domain within `thread_radius_ang` (a linker buried inside a domain: threading or a knot through it) | [−2, 0] |
//!
//! `total = w_clash·clash + w_contact·contacts + w_compact·compactness + w_linker·linker`.
//! An assembly is **valid** when it has no clash, every linker bond is in range and no linker
//! residue is threaded.

use crate::WeaverError;
use protforge_eval::geometry::{CA_BOND_MAX, CA_BOND_MIN, CLASH_DISTANCE, CLASH_MIN_SEPARATION, expected_rg, radius_of_gyration_points};
use protforge_se3::Vec3;
use serde::{Deserialize, Serialize};

/// Settings of [`score_assembly`] (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Weight of the clash term.
    pub w_clash: f64,
    /// Weight of the interface-contact term.
    pub w_contact: f64,
    /// Weight of the compactness term.
    pub w_compact: f64,
    /// Weight of the linker term.
    pub w_linker: f64,
    /// Clash count at which the clash term saturates at −1.
    pub clash_scale: f64,
    /// Inter-domain CA–CA contact distance (Å).
    pub contact_cutoff_ang: f64,
    /// Contacts per interface at which the contact term saturates at 1.
    pub contact_target: f64,
    /// Radius (Å) of the threading test.
    pub thread_radius_ang: f64,
    /// A linker residue with at least this many CA of one domain within the radius is threaded.
    pub thread_count: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            w_clash: 2.0,
            w_contact: 1.0,
            w_compact: 1.0,
            w_linker: 1.0,
            clash_scale: 10.0,
            contact_cutoff_ang: 8.0,
            contact_target: 10.0,
            thread_radius_ang: 10.0,
            thread_count: 20,
        }
    }
}

/// Every component of the score of one assembly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreBreakdown {
    /// Clashing CA pairs.
    pub n_clashes: usize,
    /// Inter-domain CA contacts.
    pub n_contacts: usize,
    /// Radius of gyration (Å).
    pub rg: f64,
    /// `rg / (2.2 L^0.38)`.
    pub rg_ratio: f64,
    /// Linker/junction CA–CA bonds measured.
    pub n_linker_bonds: usize,
    /// Fraction of them in [3.6, 4.0] Å (1 without such bonds).
    pub linker_bond_ok_frac: f64,
    /// Linker residues buried in a domain.
    pub n_threaded: usize,
    /// Clash term.
    pub clash: f64,
    /// Contact term.
    pub contacts: f64,
    /// Compactness term.
    pub compactness: f64,
    /// Linker term.
    pub linker: f64,
    /// Weighted sum.
    pub total: f64,
    /// No clash, every linker bond in range, no threading.
    pub valid: bool,
}

/// Score an assembly: `ca` (Å) with the domain of each residue (`None` = linker).
///
/// # Errors
/// [`WeaverError::BadLayout`] if the lengths differ; [`WeaverError::NonFinite`].
pub fn score_assembly(ca: &[Vec3], domain_of: &[Option<usize>], cfg: &ScoreConfig) -> Result<ScoreBreakdown, WeaverError> {
    if ca.len() != domain_of.len() {
        return Err(WeaverError::BadLayout(format!("{} CA positions but {} domain labels", ca.len(), domain_of.len())));
    }
    if let Some(index) = ca.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
        return Err(WeaverError::NonFinite { context: "score_assembly", index });
    }
    let n = ca.len();
    let n_domains = domain_of.iter().flatten().max().map_or(0, |m| m + 1);
    let (c2, k2, r2) = (CLASH_DISTANCE * CLASH_DISTANCE, cfg.contact_cutoff_ang.powi(2), cfg.thread_radius_ang.powi(2));
    let (mut n_clashes, mut n_contacts) = (0usize, 0usize);
    let mut near_domain = vec![vec![0usize; n_domains]; n];
    for i in 0..n {
        for j in i + 1..n {
            let d2 = (ca[i] - ca[j]).norm_squared();
            if j - i >= CLASH_MIN_SEPARATION && d2 < c2 {
                n_clashes += 1;
            }
            match (domain_of[i], domain_of[j]) {
                (Some(a), Some(b)) if a != b && d2 < k2 => n_contacts += 1,
                _ => {}
            }
            if d2 < r2 {
                if let Some(b) = domain_of[j] {
                    near_domain[i][b] += 1;
                }
                if let Some(a) = domain_of[i] {
                    near_domain[j][a] += 1;
                }
            }
        }
    }
    let bonds: Vec<f64> = (1..n)
        .filter(|&i| domain_of[i].is_none() || domain_of[i - 1].is_none() || domain_of[i] != domain_of[i - 1])
        .map(|i| (ca[i] - ca[i - 1]).norm())
        .collect();
    let ok = bonds.iter().filter(|b| (CA_BOND_MIN..=CA_BOND_MAX).contains(*b)).count();
    let linker_bond_ok_frac = if bonds.is_empty() { 1.0 } else { ok as f64 / bonds.len() as f64 };
    let linkers: Vec<usize> = (0..n).filter(|&i| domain_of[i].is_none()).collect();
    let n_threaded = linkers.iter().filter(|&&i| near_domain[i].iter().any(|&c| c >= cfg.thread_count)).count();
    let thread_frac = if linkers.is_empty() { 0.0 } else { n_threaded as f64 / linkers.len() as f64 };
    let rg = radius_of_gyration_points(ca);
    let rg_ratio = if n == 0 { 0.0 } else { rg / expected_rg(n) };
    let clash = -(n_clashes as f64 / cfg.clash_scale).min(1.0);
    let interfaces = n_domains.saturating_sub(1).max(1) as f64;
    let contacts = (n_contacts as f64 / (cfg.contact_target * interfaces)).min(1.0);
    let compactness = if rg_ratio > 0.0 { -rg_ratio.ln().abs().min(1.0) } else { -1.0 };
    let linker = (linker_bond_ok_frac - 1.0) - thread_frac;
    let total = cfg.w_clash * clash + cfg.w_contact * contacts + cfg.w_compact * compactness + cfg.w_linker * linker;
    Ok(ScoreBreakdown {
        n_clashes,
        n_contacts,
        rg,
        rg_ratio,
        n_linker_bonds: bonds.len(),
        linker_bond_ok_frac,
        n_threaded,
        clash,
        contacts,
        compactness,
        linker,
        total,
        valid: n_clashes == 0 && ok == bonds.len() && n_threaded == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two compact "domains" (3×3×3 lattices, 3.8 Å spacing, snake order) `gap` Å apart along
    /// x, joined by a straight linker of `linker` residues.
    fn two_blocks(gap: f64, linker: usize) -> (Vec<Vec3>, Vec<Option<usize>>) {
        let block = |x0: f64| -> Vec<Vec3> {
            let mut v = Vec::new();
            for a in 0..3 {
                for b in 0..3 {
                    for c in 0..3 {
                        let (bb, cc) = (if a % 2 == 0 { b } else { 2 - b }, if b % 2 == 0 { c } else { 2 - c });
                        v.push(Vec3::new(x0 + 3.8 * a as f64, 3.8 * bb as f64, 3.8 * cc as f64));
                    }
                }
            }
            v
        };
        let a = block(0.0);
        let b = block(7.6 + gap);
        let mut ca = a.clone();
        let (start, end) = (a[a.len() - 1], b[0]);
        for k in 1..=linker {
            ca.push(start + (end - start) * (k as f64 / (linker + 1) as f64));
        }
        ca.extend(b);
        let mut labels = vec![Some(0); 27];
        labels.extend(vec![None; linker]);
        labels.extend(vec![Some(1); 27]);
        (ca, labels)
    }

    #[test]
    fn components_respond_to_what_they_measure() {
        let cfg = ScoreConfig::default();
        let (ca, lab) = two_blocks(3.8, 0);
        let packed = score_assembly(&ca, &lab, &cfg).unwrap();
        assert_eq!(packed.n_clashes, 0);
        assert!(packed.n_contacts > 0 && packed.contacts > 0.0);
        let (ca_far, lab_far) = two_blocks(40.0, 0);
        let far = score_assembly(&ca_far, &lab_far, &cfg).unwrap();
        assert_eq!(far.n_contacts, 0);
        assert!(far.rg_ratio > packed.rg_ratio && far.compactness < packed.compactness);
        assert!(far.linker < 0.0, "the stretched junction bond is out of range");
        assert!(packed.total > far.total);
        // Overlapping domains clash.
        let (ca_hit, lab_hit) = two_blocks(-7.6, 0);
        let hit = score_assembly(&ca_hit, &lab_hit, &cfg).unwrap();
        assert!(hit.n_clashes > 0 && hit.clash < 0.0 && !hit.valid);
        // A linker residue placed at a domain's centre is threaded.
        let mut lab_t = lab.clone();
        lab_t[13] = None;
        let thread = score_assembly(&ca, &lab_t, &ScoreConfig { thread_count: 6, ..cfg }).unwrap();
        assert_eq!(thread.n_threaded, 1);
        assert!(score_assembly(&ca, &lab[1..], &cfg).is_err());
    }

    #[test]
    fn ideal_linker_bonds_are_valid() {
        let ca: Vec<Vec3> = (0..10).map(|i| Vec3::new(3.8 * i as f64, 0.0, 0.0)).collect();
        let lab = vec![Some(0), Some(0), Some(0), None, None, None, None, Some(1), Some(1), Some(1)];
        let s = score_assembly(&ca, &lab, &ScoreConfig::default()).unwrap();
        assert_eq!(s.n_linker_bonds, 5);
        assert_eq!(s.linker_bond_ok_frac, 1.0);
        assert!(s.valid && s.linker == 0.0);
    }
}
