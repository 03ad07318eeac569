//! Autoregressive rollout (STAR-MD §3.4): from an initial structure, generate one frame
//! after another with the reverse SE(3) SDE, attending to the history through a
//! [`FrameCache`] of per-residue keys and values.
//!
//! Per new frame `f = 1, 2, …` and replica:
//! 1. sample `x_1` from the reference distribution and take `steps` Euler–Maruyama reverse
//!    steps from `t = 1` to `t_min` with the scores implied by the network's clean-frame
//!    prediction ([`Se3Diffuser::sample`] over a [`ScoreModel`] that reads the cache);
//! 2. the frame is the network's clean prediction at `t_min` (FrameDiff/ConfRover); unless
//!    `idealize` is off, its CA positions are then projected onto chain constraints (SHAKE-like
//!    [`idealize_ca_with_bonds`]: each CA–CA bond at its length in the initial structure, so
//!    cis peptides stay cis, CA(i)–CA(i+2) ≥ 4.9 Å, other CA pairs ≥ 4.0 Å, least
//!    movement) with the residue rotations kept, as MD itself constrains bond lengths; the
//!    largest raw violation and the distance moved are recorded per frame, so the raw model
//!    stays measurable;
//! 3. it is re-noised with `τ ~ U[0, context_noise]` and appended to the cache as history
//!    (the initial structure enters the same way as frame 0).
//!
//! Generated frames come out in an arbitrary global pose (the network is equivariant); each
//! is superposed (CA Kabsch) onto the previous output frame, so the trajectory has no
//! artificial rigid jumps. The initial structure is frame 0 of the output, unchanged.
//!
//! Randomness: replica `r` draws everything from `seeded(sample_seed(seed, r))`, so a
//! replica does not depend on how many others run with it.

use crate::StarMdError;
use crate::attention::FrameCache;
use crate::features::{Conditioning, atoms_from_frames, backbone_frames, centered, last_oxygen_local};
use crate::model::{NoisyQuery, Prepared, StarMd};
use protforge_flow::rng::{sample_seed, seeded};
use protforge_flow::se3_diffusion::{ScoreModel, ScoreTensors};
use protforge_flow::{FlowError, Se3Diffuser};
use protforge_se3::kabsch::superpose;
use protforge_se3::{Rigid, Rigids, Vec3};
use protforge_structure::idealize::{IdealizeParams, ca_violation, idealize_ca_with_bonds};
use protforge_structure::{Backbone, residue};
use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use std::path::Path;

/// Largest CA–CA distance (Å) between consecutive residues of a continuous chain.
pub const MAX_CA_CA: f64 = 4.2;

/// Settings of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutOptions {
    /// Frames to generate after the initial structure.
    pub frames: usize,
    /// Physical stride between frames (ns); must lie in the model's trained range.
    pub dt_ns: f64,
    /// Independent trajectories from the same start.
    pub replicas: usize,
    /// Reverse diffusion steps per frame (`None`: the model config's sampler, 200).
    pub steps: Option<usize>,
    /// Run seed.
    pub seed: u64,
    /// Largest context-noise time (`None`: the model's `context_noise`).
    pub context_noise: Option<f64>,
    /// History frames attended to (`None`: the model's `window_frames − 1`, as in training;
    /// `Some(0)`: the whole history, the paper's continuous rollout).
    pub context_frames: Option<usize>,
    /// Project every generated frame's CA trace onto chain constraints (module docs).
    pub idealize: bool,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        Self {
            frames: 10,
            dt_ns: 0.1,
            replicas: 1,
            steps: None,
            seed: 0,
            context_noise: None,
            context_frames: None,
            idealize: true,
        }
    }
}

