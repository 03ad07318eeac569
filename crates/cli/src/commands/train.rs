//! `protforge train par`, `tokenizer`, `starmd`, `weaver` and `weaver-dpo`.

use crate::cli::{GlobalArgs, TrainParArgs, TrainTokenizerArgs};
use crate::printer::{Printer, out};
use anyhow::{Context, bail};
use protforge_data::{Dataset, Split};
use protforge_par::train::{CaSet, TrainConfig, Trainer};
use std::path::{Path, PathBuf};

/// Read a training config from .json or .toml.
fn read_config<C: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<C> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let cfg = if is_toml {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid config: {}", path.display(), e.message()))?
    } else {
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid config: {e}", path.display()))?
    };
    Ok(cfg)
}

/// The config at `path` (.json or .toml), or the built-in recipe.
fn config_or<C: serde::de::DeserializeOwned>(path: Option<&PathBuf>, default: impl FnOnce() -> C) -> anyhow::Result<C> {
    path.map_or_else(|| Ok(default()), |p| read_config(p))
}

/// `--data` and `--out` of a training run; refuses to start over an existing run without `--resume`.
fn run_paths<'a>(data: Option<&'a PathBuf>, out_dir: Option<&'a PathBuf>, resume: bool) -> anyhow::Result<(&'a Path, &'a Path)> {
    let (Some(data), Some(out_dir)) = (data, out_dir) else {
        bail!("--data and --out are required");
    };
    if out_dir.join("checkpoint").exists() && !resume {
        bail!("{}: a run already exists here (use --resume to continue it, or choose another --out)", out_dir.display());
    }
    Ok((data, out_dir))
}

pub(crate) fn par(args: &TrainParArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    let cfg = config_or(args.config.as_ref(), TrainConfig::cpu_small)?;
    if args.print_config {
        out(serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let (data, out_dir) = run_paths(args.data.as_ref(), args.out.as_ref(), args.resume)?;
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let ds = Dataset::open(data)?;
    let train = CaSet::from_dataset(&ds, Split::Train)?;
    let val = CaSet::from_dataset(&ds, Split::Val)?;
    if train.traces.is_empty() || val.traces.is_empty() {
        bail!("{}: needs both train and val chains (train {}, val {})", data.display(), train.traces.len(), val.traces.len());
    }
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.resume, device)?;
    std::fs::write(out_dir.join("train_config.json"), serde_json::to_string_pretty(&cfg)?)
        .with_context(|| format!("{}: cannot write train_config.json", out_dir.display()))?;
    printer.note(format!(
        "training PAR from step {} to {} on {} train / {} val chains → {}",
        trainer.step(),
        cfg.steps,
        train.traces.len(),
        val.traces.len(),
        out_dir.display()
    ));
    let remaining = args.max_steps.map_or(cfg.steps - trainer.step().min(cfg.steps), |m| m.min(cfg.steps - trainer.step().min(cfg.steps)));
    let bar = printer.bar(remaining, "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&train, &val, args.max_steps, &mut |r| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss));
        if let Some(v) = r.val_loss {
            bar.println(format!("step {:>7}  val loss {v:.4}", r.step));
        } else if verbose && r.step % 10 == 0 {
            bar.println(format!("step {:>7}  loss {:.4}  |g| {:.3}  lr {:.2e}", r.step, r.loss, r.grad_norm, r.lr));
        }
    })?;
    bar.finish_and_clear();
    printer.note(format!("done at step {}; best EMA weights in {}", trainer.step(), out_dir.join("best").display()));
    Ok(())
}

pub(crate) fn tokenizer(args: &TrainTokenizerArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_tokenizer::train::{ChainSet, TrainConfig, Trainer};
    let cfg = config_or(args.config.as_ref(), TrainConfig::cpu)?;
    if args.print_config {
        out(serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let (data, out_dir) = run_paths(args.data.as_ref(), args.out.as_ref(), args.resume)?;
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let ds = Dataset::open(data)?;
    let train = ChainSet::from_dataset(&ds, Split::Train, cfg.crop_min);
    let val = ChainSet::from_dataset(&ds, Split::Val, cfg.crop_min);
    if train.chains.is_empty() || val.chains.is_empty() {
        bail!(
            "{}: needs train and val chains of at least {} residues (train {}, val {})",
            data.display(),
            cfg.crop_min,
            train.chains.len(),
            val.chains.len()
        );
    }
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.resume, device)?;
    std::fs::write(out_dir.join("train_config.json"), serde_json::to_string_pretty(&cfg)?)
        .with_context(|| format!("{}: cannot write train_config.json", out_dir.display()))?;
    printer.note(format!(
        "training the tokenizer from step {} to {} on {} train / {} val chains → {}",
        trainer.step(),
        cfg.steps,
        train.chains.len(),
        val.chains.len(),
        out_dir.display()
    ));
    let left = cfg.steps - trainer.step().min(cfg.steps);
    let bar = printer.bar(args.max_steps.map_or(left, |m| m.min(left)), "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&train, &val, args.max_steps, &mut |r| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss));
        if let Some(v) = r.val {
            bar.println(format!(
                "step {:>7}  val loss {:.4}  fape {:.4}  CA RMSD {:.2} Å  codes used {:.1}%",
                r.step,
                v.loss,
                v.fape,
                v.ca_rmsd,
                100.0 * v.code_usage
            ));
        } else if verbose && r.step % 10 == 0 {
            bar.println(format!("step {:>7}  loss {:.4}  fape {:.4}  |g| {:.3}  lr {:.2e}", r.step, r.loss, r.fape, r.grad_norm, r.lr));
        }
    })?;
    bar.finish_and_clear();
    printer.note(format!("done at step {}; best EMA weights in {}", trainer.step(), out_dir.join("best").display()));
    Ok(())
}

