//! Property tests: group laws, round trips, Kabsch, and scalar/batched agreement.

use approx::assert_relative_eq;
use candle_core::{Device, Tensor};
use nalgebra::Matrix3;
use proptest::prelude::*;

use crate::proptest_strategies::{points, rigid, rotation, rotation_vector, vec3};
use crate::{Rigid, Rigids, Rotation, Rotations, Vec3, batched, kabsch, so3};

fn close_rigid(a: &Rigid, b: &Rigid, eps: f64) -> bool {
    (a.rot.matrix() - b.rot.matrix()).abs().max() < eps
        && (a.trans - b.trans).abs().max() < eps * 100.0
}

fn tensor_of(pts: &[Vec3]) -> Tensor {
    let data: Vec<f32> = pts
        .iter()
        .flat_map(|p| [p.x as f32, p.y as f32, p.z as f32])
        .collect();
    Tensor::from_vec(data, (pts.len(), 3), &Device::Cpu).unwrap()
}

fn points_of(t: &Tensor) -> Vec<Vec3> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.chunks_exact(3)
        .map(|c| Vec3::new(f64::from(c[0]), f64::from(c[1]), f64::from(c[2])))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn inverse_is_identity(r in rigid()) {
        let i1 = r.compose(&r.inverse());
        let i2 = r.inverse().compose(&r);
        prop_assert!(close_rigid(&i1, &Rigid::identity(), 1e-12));
        prop_assert!(close_rigid(&i2, &Rigid::identity(), 1e-12));
    }

    #[test]
    fn compose_is_associative(a in rigid(), b in rigid(), c in rigid()) {
        let l = a.compose(&b).compose(&c);
        let r = a.compose(&b.compose(&c));
        prop_assert!(close_rigid(&l, &r, 1e-12));
    }

    #[test]
    fn compose_is_action(a in rigid(), b in rigid(), p in vec3(30.0)) {
        let lhs = a.compose(&b).apply(p);
        let rhs = a.apply(b.apply(p));
        prop_assert!((lhs - rhs).norm() < 1e-10);
        // and it matches nalgebra's isometry product (b first)
        let iso = |r: &Rigid| nalgebra::Isometry3::from_parts(nalgebra::Translation3::from(r.trans), r.rot.to_unit_quaternion());
        let q = (iso(&a) * iso(&b)).transform_point(&nalgebra::Point3::from(p));
        prop_assert!((q.coords - lhs).norm() < 1e-9);
    }

    #[test]
    fn apply_inverse_inverts_apply(r in rigid(), p in vec3(30.0)) {
        prop_assert!((r.apply_inverse(r.apply(p)) - p).norm() < 1e-10);
        prop_assert!((r.apply(r.apply_inverse(p)) - p).norm() < 1e-10);
        prop_assert!((r.inverse().apply(p) - r.apply_inverse(p)).norm() < 1e-10);
    }

    #[test]
    fn rotation_is_orthonormal(r in rotation()) {
        let m = r.matrix();
        prop_assert!((m.transpose() * m - Matrix3::identity()).abs().max() < 1e-12);
        prop_assert!((m.determinant() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn quaternion_matrix_roundtrip(r in rotation()) {
        let q = r.to_quaternion();
        prop_assert!(q[0] >= 0.0);
        prop_assert!((q.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12);
        let r2 = Rotation::from_quaternion(q).unwrap();
        prop_assert!((r2.matrix() - r.matrix()).abs().max() < 1e-12);
        // matches nalgebra up to sign
        let nq = nalgebra::UnitQuaternion::from_rotation_matrix(r.as_rotation3());
        let s = if nq.w < 0.0 { -1.0 } else { 1.0 };
        prop_assert!((s * nq.w - q[0]).abs() < 1e-9 && (s * nq.i - q[1]).abs() < 1e-9);
    }

    #[test]
    fn tensor7_and_homogeneous_roundtrip(r in rigid()) {
        let t7 = r.to_tensor7();
        let r7 = Rigid::from_tensor7(&t7).unwrap();
        prop_assert!(close_rigid(&r7, &r, 1e-12));
        let h = r.to_homogeneous();
        let rh = Rigid::from_homogeneous(&h).unwrap();
        prop_assert!(close_rigid(&rh, &r, 1e-15));
        // 4×4 acts like apply on homogeneous points
        let p = Vec3::new(1.0, -2.0, 3.0);
        let ph = h * nalgebra::Vector4::new(p.x, p.y, p.z, 1.0);
        prop_assert!((ph.xyz() - r.apply(p)).norm() < 1e-10);
        // tensor7 → 4×4 → tensor7
        let back = Rigid::from_homogeneous(&Rigid::from_tensor7(&t7).unwrap().to_homogeneous()).unwrap().to_tensor7();
        for (a, b) in back.iter().zip(t7.iter()) {
            prop_assert!((a - b).abs() < 1e-10);
        }
    }

    #[test]
    fn from_three_points_recovers_placing_rigid(g in rigid()) {
        let [n, ca, c] = crate::geometry::ideal_backbone_local();
        let f = Rigid::from_three_points(g.apply(n), g.apply(ca), g.apply(c)).unwrap();
        let m = f.rot.matrix();
        prop_assert!((m.transpose() * m - Matrix3::identity()).abs().max() < 1e-12);
        prop_assert!((m.determinant() - 1.0).abs() < 1e-12);
        prop_assert!(close_rigid(&f, &g, 1e-10));
    }

    #[test]
    fn from_three_points_orthonormal_on_random_points(p in points(3)) {
        if let Ok(f) = Rigid::from_three_points(p[0], p[1], p[2]) {
            let m = f.rot.matrix();
            prop_assert!((m.transpose() * m - Matrix3::identity()).abs().max() < 1e-9);
            prop_assert!((m.determinant() - 1.0).abs() < 1e-9);
            // N on the local −x axis, C in the xy plane with y > 0
            let ln = f.apply_inverse(p[0]);
            let lc = f.apply_inverse(p[2]);
            prop_assert!(ln.x < 0.0 && ln.y.abs() < 1e-8 && ln.z.abs() < 1e-8);
            prop_assert!(lc.y >= 0.0 && lc.z.abs() < 1e-8);
        }
    }

    #[test]
    fn log_exp_roundtrip(w in rotation_vector(std::f64::consts::PI - 1e-6)) {
        let r = so3::exp(&w);
        prop_assert!((so3::log(&r) - w).norm() < 1e-9);
        prop_assert!((r.angle() - w.norm()).abs() < 1e-9);
    }

    #[test]
    fn exp_log_roundtrip(r in rotation()) {
        let w = so3::log(&r);
        prop_assert!(w.norm() <= std::f64::consts::PI + 1e-12);
        prop_assert!((so3::exp(&w).matrix() - r.matrix()).abs().max() < 1e-10);
    }

    #[test]
    fn geodesic_endpoints_and_midpoint(a in rotation(), b in rotation()) {
        prop_assert!((so3::geodesic(&a, &b, 0.0).matrix() - a.matrix()).abs().max() < 1e-10);
        prop_assert!((so3::geodesic(&a, &b, 1.0).matrix() - b.matrix()).abs().max() < 1e-8);
        let m = so3::geodesic(&a, &b, 0.5);
        let d = a.angle_to(&b);
        prop_assume!(d < std::f64::consts::PI - 1e-3);
        prop_assert!((a.angle_to(&m) - d / 2.0).abs() < 1e-8);
        prop_assert!((m.angle_to(&b) - d / 2.0).abs() < 1e-8);
    }

    #[test]
    fn kabsch_recovers_known_rigid(g in rigid(), p in points(12)) {
        let target: Vec<Vec3> = p.iter().map(|&x| g.apply(x)).collect();
        let s = kabsch::superpose(&p, &target).unwrap();
        prop_assert!(s.rmsd < 1e-5, "rmsd {}", s.rmsd);
        prop_assert!(close_rigid(&s.rigid, &g, 1e-9));
        // allocation-free pair version gives the same
        let s2 = kabsch::superpose_pairs(p.iter().copied().zip(target.iter().copied())).unwrap();
        prop_assert!(close_rigid(&s.rigid, &s2.rigid, 1e-12));
    }

    #[test]
    fn kabsch_rmsd_matches_explicit(p in points(10), q in points(10)) {
        let s = kabsch::superpose(&p, &q).unwrap();
        let moved: Vec<Vec3> = p.iter().map(|&x| s.rigid.apply(x)).collect();
        let explicit = kabsch::rmsd(&moved, &q).unwrap();
        prop_assert!((explicit - s.rmsd).abs() < 1e-6, "{} vs {}", explicit, s.rmsd);
        // optimal: no worse than the identity or a random perturbation
        prop_assert!(s.rmsd <= kabsch::rmsd(&p, &q).unwrap() + 1e-9);
        let det = s.rigid.rot.matrix().determinant();
        prop_assert!((det - 1.0).abs() < 1e-9);
    }

    #[test]
    fn weighted_kabsch_uniform_equals_unweighted(p in points(9), q in points(9), w in 0.1f64..10.0) {
        let a = kabsch::superpose(&p, &q).unwrap();
        let b = kabsch::superpose_weighted(&p, &q, &[w; 9]).unwrap();
        prop_assert!(close_rigid(&a.rigid, &b.rigid, 1e-9));
        prop_assert!((a.rmsd - b.rmsd).abs() < 1e-7);
    }

    #[test]
    fn batched_matches_scalar(rs in proptest::collection::vec(rigid(), 5), ss in proptest::collection::vec(rigid(), 5), p in points(5)) {
        let dev = Device::Cpu;
        let a = Rigids::from_scalar(&rs, &dev).unwrap();
        let b = Rigids::from_scalar(&ss, &dev).unwrap();
        let tol = 1e-3; // f32 with translations up to 50 Å
        let ab = a.compose(&b).unwrap().to_scalar().unwrap();
        let ai = a.inverse().unwrap().to_scalar().unwrap();
        let pa = points_of(&a.apply(&tensor_of(&p)).unwrap());
        let pai = points_of(&a.apply_inverse(&tensor_of(&p)).unwrap());
        for i in 0..5 {
            prop_assert!(close_rigid(&ab[i], &rs[i].compose(&ss[i]), 1e-5));
            prop_assert!(close_rigid(&ai[i], &rs[i].inverse(), 1e-5));
            prop_assert!((pa[i] - rs[i].apply(p[i])).norm() < tol);
            prop_assert!((pai[i] - rs[i].apply_inverse(p[i])).norm() < tol);
        }
        // tensor7 agrees with the scalar 7-vector and round-trips
        let t7 = a.to_tensor7().unwrap();
        let v: Vec<f32> = t7.flatten_all().unwrap().to_vec1().unwrap();
        for i in 0..5 {
            let s7 = rs[i].to_tensor7();
            for k in 0..7 {
                prop_assert!((f64::from(v[i * 7 + k]) - s7[k]).abs() < 1e-4 * s7[k].abs().max(1.0));
            }
        }
        let back = Rigids::from_tensor7(&t7).unwrap().to_scalar().unwrap();
        for i in 0..5 {
            prop_assert!(close_rigid(&back[i], &rs[i], 1e-5));
        }
        // from_three_points on the same points
        let frames: Vec<Rigid> = (0..5).map(|i| rs[i]).collect();
        let [ln, lca, lc] = crate::geometry::ideal_backbone_local();
        let n: Vec<Vec3> = frames.iter().map(|f| f.apply(ln)).collect();
        let ca: Vec<Vec3> = frames.iter().map(|f| f.apply(lca)).collect();
        let c: Vec<Vec3> = frames.iter().map(|f| f.apply(lc)).collect();
        let bf = Rigids::from_three_points(&tensor_of(&n), &tensor_of(&ca), &tensor_of(&c)).unwrap().to_scalar().unwrap();
        for i in 0..5 {
            let sf = Rigid::from_three_points(n[i], ca[i], c[i]).unwrap();
            prop_assert!(close_rigid(&bf[i], &sf, 1e-5));
        }
    }

    #[test]
    fn batched_so3_matches_scalar(ws in proptest::collection::vec(rotation_vector(3.1), 6)) {
        let t = tensor_of(&ws);
        let r = batched::so3_exp(&t).unwrap().to_scalar().unwrap();
        for (ri, w) in r.iter().zip(&ws) {
            prop_assert!((ri.matrix() - so3::exp(w).matrix()).abs().max() < 1e-5);
        }
        let logs = points_of(&batched::so3_log(&batched::so3_exp(&t).unwrap()).unwrap());
        for (l, w) in logs.iter().zip(&ws) {
            prop_assert!((l - w).norm() < 1e-3, "{l:?} vs {w:?}");
        }
    }

    #[test]
    fn batched_quaternions_match_scalar(rs in proptest::collection::vec(rotation(), 8)) {
        let b = Rotations::from_scalar(&rs, &Device::Cpu).unwrap();
        let q: Vec<f32> = b.to_quaternions().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (i, r) in rs.iter().enumerate() {
            let sq = r.to_quaternion();
            for k in 0..4 {
                prop_assert!((f64::from(q[i * 4 + k]) - sq[k]).abs() < 1e-5);
            }
        }
        let back = Rotations::from_quaternions(&Tensor::from_vec(q, (8, 4), &Device::Cpu).unwrap()).unwrap().to_scalar().unwrap();
        for (a, r) in back.iter().zip(&rs) {
            prop_assert!((a.matrix() - r.matrix()).abs().max() < 1e-5);
        }
    }
}

#[test]
fn rotation_near_pi_roundtrips() {
    for axis in [
        Vec3::x(),
        Vec3::new(1.0, 1.0, 0.0).normalize(),
        Vec3::new(-0.3, 0.5, 0.8).normalize(),
    ] {
        for angle in [std::f64::consts::PI, std::f64::consts::PI - 1e-7, 1e-9, 0.0] {
            let w = axis * angle;
            let r = so3::exp(&w);
            let l = so3::log(&r);
            // ω and −ω are the same rotation at θ = π
            let err = if angle > 3.0 {
                (l - w).norm().min((l + w).norm())
            } else {
                (l - w).norm()
            };
            assert!(err < 1e-7, "axis {axis:?} angle {angle}: {l:?}");
            assert_relative_eq!(so3::exp(&l).matrix(), r.matrix(), epsilon = 1e-12);
        }
    }
}
