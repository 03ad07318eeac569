//! Kabsch superposition and RMSD (scalar f64, allocation-free).
//!
//! Kabsch 1976 (Acta Cryst. A32, 922) / 1978 (A34, 827): the rotation minimising
//! `Σ wᵢ |R(mᵢ − m̄) − (tᵢ − t̄)|²` from the SVD of the weighted covariance
//! `H = Σ wᵢ (mᵢ − m̄)(tᵢ − t̄)ᵀ = U S Vᵀ`: `R = V diag(1, 1, d) Uᵀ` with `d = sign det(V Uᵀ)`
//! (the reflection fix). The residual is `E = Σ wᵢ|mᵢ − m̄|² + Σ wᵢ|tᵢ − t̄|² − 2(s₁ + s₂ + d s₃)`
//! and the RMSD is `√(E / Σ wᵢ)`.
//!
//! Every function here works from one pass of running sums on the stack, so the iterator
//! versions ([`superpose_pairs`], [`superpose_weighted_pairs`]) never allocate: TM-align
//! calls them with `idx.iter().map(|&(i, j)| (a[i], b[j]))`. Sums are accumulated relative
//! to the first pair, which keeps the one-pass formula accurate for coordinates far from
//! the origin. The RMSD from the trace formula has an absolute error of about
//! `√(ε · E₀/n)`, i.e. ~1e-6 Å for proteins; use [`rmsd`] on superposed coordinates if
//! you need more.

use nalgebra::Matrix3;

use crate::Vec3;
use crate::error::Se3Error;
use crate::rigid::Rigid;
use crate::rotation::Rotation;

/// Result of a superposition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Superposition {
    /// The rigid that maps mobile onto target: `rigid.apply(mobile[i]) ≈ target[i]`.
    pub rigid: Rigid,
    /// RMSD (Å) after superposition (weighted RMSD if weights were given).
    pub rmsd: f64,
}

/// Running weighted sums for the one-pass Kabsch.
struct Sums {
    origin_m: Vec3,
    origin_t: Vec3,
    w: f64,
    m: Vec3,
    t: Vec3,
    mt: Matrix3<f64>,
    mm: f64,
    tt: f64,
    n: usize,
}

impl Sums {
    fn new() -> Self {
        Self {
            origin_m: Vec3::zeros(),
            origin_t: Vec3::zeros(),
            w: 0.0,
            m: Vec3::zeros(),
            t: Vec3::zeros(),
            mt: Matrix3::zeros(),
            mm: 0.0,
            tt: 0.0,
            n: 0,
        }
    }

    #[inline]
    fn add(&mut self, m: Vec3, t: Vec3, w: f64) {
        if self.n == 0 {
            self.origin_m = m;
            self.origin_t = t;
        }
        self.n += 1;
        let m = m - self.origin_m;
        let t = t - self.origin_t;
        self.w += w;
        self.m += m * w;
        self.t += t * w;
        self.mt += (m * w) * t.transpose();
        self.mm += w * m.norm_squared();
        self.tt += w * t.norm_squared();
    }

    fn solve(&self, context: &'static str) -> Result<Superposition, Se3Error> {
        if self.n == 0 {
            return Err(Se3Error::TooFewPoints {
                context,
                needed: 1,
                got: 0,
            });
        }
        if self.w.is_nan() || self.w <= 0.0 {
            return Err(Se3Error::InvalidWeights {
                context,
                reason: "weights sum to zero",
            });
        }
        let cm = self.m / self.w;
        let ct = self.t / self.w;
        // Centred covariance H = Σ w (m − cm)(t − ct)ᵀ.
        let h = self.mt - (cm * self.w) * ct.transpose();
        let e0 = (self.mm - self.w * cm.norm_squared()) + (self.tt - self.w * ct.norm_squared());
        if !h.iter().all(|v| v.is_finite()) || !e0.is_finite() {
            return Err(Se3Error::NonFinite { context });
        }
        let (r, lambda) = match qcp(&h, e0) {
            Some(x) => x,
            None => svd_rotation(&h, context)?,
        };
        let e = e0 - 2.0 * lambda;
        let rmsd = (e.max(0.0) / self.w).sqrt();
        let rot = Rotation::from_matrix_unchecked(r);
        // target ≈ R (mobile − cm_abs) + ct_abs
        let cm_abs = cm + self.origin_m;
        let ct_abs = ct + self.origin_t;
        let trans = ct_abs - rot.apply(cm_abs);
        Ok(Superposition {
            rigid: Rigid::new(rot, trans),
            rmsd,
        })
    }
}

