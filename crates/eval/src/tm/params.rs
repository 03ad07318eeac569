//! Length-dependent TM-score parameters (Zhang & Skolnick 2004, Proteins 57:702, eq. 5; the
//! search-stage variants of TM-align, Zhang & Skolnick 2005, NAR 33:2302).

/// Smallest d0 (Å) of the final score, as in the TMscore and TMalign programs.
pub const D0_FLOOR: f64 = 0.5;

/// Gap-opening penalty of the iterative TM-score dynamic programming (TM-align, Zhang &
/// Skolnick 2005: −0.6; a second pass uses 0).
pub const GAP_OPEN: f64 = -0.6;

/// Final-score scale `d0(L) = 1.24·(L − 15)^(1/3) − 1.8` Å (Zhang & Skolnick 2004, eq. 5),
/// floored at [`D0_FLOOR`]. For `L ≤ 21` the formula is below the floor (or undefined), so
/// `d0 = 0.5`.
///
/// ```
/// use protforge_eval::tm::d0;
/// assert_eq!(d0(10), 0.5);
/// assert!((d0(100) - 3.6521).abs() < 1e-4);
/// ```
#[must_use]
pub fn d0(len: usize) -> f64 {
    d0_of(len as f64)
}

/// [`d0`] for a real-valued normalisation length (used with average lengths).
#[must_use]
pub(crate) fn d0_of(len: f64) -> f64 {
    if len <= 21.0 { D0_FLOOR } else { (1.24 * (len - 15.0).cbrt() - 1.8).max(D0_FLOOR) }
}

/// The distance scale the superposition search starts from: `d0` clamped to [4.5, 8] Å.
#[must_use]
pub(crate) fn d0_search_of(d0: f64) -> f64 {
    d0.clamp(4.5, 8.0)
}

/// Parameters of TM-align's alignment *search* stage, derived from the shorter chain
/// (TMalign's `parameter_set4search`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchParams {
    /// Search d0 (Å): the final-score d0 of the shorter length plus 0.8 (0.168 + 0.8 for L ≤ 19).
    pub(crate) d0: f64,
    /// Lower bound for derived scales (Å); equal to `d0` in the search stage.
    pub(crate) d0_min: f64,
    /// `d0` clamped to [4.5, 8] Å: the cutoff scale of the fragment superposition search.
    pub(crate) d0_search: f64,
    /// Pairs farther than this (Å) do not count during the search, and are dropped from the
    /// final alignment: `1.5·L^0.3 + 3.5`.
    pub(crate) score_d8: f64,
    /// Normalisation length of search scores: the shorter chain length.
    pub(crate) lnorm: f64,
    /// CA–CA distance (Å) under which consecutive residues are "continuous" (fragment search).
    pub(crate) dcu0: f64,
}

impl SearchParams {
    pub(crate) fn new(len_x: usize, len_y: usize) -> Self {
        let lnorm = len_x.min(len_y) as f64;
        let base = if lnorm <= 19.0 { 0.168 } else { 1.24 * (lnorm - 15.0).cbrt() - 1.8 };
        let d0 = base + 0.8;
        Self {
            d0,
            d0_min: d0,
            d0_search: d0_search_of(d0),
            score_d8: 1.5 * lnorm.powf(0.3) + 3.5,
            lnorm,
            dcu0: 4.25,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d0_values_match_the_published_formula() {
        // Hand-computed: 1.24·(L−15)^(1/3) − 1.8.
        assert_eq!(d0(5), 0.5);
        assert_eq!(d0(21), 0.5);
        assert!((d0(22) - (1.24 * 7f64.cbrt() - 1.8)).abs() < 1e-12);
        assert!((d0(50) - 2.2561).abs() < 1e-4);
        assert!((d0(100) - 3.6521).abs() < 1e-4);
        assert!((d0(300) - 6.3602).abs() < 1e-4);
        // Values printed by `TMalign` 20190822 ("LN=148, d0=4.53", "LN=67, d0=2.83").
        assert!((d0(148) - 4.53).abs() < 0.005);
        assert!((d0(67) - 2.83).abs() < 0.005);
    }

    #[test]
    fn search_params_follow_the_shorter_chain() {
        let p = SearchParams::new(300, 100);
        assert_eq!(p.lnorm, 100.0);
        assert!((p.d0 - (d0(100) + 0.8)).abs() < 1e-12);
        assert!((p.d0_search - 4.5).abs() < 1e-12);
        assert!((p.score_d8 - (1.5 * 100f64.powf(0.3) + 3.5)).abs() < 1e-12);
        let short = SearchParams::new(15, 40);
        assert!((short.d0 - 0.968).abs() < 1e-12);
    }
}
