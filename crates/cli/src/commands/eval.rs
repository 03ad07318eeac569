//! `protforge eval backbones | tm | ss`.

use crate::cli::{EvalBackbonesArgs, EvalSsArgs, EvalTmArgs};
use crate::printer::{Printer, out};
use anyhow::{Context, bail};
use protforge_eval::{diversity, dssp, geometry, tm};
use protforge_se3::Vec3;
use protforge_structure::Backbone;
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

use super::io::{is_structure_file, read_structure};

pub(crate) fn tm_cmd(args: &EvalTmArgs, json: bool) -> anyhow::Result<()> {
    let a = read_structure(&args.a, args.chain_a.as_deref())?;
    let b = read_structure(&args.b, args.chain_b.as_deref())?;
    let r = tm::tm_align_backbones(&a, &b)
        .with_context(|| format!("aligning {} to {}", args.a.display(), args.b.display()))?;
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            a: &'a Path,
            b: &'a Path,
            #[serde(flatten)]
            result: &'a tm::TmAlignResult,
        }
        out(serde_json::to_string_pretty(&Out { a: &args.a, b: &args.b, result: &r })?);
    } else {
        out(format!(
            "A: {} ({} residues)\nB: {} ({} residues)\nAligned length = {}, RMSD = {:.2} Å, seq. identity = {}\nTM-score = {:.5} (normalised by length of A, d0 = {:.2} Å)\nTM-score = {:.5} (normalised by length of B, d0 = {:.2} Å)",
            args.a.display(),
            r.len_a,
            args.b.display(),
            r.len_b,
            r.aligned,
            r.rmsd,
            r.seq_identity.map_or_else(|| "n/a".to_string(), |s| format!("{s:.3}")),
            r.tm_a,
            r.d0_a,
            r.tm_b,
            r.d0_b,
        ));
    }
    Ok(())
}

