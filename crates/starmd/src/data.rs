//! MD training data: the backbone trajectories that `data/md/simulate.py` writes, and random
//! training windows of `F` frames with log-uniform physical strides.
//!
//! **Layout** (`data/md/README.md`): `proteins.tsv` lists the proteins with their `split`
//! (`train` or `val`); replica `r` of protein `id` lives in `traj/<id>/` (r = 1) or
//! `traj/<id>_r<r>/`, each with `topology.pdb` (backbone atoms), `traj.xtc` and
//! `manifest.json` (`stride_ps`: time between saved frames). Directories that lack one of the
//! three files (a run still starting) or whose protein is not in the table are skipped with a
//! note. Optionally, `staged/<name>/` trajectories with a known `stride_ps` (converted real MD)
//! join the validation set.
//!
//! **Windows** (STAR-MD §3.3, Table 7): a trajectory is drawn uniformly, then a stride of `k`
//! saved frames, log-uniform over the integers between `dt_min_ns` and the longest stride the
//! trajectory allows for `F` frames (and `dt_max_ns`), a start frame, a crop of at most `crop`
//! consecutive residues, a conditioning frame (uniform over the whole trajectory: the
//! "initial structure" of the window) and a uniformly random global rotation. Every frame is
//! centred on its own CA centroid.

use crate::StarMdError;
use protforge_se3::{Rotation, Vec3};
use protforge_structure::Trajectory;
use rand::Rng;
use rand_distr::StandardNormal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Which set a protein belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training proteins.
    Train,
    /// Held-out validation proteins.
    Val,
}

/// One backbone trajectory in memory.
#[derive(Debug, Clone)]
pub struct MdTrajectory {
    /// Directory name (`1ENH`, `trpcage_r2`, `staged/trpcage_tc5b`).
    pub name: String,
    /// Protein id of `proteins.tsv` (the staged name for staged data).
    pub protein: String,
    /// Residue types (AlphaFold order).
    pub aatype: Vec<u8>,
    /// `[n_frames][n_res]` N, CA, C, O (Å); O is zero where the topology has none.
    pub frames: Vec<Vec<[[f32; 3]; 4]>>,
    /// Time between saved frames (ps).
    pub stride_ps: f64,
}

impl MdTrajectory {
    /// Number of residues.
    #[must_use]
    pub fn n_res(&self) -> usize {
        self.frames.first().map_or(0, Vec::len)
    }

    /// Simulated length (ns) from the first to the last frame.
    #[must_use]
    pub fn ns(&self) -> f64 {
        self.frames.len().saturating_sub(1) as f64 * self.stride_ps / 1000.0
    }

    /// Strides (in saved frames) usable for windows of `spec`: `[k_min, k_max]` with
    /// `k_min = max(1, ⌈dt_min/stride⌉)` and `k_max = min(⌊dt_max/stride⌋, ⌊(frames − 1)/(F − 1)⌋)`;
    /// `None` when the trajectory is too short.
    #[must_use]
    pub fn stride_range(&self, spec: &WindowSpec) -> Option<(usize, usize)> {
        let f = spec.frames.max(2);
        let by_len = self.frames.len().saturating_sub(1) / (f - 1);
        let k_min = ((spec.dt_min_ns * 1000.0 / self.stride_ps) - 1e-9).ceil().max(1.0) as usize;
        let k_max = ((spec.dt_max_ns * 1000.0 / self.stride_ps) + 1e-9).floor().max(0.0) as usize;
        let k_max = k_max.min(by_len);
        (k_max >= k_min).then_some((k_min, k_max))
    }
}

/// A set of trajectories.
#[derive(Debug, Clone, Default)]
pub struct MdSet {
    /// The trajectories, in directory-name order.
    pub trajectories: Vec<MdTrajectory>,
}

impl MdSet {
    /// The longest window stride (ns) any trajectory allows for `spec`, if any.
    #[must_use]
    pub fn max_dt_ns(&self, spec: &WindowSpec) -> Option<f64> {
        self.trajectories
            .iter()
            .filter_map(|t| t.stride_range(spec).map(|(_, k)| k as f64 * t.stride_ps / 1000.0))
            .reduce(f64::max)
    }

