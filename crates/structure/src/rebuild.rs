//! CA trace → full backbone (N, CA, C, O) reconstruction.
//!
//! # Method
//!
//! A BBQ-style lookup (Gront, Kmiecik & Kolinski 2007, "Backbone Building from
//! Quadrilaterals: a fast and accurate algorithm for protein backbone reconstruction from
//! alpha carbon coordinates", J. Comput. Chem. 28, 1593–1597), extended to average over
//! overlapping windows and finished with rigid ideal peptide units:
//!
//! 1. Every window of four consecutive CA atoms `p0..p3` is described by the two CA virtual
//!    bond angles θ₁ (at `p1`), θ₂ (at `p2`) and the CA virtual dihedral τ (`p0-p1-p2-p3`);
//!    a local frame has its origin at `p1`, x towards `p2` and `p0` in the xy plane.
//! 2. A table fitted on our training chains gives, for those descriptors (multilinear
//!    interpolation between bins of 4° × 4° × 10°), the mean position in that frame of N, C
//!    and O of all four residues, and how far the training atoms scattered about that mean.
//! 3. Each atom gets up to four estimates (one per window that contains its residue); they
//!    are averaged with weights `1 / (rms² + 0.01 Å²)`, so the window in which the atom's
//!    peptide is the central bond dominates and chain ends use what exists.
//! 4. Each peptide unit (CAᵢ, Cᵢ, Oᵢ, Nᵢ₊₁, CAᵢ₊₁) is replaced by an ideal planar peptide
//!    (Engh & Huber 1991 bond lengths and angles from [`protforge_se3::geometry`]) centred on
//!    the true CA–CA axis and rotated about it to fit the estimated C, O, N (weighted least
//!    squares, closed form). This restores exact C–N and C=O bond lengths and planarity. A
//!    CA–CA distance below [`CIS_CA_CA`] (cis peptides, ≈ 2.9 Å) uses an ideal *cis* unit
//!    (ω = 0).
//! 5. The peptide rotations are refined by coordinate descent: fit energy plus a Gaussian
//!    prior on every N–CA–C angle (τ₀ = 111.2°, σ = 6°), in the spirit of the PULCHRA
//!    refinement (Rotkiewicz & Skolnick 2008, J. Comput. Chem. 29, 1460). The terminal N
//!    (first residue), C and O (last residue) are placed with ideal bond length and angle
//!    (NeRF, [`place_atom`]) at the torsion of their averaged estimate.
//!
//! Traces are split into segments at CA–CA distances above [`MAX_CA_CA`] (chain breaks);
//! each segment is rebuilt on its own. Segments of 3 residues use a second table (one window
//! of three CA, descriptor θ₁). For 1 or 2 residues the orientation of the peptide about the
//! CA–CA axis is not determined by the CA atoms; a virtual CA is added at θ = 105° in a fixed,
//! deterministic direction and the 3-residue table is used, so the result is chemically sound
//! but its orientation is arbitrary (and, unlike longer segments, not rotation-equivariant).
//!
//! # Accuracy
//!
//! On the 148 validation chains (never used in the fit), rebuilding from the true CA gives a
//! global all-atom (N, CA, C, O) backbone RMSD after Kabsch superposition of mean 0.32 Å
//! (median 0.30, p95 0.45); bond-length statistics and the DSSP agreement are in `docs/BENCHMARKS.md`
//! ("CA → backbone reconstruction").
//!
//! # Reproducing the table
//!
//! The table (`src/rebuild/table.bin`, ~1.4 MB, embedded with `include_bytes!`) is fitted on
//! `/work/shared/data/structures/train.jsonl` (never on `val.jsonl`) by
//!
//! ```text
//! cargo test --release -p protforge-structure --test rebuild_fit -- --ignored fit_rebuild_table
//! ```
//!
//! which calls [`fit_table`] and overwrites `crates/structure/src/rebuild/table.bin`. The fit
//! is deterministic (same input → byte-identical table). Validation:
//! `cargo test --release -p protforge-structure --test rebuild_fit -- --ignored --nocapture validate_rebuild`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use protforge_se3::geometry::{
    ANGLE_C_N_CA, ANGLE_CA_C_N, ANGLE_CA_C_O, ANGLE_N_CA_C, BOND_C_N, BOND_C_O, BOND_CA_C,
    BOND_N_CA, ideal_backbone_local, place_atom, place_oxygen,
};
use protforge_se3::{Vec3, dihedral};

