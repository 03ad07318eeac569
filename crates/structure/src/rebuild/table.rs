//! The fitted lookup tables of [`crate::rebuild`]: binned mean positions of the peptide atoms
//! in the local frame of a window of consecutive CA atoms, their binary encoding, and the fit.
//!
//! Two grids:
//! - **window of 4 CA** `p0..p3`, descriptors (θ₁, θ₂, τ): the CA virtual bond angles at `p1`
//!   and `p2` and the CA virtual dihedral `p0-p1-p2-p3` (radians); θ axes 76°–156° in 20 bins
//!   of 4° (clamped), τ axis periodic in 36 bins of 10°. Each bin stores, for N, C and O of each
//!   of the 4 residues (12 atoms), the mean position in the window frame (Å) and the RMS
//!   deviation about that mean (Å).
//! - **window of 3 CA** `p0..p2`, descriptor θ₁ (the angle at `p1`), same θ axis, 9 atoms.
//!
//! Window frame: origin `p1`, x along `p2 − p1`, y the part of `p0 − p1` orthogonal to x
//! (`Rigid::from_three_points(2·p1 − p2, p1, p0)`), z = x × y.
//!
//! The fit uses linear binning (each sample is spread over the 2ᴰ surrounding bin centres with
//! its multilinear interpolation weights), so that multilinear lookup reproduces smooth means.
//! Empty bins are filled by repeated averaging of filled neighbours and get a large RMS, which
//! makes their estimates count little when estimates are combined.

use protforge_se3::{Rigid, Vec3};

/// Residues per window of the 4-CA grid.
pub(crate) const W4: usize = 4;
/// Residues per window of the 3-CA grid.
pub(crate) const W3: usize = 3;
/// Predicted atoms per residue: N, C, O.
pub(crate) const ATOMS_PER_RES: usize = 3;

const MAGIC: &[u8; 8] = b"PFRBLD01";
/// Å per stored integer unit (i16 storage: ±16.4 Å range, 0.5 mÅ resolution).
const SCALE: f64 = 1.0 / 2000.0;
const THETA_MIN_DEG: f64 = 76.0;
const THETA_STEP_DEG: f64 = 4.0;
const N_THETA: usize = 20;
const N_TAU: usize = 36;
/// Prior variance (Å²) that low-weight bins are shrunk towards.
const VAR_PRIOR: f64 = 1.0;
/// Pseudo-count of the variance prior.
const VAR_PRIOR_WEIGHT: f64 = 2.0;
/// RMS (Å) given to bins that no training window touched.
const RMS_EMPTY: f64 = 2.0;
/// Smallest and largest CA–CA distance (Å) of a trans peptide used in the fit.
pub(crate) const FIT_CA_CA_RANGE: (f64, f64) = (3.3, 4.2);

/// One axis of a grid: `n` bins of width `step` starting at `min` (radians).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Axis {
    n: usize,
    min: f64,
    step: f64,
    periodic: bool,
}

impl Axis {
    fn theta() -> Self {
        Self {
            n: N_THETA,
            min: THETA_MIN_DEG.to_radians(),
            step: THETA_STEP_DEG.to_radians(),
            periodic: false,
        }
    }

    fn tau() -> Self {
        let step = std::f64::consts::TAU / N_TAU as f64;
        Self {
            n: N_TAU,
            min: -std::f64::consts::PI,
            step,
            periodic: true,
        }
    }

    /// Lower bin, upper bin and the weight of the upper bin for coordinate `x`.
    fn locate(&self, x: f64) -> (usize, usize, f64) {
        let u = (x - self.min) / self.step - 0.5;
        if self.periodic {
            let n = self.n as f64;
            let u = u.rem_euclid(n);
            let lo = (u.floor() as usize).min(self.n - 1);
            let f = u - lo as f64;
            (lo, (lo + 1) % self.n, f)
        } else {
            let u = u.clamp(0.0, (self.n - 1) as f64);
            let lo = (u.floor() as usize).min(self.n.saturating_sub(2));
            let f = (u - lo as f64).clamp(0.0, 1.0);
            (lo, (lo + 1).min(self.n - 1), f)
        }
    }
}