/// Optimal rotation and `λ = s₁ + s₂ + d s₃` from the SVD of `h` (Kabsch with reflection fix).
fn svd_rotation(h: &Matrix3<f64>, context: &'static str) -> Result<(Matrix3<f64>, f64), Se3Error> {
    let svd = h.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(Se3Error::Degenerate {
            context,
            reason: "SVD did not converge",
        });
    };
    let s = svd.singular_values; // sorted descending, ≥ 0
    let v = v_t.transpose();
    let d = if (v * u.transpose()).determinant() < 0.0 {
        -1.0
    } else {
        1.0
    };
    let mut v_fix = v;
    v_fix.column_mut(2).scale_mut(d);
    Ok((v_fix * u.transpose(), s[0] + s[1] + d * s[2]))
}

/// Quaternion characteristic polynomial method (Theobald 2005, Acta Cryst. A61, 478;
/// Liu, Agrafiotis & Theobald 2010, J. Comput. Chem. 31, 1561): the largest eigenvalue `λ` of
/// Horn's 4×4 key matrix `K(h)` by Newton iteration on its characteristic polynomial, started
/// from the upper bound `E₀/2`, and the rotation from its eigenvector (the null vector of
/// `K − λI`, from 3×3 minors). `λ = s₁ + s₂ + d s₃` as in the SVD route. Returns `None`
/// when the top eigenvalue is (nearly) degenerate, so the caller falls back to the SVD.
fn qcp(h: &Matrix3<f64>, e0: f64) -> Option<(Matrix3<f64>, f64)> {
    let (sxx, sxy, sxz) = (h[(0, 0)], h[(0, 1)], h[(0, 2)]);
    let (syx, syy, syz) = (h[(1, 0)], h[(1, 1)], h[(1, 2)]);
    let (szx, szy, szz) = (h[(2, 0)], h[(2, 1)], h[(2, 2)]);
    #[rustfmt::skip]
    let k = nalgebra::Matrix4::new(
        sxx + syy + szz, syz - szy, szx - sxz, sxy - syx,
        syz - szy, sxx - syy - szz, sxy + syx, szx + sxz,
        szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy,
        sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz,
    );
    // Characteristic polynomial of the traceless K: λ⁴ + c2 λ² + c1 λ + c0.
    let k2 = k * k;
    let c2 = -0.5 * k2.trace();
    let c1 = -(k2 * k).trace() / 3.0;
    let c0 = k.determinant();
    let mut lambda = 0.5 * e0;
    if lambda.is_nan() || lambda <= 0.0 {
        return None;
    }
    for _ in 0..50 {
        let l2 = lambda * lambda;
        let p = (l2 + c2) * l2 + c1 * lambda + c0;
        let dp = (4.0 * l2 + 2.0 * c2) * lambda + c1;
        if dp == 0.0 {
            break;
        }
        let step = p / dp;
        lambda -= step;
        if step.abs() < 1e-13 * lambda.abs().max(1e-300) {
            break;
        }
    }
    if !lambda.is_finite() {
        return None;
    }
    let m = k - nalgebra::Matrix4::identity() * lambda;
    // Null vector of M from the 3×3 minors of three of its rows; keep the best conditioned.
    let mut best = nalgebra::Vector4::zeros();
    let mut best_n2 = 0.0;
    for drop in 0..4 {
        let rows: [usize; 3] = match drop {
            0 => [1, 2, 3],
            1 => [0, 2, 3],
            2 => [0, 1, 3],
            _ => [0, 1, 2],
        };
        let mut v = nalgebra::Vector4::zeros();
        for col in 0..4 {
            let cols: [usize; 3] = match col {
                0 => [1, 2, 3],
                1 => [0, 2, 3],
                2 => [0, 1, 3],
                _ => [0, 1, 2],
            };
            let minor = Matrix3::from_fn(|i, j| m[(rows[i], cols[j])]);
            let sign = if col % 2 == 0 { 1.0 } else { -1.0 };
            v[col] = sign * minor.determinant();
        }
        let n2 = v.norm_squared();
        if n2 > best_n2 {
            best_n2 = n2;
            best = v;
        }
    }
    // |minors| ~ λ³ when the top eigenvalue is well separated; near-degenerate → SVD.
    let scale = lambda.abs().max(1e-300).powi(3);
    if best_n2.is_nan() || best_n2.sqrt() <= 1e-5 * scale {
        return None;
    }
    let q = best / best_n2.sqrt();
    Some((
        crate::quaternion::quaternion_to_matrix([q[0], q[1], q[2], q[3]]),
        lambda,
    ))
}

