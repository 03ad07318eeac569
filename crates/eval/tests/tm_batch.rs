//! Batch TM-align harness for `scripts/compare_tmalign.py` (ignored in the normal test run).
//!
//! Input (env `PROTFORGE_TM_BATCH_IN`): one pair per line, `a.xyz<TAB>b.xyz`, where each
//! `.xyz` file holds one CA per line as `x y z` (Å). Output (env `PROTFORGE_TM_BATCH_OUT`): one
//! line per pair, `tm_a tm_b rmsd aligned len_a len_b seconds`. With
//! `PROTFORGE_TM_BATCH_ALL_VS_ALL=1` the input is instead a list of `.xyz` files and the
//! all-vs-all matrix is computed with `pairwise_tm` (rayon); the wall time goes to the output.
//!
//! ```text
//! PROTFORGE_TM_BATCH_IN=pairs.tsv PROTFORGE_TM_BATCH_OUT=out.tsv \
//!   cargo test --release -p protforge-eval --test tm_batch -- --ignored
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark harness may unwrap

use std::fmt::Write as _;
use std::time::Instant;

use protforge_eval::tm::{pairwise_tm, tm_align};
use protforge_se3::Vec3;

fn read_xyz(path: &str) -> Vec<Vec3> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<f64> = l.split_whitespace().map(|t| t.parse().unwrap()).collect();
            Vec3::new(v[0], v[1], v[2])
        })
        .collect()
}

#[test]
#[ignore = "benchmark harness driven by scripts/compare_tmalign.py"]
fn tm_batch() {
    let input = std::env::var("PROTFORGE_TM_BATCH_IN").expect("set PROTFORGE_TM_BATCH_IN");
    let output = std::env::var("PROTFORGE_TM_BATCH_OUT").expect("set PROTFORGE_TM_BATCH_OUT");
    let text = std::fs::read_to_string(&input).unwrap();
    let mut out = String::new();
    if std::env::var("PROTFORGE_TM_BATCH_ALL_VS_ALL").is_ok_and(|v| v == "1") {
        let structs: Vec<Vec<Vec3>> = text.lines().filter(|l| !l.is_empty()).map(read_xyz).collect();
        let t = Instant::now();
        let m = pairwise_tm(&structs).unwrap();
        let secs = t.elapsed().as_secs_f64();
        writeln!(out, "# n={} threads={} seconds={secs:.3}", structs.len(), rayon::current_num_threads()).unwrap();
        for row in &m {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:.5}")).collect();
            writeln!(out, "{}", cells.join(" ")).unwrap();
        }
    } else {
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (a, b) = line.split_once('\t').expect("a<TAB>b");
            let (xa, xb) = (read_xyz(a), read_xyz(b));
            let t = Instant::now();
            let r = tm_align(&xa, &xb).unwrap();
            let secs = t.elapsed().as_secs_f64();
            writeln!(out, "{:.6} {:.6} {:.4} {} {} {} {secs:.5}", r.tm_a, r.tm_b, r.rmsd, r.aligned, r.len_a, r.len_b)
                .unwrap();
        }
    }
    std::fs::write(&output, out).unwrap();
}
