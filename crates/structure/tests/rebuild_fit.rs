//! Fitting and validation entry points of the CA → backbone reconstruction table
//! (`protforge_structure::rebuild`). Both read `/work/shared/data/structures/` and are
//! `#[ignore]`d; they are not part of the normal test run.
//!
//! ```text
//! # fit on the training chains (overwrites crates/structure/src/rebuild/table.bin)
//! cargo test --release -p protforge-structure --test rebuild_fit -- --ignored fit_rebuild_table
//! # validate on the 148 validation chains; REBUILD_PDB_DIR also writes true/ and rebuilt/ PDBs
//! REBUILD_PDB_DIR=/tmp/rebuild_val cargo test --release -p protforge-structure --test rebuild_fit \
//!     -- --ignored --nocapture validate_rebuild
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::{Path, PathBuf};

use protforge_se3::{Vec3, kabsch};
use protforge_structure::{Backbone, rebuild, residue, write_pdb};

const DATA: &str = "/work/shared/data/structures";

#[derive(serde::Deserialize)]
struct Chain {
    id: String,
    seq: String,
    coords: Vec<[[f32; 3]; 4]>,
}

fn read_jsonl(path: &Path) -> Vec<Chain> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::BufReader::new(f)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

fn v3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

#[test]
#[ignore = "reads /work/shared/data/structures/train.jsonl and rewrites the embedded table"]
fn fit_rebuild_table() {
    let chains = read_jsonl(&Path::new(DATA).join("train.jsonl"));
    let coords: Vec<Vec<[[f32; 3]; 4]>> = chains.into_iter().map(|c| c.coords).collect();
    let bytes = rebuild::fit_table(&coords);
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/rebuild/table.bin");
    std::fs::write(&out, &bytes).unwrap();
    println!(
        "fitted on {} chains, wrote {} bytes to {}",
        coords.len(),
        bytes.len(),
        out.display()
    );
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Mean, SD, min, max of a sample.
fn stats(x: &[f64]) -> String {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt();
    let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "mean {m:.4} sd {sd:.4} min {lo:.3} max {hi:.3} (n {})",
        x.len()
    )
}

/// Bond lengths N–CA, CA–C, C–N (peptide, CA–CA ≤ 4.2 Å), C=O (Å) and angle N–CA–C (degrees).
fn geometry(bb: &[[[f32; 3]; 4]]) -> [Vec<f64>; 5] {
    let mut g: [Vec<f64>; 5] = Default::default();
    for (i, r) in bb.iter().enumerate() {
        let [n, ca, c, o] = r.map(v3);
        g[0].push((ca - n).norm());
        g[1].push((c - ca).norm());
        g[3].push((o - c).norm());
        g[4].push((n - ca).angle(&(c - ca)).to_degrees());
        if let Some(next) = bb.get(i + 1)
            && (v3(next[1]) - ca).norm() <= rebuild::MAX_CA_CA
        {
            g[2].push((v3(next[0]) - c).norm());
        }
    }
    g
}

#[test]
#[ignore = "reads /work/shared/data/structures/val.jsonl"]
fn validate_rebuild() {
    let chains = read_jsonl(&Path::new(DATA).join("val.jsonl"));
    let pdb_dir = std::env::var_os("REBUILD_PDB_DIR").map(PathBuf::from);
    if let Some(d) = &pdb_dir {
        std::fs::create_dir_all(d.join("true")).unwrap();
        std::fs::create_dir_all(d.join("rebuilt")).unwrap();
    }
    let mut rmsd = Vec::new();
    let mut per_atom_sq = [0.0f64; 4];
    let mut n_res = 0usize;
    let mut geo_true: [Vec<f64>; 5] = Default::default();
    let mut geo_rebuilt: [Vec<f64>; 5] = Default::default();
    let t0 = std::time::Instant::now();
    let mut rebuilt_all = Vec::new();
    for chain in &chains {
        let ca: Vec<[f32; 3]> = chain.coords.iter().map(|r| r[1]).collect();
        rebuilt_all.push(rebuild::rebuild_backbone(&ca).unwrap());
    }
    let elapsed = t0.elapsed();
    for (k, (chain, rebuilt)) in chains.iter().zip(&rebuilt_all).enumerate() {
        let mobile: Vec<Vec3> = rebuilt.iter().flat_map(|r| r.map(v3)).collect();
        let target: Vec<Vec3> = chain.coords.iter().flat_map(|r| r.map(v3)).collect();
        rmsd.push(kabsch::superpose(&mobile, &target).unwrap().rmsd);
        for (r, t) in rebuilt.iter().zip(&chain.coords) {
            for a in 0..4 {
                per_atom_sq[a] += (v3(r[a]) - v3(t[a])).norm_squared();
            }
        }
        n_res += rebuilt.len();
        for (acc, g) in geo_true.iter_mut().zip(geometry(&chain.coords)) {
            acc.extend(g);
        }
        for (acc, g) in geo_rebuilt.iter_mut().zip(geometry(rebuilt)) {
            acc.extend(g);
        }
        if let Some(d) = &pdb_dir {
            let name = format!("{k:03}.pdb");
            let aatype: Vec<u8> = chain.seq.chars().map(residue::aatype_from_one).collect();
            write_pdb(
                &d.join("true").join(&name),
                &Backbone::from_coords(chain.coords.clone(), aatype.clone()),
            )
            .unwrap();
            write_pdb(
                &d.join("rebuilt").join(&name),
                &Backbone::from_coords(rebuilt.clone(), aatype.clone()),
            )
            .unwrap();
        }
        if rmsd[k] > 0.6 {
            println!(
                "chain {} ({} res): rmsd {:.3}",
                chain.id,
                rebuilt.len(),
                rmsd[k]
            );
        }
    }
    let mut sorted = rmsd.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = rmsd.iter().sum::<f64>() / rmsd.len() as f64;
    println!(
        "chains {} residues {} rebuild time {:.3} s",
        chains.len(),
        n_res,
        elapsed.as_secs_f64()
    );
    println!(
        "global backbone RMSD (N,CA,C,O; Kabsch per chain): mean {mean:.3} median {:.3} p95 {:.3} max {:.3}; chains <= 0.6: {}",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.95),
        sorted[sorted.len() - 1],
        rmsd.iter().filter(|&&r| r <= 0.6).count()
    );
    let names = ["N", "CA", "C", "O"];
    for a in 0..4 {
        println!(
            "  per-atom RMS deviation (no superposition) {}: {:.3}",
            names[a],
            (per_atom_sq[a] / n_res as f64).sqrt()
        );
    }
    let labels = ["N-CA (A)", "CA-C (A)", "C-N (A)", "C=O (A)", "N-CA-C (deg)"];
    for i in 0..5 {
        println!("  {:<13} true    {}", labels[i], stats(&geo_true[i]));
        println!("  {:<13} rebuilt {}", labels[i], stats(&geo_rebuilt[i]));
    }
    assert!(mean <= 0.6, "mean RMSD {mean}");
}