    /// Indices of the trajectories that can produce a window of `spec`.
    #[must_use]
    pub fn usable(&self, spec: &WindowSpec) -> Vec<usize> {
        (0..self.trajectories.len()).filter(|&i| self.trajectories[i].stride_range(spec).is_some()).collect()
    }
}

/// What [`load_md`] read.
#[derive(Debug, Clone, Default)]
pub struct MdData {
    /// Training trajectories.
    pub train: MdSet,
    /// Validation trajectories (held-out proteins; staged ones when requested).
    pub val: MdSet,
    /// One line per directory that was skipped, with the reason.
    pub skipped: Vec<String>,
}

/// Options of [`load_md`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Also read `staged/*/` trajectories with a known stride into the validation set.
    pub include_staged: bool,
    /// Skip trajectories of more residues than this.
    pub max_residues: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { include_staged: false, max_residues: 400 }
    }
}

/// Splits of `proteins.tsv` by protein id (columns found by their header names `id` and `split`).
///
/// # Errors
/// [`StarMdError::BadData`] for a missing file, header or column, or an unknown split.
pub fn read_protein_table(path: &Path) -> Result<HashMap<String, Split>, StarMdError> {
    let bad = |reason: String| StarMdError::BadData { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(StarMdError::io(path))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let header: Vec<&str> = lines.next().ok_or_else(|| bad("no header line".into()))?.split('\t').collect();
    let col =
        |name: &str| header.iter().position(|h| h.trim() == name).ok_or_else(|| bad(format!("no '{name}' column")));
    let (id_col, split_col) = (col("id")?, col("split")?);
    let mut out = HashMap::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(id), Some(split)) = (fields.get(id_col), fields.get(split_col)) else {
            return Err(bad(format!("data line {}: too few columns", i + 1)));
        };
        let split = match split.trim() {
            "train" => Split::Train,
            "val" => Split::Val,
            other => return Err(bad(format!("data line {}: split '{other}' (expected train or val)", i + 1))),
        };
        out.insert(id.trim().to_string(), split);
    }
    Ok(out)
}

/// The protein id of a run directory name: `<id>` or `<id>_r<k>`.
#[must_use]
pub fn protein_of_run(dir_name: &str) -> &str {
    match dir_name.rsplit_once("_r") {
        Some((id, k)) if !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()) => id,
        _ => dir_name,
    }
}

/// `stride_ps` of a manifest (`None` when absent or null).
fn manifest_stride(path: &Path) -> Result<Option<f64>, StarMdError> {
    let text = std::fs::read_to_string(path).map_err(StarMdError::io(path))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| StarMdError::BadData { path: path.to_path_buf(), reason: format!("invalid JSON: {e}") })?;
    Ok(v.get("stride_ps").and_then(serde_json::Value::as_f64).filter(|s| s.is_finite() && *s > 0.0))
}

/// Read one run directory; `Ok(Err(note))` when it is to be skipped.
fn read_run(
    dir: &Path,
    name: &str,
    protein: &str,
    max_residues: usize,
) -> Result<Result<MdTrajectory, String>, StarMdError> {
    let (top, xtc, manifest) = (dir.join("topology.pdb"), dir.join("traj.xtc"), dir.join("manifest.json"));
    if let Some(missing) = [&top, &xtc, &manifest].iter().find(|p| !p.is_file()) {
        return Ok(Err(format!(
            "{name}: no {} yet",
            missing.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned())
        )));
    }
    let Some(stride_ps) = manifest_stride(&manifest)? else {
        return Ok(Err(format!("{name}: manifest.json has no stride_ps (no physical time)")));
    };
    let traj = Trajectory::read(&xtc, Some(&top))?;
    let n = traj.topology.len();
    if n > max_residues {
        return Ok(Err(format!("{name}: {n} residues (more than {max_residues})")));
    }
    if let Some(i) = traj.topology.atom_mask.iter().position(|m| !(m[0] && m[1] && m[2])) {
        return Ok(Err(format!("{name}: residue {} lacks N, CA or C", traj.topology.residue_ids[i])));
    }
    if traj.topology.chains().len() != 1 {
        return Ok(Err(format!("{name}: {} chains (STAR-MD models one chain)", traj.topology.chains().len())));
    }
    Ok(Ok(MdTrajectory {
        name: name.to_string(),
        protein: protein.to_string(),
        aatype: traj.topology.aatype.clone(),
        frames: traj.frames,
        stride_ps,
    }))
}

