//! Structural domain parsing from CA coordinates: recursive spectral bisection of the residue
//! contact graph (Shi & Malik 2000 normalised cut; the spectral relaxation of domain parsing as
//! in e.g. Holm & Sander 1994 "Parser for protein folding units", here in our own form).
//!
//! Graph: residues are nodes; `w_ij = 1` when `|CA_i − CA_j| < contact_cutoff` (`i ≠ j`).
//! A set of residues is split by the sign sweep of its Fiedler vector (second eigenvector of the
//! normalised Laplacian `I − D^{-1/2} W D^{-1/2}`, mapped back by `D^{-1/2}`): residues are
//! sorted by their Fiedler value and the prefix with the smallest normalised cut
//! `Ncut(A, B) = cut/vol(A) + cut/vol(B)` (both sides ≥ `min_domain`) is taken. The split is
//! then made sequence-contiguous where the structure allows it: runs of fewer than
//! `min_segment` residues along the chain are given to their neighbours. It is accepted when
//! both parts keep `min_domain` residues and `Ncut < max_ncut`; accepted parts are split again
//! (up to `max_domains`). A compact single domain cut in two has `Ncut ≈ 0.4–0.6`; two packed
//! domains ≈ 0.05–0.15.

use crate::WeaverError;
use nalgebra::DMatrix;
use protforge_se3::Vec3;
use serde::{Deserialize, Serialize};

/// Settings of [`parse_domains`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DomainParams {
    /// CA–CA contact distance (Å).
    pub contact_cutoff: f64,
    /// Smallest domain (residues).
    pub min_domain: usize,
    /// Shortest sequence run kept on its own side of a split (residues).
    pub min_segment: usize,
    /// Largest normalised cut accepted as a domain boundary.
    pub max_ncut: f64,
    /// At most this many domains.
    pub max_domains: usize,
}

impl Default for DomainParams {
    fn default() -> Self {
        Self { contact_cutoff: 8.0, min_domain: 30, min_segment: 10, max_ncut: 0.1, max_domains: 8 }
    }
}

/// A domain assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Domains {
    /// Domain of each residue, numbered `0..n_domains` in order of first appearance.
    pub labels: Vec<usize>,
    /// Number of domains.
    pub n_domains: usize,
}

impl Domains {
    /// The residues of each domain as sorted index lists.
    #[must_use]
    pub fn members(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_domains];
        for (i, &l) in self.labels.iter().enumerate() {
            out[l].push(i);
        }
        out
    }

    /// Contiguous sequence segments `(domain, start, end_exclusive)`.
    #[must_use]
    pub fn segments(&self) -> Vec<(usize, usize, usize)> {
        let mut out: Vec<(usize, usize, usize)> = Vec::new();
        for (i, &l) in self.labels.iter().enumerate() {
            match out.last_mut() {
                Some(last) if last.0 == l => last.2 = i + 1,
                _ => out.push((l, i, i + 1)),
            }
        }
        out
    }
}

/// Parse `ca` (Å) into structural domains.
///
/// # Errors
/// [`WeaverError::TooShort`] for fewer than 3 residues, [`WeaverError::NonFinite`].
pub fn parse_domains(ca: &[Vec3], params: &DomainParams) -> Result<Domains, WeaverError> {
    const CTX: &str = "parse_domains";
    if ca.len() < 3 {
        return Err(WeaverError::TooShort { context: CTX, len: ca.len(), min: 3 });
    }
    if let Some(index) = ca.iter().position(|p| !(p.x.is_finite() && p.y.is_finite() && p.z.is_finite())) {
        return Err(WeaverError::NonFinite { context: CTX, index });
    }
    let n = ca.len();
    let c2 = params.contact_cutoff * params.contact_cutoff;
    let w = DMatrix::from_fn(n, n, |i, j| if i != j && (ca[i] - ca[j]).norm_squared() < c2 { 1.0 } else { 0.0 });
    let mut labels = vec![0usize; n];
    let mut queue = vec![(0..n).collect::<Vec<usize>>()];
    let mut done: Vec<Vec<usize>> = Vec::new();
    while let Some(set) = queue.pop() {
        if done.len() + queue.len() + 1 >= params.max_domains {
            done.push(set);
            continue;
        }
        match bisect(&w, &set, params) {
            Some((a, b)) => {
                queue.push(a);
                queue.push(b);
            }
            None => done.push(set),
        }
    }
    for (d, set) in done.iter().enumerate() {
        for &i in set {
            labels[i] = d;
        }
    }
    // Renumber by first appearance along the chain.
    let mut order: Vec<usize> = Vec::new();
    for &l in &labels {
        if !order.contains(&l) {
            order.push(l);
        }
    }
    let labels: Vec<usize> = labels.iter().map(|l| order.iter().position(|o| o == l).unwrap_or(0)).collect();
    Ok(Domains { n_domains: order.len(), labels })
}

