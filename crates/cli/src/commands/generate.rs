//! `protforge generate`: unconditional backbones with PAR.

use crate::cli::{BackboneKind, GenerateArgs, GlobalArgs, SamplingArgs};
use crate::printer::Printer;
use anyhow::{Context, bail};
use candle_core::DType;
use candle_nn::VarBuilder;
use protforge_flow::rng::{sample_seed, seeded};
use protforge_flow::{PerSampleNoise, ScalePlan};
use protforge_nn::Checkpoint;
use protforge_par::ParConfig;
use protforge_par::model::ParModel;
use protforge_par::sampler::{Conditioning, SampleOptions, first_scale_size, sample_ca_conditioned};
use protforge_structure::idealize::{IdealizeParams, IdealizeReport, idealize_ca};
use protforge_structure::{Backbone, residue};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Parse `start:stop:step` (stop inclusive).
fn parse_lengths(text: &str) -> anyhow::Result<Vec<usize>> {
    let parts: Vec<&str> = text.split(':').collect();
    let nums: Option<Vec<usize>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    match nums.as_deref() {
        Some([start, stop, step]) if *step > 0 && start <= stop && *start > 0 => {
            Ok((*start..=*stop).step_by(*step).collect())
        }
        Some([start, stop]) if start <= stop && *start > 0 => Ok((*start..=*stop).collect()),
        _ => bail!("--lengths '{text}': expected START:STOP:STEP with 0 < START <= STOP and STEP > 0, e.g. 60:200:20"),
    }
}

/// Parse `K/N`.
pub(crate) fn parse_shard(text: &str) -> anyhow::Result<(usize, usize)> {
    let (k, n) = text.split_once('/').unwrap_or(("", ""));
    match (k.trim().parse::<usize>(), n.trim().parse::<usize>()) {
        (Ok(k), Ok(n)) if n > 0 && k < n => Ok((k, n)),
        _ => bail!("--shard '{text}': expected K/N with 0 <= K < N, e.g. 0/4"),
    }
}

#[derive(Serialize)]
struct SampleRecord {
    index: usize,
    file: String,
    length: usize,
    seed: u64,
    atoms: BackboneKind,
    /// CA-trace idealisation (absent with --no-idealize).
    #[serde(skip_serializing_if = "Option::is_none")]
    idealize: Option<IdealizeReport>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    command: &'static str,
    weights: PathBuf,
    weights_sha256: String,
    seed: u64,
    lengths: &'a [usize],
    num_samples: usize,
    backbone: BackboneKind,
    batch_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<PathBuf>,
    shard: Option<(usize, usize)>,
    sampler: &'a SampleOptions,
    samples: Vec<SampleRecord>,
}

