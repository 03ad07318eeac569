//! Kabsch & Sander (1983) DSSP on full backbones (N, CA, C, O), following the
//! rules of `mkdssp` 4.2.2 (Hekkelman et al.) so that the two agree residue by residue.
//!
//! Steps:
//! 1. Residues with all four backbone atoms are kept; the rest are assigned loop.
//! 2. Chain segments: consecutive kept residues are bonded when they share a chain id and
//!    C(i)–N(i+1) ≤ 2.5 Å (DSSP's peptide-bond rule). Every other pair starts a new segment.
//! 3. Amide H = N + (C_prev − O_prev)/|C_prev − O_prev| · 1 Å, from the previous residue of the
//!    same segment. Prolines and the first residue of each segment have no H and donate nothing.
//! 4. Electrostatic H-bond energy (see [`hbond_energy`]) for every pair whose CA atoms are closer
//!    than 9 Å (found with a cell list). Each donor keeps its two lowest-energy acceptors; a bond
//!    exists when one of them has E < −0.5 kcal/mol.
//! 5. n-turns (n = 3, 4, 5), bridges, ladders with β-bulges, then helices with the mkdssp 4.x
//!    priority: α-helix (H) overwrites strands, 3₁₀ (G) only fills loops, π-helix (I) fills
//!    loops and overwrites α-helix ("prefer π-helices", the 4.x default). Turns (T), bends
//!    (S, CA kappa > 70°) and polyproline κ-helices (P, stretch 3) fill what is left.
//!
//! Known, deliberate differences from `mkdssp` 4.2.2 (none showed up on the 148 validation
//! chains, where 3- and 8-state agreement is 100%, see `docs/BENCHMARKS.md`):
//! - mkdssp places the H of the first residue after a chain break from the C=O of the residue
//!   before the break (even in another chain); we give segment starts no H.
//! - mkdssp's bends also require `label_seq_id` to step by 4 over i−2..i+2; we only require one
//!   segment. Bends are coil in 3 states.
//! - A chain-id change always starts a new segment here, even if C–N ≤ 2.5 Å.
//! - Ties in the ladder sort (equal first residue) may be ordered differently (stable sort here).

use std::collections::{HashMap, VecDeque};

use protforge_se3::{Vec3, dihedral};
use protforge_structure::Backbone;
use protforge_structure::atom;

use super::Ss8;
use crate::neighbors::CellList;

/// Electrostatic coupling constant q1·q2·f = 0.42 e · 0.20 e · 332 Å·kcal/(mol·e²) (Kabsch & Sander 1983).
pub(crate) const COUPLING: f64 = 0.42 * 0.20 * 332.0;
/// An H-bond exists when its energy is below this (kcal/mol).
pub(crate) const MAX_HBOND_ENERGY: f64 = -0.5;
/// Energy floor (kcal/mol); also the energy given to pairs closer than [`MIN_DISTANCE`].
pub(crate) const MIN_HBOND_ENERGY: f64 = -9.9;
/// Any interatomic distance below this (Å) is treated as a clash with energy [`MIN_HBOND_ENERGY`].
const MIN_DISTANCE: f64 = 0.5;
/// Only residue pairs whose CA atoms are closer than this (Å) are tested for H-bonds.
const MAX_CA_DISTANCE: f64 = 9.0;
/// Longest C(i)–N(i+1) distance (Å) that still counts as a peptide bond.
const MAX_PEPTIDE_BOND: f64 = 2.5;
/// `aatype` of proline (AlphaFold order).
const PRO: u8 = 14;

fn to_vec3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