/// Normalised cut of the partition `side` (true = A) of `set` in graph `w`.
fn ncut(w: &DMatrix<f64>, set: &[usize], side: &[bool]) -> f64 {
    let (mut cut, mut vol_a, mut vol_b) = (0.0, 0.0, 0.0);
    for (x, &i) in set.iter().enumerate() {
        for (y, &j) in set.iter().enumerate() {
            let wij = w[(i, j)];
            if wij == 0.0 {
                continue;
            }
            if side[x] {
                vol_a += wij;
            } else {
                vol_b += wij;
            }
            if side[x] && !side[y] {
                cut += wij;
            }
        }
    }
    if vol_a <= 0.0 || vol_b <= 0.0 { f64::INFINITY } else { cut / vol_a + cut / vol_b }
}

/// Make a split sequence-contiguous where possible: runs (along `set`, which is sorted) shorter
/// than `min_segment` take the side of the longer neighbouring run.
fn smooth(side: &mut [bool], min_segment: usize) {
    loop {
        let mut runs: Vec<(usize, usize)> = Vec::new(); // (start, len)
        for i in 0..side.len() {
            match runs.last_mut() {
                Some((s, l)) if side[*s] == side[i] => *l += 1,
                _ => runs.push((i, 1)),
            }
        }
        if runs.len() <= 1 {
            return;
        }
        // The shortest run below the threshold flips first.
        let Some(&(start, len)) = runs.iter().filter(|r| r.1 < min_segment).min_by_key(|r| r.1) else {
            return;
        };
        let flip = !side[start];
        for s in side.iter_mut().skip(start).take(len) {
            *s = flip;
        }
    }
}

