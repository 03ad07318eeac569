//! [`Rigid`]: a scalar f64 rigid-body transform (element of SE(3)).

use nalgebra::{Matrix3, Matrix4};

use crate::Vec3;
use crate::error::Se3Error;
use crate::rotation::{ORTHONORMAL_TOL, Rotation};

/// A rigid transform `x ↦ R x + t` (rotation then translation), f64, lengths in Å.
///
/// `a.compose(&b)` is `a ∘ b`: apply `b` first, then `a` (OpenFold `Rigid.compose`,
/// AlphaFold `rigids_mul_rigids`, nalgebra `a * b`).
///
/// ```
/// use protforge_se3::{Rigid, Rotation, Vec3};
/// use std::f64::consts::FRAC_PI_2;
/// let rot = Rotation::from_axis_angle(&Vec3::z(), FRAC_PI_2).unwrap();
/// let a = Rigid::new(rot, Vec3::new(1.0, 0.0, 0.0));
/// let b = Rigid::from_translation(Vec3::new(0.0, 0.0, 2.0));
/// // b first (z += 2), then a (rotate 90° about z, then x += 1).
/// let p = a.compose(&b).apply(Vec3::new(1.0, 0.0, 0.0));
/// assert!((p - Vec3::new(1.0, 1.0, 2.0)).norm() < 1e-12);
/// // The inverse undoes it.
/// assert!((a.apply_inverse(a.apply(p)) - p).norm() < 1e-12);
/// // 7-vector [qw, qx, qy, qz, tx, ty, tz].
/// let t7 = a.to_tensor7();
/// assert!((t7[0] - 0.5f64.sqrt()).abs() < 1e-12 && (t7[3] - 0.5f64.sqrt()).abs() < 1e-12);
/// assert_eq!(&t7[4..], &[1.0, 0.0, 0.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rigid {
    /// Rotation part `R`.
    pub rot: Rotation,
    /// Translation part `t` (Å).
    pub trans: Vec3,
}

impl Rigid {
    /// The identity transform.
    #[must_use]
    pub fn identity() -> Self {
        Self {
            rot: Rotation::identity(),
            trans: Vec3::zeros(),
        }
    }

    /// `x ↦ rot x + trans`.
    #[must_use]
    pub fn new(rot: Rotation, trans: Vec3) -> Self {
        Self { rot, trans }
    }

    /// A pure translation (Å).
    #[must_use]
    pub fn from_translation(trans: Vec3) -> Self {
        Self {
            rot: Rotation::identity(),
            trans,
        }
    }

    /// A pure rotation.
    #[must_use]
    pub fn from_rotation(rot: Rotation) -> Self {
        Self {
            rot,
            trans: Vec3::zeros(),
        }
    }

    /// Backbone frame from the N, CA, C positions (Å), by Gram–Schmidt.
    ///
    /// Convention (OpenFold `Rigid.from_3_points(p_neg_x_axis = N, origin = CA, p_xy_plane = C)`,
    /// the same construction as AlphaFold 2 Suppl. Alg. 21 with the roles of N and C swapped):
    /// - origin at CA;
    /// - x axis along CA − N (N lies on the negative x axis);
    /// - y axis: the component of C − CA orthogonal to x (C lies in the xy plane, y > 0);
    /// - z = x × y.
    ///
    /// The returned rigid maps local frame coordinates to global ones; with ideal geometry,
    /// `apply(`[`crate::geometry::IDEAL_N_LOCAL`]`) = N`, etc.
    ///
    /// ```
    /// use protforge_se3::{Rigid, Vec3};
    /// let n = Vec3::new(-1.458, 0.0, 0.0);
    /// let ca = Vec3::zeros();
    /// let c = Vec3::new(0.5, 1.4, 0.0);
    /// let f = Rigid::from_three_points(n, ca, c).unwrap();
    /// assert!((f.rot.matrix() - nalgebra::Matrix3::identity()).norm() < 1e-12);
    /// assert_eq!(f.trans, ca);
    /// ```
    ///
    /// # Errors
    /// [`Se3Error::Degenerate`] if the points are coincident or collinear,
    /// [`Se3Error::NonFinite`] on NaN/inf.
    pub fn from_three_points(n: Vec3, ca: Vec3, c: Vec3) -> Result<Self, Se3Error> {
        Ok(Self {
            rot: Rotation::from_three_points(n, ca, c)?,
            trans: ca,
        })
    }

