//! `protforge eval backbones | tm | ss | trajectory`.

use crate::cli::{EvalBackbonesArgs, EvalSsArgs, EvalTmArgs, EvalTrajectoryArgs};
use crate::printer::{Printer, out};
use anyhow::{Context, bail};
use protforge_eval::{diversity, dssp, geometry, tm, trajectory};
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
            let search = if args.novelty_exhaustive {
                diversity::NoveltySearch::Exhaustive
            } else {
                diversity::NoveltySearch::default()
            };
            let novelty = diversity::novelty_with(&traces, &refs, search).context("novelty")?;
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

/// CA coordinates (Å) of every `stride`-th frame, and of the initial structure: the topology
/// backbone (XTC/DCD) or the first model (multi-model PDB).
fn ca_frames(traj: &protforge_structure::Trajectory, stride: usize) -> (Vec<Vec<Vec3>>, Vec<Vec3>) {
    let ca_idx: Vec<usize> = (0..traj.topology.len()).filter(|&i| traj.topology.atom_mask[i][1]).collect();
    let v = |p: [f32; 3]| Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
    let frames = traj.frames.iter().step_by(stride.max(1)).map(|f| ca_idx.iter().map(|&i| v(f[i][1])).collect()).collect();
    let initial = ca_idx.iter().map(|&i| v(traj.topology.coords[i][1])).collect();
    (frames, initial)
}

pub(crate) fn trajectory_cmd(args: &EvalTrajectoryArgs, json: bool, printer: &Printer) -> anyhow::Result<()> {
    if args.stride == 0 || args.max_pair_frames < 2 {
        bail!("--stride must be at least 1 and --max-pair-frames at least 2");
    }
    let traj = protforge_structure::Trajectory::read(&args.trajectory, args.topology.as_deref())?;
    let (frames, initial) = ca_frames(&traj, args.stride);
    let reference = match &args.reference {
        None => None,
        Some(path) => {
            let top = args.reference_topology.as_deref().or(args.topology.as_deref());
            let r = protforge_structure::Trajectory::read(path, top)?;
            let (rf, _) = ca_frames(&r, args.stride);
            if rf.first().map_or(0, Vec::len) != initial.len() {
                bail!(
                    "{}: reference has {} CA atoms per frame, the trajectory has {}; both must hold the same residues",
                    path.display(),
                    rf.first().map_or(0, Vec::len),
                    initial.len()
                );
            }
            Some(rf)
        }
    };
    // Consecutive CA atoms are bonded when they are in one chain with consecutive numbers.
    let top = &traj.topology;
    let ca_idx: Vec<usize> = (0..top.len()).filter(|&i| top.atom_mask[i][1]).collect();
    let bonded: Vec<bool> = ca_idx
        .windows(2)
        .map(|w| top.chain_ids[w[0]] == top.chain_ids[w[1]] && top.residue_ids[w[1]].number - top.residue_ids[w[0]].number <= 1)
        .collect();
    let spin = printer.spinner(&format!("analysing {} frames", frames.len()));
    let report = trajectory::analyze(&frames, &initial, reference.as_deref(), args.max_pair_frames, Some(&bonded))
        .with_context(|| format!("{}", args.trajectory.display()))?;
    spin.finish_and_clear();
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            trajectory: &'a Path,
            reference: Option<&'a Path>,
            stride: usize,
            #[serde(flatten)]
            report: &'a trajectory::TrajectoryReport,
        }
        out(serde_json::to_string_pretty(&Out { trajectory: &args.trajectory, reference: args.reference.as_deref(), stride: args.stride, report: &report })?);
        return Ok(());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let last = report.rmsd_to_initial.last().copied().unwrap_or(f64::NAN);
    let max = report.rmsd_to_initial.iter().copied().fold(0.0f64, f64::max);
    let mut text = format!(
        "{}: {} frames × {} residues (stride {})\n  valid frames (no CA < {:.1} Å, no break > {:.1} Å): {:.3}\n  RMSD to initial: last {last:.2} Å, max {max:.2} Å, mean {:.2} Å\n  CA RMSF: mean {:.2} Å, max {:.2} Å\n  pairwise RMSD: mean {:.2} Å, median {:.2} Å, 5–95% {:.2}–{:.2} Å",
        args.trajectory.display(),
        report.n_frames,
        report.n_residues,
        args.stride,
        trajectory::CLASH_CA,
        trajectory::BREAK_CA,
        report.valid_frac,
        mean(&report.rmsd_to_initial),
        mean(&report.rmsf),
        report.rmsf.iter().copied().fold(0.0f64, f64::max),
        report.pairwise_rmsd.mean,
        report.pairwise_rmsd.median,
        report.pairwise_rmsd.p05,
        report.pairwise_rmsd.p95,
    );
    if let Some(r) = &report.reference {
        text.push_str(&format!(
            "\nreference: {} frames\n  RMSF Pearson r: {:.3} (reference mean RMSF {:.2} Å)\n  reference pairwise RMSD: mean {:.2} Å\n  PCA (reference PC1+PC2 explain {:.0}% + {:.0}%): W2 {:.2} Å (×10/√n: {:.2}), JSD {:.3}",
            r.n_frames,
            r.rmsf_pearson,
            mean(&r.rmsf),
            r.pairwise_rmsd.mean,
            100.0 * r.pc_variance_frac[0],
            100.0 * r.pc_variance_frac[1],
            r.pca_w2,
            r.pca_w2_scaled,
            r.pca_jsd
        ));
    }
    out(text);
    Ok(())
}
