//! Achieved GFLOP/s of the PAR flow decoder's forward pass against this machine's measured
//! f32 matmul peak (candle CPU), as the PAR issue asks.
//!
//! ```sh
//! cargo run --release -p protforge-par --example decoder_throughput -- weights/par
//! ```
//!
//! FLOPs are counted analytically from the configuration (2 FLOPs per multiply-add; matmuls
//! only, which dominate): per token and block `4d²` (Q, K, V, O) + `3·d·h` (SwiGLU) + `6·d·c`
//! (two AdaLN modulations) + `2·s·d` (scores and weighted values); per token `6d + F·d + D_ar·c
//! + 3d` (input/output projections); per pair `F_pair·H·layers` (the pair-bias projection).

#![allow(clippy::print_stdout)] // a command-line example prints its results

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use protforge_nn::Checkpoint;
use protforge_par::ParConfig;
use protforge_par::model::{DecoderInput, ParModel};
use std::time::Instant;

fn decoder_flops(cfg: &ParConfig, s: usize) -> f64 {
    let dc = &cfg.decoder;
    let (d, h, c, f) = (dc.dim as f64, (dc.dim * dc.mlp_ratio) as f64, dc.cond_dim as f64, cfg.fourier_dim as f64);
    let s = s as f64;
    let per_token_block = 4.0 * d * d + 3.0 * d * h + 6.0 * d * c + 2.0 * s * d;
    let per_token = dc.layers as f64 * per_token_block + 6.0 * d + f * d + cfg.ar.dim as f64 * c + 3.0 * d;
    let pair_features = (2 * dc.dist_bins + dc.seq_sep_bins) as f64;
    let pair = s * s * pair_features * (dc.heads * dc.layers) as f64;
    2.0 * (s * per_token + pair)
}

fn time_it(mut f: impl FnMut() -> candle_core::Result<()>, min_secs: f64) -> candle_core::Result<f64> {
    f()?; // warm-up
    let t0 = Instant::now();
    let mut n = 0u32;
    while t0.elapsed().as_secs_f64() < min_secs || n < 3 {
        f()?;
        n += 1;
    }
    Ok(t0.elapsed().as_secs_f64() / f64::from(n))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "weights/par".into());
    let device = Device::Cpu;
    let ck = Checkpoint::new(&dir);
    let cfg: ParConfig = ck.load_config()?;
    let vb = VarBuilder::from_tensors(ck.load_tensors(&device)?, DType::F32, &device);
    let model = ParModel::new(&cfg, vb)?;

    // Matmul peak: square f32 matmuls of a few sizes, best of them.
    let mut peak: f64 = 0.0;
    for n in [256usize, 512, 1024] {
        let a = Tensor::randn(0f32, 1.0, (n, n), &device)?;
        let b = Tensor::randn(0f32, 1.0, (n, n), &device)?;
        let secs = time_it(|| a.matmul(&b).map(|_| ()), 1.0)?;
        let g = 2.0 * (n as f64).powi(3) / secs / 1e9;
        println!("matmul {n}x{n}x{n}: {g:.1} GFLOP/s");
        peak = peak.max(g);
    }
    println!("\n| L | batch | decoder forward (ms) | GFLOP per call | achieved GFLOP/s | fraction of matmul peak ({peak:.1}) |");
    println!("|---|---|---|---|---|---|");
    for &(len, batch) in &[(100usize, 1usize), (100, 4), (200, 1), (200, 4)] {
        let x = Tensor::randn(0f32, 1.0, (batch, len, 3), &device)?;
        let t = Tensor::full(0.5f32, batch, &device)?;
        let z = Tensor::randn(0f32, 1.0, (batch, len, cfg.ar.dim), &device)?;
        let inp = DecoderInput { x_t: &x, t: &t, z: &z, x_sc: Some(&x), len };
        let secs = time_it(|| model.decoder.forward(&inp).map(|_| ()), 2.0)?;
        let flops = decoder_flops(&cfg, len) * batch as f64;
        let g = flops / secs / 1e9;
        println!("| {len} | {batch} | {:.2} | {:.3} | {g:.1} | {:.2} |", secs * 1e3, flops / 1e9, g / peak);
    }
    Ok(())
}
