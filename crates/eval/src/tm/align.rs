//! The TM-align driver (Zhang & Skolnick 2005, NAR 33:2302): five initial alignments, each
//! refined by iterated TM-score DP, then the final superposition search and scoring.
//!
//! Follows the control flow of the `TMalign` program (version 20190822) without its options:
//! `x` is Chain_1 (moved), `y` is Chain_2 (fixed). [`Effort`] selects the full schedule or the
//! reduced one of `TMalign -fast` (same stages, coarser strides and fewer refinement rounds).

use protforge_se3::Vec3;

use super::dp::Dp;
use super::initial;
use super::kernel::{FastBufs, ScoreSpec, SearchBufs, Xform, superposed_rmsd, tm_search};
use super::params::{GAP_OPEN, SearchParams, d0_of, d0_search_of};

/// How thoroughly [`run`] searches. [`Effort::EXACT`] is the schedule of the `TMalign`
/// program; [`Effort::FAST`] that of its `-fast` option (the TMalign/US-align source,
/// `fast_opt`): every stage still runs, on a coarser grid and with fewer refinement rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Effort {
    /// Offset stride of gapless threading (initial alignment 1): 1, fast 5.
    pub(crate) gapless_stride: usize,
    /// Rounds (per gap penalty) of the DP ↔ superposition iteration after initial alignments
    /// 1, 2 and 4: 30, fast 2 (alignments 3 and 5 always use 2).
    pub(crate) dp_rounds: usize,
    /// Factor on the fragment-start jumps of local superposition (initial alignment 3): 1,
    /// fast 5.
    pub(crate) local_jump_factor: usize,
    /// Local superposition: run the DP only for this many seeds, those with the highest
    /// neighbour-grid proxy score (`None`: every seed, as TMalign).
    pub(crate) local_keep: Option<usize>,
    /// Shortest continuous fragment sought by fragment threading (initial alignment 5): 4,
    /// fast 8; threading offsets need an overlap of at least one residue less.
    pub(crate) min_fragment: usize,
    /// Offset stride of fragment threading when the threaded fragment is cut from `x`: 1,
    /// fast 3 (TMalign keeps stride 1 for a fragment of `y`; so do we).
    pub(crate) fragment_stride: usize,
    /// Seed stride of the superposition search that fixes the final alignment's superposition
    /// (the pairs within `score_d8` are chosen under it): 1, fast 40. The final TM-scores are
    /// always searched with stride 1.
    pub(crate) final_seed_stride: usize,
}

impl Effort {
    /// The schedule of the `TMalign` program.
    pub(crate) const EXACT: Self = Self {
        gapless_stride: 1,
        dp_rounds: 30,
        local_jump_factor: 1,
        local_keep: None,
        min_fragment: 4,
        fragment_stride: 1,
        final_seed_stride: 1,
    };
    /// The schedule of `TMalign -fast`.
    pub(crate) const FAST: Self = Self {
        gapless_stride: 5,
        dp_rounds: 2,
        local_jump_factor: 5,
        local_keep: None,
        min_fragment: 8,
        fragment_stride: 3,
        final_seed_stride: 40,
    };
    /// [`Self::FAST`] with the local-superposition seeds of [`Self::EXACT`] (its sparse grid
    /// misses the seeds of many twilight-zone hits), of which only the 4 best by the
    /// neighbour proxy get the DP.
    pub(crate) const SCREEN: Self = Self { local_jump_factor: 1, local_keep: Some(4), ..Self::FAST };
}

/// Which final TM-scores [`run`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// Both normalisations (`tm_x` and `tm_y`), as TMalign prints them.
    Both,
    /// Only `tm_x`; `tm_y` and `d0_y` are NaN and `xform` maximises `tm_x` (one fewer
    /// exhaustive superposition search).
    XOnly,
}

/// Raw output of [`run`].
#[derive(Debug)]
pub(crate) struct RawAlign {
    /// TM-score normalised by `len(x)`.
    pub(crate) tm_x: f64,
    /// TM-score normalised by `len(y)`.
    pub(crate) tm_y: f64,
    pub(crate) d0_x: f64,
    pub(crate) d0_y: f64,
    pub(crate) rmsd: f64,
    /// Final aligned pairs `(i in x, j in y)`, those within `score_d8` (TMalign "Aligned length").
    pub(crate) pairs: Vec<(usize, usize)>,
    /// Superposition of x onto y that maximises `tm_y`.
    pub(crate) xform: Xform,
}

