//! The five initial alignments of TM-align (Zhang & Skolnick 2005, NAR 33:2302, "Initial
//! alignments"), plus the CA-only secondary structure they use.
//!
//! Every function returns `y2x`: `y2x[j] = Some(i)` aligns `y[j]` with `x[i]`.

use protforge_se3::Vec3;

use super::dp::Dp;
use super::kernel::{FastBufs, score_fast, superpose};
use super::params::SearchParams;

/// Three-state-plus-turn secondary structure from CA geometry alone, as TM-align assigns it:
/// for residue `i` with neighbours `i−2 … i+2`, the six CA–CA distances are compared with
/// ideal helix (5.45, 5.18, 6.37 Å; tolerance 2.1 Å) and strand (6.1, 10.4, 13 Å; tolerance
/// 1.42 Å) values. Returns `b'H'`, `b'E'`, `b'T'` (turn: `d(i−2, i+2) < 8 Å`) or `b'C'`; the two
/// residues at each end are `b'C'`.
pub(crate) fn ca_secondary_structure(x: &[Vec3]) -> Vec<u8> {
    let n = x.len();
    let dist = |a: usize, b: usize| (x[a] - x[b]).norm();
    (0..n)
        .map(|i| {
            if i < 2 || i + 2 >= n {
                return b'C';
            }
            let (d13, d14, d15) = (dist(i - 2, i), dist(i - 2, i + 1), dist(i - 2, i + 2));
            let (d24, d25, d35) = (dist(i - 1, i + 1), dist(i - 1, i + 2), dist(i, i + 2));
            // All six distances within `tol` of the ideal (i→i+2, i→i+3, i→i+4) values.
            let fits = |[i2, i3, i4]: [f64; 3], tol: f64| {
                let near = |v: f64, ideal: f64| (v - ideal).abs() < tol;
                near(d15, i4)
                    && near(d14, i3)
                    && near(d25, i3)
                    && near(d13, i2)
                    && near(d24, i2)
                    && near(d35, i2)
            };
            if fits([5.45, 5.18, 6.37], 2.1) {
                return b'H';
            }
            if fits([6.1, 10.4, 13.0], 1.42) {
                b'E'
            } else if d15 < 8.0 {
                b'T'
            } else {
                b'C'
            }
        })
        .collect()
}

/// Initial alignment 1: gapless threading. Every `stride`-th diagonal offset (from the first)
/// with an overlap of at least `max(min(Lx, Ly)/2, 5)` residues is scored with
/// [`score_fast`]; the best (last on ties) wins.
pub(crate) fn gapless(x: &[Vec3], y: &[Vec3], p: &SearchParams, stride: usize, fast: &mut FastBufs) -> Vec<Option<usize>> {
    let (lx, ly) = (x.len() as i64, y.len() as i64);
    let min_ali = (lx.min(ly) / 2).max(5);
    let (k_lo, k_hi) = (min_ali - ly, lx - min_ali);
    let map = |k: i64| -> Vec<Option<usize>> {
        (0..ly).map(|j| usize::try_from(j + k).ok().filter(|&i| (i as i64) < lx)).collect()
    };
    let mut best = -1.0;
    let mut best_k = k_lo;
    for k in (k_lo..=k_hi).step_by(stride.max(1)) {
        let y2x = map(k);
        let s = score_fast(x, y, &y2x, p.d0, p.d0_search, fast);
        if s >= best {
            best = s;
            best_k = k;
        }
    }
    map(best_k)
}

/// Initial alignment 2: DP on secondary structure identity (score 1 for equal letters of
/// [`ca_secondary_structure`], gap opening −1).
pub(crate) fn by_secondary_structure(sx: &[u8], sy: &[u8], dp: &mut Dp) -> Vec<Option<usize>> {
    let mut y2x = Vec::new();
    dp.align(
        sx.len(),
        sy.len(),
        -1.0,
        |i, row| {
            for (r, &b) in row.iter_mut().zip(sy) {
                *r = f64::from(u8::from(sx[i] == b));
            }
        },
        &mut y2x,
    );
    y2x
}

