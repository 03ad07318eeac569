//! `protforge scaffold`: zero-shot motif scaffolding with PAR.

use super::generate::{finish_backbone, idealize_trace, load_par, parse_shard, sample_options};
use crate::cli::{BackboneKind, GlobalArgs, ScaffoldArgs};
use crate::printer::Printer;
use anyhow::{Context, bail};
use protforge_flow::PerSampleNoise;
use protforge_flow::rng::{sample_seed, seeded};
use protforge_nn::Checkpoint;
use protforge_par::contig::Placement;
use protforge_par::problem::parse_length_range;
use protforge_par::sampler::{Conditioning, SampleOptions, sample_ca_conditioned};
use protforge_par::{Contig, MotifGuide, MotifProblem};
use protforge_se3::{Vec3, kabsch};
use protforge_structure::idealize::IdealizeReport;
use protforge_structure::{Backbone, residue};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Motif CA-RMSD below which a scaffold counts as a success (Å; RFdiffusion benchmark).
const SUCCESS_RMSD: f64 = 1.0;

#[derive(Serialize)]
struct SegmentRecord {
    /// Contig segment (`10-40` scaffold or `A163-181` motif).
    spec: String,
    /// First and last residue in the output chain (1-based, inclusive); absent if empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    design_range: Option<(usize, usize)>,
    /// Motif group (multi-motif problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
}

#[derive(Serialize)]
struct SampleRecord {
    index: usize,
    file: String,
    seed: u64,
    length: usize,
    segments: Vec<SegmentRecord>,
    /// Motif residues of the input (`A163`, …) and where each landed in the output
    /// (1-based residue numbers, chain A) — RFdiffusion's `con_ref_pdb_idx`/`con_hal_pdb_idx`.
    motif_input_residues: Vec<String>,
    motif_design_residues: Vec<usize>,
    /// Motif CA-RMSD (Å) of the generated chain after superposition (worst group).
    motif_ca_rmsd: f64,
    /// Whether the input motif's atoms were written over the generated motif (--fix-motif).
    fixed_motif: bool,
    /// CA-trace idealisation of the scaffold (motif residues fixed; absent with --no-idealize).
    #[serde(skip_serializing_if = "Option::is_none")]
    idealize: Option<IdealizeReport>,
    atoms: BackboneKind,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    command: &'static str,
    weights: PathBuf,
    weights_sha256: String,
    problem: &'a str,
    motif: &'a Path,
    contig: &'a str,
    length: Option<(usize, usize)>,
    groups: &'a [String],
    seed: u64,
    num_samples: usize,
    backbone: BackboneKind,
    batch_size: usize,
    shard: Option<(usize, usize)>,
    sampler: &'a SampleOptions,
    motif_mode: protforge_par::sampler::MotifMode,
    successes: usize,
    success_rmsd: f64,
    samples: Vec<SampleRecord>,
}

