//! `protforge inspect FILE`: summarise a structure, trajectory, dataset or weights file.

use crate::cli::InspectArgs;
use crate::printer::{Printer, out};
use anyhow::bail;
use protforge_nn::Checkpoint;
use protforge_structure::io::{ReadOptions, read_backbone};
use protforge_structure::{Backbone, Trajectory};
use serde::Serialize;
use std::path::Path;

use super::io::is_structure_file;

/// What kind of file a path is, from its name (and for directories, their content).
enum Kind {
    Structure,
    Trajectory,
    Dataset,
    Weights,
}

fn kind_of(path: &Path) -> anyhow::Result<Kind> {
    if path.is_dir() {
        if path.join(protforge_nn::checkpoint::WEIGHTS_FILE).is_file() {
            return Ok(Kind::Weights);
        }
        bail!("{}: a directory without model.safetensors (inspect takes a file or a weights directory)", path.display());
    }
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if is_structure_file(path) {
        return Ok(Kind::Structure);
    }
    if name.ends_with(".xtc") || name.ends_with(".dcd") {
        return Ok(Kind::Trajectory);
    }
    if name.ends_with(".safetensors") {
        // A dataset has the protforge_dataset metadata key; anything else is treated as weights.
        return Ok(if name == protforge_nn::checkpoint::WEIGHTS_FILE { Kind::Weights } else { Kind::Dataset });
    }
    bail!(
        "{}: unrecognised file type (expected .pdb/.ent/.cif/.mmcif[.gz], .xtc, .dcd, .safetensors or a weights directory)",
        path.display()
    )
}

pub(crate) fn run(args: &InspectArgs, json: bool, printer: &Printer) -> anyhow::Result<()> {
    match kind_of(&args.path)? {
        Kind::Structure => structure(args, json, printer),
        Kind::Trajectory => trajectory(args, json),
        Kind::Dataset => dataset(&args.path, json),
        Kind::Weights => weights(&args.path, json),
    }
}

#[derive(Serialize)]
struct ChainSummary {
    chain: String,
    residues: usize,
    first: String,
    last: String,
    missing_atoms: usize,
    ca_gaps: usize,
    sequence: String,
}

fn chain_summary(id: &str, bb: &Backbone) -> ChainSummary {
    let missing_atoms = bb.atom_mask.iter().map(|m| m.iter().filter(|&&b| !b).count()).sum();
    let ca_gaps = (1..bb.len())
        .filter(|&i| {
            let (a, b) = (bb.coords[i - 1][1], bb.coords[i][1]);
            let d2: f32 = (0..3).map(|k| (a[k] - b[k]).powi(2)).sum();
            bb.atom_mask[i - 1][1] && bb.atom_mask[i][1] && d2.sqrt() > 4.2
        })
        .count();
    ChainSummary {
        chain: id.to_string(),
        residues: bb.len(),
        first: bb.residue_ids.first().map(ToString::to_string).unwrap_or_default(),
        last: bb.residue_ids.last().map(ToString::to_string).unwrap_or_default(),
        missing_atoms,
        ca_gaps,
        sequence: bb.sequence(),
    }
}

fn structure(args: &InspectArgs, json: bool, printer: &Printer) -> anyhow::Result<()> {
    let opts = ReadOptions { chain: args.chain.clone() };
    let read = read_backbone(&args.path, &opts)?;
    let bb = &read.backbone;
    let chains: Vec<ChainSummary> =
        bb.chains().iter().filter_map(|c| bb.chain(c).map(|sub| chain_summary(c, &sub))).collect();
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            file: &'a Path,
            kind: &'static str,
            residues: usize,
            full_backbone: bool,
            ca_only: bool,
            chains: &'a [ChainSummary],
            warnings: &'a [String],
        }
        out(serde_json::to_string_pretty(&Out {
            file: &args.path,
            kind: "structure",
            residues: bb.len(),
            full_backbone: bb.is_full(),
            ca_only: bb.is_ca_only(),
            chains: &chains,
            warnings: &read.warnings,
        })?);
        return Ok(());
    }
    out(format!(
        "{}: structure, {} chain(s), {} residues{}",
        args.path.display(),
        chains.len(),
        bb.len(),
        if bb.is_ca_only() { " (CA only)" } else if bb.is_full() { " (full N/CA/C/O backbone)" } else { "" }
    ));
    for c in &chains {
        out(format!(
            "  chain {:<2} {:>5} residues  {}..{}  missing atoms {}  CA gaps >4.2 Å {}\n    {}",
            c.chain, c.residues, c.first, c.last, c.missing_atoms, c.ca_gaps, c.sequence
        ));
    }
    if !read.warnings.is_empty() {
        out(format!("  {} parse warning(s){}", read.warnings.len(), if printer.verbose() > 0 { ":" } else { " (-v to list)" }));
        for w in &read.warnings {
            printer.detail(format!("    {w}"));
        }
    }
    Ok(())
}