/// A multilinear grid of per-bin values: `n_atoms` mean positions (Å, window frame) then
/// `n_atoms` RMS deviations (Å).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    axes: Vec<Axis>,
    n_atoms: usize,
    /// Training windows that went into the fit.
    pub(crate) n_windows: u64,
    /// `[n_bins][n_atoms * 4]`: x, y, z of each atom, then the RMS of each atom.
    values: Vec<f32>,
}

impl Grid {
    fn new(axes: Vec<Axis>, n_atoms: usize) -> Self {
        let n_bins = axes.iter().map(|a| a.n).product::<usize>();
        Self {
            axes,
            n_atoms,
            n_windows: 0,
            values: vec![0.0; n_bins * n_atoms * 4],
        }
    }

    /// The 4-CA grid layout (θ₁, θ₂, τ) with 12 atoms.
    pub(crate) fn window4() -> Self {
        Self::new(
            vec![Axis::theta(), Axis::theta(), Axis::tau()],
            W4 * ATOMS_PER_RES,
        )
    }

    /// The 3-CA grid layout (θ₁) with 9 atoms.
    pub(crate) fn window3() -> Self {
        Self::new(vec![Axis::theta()], W3 * ATOMS_PER_RES)
    }

    fn n_bins(&self) -> usize {
        self.axes.iter().map(|a| a.n).product()
    }

    fn stride(&self) -> usize {
        self.n_atoms * 4
    }

    /// Flat bin indices and multilinear weights of the 2ᴰ bins around `desc`.
    fn corners(&self, desc: &[f64], out: &mut Vec<(usize, f64)>) {
        out.clear();
        out.push((0, 1.0));
        for (axis, &x) in self.axes.iter().zip(desc) {
            let (lo, hi, f) = axis.locate(x);
            let len = out.len();
            for k in 0..len {
                let (idx, w) = out[k];
                out[k] = (idx * axis.n + lo, w * (1.0 - f));
                out.push((idx * axis.n + hi, w * f));
            }
        }
    }

    /// Interpolated means (window frame, Å) and RMS (Å) of every atom at descriptor `desc`.
    pub(crate) fn lookup(&self, desc: &[f64], means: &mut [Vec3], rms: &mut [f64]) {
        let mut corners = Vec::with_capacity(8);
        self.corners(desc, &mut corners);
        for m in means.iter_mut() {
            *m = Vec3::zeros();
        }
        for r in rms.iter_mut() {
            *r = 0.0;
        }
        let s = self.stride();
        for &(idx, w) in &corners {
            let v = &self.values[idx * s..(idx + 1) * s];
            for a in 0..self.n_atoms {
                means[a] += w * Vec3::new(
                    f64::from(v[3 * a]),
                    f64::from(v[3 * a + 1]),
                    f64::from(v[3 * a + 2]),
                );
                rms[a] += w * f64::from(v[3 * self.n_atoms + a]);
            }
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.axes.len() as u32).to_le_bytes());
        for a in &self.axes {
            out.extend_from_slice(&(a.n as u32).to_le_bytes());
            out.extend_from_slice(&a.min.to_le_bytes());
            out.extend_from_slice(&a.step.to_le_bytes());
            out.extend_from_slice(&u32::from(a.periodic).to_le_bytes());
        }
        out.extend_from_slice(&(self.n_atoms as u32).to_le_bytes());
        out.extend_from_slice(&self.n_windows.to_le_bytes());
        for &v in &self.values {
            let q = (f64::from(v) / SCALE)
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
            out.extend_from_slice(&q.to_le_bytes());
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        let n_axes = r.u32()? as usize;
        if !(1..=3).contains(&n_axes) {
            return Err(format!("grid with {n_axes} axes"));
        }
        let mut axes = Vec::with_capacity(n_axes);
        for _ in 0..n_axes {
            let n = r.u32()? as usize;
            let min = r.f64()?;
            let step = r.f64()?;
            let periodic = r.u32()? != 0;
            if !((2..=1000).contains(&n) && min.is_finite() && step.is_finite() && step > 0.0) {
                return Err(format!("bad axis (n {n}, min {min}, step {step})"));
            }
            axes.push(Axis {
                n,
                min,
                step,
                periodic,
            });
        }
        let n_atoms = r.u32()? as usize;
        if !(1..=64).contains(&n_atoms) {
            return Err(format!("grid with {n_atoms} atoms"));
        }
        let mut grid = Self::new(axes, n_atoms);
        grid.n_windows = r.u64()?;
        for v in &mut grid.values {
            *v = (f64::from(r.i16()?) * SCALE) as f32;
        }
        Ok(grid)
    }
}

