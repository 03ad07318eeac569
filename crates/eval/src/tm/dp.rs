//! Needleman–Wunsch dynamic programming as used by TM-align (Zhang & Skolnick 2005): global
//! alignment without end-gap penalties, and a gap-*opening* penalty only (a gap that follows a
//! gap is free). Ties prefer the diagonal, then the vertical move (a gap in `x`).

/// Reusable DP storage. Only two rows of scores are kept; the traceback needs just two bits per
/// cell, recorded during the fill: whether the cell came from the diagonal, and whether the
/// horizontal candidate was at least the vertical one (the comparison TMalign's traceback
/// makes when a cell did not come from the diagonal).
#[derive(Debug, Default)]
pub(crate) struct Dp {
    /// `(len_x + 1) × (len_y + 1)` bits, row-major: [`FROM_DIAG`] | [`LEFT_WINS`].
    flags: Vec<u8>,
    /// Scores of the previous row, and the same plus the gap penalty where a cell came from
    /// the diagonal (the value a gap opened after it starts from).
    prev_val: Vec<f64>,
    prev_pen: Vec<f64>,
    cur_val: Vec<f64>,
    cur_pen: Vec<f64>,
    /// Pair scores of the current row.
    row_score: Vec<f64>,
}

/// The cell's best predecessor is the diagonal (its residues are aligned).
const FROM_DIAG: u8 = 1;
/// The horizontal candidate (gap in `x`, move to `j − 1`) is at least the vertical one.
const LEFT_WINS: u8 = 2;

impl Dp {
    /// Align `x` (rows, length `len_x`) with `y` (columns, length `len_y`) maximising the sum of
    /// `score(i, j)` over aligned pairs plus `gap_open` for each opened gap.
    ///
    /// `score(i, row)` must fill `row[j]` with the score of aligning `x[i]` with `y[j]`
    /// (0-based). On return `y2x[j] = Some(i)` if `y[j]` is aligned to `x[i]`.
    pub(crate) fn align<F>(&mut self, len_x: usize, len_y: usize, gap_open: f64, mut score: F, y2x: &mut Vec<Option<usize>>)
    where
        F: FnMut(usize, &mut [f64]),
    {
        let w = len_y + 1;
        self.flags.clear();
        self.flags.resize((len_x + 1) * w, 0);
        for v in [&mut self.prev_val, &mut self.prev_pen, &mut self.cur_val, &mut self.cur_pen] {
            v.clear();
            v.resize(w, 0.0);
        }
        self.row_score.resize(len_y, 0.0);
        y2x.clear();
        y2x.resize(len_y, None);

        for i in 1..=len_x {
            score(i - 1, &mut self.row_score);
            let flags = &mut self.flags[i * w..(i + 1) * w];
            fill_row(
                &self.prev_val,
                &self.prev_pen,
                &self.row_score,
                gap_open,
                &mut self.cur_val,
                &mut self.cur_pen,
                flags,
            );
            std::mem::swap(&mut self.prev_val, &mut self.cur_val);
            std::mem::swap(&mut self.prev_pen, &mut self.cur_pen);
        }

        let (mut i, mut j) = (len_x, len_y);
        while i > 0 && j > 0 {
            let f = self.flags[i * w + j];
            if f & FROM_DIAG != 0 {
                y2x[j - 1] = Some(i - 1);
                i -= 1;
                j -= 1;
            } else if f & LEFT_WINS != 0 {
                j -= 1;
            } else {
                i -= 1;
            }
        }
    }
}