/// Superpose `mobile` onto `target` (Å), equal weights.
///
/// ```
/// use protforge_se3::{kabsch, Rigid, Rotation, Vec3};
/// let mobile = [Vec3::new(0.0, 0.0, 0.0), Vec3::new(3.8, 0.0, 0.0), Vec3::new(3.8, 3.8, 0.0), Vec3::new(0.0, 3.8, 1.0)];
/// let g = Rigid::new(Rotation::from_axis_angle(&Vec3::new(1.0, 2.0, 3.0), 0.7).unwrap(), Vec3::new(5.0, -2.0, 1.0));
/// let target: Vec<Vec3> = mobile.iter().map(|&p| g.apply(p)).collect();
/// let sup = kabsch::superpose(&mobile, &target).unwrap();
/// assert!(sup.rmsd < 1e-6);
/// assert!((sup.rigid.apply(mobile[2]) - target[2]).norm() < 1e-9);
/// ```
///
/// # Errors
/// [`Se3Error::LengthMismatch`], [`Se3Error::TooFewPoints`] (empty input), [`Se3Error::NonFinite`].
pub fn superpose(mobile: &[Vec3], target: &[Vec3]) -> Result<Superposition, Se3Error> {
    const CTX: &str = "kabsch::superpose";
    if mobile.len() != target.len() {
        return Err(Se3Error::LengthMismatch {
            context: CTX,
            left: mobile.len(),
            right: target.len(),
        });
    }
    let mut sums = Sums::new();
    for (m, t) in mobile.iter().zip(target) {
        sums.add(*m, *t, 1.0);
    }
    sums.solve(CTX)
}

/// Superpose `mobile` onto `target` (Å) minimising `Σ wᵢ |R mᵢ + t − targetᵢ|²`; the returned
/// RMSD is `√(Σ wᵢ dᵢ² / Σ wᵢ)`.
///
/// # Errors
/// [`Se3Error::LengthMismatch`], [`Se3Error::TooFewPoints`], [`Se3Error::NonFinite`], and
/// [`Se3Error::InvalidWeights`] for negative/non-finite weights or a zero sum.
pub fn superpose_weighted(
    mobile: &[Vec3],
    target: &[Vec3],
    weights: &[f64],
) -> Result<Superposition, Se3Error> {
    const CTX: &str = "kabsch::superpose_weighted";
    if mobile.len() != target.len() {
        return Err(Se3Error::LengthMismatch {
            context: CTX,
            left: mobile.len(),
            right: target.len(),
        });
    }
    if weights.len() != mobile.len() {
        return Err(Se3Error::LengthMismatch {
            context: CTX,
            left: mobile.len(),
            right: weights.len(),
        });
    }
    let mut sums = Sums::new();
    for ((m, t), &w) in mobile.iter().zip(target).zip(weights) {
        if !(w >= 0.0 && w.is_finite()) {
            return Err(Se3Error::InvalidWeights {
                context: CTX,
                reason: "negative or non-finite weight",
            });
        }
        sums.add(*m, *t, w);
    }
    sums.solve(CTX)
}

/// Allocation-free superposition over `(mobile, target)` pairs (equal weights).
///
/// # Errors
/// [`Se3Error::TooFewPoints`] for an empty iterator, [`Se3Error::NonFinite`].
#[inline]
pub fn superpose_pairs<I>(pairs: I) -> Result<Superposition, Se3Error>
where
    I: IntoIterator<Item = (Vec3, Vec3)>,
{
    let mut sums = Sums::new();
    for (m, t) in pairs {
        sums.add(m, t, 1.0);
    }
    sums.solve("kabsch::superpose_pairs")
}

/// Allocation-free weighted superposition over `(mobile, target, weight)` triples.
///
/// # Errors
/// As [`superpose_weighted`].
#[inline]
pub fn superpose_weighted_pairs<I>(triples: I) -> Result<Superposition, Se3Error>
where
    I: IntoIterator<Item = (Vec3, Vec3, f64)>,
{
    const CTX: &str = "kabsch::superpose_weighted_pairs";
    let mut sums = Sums::new();
    for (m, t, w) in triples {
        if !(w >= 0.0 && w.is_finite()) {
            return Err(Se3Error::InvalidWeights {
                context: CTX,
                reason: "negative or non-finite weight",
            });
        }
        sums.add(m, t, w);
    }
    sums.solve(CTX)
}

