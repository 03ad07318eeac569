//! End-to-end tests of `protforge assemble` and `protforge train weaver(-dpo)` with tiny random
//! models written to a temporary folder (no shipped weights, nothing from ../shared).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/backbones")
}

fn protforge() -> Command {
    let mut cmd = Command::cargo_bin("protforge").expect("binary built by cargo test");
    cmd.arg("--no-progress");
    cmd
}

fn save(dir: &Path, cfg: &impl serde::Serialize, varmap: &VarMap) {
    let tensors: HashMap<String, Tensor> = varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    protforge_nn::Checkpoint::new(dir).save(cfg, &tensors).unwrap();
}

/// A tiny random ProteinWeaver model (max length 96 unless changed).
fn weaver_weights(dir: &Path, max_len: usize) {
    let cfg = protforge_weaver::WeaverConfig { max_len, ..protforge_weaver::WeaverConfig::tiny() };
    let varmap = VarMap::new();
    protforge_weaver::WeaverModel::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
    protforge_nn::init::init_seeded(&varmap, 3).unwrap();
    save(dir, &cfg, &varmap);
}

/// A tiny random PAR model.
fn par_weights(dir: &Path) {
    let cfg = protforge_par::ParConfig::tiny();
    let varmap = VarMap::new();
    protforge_par::model::ParModel::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
    protforge_nn::init::init_seeded(&varmap, 4).unwrap();
    save(dir, &cfg, &varmap);
}

/// CA coordinates (Å) of the ATOM records of a PDB text.
fn ca_coords(pdb: &str) -> Vec<[f64; 3]> {
    pdb.lines()
        .filter(|l| l.starts_with("ATOM") && l.get(12..16) == Some(" CA "))
        .map(|l| [30, 38, 46].map(|c| l[c..c + 8].trim().parse::<f64>().unwrap()))
        .collect()
}

/// Pairwise CA distances of residues `range` (0-based) of a trace.
fn distances(ca: &[[f64; 3]], range: std::ops::Range<usize>) -> Vec<f64> {
    let idx: Vec<usize> = range.collect();
    idx.iter()
        .flat_map(|&i| idx.iter().map(move |&j| (i, j)))
        .map(|(i, j)| (0..3).map(|k| (ca[i][k] - ca[j][k]).powi(2)).sum::<f64>().sqrt())
        .collect()
}

