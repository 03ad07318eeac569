//! The figures the tokenizer issue asks for, on one split of a dataset file: reconstruction
//! (encode → decode) CA RMSD after superposition, TM-score and lDDT-CA (mean and median,
//! overall and per length bin), codebook usage and perplexity, token invariance under random
//! rigid motions, and encode/decode speed at lengths 100 and 300 with peak memory.
//!
//! ```sh
//! cargo run --release -p protforge-tokenizer --example tokenizer_reconstruction -- \
//!     weights/tokenizer data/protforge_v1.safetensors [val|train] [MAX_CHAINS] > recon.json
//! ```
//!
//! Whole chains are encoded (no crops), in length-sorted batches of up to 8. TM-score is the
//! sequence-dependent score of the decoded CA trace against the input, normalised by the input
//! length; lDDT-CA uses the 15 Å inclusion radius and the 0.5/1/2/4 Å thresholds. Residues
//! without N, CA and C are left out of every metric.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit, clippy::unwrap_used, clippy::expect_used)] // a command-line example

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use protforge_data::{Dataset, Split};
use protforge_nn::Checkpoint;
use protforge_se3::{Rigid, Rotation, Vec3, kabsch};
use protforge_structure::{Backbone, atom};
use protforge_tokenizer::{Tokenizer, TokenizerConfig, length_batches};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BINS: [(usize, usize); 4] = [(0, 100), (100, 200), (200, 300), (300, usize::MAX)];

fn ca(bb: &Backbone, keep: &[usize]) -> Vec<Vec3> {
    keep.iter().map(|&i| bb.coords[i][atom::CA]).map(|p| Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))).collect()
}

/// lDDT-CA (Mariani et al. 2013): per residue, the fraction of preserved distances to residues
/// within 15 Å in the reference, over thresholds 0.5, 1, 2, 4 Å; averaged over residues.
fn lddt_ca(pred: &[Vec3], truth: &[Vec3]) -> f64 {
    let n = truth.len();
    let mut total = 0.0;
    let mut counted = 0usize;
    for i in 0..n {
        let (mut kept, mut pairs) = (0.0, 0usize);
        for j in (0..n).filter(|&j| j != i) {
            let d_true = (truth[i] - truth[j]).norm();
            if d_true < 15.0 {
                let err = ((pred[i] - pred[j]).norm() - d_true).abs();
                kept += [0.5, 1.0, 2.0, 4.0].iter().filter(|&&t| err < t).count() as f64 / 4.0;
                pairs += 1;
            }
        }
        if pairs > 0 {
            total += kept / pairs as f64;
            counted += 1;
        }
    }
    total / counted.max(1) as f64
}

