//! End-to-end tests of `protforge train tokenizer` and `protforge tokenize encode|decode` with a
//! tiny tokenizer trained for a few steps on the committed example backbones (no shipped
//! weights, nothing from ../shared).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/backbones")
}

fn protforge() -> Command {
    let mut cmd = Command::cargo_bin("protforge").expect("binary built by cargo test");
    cmd.arg("--no-progress");
    cmd
}

fn run_ok(cmd: &mut Command) -> std::process::Output {
    let output = cmd.output().expect("runs");
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Exit 1 with one stderr line containing every needle, and no panic.
fn assert_one_line_error(cmd: &mut Command, needles: &[&str]) {
    let output = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "error lacks '{n}': {stderr}");
    }
    assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "{stderr}");
}

/// Build a dataset from the examples and train a tiny tokenizer for 4 steps (2 + resume);
/// returns the weights folder.
fn train_tiny(d: &Path) -> PathBuf {
    let data = d.join("tiny.safetensors");
    let val_dir = d.join("val");
    std::fs::create_dir(&val_dir).unwrap();
    std::fs::copy(examples().join("HHH_rd1_0473_A.pdb"), val_dir.join("v.pdb")).unwrap();
    run_ok(protforge().args(["-q", "data", "build", "--input"]).arg(examples()).arg("--val-input").arg(&val_dir).arg("--out").arg(&data));

    let printed = run_ok(protforge().args(["train", "tokenizer", "--print-config"]));
    let default: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(default["model"]["quantizer"]["bits"], 13);
    let mut cfg = serde_json::to_value(protforge_tokenizer::train::TrainConfig::tiny()).unwrap();
    cfg["steps"] = serde_json::json!(4);
    cfg["val_every"] = serde_json::json!(2);
    cfg["lr"] = serde_json::json!({"kind": "constant", "lr": 0.001});
    let cfg_path = d.join("tiny.json");
    std::fs::write(&cfg_path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let run = d.join("run");
    let train = |extra: &[&str]| {
        run_ok(protforge().args(["-q", "train", "tokenizer", "--config"]).arg(&cfg_path).arg("--data").arg(&data).arg("--out").arg(&run).args(extra));
    };
    train(&["--max-steps", "2"]);
    assert_one_line_error(
        protforge().args(["train", "tokenizer", "--config"]).arg(&cfg_path).arg("--data").arg(&data).arg("--out").arg(&run),
        &["run", "--resume"],
    );
    train(&["--resume"]);
    let log = std::fs::read_to_string(run.join("train.csv")).unwrap();
    assert_eq!(log.lines().count(), 5, "{log}");
    let val = std::fs::read_to_string(run.join("val.csv")).unwrap();
    assert!(val.starts_with("step,val_loss,fape,distogram,ca_rmsd,code_usage,perplexity"), "{val}");
    run.join("best")
}

#[test]
fn train_encode_decode_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let weights = train_tiny(d);

    // Encode the example folder; --json gives tokens and big-endian bits per residue.
    let fasta = d.join("tokens.fasta");
    let out = run_ok(protforge().args(["-q", "--json", "--weights"]).arg(&weights).args(["tokenize", "encode"]).arg(examples()).arg("-o").arg(&fasta));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let recs = report["records"].as_array().unwrap();
    assert_eq!(recs.len(), 5);
    assert_eq!(recs[0]["id"], "1a8o_A_A");
    for r in recs {
        let tokens = r["tokens"].as_array().unwrap();
        let bits = r["bits"].as_array().unwrap();
        assert_eq!(tokens.len(), r["length"].as_u64().unwrap() as usize);
        for (t, b) in tokens.iter().zip(bits) {
            let b = b.as_str().unwrap();
            assert_eq!(b.len(), 13);
            assert_eq!(u64::from_str_radix(b, 2).unwrap(), t.as_u64().unwrap(), "bit 0 is the most significant");
        }
    }
    let text = std::fs::read_to_string(&fasta).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0], ">1a8o_A_A");
    assert!(lines[1].split(',').all(|t| t.len() == 4 && t.bytes().all(|c| c.is_ascii_digit())), "{}", lines[1]);
    assert_eq!(lines[1].split(',').count(), 70);

    // Batching does not change the tokens; existing output needs --force.
    let again = d.join("again.fasta");
    run_ok(protforge().args(["-q", "--weights"]).arg(&weights).args(["tokenize", "encode", "--batch-size", "1"]).arg(examples()).arg("-o").arg(&again));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
    assert_one_line_error(
        protforge().args(["--weights"]).arg(&weights).args(["tokenize", "encode"]).arg(examples().join("1a8o_A.pdb")).arg("-o").arg(&fasta),
        &["tokens.fasta", "--force"],
    );
    // --chain selects one chain; a missing chain is a one-line error naming the file.
    let one = d.join("one.fasta");
    run_ok(protforge().args(["-q", "--weights"]).arg(&weights).args(["tokenize", "encode", "--chain", "A"]).arg(examples().join("barnase_A.pdb")).arg("-o").arg(&one));
    assert!(std::fs::read_to_string(&one).unwrap().starts_with(">barnase_A_A\n"));
    assert_one_line_error(
        protforge().args(["--weights"]).arg(&weights).args(["tokenize", "encode", "--chain", "Z"]).arg(examples().join("barnase_A.pdb")).arg("-o").arg(d.join("z.fasta")),
        &["barnase_A.pdb"],
    );

    // Decode: one PDB per record with N, CA, C, O, and a manifest.
    let decoded = d.join("decoded");
    run_ok(protforge().args(["-q", "--weights"]).arg(&weights).args(["tokenize", "decode"]).arg(&fasta).arg("-o").arg(&decoded));
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(decoded.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["records"].as_array().unwrap().len(), 5);
    assert_eq!(manifest["weights_sha256"].as_str().unwrap().len(), 64);
    let bb = protforge_structure::read_backbone(&decoded.join("1a8o_A_A.pdb"), &Default::default()).unwrap().backbone;
    assert_eq!(bb.len(), 70);
    assert!(bb.is_full());
    assert_one_line_error(
        protforge().args(["--weights"]).arg(&weights).args(["tokenize", "decode"]).arg(&fasta).arg("-o").arg(&decoded),
        &["already exists", "--force"],
    );

    // Malformed token text: one line naming the file, the record and the position.
    let bad_cases: [(&str, &[&str]); 3] = [
        (">ok\n0001\n>bad_rec\n0001,00x1,0002\n", &["bad.fasta", "line 4", "record 'bad_rec'", "token 2", "not a number"]),
        (">big\n0001,0002,8192\n", &["record 'big'", "token 3", "8192", "out of range"]),
        (">empty\n>next\n0001\n", &["record 'empty'", "empty"]),
    ];
    for (text, needles) in bad_cases {
        let bad = d.join("bad.fasta");
        std::fs::write(&bad, text).unwrap();
        assert_one_line_error(
            protforge().args(["--weights"]).arg(&weights).args(["tokenize", "decode"]).arg(&bad).arg("-o").arg(d.join("bad_out")),
            needles,
        );
    }
    // Without weights the error names the places it looked.
    assert_one_line_error(
        protforge().args(["--weights"]).arg(d.join("nowhere")).args(["tokenize", "decode"]).arg(&fasta).arg("-o").arg(d.join("x")),
        &["nowhere", "model.safetensors"],
    );
}

