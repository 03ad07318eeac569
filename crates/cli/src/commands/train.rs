//! `protforge train par`, `tokenizer`, `starmd`, `weaver` and `weaver-dpo`.

use crate::cli::{GlobalArgs, TrainDatasetArgs, TrainRunArgs, TrainStarmdArgs, TrainWeaverArgs, TrainWeaverDpoArgs};
use crate::printer::{Printer, out};
use anyhow::{Context, bail};
use indicatif::ProgressBar;
use protforge_data::{Dataset, Split};
use protforge_nn::train::Trainee;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Read a training config from .json or .toml.
fn read_config<C: DeserializeOwned>(path: &Path) -> anyhow::Result<C> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let cfg = if is_toml {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid config: {}", path.display(), e.message()))?
    } else {
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid config: {e}", path.display()))?
    };
    Ok(cfg)
}

/// The config at `--config` (.json or .toml), or the built-in recipe.
fn config_or<C: DeserializeOwned>(run: &TrainRunArgs, default: impl FnOnce() -> C) -> anyhow::Result<C> {
    run.config.as_ref().map_or_else(|| Ok(default()), |p| read_config(p))
}

/// With `--print-config`, print `cfg` as JSON and return true (the command then stops).
fn printed<C: Serialize>(run: &TrainRunArgs, cfg: &C) -> anyhow::Result<bool> {
    if run.print_config {
        out(serde_json::to_string_pretty(cfg)?);
    }
    Ok(run.print_config)
}

/// `--data` and `--out` of a training run; refuses to start over an existing run without
/// `--resume` (a run exists once `marker` is in OUT).
fn run_paths<'a>(data: Option<&'a PathBuf>, run: &'a TrainRunArgs, marker: &str) -> anyhow::Result<(&'a Path, &'a Path)> {
    let (Some(data), Some(out_dir)) = (data, run.out.as_ref()) else {
        bail!("--data and --out are required");
    };
    if out_dir.join(marker).exists() && !run.resume {
        bail!("{}: a run already exists here (use --resume to continue it, or choose another --out)", out_dir.display());
    }
    Ok((data, out_dir))
}

/// The device of `--device`.
fn device(global: &GlobalArgs) -> anyhow::Result<candle_core::Device> {
    Ok(global.device.parse::<protforge_nn::DeviceSpec>()?.open()?)
}

/// Record the configuration a run uses as OUT/`file` (JSON).
fn write_config<C: Serialize>(out_dir: &Path, file: &str, cfg: &C) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("{}: cannot create the run directory", out_dir.display()))?;
    let path = out_dir.join(file);
    protforge_structure::io::write_file_atomic(&path, serde_json::to_string_pretty(cfg)?.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// A progress bar over the steps this invocation runs: from `step` to `total`, or `--max-steps`.
fn step_bar(printer: &Printer, run: &TrainRunArgs, step: u64, total: u64, label: &str) -> ProgressBar {
    let left = total - step.min(total);
    printer.bar(run.max_steps.map_or(left, |m| m.min(left)), label)
}

/// Clear the bar and say where the run's weights are.
fn finish(printer: &Printer, bar: &ProgressBar, step: u64, out_dir: &Path, what: &str) {
    bar.finish_and_clear();
    printer.note(format!("done at step {step}; {what} in {}", out_dir.join("best").display()));
}

pub(crate) fn par(args: &TrainDatasetArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_par::train::{CaSet, TrainConfig, Trainer};
    let cfg = config_or(&args.run, TrainConfig::cpu_small)?;
    if printed(&args.run, &cfg)? {
        return Ok(());
    }
    let (data, out_dir) = run_paths(args.data.as_ref(), &args.run, "checkpoint")?;
    let device = device(global)?;
    let ds = Dataset::open(data)?;
    let train = CaSet::from_dataset(&ds, Split::Train)?;
    let val = CaSet::from_dataset(&ds, Split::Val)?;
    if train.traces.is_empty() || val.traces.is_empty() {
        bail!("{}: needs both train and val chains (train {}, val {})", data.display(), train.traces.len(), val.traces.len());
    }
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.run.resume, device)?;
    write_config(out_dir, "train_config.json", &cfg)?;
    printer.note(format!(
        "training PAR from step {} to {} on {} train / {} val chains → {}",
        trainer.step(),
        cfg.steps,
        train.traces.len(),
        val.traces.len(),
        out_dir.display()
    ));
    let bar = step_bar(printer, &args.run, trainer.step(), cfg.steps, "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&train, &val, args.run.max_steps, &mut |r, v| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss));
        if let Some(v) = v {
            bar.println(format!("step {:>7}  val loss {v:.4}", r.step));
        } else if verbose && r.step % 10 == 0 {
            bar.println(format!("step {:>7}  loss {:.4}  |g| {:.3}  lr {:.2e}", r.step, r.loss, r.grad_norm, r.lr));
        }
    })?;
    finish(printer, &bar, trainer.step(), out_dir, "best EMA weights");
    Ok(())
}

