//! The MD data loader on a `data/md`-style folder written here: splits, skipped runs, window
//! strides and frame spacing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use protforge_se3::geometry::{HELIX_PHI, HELIX_PSI, OMEGA_TRANS, build_backbone};
use protforge_starmd::data::{LoadOptions, WindowSpec, load_md, sample_batch};
use protforge_structure::{Backbone, Trajectory};
use rand::Rng;
use std::path::Path;

/// A trajectory of `frames` frames of an `n`-residue helix whose torsions drift.
fn write_run(dir: &Path, n: usize, frames: usize, stride_ps: f64, seed: u64) {
    let mut rng = protforge_flow::rng::seeded(seed);
    let (mut phi, mut psi) = (vec![HELIX_PHI; n], vec![HELIX_PSI; n]);
    let coords: Vec<Vec<[[f32; 3]; 4]>> = (0..frames)
        .map(|_| {
            for i in 0..n {
                phi[i] += rng.random_range(-0.05..0.05);
                psi[i] += rng.random_range(-0.05..0.05);
            }
            build_backbone(n, &phi, &psi, &vec![OMEGA_TRANS; n])
                .into_iter()
                .map(|r| r.map(|p| [p.x as f32, p.y as f32, p.z as f32]))
                .collect()
        })
        .collect();
    let top = Backbone::from_coords(coords[0].clone(), (0..n).map(|i| (i % 20) as u8).collect());
    let time: Vec<f64> = (0..frames).map(|f| f as f64 * stride_ps).collect();
    std::fs::create_dir_all(dir).unwrap();
    Trajectory::new(top, coords, time)
        .unwrap()
        .write_with_topology(&dir.join("traj.xtc"), &dir.join("topology.pdb"))
        .unwrap();
    std::fs::write(dir.join("manifest.json"), format!(r#"{{"schema": "x", "stride_ps": {stride_ps}}}"#)).unwrap();
}

fn ca_dists(frame: &[[[f32; 3]; 4]]) -> Vec<f32> {
    let mut out = Vec::new();
    for a in frame {
        for b in frame {
            out.push(((0..3).map(|k| (a[1][k] - b[1][k]).powi(2)).sum::<f32>()).sqrt());
        }
    }
    out
}

#[test]
fn loads_splits_and_draws_windows_with_log_uniform_strides() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(
        root.join("proteins.tsv"),
        "# comment\nid\tpath\tlength\tsplit\nalpha\tp\t12\ttrain\nbeta\tp\t9\tval\n",
    )
    .unwrap();
    write_run(&root.join("traj/alpha"), 12, 201, 10.0, 1);
    write_run(&root.join("traj/beta"), 9, 30, 10.0, 2);
    write_run(&root.join("traj/beta_r2"), 9, 40, 10.0, 3);
    write_run(&root.join("traj/gamma"), 9, 40, 10.0, 4); // not in the table
    std::fs::create_dir_all(root.join("traj/alpha_r2")).unwrap(); // started, nothing written yet
    std::fs::create_dir_all(root.join("traj/.locks")).unwrap();
    write_run(&root.join("staged/nmr"), 9, 10, 10.0, 5);
    std::fs::write(root.join("staged/nmr/manifest.json"), r#"{"stride_ps": null}"#).unwrap();
    write_run(&root.join("staged/real"), 9, 20, 20.0, 6);

    let data = load_md(root, &LoadOptions::default()).unwrap();
    let names = |s: &protforge_starmd::data::MdSet| s.trajectories.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&data.train), ["alpha"]);
    assert_eq!(names(&data.val), ["beta", "beta_r2"]);
    assert_eq!(data.skipped.len(), 2, "{:?}", data.skipped);
    assert!(data.skipped.iter().any(|s| s.contains("alpha_r2") && s.contains("no ")));
    assert!(data.skipped.iter().any(|s| s.contains("gamma") && s.contains("proteins.tsv")));
    let alpha = &data.train.trajectories[0];
    assert_eq!((alpha.n_res(), alpha.frames.len(), alpha.protein.as_str()), (12, 201, "alpha"));
    assert!((alpha.ns() - 2.0).abs() < 1e-9);

    let staged = load_md(root, &LoadOptions { include_staged: true, ..LoadOptions::default() }).unwrap();
    assert_eq!(names(&staged.val), ["beta", "beta_r2", "staged/real"]);
    assert!(staged.skipped.iter().any(|s| s.contains("staged/nmr") && s.contains("stride_ps")));

    // Windows: 8 frames, strides log-uniform in [1, 28] saved frames (200 / 7).
    let spec = WindowSpec { frames: 8, dt_min_ns: 0.01, dt_max_ns: 10.0, crop: 10 };
    assert_eq!(alpha.stride_range(&spec), Some((1, 28)));
    assert!((data.train.max_dt_ns(&spec).unwrap() - 0.28).abs() < 1e-9);
    let mut rng = protforge_flow::rng::seeded(7);
    let mut strides = Vec::new();
    for _ in 0..300 {
        let batch = sample_batch(&data.train, &spec, 2, &mut rng).unwrap();
        for w in &batch {
            assert_eq!((w.frames.len(), w.aatype.len(), w.cond.len()), (8, 10, 10));
            assert!((1..=28).contains(&w.stride));
            assert!((w.dt_ns - w.stride as f64 * 0.01).abs() < 1e-12);
            assert!(w.start + 7 * w.stride < 201 && w.first_residue + 10 <= 12);
            // Frames are the source frames start + i·stride (rotated and centred).
            for (i, frame) in w.frames.iter().enumerate() {
                let src = &alpha.frames[w.start + i * w.stride][w.first_residue..w.first_residue + 10];
                let (a, b) = (ca_dists(frame), ca_dists(src));
                assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-3), "window frame {i} is not source frame");
                let com: f32 = frame.iter().map(|r| r[1][0]).sum::<f32>() / 10.0;
                assert!(com.abs() < 1e-4, "frame not centred");
            }
            strides.push(w.stride);
        }
    }
    // Log-uniform over [1, 29): about half the draws are below √29 ≈ 5.4.
    let small = strides.iter().filter(|&&k| k <= 5).count() as f64 / strides.len() as f64;
    assert!((0.4..0.6).contains(&small), "fraction of strides ≤ 5: {small}");
    assert!(strides.iter().any(|&k| k >= 20));
    // Seeded: the same draws again.
    let a = sample_batch(&data.train, &spec, 1, &mut protforge_flow::rng::seeded(3)).unwrap();
    let b = sample_batch(&data.train, &spec, 1, &mut protforge_flow::rng::seeded(3)).unwrap();
    assert_eq!((a[0].start, a[0].stride, &a[0].frames), (b[0].start, b[0].stride, &b[0].frames));
    // The stride cap and a too-short set.
    let capped = WindowSpec { dt_max_ns: 0.05, ..spec };
    let w = sample_batch(&data.train, &capped, 20, &mut rng).unwrap();
    assert!(w.iter().all(|w| w.stride <= 5));
    let long = WindowSpec { dt_min_ns: 0.5, ..spec };
    assert!(sample_batch(&data.train, &long, 1, &mut rng).is_err());
}

#[test]
fn missing_table_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_md(tmp.path(), &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("proteins.tsv"), "{err}");
    std::fs::write(tmp.path().join("proteins.tsv"), "id\tsplit\nx\ttest\n").unwrap();
    let err = load_md(tmp.path(), &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("split 'test'"), "{err}");
}
