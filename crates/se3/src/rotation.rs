//! [`Rotation`]: a scalar f64 rotation of 3-D space.

use nalgebra::{Matrix3, Rotation3, UnitQuaternion};

use crate::Vec3;
use crate::error::Se3Error;
use crate::quaternion::{matrix_to_quaternion, normalize_quaternion, quaternion_to_matrix};

/// Tolerance on `max |RᵀR − I|` accepted by [`Rotation::from_matrix`].
pub const ORTHONORMAL_TOL: f64 = 1e-6;

/// A proper rotation of 3-D space (an element of SO(3)), stored as an f64 rotation matrix.
///
/// A thin wrapper over [`nalgebra::Rotation3<f64>`]. Rotations act on column vectors:
/// `r.apply(p) = R p`. `a.compose(&b)` is `a ∘ b` (apply `b` first), like nalgebra's `a * b`.
///
/// ```
/// use protforge_se3::{Rotation, Vec3};
/// use std::f64::consts::FRAC_PI_2;
/// // 90° about z maps x to y.
/// let r = Rotation::from_axis_angle(&Vec3::z(), FRAC_PI_2).unwrap();
/// let p = r.apply(Vec3::new(1.0, 0.0, 0.0));
/// assert!((p - Vec3::new(0.0, 1.0, 0.0)).norm() < 1e-12);
/// // Quaternion [w, x, y, z] = [cos 45°, 0, 0, sin 45°].
/// let q = r.to_quaternion();
/// assert!((q[0] - 0.5f64.sqrt()).abs() < 1e-12 && (q[3] - 0.5f64.sqrt()).abs() < 1e-12);
/// assert!((r.angle() - FRAC_PI_2).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation(Rotation3<f64>);

impl Default for Rotation {
    fn default() -> Self {
        Self::identity()
    }
}

impl Rotation {
    /// The identity rotation.
    #[must_use]
    pub fn identity() -> Self {
        Self(Rotation3::identity())
    }

    /// Rotation by `angle` (radians, right-hand rule) about `axis` (any non-zero length).
    ///
    /// # Errors
    /// [`Se3Error::Degenerate`] if `axis` has (near) zero length, [`Se3Error::NonFinite`] on NaN/inf.
    pub fn from_axis_angle(axis: &Vec3, angle: f64) -> Result<Self, Se3Error> {
        const CTX: &str = "Rotation::from_axis_angle";
        if !angle.is_finite() || !axis.iter().all(|v| v.is_finite()) {
            return Err(Se3Error::NonFinite { context: CTX });
        }
        let n = axis.norm();
        if n < 1e-12 {
            return Err(Se3Error::Degenerate {
                context: CTX,
                reason: "zero-length axis",
            });
        }
        Ok(crate::so3::exp(&(axis * (angle / n))))
    }

    /// Rotation from a matrix, checked to be orthonormal with determinant +1
    /// (within [`ORTHONORMAL_TOL`]).
    ///
    /// # Errors
    /// [`Se3Error::NotARotation`] if the check fails, [`Se3Error::NonFinite`] on NaN/inf.
    pub fn from_matrix(m: &Matrix3<f64>) -> Result<Self, Se3Error> {
        const CTX: &str = "Rotation::from_matrix";
        if !m.iter().all(|v| v.is_finite()) {
            return Err(Se3Error::NonFinite { context: CTX });
        }
        let err = (m.transpose() * m - Matrix3::identity()).abs().max();
        let det = m.determinant();
        if err > ORTHONORMAL_TOL || (det - 1.0).abs() > ORTHONORMAL_TOL * 3.0 {
            return Err(Se3Error::NotARotation {
                context: CTX,
                error: err,
                det,
            });
        }
        Ok(Self(Rotation3::from_matrix_unchecked(*m)))
    }

    /// Rotation from a matrix that the caller guarantees to be a proper rotation.
    /// No check is made; use [`Rotation::orthonormalized`] to repair drift.
    #[must_use]
    pub fn from_matrix_unchecked(m: Matrix3<f64>) -> Self {
        Self(Rotation3::from_matrix_unchecked(m))
    }

    /// Rotation from a quaternion `[w, x, y, z]` of any non-zero norm (it is normalised).
    ///
    /// # Errors
    /// [`Se3Error::Degenerate`] for a zero or non-finite quaternion.
    pub fn from_quaternion(q: [f64; 4]) -> Result<Self, Se3Error> {
        let q = normalize_quaternion(q).ok_or(Se3Error::Degenerate {
            context: "Rotation::from_quaternion",
            reason: "zero or non-finite quaternion",
        })?;
        Ok(Self(Rotation3::from_matrix_unchecked(
            quaternion_to_matrix(q),
        )))
    }