/// The shipped weights (`weights/tokenizer/`, found without `--weights`) encode the committed
/// examples into valid DPLM-2 token text and decode them into full backbones of the same
/// lengths; the tokens do not change under a rigid motion of the input (the encoder is
/// SE(3)-invariant).
#[test]
fn shipped_weights_encode_and_decode_the_examples() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights/tokenizer/model.safetensors");
    assert!(shipped.is_file(), "weights/tokenizer/ is missing: the shipped tokenizer weights must be committed");
    let d = tempfile::tempdir().unwrap();
    let fasta = d.path().join("tokens.fasta");
    let input = examples().join("barnase_A.pdb");
    run_ok(protforge().args(["-q", "tokenize", "encode"]).arg(&input).arg("-o").arg(&fasta));
    let records = protforge_tokenizer::read_fasta(&fasta, 8192).unwrap();
    assert_eq!(records.len(), 1);
    let bb = protforge_structure::read_backbone(&input, &Default::default()).unwrap().backbone;
    assert_eq!(records[0].tokens.len(), bb.len());
    assert!(records[0].tokens.iter().all(|&t| t < 8192));

    // The same chain moved rigidly gives the same tokens.
    let moved = d.path().join("moved.pdb");
    let text = std::fs::read_to_string(&input).unwrap();
    let shifted: String = text
        .lines()
        .map(|l| {
            if (l.starts_with("ATOM") || l.starts_with("HETATM")) && l.len() >= 54 {
                let c = |a: usize| l[a..a + 8].trim().parse::<f64>().unwrap();
                // A 90° rotation about z plus a translation.
                let (x, y, z) = (c(30), c(38), c(46));
                format!("{}{:8.3}{:8.3}{:8.3}{}\n", &l[..30], -y + 12.5, x - 40.0, z + 7.25, &l[54..])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&moved, shifted).unwrap();
    let moved_fasta = d.path().join("moved.fasta");
    run_ok(protforge().args(["-q", "tokenize", "encode"]).arg(&moved).arg("-o").arg(&moved_fasta));
    let moved_records = protforge_tokenizer::read_fasta(&moved_fasta, 8192).unwrap();
    let same = records[0].tokens.iter().zip(&moved_records[0].tokens).filter(|(a, b)| a == b).count();
    assert!(same as f64 >= 0.99 * bb.len() as f64, "{same} of {} tokens unchanged by a rigid motion", bb.len());

    let out = d.path().join("decoded");
    run_ok(protforge().args(["-q", "tokenize", "decode"]).arg(&fasta).arg("-o").arg(&out));
    let decoded = std::fs::read_dir(&out).unwrap().filter_map(Result::ok).find(|e| e.path().extension().is_some_and(|x| x == "pdb")).unwrap();
    let dec = protforge_structure::read_backbone(&decoded.path(), &Default::default()).unwrap().backbone;
    assert_eq!(dec.len(), bb.len());
    assert!(dec.is_full());
}
