//! Command-line types (clap derive). Nothing here runs anything: `main.rs` dispatches to
//! `commands/<name>.rs`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// protforge: protein backbone generation, motif scaffolding and MD rollout.
///
/// Coordinates are read and written in Å. Every output directory gets a manifest.json.
/// Run `protforge <command> --help` for the options of each command.
#[derive(Debug, Parser)]
#[command(name = "protforge", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args, Clone)]
pub(crate) struct GlobalArgs {
    /// Print only errors (and the requested output).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// More detail: per-file warnings and timings. Repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Hide progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,
    /// Worker threads for parallel work [default: all cores].
    #[arg(long, global = true, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Compute device: cpu, or cuda:N in builds with the `cuda` feature.
    #[arg(long, global = true, default_value = "cpu", value_name = "DEVICE")]
    pub(crate) device: String,
    /// Directory holding the model's config.json and model.safetensors
    /// [default: the shipped weights/<model>/].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) weights: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Summarise a structure, trajectory, dataset or weights file.
    ///
    /// Accepts .pdb/.ent/.cif/.mmcif (optionally .gz), .xtc/.dcd (with --topology),
    /// dataset .safetensors files and weight directories or files.
    Inspect(InspectArgs),
    /// Metrics for backbones, pairs of structures and trajectories.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Build and manage dataset files.
    #[command(subcommand)]
    Data(DataCommand),
    /// Generate backbones unconditionally with PAR and write them as PDB files.
    ///
    /// Writes OUT/<prefix>_<i>.pdb (poly-glycine; CA only, or N/CA/C/O with --backbone full)
    /// and OUT/manifest.json. Sample i uses a seed derived from --seed and i, and samples are
    /// batched in fixed groups of --batch-size, so `--shard k/N` runs produce exactly the
    /// files of one big run.
    ///
    /// Examples:
    ///   protforge generate --length 120 --num-samples 8 --seed 0 --out designs/
    ///   protforge generate --lengths 60:200:20 --num-samples 4 --out designs/
    ///   protforge generate --length 150 --schedule sde:400,ode:2,ode:2 --out fast/
    Generate(GenerateArgs),
    /// Build new backbones around a fixed motif with PAR (zero-shot motif scaffolding).
    ///
    /// The contig places motif segments between scaffold segments of sampled lengths; at
    /// every scale the downsampled motif is superimposed onto the generated motif points and
    /// written over them. Writes OUT/<prefix>_<i>.pdb (scaffold residues GLY, motif residues
    /// keep their names) and OUT/manifest.json with, per sample, where each motif segment
    /// landed and its motif CA-RMSD.
    ///
    /// Examples:
    ///   protforge scaffold --motif 5tpn.pdb --contig "10-40,A163-181,10-40" --length 50-75 --num-samples 8 --out out/
    ///   protforge scaffold --motif genie2/design25/5tpn.pdb --num-samples 8 --out out/   (REMARK 999 spec)
    ///   protforge scaffold --motif 5TPN.pdb --benchmark frameflow_benchmark.csv --problem 5TPN --out out/
    Scaffold(ScaffoldArgs),
    /// Roll out an MD-like backbone trajectory from a starting structure with STAR-MD.
    ///
    /// Writes OUT (.xtc, .dcd or multi-model .pdb; frame 0 is the initial structure, then
    /// FRAMES generated frames DT_NS apart), a topology PDB <stem>_topology.pdb beside .xtc/.dcd
    /// output, and manifest.json in the same folder (settings, weights checksum, speed, KV-cache
    /// memory). --init must be one protein chain with N, CA and C in every residue and no gaps
    /// (CA–CA over 4.2 Å is an error); ligands, waters and ions are ignored, modified residues
    /// count as their parents (MSE as MET). --dt-ns must lie in the stride range the weights
    /// were trained on (the shipped weights: 0.01–0.14 ns; `protforge inspect weights/starmd`
    /// shows it).
    ///
    /// Examples:
    ///   protforge rollout --init start.pdb --frames 200 --dt-ns 0.1 --out traj.xtc
    ///   protforge rollout --init start.pdb --frames 1000 --dt-ns 0.05 --replicas 3 --seed 7 --out runs/traj.dcd
    Rollout(RolloutArgs),
    /// Turn backbones into DPLM-2 structure tokens and back.
    ///
    /// Tokens are 13-bit codes (0-8191) in DPLM-2's text format: comma-separated, zero-padded
    /// 4-digit ids (`0123,4095,...`), one FASTA record per chain.
    #[command(subcommand)]
    Tokenize(TokenizeCommand),
    /// Assemble two or more domains into one chain with ProteinWeaver.
    ///
    /// Domains come from structure files (chain order = argument order; the first chain with
    /// protein residues of each file) or are generated with PAR (--domain-lengths). They are
    /// joined by linkers and placed by SE(3) diffusion conditioned on the spliced distance map.
    /// By default every output domain is its input structure moved rigidly; linkers are new.
    /// Writes OUT/<prefix>_<i>.pdb (poly-glycine N, CA, C, O; with --domain-lengths also the PAR
    /// domains) and OUT/manifest.json with the domain and linker residue ranges and scores.
    ///
    /// Examples:
    ///   protforge assemble --domains a.pdb b.pdb --linker 15 --num-samples 4 --out assembled/
    ///   protforge assemble --domain-lengths 80,120 --linker 10-20 --num-samples 8 --out denovo/
    Assemble(AssembleArgs),
    /// Train a model on a dataset file (resumable; checkpoints every few minutes).
    #[command(subcommand)]
    Train(TrainCommand),
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// File or directory to summarise.
    pub(crate) path: PathBuf,
    /// Topology (PDB/mmCIF) for .xtc/.dcd files.
    #[arg(long, value_name = "FILE")]
    pub(crate) topology: Option<PathBuf>,
    /// For structures: only this chain.
    #[arg(long, value_name = "ID")]
    pub(crate) chain: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EvalCommand {
    /// Geometry, clashes, Rg, secondary structure, diversity and novelty of a folder of backbones.
    ///
    /// Reads every .pdb/.cif(.gz) file in DIR (not recursive). Per-structure rows plus an
    /// aggregate; with --json the aggregate keys are: n, ca_bond_ok_frac, clash_frac,
    /// helix_frac, strand_frac, median_rg_ratio, mean_pairwise_tm, clusters_tm05 and
    /// median_max_tm_to_reference (with --reference).
    Backbones(EvalBackbonesArgs),
    /// Align two structures with TM-align (CA atoms; sequence-independent).
    ///
    /// tm_a is normalised by the length of A, tm_b by the length of B, as in TMalign's output.
    Tm(EvalTmArgs),
    /// 3-state secondary structure (H/E/C) by DSSP, or a CA-geometry rule for CA-only input.
    Ss(EvalSsArgs),
    /// Ensemble metrics of a trajectory (AlphaFlow style), optionally against a reference.
    ///
    /// Every frame is superimposed (CA Kabsch) onto the initial structure (the --topology
    /// file, or the first model of a multi-model PDB). Reports CA RMSF per residue, the
    /// pairwise-RMSD distribution, validity over time (no CA pair under 3.0 Å, no CA–CA break
    /// over 4.2 Å), RMSD to the initial structure over time and, with --reference: RMSF Pearson r,
    /// and the W2 distance and 10×10-histogram JSD of both ensembles projected on the
    /// reference's top-2 principal components.
    ///
    /// Examples:
    ///   protforge eval trajectory traj.xtc --topology start.pdb
    ///   protforge eval trajectory traj.xtc --topology start.pdb --reference md.xtc --json
    Trajectory(EvalTrajectoryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EvalTrajectoryArgs {
    /// Trajectory: .xtc or .dcd (with --topology) or multi-model .pdb.
    pub(crate) trajectory: PathBuf,
    /// Topology PDB/mmCIF of the trajectory's atoms (also the initial structure).
    #[arg(long, value_name = "PDB")]
    pub(crate) topology: Option<PathBuf>,
    /// Reference ensemble of the same protein (e.g. an MD replica).
    #[arg(long, value_name = "TRAJ")]
    pub(crate) reference: Option<PathBuf>,
    /// Topology of the reference (default: --topology).
    #[arg(long, value_name = "PDB")]
    pub(crate) reference_topology: Option<PathBuf>,
    /// Use every K-th frame of both ensembles.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub(crate) stride: usize,
    /// Pairwise RMSDs use at most this many evenly spaced frames per ensemble.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub(crate) max_pair_frames: usize,
}

#[derive(Debug, Args)]
pub(crate) struct EvalBackbonesArgs {
    /// Folder of backbone files (.pdb, .cif, optionally .gz).
    pub(crate) dir: PathBuf,
    /// Dataset (.safetensors; its training split) or folder of structures for novelty (max
    /// TM-score to any reference).
    #[arg(long, value_name = "DATASET")]
    pub(crate) reference: Option<PathBuf>,
    /// Novelty by exact TM-align against every reference (about 2.7x slower). The default
    /// screens all references with a reduced TM-align and re-aligns the best 8 exactly.
    #[arg(long, requires = "reference")]
    pub(crate) novelty_exhaustive: bool,
    /// Skip the all-vs-all TM-align diversity computation (it is quadratic in the number of files).
    #[arg(long)]
    pub(crate) no_diversity: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EvalTmArgs {
    /// First structure (A).
    pub(crate) a: PathBuf,
    /// Second structure (B).
    pub(crate) b: PathBuf,
    /// Chain of A to use [default: all chains].
    #[arg(long, value_name = "ID")]
    pub(crate) chain_a: Option<String>,
    /// Chain of B to use [default: all chains].
    #[arg(long, value_name = "ID")]
    pub(crate) chain_b: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct EvalSsArgs {
    /// Structure file.
    pub(crate) file: PathBuf,
    /// Also give DSSP's 8-state string (H G I E B T S P and '-'; full backbones only), as `ss8` in JSON.
    #[arg(long)]
    pub(crate) ss8: bool,
    /// Only this chain.
    #[arg(long, value_name = "ID")]
    pub(crate) chain: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Build a dataset file from folders of PDB/mmCIF files and .jsonl backbone files.
    ///
    /// Chains are split at breaks, kept if 40–512 residues long, deduplicated by sequence and
    /// split into train/val by sequence clusters. A bad file is reported and skipped.
    ///
    /// Example: protforge data build --input ../shared/data/structures/train.jsonl
    ///          --val-input ../shared/data/structures/val.jsonl --out data/protforge_v1.safetensors
    Build(DataBuildArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DataBuildArgs {
    /// Input folders (searched recursively) or files (.pdb/.cif(.gz)/.jsonl).
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub(crate) input: Vec<PathBuf>,
    /// Inputs whose chains all go to the validation split (train chains that cluster with
    /// them move to validation too).
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub(crate) val_input: Vec<PathBuf>,
    /// Output dataset file (.safetensors).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Minimum segment length kept.
    #[arg(long, default_value_t = 40)]
    pub(crate) min_len: usize,
    /// Maximum segment length kept.
    #[arg(long, default_value_t = 512)]
    pub(crate) max_len: usize,
    /// Fraction of clusters' chains sent to validation (ignored with --val-input).
    #[arg(long, default_value_t = 0.1)]
    pub(crate) val_fraction: f64,
    /// Seed for the cluster split.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Licence note stored in the dataset's metadata [default: a note pointing to the inputs' licences].
    #[arg(long, value_name = "TEXT")]
    pub(crate) licence: Option<String>,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrainCommand {
    /// Train PAR (multi-scale autoregressive backbone generator).
    ///
    /// Writes OUT/checkpoint/ (resumable state), OUT/best/ (EMA weights with the best
    /// validation loss: a shippable weights folder), OUT/train.csv and OUT/val.csv.
    /// Without --config the CPU recipe of the shipped weights is used; print it with
    /// --print-config and edit it to change the architecture or schedule.
    Par(TrainDatasetArgs),
    /// Train STAR-MD (MD trajectory rollout) on the backbone trajectories of data/md.
    ///
    /// Reads DATA/proteins.tsv (train/val split) and DATA/traj/*/{topology.pdb, traj.xtc,
    /// manifest.json}. Writes OUT/checkpoint/ (resumable state), OUT/best/ (EMA weights with the
    /// best validation loss: a shippable weights folder), OUT/train.csv and OUT/val.csv.
    /// Without --config the CPU recipe is used; print it with --print-config and edit it.
    Starmd(TrainStarmdArgs),
    /// Train the DPLM-2 structure tokenizer (encoder, 13-bit LFQ, IPA decoder).
    ///
    /// Writes OUT/checkpoint/ (resumable state), OUT/best/ (EMA weights with the best
    /// validation reconstruction loss: a shippable weights folder), OUT/train.csv and
    /// OUT/val.csv (FAPE, distogram, CA RMSD, codebook usage and perplexity). Without --config
    /// the CPU recipe is used; print it with --print-config and edit it.
    Tokenizer(TrainDatasetArgs),
    /// Train the ProteinWeaver assembly model on multi-domain chains.
    ///
    /// Parses domains of every dataset chain on first use and caches them in --domains (JSON,
    /// boundaries only). Writes OUT/checkpoint/ (resumable state), OUT/best/ (EMA weights with
    /// the best validation loss: a shippable weights folder), OUT/train.csv and OUT/val.csv.
    /// Without --config the CPU recipe is used; print it with --print-config and edit it.
    Weaver(TrainWeaverArgs),
    /// Preference-align a trained ProteinWeaver model with Diffusion-DPO.
    ///
    /// Samples K assemblies per training input with the base model (--base), scores them
    /// (clashes, interface contacts, compactness, linker geometry), keeps best/worst pairs in
    /// OUT/pairs_{train,val}.jsonl, then fine-tunes against the frozen base. Writes
    /// OUT/checkpoint/, OUT/best/ (aligned EMA weights), OUT/dpo_train.csv and OUT/dpo_val.csv.
    WeaverDpo(TrainWeaverDpoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TrainStarmdArgs {
    /// MD data folder (data/md: proteins.tsv and traj/).
    #[arg(long, value_name = "DIR", required_unless_present = "print_config")]
    pub(crate) data: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) run: TrainRunArgs,
}

/// Options every `protforge train` command shares.
#[derive(Debug, Args)]
pub(crate) struct TrainRunArgs {
    /// Training configuration (.json or .toml) [default: the CPU recipe].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Run directory.
    #[arg(long, value_name = "DIR", required_unless_present = "print_config")]
    pub(crate) out: Option<PathBuf>,
    /// Continue from OUT/checkpoint (must use the same configuration).
    #[arg(long)]
    pub(crate) resume: bool,
    /// Stop after this many more steps (the schedule still follows the config's total).
    #[arg(long, value_name = "N")]
    pub(crate) max_steps: Option<u64>,
    /// Print the configuration as JSON and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RolloutArgs {
    /// Initial structure (PDB/mmCIF, optionally .gz).
    #[arg(long, value_name = "PDB")]
    pub(crate) init: PathBuf,
    /// Chain of --init to roll out [default: the file's only protein chain].
    #[arg(long, value_name = "ID")]
    pub(crate) chain: Option<String>,
    /// Frames to generate after the initial structure.
    #[arg(long, value_name = "N")]
    pub(crate) frames: usize,
    /// Physical time between frames (ns).
    #[arg(long, value_name = "NS")]
    pub(crate) dt_ns: f64,
    /// Output trajectory: .xtc, .dcd or .pdb (multi-model); with --replicas K > 1 replica k goes
    /// to <stem>_r<k>.<ext>.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Independent trajectories from the same start.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub(crate) replicas: usize,
    /// Reverse diffusion steps per frame [default: the weights' sampler, 200].
    #[arg(long, value_name = "S")]
    pub(crate) steps: Option<usize>,
    /// Run seed; the same seed gives identical trajectories.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Largest context-noise time of history frames [default: the weights' value]; 0 disables it.
    #[arg(long, value_name = "TAU")]
    pub(crate) context_noise: Option<f64>,
    /// History frames each new frame attends to: a number, or `all` for the whole history
    /// (memory grows linearly) [default: the training window minus one].
    #[arg(long, value_name = "N|all")]
    pub(crate) context_frames: Option<String>,
    /// Write the network's raw frames: skip the CA constraint projection (every CA–CA bond at
    /// its length in --init, no CA pair closer than 4 Å) applied to every frame by default.
    /// manifest.json records the raw violations either way.
    #[arg(long)]
    pub(crate) no_idealize: bool,
    /// Overwrite existing output files.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `train par` and `train tokenizer`: a dataset file and the shared run options.
#[derive(Debug, Args)]
pub(crate) struct TrainDatasetArgs {
    /// Dataset file built by `protforge data build`.
    #[arg(long, value_name = "FILE", required_unless_present = "print_config")]
    pub(crate) data: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) run: TrainRunArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenizeCommand {
    /// Encode backbones into structure tokens (one FASTA record per chain).
    ///
    /// Record ids are <file stem>_<chain>. Residues missing N, CA or C get token 0. With
    /// --json, stdout also lists every record's tokens and per-residue bits (13 characters,
    /// most significant bit first, as the DPLM-2 code orders them).
    ///
    /// Examples:
    ///   protforge tokenize encode 1ubq.pdb -o tokens.fasta
    ///   protforge tokenize encode pdbs/ --chain A -o tokens.fasta --json
    Encode(TokenizeEncodeArgs),
    /// Decode structure tokens into backbones: one PDB per record (N, CA, C, O; poly-GLY).
    ///
    /// Writes DIR/<record id>.pdb and DIR/manifest.json.
    ///
    /// Example: protforge tokenize decode tokens.fasta -o decoded/
    Decode(TokenizeDecodeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenizeEncodeArgs {
    /// Structure files (.pdb/.cif, optionally .gz) or folders of them (not recursive).
    #[arg(required = true, value_name = "PATH")]
    pub(crate) inputs: Vec<PathBuf>,
    /// Output FASTA file.
    #[arg(short = 'o', long = "out", value_name = "FASTA")]
    pub(crate) out: PathBuf,
    /// Only this chain of every file [default: every protein chain].
    #[arg(long, value_name = "ID")]
    pub(crate) chain: Option<String>,
    /// Chains per network batch.
    #[arg(long, default_value_t = 8)]
    pub(crate) batch_size: usize,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TokenizeDecodeArgs {
    /// FASTA file of token records (as written by `tokenize encode` or DPLM-2).
    pub(crate) input: PathBuf,
    /// Output directory.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Records per network batch.
    #[arg(long, default_value_t = 8)]
    pub(crate) batch_size: usize,
    /// Overwrite existing files in OUT.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Length of every backbone (residues).
    #[arg(long, conflicts_with = "lengths", required_unless_present = "lengths")]
    pub(crate) length: Option<usize>,
    /// Several lengths as start:stop:step (stop inclusive), e.g. 60:200:20.
    #[arg(long, value_name = "START:STOP:STEP")]
    pub(crate) lengths: Option<String>,
    /// Backbones per length.
    #[arg(long, default_value_t = 1)]
    pub(crate) num_samples: usize,
    /// Run seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// File name prefix.
    #[arg(long, default_value = "sample")]
    pub(crate) prefix: String,
    /// Sampler settings.
    #[command(flatten)]
    pub(crate) sampling: SamplingArgs,
    /// Point prompt: a PDB/mmCIF file whose CA atoms (in file order) are the first-scale
    /// points, e.g. 16 points for the 5-scale model (see `protforge inspect --weights`);
    /// the rest of the chain is generated around them.
    #[arg(long, value_name = "FILE")]
    pub(crate) prompt: Option<PathBuf>,
    /// Run only shard K of N (0-based), e.g. 0/4, for Slurm arrays.
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<String>,
    /// Overwrite existing files in OUT.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Sampler settings shared by `generate` and `scaffold`.
#[derive(Debug, Args)]
pub(crate) struct SamplingArgs {
    /// Per-scale integrators and steps, e.g. sde:400,ode:2,ode:2 (scales beyond the list reuse its last entry).
    #[arg(long, value_name = "PLAN")]
    pub(crate) schedule: Option<String>,
    /// Steps for every scale with the default integrators (shortcut for --schedule).
    #[arg(long, conflicts_with = "schedule")]
    pub(crate) steps: Option<usize>,
    /// SDE noise scale γ (lower: less diverse, more designable).
    #[arg(long, default_value_t = 0.45)]
    pub(crate) noise_scale: f64,
    /// Atoms to write: ca (CA trace) or full (N, CA, C, O rebuilt from the trace).
    #[arg(long, value_enum, default_value = "full")]
    pub(crate) backbone: BackboneKind,
    /// Samples of one length run through the network together in groups of this size.
    #[arg(long, default_value_t = 4)]
    pub(crate) batch_size: usize,
    /// Write the raw sampled CA trace. By default each trace is idealised first: the least
    /// movement that makes CA–CA bonds 3.80 Å, CA(i)–CA(i+2) >= 4.9 Å and other CA pairs
    /// >= 4.0 Å apart (motif residues stay fixed); the manifest records how far it moved.
    #[arg(long)]
    pub(crate) no_idealize: bool,
}

/// `protforge scaffold` arguments.
#[derive(Debug, Args)]
pub(crate) struct ScaffoldArgs {
    /// Motif structure (PDB/mmCIF). A Genie2 problem file (REMARK 999 lines) also gives the
    /// contig and length range, so --contig can be left out.
    #[arg(long, value_name = "FILE")]
    pub(crate) motif: PathBuf,
    /// RFdiffusion contig: `a-b` scaffold lengths, `Xs-e` motif residues s..e of chain X,
    /// e.g. "10-40,A163-181,10-40"; a single residue is A100-100.
    #[arg(long)]
    pub(crate) contig: Option<String>,
    /// Total length range, e.g. 50-75 (default: whatever the contig allows).
    #[arg(long, value_name = "MIN-MAX")]
    pub(crate) length: Option<String>,
    /// Take the contig and length of --problem from a FrameFlow benchmark CSV.
    #[arg(long, value_name = "CSV", requires = "problem", conflicts_with = "contig")]
    pub(crate) benchmark: Option<PathBuf>,
    /// Problem name in --benchmark (its `target` column, e.g. 5TPN).
    #[arg(long, requires = "benchmark")]
    pub(crate) problem: Option<String>,
    /// Scaffolds to generate.
    #[arg(long, default_value_t = 1)]
    pub(crate) num_samples: usize,
    /// Run seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// File name prefix.
    #[arg(long, default_value = "scaffold")]
    pub(crate) prefix: String,
    /// Write the input motif's own backbone atoms, superimposed, over the generated motif
    /// residues (the generated motif RMSD is still reported in manifest.json).
    #[arg(long)]
    pub(crate) fix_motif: bool,
    /// How the motif conditions generation. `inpaint`: at every scale the motif is
    /// superimposed onto the current estimate and steers the flow integration, so the scaffold
    /// is built around it (the output motif is rigid; judge the junctions by validity).
    /// `teacher-force`: PAR's zero-shot scheme only, the motif is written over each finished
    /// scale and reaches the final scale only through the AR conditioning.
    #[arg(long, value_name = "MODE", default_value = "inpaint")]
    pub(crate) motif_mode: protforge_par::sampler::MotifMode,
    /// Sampler settings.
    #[command(flatten)]
    pub(crate) sampling: SamplingArgs,
    /// Run only shard K of N (0-based), e.g. 0/4, for Slurm arrays.
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<String>,
    /// Overwrite existing files in OUT.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackboneKind {
    /// CA atoms only.
    Ca,
    /// N, CA, C and O.
    Full,
}

/// `protforge assemble` arguments.
#[derive(Debug, Args)]
pub(crate) struct AssembleArgs {
    /// Domain structures (PDB/mmCIF, optionally .gz), in chain order; at least two.
    #[arg(long, num_args = 1.., value_name = "FILE", required_unless_present = "domain_lengths", conflicts_with = "domain_lengths")]
    pub(crate) domains: Vec<PathBuf>,
    /// Generate the domains with PAR instead, with these lengths in chain order, e.g. 80,120.
    #[arg(long, value_name = "L1,L2,...")]
    pub(crate) domain_lengths: Option<String>,
    /// Linker length between consecutive domains: N, or MIN-MAX drawn per linker and sample.
    #[arg(long, default_value = "15", value_name = "N|MIN-MAX")]
    pub(crate) linker: String,
    /// Assemblies to generate.
    #[arg(long, default_value_t = 1)]
    pub(crate) num_samples: usize,
    /// Run seed; the same seed gives the same files.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// File name prefix.
    #[arg(long, default_value = "assembly")]
    pub(crate) prefix: String,
    /// Reverse-diffusion steps [default: the model's config].
    #[arg(long)]
    pub(crate) steps: Option<usize>,
    /// SDE noise scale [default: the model's config].
    #[arg(long)]
    pub(crate) noise_scale: Option<f64>,
    /// Write the network's own domains instead of the input domains placed rigidly.
    #[arg(long)]
    pub(crate) no_projection: bool,
    /// Write the assemblies as sampled. By default each is refined first: domains that overlap
    /// (CA pairs closer than 4.0 Å) are pushed apart by rigid translations, then the linkers are
    /// closed (the least movement of the linker residues that makes their CA–CA bonds 3.80 Å and
    /// keeps them >= 4.0 Å from other residues; N, C, O rebuilt from the CA trace). The manifest
    /// records the raw and refined scores, the domain shifts and how far the linkers moved.
    #[arg(long)]
    pub(crate) raw: bool,
    /// Samples per network batch (with domain files and a fixed linker length).
    #[arg(long, default_value_t = 4)]
    pub(crate) batch_size: usize,
    /// PAR weights for --domain-lengths [default: the shipped weights/par].
    #[arg(long, value_name = "DIR")]
    pub(crate) par_weights: Option<PathBuf>,
    /// Overwrite existing files in OUT.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TrainWeaverArgs {
    /// Dataset file built by `protforge data build`.
    #[arg(long, value_name = "FILE", required_unless_present = "print_config")]
    pub(crate) data: Option<PathBuf>,
    /// Domain cache of the dataset (built there if missing).
    #[arg(long, value_name = "FILE", default_value = "training/weaver/domains.json")]
    pub(crate) domains: PathBuf,
    #[command(flatten)]
    pub(crate) run: TrainRunArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TrainWeaverDpoArgs {
    /// Weights folder of the base model (overrides the config's `base`).
    #[arg(long, value_name = "DIR")]
    pub(crate) base: Option<PathBuf>,
    /// Dataset file built by `protforge data build`.
    #[arg(long, value_name = "FILE", required_unless_present = "print_config")]
    pub(crate) data: Option<PathBuf>,
    /// Domain cache of the dataset (built there if missing).
    #[arg(long, value_name = "FILE", default_value = "training/weaver/domains.json")]
    pub(crate) domains: PathBuf,
    // With --resume the sampled preference pairs in OUT are reused too.
    #[command(flatten)]
    pub(crate) run: TrainRunArgs,
}