/// Kabsch–Sander electrostatic H-bond energy (kcal/mol) of donor N–H to acceptor C=O.
///
/// `E = 0.084 · 332 · (1/r_ON + 1/r_CH − 1/r_OH − 1/r_CN)` with all distances in Å
/// (Kabsch & Sander 1983, eq. 1). As in `mkdssp`, any distance below 0.5 Å gives the floor
/// −9.9 kcal/mol, the result is rounded to 3 decimals and floored at −9.9 kcal/mol.
/// A bond exists when `E < −0.5` kcal/mol. Atom positions `n`, `h`, `c`, `o` in Å.
///
/// ```
/// use protforge_eval::dssp::hbond_energy;
/// use protforge_se3::Vec3;
/// // Collinear N–H···O=C with r_ON = 2.9 Å: a strong bond.
/// let x = |v: f64| Vec3::new(v, 0.0, 0.0);
/// let e = hbond_energy(x(0.0), x(1.0), x(4.13), x(2.9));
/// assert!((e - (-2.904)).abs() < 1e-9);
/// ```
#[must_use]
pub fn hbond_energy(n: Vec3, h: Vec3, c: Vec3, o: Vec3) -> f64 {
    let r_on = (o - n).norm();
    let r_ch = (c - h).norm();
    let r_oh = (o - h).norm();
    let r_cn = (c - n).norm();
    let e =
        if r_on < MIN_DISTANCE || r_ch < MIN_DISTANCE || r_oh < MIN_DISTANCE || r_cn < MIN_DISTANCE
        {
            MIN_HBOND_ENERGY
        } else {
            COUPLING * (1.0 / r_on + 1.0 / r_ch - 1.0 / r_oh - 1.0 / r_cn)
        };
    let e = (e * 1000.0).round() / 1000.0;
    e.max(MIN_HBOND_ENERGY)
}

/// Position of a helix flag for one helix type (DSSP's `>`, `<`, `X` and digit marks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flag {
    None,
    Start,
    End,
    StartAndEnd,
    Middle,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BridgeKind {
    Parallel,
    Antiparallel,
}

#[derive(Clone, Debug)]
struct Ladder {
    kind: BridgeKind,
    /// Ordinal of the chain of the first `i` residue, for sorting.
    chain: usize,
    i: VecDeque<usize>,
    j: VecDeque<usize>,
}

/// Working state over the complete residues only (indices `0..n` are positions in `res`).
struct Dssp {
    n: usize,
    n_at: Vec<Vec3>,
    ca: Vec<Vec3>,
    c: Vec<Vec3>,
    o: Vec<Vec3>,
    h: Vec<Option<Vec3>>,
    /// Segment id: residues `a <= b` are connected (DSSP `NoChainBreak`) iff same segment.
    seg: Vec<usize>,
    chain: Vec<usize>,
    /// Two best acceptors `(acceptor, energy)` of each residue as donor.
    acc: Vec<[(Option<usize>, f64); 2]>,
    ss: Vec<Ss8>,
    flags: [Vec<Flag>; 3],
}

impl Dssp {
    fn new(bb: &Backbone) -> (Self, Vec<usize>) {
        let keep: Vec<usize> = (0..bb.len())
            .filter(|&i| bb.atom_mask.get(i).is_some_and(|m| m.iter().all(|&b| b)))
            .collect();
        let n = keep.len();
        let get = |k: usize, a: usize| to_vec3(bb.coords[keep[k]][a]);
        let n_at: Vec<Vec3> = (0..n).map(|k| get(k, atom::N)).collect();
        let ca: Vec<Vec3> = (0..n).map(|k| get(k, atom::CA)).collect();
        let c: Vec<Vec3> = (0..n).map(|k| get(k, atom::C)).collect();
        let o: Vec<Vec3> = (0..n).map(|k| get(k, atom::O)).collect();

        // Chain ordinals in order of first appearance (like mmCIF label_asym_id).
        let mut chain_ord: HashMap<&str, usize> = HashMap::new();
        let chain: Vec<usize> = keep
            .iter()
            .map(|&i| {
                let id = bb.chain_ids.get(i).map_or("", String::as_str);
                let next = chain_ord.len();
                *chain_ord.entry(id).or_insert(next)
            })
            .collect();

        let mut seg = vec![0usize; n];
        for k in 1..n {
            // `!(d <= max)` also breaks on NaN distances.
            let bonded =
                chain[k] == chain[k - 1] && (c[k - 1] - n_at[k]).norm() <= MAX_PEPTIDE_BOND;
            seg[k] = if bonded { seg[k - 1] } else { seg[k - 1] + 1 };
        }

        let h: Vec<Option<Vec3>> = (0..n)
            .map(|k| {
                let is_pro = bb.aatype.get(keep[k]).copied() == Some(PRO);
                if k == 0 || is_pro || seg[k] != seg[k - 1] {
                    return None;
                }
                let co = c[k - 1] - o[k - 1];
                let len = co.norm();
                (len.is_finite() && len > 0.0).then(|| n_at[k] + co / len)
            })
            .collect();

        let state = Self {
            n,
            n_at,
            ca,
            c,
            o,
            h,
            seg,
            chain,
            acc: vec![[(None, 0.0), (None, 0.0)]; n],
            ss: vec![Ss8::Loop; n],
            flags: [
                vec![Flag::None; n],
                vec![Flag::None; n],
                vec![Flag::None; n],
            ],
        };
        (state, keep)
    }