    /// Unit quaternion `[w, x, y, z]`, canonicalised to `w ≥ 0`.
    #[must_use]
    pub fn to_quaternion(&self) -> [f64; 4] {
        matrix_to_quaternion(self.0.matrix())
    }

    /// Rotation whose columns are the orthonormal axes `x`, `y`, `z = x × y` built by
    /// Gram–Schmidt from the three points, with the OpenFold convention
    /// `Rigid.from_3_points(p_neg_x_axis = n, origin = ca, p_xy_plane = c)`.
    /// See [`crate::Rigid::from_three_points`].
    ///
    /// # Errors
    /// [`Se3Error::Degenerate`] if the points are (nearly) coincident or collinear.
    pub fn from_three_points(n: Vec3, ca: Vec3, c: Vec3) -> Result<Self, Se3Error> {
        const CTX: &str = "from_three_points";
        let e0 = ca - n;
        let v1 = c - ca;
        if !(e0.iter().chain(v1.iter()).all(|v| v.is_finite())) {
            return Err(Se3Error::NonFinite { context: CTX });
        }
        let n0 = e0.norm();
        if n0 < 1e-8 {
            return Err(Se3Error::Degenerate {
                context: CTX,
                reason: "N and CA coincide",
            });
        }
        let e0 = e0 / n0;
        let u1 = v1 - e0 * e0.dot(&v1);
        let n1 = u1.norm();
        if n1 < 1e-8 * v1.norm().max(1.0) {
            return Err(Se3Error::Degenerate {
                context: CTX,
                reason: "N, CA, C are collinear",
            });
        }
        let e1 = u1 / n1;
        let e2 = e0.cross(&e1);
        Ok(Self(Rotation3::from_matrix_unchecked(
            Matrix3::from_columns(&[e0, e1, e2]),
        )))
    }

    /// `self ∘ other`: the rotation that applies `other` first, then `self` (matrix `A B`).
    #[must_use]
    pub fn compose(&self, other: &Self) -> Self {
        Self(self.0 * other.0)
    }

    /// The inverse rotation (the transpose).
    #[must_use]
    pub fn inverse(&self) -> Self {
        Self(self.0.inverse())
    }

    /// Rotate a vector: `R p`.
    #[must_use]
    #[inline]
    pub fn apply(&self, p: Vec3) -> Vec3 {
        self.0.matrix() * p
    }

    /// Rotate by the inverse: `Rᵀ p`.
    #[must_use]
    #[inline]
    pub fn apply_inverse(&self, p: Vec3) -> Vec3 {
        self.0.matrix().tr_mul(&p)
    }

    /// The 3×3 rotation matrix.
    #[must_use]
    #[inline]
    pub fn matrix(&self) -> &Matrix3<f64> {
        self.0.matrix()
    }

    /// Rotation angle in radians, in `[0, π]`.
    #[must_use]
    pub fn angle(&self) -> f64 {
        crate::so3::log(self).norm()
    }

    /// Geodesic angle between two rotations (radians, in `[0, π]`): the angle of `self⁻¹ ∘ other`.
    #[must_use]
    pub fn angle_to(&self, other: &Self) -> f64 {
        self.inverse().compose(other).angle()
    }

    /// The nearest proper rotation (via the quaternion), to remove drift after many compositions.
    #[must_use]
    pub fn orthonormalized(&self) -> Self {
        let q = self.to_quaternion();
        match normalize_quaternion(q) {
            Some(q) => Self(Rotation3::from_matrix_unchecked(quaternion_to_matrix(q))),
            None => Self::identity(),
        }
    }

    /// The underlying nalgebra rotation.
    #[must_use]
    pub fn as_rotation3(&self) -> &Rotation3<f64> {
        &self.0
    }

    /// The rotation as an nalgebra unit quaternion.
    #[must_use]
    pub fn to_unit_quaternion(&self) -> UnitQuaternion<f64> {
        let [w, x, y, z] = self.to_quaternion();
        UnitQuaternion::new_unchecked(nalgebra::Quaternion::new(w, x, y, z))
    }
}

impl From<Rotation3<f64>> for Rotation {
    fn from(r: Rotation3<f64>) -> Self {
        Self(r)
    }
}

impl From<UnitQuaternion<f64>> for Rotation {
    fn from(q: UnitQuaternion<f64>) -> Self {
        Self(q.to_rotation_matrix())
    }
}