pub(crate) fn tokenizer(args: &TrainDatasetArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_tokenizer::train::{ChainSet, TrainConfig, Trainer};
    let cfg = config_or(&args.run, TrainConfig::cpu)?;
    if printed(&args.run, &cfg)? {
        return Ok(());
    }
    let (data, out_dir) = run_paths(args.data.as_ref(), &args.run, "checkpoint")?;
    let device = device(global)?;
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
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.run.resume, device)?;
    write_config(out_dir, "train_config.json", &cfg)?;
    printer.note(format!(
        "training the tokenizer from step {} to {} on {} train / {} val chains → {}",
        trainer.step(),
        cfg.steps,
        train.chains.len(),
        val.chains.len(),
        out_dir.display()
    ));
    let bar = step_bar(printer, &args.run, trainer.step(), cfg.steps, "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&train, &val, args.run.max_steps, &mut |r, v| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss));
        if let Some(v) = v {
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
    finish(printer, &bar, trainer.step(), out_dir, "best EMA weights");
    Ok(())
}

pub(crate) fn starmd(args: &TrainStarmdArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_starmd::data::load_md;
    use protforge_starmd::train::{TrainConfig, Trainer};
    let cfg = config_or(&args.run, TrainConfig::cpu_small)?;
    if printed(&args.run, &cfg)? {
        return Ok(());
    }
    cfg.validate().with_context(|| args.run.config.as_ref().map_or_else(|| "built-in config".to_string(), |p| p.display().to_string()))?;
    let (data, out_dir) = run_paths(args.data.as_ref(), &args.run, "checkpoint")?;
    let device = device(global)?;
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
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.run.resume, device)?;
    trainer.set_data_max_dt_ns(md.train.max_dt_ns(&spec));
    write_config(out_dir, "train_config.json", &cfg)?;
    printer.note(format!(
        "training STAR-MD ({} parameters) from step {} to {} on {n_train} train trajectories ({ns:.1} ns) / {n_val} val → {}",
        trainer.n_params(),
        trainer.step(),
        cfg.steps,
        out_dir.display()
    ));
    let bar = step_bar(printer, &args.run, trainer.step(), cfg.steps, "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&md.train, &md.val, args.run.max_steps, &mut |r, v| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss.total));
        if let Some(v) = v {
            bar.println(format!("step {:>7}  val loss {v:.4}", r.step));
        } else if verbose && r.step % 10 == 0 {
            let l = r.loss;
            bar.println(format!(
                "step {:>7}  loss {:.4}  rot {:.3}  trans {:.4}  bb {:.4}  dist {:.4}  |g| {:.3}  lr {:.2e}",
                r.step, l.total, l.rot, l.trans, l.bb_atoms, l.dist_map, r.grad_norm, r.lr
            ));
        }
    })?;
    finish(printer, &bar, trainer.step(), out_dir, "best EMA weights");
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

