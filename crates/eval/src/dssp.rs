//! Secondary structure: Kabsch & Sander (1983) DSSP on full backbones, and a CA-geometry
//! fallback for CA traces.
//!
//! - [`dssp8`] / [`dssp_full`]: our own implementation of DSSP (H-bond energy, n-turns, bridges,
//!   ladders, helices) following the rules of `mkdssp` 4.2.2; see [`full`] for the details and
//!   the known differences.
//! - [`ss_from_ca`]: a CA-only rule set (see [`ca`]); less accurate, by construction.
//! - [`dssp`] picks between the two (see its docs).
//!
//! **3-state reduction** ([`Ss8::to_ss3`]): H, G, I → H; E, B → E; T, S, P and loop → C.
//! This is the reduction of most DSSP-based benchmarks (e.g. PSIPRED/CASP-style Q3 with
//! helices including 3₁₀ and π, strands including isolated bridges).

pub mod ca;
pub mod full;

pub use ca::CaSsParams;
pub use full::hbond_energy;

use protforge_structure::{Backbone, atom};

/// 3-state secondary structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Ss3 {
    /// Helix (`H`): DSSP H, G or I.
    Helix,
    /// Strand (`E`): DSSP E or B.
    Strand,
    /// Coil (`C`): everything else.
    Coil,
}

impl Ss3 {
    /// One-letter code: `'H'`, `'E'` or `'C'`.
    #[must_use]
    pub const fn as_char(self) -> char {
        match self {
            Self::Helix => 'H',
            Self::Strand => 'E',
            Self::Coil => 'C',
        }
    }

    /// Parse `'H'`, `'E'` or `'C'` (case-insensitive); anything else is `None`.
    #[must_use]
    pub const fn from_char(c: char) -> Option<Self> {
        match c.to_ascii_uppercase() {
            'H' => Some(Self::Helix),
            'E' => Some(Self::Strand),
            'C' => Some(Self::Coil),
            _ => None,
        }
    }
}

/// 8-state (+ polyproline) DSSP secondary structure, as written by `mkdssp` 4.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Ss8 {
    /// `H`: α-helix (two consecutive 4-turns).
    AlphaHelix,
    /// `B`: isolated β-bridge.
    Bridge,
    /// `E`: extended strand in a ladder.
    Strand,
    /// `G`: 3₁₀-helix.
    Helix310,
    /// `I`: π-helix (5-turns).
    PiHelix,
    /// `P`: polyproline II (κ) helix, mkdssp 4.x with the default stretch of 3.
    PolyProline,
    /// `T`: hydrogen-bonded turn.
    Turn,
    /// `S`: bend (CA kappa angle > 70°).
    Bend,
    /// Loop / none (`-` here; a blank in classic DSSP files).
    Loop,
}

impl Ss8 {
    /// One-letter code: `H B E G I P T S`, and `-` for loop.
    #[must_use]
    pub const fn as_char(self) -> char {
        match self {
            Self::AlphaHelix => 'H',
            Self::Bridge => 'B',
            Self::Strand => 'E',
            Self::Helix310 => 'G',
            Self::PiHelix => 'I',
            Self::PolyProline => 'P',
            Self::Turn => 'T',
            Self::Bend => 'S',
            Self::Loop => '-',
        }
    }

    /// Parse a DSSP letter; blank, `-`, `.` and `C` are loop; unknown letters are `None`.
    #[must_use]
    pub const fn from_char(c: char) -> Option<Self> {
        match c {
            'H' => Some(Self::AlphaHelix),
            'B' => Some(Self::Bridge),
            'E' => Some(Self::Strand),
            'G' => Some(Self::Helix310),
            'I' => Some(Self::PiHelix),
            'P' => Some(Self::PolyProline),
            'T' => Some(Self::Turn),
            'S' => Some(Self::Bend),
            ' ' | '-' | '.' | 'C' => Some(Self::Loop),
            _ => None,
        }
    }

    /// 3-state reduction: H, G, I → Helix; E, B → Strand; the rest → Coil.
    #[must_use]
    pub const fn to_ss3(self) -> Ss3 {
        match self {
            Self::AlphaHelix | Self::Helix310 | Self::PiHelix => Ss3::Helix,
            Self::Strand | Self::Bridge => Ss3::Strand,
            Self::PolyProline | Self::Turn | Self::Bend | Self::Loop => Ss3::Coil,
        }
    }
}

/// Which method produced an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SsMethod {
    /// Kabsch–Sander DSSP on full backbones ([`dssp_full`]).
    Dssp,
    /// CA-geometry fallback ([`ss_from_ca`]).
    CaGeometry,
}

