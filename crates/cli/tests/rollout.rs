//! End-to-end tests of `protforge rollout` and `protforge train starmd` with a tiny random
//! STAR-MD model built here (no shipped weights are needed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use protforge_starmd::train::TrainConfig;
use protforge_starmd::{StarMd, StarMdConfig};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn init_pdb() -> PathBuf {
    root().join("examples/backbones/HHH_rd1_0473_A.pdb")
}

fn protforge() -> Command {
    let mut cmd = Command::cargo_bin("protforge").expect("binary built by cargo test");
    cmd.arg("--no-progress");
    cmd
}

/// A tiny random model (strides 0.01–1 ns) saved as a weights folder.
fn tiny_weights(dir: &Path) -> PathBuf {
    let varmap = VarMap::new();
    let cfg = StarMdConfig::tiny();
    StarMd::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
    protforge_starmd::model::init_weights(&varmap, 1).unwrap();
    let tensors = protforge_nn::train::var_tensors(&protforge_nn::init::named_vars(&varmap));
    let out = dir.join("weights");
    protforge_nn::Checkpoint::new(&out).save(&cfg, &tensors).unwrap();
    out
}

/// Exit 1 with one stderr line containing every needle.
fn assert_one_line_error(cmd: &mut Command, needles: &[&str]) {
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "error lacks '{n}': {stderr}");
    }
}

fn rollout(weights: &Path) -> Command {
    let mut cmd = protforge();
    cmd.arg("--weights").arg(weights).arg("rollout").arg("--init").arg(init_pdb());
    cmd
}

#[test]
fn rollout_writes_trajectory_topology_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tiny_weights(tmp.path());
    let out = tmp.path().join("run/traj.xtc");
    let args = ["--frames", "3", "--dt-ns", "0.2", "--steps", "3", "--seed", "5", "--out"];
    rollout(&weights).args(args).arg(&out).assert().success();
    let top = tmp.path().join("run/traj_topology.pdb");
    assert!(out.is_file() && top.is_file());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("run/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["frames_written"], 4);
    assert_eq!(manifest["residues"], 43);
    assert_eq!(manifest["steps"], 3);
    assert_eq!(manifest["context_frames"], 3, "default: window_frames − 1 of the tiny config");
    assert_eq!(manifest["kv_cache_bytes"].as_array().unwrap().len(), 3);
    let traj = protforge_structure::Trajectory::read(&out, Some(&top)).unwrap();
    assert_eq!(traj.len(), 4);
    assert!((traj.time_ps[3] - 600.0).abs() < 1e-3);
    // Frame 0 is the initial structure.
    let init = protforge_structure::read_backbone(&init_pdb(), &Default::default()).unwrap().backbone;
    for (a, b) in traj.frames[0].iter().zip(&init.coords) {
        for k in 0..3 {
            assert!((a[1][k] - b[1][k]).abs() < 0.01);
        }
    }
    // Same seed, same bytes; existing outputs need --force.
    let first = std::fs::read(&out).unwrap();
    assert_one_line_error(rollout(&weights).args(args).arg(&out), &["already exists"]);
    rollout(&weights).args(args).arg(&out).arg("--force").assert().success();
    assert_eq!(first, std::fs::read(&out).unwrap());
    // Replicas as multi-model PDB files, full-history context.
    let pdb = tmp.path().join("reps/traj.pdb");
    rollout(&weights)
        .args([
            "--frames",
            "2",
            "--dt-ns",
            "0.05",
            "--steps",
            "2",
            "--replicas",
            "2",
            "--context-frames",
            "all",
            "--out",
        ])
        .arg(&pdb)
        .assert()
        .success();
    for r in 0..2 {
        let t = protforge_structure::Trajectory::read(&tmp.path().join(format!("reps/traj_r{r}.pdb")), None).unwrap();
        assert_eq!(t.len(), 3);
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("reps/manifest.json")).unwrap()).unwrap();
    assert!(manifest["context_frames"].is_null());
    let bytes: Vec<u64> = manifest["kv_cache_bytes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(bytes[1], 3 * bytes[0] / 2, "full-history cache grows linearly: {bytes:?}");
}