use crate::backbone::{Backbone, atom};
use crate::error::StructureError;

mod table;

use table::{ATOMS_PER_RES, Tables, W3, W4};

/// Largest CA–CA distance (Å) between consecutive residues treated as bonded; longer
/// distances split the trace into separately rebuilt segments.
pub const MAX_CA_CA: f64 = 4.2;
/// CA–CA distances (Å) below this are rebuilt as cis peptides (trans ≈ 3.8 Å, cis ≈ 2.9 Å).
pub const CIS_CA_CA: f64 = 3.3;
/// Consecutive CA atoms closer than this (Å) are an error (coincident atoms).
pub const MIN_CA_CA: f64 = 1.0;

/// Virtual CA angle (radians) used to extend 1- and 2-residue traces.
const VIRTUAL_THETA_DEG: f64 = 105.0;
/// Added to each estimate's variance (Å²) before inverse-variance weighting.
const VAR_FLOOR: f64 = 0.01;
/// Spread (degrees) of the N–CA–C angle prior in the refinement.
const TAU_SIGMA_DEG: f64 = 6.0;
/// Coordinate-descent sweeps of the refinement.
const REFINE_SWEEPS: usize = 3;

const TABLE_BYTES: &[u8] = include_bytes!("rebuild/table.bin");
/// Where the embedded table lives, relative to the workspace root (for error messages).
pub const TABLE_PATH: &str = "crates/structure/src/rebuild/table.bin";

fn tables() -> Result<&'static Tables, StructureError> {
    static TABLES: OnceLock<Result<Tables, String>> = OnceLock::new();
    TABLES
        .get_or_init(|| Tables::decode(TABLE_BYTES))
        .as_ref()
        .map_err(|e| {
            StructureError::parse(
                Path::new(TABLE_PATH),
                format!("embedded rebuild table: {e}"),
            )
        })
}

/// Provenance of the embedded table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableInfo {
    /// Training chains read by the fit.
    pub chains: u32,
    /// 4-CA windows that went into the main table.
    pub windows4: u64,
    /// 3-CA windows that went into the short-segment table.
    pub windows3: u64,
}

/// Provenance counts of the embedded table.
///
/// # Errors
/// [`StructureError::Parse`] if the embedded table is corrupt (a build problem).
pub fn table_info() -> Result<TableInfo, StructureError> {
    let t = tables()?;
    Ok(TableInfo {
        chains: t.n_chains,
        windows4: t.w4.n_windows,
        windows3: t.w3.n_windows,
    })
}

/// Fit the reconstruction table on full-backbone chains (`[n_res][N, CA, C, O]`, Å, e.g. the
/// `coords` of `structures/train.jsonl`) and return its binary encoding, the content of
/// [`TABLE_PATH`]. Chains are cut at CA–CA distances outside 3.3–4.2 Å (gaps, cis peptides).
#[must_use]
pub fn fit_table(chains: &[Vec<[[f32; 3]; 4]>]) -> Vec<u8> {
    table::fit(chains).encode()
}

fn v3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

fn f3(p: Vec3) -> [f32; 3] {
    [p.x as f32, p.y as f32, p.z as f32]
}

fn bad(residue: String, detail: String) -> StructureError {
    StructureError::BadCoordinates {
        path: PathBuf::from("<CA trace>"),
        residue,
        detail,
    }
}