    /// DSSP `NoChainBreak(a, b)` for `a <= b`.
    fn connected(&self, a: usize, b: usize) -> bool {
        self.seg[a] == self.seg[b]
    }

    fn energy(&self, donor: usize, acceptor: usize) -> f64 {
        match self.h[donor] {
            Some(h) => hbond_energy(self.n_at[donor], h, self.c[acceptor], self.o[acceptor]),
            None => 0.0,
        }
    }

    fn record(&mut self, donor: usize, acceptor: usize) {
        let e = self.energy(donor, acceptor);
        let slots = &mut self.acc[donor];
        if e < slots[0].1 {
            slots[1] = slots[0];
            slots[0] = (Some(acceptor), e);
        } else if e < slots[1].1 {
            slots[1] = (Some(acceptor), e);
        }
    }

    fn compute_hbonds(&mut self) {
        // Candidate pairs: CA atoms closer than 9 Å.
        let near = CellList::new(&self.ca, MAX_CA_DISTANCE).pairs();
        // Same visiting order as mkdssp: i ascending, j ascending; (i→j) then (j→i), and the
        // N-H(i+1)···O(i) pair of a peptide neighbour is not considered.
        for (i, j) in near {
            self.record(i, j);
            if j != i + 1 {
                self.record(j, i);
            }
        }
    }

    /// DSSP `TestBond(donor, acceptor)`: acceptor is one of the donor's two best, E < −0.5.
    fn bond(&self, donor: usize, acceptor: usize) -> bool {
        self.acc[donor]
            .iter()
            .any(|&(a, e)| a == Some(acceptor) && e < MAX_HBOND_ENERGY)
    }

    fn bridge(&self, i: usize, j: usize) -> Option<BridgeKind> {
        // Residues a=i-1, b=i, c=i+1 and d=j-1, e=j, f=j+1; callers ensure they exist.
        let (a, b, c, d, e, f) = (i - 1, i, i + 1, j - 1, j, j + 1);
        if !(self.connected(a, c) && self.connected(d, f)) {
            return None;
        }
        if (self.bond(c, e) && self.bond(e, a)) || (self.bond(f, b) && self.bond(b, d)) {
            Some(BridgeKind::Parallel)
        } else if (self.bond(c, d) && self.bond(f, a)) || (self.bond(e, b) && self.bond(b, e)) {
            Some(BridgeKind::Antiparallel)
        } else {
            None
        }
    }

