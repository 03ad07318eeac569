//! Diagnostic probe of a PAR checkpoint on validation chains: how well does the decoder
//! denoise the final scale when the AR transformer sees the true (clean) coarse scales?
//!
//! ```sh
//! cargo run --release -p protforge-par --example denoise_probe -- weights/par data/protforge_v1.safetensors [n_chains] [out_dir]
//! ```
//!
//! For flow times t it reports the RMSD (Å) of the one-step estimate `x̂₁ = x_t + (1 − t)·v̂`
//! to the truth, against the Gaussian posterior-mean baseline `x̂₁ = x_t·tσ²/(t²σ² + (1−t)²)`
//! (σ² the chain's per-coordinate variance), and the CA–CA bond statistics of `x̂₁`. Then it
//! integrates the final scale from pure noise with the ODE and the SDE given the true coarse
//! scales, and reports bond statistics and the radius-of-gyration ratio to the truth. Together
//! they separate "the decoder has not learned local geometry" from "the sampler loses it".
//!
//! With `out_dir`, each chain's SDE sample is idealised and written with its rebuilt N/CA/C/O
//! as `out_dir/sde/chain_<k>.pdb` (as `protforge generate` writes its output), and the true
//! chain as `out_dir/true/chain_<k>.pdb`, for `protforge eval backbones` (e.g. the helix
//! fraction of the final scale when every coarse scale is the truth).
//!
//! With `out_dir` it also runs the prompt ladder: for each chain and k = 0 … n − 1, two samples
//! from `sample_ca_conditioned` (the default sampler, idealised) with the true first k scales as
//! the prompt, written as `out_dir/prompt_k<k>/chain_<c>_<j>.pdb`. Scoring each folder with
//! `protforge eval backbones` shows after which generated scale the structure is lost.

#![allow(clippy::print_stdout)] // a command-line example prints its results

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use protforge_flow::r3::{IntegrateOptions, center, integrate, interpolate, predict_data};
use protforge_flow::rng::{randn, seeded};
use protforge_flow::{GSchedule, Integrator, PerSampleNoise, TimeGrid};
use protforge_nn::Checkpoint;
use protforge_par::ParConfig;
use protforge_par::model::{ANG_PER_NM, DecoderInput, ParModel};
use protforge_par::sampler::{Conditioning, DecoderField, SampleOptions, sample_ca_conditioned};
use protforge_par::scales::linear_weights;
use protforge_par::train::{CaSet, scale_targets};

/// `(mean CA–CA Å, fraction in [3.6, 4.0])` of `x [1, L, 3]` in nm.
fn bonds(x: &Tensor) -> candle_core::Result<(f64, f64)> {
    let p = x.squeeze(0)?.to_vec2::<f32>()?;
    let d: Vec<f64> = p.windows(2).map(|w| (0..3).map(|k| f64::from(w[0][k] - w[1][k]).powi(2)).sum::<f64>().sqrt() * ANG_PER_NM).collect();
    let n = d.len() as f64;
    Ok((d.iter().sum::<f64>() / n, d.iter().filter(|&&v| (3.6..=4.0).contains(&v)).count() as f64 / n))
}

/// Root-mean-square distance (Å) of the points of `x [1, L, 3]` (nm) to the origin.
fn rms(x: &Tensor) -> candle_core::Result<f64> {
    let v = x.sqr()?.sum_all()?.to_scalar::<f32>()?;
    Ok((f64::from(v) / x.dim(1)? as f64).sqrt() * ANG_PER_NM)
}

