//! Builds the project's real dataset from `../shared/data` (ignored: needs that folder).
//!
//! ```text
//! PROTFORGE_SHARED_DATA=/work/shared/data PROTFORGE_DATASET_OUT=data/protforge_v1.safetensors \
//!   cargo test --release -p protforge-data --test real_dataset -- --ignored --nocapture
//! ```
//! The supported way to build it is `data/build_dataset.sh` (the CLI); this test checks the
//! library on the same inputs and prints the counts recorded in `data/README.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use protforge_data::{BuildOptions, Dataset, Split, build};
use std::collections::HashMap;
use std::path::PathBuf;

#[test]
#[ignore = "needs ../shared/data; set PROTFORGE_SHARED_DATA"]
fn build_real_dataset() {
    let Ok(shared) = std::env::var("PROTFORGE_SHARED_DATA") else {
        println!("PROTFORGE_SHARED_DATA not set; skipping");
        return;
    };
    let structures = PathBuf::from(shared).join("structures");
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var("PROTFORGE_DATASET_OUT")
        .map_or_else(|_| tmp.path().join("protforge_v1.safetensors"), PathBuf::from);
    let opts =
        BuildOptions { val_input: vec![structures.join("val.jsonl")], out: out.clone(), ..BuildOptions::default() };
    let t0 = std::time::Instant::now();
    let s = build(&[structures.join("train.jsonl")], &opts, None).unwrap();
    println!("build took {:.2} s", t0.elapsed().as_secs_f64());
    println!("{s:#?}");
    for r in &s.rejected {
        println!("rejected: {r}");
    }

    let t0 = std::time::Instant::now();
    let ds = Dataset::open(&out).unwrap();
    let n: usize = (0..ds.len()).map(|i| ds.chain(i).unwrap().len()).sum();
    println!("open + decode all chains took {:.3} s", t0.elapsed().as_secs_f64());
    assert_eq!(n, ds.n_residues());
    println!("{:#?}", ds.info());

    // Every val.jsonl chain is in validation, and no cluster straddles the split.
    let text = std::fs::read_to_string(structures.join("val.jsonl")).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap();
        let i = ds.find(id).unwrap_or_else(|| panic!("val chain {id} missing"));
        assert_eq!(ds.record(i).unwrap().split, Split::Val);
    }
    let mut side: HashMap<u32, Split> = HashMap::new();
    for r in ds.records() {
        assert_eq!(*side.entry(r.cluster).or_insert(r.split), r.split, "cluster {} straddles", r.cluster);
    }
    for r in ds.records().iter().filter(|r| r.split == Split::Val) {
        if !text.contains(&format!("\"id\":\"{}\"", r.id)) && !text.contains(&format!("\"id\": \"{}\"", r.id)) {
            println!("moved to val: {} (cluster {})", r.id, r.cluster);
        }
    }
}

/// The builder on real PDB folders (`pdb/val` backbone-only files and the bioemu raw PDBs).
#[test]
#[ignore = "needs ../shared/data; set PROTFORGE_SHARED_DATA"]
fn build_from_real_pdb_folders() {
    let Ok(shared) = std::env::var("PROTFORGE_SHARED_DATA") else {
        println!("PROTFORGE_SHARED_DATA not set; skipping");
        return;
    };
    let shared = PathBuf::from(shared);
    let tmp = tempfile::tempdir().unwrap();
    let opts = BuildOptions { out: tmp.path().join("pdb.safetensors"), ..BuildOptions::default() };
    let inputs = [shared.join("structures/pdb/val"), shared.join("raw/bioemu_benchmarks")];
    let t0 = std::time::Instant::now();
    let s = build(&inputs, &opts, None).unwrap();
    println!("build took {:.2} s", t0.elapsed().as_secs_f64());
    let mut brief = s.clone();
    brief.rejected.clear();
    println!("{brief:#?}");
    for r in &s.rejected {
        println!("rejected: {r}");
    }
    let ds = Dataset::open(&opts.out).unwrap();
    assert_eq!(ds.len(), s.kept);
    // The 148 validation PDB files are continuous chains of 40-512 residues.
    assert!(s.files_read >= 148);
}