pub(crate) fn starmd(args: &crate::cli::TrainStarmdArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_starmd::data::load_md;
    use protforge_starmd::train::{TrainConfig, Trainer};
    let cfg = config_or(args.config.as_ref(), TrainConfig::cpu_small)?;
    if args.print_config {
        out(serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    cfg.validate().with_context(|| args.config.as_ref().map_or_else(|| "built-in config".to_string(), |p| p.display().to_string()))?;
    let (data, out_dir) = run_paths(args.data.as_ref(), args.out.as_ref(), args.resume)?;
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let md = load_md(data, &cfg.load_options())?;
    for note in &md.skipped {
        printer.detail(format!("skipped {note}"));
    }
    let spec = cfg.window_spec();
    let (n_train, n_val) = (md.train.usable(&spec).len(), md.val.usable(&spec).len());
    if n_train == 0 || n_val == 0 {
        bail!(
            "{}: needs train and val trajectories of at least {} frames within the stride range {}-{} ns (usable: train {n_train}, val {n_val}; {} directories skipped, -v lists them)",
            data.display(),
            spec.frames,
            spec.dt_min_ns,
            spec.dt_max_ns,
            md.skipped.len()
        );
    }
    if let Some(max) = md.train.max_dt_ns(&spec)
        && max < spec.dt_max_ns * 0.999
    {
        printer.warn(format!(
            "the training trajectories allow strides up to {max:.3} ns only, below dt_max_ns = {} of the config (rollouts above {max:.3} ns extrapolate)",
            spec.dt_max_ns
        ));
    }
    let ns: f64 = md.train.trajectories.iter().map(|t| t.ns()).sum();
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.resume, device)?;
    std::fs::write(out_dir.join("train_config.json"), serde_json::to_string_pretty(&cfg)?)
        .with_context(|| format!("{}: cannot write train_config.json", out_dir.display()))?;
    printer.note(format!(
        "training STAR-MD ({} parameters) from step {} to {} on {n_train} train trajectories ({ns:.1} ns) / {n_val} val → {}",
        trainer.n_params(),
        trainer.step(),
        cfg.steps,
        out_dir.display()
    ));
    let left = cfg.steps - trainer.step().min(cfg.steps);
    let bar = printer.bar(args.max_steps.map_or(left, |m| m.min(left)), "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&md.train, &md.val, args.max_steps, &mut |r| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss.total));
        if let Some(v) = r.val_loss {
            bar.println(format!("step {:>7}  val loss {v:.4}", r.step));
        } else if verbose && r.step % 10 == 0 {
            let l = r.loss;
            bar.println(format!(
                "step {:>7}  loss {:.4}  rot {:.3}  trans {:.4}  bb {:.4}  dist {:.4}  |g| {:.3}  lr {:.2e}",
                r.step, l.total, l.rot, l.trans, l.bb_atoms, l.dist_map, r.grad_norm, r.lr
            ));
        }
    })?;
    bar.finish_and_clear();
    printer.note(format!("done at step {}; best EMA weights in {}", trainer.step(), out_dir.join("best").display()));
    Ok(())
}

/// Open the dataset and the domain cache (built on first use) and the multi-domain chains of
/// both splits.
fn weaver_data(
    data: &Path,
    cache: &Path,
    params: &protforge_weaver::DomainParams,
    min_domains: usize,
    printer: &Printer,
) -> anyhow::Result<(protforge_weaver::dataset::DomainSet, protforge_weaver::dataset::DomainSet)> {
    use protforge_weaver::dataset::{DomainCache, DomainSet};
    let ds = Dataset::open(data)?;
    if !cache.is_file() {
        printer.note(format!("parsing the domains of {} chains into {} (once; about a minute)", ds.len(), cache.display()));
    }
    let (cache, _) = DomainCache::load_or_build(cache, &ds, params)?;
    let train = DomainSet::from_dataset(&ds, &cache, Split::Train, min_domains)?;
    let val = DomainSet::from_dataset(&ds, &cache, Split::Val, min_domains)?;
    if train.is_empty() || val.is_empty() {
        bail!("{}: needs train and val chains with at least {min_domains} domains (train {}, val {})", data.display(), train.len(), val.len());
    }
    Ok((train, val))
}

