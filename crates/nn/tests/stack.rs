//! End-to-end checks on a tiny stack of two AdaLN-conditioned attention + SwiGLU blocks
//! (odd sizes: d = 24, 3 heads, blocks of 3, 5, 7 tokens): block-wise decoding with a KV
//! cache equals one block-causal pass; every parameter gets a gradient; training resumed
//! from a `TrainCheckpoint` is bit-identical to an uninterrupted run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use protforge_nn::attention::{AttnInputs, KvCache, Rope, block_causal_mask};
use protforge_nn::block::{BlockConfig, TransformerBlock};
use protforge_nn::init::{InitRule, default_init_rule, init_seeded, init_seeded_with, named_vars};
use protforge_nn::train::{
    AdamW, AdamWConfig, Ema, LrSchedule, TrainCheckpoint, TrainState, clip_grad_norm, step_rng, vars_missing_grad,
};
use rand::Rng;

const D_IN: usize = 4;
const D_COND: usize = 5;
const D: usize = 24;
const HEADS: usize = 3;
const BLOCKS: [usize; 3] = [3, 5, 7];

struct Stack {
    embed: Linear,
    bias_proj: Linear,
    blocks: Vec<TransformerBlock>,
    head: Linear,
    rope: Rope,
}

/// Inputs of one forward pass over `T` tokens.
struct Batch {
    x: Tensor,      // [B, T, D_IN]
    cond: Tensor,   // [B, T, D_COND]
    pos: Tensor,    // [B, T] fractional positions
    pair: Tensor,   // [B, T, T, 2] pair features → per-head bias
    target: Tensor, // [B, T, D_IN]
}

impl Stack {
    fn new(vb: VarBuilder) -> Result<Self> {
        let cfg = BlockConfig { d_model: D, n_heads: HEADS, mlp_hidden: 40, d_cond: Some(D_COND), qk_norm: true };
        let blocks = (0..2).map(|i| TransformerBlock::new(&cfg, vb.pp(format!("blocks.{i}")))).collect::<Result<_>>()?;
        Ok(Self {
            embed: candle_nn::linear(D_IN, D, vb.pp("embed"))?,
            bias_proj: candle_nn::linear_no_bias(2, HEADS, vb.pp("bias_proj"))?,
            blocks,
            head: candle_nn::linear(D, D_IN, vb.pp("head"))?,
            rope: Rope::new(D / HEADS, 100.0)?,
        })
    }

    /// Pair bias `[B, H, T, T]` from pair features `[B, T, T, 2]`.
    fn pair_bias(&self, pair: &Tensor) -> Result<Tensor> {
        self.bias_proj.forward(pair)?.permute((0, 3, 1, 2))?.contiguous()
    }

    /// Tokens `[start, start + n)` attending to keys `[0, start + n)`; with caches the keys
    /// before `start` come from the caches, otherwise `mask` must hide what is not allowed.
    fn forward(
        &self,
        b: &Batch,
        start: usize,
        n: usize,
        mask: Option<&Tensor>,
        mut caches: Option<&mut [KvCache]>,
    ) -> Result<Tensor> {
        let x = self.embed.forward(&b.x.narrow(1, start, n)?)?;
        let cond = b.cond.narrow(1, start, n)?;
        let tables = self.rope.tables(&b.pos.narrow(1, start, n)?)?;
        let keys_end = start + n;
        let key_start = if caches.is_some() { 0 } else { start };
        let bias = self.pair_bias(&b.pair)?.narrow(2, start, n)?.narrow(3, key_start, keys_end - key_start)?;
        let inputs = AttnInputs { bias: Some(&bias), mask, rope: Some(&tables) };
        let mut h = x;
        for (i, block) in self.blocks.iter().enumerate() {
            let cache = caches.as_deref_mut().map(|c| &mut c[i]);
            h = block.forward(&h, Some(&cond), &inputs, cache)?;
        }
        self.head.forward(&h)
    }