/// Fraction of residues in each 3-state class (each in [0, 1]; all 0 for an empty input).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SsFractions {
    /// Fraction of helix residues.
    pub helix: f64,
    /// Fraction of strand residues.
    pub strand: f64,
    /// Fraction of coil residues.
    pub coil: f64,
}

/// 8-state DSSP of every residue of `bb` (Kabsch & Sander 1983, mkdssp 4.2.2 rules).
///
/// Residues without all four backbone atoms (N, CA, C, O) are left out of the calculation, as
/// `mkdssp` does, and assigned [`Ss8::Loop`]. Works across several chains (inter-chain sheets
/// are found). Output length equals `bb.len()`.
#[must_use]
pub fn dssp8(bb: &Backbone) -> Vec<Ss8> {
    full::assign(bb)
}

/// 3-state DSSP of a full backbone: [`dssp8`] reduced with [`Ss8::to_ss3`].
#[must_use]
pub fn dssp_full(bb: &Backbone) -> Vec<Ss3> {
    dssp8(bb).into_iter().map(Ss8::to_ss3).collect()
}

/// 3-state assignment from CA positions only (see [`ca`] for the rules). Residues without a
/// CA are coil. Output length equals `bb.len()`.
#[must_use]
pub fn ss_from_ca(bb: &Backbone) -> Vec<Ss3> {
    ca::assign(bb, &CaSsParams::default())
}

/// [`ss_from_ca`] with explicit thresholds.
#[must_use]
pub fn ss_from_ca_with(bb: &Backbone, params: &CaSsParams) -> Vec<Ss3> {
    ca::assign(bb, params)
}

/// The method [`dssp`] uses for `bb`: full DSSP when at least half of the residues that have a
/// CA also have N, C and O, otherwise the CA fallback. So a CA trace ([`Backbone::is_ca_only`])
/// uses the CA rules, and a full backbone with a few masked residues uses DSSP, where the
/// incomplete residues are coil.
#[must_use]
pub fn choose_method(bb: &Backbone) -> SsMethod {
    let with_ca = bb.atom_mask.iter().filter(|m| m[atom::CA]).count();
    let complete = bb.atom_mask.iter().filter(|m| m.iter().all(|&b| b)).count();
    if complete > 0 && 2 * complete >= with_ca {
        SsMethod::Dssp
    } else {
        SsMethod::CaGeometry
    }
}

/// 3-state secondary structure of `bb` with the method chosen by [`choose_method`].
#[must_use]
pub fn dssp(bb: &Backbone) -> Vec<Ss3> {
    dssp_with_method(bb).0
}

/// Like [`dssp`], also returning the method used.
#[must_use]
pub fn dssp_with_method(bb: &Backbone) -> (Vec<Ss3>, SsMethod) {
    let method = choose_method(bb);
    let ss = match method {
        SsMethod::Dssp => dssp_full(bb),
        SsMethod::CaGeometry => ss_from_ca(bb),
    };
    (ss, method)
}

/// The `H`/`E`/`C` string of a 3-state assignment.
#[must_use]
pub fn ss_string(ss: &[Ss3]) -> String {
    ss.iter().map(|s| s.as_char()).collect()
}

/// The 8-state string (`H B E G I P T S -`) of an 8-state assignment.
#[must_use]
pub fn ss8_string(ss: &[Ss8]) -> String {
    ss.iter().map(|s| s.as_char()).collect()
}

/// Fractions of helix, strand and coil residues.
#[must_use]
pub fn ss_fractions(ss: &[Ss3]) -> SsFractions {
    if ss.is_empty() {
        return SsFractions {
            helix: 0.0,
            strand: 0.0,
            coil: 0.0,
        };
    }
    let n = ss.len() as f64;
    let count = |t: Ss3| ss.iter().filter(|&&s| s == t).count() as f64 / n;
    SsFractions {
        helix: count(Ss3::Helix),
        strand: count(Ss3::Strand),
        coil: count(Ss3::Coil),
    }
}

/// Fraction of helix residues (0 for an empty input).
#[must_use]
pub fn helix_fraction(ss: &[Ss3]) -> f64 {
    ss_fractions(ss).helix
}

/// Fraction of strand residues (0 for an empty input).
#[must_use]
pub fn strand_fraction(ss: &[Ss3]) -> f64 {
    ss_fractions(ss).strand
}

#[cfg(test)]
mod tests {
    use super::*;
    use protforge_se3::geometry::build_backbone;
    use protforge_se3::{Vec3, dihedral};
    use protforge_structure::ResidueId;