/// RMSD (Å) between corresponding points, without superposition: `√(Σ|aᵢ − bᵢ|² / n)`.
///
/// # Errors
/// [`Se3Error::LengthMismatch`], [`Se3Error::TooFewPoints`] for empty input.
pub fn rmsd(a: &[Vec3], b: &[Vec3]) -> Result<f64, Se3Error> {
    const CTX: &str = "kabsch::rmsd";
    if a.len() != b.len() {
        return Err(Se3Error::LengthMismatch {
            context: CTX,
            left: a.len(),
            right: b.len(),
        });
    }
    if a.is_empty() {
        return Err(Se3Error::TooFewPoints {
            context: CTX,
            needed: 1,
            got: 0,
        });
    }
    let s: f64 = a.iter().zip(b).map(|(p, q)| (p - q).norm_squared()).sum();
    Ok((s / a.len() as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud() -> Vec<Vec3> {
        vec![
            Vec3::new(0.0, 0.0, 0.0),
            Vec3::new(3.8, 0.0, 0.0),
            Vec3::new(5.0, 3.5, 0.0),
            Vec3::new(4.0, 5.0, 3.0),
            Vec3::new(0.5, 4.0, 4.5),
            Vec3::new(-2.0, 1.0, 6.0),
        ]
    }

    #[test]
    fn mirror_image_gives_proper_rotation_and_positive_rmsd() {
        let m = cloud();
        let t: Vec<Vec3> = m
            .iter()
            .map(|p| Vec3::new(p.x, p.y, -p.z) + Vec3::new(1.0, 2.0, 3.0))
            .collect();
        let s = superpose(&m, &t).unwrap();
        assert!((s.rigid.rot.matrix().determinant() - 1.0).abs() < 1e-12);
        let moved: Vec<Vec3> = m.iter().map(|&p| s.rigid.apply(p)).collect();
        let explicit = rmsd(&moved, &t).unwrap();
        assert!(
            s.rmsd > 0.5,
            "a reflection cannot be superposed: {}",
            s.rmsd
        );
        assert!((explicit - s.rmsd).abs() < 1e-9);
    }

    #[test]
    fn zero_weights_equal_subset() {
        let m = cloud();
        let t: Vec<Vec3> = m
            .iter()
            .enumerate()
            .map(|(i, p)| p * 1.1 + Vec3::new(0.3 * i as f64, -1.0, 0.0))
            .collect();
        let w = [1.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let keep = [0usize, 1, 3, 5];
        let sub_m: Vec<Vec3> = keep.iter().map(|&i| m[i]).collect();
        let sub_t: Vec<Vec3> = keep.iter().map(|&i| t[i]).collect();
        let a = superpose_weighted(&m, &t, &w).unwrap();
        let b = superpose(&sub_m, &sub_t).unwrap();
        assert!((a.rigid.rot.matrix() - b.rigid.rot.matrix()).abs().max() < 1e-10);
        assert!((a.rmsd - b.rmsd).abs() < 1e-9);
        // weighted RMSD definition: √(Σ w d² / Σ w)
        let num: f64 = m
            .iter()
            .zip(&t)
            .zip(&w)
            .map(|((p, q), wi)| wi * (a.rigid.apply(*p) - q).norm_squared())
            .sum();
        assert!(((num / 4.0).sqrt() - a.rmsd).abs() < 1e-9);
    }

    #[test]
    fn weights_change_the_fit() {
        let m = cloud();
        let t: Vec<Vec3> = m
            .iter()
            .enumerate()
            .map(|(i, p)| p + Vec3::new(0.0, 0.0, if i == 0 { 3.0 } else { 0.0 }))
            .collect();
        let u = superpose(&m, &t).unwrap();
        let w = superpose_weighted(&m, &t, &[0.01, 1.0, 1.0, 1.0, 1.0, 1.0]).unwrap();
        // down-weighting the outlier fits the other five nearly exactly
        let d = |s: &Superposition| {
            (1..6)
                .map(|i| (s.rigid.apply(m[i]) - t[i]).norm())
                .fold(0.0, f64::max)
        };
        assert!(d(&w) < d(&u));
    }

    #[test]
    fn far_from_origin_is_accurate() {
        let m: Vec<Vec3> = cloud()
            .iter()
            .map(|p| p + Vec3::new(1e4, -2e4, 5e3))
            .collect();
        let g = Rigid::new(
            Rotation::from_axis_angle(&Vec3::new(0.2, 1.0, -0.4), 2.5).unwrap(),
            Vec3::new(-3e4, 1e3, 0.0),
        );
        let t: Vec<Vec3> = m.iter().map(|&p| g.apply(p)).collect();
        let s = superpose(&m, &t).unwrap();
        assert!(s.rmsd < 1e-4, "{}", s.rmsd);
        assert!((s.rigid.apply(m[3]) - t[3]).norm() < 1e-6);
    }

    #[test]
    fn errors_are_reported() {
        let m = cloud();
        assert!(matches!(
            superpose(&m, &m[..5]),
            Err(Se3Error::LengthMismatch {
                left: 6,
                right: 5,
                ..
            })
        ));
        assert!(matches!(
            superpose(&[], &[]),
            Err(Se3Error::TooFewPoints { .. })
        ));
        assert!(matches!(
            superpose_weighted(&m, &m, &[1.0; 5]),
            Err(Se3Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            superpose_weighted(&m, &m, &[-1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
            Err(Se3Error::InvalidWeights { .. })
        ));
        assert!(matches!(
            superpose_weighted(&m, &m, &[0.0; 6]),
            Err(Se3Error::InvalidWeights { .. })
        ));
        let mut bad = m.clone();
        bad[2].y = f64::NAN;
        assert!(matches!(
            superpose(&bad, &m),
            Err(Se3Error::NonFinite { .. })
        ));
        assert!(matches!(
            rmsd(&m, &m[..1]),
            Err(Se3Error::LengthMismatch { .. })
        ));
        assert_eq!(rmsd(&m, &m).unwrap(), 0.0);
        // one or two points still give a valid (non-unique) rotation with rmsd 0
        let s = superpose(&m[..2], &m[..2]).unwrap();
        assert!(s.rmsd < 1e-6 && (s.rigid.rot.matrix().determinant() - 1.0).abs() < 1e-9);
    }
}

#[cfg(test)]
mod qcp_tests {
    use super::*;
    use crate::proptest_strategies::{points, rigid};
    use proptest::prelude::*;

    fn centred_h(m: &[Vec3], t: &[Vec3]) -> (Matrix3<f64>, f64) {
        let n = m.len() as f64;
        let cm = m.iter().sum::<Vec3>() / n;
        let ct = t.iter().sum::<Vec3>() / n;
        let mut h = Matrix3::zeros();
        let mut e0 = 0.0;
        for (a, b) in m.iter().zip(t) {
            h += (a - cm) * (b - ct).transpose();
            e0 += (a - cm).norm_squared() + (b - ct).norm_squared();
        }
        (h, e0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn qcp_agrees_with_svd(m in points(7), t in points(7), g in rigid(), noise in 0.0f64..2.0) {
            // Both random pairs and near-exact copies.
            for target in [t.clone(), m.iter().zip(&t).map(|(&p, q)| g.apply(p) + q * (noise / 30.0)).collect::<Vec<_>>()] {
                let (h, e0) = centred_h(&m, &target);
                let (r_svd, l_svd) = svd_rotation(&h, "test").unwrap();
                if let Some((r_qcp, l_qcp)) = qcp(&h, e0) {
                    prop_assert!((l_qcp - l_svd).abs() < 1e-9 * e0.max(1.0), "λ {l_qcp} vs {l_svd}");
                    prop_assert!((r_qcp - r_svd).abs().max() < 1e-6, "{r_qcp} vs {r_svd}");
                }
            }
        }
    }

    #[test]
    fn degenerate_inputs_fall_back_and_stay_proper() {
        let line: Vec<Vec3> = (0..6)
            .map(|i| Vec3::new(i as f64, 2.0 * i as f64, 0.5 * i as f64))
            .collect();
        let g = Rigid::new(
            Rotation::from_axis_angle(&Vec3::new(0.3, -1.0, 0.2), 2.0).unwrap(),
            Vec3::new(1.0, 2.0, 3.0),
        );
        let moved: Vec<Vec3> = line.iter().map(|&p| g.apply(p)).collect();
        for (m, t) in [(&line, &moved), (&line, &line)] {
            let s = superpose(m, t).unwrap();
            assert!(s.rmsd < 1e-6, "{}", s.rmsd);
            assert!((s.rigid.rot.matrix().determinant() - 1.0).abs() < 1e-9);
            for (p, q) in m.iter().zip(t.iter()) {
                assert!((s.rigid.apply(*p) - q).norm() < 1e-6);
            }
        }
        // all points identical
        let same = vec![Vec3::new(1.0, 1.0, 1.0); 4];
        let s = superpose(&same, &same).unwrap();
        assert!(s.rmsd < 1e-9 && (s.rigid.apply(same[0]) - same[0]).norm() < 1e-9);
    }
}
