//! `protforge rollout`: MD-like backbone trajectories from a starting structure with STAR-MD.

use crate::cli::{GlobalArgs, RolloutArgs};
use crate::printer::Printer;
use anyhow::{Context, bail};
use candle_core::DType;
use candle_nn::VarBuilder;
use protforge_nn::Checkpoint;
use protforge_starmd::sampler::{RolloutOptions, check_init, rollout};
use protforge_starmd::{StarMd, StarMdConfig};
use protforge_structure::residue::aatype_from_three;
use protforge_structure::{Backbone, TrajFormat, Trajectory};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Load STAR-MD from a weights directory.
pub(crate) fn load_starmd(dir: &Path, device: &candle_core::Device) -> anyhow::Result<StarMd> {
    let ck = Checkpoint::new(dir);
    let cfg: StarMdConfig = ck.load_config()?;
    cfg.validate().with_context(|| format!("{}", ck.config_path().display()))?;
    let vb = VarBuilder::from_tensors(ck.load_tensors(device)?, DType::F32, device);
    StarMd::new(&cfg, vb).with_context(|| format!("{}: weights do not match config.json", ck.weights_path().display()))
}

/// `<dir>/<stem><suffix>` for an output path.
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!("{stem}{suffix}"))
}

/// Output file of replica `r` of `k`: OUT itself for one replica, `<stem>_r<r>.<ext>` otherwise.
fn replica_path(out: &Path, r: usize, k: usize) -> PathBuf {
    if k == 1 {
        return out.to_path_buf();
    }
    let ext = out.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    sibling(out, &format!("_r{r}.{ext}"))
}

/// `--context-frames`: a positive number, or `all` (0 in the library's convention).
fn parse_context_frames(text: &str) -> anyhow::Result<usize> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(0);
    }
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("--context-frames '{text}': expected a positive number of frames or 'all'"),
    }
}

/// Residue names of non-protein HETATM groups (ligands, ions; waters excluded) in a plain-text
/// PDB file, which the reader ignores. Empty for other files.
fn non_protein_residues(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("HETATM"))
        .filter_map(|l| l.get(17..20).map(str::trim))
        .filter(|name| !name.is_empty() && aatype_from_three(name).is_none() && !matches!(*name, "HOH" | "WAT" | "DOD"))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Peak resident memory of this process (MiB), from `/proc/self/status` (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// How far the network's raw frames were from chain geometry.
#[derive(Serialize)]
struct RawFrames {
    /// Fraction of generated frames whose raw CA trace met every constraint within 0.2 Å.
    fraction_within_0_2_ang: f64,
    /// Median over frames of the largest raw violation (Å).
    median_max_violation: f64,
    /// Mean CA RMSD the projection moved (Å).
    mean_moved: f64,
}

impl RawFrames {
    fn new(violation: &[f64], moved: &[f64]) -> Self {
        let n = violation.len().max(1) as f64;
        let mut sorted = violation.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            fraction_within_0_2_ang: violation.iter().filter(|&&v| v <= 0.2).count() as f64 / n,
            median_max_violation: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            mean_moved: moved.iter().sum::<f64>() / moved.len().max(1) as f64,
        }
    }
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    command: &'static str,
    weights: PathBuf,
    weights_sha256: String,
    init: &'a Path,
    chain: Option<&'a str>,
    residues: usize,
    sequence: String,
    ignored_non_protein: Vec<String>,
    frames_generated: usize,
    frames_written: usize,
    dt_ns: f64,
    simulated_ns: f64,
    replicas: usize,
    seed: u64,
    steps: usize,
    context_noise: f64,
    /// History frames attended to; null means the whole history.
    context_frames: Option<usize>,
    outputs: Vec<PathBuf>,
    topology: Option<PathBuf>,
    wall_time_s: f64,
    frames_per_s: f64,
    simulated_ns_per_hour: f64,
    /// KV-cache bytes (all replicas) after each generated frame.
    kv_cache_bytes: Vec<usize>,
    /// Whether generated frames were projected onto CA chain constraints.
    idealize: bool,
    /// Summary of the raw (network) frames before projection.
    raw_frames: RawFrames,
    /// Per generated frame: largest raw CA constraint violation over the replicas (Å).
    raw_violation: Vec<f64>,
    /// Per generated frame: mean CA RMSD the projection moved (Å; 0 with --no-idealize).
    idealize_moved: Vec<f64>,
    peak_rss_mib: Option<f64>,
}