    fn beta(&mut self) {
        let n = self.n;
        let mut ladders: Vec<Ladder> = Vec::new();
        let mut i = 1;
        while i + 4 < n {
            let mut j = i + 3;
            while j + 1 < n {
                if let Some(kind) = self.bridge(i, j) {
                    let mut found = false;
                    for l in &mut ladders {
                        if l.kind != kind || l.i.back().map(|&x| x + 1) != Some(i) {
                            continue;
                        }
                        match kind {
                            BridgeKind::Parallel if l.j.back().map(|&x| x + 1) == Some(j) => {
                                l.i.push_back(i);
                                l.j.push_back(j);
                                found = true;
                                break;
                            }
                            BridgeKind::Antiparallel
                                if l.j.front().map(|&x| x.wrapping_sub(1)) == Some(j) =>
                            {
                                l.i.push_back(i);
                                l.j.push_front(j);
                                found = true;
                                break;
                            }
                            _ => {}
                        }
                    }
                    if !found {
                        ladders.push(Ladder {
                            kind,
                            chain: self.chain[i],
                            i: VecDeque::from([i]),
                            j: VecDeque::from([j]),
                        });
                    }
                }
                j += 1;
            }
            i += 1;
        }

        ladders.sort_by_key(|l| (l.chain, l.i.front().copied().unwrap_or(0)));

        // Join ladders separated by a β-bulge (gap < 6 on one strand and < 3 on the other).
        // Unsigned wrap-around mirrors the reference arithmetic: a negative gap never joins.
        let mut a = 0;
        while a < ladders.len() {
            let mut b = a + 1;
            while b < ladders.len() {
                let (la, lb) = (&ladders[a], &ladders[b]);
                let (Some(&ibi), Some(&iei), Some(&jbi), Some(&jei)) =
                    (la.i.front(), la.i.back(), la.j.front(), la.j.back())
                else {
                    b += 1;
                    continue;
                };
                let (Some(&ibj), Some(&iej), Some(&jbj), Some(&jej)) =
                    (lb.i.front(), lb.i.back(), lb.j.front(), lb.j.back())
                else {
                    b += 1;
                    continue;
                };
                let skip = la.kind != lb.kind
                    || !self.connected(ibi.min(ibj), iei.max(iej))
                    || !self.connected(jbi.min(jbj), jei.max(jej))
                    || ibj.wrapping_sub(iei) >= 6
                    || (iei >= ibj && ibi <= iej);
                if !skip {
                    let gap_i = ibj.wrapping_sub(iei);
                    let bulge = match la.kind {
                        BridgeKind::Parallel => {
                            let gap_j = jbj.wrapping_sub(jei);
                            (gap_j < 6 && gap_i < 3) || gap_j < 3
                        }
                        BridgeKind::Antiparallel => {
                            let gap_j = jbi.wrapping_sub(jej);
                            (gap_j < 6 && gap_i < 3) || gap_j < 3
                        }
                    };
                    if bulge {
                        let lb = ladders.remove(b);
                        let la = &mut ladders[a];
                        la.i.extend(lb.i.iter().copied());
                        match la.kind {
                            BridgeKind::Parallel => la.j.extend(lb.j.iter().copied()),
                            BridgeKind::Antiparallel => {
                                for &x in lb.j.iter().rev() {
                                    la.j.push_front(x);
                                }
                            }
                        }
                        continue;
                    }
                }
                b += 1;
            }
            a += 1;
        }

        for l in &ladders {
            let ss = if l.i.len() > 1 {
                Ss8::Strand
            } else {
                Ss8::Bridge
            };
            for side in [&l.i, &l.j] {
                if let (Some(&lo), Some(&hi)) = (side.front(), side.back()) {
                    for r in lo..=hi {
                        if self.ss[r] != Ss8::Strand {
                            self.ss[r] = ss;
                        }
                    }
                }
            }
        }
    }

    fn is_start(&self, t: usize, i: usize) -> bool {
        matches!(self.flags[t][i], Flag::Start | Flag::StartAndEnd)
    }

