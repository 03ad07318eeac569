//! TM-align a list of structure pairs in each search mode (exact, `-fast`, screen), one JSON line
//! per pair with the scores and the single-thread time of each mode. Driven by
//! `scripts/compare_tmalign.py --fast`.
//!
//! ```sh
//! cargo run --release -p protforge-eval --example tm_pairs -- pairs.tsv > ours.jsonl
//! cargo run --release -p protforge-eval --example tm_pairs -- pairs.tsv fast   # one mode only
//! ```
//!
//! `pairs.tsv`: one pair per line, `A.pdb<TAB>B.pdb` (any format `read_backbone` reads); `A`
//! is moved onto `B` (TMalign's Chain_1 / Chain_2).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit)] // a command-line example

use std::path::Path;
use std::time::Instant;

use protforge_eval::tm::{TmAlignMode, TmAlignResult, ca_trace, tm_align_with};
use protforge_se3::Vec3;
use protforge_structure::io::{ReadOptions, read_backbone};

fn read_ca(path: &str) -> Result<Vec<Vec3>, String> {
    let out = read_backbone(Path::new(path), &ReadOptions::default()).map_err(|e| format!("{path}: {e}"))?;
    Ok(ca_trace(&out.backbone))
}

fn summary(r: &TmAlignResult, seconds: f64) -> serde_json::Value {
    serde_json::json!({
        "tm_a": r.tm_a, "tm_b": r.tm_b, "rmsd": r.rmsd, "aligned": r.aligned, "seconds": seconds,
    })
}

fn run() -> Result<(), String> {
    let list = std::env::args().nth(1).ok_or("usage: tm_pairs PAIRS.tsv [exact|fast|screen|read]")?;
    let all = [("exact", TmAlignMode::Exact), ("fast", TmAlignMode::Fast), ("screen", TmAlignMode::Screen)];
    let modes_run: Vec<(&str, TmAlignMode)> = match std::env::args().nth(2) {
        None => all.to_vec(),
        Some(m) => all.iter().copied().filter(|(n, _)| *n == m).collect(),
    };
    if modes_run.is_empty() && std::env::args().nth(2).as_deref() != Some("read") {
        return Err("mode must be exact, fast, screen or read".into());
    }
    let text = std::fs::read_to_string(&list).map_err(|e| format!("{list}: {e}"))?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (a, b) = line.split_once('\t').ok_or_else(|| format!("{list}: expected A<TAB>B, got {line:?}"))?;
        let (ca_a, ca_b) = (read_ca(a)?, read_ca(b)?);
        let mut modes = serde_json::Map::new();
        for &(name, mode) in &modes_run {
            let t0 = Instant::now();
            let r = tm_align_with(&ca_a, &ca_b, mode).map_err(|e| format!("{a} {b}: {e}"))?;
            modes.insert(name.to_string(), summary(&r, t0.elapsed().as_secs_f64()));
        }
        let mut row = serde_json::json!({ "a": a, "b": b, "len_a": ca_a.len(), "len_b": ca_b.len() });
        for (k, v) in modes {
            row[k] = v;
        }
        println!("{row}");
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
