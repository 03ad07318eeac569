//! The ProteinWeaver benchmark of issue 6: re-assembly of held-out (validation-split)
//! multi-domain chains from their own domains against the random-placement baseline, the win
//! rate and score shifts of an aligned model against its base, and sampling speed.
//! Prints one JSON object (also written to `--out`).
//!
//! ```sh
//! cargo run --release -p protforge-weaver --example weaver_bench -- \
//!     --weights training/weaver/base --aligned weights/weaver \
//!     --data data/protforge_v1.safetensors --domains training/weaver/domains.json \
//!     --n 65 --k 2 --out weaver_bench.json
//! ```
//!
//! Inputs: the first `--n` validation chains with ≥ 2 domains (dataset order), each cut like a
//! training example with seed = its rank (crop ≤ `--crop`, linker windows of exactly
//! `--linker` residues at every domain boundary). Each model draws `--k` samples per input.
//! Re-assembly metrics are reported for the structures as sampled and, under `"refined"`, after
//! the refinement `protforge assemble` applies by default (`protforge_weaver::closure`:
//! overlapping domains pushed apart by rigid translation, then linkers closed).

#![allow(clippy::print_stdout)] // a command-line example prints its results

use candle_core::Device;
use protforge_data::{Dataset, Split};
use protforge_flow::rng::{sample_seed, seeded};
use protforge_se3::Rigid;
use protforge_weaver::bench::{Reassembly, random_placement, reassembly_metrics};
use protforge_weaver::closure::{close_linkers, separate_domains};
use protforge_weaver::dataset::{DomainCache, DomainSet, ExampleParams, sample_example};
use protforge_weaver::dpo::{CompareSettings, MeanScores, compare_models, load_model};
use protforge_weaver::frames::ca_of;
use protforge_weaver::sampler::{AssemblyInput, SampleOptions, Sampler};
use protforge_weaver::score::{ScoreConfig, score_assembly};
use protforge_weaver::{DomainParams, WeaverModel};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn summary(rows: &[Reassembly], domain_rmsd: &[f64]) -> serde_json::Value {
    let n = rows.len().max(1) as f64;
    json!({
        "n": rows.len(),
        "frac_tm_ge_0_5": rows.iter().filter(|r| r.tm >= 0.5).count() as f64 / n,
        "median_tm": median(rows.iter().map(|r| r.tm).collect()),
        "median_interface_rmsd": median(rows.iter().filter_map(|r| r.interface_rmsd).collect()),
        "clash_rate": rows.iter().filter(|r| r.clash).count() as f64 / n,
        "linker_valid_frac": rows.iter().filter(|r| r.linker_valid).count() as f64 / n,
        "median_network_domain_rmsd": median(domain_rmsd.to_vec()),
    })
}

struct Args {
    weights: PathBuf,
    aligned: Option<PathBuf>,
    data: PathBuf,
    domains: PathBuf,
    n: usize,
    k: usize,
    steps: Option<usize>,
    crop: usize,
    linker: usize,
    seed: u64,
    out: Option<PathBuf>,
    /// Only the aligned model's rows (re-assembly, win rate): the base rows, the baseline and
    /// the speed come from an earlier run without `--aligned`.
    aligned_only: bool,
}

