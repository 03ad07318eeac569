//! proptest strategies for the scalar types (compiled for this crate's tests and with the
//! `proptest` feature, for other crates' tests).

use proptest::prelude::*;

use crate::{Rigid, Rotation, Vec3};

/// A vector with components uniform in `[−scale, scale]`.
pub fn vec3(scale: f64) -> impl Strategy<Value = Vec3> {
    (-scale..scale, -scale..scale, -scale..scale).prop_map(|(x, y, z)| Vec3::new(x, y, z))
}

/// A random rotation (from a quaternion with components in `[−1, 1]`, norm ≥ 0.1; covers
/// all of SO(3), not exactly Haar-uniform).
pub fn rotation() -> impl Strategy<Value = Rotation> {
    (-1.0f64..1.0, -1.0f64..1.0, -1.0f64..1.0, -1.0f64..1.0).prop_filter_map(
        "quaternion too short",
        |(w, x, y, z)| {
            if (w * w + x * x + y * y + z * z).sqrt() < 0.1 {
                None
            } else {
                Rotation::from_quaternion([w, x, y, z]).ok()
            }
        },
    )
}

/// A rotation vector (radians) with norm strictly below `max_angle`.
pub fn rotation_vector(max_angle: f64) -> impl Strategy<Value = Vec3> {
    (vec3(1.0), 0.0..max_angle).prop_filter_map("zero axis", |(axis, angle)| {
        let n = axis.norm();
        (n > 1e-3).then(|| axis * (angle / n))
    })
}

/// A random rigid: [`rotation`] and a translation with components in `[−50, 50]` Å.
pub fn rigid() -> impl Strategy<Value = Rigid> {
    (rotation(), vec3(50.0)).prop_map(|(rot, trans)| Rigid::new(rot, trans))
}

/// `n` points with components in `[−30, 30]` Å.
pub fn points(n: usize) -> impl Strategy<Value = Vec<Vec3>> {
    proptest::collection::vec(vec3(30.0), n)
}
