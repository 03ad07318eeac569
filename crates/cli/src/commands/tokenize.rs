//! `protforge tokenize encode|decode`: DPLM-2 structure tokens with the tokenizer weights.

use crate::cli::{GlobalArgs, TokenizeDecodeArgs, TokenizeEncodeArgs};
use crate::printer::{Printer, out};
use anyhow::{Context, bail};
use candle_core::DType;
use candle_nn::VarBuilder;
use protforge_nn::Checkpoint;
use protforge_structure::Backbone;
use protforge_tokenizer::lfq::bits_string;
use protforge_tokenizer::{TokenRecord, Tokenizer, TokenizerConfig, length_batches, read_fasta, write_fasta};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Largest `batch size × longest chain²` per network batch (the pair tensors dominate memory:
/// 8 chains of 256 residues).
const MAX_PAIRS: usize = 8 * 256 * 256;

/// Load the tokenizer from a weights directory.
fn load_tokenizer(dir: &Path, device: &candle_core::Device) -> anyhow::Result<Tokenizer> {
    let ck = Checkpoint::new(dir);
    let cfg: TokenizerConfig = ck.load_config()?;
    cfg.validate().with_context(|| format!("{}", ck.config_path().display()))?;
    let vb = VarBuilder::from_tensors(ck.load_tensors(device)?, DType::F32, device);
    Tokenizer::new(&cfg, vb).with_context(|| format!("{}: weights do not match config.json", ck.weights_path().display()))
}

/// File name without directories and without `.gz` and the structure extension.
fn file_stem(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => name.to_string(),
    }
}

/// Structure files named on the command line: files as given, folders listed (not recursive).
fn input_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list directory", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && super::io::is_structure_file(f))
                .collect();
            if found.is_empty() {
                bail!("{}: no structure files (.pdb/.ent/.cif/.mmcif, optionally .gz) in this directory", p.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// One chain to encode.
struct Chain {
    id: String,
    file: PathBuf,
    chain: String,
    backbone: Backbone,
}

#[derive(Serialize)]
struct EncodedRecord<'a> {
    id: &'a str,
    file: &'a Path,
    chain: &'a str,
    length: usize,
    /// Residues without N, CA or C (encoded as token 0).
    masked_residues: usize,
    tokens: &'a [u16],
    /// Per residue, the bits of its token, most significant first.
    bits: Vec<String>,
}

#[derive(Serialize)]
struct EncodeReport<'a> {
    tool: &'static str,
    version: &'static str,
    command: &'static str,
    weights: &'a Path,
    weights_sha256: &'a str,
    out: &'a Path,
    records: Vec<EncodedRecord<'a>>,
}

/// Run `run` over length-sorted batches of `items` (see [`length_batches`]); results in input order.
fn batched<T: Clone, U>(
    items: &[T],
    lengths: &[usize],
    batch_size: usize,
    mut run: impl FnMut(&[T]) -> anyhow::Result<Vec<U>>,
) -> anyhow::Result<Vec<U>> {
    let mut out: Vec<Option<U>> = (0..items.len()).map(|_| None).collect();
    for idx in length_batches(lengths, batch_size.max(1), MAX_PAIRS) {
        let batch: Vec<T> = idx.iter().map(|&i| items[i].clone()).collect();
        for (i, r) in idx.into_iter().zip(run(&batch)?) {
            out[i] = Some(r);
        }
    }
    out.into_iter().map(|o| o.context("a batch returned too few results")).collect()
}

