//! `protforge data build`.

use crate::cli::DataBuildArgs;
use crate::printer::{Printer, out};
use anyhow::{Context, bail};
use protforge_data::{BuildOptions, build};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) fn build_cmd(args: &DataBuildArgs, json: bool, printer: &Printer) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        bail!("{}: already exists (use --force to overwrite)", args.out.display());
    }
    for p in args.input.iter().chain(&args.val_input) {
        if !p.exists() {
            bail!("{}: no such file or directory", p.display());
        }
    }
    let opts = BuildOptions {
        val_input: args.val_input.clone(),
        out: args.out.clone(),
        min_len: args.min_len,
        max_len: args.max_len,
        val_fraction: args.val_fraction,
        seed: args.seed,
        licence: args.licence.clone().unwrap_or_default(),
        ..BuildOptions::default()
    };
    let bar = printer.bar(0, "reading");
    let total = AtomicU64::new(0);
    let progress = |done: usize, n: usize| {
        if total.swap(n as u64, Ordering::Relaxed) != n as u64 {
            bar.set_length(n as u64);
        }
        bar.set_position(done as u64);
    };
    let summary = build(&args.input, &opts, Some(&progress))
        .with_context(|| format!("building {}", args.out.display()))?;
    bar.finish_and_clear();

    if json {
        out(serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    for r in &summary.rejected {
        printer.warn(format!("rejected {r}"));
    }
    out(format!(
        "wrote {}\n  files read       {}\n  files rejected   {}\n  files ignored    {}\n  chains parsed    {}\n  segments         {} (dropped: {} too short, {} too long, {} duplicate sequence)\n  kept             {}\n  train            {} chains, {} residues, {} clusters\n  val              {} chains, {} residues, {} clusters ({} forced, {} moved by clustering)",
        summary.out.display(),
        summary.files_read,
        summary.rejected.len(),
        summary.files_ignored,
        summary.chains_seen,
        summary.segments,
        summary.dropped_too_short,
        summary.dropped_too_long,
        summary.dropped_duplicate,
        summary.kept,
        summary.train_chains,
        summary.train_residues,
        summary.train_clusters,
        summary.val_chains,
        summary.val_residues,
        summary.val_clusters,
        summary.forced_val,
        summary.moved_to_val,
    ));
    Ok(())
}
