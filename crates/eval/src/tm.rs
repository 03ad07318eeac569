//! TM-score (Zhang & Skolnick 2004, Proteins 57:702) and TM-align (Zhang & Skolnick 2005,
//! Nucleic Acids Res. 33:2302), our own implementation on CA coordinates (Å).
//!
//! - [`tm_score`]: residue `i` of the model is equivalent to residue `i` of the native (as the
//!   `TMscore` program without sequence-independent mode); TM-score normalised by the native.
//! - [`tm_align`]: sequence-independent structural alignment, as the `TMalign` program
//!   (version 20190822, Debian `tm-align`), with the same initial alignments (gapless
//!   threading, CA secondary-structure DP, local fragment superposition, superposition + SS,
//!   fragment threading), iterated TM-score DP (gap opening −0.6, then 0) and the
//!   fragment-based superposition search. Validated against the binary: see
//!   `scripts/compare_tmalign.py` and `docs/BENCHMARKS.md`.
//! - [`tm_align_fast`] / [`tm_align_with`]`(…, `[`TmAlignMode::Fast`]`)`: the reduced search of
//!   `TMalign -fast` (coarser initial-alignment grids, 2 instead of 30 refinement rounds),
//!   about 3.5× faster; same TM-scores as `TMalign -fast` on 100/100 validation pairs, median
//!   0.009 from the full search (`scripts/compare_tmalign_fast.py`, `docs/BENCHMARKS.md`).
//!   [`TmAlignMode::Screen`] is our variant used to rank references for novelty.
//! - [`pairwise_tm`]: all-vs-all TM-align in parallel (rayon).
//!
//! The TM-score of a superposition of `L_ali` equivalent pairs, normalised by length `L`, is
//! `TM = (1/L) Σ 1 / (1 + (dᵢ/d0(L))²)` with `d0(L) = 1.24·(L − 15)^(1/3) − 1.8` Å, at least
//! 0.5 Å ([`d0`]), maximised over superpositions by the heuristic search of the TMscore program.
//!
//! ```
//! use protforge_eval::tm::{tm_align, tm_score};
//! use protforge_se3::Vec3;
//! // A 40-residue helix-like curve and a shifted copy.
//! let a: Vec<Vec3> = (0..40).map(|i| {
//!     let t = f64::from(i) * 1.745;
//!     Vec3::new(2.3 * t.cos(), 2.3 * t.sin(), 1.5 * f64::from(i))
//! }).collect();
//! let b: Vec<Vec3> = a.iter().map(|p| p + Vec3::new(10.0, -3.0, 2.0)).collect();
//! assert!((tm_score(&a, &b).unwrap().tm - 1.0).abs() < 1e-9);
//! let r = tm_align(&a, &b).unwrap();
//! assert!((r.tm_a - 1.0).abs() < 1e-9 && r.aligned == 40);
//! ```

mod align;
mod dp;
mod initial;
mod kernel;
mod params;

pub use params::{D0_FLOOR, GAP_OPEN, d0};

use protforge_se3::{Rigid, Vec3};
use protforge_structure::{Backbone, atom};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::EvalError;
use align::{Effort, Report};
use kernel::{ScoreSpec, SearchBufs, superposed_rmsd, tm_search};

/// The smallest chain TM-align accepts (as the `TMalign` program).
pub const MIN_RESIDUES: usize = 3;

/// Search schedule of [`tm_align_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TmAlignMode {
    /// The full search of the `TMalign` program (what [`tm_align`] does).
    #[default]
    Exact,
    /// The search of `TMalign -fast`: the same five initial alignments and final scoring, with
    /// gapless threading every 5th offset, local-superposition fragment starts 5× sparser,
    /// fragment threading of fragments of ≥ 8 residues every 3rd offset, at most 2 (instead
    /// of 30) DP ↔ superposition rounds per gap penalty, and the superposition that fixes the
    /// final alignment searched from every 40th seed. About 3× faster than [`Self::Exact`];
    /// usually within 0.01 of it, but it can miss the best alignment (scores lower by 0.05–0.15)
    /// on twilight-zone pairs (TM 0.4–0.6), mostly through the sparser local superposition.
    Fast,
    /// Our ranking schedule for [`crate::diversity::novelty`], not a `TMalign` option:
    /// [`Self::Fast`] with the full set of local-superposition seeds of [`Self::Exact`], of
    /// which only the 4 with the highest neighbour-grid score (`Σᵢ maxⱼ 1/(1 + d²/d01²)` under
    /// the seed superposition, order-free, `O(L)` per seed) get the `O(L²)` DP. About 2.5×
    /// faster than [`Self::Exact`]; its scores are about as close to exact as [`Self::Fast`]'s,
    /// but it ranks a query's best references far better (the sparse local-superposition grid
    /// of `-fast` misses many twilight-zone hits).
    Screen,
}