/// A finished rollout.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutOutput {
    /// `[replica][frame][residue]` N, CA, C, O (Å); frame 0 is the initial structure (a
    /// missing O rebuilt), frames `1..=frames` the generated ones.
    pub replicas: Vec<Vec<Vec<[[f32; 3]; 4]>>>,
    /// Bytes of the KV cache after each generated frame was appended (all replicas).
    pub cache_bytes: Vec<usize>,
    /// History frames attended to (`None`: all).
    pub context_frames: Option<usize>,
    /// Reverse steps per frame used.
    pub steps: usize,
    /// Context-noise time bound used.
    pub context_noise: f64,
    /// Per generated frame: the largest CA constraint violation of the raw prediction over
    /// the replicas (Å; 0 where no constraint is violated). Measured with and without `idealize`.
    pub raw_violation: Vec<f64>,
    /// Per generated frame: mean RMSD (Å, over the replicas) the projection moved the CA
    /// trace (0 without `idealize`).
    pub idealize_moved: Vec<f64>,
}

/// Check that an initial structure can be rolled out: one chain, every residue with N, CA
/// and C, no unknown residue types, and no chain break (consecutive CA atoms at most
/// [`MAX_CA_CA`] Å apart). `path` labels the errors.
///
/// # Errors
/// [`StarMdError::BadInit`] naming the first problem and residue.
pub fn check_init(bb: &Backbone, path: &Path) -> Result<(), StarMdError> {
    let bad = |reason: String| StarMdError::BadInit { path: path.to_path_buf(), reason };
    if bb.len() < 2 {
        return Err(bad(format!("{} protein residue(s); STAR-MD needs a chain of at least 2", bb.len())));
    }
    let chains = bb.chains();
    if chains.len() != 1 {
        return Err(bad(format!(
            "{} protein chains ({}); STAR-MD rolls out one chain: select one",
            chains.len(),
            chains.join(", ")
        )));
    }
    let label =
        |i: usize| format!("{}:{} {}", bb.chain_ids[i], residue::three_from_aatype(bb.aatype[i]), bb.residue_ids[i]);
    if let Some(i) = bb.atom_mask.iter().position(|m| !(m[0] && m[1] && m[2])) {
        return Err(bad(format!("residue {} lacks backbone atom N, CA or C; complete the backbone first", label(i))));
    }
    if let Some(i) = bb.aatype.iter().position(|&a| a >= residue::UNKNOWN) {
        return Err(bad(format!("residue {} is not a standard amino acid (unknown type)", label(i))));
    }
    for i in 1..bb.len() {
        let (a, b) = (bb.coords[i - 1][1], bb.coords[i][1]);
        let d = ((0..3).map(|k| f64::from(a[k] - b[k]).powi(2)).sum::<f64>()).sqrt();
        if d > MAX_CA_CA {
            return Err(bad(format!(
                "chain break between {} and {} (CA–CA {d:.2} Å > {MAX_CA_CA} Å); STAR-MD needs a continuous chain: fill the gap or split the chain",
                label(i - 1),
                label(i)
            )));
        }
    }
    Ok(())
}

/// A [`ScoreModel`] that denoises one new frame of every replica against the cache.
struct CachedScore<'a> {
    model: &'a StarMd,
    diffuser: &'a Se3Diffuser,
    prep: &'a Prepared,
    cache: &'a FrameCache,
    dt_ns: &'a [f64],
    position: f64,
    /// The previous frame `[B, N]` before context noise: the anchor.
    anchor: &'a Rigids,
}

impl ScoreModel for CachedScore<'_> {
    fn scores(&self, rigids_t: &Rigids, t: f64) -> Result<ScoreTensors, FlowError> {
        let b = self.dt_ns.len();
        let x0 = self
            .model
            .denoise(
                self.prep,
                self.cache,
                &NoisyQuery {
                    noisy: rigids_t,
                    t: &vec![t; b],
                    dt_ns: self.dt_ns,
                    position: self.position,
                    anchor: Some(self.anchor),
                },
            )
            .map_err(|e| FlowError::BadParameter { what: "STAR-MD denoiser", reason: e.to_string() })?;
        self.diffuser.score_targets_batch(rigids_t, &x0, &vec![t; b])
    }
}

