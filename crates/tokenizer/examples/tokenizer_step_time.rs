//! Time one training step of the tokenizer and its parts on synthetic backbones, and the
//! throughput of `tokenize` / `detokenize`.
//!
//! ```sh
//! cargo run --release -p protforge-tokenizer --example tokenizer_step_time -- [BATCH] [LENGTH] [CONFIG.json]
//! ```
//!
//! Defaults: 4 chains of 128 residues with the CPU architecture (`TokenizerConfig::cpu`);
//! CONFIG may be a training config (`protforge train tokenizer --print-config`) or a model
//! `config.json`. Inputs are ideal helices with a little deterministic noise, so the numbers
//! measure compute, not learning.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a command-line example

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use protforge_nn::init::{init_seeded_with, named_vars};
use protforge_nn::train::{AdamW, AdamWConfig, clip_grad_norm};
use protforge_structure::Backbone;
use protforge_tokenizer::features::{ChainAtoms, encoder_input, targets};
use protforge_tokenizer::model::init_rule;
use protforge_tokenizer::{LossWeights, Tokenizer, TokenizerConfig};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn chain(n: usize, k: usize) -> Backbone {
    let res = protforge_se3::geometry::build_backbone(n, &[], &[], &[]);
    let coords = res
        .iter()
        .enumerate()
        .map(|(i, r)| r.map(|p| [p.x as f32 + ((i * 7 + k) as f32).sin() * 0.3, p.y as f32, p.z as f32 + ((i + k) as f32).cos() * 0.3]))
        .collect();
    Backbone::from_coords(coords, vec![0; n])
}

/// CPU time (user + system) of this process in seconds, from `/proc/self/stat` (Linux; 0 elsewhere).
/// On a shared machine CPU time per step is a steadier measure than wall time: an idle
/// 2-core machine runs candle at about 1.65 busy cores (RUST-NOTES §2).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let b: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4);
    let l: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let cfg = match args.get(3) {
        Some(path) => {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            serde_json::from_value(v.get("model").cloned().unwrap_or(v)).unwrap()
        }
        None => TokenizerConfig::cpu(),
    };
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let model = Tokenizer::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
    init_seeded_with(&varmap, 0, init_rule).unwrap();
    let vars = named_vars(&varmap);
    let n_params: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();
    println!("{n_params} parameters; batch {b} × {l} residues; {} threads", candle_core::utils::get_num_threads());
    // Calibration: f32 matmul rate right now (RUST-NOTES measured ≈ 180 GFLOP/s on an idle machine),
    // so timings taken while other jobs share the CPU can be scaled.
    let a = candle_core::Tensor::ones((1024, 1024), DType::F32, &device).unwrap();
    let t0 = Instant::now();
    for _ in 0..10 {
        a.matmul(&a).unwrap();
    }
    println!("calibration: 1024² matmul at {:.0} GFLOP/s", 10.0 * 2.0 * 1024f64.powi(3) / t0.elapsed().as_secs_f64() / 1e9);
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default()).unwrap();
    let chains: Vec<Backbone> = (0..b).map(|k| chain(l, k)).collect();
    let w = LossWeights::default();
    for rep in 0..3 {
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let atoms: Vec<ChainAtoms> = chains.iter().map(ChainAtoms::from_backbone).collect();
        let x = encoder_input(&atoms, &cfg, &device).unwrap();
        let t = targets(&atoms, &cfg, &device).unwrap();
        let t_feat = ms(t0);
        let t1 = Instant::now();
        let pre = model.pre_quant(&x).unwrap();
        let t_enc = ms(t1);
        let t1 = Instant::now();
        model.quantizer_losses(&pre, &x.mask).unwrap();
        let t_lfq = ms(t1);
        let t1 = Instant::now();
        let q = model.quantize(&pre).unwrap();
        model.decode(&q.codes, &x.mask).unwrap();
        let t_dec = ms(t1);
        let t1 = Instant::now();
        let (parts, _, _) = model.loss(&x, &t, &w).unwrap();
        let t_loss = ms(t1);
        let t1 = Instant::now();
        let mut grads = parts.total.backward().unwrap();
        let t_bwd = ms(t1);
        let t1 = Instant::now();
        clip_grad_norm(&mut grads, &vars, 1.0).unwrap();
        opt.step(&grads, 1e-4).unwrap();
        let t_opt = ms(t1);
        let cpu = cpu_seconds() - cpu0;
        println!(
            "rep {rep}: features {t_feat:.0} ms | forward: encoder {t_enc:.0}, lfq losses {t_lfq:.0}, decoder {t_dec:.0}, full loss {t_loss:.0} | backward {t_bwd:.0} | clip+adamw {t_opt:.0} | step ≈ {:.0} ms | CPU {cpu:.2} s for the rep",
            t_feat + t_loss + t_bwd + t_opt
        );
    }
    let t1 = Instant::now();
    let tokens = model.tokenize(&chains).unwrap();
    let enc = t1.elapsed().as_secs_f64();
    let t1 = Instant::now();
    model.detokenize(&tokens).unwrap();
    let dec = t1.elapsed().as_secs_f64();
    println!("tokenize {:.1} structures/s, detokenize {:.1} structures/s (batch {b}, length {l})", b as f64 / enc, b as f64 / dec);
}
