//! Capacity check: fit the CPU tokenizer to ONE validation chain and print the clamped FAPE of
//! the final frames and the distogram loss every 25 steps, either through the 13-bit quantizer
//! (`codes`, as trained) or with the quantizer bypassed (`continuous`: the decoder reads the
//! pre-quantizer vectors). Separates "the bottleneck hides the structure" from "the decoder
//! cannot place residues".
//!
//! ```sh
//! cargo run --release -p protforge-tokenizer --example tokenizer_overfit -- data/protforge_v1.safetensors codes|continuous [STEPS] [PEAK_LR]
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)] // a command-line example

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use protforge_data::{Dataset, Split};
use protforge_nn::init::{init_seeded_with, named_vars};
use protforge_nn::train::{AdamW, AdamWConfig, clip_grad_norm};
use protforge_tokenizer::features::{ChainAtoms, encoder_input, targets};
use protforge_tokenizer::loss::{FapeTarget, backbone_atoms, distogram_loss, fape};
use protforge_tokenizer::model::init_rule;
use protforge_tokenizer::train::ChainSet;
use protforge_tokenizer::{Tokenizer, TokenizerConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ds = Dataset::open(args.get(1).map_or("data/protforge_v1.safetensors", String::as_str)).expect("dataset");
    let continuous = args.get(2).is_some_and(|m| m == "continuous");
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(300);
    let peak_lr: f64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5e-4);
    let all = ChainSet::from_dataset(&ds, Split::Val, 60);
    let chain = all.chains.iter().find(|c| (80..=130).contains(&c.len())).expect("a chain of 80-130 residues").clone();
    let cfg = TokenizerConfig::cpu();
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let model = Tokenizer::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
    init_seeded_with(&varmap, 0, init_rule).unwrap();
    let vars = named_vars(&varmap);
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default()).unwrap();
    let atoms = vec![ChainAtoms::from_backbone(&chain)];
    let x = encoder_input(&atoms, &cfg, &device).unwrap();
    let t = targets(&atoms, &cfg, &device).unwrap();
    let l = chain.len();
    let atom_mask = x.mask.unsqueeze(2).unwrap().broadcast_as((1, l, 3)).unwrap().reshape((1, 3 * l)).unwrap();
    let target = FapeTarget::new(&t.frames, &t.atoms, &x.mask, &atom_mask).unwrap();
    println!("chain of {l} residues, mode {}, peak lr {peak_lr}", if continuous { "continuous" } else { "codes" });
    for step in 1..=steps {
        let pre = model.pre_quant(&x).unwrap();
        let input = if continuous { pre.clone() } else { model.quantize(&pre).unwrap().codes };
        let dec = model.decode(&input, &x.mask).unwrap();
        let mut total = Tensor::zeros((), DType::F32, &device).unwrap();
        for frames in &dec.frames {
            let (c, u) = fape(frames, &backbone_atoms(frames).unwrap(), &target, 10.0, 10.0).unwrap();
            total = (total + ((c * 0.9).unwrap() + (u * 0.1).unwrap()).unwrap()).unwrap();
        }
        let dist = distogram_loss(&dec.distogram, &t.dist_bins, &x.mask).unwrap();
        let loss = ((total / dec.frames.len() as f64).unwrap() + (&dist * 0.3).unwrap()).unwrap();
        let mut grads = loss.backward().unwrap();
        clip_grad_norm(&mut grads, &vars, 1.0).unwrap();
        opt.step(&grads, peak_lr * (step as f64 / 50.0).min(1.0)).unwrap();
        if step % 25 == 0 {
            let last = dec.frames.last().unwrap();
            let (c, _) = fape(last, &backbone_atoms(last).unwrap(), &target, 10.0, 10.0).unwrap();
            println!("step {step}: final-frame fape {:.3} distogram {:.3}", c.to_scalar::<f32>().unwrap(), dist.to_scalar::<f32>().unwrap());
        }
    }
}
