//! Time STAR-MD training steps and rollout frames on synthetic trajectories, to size a
//! configuration for a machine (the numbers behind the recommended CPU recipe).
//!
//! ```text
//! cargo run --release -p protforge-starmd --example step_time -- [N_RES] [STEPS] [ROLLOUT_FRAMES] [train_config.json]
//! ```
//!
//! Prints the mean wall and CPU time per training step (after one warm-up step), the rollout
//! speed (frames per second at the config's 200 reverse steps; default 4 frames, 0 skips it) and
//! the peak resident memory.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use protforge_nn::train::Trainee;
use protforge_se3::geometry::{HELIX_PHI, HELIX_PSI, OMEGA_TRANS, build_backbone};
use protforge_starmd::data::{MdSet, MdTrajectory};
use protforge_starmd::sampler::{RolloutOptions, rollout};
use protforge_starmd::train::{TrainConfig, Trainer};
use protforge_structure::Backbone;
use rand::Rng;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A helix of `n` residues whose torsions drift, 200 frames 10 ps apart.
fn toy(n: usize, seed: u64) -> MdTrajectory {
    let mut rng = protforge_flow::rng::seeded(seed);
    let (mut phi, mut psi) = (vec![HELIX_PHI; n], vec![HELIX_PSI; n]);
    let frames = (0..200)
        .map(|_| {
            for i in 0..n {
                phi[i] += rng.random_range(-0.03..0.03);
                psi[i] += rng.random_range(-0.03..0.03);
            }
            build_backbone(n, &phi, &psi, &vec![OMEGA_TRANS; n])
                .into_iter()
                .map(|r| r.map(|p| [p.x as f32, p.y as f32, p.z as f32]))
                .collect()
        })
        .collect();
    MdTrajectory {
        name: format!("toy{seed}"),
        protein: "toy".into(),
        aatype: (0..n).map(|i| (i % 20) as u8).collect(),
        frames,
        stride_ps: 10.0,
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |k| k / 1024.0)
}

/// User + system CPU time of this process (s), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(56);
    let steps: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let rollout_frames: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4);
    let cfg: TrainConfig = match args.get(4) {
        Some(p) => serde_json::from_str(&std::fs::read_to_string(p).expect("config file")).expect("config JSON"),
        None => TrainConfig::cpu_small(),
    };
    let set = MdSet { trajectories: vec![toy(n, 1), toy(n, 2)] };
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(cfg.clone(), dir.path(), false, Device::Cpu).unwrap();
    println!(
        "{} parameters, {} residues (crop {}), {} windows × {} frames",
        trainer.n_params(),
        n,
        cfg.crop_residues,
        cfg.windows_per_batch,
        cfg.model.window_frames
    );
    trainer.train_step(&set).unwrap();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..steps {
        let r = trainer.train_step(&set).unwrap();
        println!("step {} loss {:.4} |g| {:.3}", r.step, r.loss.total, r.grad_norm);
    }
    let per_step = t0.elapsed().as_secs_f64() / steps as f64;
    let cpu_per_step = (cpu_seconds() - c0) / steps as f64;
    println!("train: {per_step:.3} s/step wall, {cpu_per_step:.3} CPU s/step, peak RSS {:.0} MiB", peak_rss_mib());
    if rollout_frames == 0 {
        return;
    }
    let traj = toy(n, 3);
    let init = Backbone::from_coords(traj.frames[0].clone(), traj.aatype.clone());
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let frames = rollout_frames;
    let out = rollout(
        trainer.model(),
        &init,
        &RolloutOptions { frames, dt_ns: 0.1, ..RolloutOptions::default() },
        &mut |_| {},
    )
    .unwrap();
    let s = t0.elapsed().as_secs_f64();
    println!(
        "rollout: {:.2} s/frame wall, {:.2} CPU s/frame at {} steps ({:.3} frames/s), KV cache {} bytes after {frames} frames, peak RSS {:.0} MiB",
        s / frames as f64,
        (cpu_seconds() - c0) / frames as f64,
        out.steps,
        frames as f64 / s,
        out.cache_bytes.last().copied().unwrap_or(0),
        peak_rss_mib()
    );
}
