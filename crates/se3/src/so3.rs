//! SO(3) exponential and logarithm maps and geodesic interpolation (scalar f64).
//!
//! A rotation vector `ω ∈ R³` encodes the rotation by angle `|ω|` (radians) about `ω/|ω|`
//! (right-hand rule). `exp` is Rodrigues' formula; `log` goes through the canonical
//! quaternion, which is accurate near 0 and near π. Batched tensor versions are in
//! [`crate::batched::so3_exp`] and [`crate::batched::so3_log`].

use nalgebra::Matrix3;

use crate::Vec3;
use crate::quaternion::matrix_to_quaternion;
use crate::rotation::Rotation;

/// Exponential map: rotation vector `ω` (radians) → rotation, by Rodrigues' formula
/// `R = I + (sin θ/θ) K + ((1 − cos θ)/θ²) K²`, `θ = |ω|`, `K = [ω]ₓ`,
/// with Taylor expansions of the coefficients for `θ < 1e-4`.
///
/// ```
/// use protforge_se3::{so3, Vec3};
/// let r = so3::exp(&Vec3::new(0.0, 0.0, std::f64::consts::PI));
/// let p = r.apply(Vec3::new(1.0, 2.0, 3.0));
/// assert!((p - Vec3::new(-1.0, -2.0, 3.0)).norm() < 1e-12);
/// ```
#[must_use]
pub fn exp(omega: &Vec3) -> Rotation {
    let t2 = omega.norm_squared();
    let (a, b) = if t2 < 1e-8 {
        (1.0 - t2 / 6.0, 0.5 - t2 / 24.0)
    } else {
        let t = t2.sqrt();
        (t.sin() / t, (1.0 - t.cos()) / t2)
    };
    let k = omega.cross_matrix();
    // K² = ωωᵀ − θ² I
    let k2 = omega * omega.transpose() - Matrix3::identity() * t2;
    Rotation::from_matrix_unchecked(Matrix3::identity() + k * a + k2 * b)
}

/// Logarithm map: rotation → rotation vector `ω` with `|ω| ∈ [0, π]`.
///
/// From the canonical quaternion `(w, v)`, `w ≥ 0`: `θ = 2 atan2(|v|, w)`, `ω = θ v/|v|`
/// (and `ω ≈ 2v/w` for tiny `|v|`). At exactly `θ = π`, `ω` and `−ω` are the same rotation
/// and either may be returned.
///
/// ```
/// use protforge_se3::{so3, Vec3};
/// let w = Vec3::new(0.3, -0.2, 1.1);
/// assert!((so3::log(&so3::exp(&w)) - w).norm() < 1e-12);
/// ```
#[must_use]
pub fn log(r: &Rotation) -> Vec3 {
    let [w, x, y, z] = matrix_to_quaternion(r.matrix());
    let v = Vec3::new(x, y, z);
    let s = v.norm();
    if s < 1e-8 {
        // θ/s = 2 atan(s/w)/s ≈ (2/w)(1 − s²/(3w²)); w ≈ 1 here.
        v * (2.0 / w) * (1.0 - s * s / (3.0 * w * w))
    } else {
        v * (2.0 * s.atan2(w) / s)
    }
}

/// Geodesic interpolation on SO(3): `r0 ∘ exp(t · log(r0⁻¹ ∘ r1))`.
/// `t = 0` gives `r0`, `t = 1` gives `r1`; `t` outside `[0, 1]` extrapolates.
/// Follows the shortest geodesic (angle ≤ π).
///
/// ```
/// use protforge_se3::{so3, Rotation, Vec3};
/// let r1 = Rotation::from_axis_angle(&Vec3::x(), 1.0).unwrap();
/// let half = so3::geodesic(&Rotation::identity(), &r1, 0.5);
/// assert!((half.angle() - 0.5).abs() < 1e-12);
/// ```
#[must_use]
pub fn geodesic(r0: &Rotation, r1: &Rotation, t: f64) -> Rotation {
    let delta = log(&r0.inverse().compose(r1));
    r0.compose(&exp(&(delta * t)))
}