    /// `self ∘ other`: apply `other` first, then `self`.
    /// `(R₁, t₁) ∘ (R₂, t₂) = (R₁R₂, R₁t₂ + t₁)`.
    #[must_use]
    pub fn compose(&self, other: &Self) -> Self {
        Self {
            rot: self.rot.compose(&other.rot),
            trans: self.rot.apply(other.trans) + self.trans,
        }
    }

    /// The inverse transform `(Rᵀ, −Rᵀt)`.
    #[must_use]
    pub fn inverse(&self) -> Self {
        let rot = self.rot.inverse();
        Self {
            rot,
            trans: -rot.apply(self.trans),
        }
    }

    /// Transform a point: `R p + t`.
    #[must_use]
    #[inline]
    pub fn apply(&self, p: Vec3) -> Vec3 {
        self.rot.apply(p) + self.trans
    }

    /// Inverse-transform a point: `Rᵀ (p − t)`.
    #[must_use]
    #[inline]
    pub fn apply_inverse(&self, p: Vec3) -> Vec3 {
        self.rot.apply_inverse(p - self.trans)
    }

    /// The 7-vector `[qw, qx, qy, qz, tx, ty, tz]` (OpenFold `to_tensor_7`), quaternion unit
    /// with `qw ≥ 0`, translation in Å.
    #[must_use]
    pub fn to_tensor7(&self) -> [f64; 7] {
        let q = self.rot.to_quaternion();
        [
            q[0],
            q[1],
            q[2],
            q[3],
            self.trans.x,
            self.trans.y,
            self.trans.z,
        ]
    }

    /// Inverse of [`Rigid::to_tensor7`]; the quaternion may have any non-zero norm.
    ///
    /// # Errors
    /// [`Se3Error::Degenerate`] for a zero quaternion, [`Se3Error::NonFinite`] for a NaN/inf translation.
    pub fn from_tensor7(v: &[f64; 7]) -> Result<Self, Se3Error> {
        let rot = Rotation::from_quaternion([v[0], v[1], v[2], v[3]])?;
        let trans = Vec3::new(v[4], v[5], v[6]);
        if !trans.iter().all(|x| x.is_finite()) {
            return Err(Se3Error::NonFinite {
                context: "Rigid::from_tensor7",
            });
        }
        Ok(Self { rot, trans })
    }

    /// Homogeneous 4×4 matrix `[[R, t], [0, 0, 0, 1]]`.
    #[must_use]
    pub fn to_homogeneous(&self) -> Matrix4<f64> {
        let mut m = Matrix4::identity();
        m.fixed_view_mut::<3, 3>(0, 0).copy_from(self.rot.matrix());
        m.fixed_view_mut::<3, 1>(0, 3).copy_from(&self.trans);
        m
    }

    /// Inverse of [`Rigid::to_homogeneous`].
    ///
    /// # Errors
    /// [`Se3Error::NotARotation`] if the upper-left block is not a proper rotation or the last
    /// row is not `[0, 0, 0, 1]`; [`Se3Error::NonFinite`] on NaN/inf.
    pub fn from_homogeneous(m: &Matrix4<f64>) -> Result<Self, Se3Error> {
        const CTX: &str = "Rigid::from_homogeneous";
        if !m.iter().all(|v| v.is_finite()) {
            return Err(Se3Error::NonFinite { context: CTX });
        }
        let last = (m[(3, 0)].abs() + m[(3, 1)].abs() + m[(3, 2)].abs() + (m[(3, 3)] - 1.0).abs())
            .max(0.0);
        let r: Matrix3<f64> = m.fixed_view::<3, 3>(0, 0).into_owned();
        if last > ORTHONORMAL_TOL {
            return Err(Se3Error::NotARotation {
                context: CTX,
                error: last,
                det: r.determinant(),
            });
        }
        let rot = Rotation::from_matrix(&r)?;
        Ok(Self {
            rot,
            trans: m.fixed_view::<3, 1>(0, 3).into_owned(),
        })
    }
}