/// Rebuild N, CA, C, O (Å) for every residue of a single-chain CA trace (Å).
///
/// CA atoms are returned unchanged (up to f32 rounding of the f64 computation: exactly the
/// input). The trace is split at CA–CA distances above [`MAX_CA_CA`] and each segment is
/// rebuilt separately (see the [module docs](self) for the method and for 1–3-residue
/// segments). An empty trace gives an empty result. Rebuilding is equivariant: a rigidly
/// moved trace (of segments ≥ 3 residues) gives the rigidly moved backbone.
///
/// # Errors
/// [`StructureError::BadCoordinates`] (path `<CA trace>`, residue = 0-based index) for
/// non-finite coordinates or consecutive CA atoms closer than [`MIN_CA_CA`];
/// [`StructureError::Parse`] if the embedded table is corrupt.
pub fn rebuild_backbone(ca: &[[f32; 3]]) -> Result<Vec<[[f32; 3]; 4]>, StructureError> {
    let t = tables()?;
    let pts: Vec<Vec3> = ca.iter().map(|&p| v3(p)).collect();
    for (i, p) in pts.iter().enumerate() {
        if !p.iter().all(|c| c.is_finite()) {
            return Err(bad(
                i.to_string(),
                format!("non-finite CA coordinate {:?}", ca[i]),
            ));
        }
    }
    let mut out: Vec<[[f32; 3]; 4]> = Vec::with_capacity(ca.len());
    let mut start = 0;
    for i in 0..pts.len() {
        let end_here = i + 1 == pts.len() || {
            let d = (pts[i + 1] - pts[i]).norm();
            if d < MIN_CA_CA {
                return Err(bad(
                    format!("{i}-{}", i + 1),
                    format!("consecutive CA atoms {d:.3} Å apart (minimum {MIN_CA_CA} Å)"),
                ));
            }
            d > MAX_CA_CA
        };
        if end_here {
            for (r, atoms) in rebuild_segment(t, &pts[start..=i]).into_iter().enumerate() {
                let mut res = atoms.map(f3);
                res[atom::CA] = ca[start + r];
                out.push(res);
            }
            start = i + 1;
        }
    }
    Ok(out)
}

/// Fill N, C and O of a backbone from its CA atoms (Å), marking all atoms present.
///
/// Segments are rebuilt separately; a new segment starts at a chain id change, at a residue
/// number jump other than 0 (insertion codes) or +1, and at CA–CA distances above
/// [`MAX_CA_CA`]. Atoms already present (mask true) are kept; only missing N, C, O are
/// filled, so a CA-only backbone ([`Backbone::is_ca_only`]) becomes a full one and a full
/// backbone is returned unchanged.
///
/// # Errors
/// [`StructureError::BadCoordinates`] (path `<backbone>`, residue `chain:number`) for a residue
/// without CA, and the errors of [`rebuild_backbone`] (with the residue named the same way).
pub fn complete_backbone(bb: &Backbone) -> Result<Backbone, StructureError> {
    let name = |i: usize| format!("{}:{}", bb.chain_ids[i], bb.residue_ids[i]);
    let to_backbone_err = |e: StructureError, offset: usize| match e {
        StructureError::BadCoordinates {
            residue, detail, ..
        } => {
            let residue = residue
                .split('-')
                .map(|k| {
                    k.parse::<usize>()
                        .map_or_else(|_| k.to_string(), |k| name(offset + k))
                })
                .collect::<Vec<_>>()
                .join("-");
            StructureError::BadCoordinates {
                path: PathBuf::from("<backbone>"),
                residue,
                detail,
            }
        }
        other => other,
    };
    if let Some(i) = bb.atom_mask.iter().position(|m| !m[atom::CA]) {
        return Err(StructureError::BadCoordinates {
            path: PathBuf::from("<backbone>"),
            residue: name(i),
            detail: "CA atom missing; cannot rebuild the backbone".to_string(),
        });
    }
    let mut out = bb.clone();
    let mut start = 0;
    for i in 0..bb.len() {
        let last = i + 1 == bb.len() || {
            let (a, b) = (bb.residue_ids[i].number, bb.residue_ids[i + 1].number);
            bb.chain_ids[i] != bb.chain_ids[i + 1] || !(b == a || b == a + 1)
        };
        if last {
            let ca: Vec<[f32; 3]> = bb.coords[start..=i].iter().map(|r| r[atom::CA]).collect();
            let rebuilt = rebuild_backbone(&ca).map_err(|e| to_backbone_err(e, start))?;
            for (k, res) in rebuilt.into_iter().enumerate() {
                let r = start + k;
                for a in [atom::N, atom::C, atom::O] {
                    if !bb.atom_mask[r][a] {
                        out.coords[r][a] = res[a];
                        out.atom_mask[r][a] = true;
                    }
                }
            }
            start = i + 1;
        }
    }
    Ok(out)
}

