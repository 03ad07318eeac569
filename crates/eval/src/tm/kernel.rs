//! Hot kernels shared by TM-score and TM-align: a plain rigid transform, the Kabsch wrapper,
//! TM-score sums and the fragment-based superposition search ("TMscore8_search" of the
//! TMalign program; Zhang & Skolnick 2004, Proteins 57:702, section "TM-score search").

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use nalgebra::Matrix3;
use protforge_se3::{Rigid, Rotation, Vec3, kabsch};

/// `x ↦ rot·x + trans` in a form that is cheap to apply in inner loops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Xform {
    rot: Matrix3<f64>,
    trans: Vec3,
}

impl Xform {
    pub(crate) fn identity() -> Self {
        Self { rot: Matrix3::identity(), trans: Vec3::zeros() }
    }

    #[inline]
    pub(crate) fn apply(&self, p: &Vec3) -> Vec3 {
        self.rot * p + self.trans
    }

    pub(crate) fn to_rigid(self) -> Rigid {
        Rigid::new(Rotation::from_matrix_unchecked(self.rot), self.trans)
    }

    /// Apply to every point of `xs`, writing into `out` (resized).
    pub(crate) fn apply_all(&self, xs: &[Vec3], out: &mut Vec<Vec3>) {
        out.clear();
        out.extend(xs.iter().map(|p| self.apply(p)));
    }
}

/// Least-squares superposition of the first onto the second point of each pair (Kabsch,
/// via `protforge_se3::kabsch`, allocation-free). An empty set gives the identity.
#[inline]
pub(crate) fn superpose<I>(pairs: I) -> Xform
where
    I: IntoIterator<Item = (Vec3, Vec3)>,
{
    match kabsch::superpose_pairs(pairs) {
        Ok(s) => Xform { rot: *s.rigid.rot.matrix(), trans: s.rigid.trans },
        Err(_) => Xform::identity(),
    }
}

/// Optimal-superposition RMSD (Å) of the pairs, 0 for an empty set. Measured on the
/// superposed coordinates (more accurate than the Kabsch trace formula near 0).
pub(crate) fn superposed_rmsd(xs: &[Vec3], ys: &[Vec3]) -> f64 {
    let n = xs.len().min(ys.len());
    if n == 0 {
        return 0.0;
    }
    let xf = superpose(xs.iter().copied().zip(ys.iter().copied()));
    let sum: f64 = xs.iter().zip(ys).map(|(x, y)| (xf.apply(x) - y).norm_squared()).sum();
    (sum / n as f64).sqrt()
}

/// How a TM-score sum is formed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScoreSpec {
    /// d0 (Å) of `1 / (1 + (d/d0)²)`.
    pub(crate) d0: f64,
    /// If set, pairs farther than this (Å) add nothing (TMalign's `score_sum_method = 8`).
    pub(crate) cutoff: Option<f64>,
    /// The sum is divided by this length.
    pub(crate) lnorm: f64,
}

/// Multiply–rotate hash (the "Fx" scheme of rustc) for the pair selections of [`tm_search`]:
/// far cheaper than the default SipHash, and these keys are not adversarial.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        for &b in words.remainder() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Reusable buffers of [`tm_search`].
#[derive(Debug, Default)]
pub(crate) struct SearchBufs {
    d2: Vec<f64>,
    close: Vec<usize>,
    prev: Vec<usize>,
    /// Pair selections iterated from in the current search, with the number of iteration
    /// steps that were still allowed from them (`usize::MAX` for a fixed point).
    explored: HashMap<Vec<usize>, usize, BuildHasherDefault<FxHasher>>,
}