pub(crate) fn encode(args: &TokenizeEncodeArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        bail!("{}: already exists (use --force to overwrite)", args.out.display());
    }
    let files = input_files(&args.inputs)?;
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let weights = super::weights::locate("tokenizer", global)?;
    let model = load_tokenizer(&weights, &device)?;
    let sha = Checkpoint::new(&weights).info()?.sha256;

    let per_file: Vec<Vec<Chain>> = files
        .par_iter()
        .map(|path| -> anyhow::Result<Vec<Chain>> {
            let bb = super::io::read_structure(path, args.chain.as_deref())?;
            let stem = file_stem(path);
            Ok(bb
                .chains()
                .into_iter()
                .filter_map(|c| bb.chain(&c).map(|b| (c, b)))
                .map(|(chain, backbone)| Chain { id: format!("{stem}_{chain}"), file: path.clone(), chain, backbone })
                .collect())
        })
        .collect::<anyhow::Result<_>>()?;
    let chains: Vec<Chain> = per_file.into_iter().flatten().collect();
    for (k, c) in chains.iter().enumerate() {
        if let Some(prev) = chains[..k].iter().find(|p| p.id == c.id) {
            bail!("record id '{}' occurs twice ({} and {}); rename one of the files", c.id, prev.file.display(), c.file.display());
        }
    }
    printer.note(format!("encoding {} chain(s) from {} file(s) with {}", chains.len(), files.len(), weights.display()));
    let bar = printer.bar(chains.len() as u64, "encoding");
    let backbones: Vec<Backbone> = chains.iter().map(|c| c.backbone.clone()).collect();
    let lengths: Vec<usize> = backbones.iter().map(Backbone::len).collect();
    let tokens = batched(&backbones, &lengths, args.batch_size, |batch| {
        let t = model.tokenize(batch).context("encoding")?;
        bar.inc(batch.len() as u64);
        Ok(t)
    })?;
    bar.finish_and_clear();

    let records: Vec<TokenRecord> =
        chains.iter().zip(&tokens).map(|(c, t)| TokenRecord { id: c.id.clone(), tokens: t.clone() }).collect();
    write_fasta(&args.out, &records)?;
    if global.json {
        let bits = model.config().quantizer.bits;
        let report = EncodeReport {
            tool: "protforge",
            version: env!("CARGO_PKG_VERSION"),
            command: "tokenize encode",
            weights: &weights,
            weights_sha256: &sha,
            out: &args.out,
            records: chains
                .iter()
                .zip(&tokens)
                .map(|(c, t)| EncodedRecord {
                    id: &c.id,
                    file: &c.file,
                    chain: &c.chain,
                    length: t.len(),
                    masked_residues: c.backbone.atom_mask.iter().filter(|m| !(m[0] && m[1] && m[2])).count(),
                    tokens: t,
                    bits: t.iter().map(|&v| bits_string(v, bits)).collect(),
                })
                .collect(),
        };
        out(serde_json::to_string_pretty(&report)?);
    }
    printer.note(format!("wrote {} record(s) to {}", records.len(), args.out.display()));
    Ok(())
}

/// A record id as a file name: characters other than letters, digits, `.`, `_` and `-` become `_`.
fn safe_file_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect()
}

#[derive(Serialize)]
struct DecodedRecord<'a> {
    id: &'a str,
    file: String,
    length: usize,
}

#[derive(Serialize)]
struct DecodeManifest<'a> {
    tool: &'static str,
    version: &'static str,
    command: &'static str,
    weights: &'a Path,
    weights_sha256: &'a str,
    input: &'a Path,
    records: Vec<DecodedRecord<'a>>,
}

pub(crate) fn decode(args: &TokenizeDecodeArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<()> {
    let device = global.device.parse::<protforge_nn::DeviceSpec>()?.open()?;
    let weights = super::weights::locate("tokenizer", global)?;
    let model = load_tokenizer(&weights, &device)?;
    let sha = Checkpoint::new(&weights).info()?.sha256;
    let records = read_fasta(&args.input, model.config().n_codes())?;
    let names: Vec<String> = records.iter().map(|r| format!("{}.pdb", safe_file_name(&r.id))).collect();
    for (k, name) in names.iter().enumerate() {
        if let Some(j) = names[..k].iter().position(|n| n == name) {
            bail!(
                "{}: records '{}' and '{}' would both be written to {name}; give them distinct ids",
                args.input.display(),
                records[j].id,
                records[k].id
            );
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create directory", args.out.display()))?;
    if !args.force
        && let Some(p) = names.iter().map(|n| args.out.join(n)).find(|p| p.exists())
    {
        bail!("{}: already exists (use --force to overwrite)", p.display());
    }
    printer.note(format!("decoding {} record(s) from {} with {}", records.len(), args.input.display(), weights.display()));
    let bar = printer.bar(records.len() as u64, "decoding");
    let tokens: Vec<Vec<u16>> = records.iter().map(|r| r.tokens.clone()).collect();
    let lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
    let backbones = batched(&tokens, &lengths, args.batch_size, |batch| {
        let b = model.detokenize(batch).context("decoding")?;
        bar.inc(batch.len() as u64);
        Ok(b)
    })?;
    bar.finish_and_clear();
    names
        .par_iter()
        .zip(&backbones)
        .try_for_each(|(name, bb)| protforge_structure::write_pdb(&args.out.join(name), bb))?;
    let manifest = DecodeManifest {
        tool: "protforge",
        version: env!("CARGO_PKG_VERSION"),
        command: "tokenize decode",
        weights: &weights,
        weights_sha256: &sha,
        input: &args.input,
        records: records.iter().zip(&names).map(|(r, n)| DecodedRecord { id: &r.id, file: n.clone(), length: r.tokens.len() }).collect(),
    };
    protforge_structure::io::write_atomic(&args.out.join("manifest.json"), serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    printer.note(format!("wrote {} PDB file(s) and manifest.json to {}", backbones.len(), args.out.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(file_stem(Path::new("dir/1abc_A.pdb")), "1abc_A");
        assert_eq!(file_stem(Path::new("x.cif.gz")), "x");
        assert_eq!(file_stem(Path::new("noext")), "noext");
        assert_eq!(safe_file_name("7CFN:R/x y"), "7CFN_R_x_y");
    }
}