#[test]
fn rollout_rejects_bad_inputs_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tiny_weights(tmp.path());
    let out = tmp.path().join("t.xtc");
    assert_one_line_error(
        rollout(&weights).args(["--frames", "2", "--dt-ns", "5", "--out"]).arg(&out),
        &["--dt-ns 5", "0.01", "1 ns"],
    );
    // `rollout --help` points at `inspect` for the trained range.
    let shown = protforge().arg("inspect").arg(&weights).output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("trained strides 0.01–1 ns"), "{text}");
    assert_one_line_error(
        rollout(&weights).args(["--frames", "2", "--dt-ns", "0.1", "--out"]).arg(tmp.path().join("t.txt")),
        &["t.txt", "format"],
    );
    // A gap: drop residue 20 of the example.
    let text = std::fs::read_to_string(init_pdb()).unwrap();
    let gapped: String = text
        .lines()
        .filter(|l| !(l.starts_with("ATOM") && l.get(22..26).map(str::trim) == Some("20")))
        .map(|l| format!("{l}\n"))
        .collect();
    let gap = tmp.path().join("gap.pdb");
    std::fs::write(&gap, gapped).unwrap();
    let mut cmd = protforge();
    cmd.arg("--weights")
        .arg(&weights)
        .arg("rollout")
        .arg("--init")
        .arg(&gap)
        .args(["--frames", "2", "--dt-ns", "0.1", "--out"])
        .arg(&out);
    assert_one_line_error(&mut cmd, &["gap.pdb", "chain break", "19", "21"]);
    // Several chains.
    let multi = root().join("tests/fixtures/altloc_icode_multichain_biopython.pdb");
    let mut cmd = protforge();
    cmd.arg("--weights")
        .arg(&weights)
        .arg("rollout")
        .arg("--init")
        .arg(&multi)
        .args(["--frames", "2", "--dt-ns", "0.1", "--out"])
        .arg(&out);
    assert_one_line_error(&mut cmd, &["altloc_icode_multichain_biopython.pdb", "chains"]);
    assert!(!out.exists());
}

#[test]
fn train_starmd_runs_and_resumes_on_md_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tiny_weights(tmp.path());
    // MD data made of rollouts: 9 frames 0.05 ns apart per protein.
    let data = tmp.path().join("md");
    for (id, seed) in [("prot_a", "1"), ("prot_b", "2")] {
        let dir = data.join("traj").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        rollout(&weights)
            .args(["--frames", "8", "--dt-ns", "0.05", "--steps", "2", "--seed", seed, "--out"])
            .arg(dir.join("traj.xtc"))
            .assert()
            .success();
        std::fs::rename(dir.join("traj_topology.pdb"), dir.join("topology.pdb")).unwrap();
        std::fs::write(dir.join("manifest.json"), r#"{"stride_ps": 50.0}"#).unwrap();
    }
    std::fs::create_dir_all(data.join("traj/prot_a_r2")).unwrap(); // a run that has not started yet
    std::fs::write(data.join("proteins.tsv"), "# test\nid\tpath\tsplit\nprot_a\tx\ttrain\nprot_b\tx\tval\n").unwrap();
    let cfg = tmp.path().join("cfg.json");
    std::fs::write(&cfg, serde_json::to_string(&TrainConfig::tiny()).unwrap()).unwrap();
    let out = tmp.path().join("run");
    let train = |extra: &[&str]| {
        let mut cmd = protforge();
        cmd.args(["train", "starmd", "--config"]).arg(&cfg).arg("--data").arg(&data).arg("--out").arg(&out).args(extra);
        cmd
    };
    train(&["--max-steps", "2"]).assert().success();
    assert_one_line_error(&mut train(&["--max-steps", "1"]), &["already exists", "--resume"]);
    train(&["--resume"]).assert().success();
    let csv = std::fs::read_to_string(out.join("train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(out.join("best/model.safetensors").is_file() && out.join("checkpoint/state.json").is_file());
    // The trained weights roll out.
    rollout(&out.join("best"))
        .args(["--frames", "1", "--dt-ns", "0.1", "--steps", "2", "--out"])
        .arg(tmp.path().join("after.pdb"))
        .assert()
        .success();
    // The data allowed strides up to 0.1 ns (9 frames 50 ps apart, windows of 4), below the
    // config's 1 ns: the exported weights accept only what they were trained on.
    assert_one_line_error(
        rollout(&out.join("best")).args(["--frames", "1", "--dt-ns", "0.2", "--out"]).arg(tmp.path().join("x.pdb")),
        &["--dt-ns 0.2", "0.01–0.1 ns"],
    );
    let printed = protforge().args(["train", "starmd", "--print-config"]).output().unwrap();
    let cfg: TrainConfig = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(cfg, TrainConfig::cpu_small());
}