/// An ideal peptide unit `[CAᵢ, Cᵢ, Oᵢ, Nᵢ₊₁, CAᵢ₊₁]` (Å) with ω = `omega` (radians).
fn ideal_peptide(omega: f64) -> [Vec3; 5] {
    let [n, ca, c] = ideal_backbone_local();
    // The unit is rigid whatever ψ is; ψ = π just fixes where it is built.
    let n1 = place_atom(n, ca, c, BOND_C_N, ANGLE_CA_C_N, std::f64::consts::PI);
    let ca1 = place_atom(ca, c, n1, BOND_N_CA, ANGLE_C_N_CA, omega);
    let o = place_oxygen(ca, c, n1);
    [ca, c, o, n1, ca1]
}

fn peptides() -> &'static [[Vec3; 5]; 2] {
    static P: OnceLock<[[Vec3; 5]; 2]> = OnceLock::new();
    P.get_or_init(|| [ideal_peptide(std::f64::consts::PI), ideal_peptide(0.0)])
}

/// An ideal peptide unit placed on the axis CAᵢ → CAᵢ₊₁, rotated by `alpha` about it.
struct PeptideUnit {
    /// CA–CA midpoint (Å).
    mid: Vec3,
    /// Unit vector CAᵢ → CAᵢ₊₁ and two perpendicular unit vectors.
    e: Vec3,
    u: Vec3,
    w: Vec3,
    /// Cᵢ, Oᵢ, Nᵢ₊₁ in the unit's own axis frame (x along the CA–CA axis, origin at the midpoint).
    local: [Vec3; 3],
    /// Fitted rotation (radians) and the strength of the fit, `E(α) = 2R(1 − cos(α − α̂))`.
    alpha_hat: f64,
    r: f64,
    /// Current rotation (radians).
    alpha: f64,
}

impl PeptideUnit {
    /// Least-squares rotation of the ideal unit (trans, or cis below [`CIS_CA_CA`]) about the
    /// CA–CA axis onto the estimated C, O, N (weights `weights`): closed form `α̂ = atan2(B, A)`.
    fn fit(ca0: Vec3, ca1: Vec3, targets: &[Vec3; 3], weights: &[f64; 3]) -> Self {
        let [trans, cis] = peptides();
        let d = (ca1 - ca0).norm();
        let unit = if d < CIS_CA_CA { cis } else { trans };
        // The template's own axis frame.
        let et = (unit[4] - unit[0]).normalize();
        let mt = 0.5 * (unit[0] + unit[4]);
        let ct = unit[1] - mt;
        let ft = (ct - et * et.dot(&ct)).normalize();
        let gt = et.cross(&ft);
        let local = [unit[1], unit[2], unit[3]].map(|p| {
            let q = p - mt;
            Vec3::new(q.dot(&et), q.dot(&ft), q.dot(&gt))
        });
        let e = (ca1 - ca0) / d;
        let u = table::perpendicular(e);
        let w = e.cross(&u);
        let mid = 0.5 * (ca0 + ca1);
        let (mut a, mut b) = (0.0, 0.0);
        for ((l, y), &wt) in local.iter().zip(targets).zip(weights) {
            let dy = y - mid;
            let (du, dw) = (dy.dot(&u), dy.dot(&w));
            a += wt * (l.y * du + l.z * dw);
            b += wt * (l.y * dw - l.z * du);
        }
        let alpha_hat = b.atan2(a);
        Self {
            mid,
            e,
            u,
            w,
            local,
            alpha_hat,
            r: a.hypot(b),
            alpha: alpha_hat,
        }
    }