/// Working state of one alignment.
struct Aligner<'a> {
    x: &'a [Vec3],
    y: &'a [Vec3],
    p: SearchParams,
    dp: Dp,
    search: SearchBufs,
    fast: FastBufs,
    xtm: Vec<Vec3>,
    ytm: Vec<Vec3>,
    xt: Vec<Vec3>,
}

impl Aligner<'_> {
    fn gather(&mut self, y2x: &[Option<usize>]) {
        self.xtm.clear();
        self.ytm.clear();
        for (j, i) in y2x.iter().enumerate() {
            if let Some(i) = *i {
                self.xtm.push(self.x[i]);
                self.ytm.push(self.y[j]);
            }
        }
    }

    /// Search-stage TM-score spec: d0 of the search, pairs beyond `score_d8` ignored,
    /// normalised by the shorter length.
    fn search_spec(&self) -> ScoreSpec {
        ScoreSpec { d0: self.p.d0, cutoff: Some(self.p.score_d8), lnorm: self.p.lnorm }
    }

    /// TMalign's `detailed_search`: best superposition of an alignment, seeds every `step`.
    fn detailed_search(&mut self, y2x: &[Option<usize>], step: usize) -> (f64, Xform) {
        self.gather(y2x);
        let spec = self.search_spec();
        tm_search(&self.xtm, &self.ytm, step, self.p.d0_search, &spec, &mut self.search)
    }

    /// TMalign's `DP_iter`: alternate DP on `1/(1 + d²/d0²)` under the current superposition
    /// and superposition search on the resulting alignment, for each gap penalty in `gaps`.
    /// Returns the best score with its alignment, and the last superposition.
    fn dp_iter(&mut self, mut xf: Xform, gaps: &[f64], max_iter: usize) -> (f64, Vec<Option<usize>>) {
        let d02 = self.p.d0 * self.p.d0;
        let mut best = -1.0;
        let mut best_map = Vec::new();
        let mut y2x = Vec::new();
        let mut old = 0.0;
        for &gap in gaps {
            for iter in 0..max_iter {
                xf.apply_all(self.x, &mut self.xt);
                let (xt, y) = (&self.xt, self.y);
                self.dp.align(self.x.len(), y.len(), gap, |i, row| initial::distance_row(&xt[i], y, d02, row), &mut y2x);
                let (tm, new_xf) = self.detailed_search(&y2x, 40);
                xf = new_xf;
                if tm > best {
                    best = tm;
                    best_map.clone_from(&y2x);
                }
                if iter > 0 && (old - tm).abs() < 1e-6 {
                    break;
                }
                old = tm;
            }
        }
        (best, best_map)
    }
}