/// Read the problem: FrameFlow CSV row, explicit contig, or the motif file's Genie2 spec.
fn problem(args: &ScaffoldArgs) -> anyhow::Result<MotifProblem> {
    let stem = args.motif.file_stem().map(|s| s.to_string_lossy().trim_end_matches(".pdb").to_string()).unwrap_or_default();
    let mut p = if let (Some(csv), Some(name)) = (&args.benchmark, &args.problem) {
        let text = std::fs::read_to_string(csv).with_context(|| format!("{}: cannot read", csv.display()))?;
        let all = MotifProblem::from_frameflow_csv(&text, &csv.display().to_string())?;
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        let Some(found) = all.iter().find(|p| p.name.eq_ignore_ascii_case(name)) else {
            bail!("{}: no problem '{name}' (problems: {})", csv.display(), names.join(", "));
        };
        found.clone()
    } else if let Some(text) = &args.contig {
        let contig: Contig = text.parse()?;
        MotifProblem::from_contig(&stem, contig, None)
    } else {
        let bytes = std::fs::read(&args.motif).with_context(|| format!("{}: cannot read", args.motif.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        if !MotifProblem::has_genie2_spec(&text) {
            bail!(
                "{}: no --contig given and the file has no Genie2 REMARK 999 specification; pass --contig, e.g. \"10-40,A163-181,10-40\"",
                args.motif.display()
            );
        }
        MotifProblem::from_genie2(&text, &args.motif.display().to_string())?
    };
    if let Some(text) = &args.length {
        p.length = Some(parse_length_range(text, "--length")?);
    }
    Ok(p)
}

/// Write the input motif's N/CA/C/O over the motif residues of `bb`, each group superimposed
/// by its CA atoms onto the generated CA atoms.
fn fix_motif(bb: &mut Backbone, motif: &Backbone, placement: &Placement, groups: &[String]) -> anyhow::Result<()> {
    let segments: Vec<_> = placement.segments.iter().filter_map(|s| s.motif_indices.as_ref().map(|m| (s.start, m))).collect();
    let mut seen: Vec<&String> = Vec::new();
    for label in groups {
        if seen.contains(&label) {
            continue;
        }
        seen.push(label);
        let pairs: Vec<(usize, usize)> = segments
            .iter()
            .zip(groups)
            .filter(|(_, g)| *g == label)
            .flat_map(|((start, m), _)| m.iter().enumerate().map(move |(k, &src)| (start + k, src)))
            .collect();
        let v = |p: [f32; 3]| Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
        let mobile: Vec<Vec3> = pairs.iter().map(|&(_, src)| v(motif.coords[src][1])).collect();
        let target: Vec<Vec3> = pairs.iter().map(|&(pos, _)| v(bb.coords[pos][1])).collect();
        let sup = kabsch::superpose(&mobile, &target).context("superimposing the motif")?;
        for &(pos, src) in &pairs {
            for atom in 0..4 {
                if motif.atom_mask[src][atom] && (atom == 1 || bb.atom_mask[pos][atom]) {
                    let p = sup.rigid.apply(v(motif.coords[src][atom]));
                    bb.coords[pos][atom] = [p.x as f32, p.y as f32, p.z as f32];
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn run(args: &ScaffoldArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    if args.num_samples == 0 {
        bail!("--num-samples must be at least 1");
    }
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let opts = sample_options(&args.sampling)?;
    let problem = problem(args)?;
    let motif = super::io::read_structure(&args.motif, None)?;
    let motif_idx = problem.contig.resolve(&motif).with_context(|| format!("{}", args.motif.display()))?;
    let (lo, hi) = problem.contig.length_bounds();
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let weights = super::weights::locate("par", global)?;
    let model = load_par(&weights, &device)?;
    let max_len = model.cfg.max_len;
    let want = problem.length.unwrap_or((lo, hi));
    if want.0.max(lo) > max_len {
        bail!("contig '{}': the shortest allowed total length {} exceeds the model's maximum of {max_len}", problem.contig.text(), want.0.max(lo));
    }
    let length = Some((want.0, want.1.min(max_len)));
    let sha = Checkpoint::new(&weights).info()?.sha256;

    // Every sample draws its placement (and later its noise) from its own seed.
    let mut plans = Vec::with_capacity(args.num_samples);
    for i in 0..args.num_samples {
        let seed = sample_seed(args.seed, i as u64);
        let mut rng = seeded(seed);
        let placement = problem.contig.sample(&motif_idx, length, &mut rng)?;
        let guide = MotifGuide::new(&placement, &motif, &problem.groups, model.cfg.downsample)?;
        plans.push((seed, rng, placement, guide));
    }
    // Fixed batches: samples of equal length in index order, chunked; shards take whole batches.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut lengths: Vec<usize> = plans.iter().map(|p| p.2.length).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for len in lengths {
        let idx: Vec<usize> = (0..plans.len()).filter(|&i| plans[i].2.length == len).collect();
        batches.extend(idx.chunks(args.sampling.batch_size).map(<[usize]>::to_vec));
    }
    batches.sort_by_key(|b| b[0]);
    let mine: Vec<&Vec<usize>> = batches.iter().enumerate().filter(|(b, _)| shard.is_none_or(|(k, n)| b % n == k)).map(|(_, x)| x).collect();

    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create directory", args.out.display()))?;
    let width = args.num_samples.saturating_sub(1).to_string().len().max(1);
    let file_of = |i: usize| format!("{}_{:0width$}.pdb", args.prefix, i);
    if !args.force {
        for &i in mine.iter().flat_map(|b| b.iter()) {
            let p = args.out.join(file_of(i));
            if p.exists() {
                bail!("{}: already exists (use --force to overwrite)", p.display());
            }
        }
    }
    let total: usize = mine.iter().map(|b| b.len()).sum();
    printer.note(format!(
        "scaffolding {} ({}, total length {}-{}) × {total} with PAR ({}), plan {}",
        problem.name,
        problem.contig.text(),
        length.map_or(lo, |l| l.0.max(lo)),
        length.map_or(hi, |l| l.1.min(hi)),
        weights.display(),
        opts.plan
    ));
    let bar = printer.bar(total as u64, "scaffolding");
    let mut records = Vec::with_capacity(total);
    for batch in mine {
        let len = plans[batch[0]].2.length;
        let guides: Vec<MotifGuide> = batch.iter().map(|&i| plans[i].3.clone()).collect();
        let mut rngs: Vec<_> = batch.iter().map(|&i| plans[i].1.clone()).collect();
        let cond = Conditioning { motifs: guides, motif_mode: args.motif_mode, ..Conditioning::default() };
        let traces = sample_ca_conditioned(&model, len, batch.len(), &opts, &cond, &mut PerSampleNoise(&mut rngs), &device)
            .with_context(|| format!("sampling length {len}"))?;
        for (&i, ca) in batch.iter().zip(traces) {
            let (seed, _, placement, guide) = &plans[i];
            let mut fixed = vec![false; len];
            for (pos, _) in placement.motif_pairs() {
                fixed[pos] = true;
            }
            let (ca, idealize) = idealize_trace(ca, &fixed, !args.sampling.no_idealize)?;
            let rmsd = guide.rmsd(&ca)?;
            let mut aatype = vec![residue::aatype_from_one('G'); len];
            let mut input_res = Vec::new();
            let mut design_res = Vec::new();
            for (pos, src) in placement.motif_pairs() {
                aatype[pos] = motif.aatype[src];
                input_res.push(format!("{}{}", motif.chain_ids[src], motif.residue_ids[src]));
                design_res.push(pos + 1);
            }
            let name = file_of(i);
            let (mut bb, atoms) =
                finish_backbone(Backbone::from_ca(&ca, Some(aatype)), args.sampling.backbone, &name, &|m| bar.suspend(|| printer.warn(m)));
            if args.fix_motif {
                fix_motif(&mut bb, &motif, placement, &problem.groups)?;
            }
            protforge_structure::write_pdb(&args.out.join(&name), &bb)?;
            let mut motif_k = 0;
            let segments = placement
                .segments
                .iter()
                .map(|s| {
                    let group = s.motif_indices.as_ref().map(|_| {
                        motif_k += 1;
                        problem.groups[motif_k - 1].clone()
                    });
                    SegmentRecord { spec: s.spec.clone(), design_range: (s.len > 0).then(|| (s.start + 1, s.start + s.len)), group }
                })
                .collect();
            records.push(SampleRecord {
                index: i,
                file: name,
                seed: *seed,
                length: len,
                segments,
                motif_input_residues: input_res,
                motif_design_residues: design_res,
                motif_ca_rmsd: rmsd,
                fixed_motif: args.fix_motif,
                idealize,
                atoms,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    records.sort_by_key(|r| r.index);
    let successes = records.iter().filter(|r| r.motif_ca_rmsd < SUCCESS_RMSD).count();
    let manifest = Manifest {
        tool: "protforge",
        version: env!("CARGO_PKG_VERSION"),
        command: "scaffold",
        weights,
        weights_sha256: sha,
        problem: &problem.name,
        motif: &args.motif,
        contig: problem.contig.text(),
        length: problem.length,
        groups: &problem.groups,
        seed: args.seed,
        num_samples: args.num_samples,
        backbone: args.sampling.backbone,
        batch_size: args.sampling.batch_size,
        shard,
        sampler: &opts,
        motif_mode: args.motif_mode,
        successes,
        success_rmsd: SUCCESS_RMSD,
        samples: records,
    };
    let name = match shard {
        Some((k, n)) => format!("manifest.shard{k}of{n}.json"),
        None => "manifest.json".to_string(),
    };
    protforge_structure::io::write_atomic(&args.out.join(&name), serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    printer.note(format!(
        "wrote {total} scaffold(s) and {name} to {}; {successes}/{total} with motif CA-RMSD < {SUCCESS_RMSD} Å",
        args.out.display()
    ));
    Ok(())
}