    /// Cᵢ, Oᵢ, Nᵢ₊₁ (Å) at rotation `alpha`.
    fn place(&self, alpha: f64) -> [Vec3; 3] {
        let (s, c) = alpha.sin_cos();
        let ru = self.u * c + self.w * s;
        let rw = -self.u * s + self.w * c;
        self.local
            .map(|l| self.mid + self.e * l.x + ru * l.y + rw * l.z)
    }

    /// Fit energy at `alpha` (weighted squared deviation from the estimates, up to a constant).
    fn energy(&self, alpha: f64) -> f64 {
        2.0 * self.r * (1.0 - (alpha - self.alpha_hat).cos())
    }
}

/// N–CA–C angle (radians) of a residue.
fn tau_angle(n: Vec3, ca: Vec3, c: Vec3) -> f64 {
    table::angle(n, ca, c)
}

/// Coordinate descent on the peptide rotations: each αₖ minimises its fit energy plus
/// `Σ (τ − τ₀)² / σ²` over the N–CA–C angles it touches (residues k and k + 1; τ₀ =
/// [`ANGLE_N_CA_C`], σ = [`TAU_SIGMA_DEG`]), on a 1° grid within ±60° of α̂ₖ then a 0.1° grid.
fn refine_tau(ca: &[Vec3], units: &mut [PeptideUnit]) {
    let sigma = TAU_SIGMA_DEG.to_radians();
    let inv_s2 = 1.0 / (sigma * sigma);
    let m = units.len();
    for _sweep in 0..REFINE_SWEEPS {
        for k in 0..m {
            // Fixed neighbours: C_k's partner N_k (from unit k−1), N_{k+1}'s partner C_{k+1} (unit k+1).
            let n_k = (k > 0).then(|| units[k - 1].place(units[k - 1].alpha)[2]);
            let c_k1 = (k + 1 < m).then(|| units[k + 1].place(units[k + 1].alpha)[0]);
            let cost = |alpha: f64| {
                let [c, _, n1] = units[k].place(alpha);
                let mut e = units[k].energy(alpha);
                if let Some(nk) = n_k {
                    let d = tau_angle(nk, ca[k], c) - ANGLE_N_CA_C;
                    e += d * d * inv_s2;
                }
                if let Some(ck1) = c_k1 {
                    let d = tau_angle(n1, ca[k + 1], ck1) - ANGLE_N_CA_C;
                    e += d * d * inv_s2;
                }
                e
            };
            let mut best = (cost(units[k].alpha), units[k].alpha);
            for (step_deg, half) in [(1.0f64, 60i32), (0.1, 10)] {
                let centre = if step_deg > 0.5 {
                    units[k].alpha_hat
                } else {
                    best.1
                };
                for j in -half..=half {
                    let a = centre + f64::from(j) * step_deg.to_radians();
                    let c = cost(a);
                    if c < best.0 {
                        best = (c, a);
                    }
                }
            }
            units[k].alpha = best.1;
        }
    }
}