/// Align `x` onto `y` with the search schedule `effort`. Both must have at least 3 points
/// (checked by the caller).
pub(crate) fn run(x: &[Vec3], y: &[Vec3], effort: &Effort, report: Report) -> RawAlign {
    let p = SearchParams::new(x.len(), y.len());
    let mut a = Aligner {
        x,
        y,
        p,
        dp: Dp::default(),
        search: SearchBufs::default(),
        fast: FastBufs::default(),
        xtm: Vec::new(),
        ytm: Vec::new(),
        xt: Vec::new(),
    };
    let ddcc = if p.lnorm <= 40.0 { 0.1 } else { 0.4 };
    let both_gaps = [GAP_OPEN, 0.0];

    // 1. Gapless threading.
    let rounds = effort.dp_rounds;
    let mut best_map = initial::gapless(x, y, &p, effort.gapless_stride, &mut a.fast);
    let (mut tm_max, xf) = a.detailed_search(&best_map, 40);
    let (tm, map) = a.dp_iter(xf, &both_gaps, rounds);
    consider(tm, map, &mut tm_max, &mut best_map);

    // 2. Secondary structure.
    let sx = initial::ca_secondary_structure(x);
    let sy = initial::ca_secondary_structure(y);
    let map = initial::by_secondary_structure(&sx, &sy, &mut a.dp);
    let (tm, xf) = a.detailed_search(&map, 40);
    consider(tm, map, &mut tm_max, &mut best_map);
    if tm > tm_max * 0.2 {
        let (tm, map) = a.dp_iter(xf, &both_gaps, rounds);
        consider(tm, map, &mut tm_max, &mut best_map);
    }

    // 3. Local superposition.
    if let Some(map) = initial::local_superposition(x, y, &p, effort.local_jump_factor, effort.local_keep, &mut a.dp, &mut a.fast) {
        let (tm, xf) = a.detailed_search(&map, 40);
        consider(tm, map, &mut tm_max, &mut best_map);
        if tm > tm_max * ddcc {
            let (tm, map) = a.dp_iter(xf, &both_gaps, 2);
            consider(tm, map, &mut tm_max, &mut best_map);
        }
    }

    // 4. Superposition on the best alignment so far + secondary structure.
    let map = initial::by_superposition_and_ss(x, y, &sx, &sy, &best_map, &p, &mut a.dp);
    let (tm, xf) = a.detailed_search(&map, 40);
    consider(tm, map, &mut tm_max, &mut best_map);
    if tm > tm_max * ddcc {
        let (tm, map) = a.dp_iter(xf, &both_gaps, rounds);
        consider(tm, map, &mut tm_max, &mut best_map);
    }

    // 5. Fragment gapless threading.
    let map = initial::fragment_threading(x, y, &p, effort.min_fragment, effort.fragment_stride, &mut a.fast);
    let (tm, xf) = a.detailed_search(&map, 40);
    consider(tm, map, &mut tm_max, &mut best_map);
    if tm > tm_max * ddcc {
        let (tm, map) = a.dp_iter(xf, &[0.0], 2);
        consider(tm, map, &mut tm_max, &mut best_map);
    }

    finish(&mut a, &best_map, effort.final_seed_stride, report)
}

/// Keep `map` as the best alignment if `tm` beats `tm_max`.
fn consider(tm: f64, map: Vec<Option<usize>>, tm_max: &mut f64, best_map: &mut Vec<Option<usize>>) {
    if tm > *tm_max {
        *tm_max = tm;
        *best_map = map;
    }
}

/// Final stage: superposition search on the chosen alignment (seeds every `seed_stride`),
/// drop pairs beyond `score_d8`, then the TM-score normalised by each chain (or by `x` only)
/// with its own d0 (exhaustive search, stride 1).
fn finish(a: &mut Aligner<'_>, best_map: &[Option<usize>], seed_stride: usize, report: Report) -> RawAlign {
    let (x, y) = (a.x, a.y);
    let (_, xf) = a.detailed_search(best_map, seed_stride);
    let d8sq = a.p.score_d8 * a.p.score_d8;
    let pairs: Vec<(usize, usize)> = best_map
        .iter()
        .enumerate()
        .filter_map(|(j, i)| i.map(|i| (i, j)))
        .filter(|&(i, j)| (xf.apply(&x[i]) - y[j]).norm_squared() <= d8sq)
        .collect();
    let xtm: Vec<Vec3> = pairs.iter().map(|&(i, _)| x[i]).collect();
    let ytm: Vec<Vec3> = pairs.iter().map(|&(_, j)| y[j]).collect();
    let rmsd = superposed_rmsd(&xtm, &ytm);

    let mut final_score = |len: usize| -> (f64, f64, Xform) {
        let d0 = d0_of(len as f64);
        let spec = ScoreSpec { d0, cutoff: None, lnorm: len as f64 };
        let (tm, xf) = tm_search(&xtm, &ytm, 1, d0_search_of(d0), &spec, &mut a.search);
        (tm.max(0.0), d0, xf)
    };
    let (tm_x, d0_x, xform_x) = final_score(x.len());
    let (tm_y, d0_y, xform) = match report {
        Report::Both => final_score(y.len()),
        Report::XOnly => (f64::NAN, f64::NAN, xform_x),
    };
    RawAlign { tm_x, tm_y, d0_x, d0_y, rmsd, pairs, xform }
}