impl TmAlignMode {
    fn effort(self) -> &'static Effort {
        match self {
            Self::Exact => &Effort::EXACT,
            Self::Fast => &Effort::FAST,
            Self::Screen => &Effort::SCREEN,
        }
    }
}

/// Result of [`tm_score`].
#[derive(Debug, Clone, Serialize)]
pub struct TmScoreResult {
    /// TM-score normalised by the native length, in [0, 1].
    pub tm: f64,
    /// RMSD (Å) over all residue pairs after their optimal (least-squares) superposition.
    pub rmsd: f64,
    /// d0 (Å) used, from the native length.
    pub d0: f64,
    /// Number of residue pairs.
    pub n: usize,
    /// The rigid motion of the model onto the native that maximises the TM-score.
    #[serde(serialize_with = "serialize_rigid")]
    pub superposition: Rigid,
}

/// Result of [`tm_align`], with the fields of the `TMalign` program's report.
#[derive(Debug, Clone, Serialize)]
pub struct TmAlignResult {
    /// TM-score normalised by the length of `a` (TMalign "normalized by length of Chain_1").
    pub tm_a: f64,
    /// TM-score normalised by the length of `b` (TMalign "normalized by length of Chain_2").
    pub tm_b: f64,
    /// RMSD (Å) of the `aligned` pairs after their optimal superposition.
    pub rmsd: f64,
    /// TMalign's "Aligned length": aligned pairs closer than `1.5·min(La, Lb)^0.3 + 3.5` Å after
    /// the final superposition (pairs farther apart are dropped from the alignment).
    pub aligned: usize,
    /// Fraction of identical residue types among the `aligned` pairs, when sequences are known
    /// ([`tm_align_backbones`]); `None` for bare coordinates.
    pub seq_identity: Option<f64>,
    /// Number of residues of `a` (with CA).
    pub len_a: usize,
    /// Number of residues of `b` (with CA).
    pub len_b: usize,
    /// d0 (Å) of `tm_a`.
    pub d0_a: f64,
    /// d0 (Å) of `tm_b`.
    pub d0_b: f64,
    /// Aligned pairs `(index in a, index in b)`, increasing in both; length `aligned`. For
    /// [`tm_align_backbones`] indices are residue indices of the input backbones.
    pub alignment: Vec<(usize, usize)>,
    /// Rigid motion of `a` onto `b` (the one maximising `tm_b`, as TMalign's `-m` matrix):
    /// `superposition.apply(a[i]) ≈ b[j]` for aligned pairs.
    #[serde(serialize_with = "serialize_rigid")]
    pub superposition: Rigid,
}

/// Serialise a [`Rigid`] as `{"rotation": [[…]; 3] (row-major), "translation": [x, y, z] (Å)}`.
fn serialize_rigid<S: serde::Serializer>(rigid: &Rigid, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Repr {
        rotation: [[f64; 3]; 3],
        translation: [f64; 3],
    }
    let m = rigid.rot.matrix();
    let rotation = [[m[(0, 0)], m[(0, 1)], m[(0, 2)]], [m[(1, 0)], m[(1, 1)], m[(1, 2)]], [
        m[(2, 0)],
        m[(2, 1)],
        m[(2, 2)],
    ]];
    Repr { rotation, translation: [rigid.trans.x, rigid.trans.y, rigid.trans.z] }.serialize(s)
}

fn check_coords(context: &'static str, which: &str, xs: &[Vec3], min: usize) -> Result<(), EvalError> {
    if xs.len() < min {
        return Err(EvalError::TooShort { context, which: which.to_string(), len: xs.len(), min });
    }
    if let Some(index) = xs.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
        return Err(EvalError::NonFinite { context, which: which.to_string(), index });
    }
    Ok(())
}