/// Re-noise frames `[B, N]` (Å, rows per replica) to `τ_r ~ U[0, bound]` and upload them;
/// returns the frames and the times.
fn context_noised(
    diffuser: &Se3Diffuser,
    rows: &[Vec<Rigid>],
    bound: f64,
    rngs: &mut [StdRng],
    dev: &candle_core::Device,
) -> Result<(Rigids, Vec<f64>), StarMdError> {
    let mut out = Vec::with_capacity(rows.len());
    let mut taus = Vec::with_capacity(rows.len());
    for (row, rng) in rows.iter().zip(rngs.iter_mut()) {
        let tau = rng.random::<f64>() * bound;
        let centred = centered(row);
        out.push(if tau > 0.0 { diffuser.forward_marginal(&centred, tau, None, rng)?.rigids_t } else { centred });
        taus.push(tau);
    }
    Ok((upload_rows(&out, dev)?, taus))
}

/// Frames `[B, N]` (Å, one row per replica) uploaded as `[B, N]` rigids.
fn upload_rows(rows: &[Vec<Rigid>], dev: &candle_core::Device) -> Result<Rigids, StarMdError> {
    let n = rows.first().map_or(0, Vec::len);
    let flat: Vec<Rigid> = rows.iter().flatten().copied().collect();
    let r = Rigids::from_scalar(&flat, dev)?;
    Ok(Rigids::new(
        protforge_se3::Rotations::new(r.rots.mats.reshape((rows.len(), n, 3, 3))?)?,
        r.trans.reshape((rows.len(), n, 3))?,
    )?)
}

fn vec3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

/// Superpose `atoms` (all four atoms) onto `target` by the CA atoms.
fn superposed(atoms: Vec<[[f32; 3]; 4]>, target: &[[[f32; 3]; 4]]) -> Result<Vec<[[f32; 3]; 4]>, StarMdError> {
    let mobile: Vec<Vec3> = atoms.iter().map(|r| vec3(r[1])).collect();
    let fixed: Vec<Vec3> = target.iter().map(|r| vec3(r[1])).collect();
    let fit = superpose(&mobile, &fixed)?.rigid;
    #[allow(clippy::cast_possible_truncation)]
    let moved = atoms
        .iter()
        .map(|r| {
            r.map(|p| {
                let q = fit.apply(vec3(p));
                [q.x as f32, q.y as f32, q.z as f32]
            })
        })
        .collect();
    Ok(moved)
}

