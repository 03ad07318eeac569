//! Deterministic parameter initialisation.
//!
//! `VarMap` initialises new variables from candle's thread RNG, which cannot be seeded
//! (RUST-NOTES §2.1). After building a model, call [`init_seeded`] to overwrite every
//! variable from our own `StdRng`, so that model initialisation is reproducible.
//!
//! Each variable gets its own generator, seeded by `sample_seed(seed, fnv1a(name))`, so
//! adding a layer does not change the initial values of the others.

use crate::NnError;
use crate::layers::ADALN_MOD;

/// Path segment marking parameters that must start at zero under [`default_init_rule`]: side
/// inputs added to a residual stream, so a model grown from trained weights (a warm start
/// with new inputs) computes exactly the old function at step 0.
pub const ZERO_INIT: &str = "zero_init";
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use rand::Rng;
use rand::rngs::StdRng;

/// How one variable is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitRule {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// A constant.
    Const(f64),
    /// Normal with mean 0 and this standard deviation.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// Uniform on `[lo, hi)`.
    Uniform {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
}

/// The default rule, by name and shape, in this order:
/// 1. any parameter under an AdaLN-Zero modulation (path segment [`ADALN_MOD`]) or under
///    [`ZERO_INIT`] → zeros (DiT's adaLN-Zero, Peebles & Xie 2023 §3.2: blocks start as the
///    identity);
/// 2. names ending in `bias` → zeros;
/// 3. rank-1 `*.weight` (LayerNorm scales) → ones;
/// 4. rank-2 `*.weight` `[out, in]` (Linear, Embedding) → `N(0, 1/in)`
///    (LeCun normal, std `1/sqrt(fan_in)`);
/// 5. anything else → `N(0, 0.02²)`.
#[must_use]
pub fn default_init_rule(name: &str, shape: &[usize]) -> InitRule {
    let under_adaln = name.split('.').any(|seg| seg == ADALN_MOD || seg == ZERO_INIT);
    if under_adaln || name.ends_with("bias") {
        InitRule::Zeros
    } else if name.ends_with("weight") && shape.len() == 1 {
        InitRule::Ones
    } else if name.ends_with("weight") && shape.len() == 2 {
        InitRule::Normal { std: 1.0 / (shape[1].max(1) as f64).sqrt() }
    } else {
        InitRule::Normal { std: 0.02 }
    }
}

/// FNV-1a 64-bit hash of a name (stable across runs and platforms).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The variables of a VarMap as `(name, var)` pairs sorted by name (a stable order for
/// optimizers, EMA and checkpoints).
#[must_use]
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Re-initialise every variable of `varmap` deterministically with [`default_init_rule`].
///
/// # Errors
/// Candle errors building or setting tensors.
pub fn init_seeded(varmap: &VarMap, seed: u64) -> Result<(), NnError> {
    init_seeded_with(varmap, seed, default_init_rule)
}

/// Re-initialise every variable of `varmap` deterministically with a custom rule
/// (`rule(name, shape)`); values are drawn in f32 and cast to the variable's dtype.
///
/// # Errors
/// Candle errors building or setting tensors; [`NnError::BadParameter`] for an invalid rule.
pub fn init_seeded_with(
    varmap: &VarMap,
    seed: u64,
    rule: impl Fn(&str, &[usize]) -> InitRule,
) -> Result<(), NnError> {
    for (name, var) in named_vars(varmap) {
        let shape = var.dims().to_vec();
        let n: usize = shape.iter().product();
        let mut rng: StdRng = protforge_flow::rng::seeded(protforge_flow::rng::sample_seed(seed, fnv1a(&name)));
        let data: Vec<f32> = match rule(&name, &shape) {
            InitRule::Zeros => vec![0.0; n],
            InitRule::Ones => vec![1.0; n],
            InitRule::Const(c) => vec![c as f32; n],
            InitRule::Normal { std } => {
                let z = protforge_flow::rng::randn(&mut rng, &[n], &candle_core::Device::Cpu)?.to_vec1::<f32>()?;
                z.into_iter().map(|v| v * std as f32).collect()
            }
            InitRule::Uniform { lo, hi } => {
                if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                    return Err(NnError::BadParameter { what: "uniform init bounds", reason: format!("{name}: [{lo}, {hi})") });
                }
                (0..n).map(|_| rng.random_range(lo..hi) as f32).collect()
            }
        };
        let t = Tensor::from_vec(data, shape, var.device())?.to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;

    fn model(varmap: &VarMap) {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        let cfg = crate::block::BlockConfig { d_model: 32, n_heads: 4, mlp_hidden: 48, d_cond: Some(8), qk_norm: true };
        crate::block::TransformerBlock::new(&cfg, vb.pp("blocks.0")).unwrap();
    }

    fn values(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
        named_vars(varmap)
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect()
    }

    #[test]
    fn init_is_reproducible_and_follows_the_rules() {
        let (a, b, c) = (VarMap::new(), VarMap::new(), VarMap::new());
        for m in [&a, &b, &c] {
            model(m);
        }
        init_seeded(&a, 42).unwrap();
        init_seeded(&b, 42).unwrap();
        init_seeded(&c, 43).unwrap();
        let (va, vb, vc) = (values(&a), values(&b), values(&c));
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        for (name, v) in &va {
            if name.contains(".adaln_mod.") || name.ends_with("bias") {
                assert!(v.iter().all(|x| *x == 0.0), "{name}");
            } else if name.ends_with("norm.weight") {
                assert!(v.iter().all(|x| *x == 1.0), "{name}");
            }
        }
        let w = &va.iter().find(|(n, _)| n == "blocks.0.attn.q.weight").unwrap().1;
        let var = w.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var * 32.0 - 1.0).abs() < 0.15, "variance·fan_in = {}", var * 32.0);
        assert_eq!(default_init_rule("x.adaln_mod.weight", &[3, 4]), InitRule::Zeros);
        assert_eq!(default_init_rule("emb.weight", &[10, 4]), InitRule::Normal { std: 0.5 });
        assert_eq!(default_init_rule("ln.weight", &[4]), InitRule::Ones);
    }

    #[test]
    fn custom_rule_and_bad_uniform() {
        let m = VarMap::new();
        model(&m);
        init_seeded_with(&m, 1, |_, _| InitRule::Uniform { lo: 0.25, hi: 0.5 }).unwrap();
        assert!(values(&m).iter().all(|(_, v)| v.iter().all(|x| (0.25..0.5).contains(x))));
        assert!(init_seeded_with(&m, 1, |_, _| InitRule::Uniform { lo: 1.0, hi: 1.0 }).is_err());
        init_seeded_with(&m, 1, |_, _| InitRule::Const(2.0)).unwrap();
        assert!(values(&m).iter().all(|(_, v)| v.iter().all(|x| *x == 2.0)));
    }
}