/// TM-score of `model` against `native`, residue `i` equivalent to residue `i` (Å), as the
/// `TMscore` program: normalised by the native length with `d0 = d0(L_native)`, maximised by
/// the fragment superposition search (seed fragments of L, L/2, … 4 residues at every start,
/// iterative extension with cutoffs `d0_search ∓ 1`, `d0_search = clamp(d0, 4.5, 8)` Å).
///
/// # Errors
/// [`EvalError::LengthMismatch`] if the lengths differ, [`EvalError::TooShort`] for empty
/// input, [`EvalError::NonFinite`] for NaN/infinite coordinates.
pub fn tm_score(model: &[Vec3], native: &[Vec3]) -> Result<TmScoreResult, EvalError> {
    const CTX: &str = "tm_score";
    if model.len() != native.len() {
        return Err(EvalError::LengthMismatch {
            context: CTX,
            left_name: "model",
            left: model.len(),
            right_name: "native",
            right: native.len(),
        });
    }
    check_coords(CTX, "model", model, 1)?;
    check_coords(CTX, "native", native, 1)?;
    let n = native.len();
    let d0 = params::d0(n);
    let spec = ScoreSpec { d0, cutoff: None, lnorm: n as f64 };
    let (tm, xf) = tm_search(model, native, 1, params::d0_search_of(d0), &spec, &mut SearchBufs::default());
    let rmsd = superposed_rmsd(model, native);
    Ok(TmScoreResult { tm: tm.max(0.0), rmsd, d0, n, superposition: xf.to_rigid() })
}

/// TM-align `a` (moved) onto `b` (fixed), CA coordinates in Å, as `TMalign a.pdb b.pdb`.
///
/// `tm_a` is normalised by `len(a)`, `tm_b` by `len(b)`; the alignment does not depend on the
/// normalisation. Two 300-residue chains take about 0.1 s in a release build (single
/// thread; about 1.4× faster than the `TMalign` binary on the same machine).
///
/// # Errors
/// [`EvalError::TooShort`] if either chain has fewer than [`MIN_RESIDUES`] points,
/// [`EvalError::NonFinite`] for NaN/infinite coordinates.
pub fn tm_align(a: &[Vec3], b: &[Vec3]) -> Result<TmAlignResult, EvalError> {
    tm_align_with(a, b, TmAlignMode::Exact)
}

/// [`tm_align`] with the reduced search of `TMalign -fast` ([`TmAlignMode::Fast`]): about 3.5×
/// faster. On 100 validation pairs its TM-scores equal those of `TMalign -fast` (to the 4–5
/// printed digits) and differ from the exact search by a median of 0.009 (p95 0.057, max 0.14:
/// the same spread as `TMalign -fast` against `TMalign`); `scripts/compare_tmalign_fast.py`.
///
/// # Errors
/// As [`tm_align`].
pub fn tm_align_fast(a: &[Vec3], b: &[Vec3]) -> Result<TmAlignResult, EvalError> {
    tm_align_with(a, b, TmAlignMode::Fast)
}

/// TM-align `a` (moved) onto `b` (fixed), CA coordinates in Å, with the search schedule
/// `mode` ([`TmAlignMode::Exact`] is [`tm_align`], [`TmAlignMode::Fast`] is
/// [`tm_align_fast`]).
///
/// # Errors
/// As [`tm_align`].
pub fn tm_align_with(a: &[Vec3], b: &[Vec3], mode: TmAlignMode) -> Result<TmAlignResult, EvalError> {
    const CTX: &str = "tm_align";
    check_coords(CTX, "structure a", a, MIN_RESIDUES)?;
    check_coords(CTX, "structure b", b, MIN_RESIDUES)?;
    let raw = align::run(a, b, mode.effort(), Report::Both);
    Ok(TmAlignResult {
        tm_a: raw.tm_x,
        tm_b: raw.tm_y,
        rmsd: raw.rmsd,
        aligned: raw.pairs.len(),
        seq_identity: None,
        len_a: a.len(),
        len_b: b.len(),
        d0_a: raw.d0_x,
        d0_b: raw.d0_y,
        alignment: raw.pairs,
        superposition: raw.xform.to_rigid(),
    })
}