/// Write a `[1, L, 3]` nm trace as a full backbone PDB (Å), idealised first when `idealize`.
fn write_chain(x: &Tensor, idealize: bool, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let ca: Vec<Vec<f32>> = (x.squeeze(0)? * ANG_PER_NM)?.to_vec2::<f32>()?;
    let mut pts: Vec<protforge_se3::Vec3> = ca.iter().map(|p| protforge_se3::Vec3::new(p[0].into(), p[1].into(), p[2].into())).collect();
    if idealize {
        pts = protforge_structure::idealize::idealize_ca(&pts, &[], &protforge_structure::idealize::IdealizeParams::default())?.0;
    }
    #[allow(clippy::cast_possible_truncation)] // back to the f32 coordinates of the structure types
    let ca: Vec<[f32; 3]> = pts.iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect();
    let gly = vec![protforge_structure::residue::aatype_from_one('G'); ca.len()];
    let bb = protforge_structure::Backbone::from_ca(&ca, Some(gly));
    protforge_structure::write_pdb(path, &protforge_structure::rebuild::complete_backbone(&bb)?)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).cloned().unwrap_or_else(|| "weights/par".into());
    let data = args.get(2).cloned().unwrap_or_else(|| "data/protforge_v1.safetensors".into());
    let n_chains: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(8);
    let out_dir = args.get(4).map(std::path::PathBuf::from);
    if let Some(d) = &out_dir {
        std::fs::create_dir_all(d.join("sde"))?;
        std::fs::create_dir_all(d.join("true"))?;
    }
    let device = Device::Cpu;
    let ck = Checkpoint::new(&dir);
    let cfg: ParConfig = ck.load_config()?;
    let model = ParModel::new(&cfg, VarBuilder::from_tensors(ck.load_tensors(&device)?, DType::F32, &device))?;
    let ds = protforge_data::Dataset::open(&data)?;
    let val = CaSet::from_dataset(&ds, protforge_data::Split::Val)?;
    let times = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99];
    let mut acc = vec![[0.0f64; 4]; times.len()];
    let mut gen_acc = [[0.0f64; 3]; 2];
    let mut used = 0usize;
    let mut rng = seeded(0);
    for trace in val.traces.iter().filter(|t| (60..=200).contains(&t.len())).step_by(3).take(n_chains) {
        let len = trace.len();
        let flat: Vec<f32> = trace.iter().flat_map(|p| p.map(|v| v / ANG_PER_NM as f32)).collect();
        let ones = Tensor::ones((1, len), DType::F32, &device)?;
        let x = center(&Tensor::from_vec(flat, (1, len, 3), &device)?, &ones)?;
        let sizes = cfg.scales.sizes(len);
        let n = sizes.len();
        let targets = scale_targets(&model, &x)?;
        let mut contexts = Vec::with_capacity(n - 1);
        for i in 0..n - 1 {
            let up = Tensor::from_vec(linear_weights(sizes[i], sizes[i + 1]), (1, sizes[i + 1], sizes[i]), &device)?;
            contexts.push(up.matmul(&targets[i])?);
        }
        let zs = model.ar.forward_all(len, &sizes, &contexts, 1)?;
        let z = &zs[n - 1];
        let sigma2 = f64::from(x.sqr()?.mean_all()?.to_scalar::<f32>()?);
        for (k, &t) in times.iter().enumerate() {
            let eps = center(&randn(&mut rng, &[1, len, 3], &device)?, &ones)?;
            let tt = Tensor::full(t as f32, 1, &device)?;
            let x_t = interpolate(&eps, &x, &tt)?;
            let v0 = model.decoder.forward(&DecoderInput { x_t: &x_t, t: &tt, z, x_sc: None, len })?;
            let x_sc = predict_data(&x_t, &v0, &tt)?;
            let v = model.decoder.forward(&DecoderInput { x_t: &x_t, t: &tt, z, x_sc: Some(&x_sc), len })?;
            let x1 = predict_data(&x_t, &v, &tt)?;
            let gauss = (&x_t * (t * sigma2 / (t * t * sigma2 + (1.0 - t).powi(2))))?;
            let (bm, bok) = bonds(&x1)?;
            acc[k][0] += rms(&(&x1 - &x)?)?;
            acc[k][1] += rms(&(&gauss - &x)?)?;
            acc[k][2] += bm;
            acc[k][3] += bok;
        }
        for (j, (integrator, gamma)) in [(Integrator::Ode, 1.0), (Integrator::Sde, 0.45)].into_iter().enumerate() {
            let grid = TimeGrid::default().times(200)?;
            let opts = IntegrateOptions { integrator, g: GSchedule::InverseT, gamma, self_condition: true };
            let x0 = randn(&mut rng, &[1, len, 3], &device)?;
            let out = integrate(&DecoderField { decoder: &model.decoder, z, len }, &x0, &ones, &grid, &opts, &mut rng)?;
            let (bm, bok) = bonds(&out)?;
            gen_acc[j][0] += bm;
            gen_acc[j][1] += bok;
            gen_acc[j][2] += rms(&out)? / rms(&x)?;
            if let Some(d) = &out_dir
                && integrator == Integrator::Sde
            {
                write_chain(&out, true, &d.join("sde").join(format!("chain_{}.pdb", used + 1)))?;
                write_chain(&x, false, &d.join("true").join(format!("chain_{}.pdb", used + 1)))?;
            }
        }
        if let Some(d) = &out_dir {
            for k in 0..n {
                let prompt: Vec<Vec<[f32; 3]>> = targets[..k]
                    .iter()
                    .map(|t| Ok((t.squeeze(0)? * ANG_PER_NM)?.to_vec2::<f32>()?.into_iter().map(|p| [p[0], p[1], p[2]]).collect()))
                    .collect::<candle_core::Result<_>>()?;
                let cond = Conditioning { prompt, ..Conditioning::default() };
                let mut noise = [seeded(100 + used as u64), seeded(200 + used as u64)];
                let out =
                    sample_ca_conditioned(&model, len, 2, &SampleOptions::default(), &cond, &mut PerSampleNoise(&mut noise), &device)?;
                let dir = d.join(format!("prompt_k{k}"));
                std::fs::create_dir_all(&dir)?;
                for (j, ca) in out.iter().enumerate() {
                    let nm: Vec<f32> = ca.iter().flat_map(|p| p.map(|v| v / ANG_PER_NM as f32)).collect();
                    write_chain(&Tensor::from_vec(nm, (1, len, 3), &device)?, true, &dir.join(format!("chain_{}_{j}.pdb", used + 1)))?;
                }
            }
        }
        used += 1;
        println!("chain {used}: L {len}, true Rg {:.1} Å, true bonds {:?}", rms(&x)?, bonds(&x)?);
    }
    let u = used as f64;
    println!("\none-step estimates with true coarse scales ({used} val chains, self-conditioned)");
    println!("| t | RMSD x̂₁ (Å) | Gaussian baseline RMSD (Å) | mean CA–CA of x̂₁ (Å) | bonds in [3.6, 4.0] |");
    println!("|---|---|---|---|---|");
    for (k, t) in times.iter().enumerate() {
        println!("| {t} | {:.2} | {:.2} | {:.2} | {:.3} |", acc[k][0] / u, acc[k][1] / u, acc[k][2] / u, acc[k][3] / u);
    }
    println!("\nfinal scale generated from noise (200 log-grid steps) given the true coarse scales");
    println!("| integrator | mean CA–CA (Å) | bonds in [3.6, 4.0] | Rg / true Rg |");
    println!("|---|---|---|---|");
    for (j, name) in ["ode", "sde γ 0.45"].iter().enumerate() {
        println!("| {name} | {:.2} | {:.3} | {:.2} |", gen_acc[j][0] / u, gen_acc[j][1] / u, gen_acc[j][2] / u);
    }
    Ok(())
}
