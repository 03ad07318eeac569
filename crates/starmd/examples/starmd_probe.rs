//! Where a STAR-MD model's error comes from: one-step clean-frame estimates and single sampled
//! frames on real MD pairs of the validation trajectories, against copying the previous frame.
//!
//! ```text
//! cargo run --release -p protforge-starmd --example starmd_probe -- WEIGHTS_DIR data/md [PAIRS] [LAG_FRAMES]
//! ```
//!
//! For `PAIRS` frame pairs `(k, k + LAG)` of every validation trajectory (default 6 pairs, lag
//! 5 saved frames = 50 ps at 10 ps per frame): the previous frame `k` is the history (no
//! context noise), frame `k + LAG` is noised to diffusion time `t` and denoised in one network
//! call. Reported per `t`: CA RMSD (after superposition) of the estimate to the true frame,
//! the fraction of CA–CA bonds in [3.6, 4.0] Å, and the same for the "copy" baseline (the
//! previous frame itself). The last row is a full reverse-SDE sample of the next frame
//! (`rollout` with one frame, the weights' sampler).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use protforge_flow::Se3Diffuser;
use protforge_flow::rng::seeded;
use protforge_nn::checkpoint::Checkpoint;
use protforge_se3::kabsch::superpose;
use protforge_se3::{Rigid, Rigids, Vec3};
use protforge_starmd::data::{LoadOptions, load_md};
use protforge_starmd::features::{Conditioning, backbone_frames, centered};
use protforge_starmd::model::NoisyQuery;
use protforge_starmd::sampler::{RolloutOptions, rollout};
use protforge_starmd::{StarMd, StarMdConfig};
use protforge_structure::Backbone;
use std::path::Path;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn ca_rmsd(a: &[Vec3], b: &[Vec3]) -> f64 {
    superpose(a, b).unwrap().rmsd
}

fn bonds_ok(ca: &[Vec3]) -> (usize, usize) {
    let ok = ca.windows(2).filter(|w| (3.6..=4.0).contains(&(w[1] - w[0]).norm())).count();
    (ok, ca.len().saturating_sub(1))
}

fn up(rows: &[Rigid], dev: &Device) -> Rigids {
    let r = Rigids::from_scalar(rows, dev).unwrap();
    let n = rows.len();
    Rigids::new(
        protforge_se3::Rotations::new(r.rots.mats.reshape((1, n, 3, 3)).unwrap()).unwrap(),
        r.trans.reshape((1, n, 3)).unwrap(),
    )
    .unwrap()
}

/// Running sums of one table row.
#[derive(Default)]
struct Row {
    rmsd: f64,
    count: usize,
    ok: usize,
    bonds: usize,
}

impl Row {
    fn add(&mut self, rmsd: f64, (ok, bonds): (usize, usize)) {
        self.rmsd += rmsd;
        self.count += 1;
        self.ok += ok;
        self.bonds += bonds;
    }
    fn show(&self) -> String {
        format!("{:.2} | {:.3}", self.rmsd / self.count.max(1) as f64, self.ok as f64 / self.bonds.max(1) as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let weights = Path::new(args.get(1).expect("usage: starmd_probe WEIGHTS_DIR DATA_MD [PAIRS] [LAG]"));
    let root = Path::new(args.get(2).expect("usage: starmd_probe WEIGHTS_DIR DATA_MD [PAIRS] [LAG]"));
    let pairs: usize = args.get(3).map_or(6, |s| s.parse().unwrap());
    let lag: usize = args.get(4).map_or(5, |s| s.parse().unwrap());
    let dev = Device::Cpu;
    let ck = Checkpoint::new(weights);
    let cfg: StarMdConfig = ck.load_config().unwrap();
    let model = StarMd::new(&cfg, VarBuilder::from_tensors(ck.load_tensors(&dev).unwrap(), DType::F32, &dev)).unwrap();
    let diffuser = Se3Diffuser::new(cfg.diffusion).unwrap();
    let data = load_md(root, &LoadOptions::default()).unwrap();
    let times = [0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0];
    let mut est: Vec<Row> = times.iter().map(|_| Row::default()).collect();
    let (mut copy, mut sampled) = (Row::default(), Row::default());
    let mut rng = seeded(0);
    for traj in &data.val.trajectories {
        let dt = lag as f64 * traj.stride_ps / 1000.0;
        if traj.frames.len() <= lag || !cfg.dt_in_range(dt) {
            println!("skip {}: {} frames, stride {dt} ns", traj.name, traj.frames.len());
            continue;
        }
        for p in 0..pairs {
            let k = p * (traj.frames.len() - 1 - lag) / pairs.max(1);
            let (prev_atoms, next_atoms) = (&traj.frames[k], &traj.frames[k + lag]);
            let prev = centered(&backbone_frames(prev_atoms).unwrap());
            let next = centered(&backbone_frames(next_atoms).unwrap());
            let ca = |r: &[Rigid]| r.iter().map(|x| x.trans).collect::<Vec<_>>();
            let truth = ca(&next);
            copy.add(ca_rmsd(&ca(&prev), &truth), bonds_ok(&ca(&prev)));
            let cond = Conditioning::new(&[&traj.aatype], &[prev_atoms], &dev).unwrap();
            let prep = model.prepare(&cond).unwrap();
            let mut cache = model.new_cache(None);
            let history = up(&prev, &dev);
            model.append_history(&prep, &mut cache, &history, &[0.0], &[dt], 0.0).unwrap();
            for (row, &t) in est.iter_mut().zip(&times) {
                let noisy = diffuser.forward_marginal(&next, t, None, &mut rng).unwrap().rigids_t;
                let noisy = up(&noisy, &dev);
                let q = NoisyQuery { noisy: &noisy, t: &[t], dt_ns: &[dt], position: 1.0, anchor: Some(&history) };
                let x0 = model.denoise(&prep, &cache, &q).unwrap().to_scalar().unwrap();
                row.add(ca_rmsd(&ca(&x0), &truth), bonds_ok(&ca(&x0)));
            }
            let init = Backbone::from_coords(prev_atoms.clone(), traj.aatype.clone());
            let opts = RolloutOptions {
                frames: 1,
                dt_ns: dt,
                seed: p as u64,
                context_noise: Some(0.0),
                idealize: false,
                ..RolloutOptions::default()
            };
            let out = rollout(&model, &init, &opts, &mut |_| {}).unwrap();
            let frame: Vec<Vec3> =
                out.replicas[0][1].iter().map(|r| Vec3::new(r[1][0].into(), r[1][1].into(), r[1][2].into())).collect();
            sampled.add(ca_rmsd(&frame, &truth), bonds_ok(&frame));
        }
    }
    println!("| estimate | CA RMSD to the true next frame (Å) | CA–CA bonds in [3.6, 4.0] Å |");
    println!("|---|---|---|");
    println!("| copy the previous frame | {} |", copy.show());
    for (row, t) in est.iter().zip(&times) {
        println!("| one-step x̂₀ at t = {t} | {} |", row.show());
    }
    println!("| sampled next frame ({} reverse steps) | {} |", cfg.diffusion.sampler.num_steps, sampled.show());
}
