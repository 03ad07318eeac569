//! `protforge assemble`: multi-domain backbones with ProteinWeaver.
//!
//! Domains come from structure files (`--domains a.pdb b.pdb …`, chain order = argument order)
//! or are generated with PAR (`--domain-lengths 80,120`). They are joined by linkers of
//! `--linker N` or `MIN-MAX` residues (a range is drawn per linker and sample) and placed by the
//! SE(3) diffusion model. With rigid domain projection (the default) every domain of the output
//! is its input structure moved as a rigid body (real N, CA, C, O atoms); linkers get ideal
//! backbone atoms from their frames.

use crate::cli::{AssembleArgs, GlobalArgs};
use crate::printer::Printer;
use anyhow::{Context, bail};
use protforge_flow::rng::{sample_seed, seeded};
use protforge_nn::Checkpoint;
use protforge_se3::{Rigid, Vec3};
use protforge_structure::{Backbone, atom, rebuild_backbone, residue};
use protforge_weaver::closure::{ClosureReport, SeparationReport, close_linkers, separate_domains};
use protforge_weaver::dpo::load_model;
use protforge_weaver::frames::{atoms_from_frames, centred, f32x3, frames_from_backbone, vec3};
use protforge_weaver::sampler::{AssemblyInput, SampleOptions, Sampler};
use protforge_weaver::score::{ScoreBreakdown, ScoreConfig, score_assembly};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A linker length or an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct LinkerSpec {
    min: usize,
    max: usize,
}

/// Parse `N` or `MIN-MAX`.
pub(crate) fn parse_linker(text: &str) -> anyhow::Result<LinkerSpec> {
    let num = |s: &str| s.trim().parse::<usize>().ok();
    let spec = match text.split_once('-') {
        None => num(text).map(|n| LinkerSpec { min: n, max: n }),
        Some((a, b)) => num(a).zip(num(b)).map(|(min, max)| LinkerSpec { min, max }),
    };
    match spec {
        Some(s) if s.min <= s.max => Ok(s),
        Some(s) => bail!("--linker '{text}': the range minimum {} exceeds its maximum {}", s.min, s.max),
        None => bail!("--linker '{text}': expected a length N or a range MIN-MAX of non-negative integers, e.g. 15 or 10-20"),
    }
}

/// Parse `80,120`.
pub(crate) fn parse_domain_lengths(text: &str) -> anyhow::Result<Vec<usize>> {
    let lens: Option<Vec<usize>> = text.split(',').map(|s| s.trim().parse::<usize>().ok().filter(|&n| n > 0)).collect();
    match lens {
        Some(l) if l.len() >= 2 => Ok(l),
        _ => bail!("--domain-lengths '{text}': expected at least two positive lengths separated by commas, e.g. 80,120"),
    }
}

/// One input domain: its frames and real atoms (Å).
#[derive(Clone)]
struct Domain {
    source: String,
    frames: Vec<Rigid>,
    atoms: Vec<[Vec3; 4]>,
}

impl Domain {
    /// From a backbone: the residues with N, CA and C; a missing O is rebuilt from the frames.
    fn from_backbone(bb: &Backbone, source: String) -> anyhow::Result<Self> {
        let (frames, idx) = frames_from_backbone(bb).with_context(|| source.clone())?;
        let ideal = atoms_from_frames(&frames);
        let atoms = idx
            .iter()
            .zip(&ideal)
            .map(|(&i, id)| {
                let c = bb.coords[i];
                let o = if bb.atom_mask[i][atom::O] { vec3(c[atom::O]) } else { id[3] };
                [vec3(c[atom::N]), vec3(c[atom::CA]), vec3(c[atom::C]), o]
            })
            .collect();
        Ok(Self { source, frames, atoms })
    }
}

/// Read a domain file: the first chain that has protein residues (N, CA, C).
fn read_domain(path: &Path) -> anyhow::Result<Domain> {
    let bb = super::io::read_structure(path, None)?;
    for chain in bb.chains() {
        let Some(c) = bb.chain(&chain) else { continue };
        let d = Domain::from_backbone(&c, path.display().to_string())?;
        if d.frames.len() >= 3 {
            return Ok(d);
        }
    }
    bail!("{}: no protein found (no chain with at least 3 residues having N, CA and C atoms)", path.display())
}