/// Roll out `opts.replicas` trajectories of `opts.frames` frames after `init` (checked with
/// [`check_init`]); `on_frame(f)` is called after frame `f` (1-based) of all replicas.
///
/// # Errors
/// [`StarMdError::BadInit`] for an unusable start; [`StarMdError::BadRollout`] for a stride
/// outside the trained range, zero replicas or a bad context setting; model errors.
pub fn rollout(
    model: &StarMd,
    init: &Backbone,
    opts: &RolloutOptions,
    on_frame: &mut dyn FnMut(usize),
) -> Result<RolloutOutput, StarMdError> {
    let cfg = model.config();
    check_init(init, Path::new(protforge_structure::io::MEMORY_LABEL))?;
    if !cfg.dt_in_range(opts.dt_ns) {
        return Err(StarMdError::BadRollout(format!(
            "--dt-ns {} is outside the trained stride range {}–{} ns of these weights",
            opts.dt_ns,
            cfg.dt_range().0,
            cfg.dt_range().1
        )));
    }
    if opts.replicas == 0 {
        return Err(StarMdError::BadRollout("at least one replica is needed".into()));
    }
    let context_noise = opts.context_noise.unwrap_or(cfg.context_noise);
    if !(0.0..=1.0).contains(&context_noise) {
        return Err(StarMdError::BadRollout(format!("context noise {context_noise} not in [0, 1]")));
    }
    let context_frames = match opts.context_frames {
        None => Some(cfg.window_frames - 1),
        Some(0) => None,
        Some(k) => Some(k),
    };
    let mut diffusion = cfg.diffusion;
    if let Some(steps) = opts.steps {
        diffusion.sampler.num_steps = steps;
    }
    let diffuser = Se3Diffuser::new(diffusion)?;
    let t_min = diffusion.sampler.t_min;
    let dev = model.device().clone();
    let (k, n) = (opts.replicas, init.len());
    let last_o = last_oxygen_local(&init.coords, &init.atom_mask);
    let init_frames = backbone_frames(&init.coords)?;
    // Frame 0 is the initial structure; a missing O is rebuilt like those of later frames.
    let rebuilt = atoms_from_frames(&init_frames, last_o);
    let init_coords: Vec<[[f32; 3]; 4]> = init
        .coords
        .iter()
        .zip(&init.atom_mask)
        .zip(&rebuilt)
        .map(|((c, m), r)| if m[3] { *c } else { [c[0], c[1], c[2], r[3]] })
        .collect();
    let aatype: Vec<&[u8]> = vec![init.aatype.as_slice(); k];
    let conds: Vec<&[[[f32; 3]; 4]]> = vec![init_coords.as_slice(); k];
    let prep = model.prepare(&Conditioning::new(&aatype, &conds, &dev)?)?;
    let dt = vec![opts.dt_ns; k];
    let mut rngs: Vec<StdRng> = (0..k as u64).map(|r| seeded(sample_seed(opts.seed, r))).collect();
    let mut cache = model.new_cache(context_frames);
    let (ctx, taus) = context_noised(&diffuser, &vec![init_frames.clone(); k], context_noise, &mut rngs, &dev)?;
    model.append_history(&prep, &mut cache, &ctx, &taus, &dt, 0.0)?;
    let mut previous = upload_rows(&vec![centered(&init_frames); k], &dev)?;
    let mut replicas: Vec<Vec<Vec<[[f32; 3]; 4]>>> = vec![vec![init_coords.clone()]; k];
    let mut cache_bytes = Vec::with_capacity(opts.frames);
    let (mut raw_violation, mut idealize_moved) = (Vec::new(), Vec::new());
    let free = vec![false; n];
    // Virtual-bond targets from the initial structure, so cis peptides (CA–CA ≈ 2.9 Å) keep theirs.
    let bonds: Vec<f64> = init_frames.windows(2).map(|w| (w[1].trans - w[0].trans).norm()).collect();
    for f in 1..=opts.frames {
        let position = f as f64;
        let score = CachedScore {
            model,
            diffuser: &diffuser,
            prep: &prep,
            cache: &cache,
            dt_ns: &dt,
            position,
            anchor: &previous,
        };
        let x = diffuser.sample(&score, k, n, None, &dev, &mut rngs)?;
        let q = NoisyQuery { noisy: &x, t: &vec![t_min; k], dt_ns: &dt, position, anchor: Some(&previous) };
        let x0 = model.denoise(&prep, &cache, &q)?.to_scalar()?;
        let mut rows: Vec<Vec<Rigid>> = x0.chunks(n).map(<[Rigid]>::to_vec).collect();
        let (mut worst, mut moved) = (0.0f64, 0.0);
        for row in &mut rows {
            let ca: Vec<Vec3> = row.iter().map(|r| r.trans).collect();
            if opts.idealize {
                let (ideal, report) = idealize_ca_with_bonds(&ca, &free, &bonds, &IdealizeParams::default())?;
                worst = worst.max(report.max_violation_before);
                moved += report.rmsd_moved / k as f64;
                for (r, p) in row.iter_mut().zip(ideal) {
                    r.trans = p;
                }
            } else {
                worst = worst.max(ca_violation(&ca, &bonds, &IdealizeParams::default())?);
            }
        }
        raw_violation.push(worst);
        idealize_moved.push(moved);
        for (r, row) in rows.iter().enumerate() {
            let atoms = atoms_from_frames(row, last_o);
            let prev = replicas[r].last().map_or(init_coords.as_slice(), Vec::as_slice);
            let aligned = superposed(atoms, prev)?;
            replicas[r].push(aligned);
        }
        let (ctx, taus) = context_noised(&diffuser, &rows, context_noise, &mut rngs, &dev)?;
        model.append_history(&prep, &mut cache, &ctx, &taus, &dt, position)?;
        previous = upload_rows(&rows.iter().map(|r| centered(r)).collect::<Vec<_>>(), &dev)?;
        cache_bytes.push(cache.bytes());
        on_frame(f);
    }
    Ok(RolloutOutput {
        replicas,
        cache_bytes,
        context_frames,
        steps: diffusion.sampler.num_steps,
        context_noise,
        raw_violation,
        idealize_moved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StarMdConfig;
    use crate::model::init_weights;
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use protforge_nn::init::{InitRule, default_init_rule, init_seeded_with};
    use protforge_se3::geometry::{HELIX_PHI, HELIX_PSI, OMEGA_TRANS, build_backbone};
    use protforge_se3::so3;

    fn helix(n: usize) -> Backbone {
        #[allow(clippy::cast_possible_truncation)]
        let coords = build_backbone(n, &vec![HELIX_PHI; n], &vec![HELIX_PSI; n], &vec![OMEGA_TRANS; n])
            .into_iter()
            .map(|r| r.map(|p| [p.x as f32, p.y as f32, p.z as f32]))
            .collect();
        Backbone::from_coords(coords, (0..n).map(|i| (i % 20) as u8).collect())
    }

    /// A tiny model with every path active (zero-initialised parameters made small random).
    fn model() -> StarMd {
        let varmap = VarMap::new();
        let m = StarMd::new(&StarMdConfig::tiny(), VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        init_weights(&varmap, 2).unwrap();
        init_seeded_with(&varmap, 3, |name, shape| match default_init_rule(name, shape) {
            InitRule::Zeros => InitRule::Normal { std: 0.05 },
            other => other,
        })
        .unwrap();
        m
    }

    #[test]
    fn init_checks_name_the_problem() {
        let p = Path::new("start.pdb");
        check_init(&helix(6), p).unwrap();
        let mut gap = helix(6);
        gap.coords[3].iter_mut().for_each(|a| a[0] += 30.0);
        let err = check_init(&gap, p).unwrap_err().to_string();
        assert!(
            err.starts_with("start.pdb: chain break between A:") && err.contains(" 3 and ") && err.contains(" 4 "),
            "{err}"
        );
        let mut two = helix(6);
        two.chain_ids[5] = "B".into();
        assert!(check_init(&two, p).unwrap_err().to_string().contains("2 protein chains (A, B)"));
        let mut holes = helix(6);
        holes.atom_mask[2][0] = false;
        assert!(check_init(&holes, p).unwrap_err().to_string().contains("lacks backbone atom"));
        let mut unk = helix(6);
        unk.aatype[1] = residue::UNKNOWN;
        assert!(check_init(&unk, p).unwrap_err().to_string().contains("UNK 2"));
        assert!(check_init(&helix(1), p).is_err());
    }

    #[test]
    fn rollout_is_seeded_per_replica_and_checks_the_stride() {
        let m = model();
        let init = helix(8);
        let opts =
            RolloutOptions { frames: 2, dt_ns: 0.2, replicas: 2, steps: Some(3), seed: 4, ..RolloutOptions::default() };
        let a = rollout(&m, &init, &opts, &mut |_| {}).unwrap();
        assert_eq!((a.replicas.len(), a.replicas[0].len(), a.replicas[0][0].len()), (2, 3, 8));
        assert_eq!(a.replicas[0][0], init.coords, "frame 0 is the initial structure");
        assert_eq!((a.steps, a.context_frames, a.cache_bytes.len()), (3, Some(3), 2));
        // Idealised frames keep every CA–CA bond at its initial length (within the tolerance);
        // the raw violations of this random model are recorded.
        let ca_ca = |w: &[[[f32; 3]; 4]]| (0..3).map(|c| (w[1][1][c] - w[0][1][c]).powi(2)).sum::<f32>().sqrt();
        let want: Vec<f32> = init.coords.windows(2).map(ca_ca).collect();
        for frame in &a.replicas[0][1..] {
            for (w, b) in frame.windows(2).zip(&want) {
                let d = ca_ca(w);
                assert!((d - b).abs() < 0.02, "CA–CA {d} Å after projection (initial {b} Å)");
            }
        }
        assert_eq!((a.raw_violation.len(), a.idealize_moved.len()), (2, 2));
        assert!(a.raw_violation.iter().all(|v| v.is_finite() && *v >= 0.0));
        let raw = rollout(&m, &init, &RolloutOptions { idealize: false, ..opts.clone() }, &mut |_| {}).unwrap();
        assert!(raw.idealize_moved.iter().all(|&v| v == 0.0));
        assert_eq!(raw.raw_violation[0], a.raw_violation[0], "frame 1 is the same raw prediction");
        let mut seen = Vec::new();
        let b = rollout(&m, &init, &opts, &mut |f| seen.push(f)).unwrap();
        assert_eq!(seen, [1, 2]);
        assert_eq!(a.replicas, b.replicas, "same seed, same rollout");
        assert_ne!(a.replicas[0][1], a.replicas[1][1], "replicas differ");
        // Replica 0 does not depend on the company it runs in.
        let one = rollout(&m, &init, &RolloutOptions { replicas: 1, ..opts.clone() }, &mut |_| {}).unwrap();
        let d = one.replicas[0][2]
            .iter()
            .zip(&a.replicas[0][2])
            .flat_map(|(x, y)| (0..4).flat_map(move |k| (0..3).map(move |c| (x[k][c] - y[k][c]).abs())))
            .fold(0.0f32, f32::max);
        // Batched and single runs differ only by f32 rounding, amplified by the reverse SDE.
        assert!(d < 5e-3, "replica 0 alone differs by {d} Å");
        let err = rollout(&m, &init, &RolloutOptions { dt_ns: 3.0, ..opts }, &mut |_| {}).unwrap_err();
        assert!(matches!(err, StarMdError::BadRollout(_)) && err.to_string().contains("0.01–1 ns"), "{err}");
    }

    #[test]
    fn predicted_scores_rotate_with_the_frames() {
        let m = model();
        let init = helix(7);
        let diffuser = Se3Diffuser::new(m.config().diffusion).unwrap();
        let cond = Conditioning::new(&[&init.aatype], &[&init.coords], &Device::Cpu).unwrap();
        let prep = m.prepare(&cond).unwrap();
        let mut cache = m.new_cache(None);
        let frames = centered(&backbone_frames(&init.coords).unwrap());
        let up = |rows: &[Rigid]| {
            let r = Rigids::from_scalar(rows, &Device::Cpu).unwrap();
            Rigids::new(
                protforge_se3::Rotations::new(r.rots.mats.reshape((1, rows.len(), 3, 3)).unwrap()).unwrap(),
                r.trans.reshape((1, rows.len(), 3)).unwrap(),
            )
            .unwrap()
        };
        m.append_history(&prep, &mut cache, &up(&frames), &[0.05], &[0.2], 0.0).unwrap();
        assert!(m.config().anchor.is_some(), "the test model must exercise the anchor");
        let noisy = diffuser.forward_marginal(&frames, 0.4, None, &mut seeded(1)).unwrap().rigids_t;
        let q = Rigid::from_rotation(so3::exp(&Vec3::new(1.1, -0.4, 2.3)));
        let rotated: Vec<Rigid> = noisy.iter().map(|r| q.compose(r)).collect();
        let history = up(&frames);
        let score = CachedScore {
            model: &m,
            diffuser: &diffuser,
            prep: &prep,
            cache: &cache,
            dt_ns: &[0.2],
            position: 1.0,
            anchor: &history,
        };
        let s = score.scores(&up(&noisy), 0.4).unwrap();
        let sq = score.scores(&up(&rotated), 0.4).unwrap();
        let rows = |t: &candle_core::Tensor| {
            t.flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .chunks(3)
                .map(|c| Vec3::new(c[0].into(), c[1].into(), c[2].into()))
                .collect::<Vec<_>>()
        };
        let (tr, trq, ro, roq) = (rows(&s.trans), rows(&sq.trans), rows(&s.rot), rows(&sq.rot));
        for i in 0..7 {
            assert!((trq[i] - q.rot.apply(tr[i])).norm() < 2e-3 * (1.0 + tr[i].norm()), "translation score {i}");
            assert!((roq[i] - ro[i]).norm() < 2e-3 * (1.0 + ro[i].norm()), "rotation score {i}");
        }
        assert!(tr.iter().any(|v| v.norm() > 0.1), "scores must not vanish");
    }
}