pub(crate) fn weaver(args: &TrainWeaverArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_weaver::train::{TrainConfig, Trainer};
    let cfg = config_or(&args.run, TrainConfig::cpu_small)?;
    if printed(&args.run, &cfg)? {
        return Ok(());
    }
    let (data, out_dir) = run_paths(args.data.as_ref(), &args.run, "checkpoint")?;
    cfg.validate()?;
    let device = device(global)?;
    let (train, val) = weaver_data(data, &args.domains, &cfg.domains, cfg.min_domains, printer)?;
    let mut trainer = Trainer::new(cfg.clone(), out_dir, args.run.resume, device)?;
    write_config(out_dir, "train_config.json", &cfg)?;
    printer.note(format!(
        "training ProteinWeaver from step {} to {} on {} train / {} val multi-domain chains → {}",
        trainer.step(),
        cfg.steps,
        train.len(),
        val.len(),
        out_dir.display()
    ));
    let bar = step_bar(printer, &args.run, trainer.step(), cfg.steps, "training");
    let verbose = printer.verbose() > 0;
    trainer.run(&train, &val, args.run.max_steps, &mut |r, v| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss.total));
        if let Some(v) = v {
            bar.println(format!("step {:>7}  val loss {:.4}  rot {:.3}  trans {:.4}  intra {:.4}", r.step, v.total, v.rot, v.trans, v.intra));
        } else if verbose && r.step % 10 == 0 {
            bar.println(format!("step {:>7}  loss {:.4}  |g| {:.3}  lr {:.2e}", r.step, r.loss.total, r.grad_norm, r.lr));
        }
    })?;
    finish(printer, &bar, trainer.step(), out_dir, "best EMA weights");
    Ok(())
}

pub(crate) fn weaver_dpo(args: &TrainWeaverDpoArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    use protforge_weaver::dpo::{DpoConfig, DpoTrainer};
    let mut cfg: DpoConfig = config_or(&args.run, DpoConfig::cpu)?;
    if let Some(base) = &args.base {
        cfg.base.clone_from(base);
    }
    if printed(&args.run, &cfg)? {
        return Ok(());
    }
    // The preference pairs are written before the first checkpoint, so they mark a run too.
    let (data, out_dir) = run_paths(args.data.as_ref(), &args.run, "pairs_train.jsonl")?;
    if out_dir.join("checkpoint").exists() && !args.run.resume {
        bail!("{}: a run already exists here (use --resume to continue it, or choose another --out)", out_dir.display());
    }
    cfg.validate()?;
    let device = device(global)?;
    let (train, val) = weaver_data(data, &args.domains, &protforge_weaver::DomainParams::default(), 2, printer)?;
    let mut trainer = DpoTrainer::new(cfg.clone(), out_dir, args.run.resume, device)?;
    write_config(out_dir, "dpo_config.json", &cfg)?;
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
    let bar = step_bar(printer, &args.run, trainer.step(), cfg.steps, "aligning");
    trainer.run(&pairs, &val_pairs, args.run.max_steps, &mut |r, v| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3} acc {:.2}", r.train.loss, r.train.accuracy));
        if let Some(v) = v {
            bar.println(format!("step {:>6}  val DPO loss {:.4}  accuracy {:.3}  margin {:.4}", r.step, v.loss, v.accuracy, v.margin));
        }
    })?;
    if trainer.step() >= cfg.steps {
        // The validation DPO loss is a weak guide to sample quality (weights/weaver/CARD.md), so
        // the end-of-schedule EMA weights are kept next to best/ for comparison by sampling.
        use protforge_nn::train::Trainee;
        let dir = out_dir.join("final");
        trainer.export_ema(&dir).with_context(|| format!("{}: writing the final EMA weights", dir.display()))?;
        printer.note(format!("end-of-schedule EMA weights in {}", dir.display()));
    }
    finish(printer, &bar, trainer.step(), out_dir, "aligned EMA weights with the lowest validation DPO loss");
    Ok(())
}