pub(crate) fn weaver(args: &crate::cli::TrainWeaverArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_weaver::train::{TrainConfig, Trainer};
    let cfg = config_or(args.config.as_ref(), TrainConfig::cpu_small)?;
    if args.print_config {
        out(serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let (data, out_dir) = run_paths(args.data.as_ref(), args.out.as_ref(), args.resume)?;
    cfg.validate()?;
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let (train, val) = weaver_data(data, &args.domains, &cfg.domains, cfg.min_domains, printer)?;
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.resume, device)?;
    std::fs::write(out_dir.join("train_config.json"), serde_json::to_string_pretty(&cfg)?)
        .with_context(|| format!("{}: cannot write train_config.json", out_dir.display()))?;
    printer.note(format!(
        "training ProteinWeaver from step {} to {} on {} train / {} val multi-domain chains → {}",
        trainer.step(),
        cfg.steps,
        train.len(),
        val.len(),
        out_dir.display()
    ));
    let left = cfg.steps - trainer.step().min(cfg.steps);
    let bar = printer.bar(args.max_steps.map_or(left, |m| m.min(left)), "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&train, &val, args.max_steps, &mut |r| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss.total));
        if let Some(v) = r.val {
            bar.println(format!("step {:>7}  val loss {:.4}  rot {:.3}  trans {:.4}  intra {:.4}", r.step, v.total, v.rot, v.trans, v.intra));
        } else if verbose && r.step % 10 == 0 {
            bar.println(format!("step {:>7}  loss {:.4}  |g| {:.3}  lr {:.2e}", r.step, r.loss.total, r.grad_norm, r.lr));
        }
    })?;
    bar.finish_and_clear();
    printer.note(format!("done at step {}; best EMA weights in {}", trainer.step(), out_dir.join("best").display()));
    Ok(())
}

pub(crate) fn weaver_dpo(args: &crate::cli::TrainWeaverDpoArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_weaver::dpo::{DpoConfig, DpoTrainer};
    let mut cfg: DpoConfig = config_or(args.config.as_ref(), DpoConfig::cpu)?;
    if let Some(base) = &args.base {
        cfg.base.clone_from(base);
    }
    if args.print_config {
        out(serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let (Some(data), Some(out_dir)) = (&args.data, &args.out) else {
        bail!("--data and --out are required");
    };
    if out_dir.exists() && std::fs::read_dir(out_dir).is_ok_and(|mut d| d.next().is_some()) && !args.resume {
        bail!("{}: a run already exists here (use --resume to continue it, or choose another --out)", out_dir.display());
    }
    cfg.validate()?;
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let (train, val) = weaver_data(data, &args.domains, &protforge_weaver::DomainParams::default(), 2, printer)?;
    let mut trainer = DpoTrainer::new(cfg.clone(), out_dir, args.resume, device)?;
    std::fs::write(out_dir.join("dpo_config.json"), serde_json::to_string_pretty(&cfg)?)
        .with_context(|| format!("{}: cannot write dpo_config.json", out_dir.display()))?;
    let n_pairs = (cfg.pairs.num_inputs + cfg.pairs.num_val_inputs) as u64;
    printer.note(format!(
        "sampling {} assemblies for {n_pairs} inputs with the base model {} → {}",
        cfg.pairs.k_samples,
        cfg.base.display(),
        out_dir.display()
    ));
    let bar = printer.bar(n_pairs, "preference pairs");
    let (pairs, val_pairs) = trainer.prepare_pairs(&train, &val, &mut |split, i, made| {
        bar.inc(1);
        if printer.verbose() > 0 && !made {
            bar.println(format!("{split} input {i}: samples scored alike, no pair"));
        }
    })?;
    bar.finish_and_clear();
    printer.note(format!("{} training / {} validation pairs; DPO from step {} to {}", pairs.len(), val_pairs.len(), trainer.step(), cfg.steps));
    let left = cfg.steps - trainer.step().min(cfg.steps);
    let bar = printer.bar(args.max_steps.map_or(left, |m| m.min(left)), "aligning");
    trainer.run(&pairs, &val_pairs, args.max_steps, &mut |r| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3} acc {:.2}", r.train.loss, r.train.accuracy));
        if let Some(v) = r.val {
            bar.println(format!("step {:>6}  val DPO loss {:.4}  accuracy {:.3}  margin {:.4}", r.step, v.loss, v.accuracy, v.margin));
        }
    })?;
    bar.finish_and_clear();
    printer.note(format!("done at step {}; aligned EMA weights in {}", trainer.step(), out_dir.join("best").display()));
    Ok(())
}