/// Little-endian cursor over the embedded table.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.pos + N;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_le_bytes(self.take()?))
    }
}

/// Both grids plus provenance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tables {
    /// Training chains the fit read.
    pub(crate) n_chains: u32,
    /// The 4-CA grid.
    pub(crate) w4: Grid,
    /// The 3-CA grid.
    pub(crate) w3: Grid,
}

impl Tables {
    /// The binary encoding (magic, chain count, 4-CA grid, 3-CA grid; little endian, i16 values).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.n_chains.to_le_bytes());
        self.w4.encode(&mut out);
        self.w3.encode(&mut out);
        out
    }

    /// Parse [`Self::encode`] output, checking the layout matches this code.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take::<8>()? != *MAGIC {
            return Err("not a protforge rebuild table (bad magic)".to_string());
        }
        let n_chains = r.u32()?;
        let w4 = Grid::decode(&mut r)?;
        let w3 = Grid::decode(&mut r)?;
        if r.pos != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - r.pos));
        }
        let (e4, e3) = (Grid::window4(), Grid::window3());
        if w4.axes.len() != e4.axes.len() || w4.n_atoms != e4.n_atoms {
            return Err("4-CA grid layout does not match this build".to_string());
        }
        if w3.axes.len() != e3.axes.len() || w3.n_atoms != e3.n_atoms {
            return Err("3-CA grid layout does not match this build".to_string());
        }
        Ok(Self { n_chains, w4, w3 })
    }
}

/// Angle p0-p1-p2 at p1 (radians, `[0, π]`).
pub(crate) fn angle(p0: Vec3, p1: Vec3, p2: Vec3) -> f64 {
    let u = p0 - p1;
    let v = p2 - p1;
    u.cross(&v).norm().atan2(u.dot(&v))
}

/// A unit vector orthogonal to the unit vector `x` (deterministic, built from the coordinate
/// axis least aligned with `x`).
pub(crate) fn perpendicular(x: Vec3) -> Vec3 {
    let a = x.abs();
    let e = if a.x <= a.y && a.x <= a.z {
        Vec3::x()
    } else if a.y <= a.z {
        Vec3::y()
    } else {
        Vec3::z()
    };
    (e - x * x.dot(&e)).normalize()
}

/// The window frame at `p1`: x towards `p2`, y towards `p0` (see the module docs). Collinear
/// `p0, p1, p2` fall back to an arbitrary perpendicular y. `None` if `p1 == p2`.
pub(crate) fn window_frame(p0: Vec3, p1: Vec3, p2: Vec3) -> Option<Rigid> {
    let x = p2 - p1;
    if x.norm().is_nan() || x.norm() <= 1e-6 {
        return None;
    }
    Rigid::from_three_points(p1 - x, p1, p0).ok().or_else(|| {
        let y = perpendicular(x.normalize());
        Rigid::from_three_points(p1 - x, p1, p1 + y).ok()
    })
}