fn trajectory(args: &InspectArgs, json: bool) -> anyhow::Result<()> {
    let Some(topology) = &args.topology else {
        bail!("{}: a trajectory needs --topology FILE (the PDB/mmCIF that defines its atoms)", args.path.display());
    };
    let traj = Trajectory::read(&args.path, Some(topology.as_path()))?;
    let n_frames = traj.frames.len();
    let (t0, t1) = (traj.time_ps.first().copied().unwrap_or(0.0), traj.time_ps.last().copied().unwrap_or(0.0));
    let dt = if n_frames > 1 { (t1 - t0) / (n_frames - 1) as f64 } else { 0.0 };
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            file: &'a Path,
            kind: &'static str,
            topology: &'a Path,
            frames: usize,
            residues: usize,
            chains: Vec<String>,
            time_start_ps: f64,
            time_end_ps: f64,
            mean_dt_ps: f64,
        }
        out(serde_json::to_string_pretty(&Out {
            file: &args.path,
            kind: "trajectory",
            topology,
            frames: n_frames,
            residues: traj.topology.len(),
            chains: traj.topology.chains(),
            time_start_ps: t0,
            time_end_ps: t1,
            mean_dt_ps: dt,
        })?);
        return Ok(());
    }
    out(format!(
        "{}: trajectory, {} frames of {} residues (chains {}), t = {:.1}..{:.1} ps, mean frame spacing {:.2} ps",
        args.path.display(),
        n_frames,
        traj.topology.len(),
        traj.topology.chains().join(","),
        t0,
        t1,
        dt
    ));
    Ok(())
}

fn dataset(path: &Path, json: bool) -> anyhow::Result<()> {
    let ds = protforge_data::Dataset::open(path)?;
    let info = ds.info();
    if json {
        out(serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    out(format!(
        "{}: protforge dataset v{}\n  chains     {} ({} train, {} val)\n  residues   {} ({} train, {} val)\n  clusters   {} ({} with train chains, {} with val chains)\n  lengths    min {}, median {}, max {}",
        path.display(),
        info.version,
        info.n_chains,
        info.n_train,
        info.n_val,
        info.n_residues,
        info.residues_train,
        info.residues_val,
        info.n_clusters,
        info.clusters_train,
        info.clusters_val,
        info.min_length,
        info.median_length,
        info.max_length,
    ));
    for (source, count) in &info.sources {
        out(format!("  source     {source:<20} {} chains, {} residues", count.chains, count.residues));
    }
    if !info.licence.is_empty() {
        out(format!("  licence    {}", info.licence));
    }
    Ok(())
}

fn weights(path: &Path, json: bool) -> anyhow::Result<()> {
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let ck = Checkpoint::new(&dir);
    let info = ck.info()?;
    let config: Option<serde_json::Value> = ck.load_config().ok();
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            kind: &'static str,
            #[serde(flatten)]
            info: &'a protforge_nn::CheckpointInfo,
            config: Option<serde_json::Value>,
        }
        out(serde_json::to_string_pretty(&Out { kind: "weights", info: &info, config })?);
        return Ok(());
    }
    out(format!(
        "{}: weights, {} tensors, {} parameters, {:.1} MB, sha256 {}\n  config.json: {}",
        dir.display(),
        info.n_tensors,
        info.n_params,
        info.bytes as f64 / 1e6,
        info.sha256,
        if config.is_some() { "present" } else { "missing or invalid" }
    ));
    // STAR-MD weights: the stride range `rollout --dt-ns` accepts.
    if let Some(c) = &config {
        let num = |k: &str| c.get(k).and_then(serde_json::Value::as_f64);
        if let (Some(lo), Some(mut hi)) = (num("dt_min_ns"), num("dt_max_ns")) {
            if let Some(data) = num("dt_data_max_ns") {
                hi = hi.min(data);
            }
            let window = c.get("window_frames").and_then(serde_json::Value::as_u64).unwrap_or(0);
            out(format!("  STAR-MD: trained strides {lo}–{hi} ns (rollout --dt-ns), window of {window} frames"));
        }
    }
    Ok(())
}