/// Sub-directories of `dir` in name order (hidden ones excluded); empty if `dir` is absent.
fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, StarMdError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StarMdError::io(dir))? {
        let entry = entry.map_err(StarMdError::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Load the MD data of `root` (`data/md`): see the module docs.
///
/// # Errors
/// [`StarMdError::BadData`] for a missing or malformed `proteins.tsv`; structure errors for
/// unreadable trajectories (a trajectory that exists but cannot be read is an error, not a
/// skip).
pub fn load_md(root: &Path, opts: &LoadOptions) -> Result<MdData, StarMdError> {
    let table = read_protein_table(&root.join("proteins.tsv"))?;
    let mut data = MdData::default();
    for (name, dir) in subdirs(&root.join("traj"))? {
        let protein = protein_of_run(&name);
        let Some(&split) = table.get(protein) else {
            data.skipped.push(format!("{name}: protein '{protein}' is not in proteins.tsv"));
            continue;
        };
        match read_run(&dir, &name, protein, opts.max_residues)? {
            Ok(t) => match split {
                Split::Train => data.train.trajectories.push(t),
                Split::Val => data.val.trajectories.push(t),
            },
            Err(note) => data.skipped.push(note),
        }
    }
    if opts.include_staged {
        for (name, dir) in subdirs(&root.join("staged"))? {
            let label = format!("staged/{name}");
            match read_run(&dir, &label, &name, opts.max_residues)? {
                Ok(t) => data.val.trajectories.push(t),
                Err(note) => data.skipped.push(note),
            }
        }
    }
    Ok(data)
}

/// Shape of training windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    /// Frames per window `F`.
    pub frames: usize,
    /// Shortest stride (ns).
    pub dt_min_ns: f64,
    /// Longest stride (ns).
    pub dt_max_ns: f64,
    /// Longest residue crop.
    pub crop: usize,
}

/// One training window (Å), every frame centred on its CA centroid and all frames rotated by
/// one random rotation.
#[derive(Debug, Clone)]
pub struct Window {
    /// Residue types of the crop.
    pub aatype: Vec<u8>,
    /// `[F][n_res]` N, CA, C, O.
    pub frames: Vec<Vec<[[f32; 3]; 4]>>,
    /// The conditioning ("initial") frame, a random frame of the same trajectory.
    pub cond: Vec<[[f32; 3]; 4]>,
    /// Physical stride (ns).
    pub dt_ns: f64,
    /// Index of the trajectory in its set.
    pub trajectory: usize,
    /// First frame index.
    pub start: usize,
    /// Stride in saved frames.
    pub stride: usize,
    /// First residue of the crop.
    pub first_residue: usize,
}

/// A uniformly distributed rotation (normalised Gaussian quaternion).
fn random_rotation<R: Rng + ?Sized>(rng: &mut R) -> Rotation {
    loop {
        let q: [f64; 4] = std::array::from_fn(|_| rng.sample(StandardNormal));
        let norm = q.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6
            && let Ok(r) = Rotation::from_quaternion(q.map(|x| x / norm))
        {
            return r;
        }
    }
}

/// Rotate residues by `rot` and centre them on their CA centroid.
fn rotate_centre(res: &[[[f32; 3]; 4]], rot: &Rotation, mask_o: bool) -> Vec<[[f32; 3]; 4]> {
    let com = res.iter().map(|r| Vec3::new(r[1][0].into(), r[1][1].into(), r[1][2].into())).sum::<Vec3>()
        / res.len().max(1) as f64;
    res.iter()
        .map(|r| {
            std::array::from_fn(|k| {
                if k == 3 && mask_o && r[3] == [0.0; 3] {
                    return [0.0; 3];
                }
                let p = rot.apply(Vec3::new(r[k][0].into(), r[k][1].into(), r[k][2].into()) - com);
                // Narrowing back to the f32 coordinates of the structure types.
                #[allow(clippy::cast_possible_truncation)]
                [p.x as f32, p.y as f32, p.z as f32]
            })
        })
        .collect()
}

/// Draw one window of trajectory `index` of `set` (which must be usable for `spec`) with
/// `crop_len ≤ n_res` residues.
fn window_of<R: Rng + ?Sized>(
    set: &MdSet,
    index: usize,
    spec: &WindowSpec,
    crop_len: usize,
    rng: &mut R,
) -> Option<Window> {
    let traj = &set.trajectories[index];
    let (k_min, k_max) = traj.stride_range(spec)?;
    let lo = (k_min as f64).ln();
    let hi = ((k_max + 1) as f64).ln();
    let stride = (rng.random_range(lo..hi).exp().floor() as usize).clamp(k_min, k_max);
    let span = (spec.frames - 1) * stride;
    let start = rng.random_range(0..traj.frames.len() - span);
    let first_residue = rng.random_range(0..=traj.n_res() - crop_len);
    let cond_index = rng.random_range(0..traj.frames.len());
    let rot = random_rotation(rng);
    let crop = |f: &Vec<[[f32; 3]; 4]>| rotate_centre(&f[first_residue..first_residue + crop_len], &rot, true);
    Some(Window {
        aatype: traj.aatype[first_residue..first_residue + crop_len].to_vec(),
        frames: (0..spec.frames).map(|i| crop(&traj.frames[start + i * stride])).collect(),
        cond: crop(&traj.frames[cond_index]),
        dt_ns: stride as f64 * traj.stride_ps / 1000.0,
        trajectory: index,
        start,
        stride,
        first_residue,
    })
}

/// A batch of `count` windows from one trajectory drawn uniformly among the usable ones (so
/// all windows have the same number of residues, `min(n_res, spec.crop)`).
///
/// # Errors
/// [`StarMdError::BadConfig`] when no trajectory of `set` is long enough for `spec`.
pub fn sample_batch<R: Rng + ?Sized>(
    set: &MdSet,
    spec: &WindowSpec,
    count: usize,
    rng: &mut R,
) -> Result<Vec<Window>, StarMdError> {
    let usable = set.usable(spec);
    if usable.is_empty() || spec.frames < 2 || spec.crop == 0 {
        return Err(StarMdError::config(
            "training data",
            format!(
                "no trajectory holds a window of {} frames with strides in [{}, {}] ns",
                spec.frames, spec.dt_min_ns, spec.dt_max_ns
            ),
        ));
    }
    let index = usable[rng.random_range(0..usable.len())];
    let crop_len = set.trajectories[index].n_res().min(spec.crop);
    (0..count.max(1))
        .map(|_| {
            window_of(set, index, spec, crop_len, rng)
                .ok_or_else(|| StarMdError::config("training data", "trajectory became unusable"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_and_stride_ranges() {
        assert_eq!(protein_of_run("trpcage_r2"), "trpcage");
        assert_eq!(protein_of_run("2YSF"), "2YSF");
        assert_eq!(protein_of_run("odd_rx"), "odd_rx");
        let t = MdTrajectory {
            name: "x".into(),
            protein: "x".into(),
            aatype: vec![0; 3],
            frames: vec![vec![[[0.0; 3]; 4]; 3]; 101],
            stride_ps: 10.0,
        };
        let spec = WindowSpec { frames: 8, dt_min_ns: 0.01, dt_max_ns: 10.0, crop: 64 };
        // 100 intervals / 7 = 14 frames at most.
        assert_eq!(t.stride_range(&spec), Some((1, 14)));
        assert_eq!(t.stride_range(&WindowSpec { dt_max_ns: 0.05, ..spec }), Some((1, 5)));
        assert_eq!(t.stride_range(&WindowSpec { dt_min_ns: 0.2, ..spec }), None);
        assert!((t.ns() - 1.0).abs() < 1e-12);
    }
}