/// Sampler options from the shared command-line settings.
pub(crate) fn sample_options(args: &SamplingArgs) -> anyhow::Result<SampleOptions> {
    if !(args.noise_scale >= 0.0 && args.noise_scale.is_finite()) {
        bail!("--noise-scale must be a non-negative number");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut opts = SampleOptions { noise_scale: args.noise_scale, ..SampleOptions::default() };
    if let Some(plan) = &args.schedule {
        opts.plan = plan.parse::<ScalePlan>()?;
    } else if let Some(steps) = args.steps {
        for s in &mut opts.plan.0 {
            s.steps = steps.max(1);
        }
    }
    Ok(opts)
}

/// Idealise a sampled CA trace (Å) unless `enabled` is false; `fixed` marks residues that must
/// not move (empty: none). See `protforge_structure::idealize`.
pub(crate) fn idealize_trace(ca: Vec<[f32; 3]>, fixed: &[bool], enabled: bool) -> anyhow::Result<(Vec<[f32; 3]>, Option<IdealizeReport>)> {
    if !enabled {
        return Ok((ca, None));
    }
    let pts: Vec<protforge_se3::Vec3> = ca.iter().map(|p| protforge_se3::Vec3::new(p[0].into(), p[1].into(), p[2].into())).collect();
    let (out, report) = idealize_ca(&pts, fixed, &IdealizeParams::default())?;
    // Narrowing back to the f32 coordinates of the structure types.
    #[allow(clippy::cast_possible_truncation)]
    let ca = out.iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect();
    Ok((ca, Some(report)))
}

/// Turn a generated CA trace into the backbone to write: CA only, or N/CA/C/O rebuilt. A
/// degenerate trace that cannot be rebuilt is kept as CA with a warning (never lost).
pub(crate) fn finish_backbone(bb: Backbone, kind: BackboneKind, name: &str, warn: &dyn Fn(String)) -> (Backbone, BackboneKind) {
    match kind {
        BackboneKind::Ca => (bb, BackboneKind::Ca),
        BackboneKind::Full => match protforge_structure::rebuild::complete_backbone(&bb) {
            Ok(full) => (full, BackboneKind::Full),
            Err(e) => {
                warn(format!("{name}: wrote the CA trace only ({e})"));
                (bb, BackboneKind::Ca)
            }
        },
    }
}

/// Load PAR from a weights directory.
pub(crate) fn load_par(dir: &Path, device: &candle_core::Device) -> anyhow::Result<ParModel> {
    let ck = Checkpoint::new(dir);
    let cfg: ParConfig = ck.load_config()?;
    cfg.validate().with_context(|| format!("{}", ck.config_path().display()))?;
    let tensors = ck.load_tensors(device)?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    ParModel::new(&cfg, vb).with_context(|| format!("{}: weights do not match config.json", ck.weights_path().display()))
}

pub(crate) fn run(args: &GenerateArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    let lengths = match (&args.lengths, args.length) {
        (Some(text), _) => parse_lengths(text)?,
        (None, Some(l)) if l > 0 => vec![l],
        _ => bail!("--length must be a positive number of residues"),
    };
    if args.num_samples == 0 {
        bail!("--num-samples must be at least 1");
    }
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let opts = sample_options(&args.sampling)?;
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let weights = super::weights::locate("par", global)?;
    let model = load_par(&weights, &device)?;
    if let Some(&too_long) = lengths.iter().find(|&&l| l > model.cfg.max_len) {
        bail!("--length {too_long}: longer than the model's maximum of {} residues", model.cfg.max_len);
    }
    let sha = Checkpoint::new(&weights).info()?.sha256;
    let prompt = match &args.prompt {
        None => Vec::new(),
        Some(path) => {
            let bb = super::io::read_structure(path, None)?;
            let points: Vec<[f32; 3]> = (0..bb.len()).filter(|&i| bb.atom_mask[i][1]).map(|i| bb.coords[i][1]).collect();
            for &len in &lengths {
                let want = first_scale_size(&model, len);
                if want != points.len() || want == len {
                    bail!(
                        "{}: the prompt has {} CA points, but at length {len} the first scale of this model has {want} points{}",
                        path.display(),
                        points.len(),
                        if want == len { " (the whole chain; use a longer length)" } else { "" }
                    );
                }
            }
            vec![points]
        }
    };

    // Fixed batches of global sample indices; shards take whole batches round-robin.
    let mut batches: Vec<(usize, Vec<usize>)> = Vec::new();
    for (li, &len) in lengths.iter().enumerate() {
        let idx: Vec<usize> = (0..args.num_samples).map(|k| li * args.num_samples + k).collect();
        for chunk in idx.chunks(args.sampling.batch_size) {
            batches.push((len, chunk.to_vec()));
        }
    }
    let mine: Vec<&(usize, Vec<usize>)> =
        batches.iter().enumerate().filter(|(b, _)| shard.is_none_or(|(k, n)| b % n == k)).map(|(_, x)| x).collect();

    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create directory", args.out.display()))?;
    let width = (lengths.len() * args.num_samples).saturating_sub(1).to_string().len().max(1);
    let file_of = |i: usize| format!("{}_{:0width$}.pdb", args.prefix, i);
    if !args.force {
        for (_, idx) in &mine {
            for &i in idx {
                let p = args.out.join(file_of(i));
                if p.exists() {
                    bail!("{}: already exists (use --force to overwrite)", p.display());
                }
            }
        }
    }
    let total: usize = mine.iter().map(|(_, i)| i.len()).sum();
    printer.note(format!("generating {total} backbone(s) with PAR ({}), plan {}", weights.display(), opts.plan));
    let bar = printer.bar(total as u64, "sampling");
    let mut records = Vec::with_capacity(total);
    for (len, idx) in mine {
        let seeds: Vec<u64> = idx.iter().map(|&i| sample_seed(args.seed, i as u64)).collect();
        let mut rngs: Vec<_> = seeds.iter().map(|&s| seeded(s)).collect();
        let cond = Conditioning { prompt: prompt.clone(), ..Conditioning::default() };
        let traces = sample_ca_conditioned(&model, *len, idx.len(), &opts, &cond, &mut PerSampleNoise(&mut rngs), &device)
            .with_context(|| format!("sampling length {len}"))?;
        for ((&i, seed), ca) in idx.iter().zip(seeds).zip(traces) {
            let (ca, idealize) = idealize_trace(ca, &[], !args.sampling.no_idealize)?;
            let bb = Backbone::from_ca(&ca, Some(vec![residue::aatype_from_one('G'); ca.len()]));
            let name = file_of(i);
            let (bb, atoms) = finish_backbone(bb, args.sampling.backbone, &name, &|m| bar.suspend(|| printer.warn(m)));
            protforge_structure::write_pdb(&args.out.join(&name), &bb)?;
            records.push(SampleRecord { index: i, file: name, length: *len, seed, atoms, idealize });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let manifest = Manifest {
        tool: "protforge",
        version: env!("CARGO_PKG_VERSION"),
        command: "generate",
        weights,
        weights_sha256: sha,
        seed: args.seed,
        lengths: &lengths,
        num_samples: args.num_samples,
        backbone: args.sampling.backbone,
        batch_size: args.sampling.batch_size,
        prompt: args.prompt.clone(),
        shard,
        sampler: &opts,
        samples: records,
    };
    let name = match shard {
        Some((k, n)) => format!("manifest.shard{k}of{n}.json"),
        None => "manifest.json".to_string(),
    };
    protforge_structure::io::write_atomic(&args.out.join(&name), serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    printer.note(format!("wrote {total} file(s) and {name} to {}", args.out.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_shards_parse() {
        assert_eq!(parse_lengths("60:100:20").unwrap(), vec![60, 80, 100]);
        assert!(parse_lengths("100:60:20").is_err());
        assert!(parse_lengths("0:10:1").is_err());
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        assert!(parse_shard("4/4").is_err());
    }
}