    fn loss(&self, b: &Batch, mask: &Tensor) -> Result<Tensor> {
        let t = b.x.dim(1)?;
        let y = self.forward(b, 0, t, Some(mask), None)?;
        (y - &b.target)?.sqr()?.mean_all()
    }
}

fn randn(rng: &mut impl Rng, shape: &[usize]) -> Tensor {
    protforge_flow::rng::randn(rng, shape, &Device::Cpu).unwrap()
}

fn batch(rng: &mut impl Rng, bsz: usize) -> Batch {
    let t: usize = BLOCKS.iter().sum();
    // PAR-like fractional positions: linspace(1, L_b, t) with a different L_b per sequence.
    let pos: Vec<f32> = (0..bsz)
        .flat_map(|bi| {
            let l = 20.0 + 13.0 * bi as f32;
            (0..t).map(move |i| 1.0 + (l - 1.0) * i as f32 / (t - 1) as f32)
        })
        .collect();
    Batch {
        x: randn(rng, &[bsz, t, D_IN]),
        cond: randn(rng, &[bsz, t, D_COND]),
        pos: Tensor::from_vec(pos, (bsz, t), &Device::Cpu).unwrap(),
        pair: randn(rng, &[bsz, t, t, 2]),
        target: randn(rng, &[bsz, t, D_IN]),
    }
}

/// Default init but with non-zero AdaLN modulation, so the blocks are not the identity.
fn init_nonzero(varmap: &VarMap, seed: u64) {
    init_seeded_with(varmap, seed, |name, shape| {
        if name.contains(".adaln_mod.") { InitRule::Normal { std: 0.3 } } else { default_init_rule(name, shape) }
    })
    .unwrap();
}

fn build(seed: u64) -> (VarMap, Stack) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let stack = Stack::new(vb).unwrap();
    init_nonzero(&varmap, seed);
    (varmap, stack)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn kv_cache_decoding_equals_block_causal_full_pass() {
    let (_, stack) = build(1);
    let b = batch(&mut protforge_flow::rng::seeded(2), 2);
    let t: usize = BLOCKS.iter().sum();
    let mask = block_causal_mask(&BLOCKS, &Device::Cpu).unwrap();
    let full = stack.forward(&b, 0, t, Some(&mask), None).unwrap();

    let mut caches = KvCache::for_layers(2);
    let mut parts = Vec::new();
    let mut start = 0;
    for &n in &BLOCKS {
        parts.push(stack.forward(&b, start, n, None, Some(&mut caches)).unwrap());
        start += n;
        assert_eq!(caches[1].len(), start);
    }
    let cached = Tensor::cat(&parts, 1).unwrap();
    let diff = max_abs_diff(&full, &cached);
    eprintln!("max |cached - full| = {diff:e}");
    assert!(diff < 1e-5, "cached vs full: {diff}");
    // The mask matters: without it, early blocks would see later ones.
    let unmasked = stack.forward(&b, 0, t, None, None).unwrap();
    assert!(max_abs_diff(&full.narrow(1, 0, 3).unwrap(), &unmasked.narrow(1, 0, 3).unwrap()) > 1e-3);
}

#[test]
fn every_parameter_gets_a_gradient() {
    let (varmap, stack) = build(3);
    let b = batch(&mut protforge_flow::rng::seeded(4), 2);
    let mask = block_causal_mask(&BLOCKS, &Device::Cpu).unwrap();
    let loss = stack.loss(&b, &mask).unwrap();
    let missing = vars_missing_grad(&varmap, &loss).unwrap();
    assert!(missing.is_empty(), "no gradient for {missing:?}");
    assert_eq!(named_vars(&varmap).len(), 2 + 1 + 2 * 15 + 2, "parameter count changed");

    // At AdaLN-Zero initialisation the blocks are gated off: the helper reports them.
    init_seeded(&varmap, 3).unwrap();
    let loss = stack.loss(&b, &mask).unwrap();
    let missing = vars_missing_grad(&varmap, &loss).unwrap();
    assert!(missing.iter().any(|n| n == "blocks.0.attn.q.weight"), "{missing:?}");
    assert!(!missing.iter().any(|n| n.contains("adaln_mod")), "{missing:?}");
}

