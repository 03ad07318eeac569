//! End-to-end checks of a tiny, randomly initialised tokenizer on the committed example
//! backbones: invariance of the tokens, masking and padding, decoding, gradients, training
//! (loss decreases, exact resume).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use protforge_nn::init::{init_seeded_with, named_vars};
use protforge_nn::train::{AdamW, AdamWConfig, LrSchedule, Trainee, clip_grad_norm, vars_without_grad};
use protforge_se3::{Rigid, Rotation, Vec3};
use protforge_structure::{Backbone, atom};
use protforge_tokenizer::features::{ChainAtoms, encoder_input, targets};
use protforge_tokenizer::model::{BB_UPDATE, init_rule};
use protforge_tokenizer::train::{ChainSet, TrainConfig, Trainer, sample_batch};
use protforge_tokenizer::{LossWeights, Tokenizer, TokenizerConfig};
use std::path::PathBuf;

fn example(name: &str) -> Backbone {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/backbones").join(name);
    protforge_structure::read_backbone(&path, &Default::default()).unwrap().backbone
}

fn tiny_model(seed: u64) -> (VarMap, Tokenizer) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Tokenizer::new(&TokenizerConfig::tiny(), vb).unwrap();
    init_seeded_with(&varmap, seed, init_rule).unwrap();
    (varmap, model)
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

#[test]
fn tokens_are_invariant_under_rigid_motion() {
    let (_, model) = tiny_model(1);
    let chains = [example("1a8o_A.pdb"), example("barnase_A.pdb")];
    let tokens = model.tokenize(&chains).unwrap();
    assert_eq!(tokens[0].len(), 70);
    let distinct: std::collections::HashSet<u16> = tokens.iter().flatten().copied().collect();
    assert!(distinct.len() > 5, "a random model should still use several codes: {distinct:?}");
    let motions = [
        Rigid::new(Rotation::from_axis_angle(&Vec3::new(1.0, 2.0, 3.0), 2.5).unwrap(), Vec3::new(100.0, -50.0, 20.0)),
        Rigid::new(Rotation::from_axis_angle(&Vec3::new(-0.3, 0.1, 1.0), 4.0).unwrap(), Vec3::new(-7.0, 3.0, 250.0)),
        Rigid::new(Rotation::from_quaternion([0.1, 0.9, -0.4, 0.2]).unwrap(), Vec3::zeros()),
    ];
    for g in &motions {
        let again = model.tokenize(&chains.iter().map(|c| moved(c, g)).collect::<Vec<_>>()).unwrap();
        assert_eq!(again, tokens);
    }
}

#[test]
fn padding_and_masked_residues() {
    let (_, model) = tiny_model(2);
    let short = example("HHH_rd1_0473_A.pdb");
    let long = example("t4_lysozyme_L99A_A.pdb");
    let alone = model.tokenize(std::slice::from_ref(&short)).unwrap();
    let batched = model.tokenize(&[long.clone(), short.clone()]).unwrap();
    assert_eq!(batched[1], alone[0], "padding changed the tokens");
    assert_eq!(batched[0].len(), long.len());
    // A residue without its N is masked: id 0 (DPLM-2's padding id), and the other chain is unaffected.
    let mut holey = short.clone();
    holey.atom_mask[5][atom::N] = false;
    let t = model.tokenize(&[holey, long]).unwrap();
    assert_eq!(t[0][5], 0);
    assert_eq!(t[1], batched[0]);
    assert!(model.tokenize(&[Backbone::default()]).is_err());
    assert!(model.tokenize(&[]).is_err());
}

#[test]
fn detokenize_gives_full_backbones_independent_of_batching() {
    let (_, model) = tiny_model(3);
    let tokens = model.tokenize(&[example("1a8o_A.pdb"), example("HHH_rd1_0473_A.pdb")]).unwrap();
    let both = model.detokenize(&tokens).unwrap();
    let alone = model.detokenize(&tokens[1..]).unwrap();
    assert_eq!(both[0].len(), 70);
    assert_eq!(both[1].len(), 43);
    assert!(both.iter().all(Backbone::is_full));
    let max_diff = both[1]
        .coords
        .iter()
        .zip(&alone[0].coords)
        .flat_map(|(a, b)| a.iter().zip(b).flat_map(|(p, q)| (0..3).map(move |k| (p[k] - q[k]).abs())))
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-3, "batching changed the decoded structure by {max_diff} Å");
    // Ideal covalent geometry inside each residue: N–CA 1.458 Å, CA–C 1.525 Å, C=O 1.231 Å.
    let d = |p: [f32; 3], q: [f32; 3]| ((0..3).map(|k| (p[k] - q[k]).powi(2)).sum::<f32>()).sqrt();
    for r in &both[0].coords {
        assert!((d(r[0], r[1]) - 1.458).abs() < 1e-3);
        assert!((d(r[1], r[2]) - 1.525).abs() < 1e-3);
        assert!((d(r[2], r[3]) - 1.231).abs() < 1e-3);
    }
    assert!(model.detokenize(&[vec![8192]]).is_err());
    assert!(model.detokenize(&[vec![]]).is_err());
}

fn batch_of(chains: &[Backbone], cfg: &TokenizerConfig) -> (protforge_tokenizer::features::EncoderInput, protforge_tokenizer::features::Targets) {
    let atoms: Vec<ChainAtoms> = chains.iter().map(ChainAtoms::from_backbone).collect();
    (encoder_input(&atoms, cfg, &Device::Cpu).unwrap(), targets(&atoms, cfg, &Device::Cpu).unwrap())
}