fn parse() -> Result<Args, Box<dyn std::error::Error>> {
    let mut a = Args {
        weights: PathBuf::from("weights/weaver"),
        aligned: None,
        data: PathBuf::from("data/protforge_v1.safetensors"),
        domains: PathBuf::from("training/weaver/domains.json"),
        n: 32,
        k: 2,
        steps: None,
        crop: 256,
        linker: 6,
        seed: 0,
        out: None,
        aligned_only: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--weights" => a.weights = value()?.into(),
            "--aligned" => a.aligned = Some(value()?.into()),
            "--data" => a.data = value()?.into(),
            "--domains" => a.domains = value()?.into(),
            "--n" => a.n = value()?.parse()?,
            "--k" => a.k = value()?.parse()?,
            "--steps" => a.steps = Some(value()?.parse()?),
            "--crop" => a.crop = value()?.parse()?,
            "--linker" => a.linker = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--out" => a.out = Some(value()?.into()),
            "--aligned-only" => a.aligned_only = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

/// `frames` with their CA positions replaced by the refined trace (`protforge_weaver::closure`:
/// overlapping domains pushed apart, then linkers closed), and how far the linkers moved (Å).
fn closed(frames: &[Rigid], domain_of: &[Option<usize>]) -> Result<(Vec<Rigid>, f64), Box<dyn std::error::Error>> {
    let (apart, _) = separate_domains(&ca_of(frames), domain_of, 4.0)?;
    let (ca, rep) = close_linkers(&apart, domain_of)?;
    Ok((frames.iter().zip(ca).map(|(f, t)| Rigid { rot: f.rot, trans: t }).collect(), rep.linker_rmsd_moved))
}

/// Re-assembly metrics of `rows` as sampled, and after refinement under `"refined"`.
fn summary_with_closure(raw: &[Reassembly], closed_rows: &[Reassembly], moved: &[f64], domain_rmsd: &[f64]) -> serde_json::Value {
    let mut s = summary(raw, domain_rmsd);
    let mut c = summary(closed_rows, domain_rmsd);
    c["median_linker_rmsd_moved"] = json!(median(moved.to_vec()));
    s["refined"] = c;
    s
}

/// Sample `k` assemblies of every input and compare them with the natives.
fn reassemble(model: &WeaverModel, inputs: &[(AssemblyInput, Vec<Rigid>)], args: &Args, opts: &SampleOptions, dev: &Device) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let sampler = Sampler::new(model, opts)?;
    let (mut rows, mut closed_rows, mut moved, mut drmsd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for (n, (input, native)) in inputs.iter().enumerate() {
        let mut rngs: Vec<_> = (0..args.k).map(|j| seeded(sample_seed(args.seed, (n * args.k + j) as u64))).collect();
        for a in sampler.sample(input, &mut rngs, dev)? {
            rows.push(reassembly_metrics(native, &a.frames, &input.map.domain_of)?);
            let (c, m) = closed(&a.frames, &input.map.domain_of)?;
            closed_rows.push(reassembly_metrics(native, &c, &input.map.domain_of)?);
            moved.push(m);
            drmsd.extend(a.domain_rmsd);
        }
    }
    let mut s = summary_with_closure(&rows, &closed_rows, &moved, &drmsd);
    s["seconds"] = json!(started.elapsed().as_secs_f64());
    Ok(s)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let dev = Device::Cpu;
    let ds = Dataset::open(&args.data)?;
    let (cache, _) = DomainCache::load_or_build(&args.domains, &ds, &DomainParams::default())?;
    let val = DomainSet::from_dataset(&ds, &cache, Split::Val, 2)?;
    let params = ExampleParams { crop_max: args.crop, linker_min: args.linker, linker_max: args.linker, ..ExampleParams::default() };
    let inputs = val
        .chains
        .iter()
        .take(args.n)
        .enumerate()
        .map(|(i, c)| {
            let ex = sample_example(c, &params, &mut seeded(i as u64))?;
            Ok((AssemblyInput::from_native(&ex.frames, &ex.map.domain_of)?, ex.frames))
        })
        .collect::<Result<Vec<_>, protforge_weaver::WeaverError>>()?;
    // The natives themselves under the preference score (a reference for its components).
    let native_scores = inputs
        .iter()
        .map(|(input, native)| score_assembly(&ca_of(native), &input.map.domain_of, &ScoreConfig::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let base = load_model(&args.weights, &dev)?;
    let opts = SampleOptions { num_steps: args.steps, ..SampleOptions::default() };
    let mut report = json!({ "inputs": inputs.len(), "k": args.k, "crop": args.crop, "linker": args.linker, "weights": args.weights });
    report["native_scores"] = serde_json::to_value(MeanScores::of(&native_scores))?;
    if args.aligned_only && args.aligned.is_none() {
        return Err("--aligned-only needs --aligned".into());
    }
    if !args.aligned_only {
        base_rows(&base, &inputs, &args, &opts, &dev, &mut report)?;
    }
    if let Some(dir) = &args.aligned {
        let aligned = load_model(dir, &dev)?;
        report["reassembly_aligned"] = reassemble(&aligned, &inputs, &args, &opts, &dev)?;
        let held_out: Vec<AssemblyInput> = inputs.iter().map(|(i, _)| i.clone()).collect();
        let settings = CompareSettings { k: args.k, sample: opts, score: ScoreConfig::default(), seed: args.seed ^ 0xc0de };
        report["aligned_vs_base"] = serde_json::to_value(compare_models(&base, &aligned, &held_out, &settings, &dev)?)?;
    }
    if !args.aligned_only {
        report["speed"] = speed(&base, &val, &params, &opts, &dev)?;
    }
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.out {
        std::fs::write(path, &text)?;
    }
    println!("{text}");
    Ok(())
}

/// The base model's re-assembly rows and the random-placement baseline.
fn base_rows(base: &WeaverModel, inputs: &[(AssemblyInput, Vec<Rigid>)], args: &Args, opts: &SampleOptions, dev: &Device, report: &mut serde_json::Value) -> Result<(), Box<dyn std::error::Error>> {
    report["reassembly_base"] = reassemble(base, inputs, args, opts, dev)?;
    // Random-placement baseline, k placements per input.
    let (mut rows, mut closed_rows, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    for (n, (input, native)) in inputs.iter().enumerate() {
        for j in 0..args.k {
            let frames = random_placement(input, &mut seeded(sample_seed(args.seed ^ 0xba5e, (n * args.k + j) as u64)))?;
            rows.push(reassembly_metrics(native, &frames, &input.map.domain_of)?);
            let (c, m) = closed(&frames, &input.map.domain_of)?;
            closed_rows.push(reassembly_metrics(native, &c, &input.map.domain_of)?);
            moved.push(m);
        }
    }
    report["reassembly_random_baseline"] = summary_with_closure(&rows, &closed_rows, &moved, &[]);
    Ok(())
}

/// Seconds for one assembly at total lengths 200 and 400 (the longest validation chains, cropped).
fn speed(base: &WeaverModel, val: &DomainSet, params: &ExampleParams, opts: &SampleOptions, dev: &Device) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let mut longest: Vec<&protforge_weaver::dataset::DomainChain> = val.chains.iter().collect();
    longest.sort_by_key(|c| std::cmp::Reverse(c.frames.len()));
    let sampler = Sampler::new(base, opts)?;
    let mut speed = serde_json::Map::new();
    for len in [200usize, 400] {
        let Some(chain) = longest.iter().find(|c| c.frames.len() >= len) else { continue };
        let ex = sample_example(chain, &ExampleParams { crop_max: len, ..*params }, &mut seeded(0))?;
        let input = AssemblyInput::from_native(&ex.frames, &ex.map.domain_of)?;
        let t0 = Instant::now();
        sampler.sample(&input, &mut [seeded(1)], dev)?;
        speed.insert(format!("seconds_per_assembly_len{len}"), json!(t0.elapsed().as_secs_f64()));
    }
    speed.insert("steps".into(), json!(sampler.diffuser().config().sampler.num_steps));
    speed.insert("threads".into(), json!(candle_core::utils::get_num_threads()));
    Ok(serde_json::Value::Object(speed))
}