    fn helices(&mut self) {
        let n = self.n;
        for t in 0..3 {
            let stride = t + 3;
            let mut i = 0;
            while i + stride < n {
                if self.connected(i, i + stride) && self.bond(i + stride, i) {
                    self.flags[t][i + stride] = Flag::End;
                    for j in i + 1..i + stride {
                        if self.flags[t][j] == Flag::None {
                            self.flags[t][j] = Flag::Middle;
                        }
                    }
                    self.flags[t][i] = if self.flags[t][i] == Flag::End {
                        Flag::StartAndEnd
                    } else {
                        Flag::Start
                    };
                }
                i += 1;
            }
        }

        // α-helix: two consecutive 4-turns; overwrites everything (mkdssp 4.x order).
        let mut i = 1;
        while i + 4 < n {
            if self.is_start(1, i) && self.is_start(1, i - 1) {
                for j in i..=i + 3 {
                    self.ss[j] = Ss8::AlphaHelix;
                }
            }
            i += 1;
        }
        // 3₁₀-helix: only where all three residues are loop or already G.
        let mut i = 1;
        while i + 3 < n {
            if self.is_start(0, i) && self.is_start(0, i - 1) {
                let empty = (i..=i + 2).all(|j| matches!(self.ss[j], Ss8::Loop | Ss8::Helix310));
                if empty {
                    for j in i..=i + 2 {
                        self.ss[j] = Ss8::Helix310;
                    }
                }
            }
            i += 1;
        }
        // π-helix: loop, I, or α-helix may be overwritten (π preferred over α in DSSP ≥ 2.1/4.x).
        let mut i = 1;
        while i + 5 < n {
            if self.is_start(2, i) && self.is_start(2, i - 1) {
                let empty = (i..=i + 4)
                    .all(|j| matches!(self.ss[j], Ss8::Loop | Ss8::PiHelix | Ss8::AlphaHelix));
                if empty {
                    for j in i..=i + 4 {
                        self.ss[j] = Ss8::PiHelix;
                    }
                }
            }
            i += 1;
        }
        // Turns and bends on what is still loop.
        let bends = self.bends();
        let mut i = 1;
        while i + 1 < n {
            if self.ss[i] == Ss8::Loop {
                let turn = (0..3).any(|t| (1..t + 3).any(|k| i >= k && self.is_start(t, i - k)));
                if turn {
                    self.ss[i] = Ss8::Turn;
                } else if bends[i] {
                    self.ss[i] = Ss8::Bend;
                }
            }
            i += 1;
        }
    }

    /// Bend: CA(i−2)→CA(i) and CA(i)→CA(i+2) make an angle (kappa) > 70°.
    fn bends(&self) -> Vec<bool> {
        (0..self.n)
            .map(|i| {
                if i < 2 || i + 2 >= self.n || !self.connected(i - 2, i + 2) {
                    return false;
                }
                let u = self.ca[i] - self.ca[i - 2];
                let v = self.ca[i + 2] - self.ca[i];
                // `angle` is 0 for a zero-length vector, so coincident atoms never bend.
                u.angle(&v).to_degrees() > 70.0
            })
            .collect()
    }

    /// Polyproline (κ) helix: three consecutive residues with φ in −75±29° and ψ in 145±29°.
    /// Degenerate torsions are 0° (see [`dihedral`]) and so never in range.
    fn polyproline(&mut self) {
        let n = self.n;
        let mut phi = vec![360.0f64; n];
        let mut psi = vec![360.0f64; n];
        for i in 1..n.saturating_sub(1) {
            if self.connected(i - 1, i) {
                phi[i] = dihedral(self.c[i - 1], self.n_at[i], self.ca[i], self.c[i]).to_degrees();
            }
            if self.connected(i, i + 1) {
                psi[i] =
                    dihedral(self.n_at[i], self.ca[i], self.c[i], self.n_at[i + 1]).to_degrees();
            }
        }
        let eps = 29.0;
        let ok = |k: usize| {
            (-75.0 - eps..=-75.0 + eps).contains(&phi[k])
                && (145.0 - eps..=145.0 + eps).contains(&psi[k])
        };
        let mut i = 1;
        while i + 3 < n {
            if ok(i) && ok(i + 1) && ok(i + 2) {
                for j in i..=i + 2 {
                    if self.ss[j] == Ss8::Loop {
                        self.ss[j] = Ss8::PolyProline;
                    }
                }
            }
            i += 1;
        }
    }
}

/// 8-state DSSP of every residue of `bb` (loop for residues without all four backbone atoms).
pub(crate) fn assign(bb: &Backbone) -> Vec<Ss8> {
    let (mut d, keep) = Dssp::new(bb);
    d.compute_hbonds();
    d.beta();
    d.helices();
    d.polyproline();
    let mut out = vec![Ss8::Loop; bb.len()];
    for (k, &i) in keep.iter().enumerate() {
        out[i] = d.ss[k];
    }
    out
}