#[test]
fn every_parameter_gets_a_gradient() {
    let (varmap, model) = tiny_model(4);
    // The zero-initialised backbone update blocks the gradient of everything upstream of the
    // frames at step 0; perturb it first.
    for (name, var) in named_vars(&varmap) {
        if name.contains(BB_UPDATE) {
            let v: Vec<f32> = (0..var.elem_count()).map(|k| ((k as f32) * 0.37).sin() * 0.1).collect();
            var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap()).unwrap();
        }
    }
    let cfg = TokenizerConfig::tiny();
    let chains = [example("HHH_rd1_0473_A.pdb").slice(0, 20), example("1a8o_A.pdb").slice(10, 30)];
    let (x, t) = batch_of(&chains, &cfg);
    let (parts, _, _) = model.loss(&x, &t, &LossWeights::default()).unwrap();
    let grads = parts.total.backward().unwrap();
    let missing = vars_without_grad(&named_vars(&varmap), &grads).unwrap();
    assert!(missing.is_empty(), "no gradient: {missing:?}");
    assert!(parts.fape > 0.0 && parts.distogram > 0.0 && parts.commitment > 0.0);
}

#[test]
fn loss_decreases_on_a_fixed_batch() {
    let (varmap, model) = tiny_model(5);
    let cfg = TokenizerConfig::tiny();
    let chains = [example("HHH_rd1_0473_A.pdb").slice(0, 24), example("barnase_A.pdb").slice(30, 54)];
    let (x, t) = batch_of(&chains, &cfg);
    let w = LossWeights::default();
    let vars = named_vars(&varmap);
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default()).unwrap();
    let loss = |m: &Tokenizer| m.loss(&x, &t, &w).unwrap().0;
    let before = loss(&model);
    for _ in 0..40 {
        let parts = loss(&model);
        let mut grads = parts.total.backward().unwrap();
        clip_grad_norm(&mut grads, &vars, 1.0).unwrap();
        opt.step(&grads, 3e-3).unwrap();
    }
    let after = loss(&model);
    assert!(after.reconstruction < 0.8 * before.reconstruction, "reconstruction {} -> {}", before.reconstruction, after.reconstruction);
    assert!(after.fape < before.fape, "fape {} -> {}", before.fape, after.fape);
}

fn example_set(names: &[&str]) -> ChainSet {
    let chains: Vec<Backbone> = names.iter().map(|n| example(n)).collect();
    ChainSet { weights: vec![1.0; chains.len()], chains }
}

#[test]
fn resume_replays_the_same_run() {
    let train = example_set(&["1a8o_A.pdb", "7jk8_A.pdb", "barnase_A.pdb", "t4_lysozyme_L99A_A.pdb"]);
    let val = example_set(&["HHH_rd1_0473_A.pdb"]);
    let cfg = TrainConfig::tiny();
    let batch = sample_batch(&train, &cfg, &mut protforge_nn::train::step_rng(0, 0)).unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch.iter().all(|b| b.len() == 20));

    let dir_a = tempfile::tempdir().unwrap();
    let mut a = Trainer::new(cfg.clone(), dir_a.path(), false, Device::Cpu).unwrap();
    let mut losses_a = Vec::new();
    let mut vals = Vec::new();
    a.run(&train, &val, None, &mut |r, v| {
        losses_a.push(r.loss);
        vals.extend(v.copied());
    })
    .unwrap();
    assert_eq!(vals.len(), 2);
    assert!(vals.iter().all(|v| v.ca_rmsd > 0.0 && v.code_usage > 0.0 && v.perplexity >= 1.0), "{vals:?}");

    let dir_b = tempfile::tempdir().unwrap();
    let mut b = Trainer::new(cfg.clone(), dir_b.path(), false, Device::Cpu).unwrap();
    let mut losses_b = Vec::new();
    b.run(&train, &val, Some(3), &mut |r, _| losses_b.push(r.loss)).unwrap();
    drop(b);
    let mut b = Trainer::new(cfg.clone(), dir_b.path(), true, Device::Cpu).unwrap();
    assert_eq!(b.step(), 3);
    b.run(&train, &val, None, &mut |r, _| losses_b.push(r.loss)).unwrap();
    assert_eq!(losses_a, losses_b, "resumed run diverged");
    for f in ["best/config.json", "best/model.safetensors", "checkpoint/state.json", "val.csv"] {
        assert!(dir_b.path().join(f).is_file(), "{f}");
    }
    let csv = std::fs::read_to_string(dir_b.path().join("train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    // The exported weights load as a tokenizer.
    let ck = protforge_nn::Checkpoint::new(dir_b.path().join("best"));
    let loaded_cfg: TokenizerConfig = ck.load_config().unwrap();
    let vb = VarBuilder::from_tensors(ck.load_tensors(&Device::Cpu).unwrap(), DType::F32, &Device::Cpu);
    let loaded = Tokenizer::new(&loaded_cfg, vb).unwrap();
    assert_eq!(loaded.tokenize(&[example("HHH_rd1_0473_A.pdb")]).unwrap()[0].len(), 43);
    // A different configuration cannot resume this run.
    let other = TrainConfig { lr: LrSchedule::Constant { lr: 1e-4 }, ..cfg };
    assert!(Trainer::new(other, dir_b.path(), true, Device::Cpu).is_err());
}