/// Spectral bisection of `set` (sorted residue indices); `None` if no acceptable split.
fn bisect(w: &DMatrix<f64>, set: &[usize], params: &DomainParams) -> Option<(Vec<usize>, Vec<usize>)> {
    let m = set.len();
    if m < 2 * params.min_domain {
        return None;
    }
    let deg: Vec<f64> = set.iter().map(|&i| set.iter().map(|&j| w[(i, j)]).sum::<f64>().max(1e-9)).collect();
    let norm = DMatrix::from_fn(m, m, |x, y| w[(set[x], set[y])] / (deg[x] * deg[y]).sqrt());
    let eig = nalgebra::SymmetricEigen::new(norm);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let v2 = eig.eigenvectors.column(*order.get(1)?);
    let fiedler: Vec<f64> = (0..m).map(|x| v2[x] / deg[x].sqrt()).collect();
    // Sweep prefixes of the Fiedler order for the smallest normalised cut.
    let mut by_value: Vec<usize> = (0..m).collect();
    by_value.sort_by(|&a, &b| fiedler[a].total_cmp(&fiedler[b]));
    let total_vol: f64 = deg.iter().sum();
    let mut in_a = vec![false; m];
    let (mut cut, mut vol_a) = (0.0f64, 0.0f64);
    let mut best: Option<(f64, usize)> = None;
    for (k, &x) in by_value.iter().enumerate().take(m - 1) {
        // Moving x into A: its edges to A stop being cut, its edges to B start being cut.
        let (mut to_a, mut to_b) = (0.0, 0.0);
        for y in 0..m {
            let wxy = w[(set[x], set[y])];
            if wxy == 0.0 || y == x {
                continue;
            }
            if in_a[y] { to_a += wxy } else { to_b += wxy }
        }
        in_a[x] = true;
        cut += to_b - to_a;
        vol_a += deg[x];
        let size_a = k + 1;
        if size_a >= params.min_domain && m - size_a >= params.min_domain {
            let score = cut / vol_a + cut / (total_vol - vol_a);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, size_a));
            }
        }
    }
    let (_, size_a) = best?;
    let mut side = vec![false; m];
    for &x in by_value.iter().take(size_a) {
        side[x] = true;
    }
    smooth(&mut side, params.min_segment);
    let na = side.iter().filter(|&&s| s).count();
    if na < params.min_domain || m - na < params.min_domain || ncut(w, set, &side) >= params.max_ncut {
        return None;
    }
    let a: Vec<usize> = set.iter().zip(&side).filter(|(_, s)| **s).map(|(&i, _)| i).collect();
    let b: Vec<usize> = set.iter().zip(&side).filter(|(_, s)| !**s).map(|(&i, _)| i).collect();
    Some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ca(name: &str) -> Vec<Vec3> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/backbones").join(name);
        let bb = protforge_structure::io::read_backbone(&path, &protforge_structure::io::ReadOptions::default()).unwrap().backbone;
        (0..bb.len()).filter(|&i| bb.atom_mask[i][1]).map(|i| {
            let p = bb.coords[i][1];
            Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
        }).collect()
    }

    #[test]
    fn single_domain_proteins_stay_whole() {
        for name in ["barnase_A.pdb", "1a8o_A.pdb", "HHH_rd1_0473_A.pdb"] {
            let d = parse_domains(&read_ca(name), &DomainParams::default()).unwrap();
            assert_eq!(d.n_domains, 1, "{name}: {:?}", d.segments());
        }
    }

    #[test]
    fn t4_lysozyme_has_its_two_lobes() {
        let d = parse_domains(&read_ca("t4_lysozyme_L99A_A.pdb"), &DomainParams::default()).unwrap();
        assert_eq!(d.n_domains, 2, "{:?}", d.segments());
        // N-terminal lobe ≈ residues 13–60s (0-based 12..~67); helix A (1–12) packs on the C lobe.
        let n_lobe = d.labels[30];
        let n_members: Vec<usize> = (0..d.labels.len()).filter(|&i| d.labels[i] == n_lobe).collect();
        assert!((10..=15).contains(&n_members[0]), "{:?}", d.segments());
        assert!((58..=72).contains(n_members.last().unwrap()), "{:?}", d.segments());
        assert_eq!(d.labels[0], d.labels[150], "helix A and the C lobe are one domain");
    }

    #[test]
    fn two_packed_copies_of_a_domain_are_split_at_the_junction() {
        let a = read_ca("barnase_A.pdb");
        let centre = a.iter().sum::<Vec3>() / a.len() as f64;
        // The copy is rotated 180° about z and shifted along x so the two surfaces touch.
        let extent = a.iter().map(|p| (p - centre).x).fold(0.0f64, f64::max);
        let b: Vec<Vec3> = a.iter().map(|p| {
            let q = p - centre;
            centre + Vec3::new(-q.x, -q.y, q.z) + Vec3::new(2.0 * extent + 2.0, 0.0, 0.0)
        }).collect();
        let mut ca = a.clone();
        ca.extend(b);
        let d = parse_domains(&ca, &DomainParams::default()).unwrap();
        assert_eq!(d.n_domains, 2, "{:?}", d.segments());
        let segs = d.segments();
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert!((segs[0].2 as i64 - a.len() as i64).abs() <= 5, "{segs:?}");
    }

    #[test]
    fn short_runs_are_merged() {
        let mut side = vec![true, true, true, false, true, true, false, false, false, false];
        smooth(&mut side, 2);
        assert_eq!(side, vec![true, true, true, true, true, true, false, false, false, false]);
    }

    #[test]
    fn bad_input() {
        assert!(parse_domains(&[Vec3::zeros(); 2], &DomainParams::default()).is_err());
        let mut ca = read_ca("barnase_A.pdb");
        ca[3].y = f64::NAN;
        assert!(parse_domains(&ca, &DomainParams::default()).is_err());
    }
}