/// Rebuild one bonded segment (all CA–CA in `[MIN_CA_CA, MAX_CA_CA]`): `[n][N, CA, C, O]`.
fn rebuild_segment(t: &Tables, ca: &[Vec3]) -> Vec<[Vec3; 4]> {
    let n = ca.len();
    if n == 0 {
        return Vec::new();
    }
    if n < W3 {
        // Extend with virtual CA atoms in a fixed direction, rebuild, keep the real residues.
        let x = if n == 2 {
            (ca[1] - ca[0]).normalize()
        } else {
            Vec3::x()
        };
        let ca1 = if n == 2 {
            ca[1]
        } else {
            ca[0] + protforge_se3::geometry::CA_CA_TRANS * x
        };
        let q = table::perpendicular(x);
        let th = VIRTUAL_THETA_DEG.to_radians();
        let ca2 = ca1 + protforge_se3::geometry::CA_CA_TRANS * (-th.cos() * x + th.sin() * q);
        let mut full = rebuild_segment(t, &[ca[0], ca1, ca2]);
        full.truncate(n);
        return full;
    }
    // Inverse-variance weighted sums of the estimates of N, C, O per residue.
    let mut sum = vec![[Vec3::zeros(); ATOMS_PER_RES]; n];
    let mut wsum = vec![[0.0f64; ATOMS_PER_RES]; n];
    let mut means = [Vec3::zeros(); W4 * ATOMS_PER_RES];
    let mut rms = [0.0f64; W4 * ATOMS_PER_RES];
    let (size, grid) = if n >= W4 { (W4, &t.w4) } else { (W3, &t.w3) };
    for s in 0..=n - size {
        let p = &ca[s..s + size];
        let Some(frame) = table::window_frame(p[0], p[1], p[2]) else {
            continue;
        };
        let na = size * ATOMS_PER_RES;
        if size == W4 {
            grid.lookup(
                &table::descriptors4(&[p[0], p[1], p[2], p[3]]),
                &mut means[..na],
                &mut rms[..na],
            );
        } else {
            grid.lookup(
                &[table::angle(p[0], p[1], p[2])],
                &mut means[..na],
                &mut rms[..na],
            );
        }
        for j in 0..size {
            for a in 0..ATOMS_PER_RES {
                let k = j * ATOMS_PER_RES + a;
                let w = 1.0 / (rms[k] * rms[k] + VAR_FLOOR);
                sum[s + j][a] += w * frame.apply(means[k]);
                wsum[s + j][a] += w;
            }
        }
    }
    // est[r] = [N, C, O]
    let est: Vec<[Vec3; 3]> = (0..n)
        .map(|r| {
            std::array::from_fn(|a| {
                if wsum[r][a] > 0.0 {
                    sum[r][a] / wsum[r][a]
                } else {
                    ca[r]
                }
            })
        })
        .collect();
    let mut out: Vec<[Vec3; 4]> = (0..n)
        .map(|r| [est[r][0], ca[r], est[r][1], est[r][2]])
        .collect();
    // Ideal peptide units on the CA–CA axes, rotated to fit the estimates, then refined
    // so that N–CA–C angles stay near ideal.
    let mut units: Vec<PeptideUnit> = (0..n - 1)
        .map(|k| {
            let targets = [est[k][1], est[k][2], est[k + 1][0]];
            let weights = [wsum[k][1], wsum[k][2], wsum[k + 1][0]];
            PeptideUnit::fit(ca[k], ca[k + 1], &targets, &weights)
        })
        .collect();
    refine_tau(ca, &mut units);
    for (k, u) in units.iter().enumerate() {
        let [c, o, n1] = u.place(u.alpha);
        out[k][atom::C] = c;
        out[k][atom::O] = o;
        out[k + 1][atom::N] = n1;
    }
    // Terminal atoms: ideal bond length and angle, torsion taken from the averaged estimate.
    let l = n - 1;
    let (n1, c0) = (out[1][atom::N], out[0][atom::C]);
    let psi0 = dihedral(n1, c0, ca[0], out[0][atom::N]);
    out[0][atom::N] = place_atom(n1, c0, ca[0], BOND_N_CA, ANGLE_N_CA_C, psi0);
    let (cp, nl) = (out[l - 1][atom::C], out[l][atom::N]);
    let phi_l = dihedral(cp, nl, ca[l], out[l][atom::C]);
    out[l][atom::C] = place_atom(cp, nl, ca[l], BOND_CA_C, ANGLE_N_CA_C, phi_l);
    let cl = out[l][atom::C];
    let psi_o = dihedral(nl, ca[l], cl, out[l][atom::O]);
    out[l][atom::O] = place_atom(nl, ca[l], cl, BOND_C_O, ANGLE_CA_C_O, psi_o);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses() {
        let info = table_info().unwrap();
        assert!(info.chains > 0, "{info:?}");
    }

    #[test]
    fn ideal_peptides_have_expected_ca_ca() {
        let [trans, cis] = peptides();
        let d_trans = (trans[4] - trans[0]).norm();
        let d_cis = (cis[4] - cis[0]).norm();
        assert!((d_trans - 3.8).abs() < 0.05, "{d_trans}");
        assert!((d_cis - 2.8).abs() < 0.1, "{d_cis}");
        assert!(((trans[2] - trans[1]).norm() - BOND_C_O).abs() < 1e-9);
    }
}