/// TM-score of the pairs `(xs[k], ys[k])` under `xf`, and the pairs closer than `d` Å.
///
/// If fewer than 3 pairs are closer than `d` (and there are more than 3 pairs), `d` is
/// relaxed by 0.5 Å steps until at least 3 are. `d2` receives the squared distances.
fn score_and_select(
    xs: &[Vec3],
    ys: &[Vec3],
    xf: &Xform,
    d: f64,
    spec: &ScoreSpec,
    d2: &mut [f64],
    close: &mut Vec<usize>,
) -> f64 {
    let d02 = spec.d0 * spec.d0;
    for ((x, y), out) in xs.iter().zip(ys).zip(d2.iter_mut()) {
        *out = (xf.apply(x) - y).norm_squared();
    }
    let sum = match spec.cutoff {
        Some(c) => {
            let c2 = c * c;
            d2.iter().map(|&di| if di <= c2 { d02 / (d02 + di) } else { 0.0 }).sum::<f64>()
        }
        None => d2.iter().map(|&di| d02 / (d02 + di)).sum::<f64>(),
    };
    let n = xs.len();
    let mut cut2 = d * d;
    let mut relax = 0u32;
    loop {
        close.clear();
        close.extend(d2.iter().enumerate().filter(|&(_, &di)| di < cut2).map(|(k, _)| k));
        if close.len() < 3 && n > 3 {
            relax += 1;
            let dr = d + f64::from(relax) * 0.5;
            cut2 = dr * dr;
        } else {
            break;
        }
    }
    sum / spec.lnorm
}

/// Seed fragment lengths of the search: `L, L/2, L/4, …` (integer division by powers of
/// two) down to a minimum of 4 (or `L` if shorter), at most six lengths.
fn seed_lengths(n: usize) -> Vec<usize> {
    let min = n.min(4);
    let mut out = Vec::with_capacity(6);
    for i in 0..5 {
        let l = n >> i;
        if l <= min {
            out.push(min);
            return out;
        }
        out.push(l);
    }
    out.push(min);
    out
}

/// Fragment-based TM-score superposition search over equivalent pairs `(xs[k], ys[k])`
/// (Zhang & Skolnick 2004; TMalign's `TMscore8_search`).
///
/// For each seed length `Lf` of [`seed_lengths`] and each seed start (every `step`-th, plus the
/// last), the seed fragment is superposed, the pairs closer than `d0_search − 1` Å are taken,
/// and then up to 20 times: superpose those pairs, re-select the pairs closer than
/// `d0_search + 1` Å, until the selection no longer changes. The transform with the highest
/// score seen is returned with that score (`-1` … never, unless `xs` is empty: then 0).
///
/// Each iteration step is a deterministic function of the selection it starts from, and
/// replaying steps cannot raise the best score (only a strictly higher score replaces it). So
/// an iteration stops early when its selection was already iterated from with at least as many
/// steps left, or is a fixed point: the result is the same as without the shortcut, with less
/// work (seeds in one region tend to select the same pairs).
pub(crate) fn tm_search(
    xs: &[Vec3],
    ys: &[Vec3],
    step: usize,
    d0_search: f64,
    spec: &ScoreSpec,
    bufs: &mut SearchBufs,
) -> (f64, Xform) {
    const MAX_ITER: usize = 20;
    let n = xs.len().min(ys.len());
    if n == 0 {
        return (0.0, Xform::identity());
    }
    let (xs, ys) = (&xs[..n], &ys[..n]);
    bufs.d2.resize(n, 0.0);
    let step = step.max(1);
    let mut best = -1.0;
    let mut best_xf = Xform::identity();
    bufs.explored.clear();
    for frag in seed_lengths(n) {
        let last_start = n - frag;
        let mut start = 0;
        loop {
            let xf = superpose((start..start + frag).map(|k| (xs[k], ys[k])));
            let score = score_and_select(xs, ys, &xf, d0_search - 1.0, spec, &mut bufs.d2, &mut bufs.close);
            if score > best {
                best = score;
                best_xf = xf;
            }
            let d = d0_search + 1.0;
            for it in 0..MAX_ITER {
                let steps_left = MAX_ITER - it;
                match bufs.explored.get_mut(&bufs.close) {
                    Some(seen) if *seen >= steps_left => break,
                    Some(seen) => *seen = steps_left,
                    None => {
                        bufs.explored.insert(bufs.close.clone(), steps_left);
                    }
                }
                std::mem::swap(&mut bufs.prev, &mut bufs.close);
                let xf = superpose(bufs.prev.iter().map(|&k| (xs[k], ys[k])));
                let score = score_and_select(xs, ys, &xf, d, spec, &mut bufs.d2, &mut bufs.close);
                if score > best {
                    best = score;
                    best_xf = xf;
                }
                if bufs.close == bufs.prev {
                    if let Some(seen) = bufs.explored.get_mut(&bufs.prev) {
                        *seen = usize::MAX;
                    }
                    break;
                }
            }
            if start < last_start {
                start = (start + step).min(last_start);
            } else {
                break;
            }
        }
    }
    (best, best_xf)
}

