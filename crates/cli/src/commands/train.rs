//! `protforge train par`.

use crate::cli::{GlobalArgs, TrainParArgs};
use crate::printer::{Printer, out};
use anyhow::{Context, bail};
use protforge_data::{Dataset, Split};
use protforge_par::train::{CaSet, TrainConfig, Trainer};
use std::path::Path;

/// Read a training config from .json or .toml.
fn read_config(path: &Path) -> anyhow::Result<TrainConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let cfg = if is_toml {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid config: {}", path.display(), e.message()))?
    } else {
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid config: {e}", path.display()))?
    };
    Ok(cfg)
}

pub(crate) fn par(args: &TrainParArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(p) => read_config(p)?,
        None => TrainConfig::cpu_small(),
    };
    if args.print_config {
        out(serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let (Some(data), Some(out_dir)) = (&args.data, &args.out) else {
        bail!("--data and --out are required");
    };
    if out_dir.join("checkpoint").exists() && !args.resume {
        bail!("{}: a run already exists here (use --resume to continue it, or choose another --out)", out_dir.display());
    }
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