/// Fill `row` with `1 / (1 + |xt_i − y_j|² / d02)` for all `j`.
#[inline]
pub(crate) fn distance_row(xt_i: &Vec3, y: &[Vec3], d02: f64, row: &mut [f64]) {
    for (r, yj) in row.iter_mut().zip(y) {
        let dij = (xt_i - yj).norm_squared();
        *r = d02 / (d02 + dij);
    }
}

/// Initial alignment 3 (TMalign's `get_initial5`): local superposition. Fragments of 20 and
/// of 100 residues (capped at a third and a half of the shorter chain) taken every
/// 15–45 residues (by chain length, at most a third of it; times `jump_factor`) of each chain
/// are superposed pairwise; each superposition seeds a gap-free-penalty DP on
/// `1/(1 + d²/d01²)` with `d01 = d0 + 1.5`, and the alignment with the best [`score_fast`] is
/// kept. `None` if no alignment scored above 0.
///
/// With `keep = Some(m)`, only the `m` seeds with the highest [`NeighbourGrid::proxy`] (an
/// order-free upper estimate of the DP score, `O(Lx)` per seed instead of `O(Lx·Ly)`) get the
/// DP, in their original order; `None` runs the DP for every seed (TMalign).
pub(crate) fn local_superposition(
    x: &[Vec3],
    y: &[Vec3],
    p: &SearchParams,
    jump_factor: usize,
    keep: Option<usize>,
    dp: &mut Dp,
    fast: &mut FastBufs,
) -> Option<Vec<Option<usize>>> {
    let (lx, ly) = (x.len(), y.len());
    let d01 = (p.d0 + 1.5).max(p.d0_min);
    let d02 = d01 * d01;
    let jump = |len: usize| -> usize {
        let j = if len > 250 {
            45
        } else if len > 200 {
            35
        } else if len > 150 {
            25
        } else {
            15
        };
        j.min(len / 3).max(1) * jump_factor.max(1)
    };
    let (jx, jy) = (jump(lx), jump(ly));
    let short = lx.min(ly);
    let frags = [20.min(short / 3), 100.min(short / 2)];
    let mut seeds: Vec<(usize, usize, usize)> = Vec::new();
    for frag in frags {
        if frag == 0 {
            continue;
        }
        for i in (0..=lx - frag).step_by(jx) {
            for j in (0..=ly - frag).step_by(jy) {
                seeds.push((frag, i, j));
            }
        }
    }
    let seed_xf = |&(frag, i, j): &(usize, usize, usize)| superpose((0..frag).map(|k| (x[i + k], y[j + k])));
    let mut xfs: Vec<_> = seeds.iter().map(seed_xf).collect();
    if let Some(m) = keep.filter(|&m| m < seeds.len()) {
        let grid = NeighbourGrid::new(y, 2.0 * d01);
        let proxies: Vec<f64> = xfs.iter().map(|xf| grid.proxy(x, xf, d02)).collect();
        let mut rank: Vec<usize> = (0..seeds.len()).collect();
        rank.sort_by(|&a, &b| proxies[b].total_cmp(&proxies[a]).then(a.cmp(&b)));
        rank.truncate(m);
        rank.sort_unstable();
        xfs = rank.iter().map(|&k| xfs[k]).collect();
    }
    let mut best_score = 0.0;
    let mut best = None;
    let mut y2x = Vec::new();
    let mut xt = Vec::new();
    for xf in &xfs {
        xf.apply_all(x, &mut xt);
        dp.align(lx, ly, 0.0, |a, row| distance_row(&xt[a], y, d02, row), &mut y2x);
        let s = score_fast(x, y, &y2x, p.d0, p.d0_search, fast);
        if s > best_score {
            best_score = s;
            best = Some(y2x.clone());
        }
    }
    best
}

/// Uniform grid over the points of a chain for neighbour look-ups within `cell` Å.
pub(crate) struct NeighbourGrid<'a> {
    points: &'a [Vec3],
    origin: Vec3,
    cell: f64,
    dims: [usize; 3],
    /// `start[c]..start[c + 1]` indexes `items` for cell `c`.
    start: Vec<usize>,
    items: Vec<usize>,
}