/// Generate one domain of `len` residues with PAR (CA trace → idealised → N, CA, C, O).
fn par_domain(model: &protforge_par::model::ParModel, len: usize, seed: u64, device: &candle_core::Device) -> anyhow::Result<Domain> {
    use protforge_par::sampler::{Conditioning, SampleOptions as ParOptions, sample_ca_conditioned};
    let mut rngs = vec![seeded(seed)];
    let traces = sample_ca_conditioned(model, len, 1, &ParOptions::default(), &Conditioning::default(), &mut protforge_flow::PerSampleNoise(&mut rngs), device)
        .with_context(|| format!("generating a {len}-residue domain with PAR"))?;
    let ca = traces.into_iter().next().context("PAR returned no trace")?;
    let (ca, _) = super::generate::idealize_trace(ca, &[], true)?;
    let bb = Backbone::from_ca(&ca, Some(vec![residue::aatype_from_one('G'); ca.len()]));
    let full = protforge_structure::rebuild::complete_backbone(&bb).context("rebuilding a PAR domain's backbone")?;
    Domain::from_backbone(&full, format!("PAR (length {len}, seed {seed})"))
}

/// A 1-based inclusive residue range.
#[derive(Serialize)]
struct Range1 {
    start: usize,
    end: usize,
}

#[derive(Serialize)]
struct DomainRecord {
    domain: usize,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    residues: Range1,
    /// CA RMSD (Å) of the network's own version of this domain to the input, after superposition.
    network_rmsd: f64,
}

#[derive(Serialize)]
struct SampleRecord {
    index: usize,
    file: String,
    seed: u64,
    length: usize,
    domains: Vec<DomainRecord>,
    linkers: Vec<Range1>,
    /// Score of the written structure.
    score: ScoreBreakdown,
    /// Score of the sampled structure before refinement (absent with --raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_score: Option<ScoreBreakdown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refinement: Option<Refinement>,
}

/// What refinement did to one sample (`protforge_weaver::closure`).
#[derive(Serialize)]
struct Refinement {
    separation: SeparationReport,
    linker_closure: ClosureReport,
}

#[derive(Serialize)]
struct Manifest {
    tool: &'static str,
    version: &'static str,
    command: &'static str,
    weights: PathBuf,
    weights_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    par_weights: Option<PathBuf>,
    seed: u64,
    mode: &'static str,
    domain_lengths: Vec<usize>,
    linker: LinkerSpec,
    num_samples: usize,
    sampler: SampleOptions,
    score_settings: ScoreConfig,
    samples: Vec<SampleRecord>,
}

/// Output atoms: domain residues are the input atoms moved by their domain's placement (plus
/// the domain's separation shift after refinement). Linker residues are rebuilt from the
/// refined CA trace (`protforge_structure::rebuild`) when given, otherwise from their sampled
/// frames.
fn output_backbone(frames: &[Rigid], input: &AssemblyInput, domains: &[Domain], refined: Option<(&[Vec3], &[Vec3])>) -> Backbone {
    let linker_ca = refined.map(|r| r.0);
    let shift = |d: usize| refined.map_or_else(Vec3::zeros, |r| r.1[d]);
    let from_frames = atoms_from_frames(frames);
    let ideal = match linker_ca.map(|ca| rebuild_backbone(&ca.iter().map(f32x3).collect::<Vec<_>>())) {
        Some(Ok(atoms)) => atoms.into_iter().map(|r| r.map(vec3)).collect(),
        // The rebuild refuses only CA pairs closer than it supports, which a converged closure
        // never leaves; fall back to the sampled frames moved onto the closed CA.
        Some(Err(_)) => from_frames
            .iter()
            .zip(frames)
            .zip(linker_ca.unwrap_or_default())
            .map(|((atoms, f), ca)| atoms.map(|p| p - f.trans + ca))
            .collect(),
        None => from_frames,
    };
    let mut next = vec![0usize; domains.len()];
    let coords = input
        .map
        .domain_of
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Some(d) => {
                let k = next[*d];
                next[*d] += 1;
                let g = frames[i].compose(&domains[*d].frames[k].inverse());
                domains[*d].atoms[k].map(|p| f32x3(&(g.apply(p) + shift(*d))))
            }
            None => ideal[i].map(|p| f32x3(&p)),
        })
        .collect();
    Backbone::from_coords(coords, vec![residue::aatype_from_one('G'); frames.len()])
}