    /// Ideal backbone (`protforge_se3::geometry::build_backbone`: Engh & Huber 1991 bond
    /// lengths and angles, trans ω) with constant φ, ψ (degrees).
    fn build(n_res: usize, phi: f64, psi: f64) -> Vec<[[f32; 3]; 4]> {
        let phi = vec![phi.to_radians(); n_res];
        let psi = vec![psi.to_radians(); n_res];
        let f = |p: Vec3| [p.x as f32, p.y as f32, p.z as f32];
        build_backbone(n_res, &phi, &psi, &[])
            .into_iter()
            .map(|r| r.map(f))
            .collect()
    }

    fn v(a: [f32; 3]) -> Vec3 {
        Vec3::new(f64::from(a[0]), f64::from(a[1]), f64::from(a[2]))
    }

    fn helix(n: usize) -> Backbone {
        Backbone::from_coords(build(n, -57.0, -47.0), vec![0; n])
    }

    /// Two antiparallel strands (chains A and B) related by a 2-fold axis normal to the sheet.
    fn sheet(n: usize, half_gap: f64) -> Backbone {
        let s = build(n, -139.0, 135.0);
        let k = n / 2;
        let u = (v(s[n - 1][1]) - v(s[0][1])).normalize();
        let co = v(s[k][3]) - v(s[k][2]);
        let w = (co - co.dot(&u) * u).normalize();
        let axis = u.cross(&w).normalize();
        let center = v(s[k][1]) + half_gap * w;
        // 2-fold rotation about `axis` through `center`: x' = 2 (a·r) a − r.
        let rot = |x: [f32; 3]| {
            let r = v(x) - center;
            let y = 2.0 * r.dot(&axis) * axis - r + center;
            [y.x as f32, y.y as f32, y.z as f32]
        };
        let mut bb = Backbone::from_coords(s.clone(), vec![0; n]);
        let other: Vec<[[f32; 3]; 4]> = s
            .iter()
            .map(|r| [rot(r[0]), rot(r[1]), rot(r[2]), rot(r[3])])
            .collect();
        let b = Backbone::from_coords(other, vec![0; n]);
        bb.coords.extend(b.coords);
        bb.atom_mask.extend(b.atom_mask);
        bb.aatype.extend(b.aatype);
        bb.chain_ids.extend(vec!["B".to_string(); n]);
        bb.residue_ids.extend((1..=n as i32).map(ResidueId::new));
        bb
    }

    #[test]
    fn builder_reproduces_phi_psi() {
        let bb = helix(8);
        let p = |i: usize, a: usize| v(bb.coords[i][a]);
        let phi = dihedral(p(3, 2), p(4, 0), p(4, 1), p(4, 2)).to_degrees();
        let psi = dihedral(p(4, 0), p(4, 1), p(4, 2), p(5, 0)).to_degrees();
        assert!((phi + 57.0).abs() < 0.01, "phi {phi}");
        assert!((psi + 47.0).abs() < 0.01, "psi {psi}");
    }

    #[test]
    fn ideal_alpha_helix_is_helix_except_ends() {
        for n in [12, 30] {
            let bb = helix(n);
            let s = ss_string(&dssp(&bb));
            assert_eq!(s, format!("C{}C", "H".repeat(n - 2)), "n = {n}");
            let s8 = ss8_string(&dssp8(&bb));
            assert_eq!(s8, format!("-{}-", "H".repeat(n - 2)));
        }
    }

    #[test]
    fn long_chain_runs_and_is_helix() {
        let bb = helix(500);
        let ss = dssp_full(&bb);
        assert_eq!(ss.len(), 500);
        assert!(ss[1..499].iter().all(|&s| s == Ss3::Helix));
        assert!((helix_fraction(&ss) - 498.0 / 500.0).abs() < 1e-12);
    }

    #[test]
    fn antiparallel_strands_are_strand() {
        let n = 7;
        let bb = sheet(n, 2.4);
        let s = ss_string(&dssp_full(&bb));
        let (a, b) = s.split_at(n);
        // Terminal residues cannot bridge; the central ones form a ladder on both chains.
        assert_eq!(&a[1..n - 1], "EEEEE", "{s}");
        assert_eq!(&b[1..n - 1], "EEEEE", "{s}");
        assert!(strand_fraction(&dssp_full(&bb)) > 0.7);
        // Pulled 6 Å further apart, there are no H-bonds and no strands.
        let far = sheet(n, 5.4);
        assert!(dssp_full(&far).iter().all(|&x| x == Ss3::Coil));
    }

    #[test]
    fn chain_id_change_splits_helix() {
        let mut bb = helix(24);
        for c in &mut bb.chain_ids[12..] {
            *c = "B".to_string();
        }
        let expect = format!("C{}CC{}C", "H".repeat(10), "H".repeat(10));
        assert_eq!(ss_string(&dssp(&bb)), expect);
    }