/// Descriptors of a 4-CA window: (θ₁ at p1, θ₂ at p2, τ = dihedral p0-p1-p2-p3), radians.
pub(crate) fn descriptors4(p: &[Vec3; 4]) -> [f64; 3] {
    [
        angle(p[0], p[1], p[2]),
        angle(p[1], p[2], p[3]),
        protforge_se3::dihedral(p[0], p[1], p[2], p[3]),
    ]
}

/// Accumulates linear-binned sums for one grid.
struct Accumulator {
    grid: Grid,
    weight: Vec<f64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl Accumulator {
    fn new(grid: Grid) -> Self {
        let nb = grid.n_bins();
        let na = grid.n_atoms;
        Self {
            weight: vec![0.0; nb],
            sum: vec![0.0; nb * na * 3],
            sum_sq: vec![0.0; nb * na],
            grid,
        }
    }

    fn add(&mut self, desc: &[f64], local: &[Vec3], corners: &mut Vec<(usize, f64)>) {
        self.grid.corners(desc, corners);
        let na = self.grid.n_atoms;
        for &(idx, w) in corners.iter() {
            if w <= 0.0 {
                continue;
            }
            self.weight[idx] += w;
            for (a, p) in local.iter().enumerate() {
                for d in 0..3 {
                    self.sum[(idx * na + a) * 3 + d] += w * p[d];
                }
                self.sum_sq[idx * na + a] += w * p.norm_squared();
            }
        }
        self.grid.n_windows += 1;
    }

    /// Means and shrunk RMS per bin; empty bins filled from their neighbours.
    fn finish(mut self) -> Grid {
        let nb = self.grid.n_bins();
        let na = self.grid.n_atoms;
        let s = self.grid.stride();
        let mut filled: Vec<bool> = self.weight.iter().map(|&w| w >= 1e-6).collect();
        for b in (0..nb).filter(|&b| filled[b]) {
            let w = self.weight[b];
            for a in 0..na {
                let mut m2 = 0.0;
                for d in 0..3 {
                    let m = self.sum[(b * na + a) * 3 + d] / w;
                    self.grid.values[b * s + 3 * a + d] = m as f32;
                    m2 += m * m;
                }
                let var = (self.sum_sq[b * na + a] / w - m2).max(0.0);
                let shrunk = (w * var + VAR_PRIOR_WEIGHT * VAR_PRIOR) / (w + VAR_PRIOR_WEIGHT);
                self.grid.values[b * s + 3 * na + a] = shrunk.sqrt() as f32;
            }
        }
        // Fill empty bins by averaging filled neighbours, sweep by sweep.
        if filled.iter().any(|&f| f) {
            while filled.iter().any(|&f| !f) {
                let snapshot = filled.clone();
                for b in 0..nb {
                    if snapshot[b] {
                        continue;
                    }
                    let nbrs: Vec<usize> = self
                        .neighbours(b)
                        .into_iter()
                        .filter(|&n| snapshot[n])
                        .collect();
                    if nbrs.is_empty() {
                        continue;
                    }
                    for k in 0..3 * na {
                        let mean = nbrs
                            .iter()
                            .map(|&n| f64::from(self.grid.values[n * s + k]))
                            .sum::<f64>()
                            / nbrs.len() as f64;
                        self.grid.values[b * s + k] = mean as f32;
                    }
                    for a in 0..na {
                        self.grid.values[b * s + 3 * na + a] = RMS_EMPTY as f32;
                    }
                    filled[b] = true;
                }
            }
        }
        self.grid
    }

    /// Flat indices of the ±1 neighbours of bin `b` along each axis.
    fn neighbours(&self, b: usize) -> Vec<usize> {
        let axes = &self.grid.axes;
        let mut idx = vec![0usize; axes.len()];
        let mut rest = b;
        for (k, a) in axes.iter().enumerate().rev() {
            idx[k] = rest % a.n;
            rest /= a.n;
        }
        let flat = |idx: &[usize]| idx.iter().zip(axes).fold(0, |acc, (&i, a)| acc * a.n + i);
        let mut out = Vec::new();
        for (k, a) in axes.iter().enumerate() {
            for delta in [-1i64, 1] {
                let j = idx[k] as i64 + delta;
                let j = if a.periodic {
                    j.rem_euclid(a.n as i64)
                } else if (0..a.n as i64).contains(&j) {
                    j
                } else {
                    continue;
                };
                let mut m = idx.clone();
                m[k] = j as usize;
                out.push(flat(&m));
            }
        }
        out
    }
}

/// Fit both tables on full-backbone chains (`[n_res][N, CA, C, O]`, Å). Chains are cut at
/// CA–CA distances outside [`FIT_CA_CA_RANGE`] (gaps and cis peptides); windows whose
/// coordinates are non-finite are skipped.
pub(crate) fn fit(chains: &[Vec<[[f32; 3]; 4]>]) -> Tables {
    let mut acc4 = Accumulator::new(Grid::window4());
    let mut acc3 = Accumulator::new(Grid::window3());
    let mut corners = Vec::with_capacity(8);
    let v = |p: [f32; 3]| Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
    for chain in chains {
        let res: Vec<[Vec3; 4]> = chain
            .iter()
            .map(|r| [v(r[0]), v(r[1]), v(r[2]), v(r[3])])
            .collect();
        let finite = |r: &[Vec3; 4]| r.iter().all(|p| p.iter().all(|c| c.is_finite()));
        let bonded = |i: usize| {
            let d = (res[i + 1][1] - res[i][1]).norm();
            d >= FIT_CA_CA_RANGE.0 && d <= FIT_CA_CA_RANGE.1
        };
        for (size, acc) in [(W4, &mut acc4), (W3, &mut acc3)] {
            if res.len() < size {
                continue;
            }
            for s in 0..=res.len() - size {
                let win = &res[s..s + size];
                if !win.iter().all(finite) || !(s..s + size - 1).all(bonded) {
                    continue;
                }
                let Some(frame) = window_frame(win[0][1], win[1][1], win[2][1]) else {
                    continue;
                };
                let desc: Vec<f64> = if size == W4 {
                    descriptors4(&[win[0][1], win[1][1], win[2][1], win[3][1]]).to_vec()
                } else {
                    vec![angle(win[0][1], win[1][1], win[2][1])]
                };
                let local: Vec<Vec3> = win
                    .iter()
                    .flat_map(|r| [r[0], r[2], r[3]])
                    .map(|p| frame.apply_inverse(p))
                    .collect();
                acc.add(&desc, &local, &mut corners);
            }
        }
    }
    Tables {
        n_chains: chains.len() as u32,
        w4: acc4.finish(),
        w3: acc3.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_locate_clamps_and_wraps() {
        let t = Axis::theta();
        let (lo, hi, f) = t.locate(0.0);
        assert_eq!((lo, hi), (0, 1));
        assert!(f.abs() < 1e-12);
        let (lo, hi, f) = t.locate(4.0);
        assert_eq!((lo, hi), (N_THETA - 2, N_THETA - 1));
        assert!((f - 1.0).abs() < 1e-12);
        let tau = Axis::tau();
        // Exactly between the last and the first bin centre: wraps.
        let (lo, hi, f) = tau.locate(std::f64::consts::PI);
        assert_eq!((lo, hi), (N_TAU - 1, 0));
        assert!((f - 0.5).abs() < 1e-9);
    }

    #[test]
    fn encode_decode_roundtrip_and_rejects_garbage() {
        let mut t = Tables {
            n_chains: 7,
            w4: Grid::window4(),
            w3: Grid::window3(),
        };
        t.w3.values[5] = 1.2345;
        t.w4.n_windows = 99;
        let bytes = t.encode();
        let back = Tables::decode(&bytes).unwrap();
        assert_eq!(back.n_chains, 7);
        assert_eq!(back.w4.n_windows, 99);
        assert!((back.w3.values[5] - 1.2345).abs() < 1e-3);
        assert!(Tables::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Tables::decode(b"garbage!").is_err());
    }
}
