//! Scalar quaternion ↔ rotation-matrix conversion.
//!
//! Quaternions are `[w, x, y, z]` (scalar first, Hamilton convention, active rotation of
//! column vectors), the layout of the 7-vector of OpenFold's `Rigid.to_tensor_7`.
//! Canonical form: unit norm and `w ≥ 0` (q and −q are the same rotation).

use nalgebra::Matrix3;

/// Rotation matrix of a unit quaternion `[w, x, y, z]`.
///
/// The quaternion is assumed normalised; see [`normalize_quaternion`].
#[must_use]
pub fn quaternion_to_matrix(q: [f64; 4]) -> Matrix3<f64> {
    let [w, x, y, z] = q;
    let (xx, yy, zz) = (x * x, y * y, z * z);
    let (xy, xz, yz) = (x * y, x * z, y * z);
    let (wx, wy, wz) = (w * x, w * y, w * z);
    Matrix3::new(
        1.0 - 2.0 * (yy + zz),
        2.0 * (xy - wz),
        2.0 * (xz + wy),
        2.0 * (xy + wz),
        1.0 - 2.0 * (xx + zz),
        2.0 * (yz - wx),
        2.0 * (xz - wy),
        2.0 * (yz + wx),
        1.0 - 2.0 * (xx + yy),
    )
}

/// Unit quaternion `[w, x, y, z]` with `w ≥ 0` of a rotation matrix.
///
/// Uses Shepperd's branch on the largest of `(trace, m00, m11, m22)` (Shepperd 1978,
/// "Quaternion from rotation matrix", J. Guidance and Control 1(3)), which is accurate for
/// every angle including π. The input should be a proper rotation matrix.
#[must_use]
pub fn matrix_to_quaternion(m: &Matrix3<f64>) -> [f64; 4] {
    let (m00, m11, m22) = (m[(0, 0)], m[(1, 1)], m[(2, 2)]);
    let tr = m00 + m11 + m22;
    let q = if tr >= m00 && tr >= m11 && tr >= m22 {
        let s = 2.0 * (1.0 + tr).max(0.0).sqrt();
        [
            0.25 * s,
            (m[(2, 1)] - m[(1, 2)]) / s,
            (m[(0, 2)] - m[(2, 0)]) / s,
            (m[(1, 0)] - m[(0, 1)]) / s,
        ]
    } else if m00 >= m11 && m00 >= m22 {
        let s = 2.0 * (1.0 + m00 - m11 - m22).max(0.0).sqrt();
        [
            (m[(2, 1)] - m[(1, 2)]) / s,
            0.25 * s,
            (m[(0, 1)] + m[(1, 0)]) / s,
            (m[(0, 2)] + m[(2, 0)]) / s,
        ]
    } else if m11 >= m22 {
        let s = 2.0 * (1.0 + m11 - m00 - m22).max(0.0).sqrt();
        [
            (m[(0, 2)] - m[(2, 0)]) / s,
            (m[(0, 1)] + m[(1, 0)]) / s,
            0.25 * s,
            (m[(1, 2)] + m[(2, 1)]) / s,
        ]
    } else {
        let s = 2.0 * (1.0 + m22 - m00 - m11).max(0.0).sqrt();
        [
            (m[(1, 0)] - m[(0, 1)]) / s,
            (m[(0, 2)] + m[(2, 0)]) / s,
            (m[(1, 2)] + m[(2, 1)]) / s,
            0.25 * s,
        ]
    };
    canonicalize_quaternion(q)
}

/// Normalise `[w, x, y, z]` to unit length and flip its sign so that `w ≥ 0`.
///
/// Returns `None` for a zero or non-finite quaternion.
#[must_use]
pub fn normalize_quaternion(q: [f64; 4]) -> Option<[f64; 4]> {
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    if !n.is_finite() || n < 1e-12 {
        return None;
    }
    Some(canonicalize_quaternion([
        q[0] / n,
        q[1] / n,
        q[2] / n,
        q[3] / n,
    ]))
}

/// Flip the sign of `q` if `w < 0` (no normalisation).
fn canonicalize_quaternion(q: [f64; 4]) -> [f64; 4] {
    if q[0] < 0.0 {
        [-q[0], -q[1], -q[2], -q[3]]
    } else {
        q
    }
}