    #[test]
    fn peptide_gap_splits_helix() {
        let mut bb = helix(24);
        for r in &mut bb.coords[12..] {
            for a in r.iter_mut() {
                a[0] += 1.5;
                a[1] += 1.5;
            }
        }
        let expect = format!("C{}CC{}C", "H".repeat(10), "H".repeat(10));
        assert_eq!(ss_string(&dssp(&bb)), expect);
    }

    #[test]
    fn masked_residue_is_coil_and_breaks_chain() {
        let mut bb = helix(25);
        bb.atom_mask[12][atom::O] = false;
        let s = ss_string(&dssp(&bb));
        assert_eq!(s.len(), 25);
        assert_eq!(choose_method(&bb), SsMethod::Dssp);
        // Residues 0..12 and 13..25 are two independent 12-residue helices.
        assert_eq!(s, format!("C{}CCC{}C", "H".repeat(10), "H".repeat(10)));
    }

    #[test]
    fn ca_fallback_on_helix() {
        let full = helix(30);
        let bb = Backbone::from_ca(&full.ca(), None);
        assert!(bb.is_ca_only());
        assert_eq!(choose_method(&bb), SsMethod::CaGeometry);
        let ss = dssp(&bb);
        assert_eq!(ss.len(), 30);
        assert!(
            ss[2..28].iter().all(|&s| s == Ss3::Helix),
            "{}",
            ss_string(&ss)
        );
        // An extended single strand has no partner: coil.
        let strand = Backbone::from_coords(build(12, -139.0, 135.0), vec![0; 12]);
        let ca_only = Backbone::from_ca(&strand.ca(), None);
        assert!(ss_from_ca(&ca_only).iter().all(|&s| s == Ss3::Coil));
    }

    #[test]
    fn ca_fallback_on_sheet() {
        let bb = sheet(7, 2.4);
        let mut ca = Backbone::from_ca(&bb.ca(), None);
        ca.chain_ids = bb.chain_ids.clone();
        let s = ss_string(&dssp(&ca));
        assert_eq!(&s[2..5], "EEE", "{s}");
        assert_eq!(&s[9..12], "EEE", "{s}");
    }

    #[test]
    fn hbond_energy_by_hand() {
        // Collinear N-H···O=C: r_ON = 2.9, r_CH = 3.13, r_OH = 1.9, r_CN = 4.13 Å.
        let x = |v: f64| Vec3::new(v, 0.0, 0.0);
        let (n, h, o, c) = (x(0.0), x(1.0), x(2.9), x(4.13));
        // 27.888 * (1/2.9 + 1/3.13 - 1/1.9 - 1/4.13) = -2.904 kcal/mol (rounded to 3 decimals).
        let e = hbond_energy(n, h, c, o);
        assert!((e - (-2.904)).abs() < 1e-9, "{e}");
        // Pulled apart by 3 Å: weak, above the −0.5 cut-off.
        let e2 = hbond_energy(n, h, x(7.13), x(5.9));
        assert!(e2 > -0.5 && e2 < 0.0, "{e2}");
        // Atoms closer than 0.5 Å: the floor.
        assert_eq!(hbond_energy(n, h, x(1.5), x(1.2)), -9.9);
    }

    #[test]
    fn reduction_and_strings() {
        let all = [
            Ss8::AlphaHelix,
            Ss8::Helix310,
            Ss8::PiHelix,
            Ss8::Strand,
            Ss8::Bridge,
            Ss8::Turn,
            Ss8::Bend,
            Ss8::PolyProline,
            Ss8::Loop,
        ];
        let s3: Vec<Ss3> = all.iter().map(|s| s.to_ss3()).collect();
        assert_eq!(ss_string(&s3), "HHHEECCCC");
        assert_eq!(ss8_string(&all), "HGIEBTSP-");
        for s in all {
            assert_eq!(Ss8::from_char(s.as_char()), Some(s));
        }
        assert_eq!(Ss8::from_char(' '), Some(Ss8::Loop));
        assert_eq!(Ss3::from_char('e'), Some(Ss3::Strand));
        assert_eq!(Ss3::from_char('x'), None);
        let f = ss_fractions(&s3);
        assert!((f.helix - 3.0 / 9.0).abs() < 1e-12 && (f.strand - 2.0 / 9.0).abs() < 1e-12);
        assert_eq!(ss_fractions(&[]).helix, 0.0);
    }

    #[test]
    fn degenerate_input_does_not_panic() {
        assert!(dssp(&Backbone::default()).is_empty());
        let mut bb = helix(10);
        bb.coords[3][atom::O] = [f32::NAN; 3];
        bb.coords[6][atom::CA] = [1e30, -1e30, f32::INFINITY];
        assert_eq!(dssp(&bb).len(), 10);
        let ca = Backbone::from_ca(&bb.ca(), None);
        assert_eq!(dssp(&ca).len(), 10);
    }
}