/// Select `a` where `mask` is all ones, else `b` (bitwise, so that it compiles without
/// data-dependent branches, which mispredict on DP matrices).
#[inline(always)]
fn select(mask: u64, a: f64, b: f64) -> f64 {
    f64::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// All ones if `c`.
#[inline(always)]
fn mask(c: bool) -> u64 {
    0u64.wrapping_sub(u64::from(c))
}

/// One DP row (TMalign's `NWDP_TM` recurrence). Column 0 is 0 with no flags.
///
/// For cell `j`: `d = prev_val[j−1] + s[j−1]` (diagonal), `h = prev_pen[j]` (vertical: gap in
/// `y`), `v = cur_pen[j−1]` (horizontal: gap in `x`). The diagonal wins ties (`d ≥ h` and
/// `d ≥ v`), then the horizontal move (`v ≥ h`).
fn fill_row(
    prev_val: &[f64],
    prev_pen: &[f64],
    scores: &[f64],
    gap: f64,
    cur_val: &mut [f64],
    cur_pen: &mut [f64],
    flags: &mut [u8],
) {
    let n = scores.len();
    let (prev_val, prev_pen) = (&prev_val[..=n], &prev_pen[..=n]);
    let (cur_val, cur_pen, flags) = (&mut cur_val[..=n], &mut cur_pen[..=n], &mut flags[..=n]);
    cur_val[0] = 0.0;
    cur_pen[0] = 0.0;
    flags[0] = 0;
    let mut left: f64 = 0.0;
    for j in 1..=n {
        let d = prev_val[j - 1] + scores[j - 1];
        let h = prev_pen[j];
        let left_wins = left >= h;
        let other = select(mask(left_wins), left, h);
        // With d ≥ h the diagonal is taken iff d ≥ left; with d < h it never is. Splitting
        // it this way keeps the loop-carried chain through `left` short.
        let d_ge_h = d >= h;
        let take_diag = d_ge_h & (d >= left);
        cur_val[j] = select(mask(take_diag), d, other);
        flags[j] = (u8::from(take_diag) * FROM_DIAG) | (u8::from(left_wins) * LEFT_WINS);
        left = select(mask(d_ge_h), select(mask(left <= d), d + gap, left), other);
        cur_pen[j] = left;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_strings_align_on_the_diagonal() {
        let a = b"HHHCCEEE";
        let mut dp = Dp::default();
        let mut y2x = Vec::new();
        dp.align(
            a.len(),
            a.len(),
            -1.0,
            |i, row| {
                for (j, r) in row.iter_mut().enumerate() {
                    *r = f64::from(u8::from(a[i] == a[j]));
                }
            },
            &mut y2x,
        );
        assert_eq!(y2x, (0..a.len()).map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn traceback_follows_the_per_cell_flags_like_tmalign() {
        // x = HHHHEEEE, y = HHHHCCEEEE. The traceback of TMalign's DP follows the per-cell
        // "came from the diagonal" flags, which here leaves the optimal path (7 = 8 matches − 1
        // gap) for the gapless placement of x on y[2..10] (6 matches). Expected value from a
        // line-by-line transcription of TMalign's `NWDP_TM` (secondary-structure variant).
        let x = b"HHHHEEEE";
        let y = b"HHHHCCEEEE";
        let mut dp = Dp::default();
        let mut y2x = Vec::new();
        dp.align(
            x.len(),
            y.len(),
            -1.0,
            |i, row| {
                for (j, r) in row.iter_mut().enumerate() {
                    *r = f64::from(u8::from(x[i] == y[j]));
                }
            },
            &mut y2x,
        );
        let expected: Vec<Option<usize>> = [None, None].into_iter().chain((0..8).map(Some)).collect();
        assert_eq!(y2x, expected);
        // With a free gap the insertion is placed exactly.
        dp.align(
            x.len(),
            y.len(),
            0.0,
            |i, row| {
                for (j, r) in row.iter_mut().enumerate() {
                    *r = f64::from(u8::from(x[i] == y[j]));
                }
            },
            &mut y2x,
        );
        assert_eq!(y2x.iter().filter(|m| m.is_some()).count(), 8);
        assert!(y2x.iter().enumerate().all(|(j, m)| m.is_none_or(|i| x[i] == y[j])));
    }
}