fn summary(values: &[f64]) -> serde_json::Value {
    if values.is_empty() {
        return json!({"n": 0});
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { 0.5 * (v[v.len() / 2 - 1] + v[v.len() / 2]) };
    json!({"n": v.len(), "mean": mean, "median": median})
}

fn moved(bb: &Backbone, g: &Rigid) -> Backbone {
    let mut out = bb.clone();
    for r in &mut out.coords {
        for p in r.iter_mut() {
            let q = g.apply(Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2])));
            *p = [q.x as f32, q.y as f32, q.z as f32];
        }
    }
    out
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run_batched<T: Clone, U>(items: &[T], lengths: &[usize], mut f: impl FnMut(&[T]) -> Vec<U>) -> Vec<U> {
    let mut out: Vec<Option<U>> = (0..items.len()).map(|_| None).collect();
    for idx in length_batches(lengths, 8, 8 * 256 * 256) {
        let batch: Vec<T> = idx.iter().map(|&i| items[i].clone()).collect();
        for (i, r) in idx.into_iter().zip(f(&batch)) {
            out[i] = Some(r);
        }
    }
    out.into_iter().map(|o| o.expect("every index is in one batch")).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(weights), Some(data)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: tokenizer_reconstruction WEIGHTS_DIR DATASET [val|train] [MAX_CHAINS]");
        std::process::exit(2);
    };
    let split = if args.get(3).map(String::as_str) == Some("train") { Split::Train } else { Split::Val };
    let max_chains: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
    let device = Device::Cpu;
    let ck = Checkpoint::new(weights);
    let cfg: TokenizerConfig = ck.load_config().unwrap();
    let model = Tokenizer::new(&cfg, VarBuilder::from_tensors(ck.load_tensors(&device).unwrap(), DType::F32, &device)).unwrap();
    let ds = Dataset::open(data).unwrap();
    let chains: Vec<Backbone> = ds.split_indices(split).into_iter().take(max_chains).filter_map(|i| ds.chain(i)).collect();
    let lengths: Vec<usize> = chains.iter().map(Backbone::len).collect();
    eprintln!("{} chains, {} residues", chains.len(), lengths.iter().sum::<usize>());

    let t0 = Instant::now();
    let tokens = run_batched(&chains, &lengths, |b| model.tokenize(b).unwrap());
    let t_enc = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let decoded = run_batched(&tokens, &lengths, |b| model.detokenize(b).unwrap());
    let t_dec = t0.elapsed().as_secs_f64();

    let mut rmsd = Vec::new();
    let mut tm = Vec::new();
    let mut lddt = Vec::new();
    let mut per_bin: Vec<[Vec<f64>; 3]> = BINS.iter().map(|_| [Vec::new(), Vec::new(), Vec::new()]).collect();
    let mut counts = vec![0u64; cfg.n_codes()];
    for ((bb, dec), toks) in chains.iter().zip(&decoded).zip(&tokens) {
        let keep: Vec<usize> = (0..bb.len()).filter(|&i| bb.atom_mask[i][atom::N] && bb.atom_mask[i][atom::CA] && bb.atom_mask[i][atom::C]).collect();
        for &i in &keep {
            counts[usize::from(toks[i])] += 1;
        }
        let (truth, pred) = (ca(bb, &keep), ca(dec, &keep));
        let r = kabsch::superpose(&pred, &truth).unwrap().rmsd;
        let t = protforge_eval::tm::tm_score(&pred, &truth).unwrap().tm;
        let l = lddt_ca(&pred, &truth);
        let bin = BINS.iter().position(|&(lo, hi)| bb.len() >= lo && bb.len() < hi).unwrap_or(0);
        for (k, v) in [r, t, l].into_iter().enumerate() {
            per_bin[bin][k].push(v);
        }
        rmsd.push(r);
        tm.push(t);
        lddt.push(l);
    }
    let total: u64 = counts.iter().sum();
    let entropy: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / total as f64).map(|p| -p * p.ln()).sum();

    // Invariance: tokens after a random rotation and translation of every chain.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let motions: Vec<Rigid> = chains
        .iter()
        .map(|_| {
            let q: [f64; 4] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
            let t = Vec3::new(rng.random_range(-100.0..100.0), rng.random_range(-100.0..100.0), rng.random_range(-100.0..100.0));
            Rigid::new(Rotation::from_quaternion(q).unwrap_or_else(|_| Rotation::identity()), t)
        })
        .collect();
    let moved_chains: Vec<Backbone> = chains.iter().zip(&motions).map(|(c, g)| moved(c, g)).collect();
    let moved_tokens = run_batched(&moved_chains, &lengths, |b| model.tokenize(b).unwrap());
    let same: usize = tokens.iter().zip(&moved_tokens).map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x == y).count()).sum();

    // Speed on synthetic ideal helices of length 100 and 300, batches of 8.
    let mut speed = serde_json::Map::new();
    for len in [100usize, 300] {
        let res = protforge_se3::geometry::build_backbone(len, &[], &[], &[]);
        let coords: Vec<[[f32; 3]; 4]> = res.iter().map(|r| r.map(|p| [p.x as f32, p.y as f32, p.z as f32])).collect();
        let batch: Vec<Backbone> = (0..8).map(|_| Backbone::from_coords(coords.clone(), vec![0; len])).collect();
        let t0 = Instant::now();
        let toks = model.tokenize(&batch).unwrap();
        let enc = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        model.detokenize(&toks).unwrap();
        let dec = t0.elapsed().as_secs_f64();
        speed.insert(format!("length_{len}"), json!({"encode_structures_per_s": 8.0 / enc, "decode_structures_per_s": 8.0 / dec}));
    }

    let bins: Vec<serde_json::Value> = BINS
        .iter()
        .zip(&per_bin)
        .map(|(&(lo, hi), [r, t, l])| {
            let label = if hi == usize::MAX { format!("{lo}+") } else { format!("{lo}-{}", hi - 1) };
            json!({"lengths": label, "ca_rmsd_ang": summary(r), "tm_score": summary(t), "lddt_ca": summary(l)})
        })
        .collect();
    let report = json!({
        "weights": weights,
        "dataset": data,
        "split": if split == Split::Val { "val" } else { "train" },
        "chains": chains.len(),
        "residues": lengths.iter().sum::<usize>(),
        "ca_rmsd_ang": summary(&rmsd),
        "tm_score": summary(&tm),
        "lddt_ca": summary(&lddt),
        "per_length_bin": bins,
        "codebook": {"codes": cfg.n_codes(), "used_fraction": counts.iter().filter(|&&c| c > 0).count() as f64 / cfg.n_codes() as f64, "perplexity": entropy.exp()},
        "invariance_identical_token_fraction": same as f64 / lengths.iter().sum::<usize>().max(1) as f64,
        "throughput_split": {"encode_structures_per_s": chains.len() as f64 / t_enc, "decode_structures_per_s": chains.len() as f64 / t_dec},
        "speed_batch_8": speed,
        "peak_rss_mb": peak_rss_mb(),
        "threads": candle_core::utils::get_num_threads(),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
