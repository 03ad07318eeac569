//! SE(3) geometry for protforge.
//!
//! Two layers share one vocabulary (`identity, compose, inverse, apply, apply_inverse,
//! from_three_points, to_tensor7 / from_tensor7`):
//! - scalar f64 types on nalgebra for I/O, evaluation and tests: [`Rotation`], [`Rigid`],
//!   [`kabsch`] superposition, [`dihedral`](mod@dihedral)s, ideal [`geometry`], [`so3`] exp/log/geodesic;
//! - batched f32 candle types for models: [`Rotations`] (`[..., 3, 3]`) and [`Rigids`]
//!   (`[..., 3, 3]` + `[..., 3]`), differentiable.
//!
//! Conventions: lengths in Å, angles in radians, `a.compose(&b)` applies `b` first,
//! quaternions `[w, x, y, z]` with `w ≥ 0`, frames from N, CA, C with the OpenFold
//! `Rigid.from_3_points(p_neg_x_axis = N, origin = CA, p_xy_plane = C)` convention.
//! [`igso3`] holds the isotropic Gaussian on SO(3) used by SE(3) diffusion (FrameDiff).
//!
//! ```
//! use protforge_se3::{Rigid, Vec3, kabsch};
//! let n = Vec3::new(1.0, 0.0, 0.0);
//! let ca = Vec3::new(2.0, 1.0, 0.0);
//! let c = Vec3::new(2.5, 2.0, 1.0);
//! let frame = Rigid::from_three_points(n, ca, c).unwrap();
//! // Local coordinates of CA are the origin.
//! assert!(frame.apply_inverse(ca).norm() < 1e-12);
//! ```
#![warn(missing_docs)]

pub mod batched;
pub mod dihedral;
pub mod error;
pub mod geometry;
pub mod igso3;
pub mod kabsch;
pub mod quaternion;
pub mod rigid;
pub mod rotation;
pub mod so3;

#[cfg(any(test, feature = "proptest"))]
pub mod proptest_strategies;

pub use batched::{Rigids, Rotations};
pub use dihedral::{Dihedrals, backbone_dihedrals, dihedral};
pub use error::Se3Error;
pub use kabsch::{Superposition, superpose, superpose_weighted};
pub use rigid::Rigid;
pub use rotation::Rotation;

/// A 3-vector of f64 (a point or a displacement, Å).
pub type Vec3 = nalgebra::Vector3<f64>;

#[cfg(test)]
mod property_tests;