const SEED: u64 = 77;

fn train_steps(
    stack: &Stack,
    vars: &[(String, candle_core::Var)],
    opt: &mut AdamW,
    ema: &mut Ema,
    steps: std::ops::Range<u64>,
) {
    let schedule = LrSchedule::WarmupCosine { warmup: 3, total: 10, peak: 1e-2, floor: 1e-4 };
    let mask = block_causal_mask(&BLOCKS, &Device::Cpu).unwrap();
    for step in steps {
        let b = batch(&mut step_rng(SEED, step), 2);
        let loss = stack.loss(&b, &mask).unwrap();
        let mut grads = loss.backward().unwrap();
        clip_grad_norm(&mut grads, vars, 0.5).unwrap();
        assert_eq!(opt.step_count(), step);
        opt.step(&grads, schedule.lr(opt.step_count())).unwrap();
        ema.update().unwrap();
    }
}

fn snapshot(vars: &[(String, candle_core::Var)]) -> Vec<(String, Vec<f32>)> {
    vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

#[test]
fn resume_from_checkpoint_is_bit_identical() {
    let cfg = AdamWConfig { weight_decay: 0.05, ..AdamWConfig::default() };

    // Straight: 10 steps.
    let (vm_a, stack_a) = build(10);
    let vars_a = named_vars(&vm_a);
    let mut opt_a = AdamW::new(vars_a.clone(), cfg).unwrap();
    let mut ema_a = Ema::new(&vars_a, 0.9).unwrap();
    let before = snapshot(&vars_a);
    train_steps(&stack_a, &vars_a, &mut opt_a, &mut ema_a, 0..10);
    assert_ne!(before, snapshot(&vars_a), "training must change the parameters");

    // Interrupted: 5 steps, save, restore into a fresh, differently initialised model, 5 more.
    let dir = tempfile::tempdir().unwrap();
    let ck = TrainCheckpoint::new(dir.path().join("state"));
    {
        let (vm_b, stack_b) = build(10);
        let vars_b = named_vars(&vm_b);
        let mut opt_b = AdamW::new(vars_b.clone(), cfg).unwrap();
        let mut ema_b = Ema::new(&vars_b, 0.9).unwrap();
        train_steps(&stack_b, &vars_b, &mut opt_b, &mut ema_b, 0..5);
        let state = TrainState { step: 5, epoch: 0, seed: SEED, best_val_loss: None, wall_time_s: 0.1, config: serde_json::json!({"d": D}) };
        ck.save(&state, &vars_b, &opt_b, Some(&ema_b)).unwrap();
    }
    let (vm_c, stack_c) = build(999);
    let vars_c = named_vars(&vm_c);
    let mut opt_c = AdamW::new(vars_c.clone(), cfg).unwrap();
    let mut ema_c = Ema::new(&vars_c, 0.9).unwrap();
    let state: TrainState<serde_json::Value> = ck.restore(&vars_c, &mut opt_c, Some(&mut ema_c)).unwrap();
    assert_eq!((state.step, state.seed, opt_c.step_count()), (5, SEED, 5));
    train_steps(&stack_c, &vars_c, &mut opt_c, &mut ema_c, state.step..10);

    assert_eq!(snapshot(&vars_a), snapshot(&vars_c), "parameters differ after resume");
    let (ea, ec) = (ema_a.tensors(), ema_c.tensors());
    for (name, t) in &ea {
        assert_eq!(max_abs_diff(t, &ec[name]), 0.0, "EMA {name}");
    }
    let (sa, sc) = (opt_a.state_tensors().unwrap(), opt_c.state_tensors().unwrap());
    for (name, t) in &sa {
        if name != "step" {
            assert_eq!(max_abs_diff(t, &sc[name]), 0.0, "moment {name}");
        }
    }
}