/// Reusable buffers of [`score_fast`].
#[derive(Debug, Default)]
pub(crate) struct FastBufs {
    xs: Vec<Vec3>,
    ys: Vec<Vec3>,
    d2: Vec<f64>,
    sel: Vec<usize>,
}

/// Quick three-superposition estimate of how good an alignment is (TMalign's
/// `get_score_fast`): superpose all aligned pairs, then the pairs within `d0_search`, then
/// those within `√(d0_search² + 1)`; return the best unnormalised TM sum with scale `d0`.
///
/// `y2x[j] = Some(i)` aligns `y[j]` with `x[i]`.
pub(crate) fn score_fast(
    x: &[Vec3],
    y: &[Vec3],
    y2x: &[Option<usize>],
    d0: f64,
    d0_search: f64,
    bufs: &mut FastBufs,
) -> f64 {
    bufs.xs.clear();
    bufs.ys.clear();
    for (j, i) in y2x.iter().enumerate() {
        if let Some(i) = *i {
            bufs.xs.push(x[i]);
            bufs.ys.push(y[j]);
        }
    }
    let n = bufs.xs.len();
    let (xs, ys) = (&bufs.xs, &bufs.ys);
    let d02 = d0 * d0;
    let d002 = d0_search * d0_search;
    let sum_under = |xf: &Xform, d2: &mut Vec<f64>, store: bool| -> f64 {
        let mut s = 0.0;
        for (k, (x, y)) in xs.iter().zip(ys).enumerate() {
            let di = (xf.apply(x) - y).norm_squared();
            if store {
                d2[k] = di;
            }
            s += d02 / (d02 + di);
        }
        s
    };
    let select = |d2: &[f64], mut cut: f64, sel: &mut Vec<usize>| loop {
        sel.clear();
        sel.extend(d2.iter().enumerate().filter(|&(_, &di)| di <= cut).map(|(k, _)| k));
        if sel.len() < 3 && n > 3 {
            cut += 0.5;
        } else {
            break;
        }
    };

    bufs.d2.resize(n, 0.0);
    let xf = superpose(xs.iter().copied().zip(ys.iter().copied()));
    let tm0 = sum_under(&xf, &mut bufs.d2, true);
    select(&bufs.d2, d002, &mut bufs.sel);
    let (tm1, tm2) = if bufs.sel.len() == n {
        (tm0, tm0)
    } else {
        let xf = superpose(bufs.sel.iter().map(|&k| (xs[k], ys[k])));
        let tm1 = sum_under(&xf, &mut bufs.d2, true);
        select(&bufs.d2, d002 + 1.0, &mut bufs.sel);
        let xf = superpose(bufs.sel.iter().map(|&k| (xs[k], ys[k])));
        (tm1, sum_under(&xf, &mut bufs.d2, false))
    };
    let mut tm = tm0;
    if tm1 >= tm {
        tm = tm1;
    }
    if tm2 >= tm {
        tm = tm2;
    }
    tm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lengths_halve_down_to_four() {
        assert_eq!(seed_lengths(300), vec![300, 150, 75, 37, 18, 4]);
        assert_eq!(seed_lengths(40), vec![40, 20, 10, 5, 4]);
        assert_eq!(seed_lengths(8), vec![8, 4]);
        assert_eq!(seed_lengths(3), vec![3]);
    }

    /// [`tm_search`] without the explored-selection shortcut; also returns the number of
    /// iteration steps taken.
    fn tm_search_plain(xs: &[Vec3], ys: &[Vec3], step: usize, d0_search: f64, spec: &ScoreSpec) -> (f64, Xform, usize) {
        let n = xs.len();
        let (mut d2, mut close, mut prev) = (vec![0.0; n], Vec::new(), Vec::new());
        let (mut best, mut best_xf, mut steps) = (-1.0, Xform::identity(), 0);
        for frag in seed_lengths(n) {
            let starts: Vec<usize> = (0..=n - frag).step_by(step).chain([n - frag]).collect();
            let mut last = None;
            for start in starts {
                if last == Some(start) {
                    continue;
                }
                last = Some(start);
                let xf = superpose((start..start + frag).map(|k| (xs[k], ys[k])));
                let score = score_and_select(xs, ys, &xf, d0_search - 1.0, spec, &mut d2, &mut close);
                if score > best {
                    (best, best_xf) = (score, xf);
                }
                for _ in 0..20 {
                    steps += 1;
                    std::mem::swap(&mut prev, &mut close);
                    let xf = superpose(prev.iter().map(|&k| (xs[k], ys[k])));
                    let score = score_and_select(xs, ys, &xf, d0_search + 1.0, spec, &mut d2, &mut close);
                    if score > best {
                        (best, best_xf) = (score, xf);
                    }
                    if close == prev {
                        break;
                    }
                }
            }
        }
        (best, best_xf, steps)
    }

    #[test]
    fn explored_shortcut_changes_nothing() {
        // Two 120-point chains: the first half of ys is a noisy rigid copy of xs, the second
        // half a differently moved, noisier copy, so seeds lead to several distinct selections.
        let mut s = 7u64;
        let mut noise = |amp: f64| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * amp
        };
        let xs: Vec<Vec3> = (0..120)
            .map(|i| {
                let t = f64::from(i) * 0.45;
                Vec3::new(6.0 * t.cos(), 6.0 * t.sin(), 1.2 * f64::from(i))
            })
            .collect();
        let g1 = Rigid::new(Rotation::from_axis_angle(&Vec3::new(1.0, 0.2, 0.0), 0.7).unwrap(), Vec3::new(2.0, 0.0, 1.0));
        let g2 = Rigid::new(Rotation::from_axis_angle(&Vec3::new(0.0, 1.0, 0.3), 1.9).unwrap(), Vec3::new(-5.0, 4.0, 0.0));
        let ys: Vec<Vec3> = xs
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let (g, amp) = if i < 60 { (&g1, 2.0) } else { (&g2, 4.0) };
                g.apply(p) + Vec3::new(noise(amp), noise(amp), noise(amp))
            })
            .collect();
        let mut bufs = SearchBufs::default();
        let mut skipped_any = false;
        for (step, cutoff) in [(1, None), (5, Some(8.0)), (40, None)] {
            let spec = ScoreSpec { d0: 4.0, cutoff, lnorm: 120.0 };
            let (score, xf) = tm_search(&xs, &ys, step, 4.5, &spec, &mut bufs);
            let (score_ref, xf_ref, steps_ref) = tm_search_plain(&xs, &ys, step, 4.5, &spec);
            assert_eq!(score.to_bits(), score_ref.to_bits(), "step {step}");
            assert_eq!(xf.rot, xf_ref.rot, "step {step}");
            assert_eq!(xf.trans, xf_ref.trans, "step {step}");
            skipped_any |= bufs.explored.len() < steps_ref;
        }
        assert!(skipped_any, "the shortcut never triggered: the test inputs are too easy");
    }

    #[test]
    fn search_recovers_a_rigid_motion_exactly() {
        let xs: Vec<Vec3> =
            (0..30).map(|i| Vec3::new(f64::from(i).sin() * 5.0, f64::from(i) * 1.5, f64::from(i).cos() * 4.0)).collect();
        let rot = Rotation::from_axis_angle(&Vec3::new(0.3, -1.0, 0.5), 1.1).unwrap_or_else(|_| Rotation::identity());
        let g = Rigid::new(rot, Vec3::new(3.0, -7.0, 2.0));
        let ys: Vec<Vec3> = xs.iter().map(|&p| g.apply(p)).collect();
        let spec = ScoreSpec { d0: 1.0, cutoff: None, lnorm: 30.0 };
        let (score, xf) = tm_search(&xs, &ys, 1, 4.5, &spec, &mut SearchBufs::default());
        assert!((score - 1.0).abs() < 1e-9);
        assert!((xf.apply(&xs[7]) - ys[7]).norm() < 1e-8);
    }
}