impl<'a> NeighbourGrid<'a> {
    pub(crate) fn new(points: &'a [Vec3], cell: f64) -> Self {
        let cell = cell.max(1.0);
        let mut lo = Vec3::repeat(f64::INFINITY);
        let mut hi = Vec3::repeat(f64::NEG_INFINITY);
        for p in points {
            lo = lo.inf(p);
            hi = hi.sup(p);
        }
        let dim = |k: usize| (((hi[k] - lo[k]) / cell).floor() as usize + 1).min(1 << 10);
        let dims = [dim(0), dim(1), dim(2)];
        let index = |p: &Vec3| -> usize {
            let c = |k: usize| (((p[k] - lo[k]) / cell) as usize).min(dims[k] - 1);
            (c(2) * dims[1] + c(1)) * dims[0] + c(0)
        };
        let n_cells = dims[0] * dims[1] * dims[2];
        let mut start = vec![0usize; n_cells + 1];
        for p in points {
            start[index(p) + 1] += 1;
        }
        for c in 0..n_cells {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut items = vec![0usize; points.len()];
        for (k, p) in points.iter().enumerate() {
            let c = index(p);
            items[fill[c]] = k;
            fill[c] += 1;
        }
        Self { points, origin: lo, cell, dims, start, items }
    }

    /// Smallest squared distance (Å²) from `q` to a point within one cell's reach (the 27
    /// cells around `q`), if any.
    fn nearest_d2(&self, q: &Vec3) -> Option<f64> {
        let mut best: Option<f64> = None;
        let mut c = [0i64; 3];
        for (k, ck) in c.iter_mut().enumerate() {
            *ck = ((q[k] - self.origin[k]) / self.cell).floor() as i64;
            if *ck < -1 || *ck > self.dims[k] as i64 {
                return None;
            }
        }
        let range = |k: usize| (c[k] - 1).max(0)..=(c[k] + 1).min(self.dims[k] as i64 - 1);
        for cz in range(2) {
            for cy in range(1) {
                for cx in range(0) {
                    let cell = ((cz as usize) * self.dims[1] + cy as usize) * self.dims[0] + cx as usize;
                    for &k in &self.items[self.start[cell]..self.start[cell + 1]] {
                        let d2 = (self.points[k] - q).norm_squared();
                        if best.is_none_or(|b| d2 < b) {
                            best = Some(d2);
                        }
                    }
                }
            }
        }
        best
    }

    #[cfg(test)]
    pub(crate) fn nearest_d2_for_tests(&self, q: &Vec3) -> Option<f64> {
        self.nearest_d2(q)
    }

    /// `Σᵢ maxⱼ 1/(1 + |xf(xᵢ) − yⱼ|²/d02)` over neighbours within reach: an estimate (from
    /// above, up to the far pairs it ignores) of the gap-free DP score under `xf`, without the
    /// order constraint.
    pub(crate) fn proxy(&self, x: &[Vec3], xf: &super::kernel::Xform, d02: f64) -> f64 {
        x.iter().filter_map(|p| self.nearest_d2(&xf.apply(p))).map(|d2| d02 / (d02 + d2)).sum()
    }
}

/// Initial alignment 4 (TMalign's `get_initial_ssplus`): superpose on the best alignment so
/// far, then DP on `1/(1 + d²/d01²)` plus 0.5 for equal secondary structure (gap opening −1).
pub(crate) fn by_superposition_and_ss(
    x: &[Vec3],
    y: &[Vec3],
    sx: &[u8],
    sy: &[u8],
    best_y2x: &[Option<usize>],
    p: &SearchParams,
    dp: &mut Dp,
) -> Vec<Option<usize>> {
    let d01 = (p.d0 + 1.5).max(p.d0_min);
    let d02 = d01 * d01;
    let xf = superpose(best_y2x.iter().enumerate().filter_map(|(j, i)| i.map(|i| (x[i], y[j]))));
    let mut xt = Vec::new();
    xf.apply_all(x, &mut xt);
    let mut y2x = Vec::new();
    dp.align(
        x.len(),
        y.len(),
        -1.0,
        |a, row| {
            distance_row(&xt[a], y, d02, row);
            for (r, &b) in row.iter_mut().zip(sy) {
                if sx[a] == b {
                    *r += 0.5;
                }
            }
        },
        &mut y2x,
    );
    y2x
}

/// The longest run of consecutive residues whose CA–CA distance is below `dcu` (TMalign's
/// `find_max_frag`); `dcu` grows by 10 % until the run has at least `min(L/3, min_fragment)`
/// residues. Returns `(start, end)` inclusive.
fn longest_continuous_run(x: &[Vec3], dcu0: f64, min_fragment: usize) -> (usize, usize) {
    let n = x.len();
    let r_min = (n / 3).min(min_fragment);
    let mut cut2 = dcu0 * dcu0;
    let mut relax = 0;
    let (mut best_start, mut best_end) = (0, 0);
    let mut best_len = 0;
    while best_len < r_min {
        best_len = 0;
        let mut run = 1;
        let mut start = 0;
        for i in 1..n {
            if (x[i - 1] - x[i]).norm_squared() < cut2 {
                run += 1;
                if i == n - 1 {
                    if run > best_len {
                        best_len = run;
                        best_start = start;
                        best_end = i;
                    }
                    run = 1;
                }
            } else {
                if run > best_len {
                    best_len = run;
                    best_start = start;
                    best_end = i - 1;
                }
                run = 1;
                start = i;
            }
        }
        if best_len < r_min {
            relax += 1;
            let d = 1.1f64.powi(relax) * dcu0;
            cut2 = d * d;
        }
    }
    (best_start, best_end)
}

/// Keep the middle 10 %–89 % of a fragment that spans a whole chain of length `l0`.
fn trim_if_whole(frag: &mut Vec<usize>, l0: usize) {
    if frag.len() == l0 {
        let lo = (l0 as f64 * 0.1) as usize;
        let hi = (l0 as f64 * 0.89) as usize;
        *frag = frag[lo..=hi].to_vec();
    }
}

/// The chain a threaded fragment is cut from.
#[derive(Clone, Copy)]
enum FragmentOf {
    X,
    Y,
}

/// How [`thread_fragment`] scans offsets, and the search parameters it scores with.
#[derive(Clone, Copy)]
struct Threading {
    p: SearchParams,
    /// Offsets must overlap at least `max(min(L_frag, L_other)/2.5, min_overlap)` residues.
    min_overlap: i64,
    /// Every `stride`-th offset (from the first) when the fragment is cut from `x`; a fragment
    /// of `y` is threaded at every offset (as TMalign).
    stride: usize,
}

/// Gapless threading of a fragment (residue indices `frag` of chain `of`) along all of the
/// other chain, at the offsets `k` of `scan`; updates `best` (the last of equal scores wins).
fn thread_fragment(
    x: &[Vec3],
    y: &[Vec3],
    frag: &[usize],
    of: FragmentOf,
    scan: Threading,
    fast: &mut FastBufs,
    best: &mut (f64, Vec<Option<usize>>),
) {
    let l_frag = frag.len() as i64;
    let l_other = match of {
        FragmentOf::X => y.len(),
        FragmentOf::Y => x.len(),
    } as i64;
    let min_ali = ((l_frag.min(l_other) as f64 / 2.5) as i64).max(scan.min_overlap);
    // Offsets k pair position j of the y side with position j + k of the x side.
    let offsets = match of {
        FragmentOf::X => ((min_ali - l_other)..=(l_frag - min_ali)).step_by(scan.stride.max(1)),
        FragmentOf::Y => ((min_ali - l_frag)..=(l_other - min_ali)).step_by(1),
    };
    let mut y2x = vec![None; y.len()];
    for k in offsets {
        match of {
            FragmentOf::X => {
                for (j, slot) in y2x.iter_mut().enumerate() {
                    let i = j as i64 + k;
                    *slot = (0..l_frag).contains(&i).then(|| frag[i as usize]);
                }
            }
            FragmentOf::Y => {
                y2x.fill(None);
                for (j, &fj) in frag.iter().enumerate() {
                    let i = j as i64 + k;
                    if (0..l_other).contains(&i) {
                        y2x[fj] = Some(i as usize);
                    }
                }
            }
        }
        let s = score_fast(x, y, &y2x, scan.p.d0, scan.p.d0_search, fast);
        if s >= best.0 {
            best.0 = s;
            best.1.clone_from(&y2x);
        }
    }
}

/// Initial alignment 5 (TMalign's `get_initial_fgt`): gapless threading of the longest
/// continuous fragment (sought down to `min_fragment` residues) of the chain whose fragment
/// is shorter along the other chain; offsets need an overlap of `min_fragment − 1` residues
/// and a fragment of `x` is threaded every `stride` offsets.
pub(crate) fn fragment_threading(
    x: &[Vec3],
    y: &[Vec3],
    p: &SearchParams,
    min_fragment: usize,
    stride: usize,
    fast: &mut FastBufs,
) -> Vec<Option<usize>> {
    let (lx, ly) = (x.len(), y.len());
    let scan = Threading { p: *p, min_overlap: min_fragment.saturating_sub(1) as i64, stride };
    let (xs, xe) = longest_continuous_run(x, p.dcu0, min_fragment);
    let (ys, ye) = longest_continuous_run(y, p.dcu0, min_fragment);
    let (fx, fy) = (xe - xs + 1, ye - ys + 1);
    let l_fr = fx.min(fy);
    let mut best = (-1.0, vec![None; ly]);

    if fx == fy && lx == ly {
        // Symmetric case: thread both fragments, keep the better.
        let mut frag: Vec<usize> = (xs..xs + l_fr).collect();
        trim_if_whole(&mut frag, lx);
        thread_fragment(x, y, &frag, FragmentOf::X, scan, fast, &mut best);
        let mut frag: Vec<usize> = (ys..ys + fy).collect();
        trim_if_whole(&mut frag, lx);
        thread_fragment(x, y, &frag, FragmentOf::Y, scan, fast, &mut best);
        return best.1;
    }
    let of = if fx < fy || (fx == fy && lx < ly) { FragmentOf::X } else { FragmentOf::Y };
    let start = match of {
        FragmentOf::X => xs,
        FragmentOf::Y => ys,
    };
    let mut frag: Vec<usize> = (start..start + l_fr).collect();
    trim_if_whole(&mut frag, lx.min(ly));
    thread_fragment(x, y, &frag, of, scan, fast, &mut best);
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ideal α-helix CA trace: rise 1.5 Å, 100° per residue, radius 2.3 Å.
    fn helix(n: usize) -> Vec<Vec3> {
        (0..n)
            .map(|i| {
                let t = (i as f64) * 100f64.to_radians();
                Vec3::new(2.3 * t.cos(), 2.3 * t.sin(), 1.5 * i as f64)
            })
            .collect()
    }

    /// Extended strand CA trace: 3.3 Å rise per residue with a ±0.9 Å zig-zag.
    fn strand(n: usize) -> Vec<Vec3> {
        (0..n).map(|i| Vec3::new(3.3 * i as f64, if i % 2 == 0 { 0.9 } else { -0.9 }, 0.0)).collect()
    }

    #[test]
    fn ca_ss_recognises_helix_and_strand() {
        let h = ca_secondary_structure(&helix(12));
        assert_eq!(&h[..2], b"CC");
        assert!(h[2..10].iter().all(|&c| c == b'H'), "{}", String::from_utf8_lossy(&h));
        let e = ca_secondary_structure(&strand(12));
        assert!(e[2..10].iter().all(|&c| c == b'E'), "{}", String::from_utf8_lossy(&e));
    }

    #[test]
    fn longest_run_finds_the_unbroken_stretch() {
        let mut x = strand(20);
        for p in &mut x[12..] {
            p.x += 10.0; // chain break between 11 and 12
        }
        assert_eq!(longest_continuous_run(&x, 4.25, 4), (0, 11));
    }
}