/// `tm_a` of [`tm_align_with`]`(a, b, mode)` (TM-score normalised by `len(a)`), skipping the
/// final score normalised by `b`. Inputs must already be checked ([`check_coords`] with
/// [`MIN_RESIDUES`]).
pub(crate) fn tm_align_score_a(a: &[Vec3], b: &[Vec3], mode: TmAlignMode) -> f64 {
    align::run(a, b, mode.effort(), Report::XOnly).tm_x
}

/// Check a chain for TM-align ([`MIN_RESIDUES`], finite coordinates).
pub(crate) fn check_chain(context: &'static str, which: &str, xs: &[Vec3]) -> Result<(), EvalError> {
    check_coords(context, which, xs, MIN_RESIDUES)
}

/// CA positions (Å, f64) of the residues of `bb` that have a CA, with their residue indices.
#[must_use]
pub fn ca_trace_indexed(bb: &Backbone) -> (Vec<Vec3>, Vec<usize>) {
    bb.coords
        .iter()
        .zip(&bb.atom_mask)
        .enumerate()
        .filter(|(_, (_, m))| m[atom::CA])
        .map(|(i, (c, _))| {
            let p = c[atom::CA];
            (Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2])), i)
        })
        .unzip()
}

/// CA positions (Å, f64) of the residues of `bb` that have a CA (others are skipped).
#[must_use]
pub fn ca_trace(bb: &Backbone) -> Vec<Vec3> {
    ca_trace_indexed(bb).0
}

/// [`tm_align`] on the CA atoms of two backbones (residues without CA are excluded), with
/// sequence identity over the aligned pairs (identical `aatype`, as TMalign's `Seq_ID`).
/// Alignment indices are residue indices of `a` and `b`.
///
/// # Errors
/// As [`tm_align`].
pub fn tm_align_backbones(a: &Backbone, b: &Backbone) -> Result<TmAlignResult, EvalError> {
    let (ca_a, idx_a) = ca_trace_indexed(a);
    let (ca_b, idx_b) = ca_trace_indexed(b);
    let mut r = tm_align(&ca_a, &ca_b)?;
    for pair in &mut r.alignment {
        *pair = (idx_a[pair.0], idx_b[pair.1]);
    }
    if !r.alignment.is_empty() {
        let same = r.alignment.iter().filter(|&&(i, j)| a.aatype.get(i) == b.aatype.get(j)).count();
        r.seq_identity = Some(same as f64 / r.alignment.len() as f64);
    }
    Ok(r)
}

/// The symmetric similarity used by [`pairwise_tm`]: the TM-score normalised by the
/// **shorter** chain (by `a` on equal lengths, where `tm_a == tm_b` up to the search).
#[must_use]
pub fn tm_by_shorter(r: &TmAlignResult) -> f64 {
    if r.len_a <= r.len_b { r.tm_a } else { r.tm_b }
}

/// All-vs-all TM-align of CA traces (Å), in parallel (rayon, one task per pair).
///
/// Returns the symmetric `n × n` matrix `M` with `M[i][i] = 1` and, for `i < j`,
/// `M[i][j] = M[j][i] =` [`tm_by_shorter`]`(tm_align(structs[i], structs[j]))`: each pair is
/// aligned once, `i` as Chain_1.
///
/// # Errors
/// The first [`tm_align`] error (a chain shorter than [`MIN_RESIDUES`] or non-finite).
pub fn pairwise_tm(structs: &[Vec<Vec3>]) -> Result<Vec<Vec<f64>>, EvalError> {
    for (k, s) in structs.iter().enumerate() {
        check_coords("pairwise_tm", &format!("structure {k}"), s, MIN_RESIDUES)?;
    }
    let n = structs.len();
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect();
    let scores = pairs
        .par_iter()
        .map(|&(i, j)| tm_align(&structs[i], &structs[j]).map(|r| tm_by_shorter(&r)))
        .collect::<Result<Vec<f64>, EvalError>>()?;
    let mut m = vec![vec![0.0; n]; n];
    for (k, row) in m.iter_mut().enumerate() {
        row[k] = 1.0;
    }
    for (&(i, j), &s) in pairs.iter().zip(&scores) {
        m[i][j] = s;
        m[j][i] = s;
    }
    Ok(m)
}

#[cfg(test)]
mod tests;