pub(crate) fn ss_cmd(args: &EvalSsArgs, json: bool) -> anyhow::Result<()> {
    let bb = read_structure(&args.file, args.chain.as_deref())?;
    let (ss, method) = dssp::dssp_with_method(&bb);
    let ss = dssp::ss_string(&ss);
    let ss8 = if args.ss8 {
        if method != dssp::SsMethod::Dssp {
            bail!("{}: --ss8 needs a full N/CA/C/O backbone (this file is CA-only)", args.file.display());
        }
        Some(dssp::ss8_string(&dssp::dssp8(&bb)))
    } else {
        None
    };
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            file: &'a Path,
            ss: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            ss8: Option<&'a str>,
            method: dssp::SsMethod,
            helix_frac: f64,
            strand_frac: f64,
        }
        let f = |c: char| ss.chars().filter(|&x| x == c).count() as f64 / ss.len().max(1) as f64;
        out(serde_json::to_string(&Out { file: &args.file, ss: &ss, ss8: ss8.as_deref(), method, helix_frac: f('H'), strand_frac: f('E') })?);
    } else {
        out(ss);
        if let Some(s8) = ss8 {
            out(s8);
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct StructureRow {
    file: PathBuf,
    #[serde(flatten)]
    report: geometry::BackboneReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tm_to_reference: Option<f64>,
}

#[derive(Serialize)]
struct BackbonesOut {
    #[serde(flatten)]
    aggregate: geometry::AggregateReport,
    structures: Vec<StructureRow>,
}

pub(crate) fn backbones_cmd(args: &EvalBackbonesArgs, json: bool, printer: &Printer) -> anyhow::Result<()> {
    let files = structure_files(&args.dir)?;
    if files.is_empty() {
        bail!("{}: no structure files (.pdb, .cif, .mmcif, optionally .gz)", args.dir.display());
    }
    let bar = printer.bar(files.len() as u64, "reading");
    let read: Vec<(PathBuf, anyhow::Result<Backbone>)> = files
        .par_iter()
        .map(|f| {
            let r = read_structure(f, None);
            bar.inc(1);
            (f.clone(), r)
        })
        .collect();
    bar.finish_and_clear();
    let mut paths = Vec::new();
    let mut backbones = Vec::new();
    for (path, r) in read {
        match r {
            Ok(bb) => {
                paths.push(path);
                backbones.push(bb);
            }
            Err(e) => printer.warn(format!("skipped {e:#}")),
        }
    }
    if backbones.is_empty() {
        bail!("{}: none of the {} structure files could be read", args.dir.display(), files.len());
    }

    let reports = geometry::backbone_reports(&backbones);
    let traces: Vec<Vec<Vec3>> = backbones.iter().map(tm::ca_trace).collect();
    let (mean_tm, clusters) = if args.no_diversity || traces.len() < 2 {
        (f64::NAN, traces.len())
    } else {
        let spin = printer.spinner(&format!("all-vs-all TM-align over {} structures", traces.len()));
        let div = diversity::diversity(&traces, diversity::SAME_FOLD_TM).context("diversity")?;
        spin.finish_and_clear();
        (div.mean_pairwise_tm.unwrap_or(f64::NAN), div.clusters)
    };
    let novelty = match &args.reference {
        Some(reference) => {
            let refs = reference_traces(reference, printer)?;
            let spin = printer.spinner(&format!("novelty: {} structures against {} references", traces.len(), refs.len()));
            let novelty = diversity::novelty(&traces, &refs).context("novelty")?;
            spin.finish_and_clear();
            Some(novelty)
        }
        None => None,
    };
    let max_tms: Option<Vec<f64>> = novelty.as_ref().map(|n| n.iter().map(|x| x.max_tm).collect());
    let aggregate =
        geometry::aggregate(&reports, mean_tm, clusters, max_tms.as_ref().map(|v| geometry::median_of(v)));
    let rows: Vec<StructureRow> = paths
        .into_iter()
        .zip(reports)
        .enumerate()
        .map(|(i, (file, report))| StructureRow {
            file,
            report,
            max_tm_to_reference: max_tms.as_ref().map(|v| v[i]),
        })
        .collect();

    if json {
        out(serde_json::to_string_pretty(&BackbonesOut { aggregate, structures: rows })?);
        return Ok(());
    }
    out(format!(
        "{:<32} {:>5} {:>8} {:>7} {:>6} {:>7} {:>6} {:>6}{}",
        "file",
        "len",
        "bond_ok",
        "clashes",
        "rg",
        "rg_rat",
        "helix",
        "strand",
        if max_tms.is_some() { "  max_tm_ref" } else { "" }
    ));
    for r in &rows {
        let name = r.file.file_name().map_or_else(|| r.file.display().to_string(), |n| n.to_string_lossy().into_owned());
        out(format!(
            "{:<32} {:>5} {:>8.3} {:>7} {:>6.1} {:>7.2} {:>6.2} {:>6.2}{}",
            truncate(&name, 32),
            r.report.n_res,
            r.report.ca_bonds.ok_frac,
            r.report.clashes.n_clashes,
            r.report.rg,
            r.report.rg_ratio,
            r.report.helix_frac,
            r.report.strand_frac,
            r.max_tm_to_reference.map_or_else(String::new, |t| format!("  {t:>10.3}"))
        ));
    }
    let a = &aggregate;
    out(format!(
        "\naggregate over {} structures\n  ca_bond_ok_frac  {:.4}\n  clash_frac       {:.4}\n  helix_frac       {:.3}\n  strand_frac      {:.3}\n  median_rg_ratio  {:.3}\n  mean_pairwise_tm {}\n  clusters_tm05    {}{}",
        a.n,
        a.ca_bond_ok_frac,
        a.clash_frac,
        a.helix_frac,
        a.strand_frac,
        a.median_rg_ratio,
        if a.mean_pairwise_tm.is_nan() { "n/a".to_string() } else { format!("{:.4}", a.mean_pairwise_tm) },
        a.clusters_tm05,
        a.median_max_tm_to_reference.map_or_else(String::new, |t| format!("\n  median_max_tm_to_reference {t:.4}")),
    ));
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

/// Structure files directly inside `dir`, sorted by name.
fn structure_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        if dir.exists() {
            bail!("{}: not a directory (eval backbones takes a folder of structures)", dir.display());
        }
        bail!("{}: no such directory", dir.display());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list directory", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_structure_file(p))
        .collect();
    files.sort();
    Ok(files)
}

/// CA traces of a reference set: the training split of a dataset file (novelty is "not in
/// what the model saw"), or every structure in a folder.
fn reference_traces(path: &Path, printer: &Printer) -> anyhow::Result<Vec<Vec<Vec3>>> {
    if path.is_dir() {
        let files = structure_files(path)?;
        let mut traces = Vec::new();
        for f in files {
            match read_structure(&f, None) {
                Ok(bb) => traces.push(tm::ca_trace(&bb)),
                Err(e) => printer.warn(format!("reference skipped: {e:#}")),
            }
        }
        if traces.is_empty() {
            bail!("{}: no readable reference structures", path.display());
        }
        return Ok(traces);
    }
    let ds = protforge_data::Dataset::open(path)?;
    Ok(ds.split_indices(protforge_data::Split::Train).into_iter().filter_map(|i| ds.chain(i)).map(|bb| tm::ca_trace(&bb)).collect())
}