/// Ranges of the layout (1-based): domains then linkers.
fn ranges(domain_of: &[Option<usize>], n_domains: usize) -> (Vec<Range1>, Vec<Range1>) {
    let mut doms = Vec::new();
    for d in 0..n_domains {
        let idx: Vec<usize> = (0..domain_of.len()).filter(|&i| domain_of[i] == Some(d)).collect();
        if let (Some(&s), Some(&e)) = (idx.first(), idx.last()) {
            doms.push(Range1 { start: s + 1, end: e + 1 });
        }
    }
    let mut links: Vec<Range1> = Vec::new();
    for (i, d) in domain_of.iter().enumerate() {
        if d.is_none() {
            match links.last_mut() {
                Some(r) if r.end == i => r.end = i + 1,
                _ => links.push(Range1 { start: i + 1, end: i + 1 }),
            }
        }
    }
    (doms, links)
}

pub(crate) fn run(args: &AssembleArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    let linker = parse_linker(&args.linker)?;
    if args.num_samples == 0 {
        bail!("--num-samples must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if let Some(g) = args.noise_scale
        && !(g.is_finite() && g >= 0.0)
    {
        bail!("--noise-scale must be a non-negative number");
    }
    if args.steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    // Inputs first: bad files and layouts fail before any model is loaded.
    let (file_domains, lengths) = match (&args.domain_lengths, args.domains.as_slice()) {
        (Some(text), _) => (None, parse_domain_lengths(text)?),
        (None, files) if files.len() >= 2 => {
            let d = files.iter().map(|p| read_domain(p)).collect::<anyhow::Result<Vec<_>>>()?;
            let l = d.iter().map(|d| d.frames.len()).collect();
            (Some(d), l)
        }
        _ => bail!("give at least two --domains files, or --domain-lengths"),
    };
    let weights = super::weights::locate("weaver", global)?;
    let model = load_model(&weights, &device).with_context(|| format!("{}: cannot load the ProteinWeaver model", weights.display()))?;
    let total = lengths.iter().sum::<usize>() + (lengths.len() - 1) * linker.max;
    if total > model.cfg.max_len {
        bail!(
            "total length {total} residues (domains {}, {} linker(s) of up to {}) exceeds the model's maximum of {} residues",
            lengths.iter().map(ToString::to_string).collect::<Vec<_>>().join("+"),
            lengths.len() - 1,
            linker.max,
            model.cfg.max_len
        );
    }
    let par = match file_domains {
        Some(_) => None,
        None => {
            let dir = match &args.par_weights {
                Some(dir) if dir.join("model.safetensors").is_file() => dir.clone(),
                Some(dir) => bail!("--par-weights {}: no model.safetensors here", dir.display()),
                None => super::weights::locate("par", &GlobalArgs { weights: None, ..global.clone() })?,
            };
            Some((super::generate::load_par(&dir, &device)?, dir))
        }
    };
    let opts = SampleOptions { num_steps: args.steps, noise_scale: args.noise_scale, project: !args.no_projection };
    let sampler = Sampler::new(&model, &opts)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create directory", args.out.display()))?;
    let width = args.num_samples.saturating_sub(1).to_string().len();
    let file_of = |i: usize| format!("{}_{:0width$}.pdb", args.prefix, i);
    if !args.force {
        for i in 0..args.num_samples {
            let p = args.out.join(file_of(i));
            if p.exists() {
                bail!("{}: already exists (use --force to overwrite)", p.display());
            }
        }
    }
    printer.note(format!(
        "assembling {} sample(s) of {} domains ({}) with ProteinWeaver ({}), {} steps",
        args.num_samples,
        lengths.len(),
        if par.is_some() { "generated with PAR" } else { "from files" },
        weights.display(),
        sampler.diffuser().config().sampler.num_steps
    ));
    let score_cfg = ScoreConfig::default();
    let bar = printer.bar(args.num_samples as u64, "assembling");
    let mut records = Vec::with_capacity(args.num_samples);
    // Samples that share a layout and domains run in batches; each draws its noise from its own seed.
    let mut i = 0;
    while i < args.num_samples {
        let seed = sample_seed(args.seed, i as u64);
        // Linker lengths and PAR domain seeds of sample i derive from its seed alone.
        let span = (linker.max - linker.min + 1) as u64;
        let linkers: Vec<usize> = (1..lengths.len()).map(|j| linker.min + (sample_seed(seed, j as u64) % span) as usize).collect();
        let (domains, batch): (Vec<Domain>, Vec<usize>) = match (&file_domains, &par) {
            (Some(files), _) if linker.min == linker.max => (files.clone(), (i..i + args.batch_size.min(args.num_samples - i)).collect()),
            (Some(files), _) => (files.clone(), vec![i]),
            (None, Some((par_model, _))) => {
                let d = lengths
                    .iter()
                    .enumerate()
                    .map(|(k, &l)| par_domain(par_model, l, sample_seed(seed, 1000 + k as u64), &device))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                (d, vec![i])
            }
            (None, None) => bail!("internal: no domain source"),
        };
        let frames: Vec<Vec<Rigid>> = domains.iter().map(|d| centred(&d.frames)).collect();
        let input = AssemblyInput::from_domains(&frames, &linkers)?;
        // Keep the atoms consistent with the centred frames.
        let domains: Vec<Domain> = domains
            .into_iter()
            .zip(&frames)
            .map(|(d, f)| {
                let shift = d.frames[0].trans - f[0].trans;
                Domain { source: d.source, atoms: d.atoms.iter().map(|a| a.map(|p| p - shift)).collect(), frames: f.clone() }
            })
            .collect();
        let mut rngs: Vec<_> = batch.iter().map(|&k| seeded(sample_seed(args.seed ^ 0x5eed, k as u64))).collect();
        let out = sampler.sample(&input, &mut rngs, &device).with_context(|| format!("sampling assembly {i}"))?;
        for (&k, a) in batch.iter().zip(&out) {
            let name = file_of(k);
            let sampled_ca: Vec<Vec3> = a.frames.iter().map(|f| f.trans).collect();
            let raw_score = score_assembly(&sampled_ca, &input.map.domain_of, &score_cfg)?;
            let (ca, refinement) = if args.raw {
                (sampled_ca, None)
            } else {
                let (apart, separation) = separate_domains(&sampled_ca, &input.map.domain_of, 4.0).with_context(|| format!("separating the domains of assembly {k}"))?;
                let (ca, linker_closure) = close_linkers(&apart, &input.map.domain_of).with_context(|| format!("closing the linkers of assembly {k}"))?;
                (ca, Some(Refinement { separation, linker_closure }))
            };
            let shifts: Vec<Vec3> = refinement.as_ref().map_or_else(Vec::new, |r| r.separation.shifts.iter().map(|s| Vec3::new(s[0], s[1], s[2])).collect());
            let bb = output_backbone(&a.frames, &input, &domains, refinement.is_some().then_some((ca.as_slice(), shifts.as_slice())));
            protforge_structure::write_pdb(&args.out.join(&name), &bb)?;
            let mut domain_files = vec![None; domains.len()];
            if par.is_some() {
                for (dk, d) in domains.iter().enumerate() {
                    let dname = format!("{}_{:0width$}_domain{}.pdb", args.prefix, k, dk + 1);
                    let dbb = Backbone::from_coords(d.atoms.iter().map(|a| a.map(|p| f32x3(&p))).collect(), vec![residue::aatype_from_one('G'); d.atoms.len()]);
                    protforge_structure::write_pdb(&args.out.join(&dname), &dbb)?;
                    domain_files[dk] = Some(dname);
                }
            }
            let score = score_assembly(&ca, &input.map.domain_of, &score_cfg)?;
            let (dom_ranges, link_ranges) = ranges(&input.map.domain_of, domains.len());
            let domain_records = dom_ranges
                .into_iter()
                .enumerate()
                .map(|(dk, r)| DomainRecord {
                    domain: dk + 1,
                    source: domains[dk].source.clone(),
                    file: domain_files[dk].clone(),
                    residues: r,
                    network_rmsd: a.domain_rmsd.get(dk).copied().unwrap_or(f64::NAN),
                })
                .collect();
            records.push(SampleRecord { index: k, file: name, seed: sample_seed(args.seed, k as u64), length: input.len(), domains: domain_records,
                linkers: link_ranges,
                score,
                raw_score: refinement.is_some().then_some(raw_score),
                refinement,
            });
            bar.inc(1);
        }
        i += batch.len();
    }
    bar.finish_and_clear();
    let sha = Checkpoint::new(&weights).info()?.sha256;
    let manifest = Manifest {
        tool: "protforge",
        version: env!("CARGO_PKG_VERSION"),
        command: "assemble",
        weights,
        weights_sha256: sha,
        par_weights: par.map(|(_, dir)| dir),
        seed: args.seed,
        mode: if file_domains.is_some() { "files" } else { "lengths" },
        domain_lengths: lengths,
        linker,
        num_samples: args.num_samples,
        sampler: opts,
        score_settings: score_cfg,
        samples: records,
    };
    protforge_structure::io::write_atomic(&args.out.join("manifest.json"), serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    let n = manifest.samples.len().max(1) as f64;
    let mean = |f: &dyn Fn(&ScoreBreakdown) -> f64| manifest.samples.iter().map(|s| f(&s.score)).sum::<f64>() / n;
    let closure = {
        let moved: Vec<f64> = manifest.samples.iter().filter_map(|s| s.refinement.as_ref().map(|r| r.linker_closure.linker_rmsd_moved)).collect();
        let separated = manifest.samples.iter().filter(|s| s.refinement.as_ref().is_some_and(|r| r.separation.close_pairs_before > 0)).count();
        let raw_valid = manifest.samples.iter().filter(|s| s.raw_score.is_some_and(|r| r.valid)).count();
        if moved.is_empty() {
            String::new()
        } else {
            format!(
                "; refined: {separated} with overlapping domains pushed apart, linkers closed (mean linker RMSD moved {:.2} Å); {raw_valid} valid as sampled",
                moved.iter().sum::<f64>() / moved.len() as f64
            )
        }
    };
    printer.note(format!(
        "wrote {} file(s) and manifest.json to {}: {} valid (no clash, linker bonds in range, no linker threaded through a domain), mean {:.0} interface contacts, mean Rg ratio {:.2}, mean score {:.3}{closure}",
        args.num_samples,
        args.out.display(),
        manifest.samples.iter().filter(|s| s.score.valid).count(),
        mean(&|s| s.n_contacts as f64),
        mean(&|s| s.rg_ratio),
        mean(&|s| s.total)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linker_and_lengths_parse() {
        assert_eq!(parse_linker("15").unwrap(), LinkerSpec { min: 15, max: 15 });
        assert_eq!(parse_linker("10-20").unwrap(), LinkerSpec { min: 10, max: 20 });
        assert!(parse_linker("20-10").unwrap_err().to_string().contains("exceeds"));
        assert!(parse_linker("x").is_err());
        assert!(parse_linker("-3").is_err());
        assert_eq!(parse_domain_lengths("80, 120").unwrap(), vec![80, 120]);
        assert!(parse_domain_lengths("80").is_err());
        assert!(parse_domain_lengths("80,0").is_err());
        let (d, l) = ranges(&[Some(0), Some(0), None, None, Some(1)], 2);
        assert_eq!((d[1].start, d[1].end, l[0].start, l[0].end), (5, 5, 3, 4));
    }
}