pub(crate) fn run(args: &RolloutArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if args.replicas == 0 {
        bail!("--replicas must be at least 1");
    }
    if !(args.dt_ns.is_finite() && args.dt_ns > 0.0) {
        bail!("--dt-ns must be a positive number of nanoseconds");
    }
    if args.steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    let format = TrajFormat::from_path(&args.out).ok_or_else(|| {
        anyhow::anyhow!("{}: unsupported output format (expected .xtc, .dcd or .pdb)", args.out.display())
    })?;
    let context_frames = args.context_frames.as_deref().map(parse_context_frames).transpose()?;
    let outputs: Vec<PathBuf> = (0..args.replicas).map(|r| replica_path(&args.out, r, args.replicas)).collect();
    let topology = (format != TrajFormat::Pdb).then(|| sibling(&args.out, "_topology.pdb"));
    if !args.force
        && let Some(p) = outputs.iter().chain(topology.as_ref()).find(|p| p.exists())
    {
        bail!("{}: already exists (use --force to overwrite)", p.display());
    }

    let init = super::io::read_structure(&args.init, args.chain.as_deref())?;
    check_init(&init, &args.init)?;
    let ignored = non_protein_residues(&args.init);
    if !ignored.is_empty() {
        printer.note(format!(
            "{}: ignoring non-protein residues {} (STAR-MD models the protein backbone only)",
            args.init.display(),
            ignored.join(", ")
        ));
    }
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let weights = super::weights::locate("starmd", global)?;
    let model = load_starmd(&weights, &device)?;
    let cfg = model.config();
    if !cfg.dt_in_range(args.dt_ns) {
        bail!(
            "--dt-ns {} is outside the stride range the weights were trained on ({}–{} ns, {})",
            args.dt_ns,
            cfg.dt_range().0,
            cfg.dt_range().1,
            weights.join("config.json").display()
        );
    }
    let sha = Checkpoint::new(&weights).info()?.sha256;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("{}: cannot create directory", parent.display()))?;
    }

    let opts = RolloutOptions {
        frames: args.frames,
        dt_ns: args.dt_ns,
        replicas: args.replicas,
        steps: args.steps,
        seed: args.seed,
        context_noise: args.context_noise,
        context_frames,
        idealize: !args.no_idealize,
    };
    printer.note(format!(
        "rolling out {} replica(s) × {} frames of {} ns ({} residues) with STAR-MD ({})",
        args.replicas,
        args.frames,
        args.dt_ns,
        init.len(),
        weights.display()
    ));
    let bar = printer.bar(args.frames as u64, "rollout");
    let started = Instant::now();
    let result = rollout(&model, &init, &opts, &mut |_| bar.inc(1))
        .with_context(|| format!("rolling out {}", args.init.display()))?;
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let mut top = init.clone();
    top.atom_mask = vec![[true; 4]; top.len()];
    let time_ps: Vec<f64> = (0..=args.frames).map(|f| f as f64 * args.dt_ns * 1000.0).collect();
    for (frames, path) in result.replicas.into_iter().zip(&outputs) {
        if let Some(first) = frames.first() {
            top.coords.clone_from(first);
        }
        Trajectory::new(top.clone(), frames, time_ps.clone())?.write(path)?;
    }
    if let Some(p) = &topology {
        protforge_structure::write_pdb(p, &top)?;
    }
    let simulated_ns = args.frames as f64 * args.dt_ns;
    let frames_per_s = (args.frames * args.replicas) as f64 / wall.max(1e-9);
    let manifest = Manifest {
        tool: "protforge",
        version: env!("CARGO_PKG_VERSION"),
        command: "rollout",
        weights,
        weights_sha256: sha,
        init: &args.init,
        chain: args.chain.as_deref(),
        residues: init.len(),
        sequence: Backbone::sequence(&init),
        ignored_non_protein: ignored,
        frames_generated: args.frames,
        frames_written: args.frames + 1,
        dt_ns: args.dt_ns,
        simulated_ns,
        replicas: args.replicas,
        seed: args.seed,
        steps: result.steps,
        context_noise: result.context_noise,
        context_frames: result.context_frames,
        outputs: outputs.clone(),
        topology: topology.clone(),
        wall_time_s: wall,
        frames_per_s,
        simulated_ns_per_hour: simulated_ns * args.replicas as f64 / wall.max(1e-9) * 3600.0,
        kv_cache_bytes: result.cache_bytes,
        idealize: !args.no_idealize,
        raw_frames: RawFrames::new(&result.raw_violation, &result.idealize_moved),
        raw_violation: result.raw_violation,
        idealize_moved: result.idealize_moved,
        peak_rss_mib: peak_rss_mib(),
    };
    let manifest_path = args.out.with_file_name("manifest.json");
    protforge_structure::io::write_atomic(&manifest_path, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    printer.note(format!(
        "wrote {} trajector{} of {} frames ({simulated_ns} ns) and {}; {frames_per_s:.2} frames/s",
        args.replicas,
        if args.replicas == 1 { "y" } else { "ies" },
        args.frames + 1,
        manifest_path.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_and_context_frames() {
        assert_eq!(replica_path(Path::new("a/traj.xtc"), 0, 1), PathBuf::from("a/traj.xtc"));
        assert_eq!(replica_path(Path::new("a/traj.xtc"), 2, 3), PathBuf::from("a/traj_r2.xtc"));
        assert_eq!(sibling(Path::new("a/traj.dcd"), "_topology.pdb"), PathBuf::from("a/traj_topology.pdb"));
        assert_eq!(parse_context_frames("all").unwrap(), 0);
        assert_eq!(parse_context_frames("7").unwrap(), 7);
        assert!(parse_context_frames("0").is_err() && parse_context_frames("x").is_err());
    }
}