fn one_line_error(cmd: &mut Command, needle: &str) -> String {
    let output = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn assemble_from_files_keeps_domains_and_writes_the_manifest() {
    let d = tempfile::tempdir().unwrap();
    let w = d.path().join("weaver");
    weaver_weights(&w, 256);
    let out = d.path().join("out");
    let run = |out: &Path, batch: &str| {
        protforge()
            .args(["assemble", "--steps", "3", "--num-samples", "3", "--batch-size", batch, "--linker", "6", "--seed", "5"])
            .arg("--weights")
            .arg(&w)
            .arg("--domains")
            .arg(examples().join("1a8o_A.pdb"))
            .arg(examples().join("HHH_rd1_0473_A.pdb"))
            .arg("--out")
            .arg(out)
            .assert()
            .success();
    };
    run(&out, "2");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let samples = manifest["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    let s0 = &samples[0];
    let (l1, l2) = (manifest["domain_lengths"][0].as_u64().unwrap() as usize, manifest["domain_lengths"][1].as_u64().unwrap() as usize);
    assert_eq!(s0["length"].as_u64().unwrap() as usize, l1 + 6 + l2);
    assert_eq!(s0["domains"][0]["residues"]["start"], 1);
    assert_eq!(s0["domains"][0]["residues"]["end"].as_u64().unwrap() as usize, l1);
    assert_eq!(s0["linkers"][0]["start"].as_u64().unwrap() as usize, l1 + 1);
    assert_eq!(s0["linkers"][0]["end"].as_u64().unwrap() as usize, l1 + 6);
    assert_eq!(s0["domains"][1]["residues"]["start"].as_u64().unwrap() as usize, l1 + 7);
    assert!(s0["score"]["total"].is_number());
    // Each output domain is the input domain moved rigidly: its internal distances are kept.
    let pdb = std::fs::read_to_string(out.join(s0["file"].as_str().unwrap())).unwrap();
    let ca = ca_coords(&pdb);
    assert_eq!(ca.len(), l1 + 6 + l2);
    let native = ca_coords(&std::fs::read_to_string(examples().join("1a8o_A.pdb")).unwrap());
    let err = distances(&ca, 0..l1).iter().zip(distances(&native, 0..l1)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(err < 0.01, "domain 1 deformed by {err} Å");
    // The same seed gives the same files, whatever the batching.
    let again = d.path().join("again");
    run(&again, "3");
    assert_eq!(std::fs::read(out.join("assembly_2.pdb")).unwrap(), std::fs::read(again.join("assembly_2.pdb")).unwrap());
    // Existing files are not overwritten without --force.
    one_line_error(
        protforge().args(["assemble", "--steps", "1"]).arg("--weights").arg(&w).arg("--domains").arg(examples().join("1a8o_A.pdb")).arg(examples().join("1a8o_A.pdb")).arg("--out").arg(&out),
        "already exists",
    );
}

#[test]
fn assemble_from_lengths_generates_domains_with_par() {
    let d = tempfile::tempdir().unwrap();
    let (w, p) = (d.path().join("weaver"), d.path().join("par"));
    weaver_weights(&w, 96);
    par_weights(&p);
    let out = d.path().join("out");
    protforge()
        .args(["assemble", "--domain-lengths", "20,24", "--linker", "3-5", "--steps", "2", "--num-samples", "2"])
        .arg("--weights")
        .arg(&w)
        .arg("--par-weights")
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["mode"], "lengths");
    for s in manifest["samples"].as_array().unwrap() {
        let len = s["length"].as_u64().unwrap();
        assert!((47..=49).contains(&len), "{len}");
        let file = s["domains"][1]["file"].as_str().unwrap();
        assert!(out.join(file).is_file());
        assert_eq!(ca_coords(&std::fs::read_to_string(out.join(s["file"].as_str().unwrap())).unwrap()).len() as u64, len);
    }
}

#[test]
fn assemble_bad_input_gives_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    let w = d.path().join("weaver");
    weaver_weights(&w, 96);
    let water = d.path().join("water.pdb");
    std::fs::write(&water, "HETATM    1  O   HOH A   1       1.000   2.000   3.000  1.00  0.00           O\nEND\n").unwrap();
    let base = || {
        let mut c = protforge();
        c.arg("assemble").arg("--weights").arg(&w).arg("--out").arg(d.path().join("o"));
        c
    };
    let barnase = examples().join("barnase_A.pdb");
    let stderr = one_line_error(base().arg("--domains").arg(&water).arg(&barnase), "water.pdb");
    assert!(stderr.contains("no protein"), "{stderr}");
    one_line_error(base().arg("--domains").arg(&barnase).arg(&barnase).args(["--linker", "20-10"]), "exceeds its maximum");
    one_line_error(base().arg("--domains").arg(&barnase).arg(&barnase).args(["--linker", "ten"]), "--linker");
    one_line_error(base().arg("--domains").arg(&barnase).arg(&barnase), "exceeds the model's maximum of 96");
    one_line_error(base().arg("--domains").arg(&barnase), "at least two");
    one_line_error(base().args(["--domain-lengths", "80"]), "--domain-lengths");
    one_line_error(base().arg("--domains").arg(d.path().join("missing.pdb")).arg(&barnase), "missing.pdb");
}

#[test]
fn train_commands_print_their_configs() {
    let out = protforge().args(["train", "weaver", "--print-config"]).output().unwrap();
    assert!(out.status.success());
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["model"]["max_len"], 512);
    let out = protforge().args(["train", "weaver-dpo", "--print-config", "--base", "somewhere"]).output().unwrap();
    assert!(out.status.success());
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["base"], "somewhere");
    assert!(cfg["beta"].as_f64().unwrap() > 0.0);
}
