//! [`Backbone`]: one or more protein chains as a struct of arrays of N, CA, C, O.

use crate::residue;

/// Index of each backbone atom in a residue's atom array.
pub mod atom {
    /// Backbone nitrogen.
    pub const N: usize = 0;
    /// Alpha carbon.
    pub const CA: usize = 1;
    /// Carbonyl carbon.
    pub const C: usize = 2;
    /// Carbonyl oxygen.
    pub const O: usize = 3;
}

/// A residue's identity in its source file: author residue number plus insertion code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ResidueId {
    /// Author residue number (`resSeq` / `auth_seq_id`).
    pub number: i32,
    /// Insertion code (`iCode` / `pdbx_PDB_ins_code`), `None` when blank.
    pub insertion: Option<char>,
}

impl ResidueId {
    /// A residue id without insertion code.
    #[must_use]
    pub const fn new(number: i32) -> Self {
        Self { number, insertion: None }
    }
}

impl std::fmt::Display for ResidueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.insertion {
            Some(c) => write!(f, "{}{}", self.number, c),
            None => write!(f, "{}", self.number),
        }
    }
}

/// Protein backbone, struct of arrays, one entry per residue.
///
/// All per-residue vectors have the same length `n_res`. Coordinates are in **Å**.
/// Atom order inside each residue is N, CA, C, O (see [`atom`]). An atom whose
/// `atom_mask` entry is `false` is absent from the source, its coordinates are zero
/// and must not be used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Backbone {
    /// `[n_res][4][3]` positions of N, CA, C, O in Å.
    pub coords: Vec<[[f32; 3]; 4]>,
    /// `[n_res][4]` whether each backbone atom is present.
    pub atom_mask: Vec<[bool; 4]>,
    /// `[n_res]` residue type, AlphaFold order, 20 = unknown (see [`residue`]).
    pub aatype: Vec<u8>,
    /// `[n_res]` chain identifier (author chain id).
    pub chain_ids: Vec<String>,
    /// `[n_res]` author residue number and insertion code.
    pub residue_ids: Vec<ResidueId>,
}

impl Backbone {
    /// Number of residues.
    #[must_use]
    pub fn len(&self) -> usize {
        self.coords.len()
    }

    /// Whether there are no residues.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.coords.is_empty()
    }

    /// A single-chain backbone from full N, CA, C, O coordinates (Å), chain `A`,
    /// residues numbered from 1, all atoms present.
    #[must_use]
    pub fn from_coords(coords: Vec<[[f32; 3]; 4]>, aatype: Vec<u8>) -> Self {
        let n = coords.len();
        Self {
            atom_mask: vec![[true; 4]; n],
            chain_ids: vec!["A".to_string(); n],
            residue_ids: (1..=n as i32).map(ResidueId::new).collect(),
            coords,
            aatype,
        }
    }

    /// A single-chain CA-only trace (Å): only the CA atom is marked present.
    /// Residues are glycine-free unknowns (`X`) unless `aatype` is given.
    #[must_use]
    pub fn from_ca(ca: &[[f32; 3]], aatype: Option<Vec<u8>>) -> Self {
        let n = ca.len();
        let coords = ca.iter().map(|&p| [[0.0; 3], p, [0.0; 3], [0.0; 3]]).collect();
        Self {
            coords,
            atom_mask: vec![[false, true, false, false]; n],
            aatype: aatype.unwrap_or_else(|| vec![residue::UNKNOWN; n]),
            chain_ids: vec!["A".to_string(); n],
            residue_ids: (1..=n as i32).map(ResidueId::new).collect(),
        }
    }

    /// `[n_res][3]` CA positions in Å (zeros where CA is absent; check [`Self::atom_mask`]).
    #[must_use]
    pub fn ca(&self) -> Vec<[f32; 3]> {
        self.coords.iter().map(|r| r[atom::CA]).collect()
    }

    /// Whether every residue has all four backbone atoms.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.atom_mask.iter().all(|m| m.iter().all(|&b| b))
    }

    /// Whether only CA atoms are present (a CA trace).
    #[must_use]
    pub fn is_ca_only(&self) -> bool {
        self.atom_mask.iter().all(|m| m[atom::CA] && !m[atom::N] && !m[atom::C] && !m[atom::O])
    }

    /// One-letter sequence (`X` for unknown).
    #[must_use]
    pub fn sequence(&self) -> String {
        self.aatype.iter().map(|&a| residue::one_from_aatype(a)).collect()
    }

    /// Distinct chain ids in order of first appearance.
    #[must_use]
    pub fn chains(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.chain_ids {
            if out.last() != Some(c) && !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// The sub-backbone of the residues selected by `keep` (same length as `self`).
    #[must_use]
    pub fn select(&self, keep: impl Fn(usize) -> bool) -> Self {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| keep(i)).collect();
        Self {
            coords: idx.iter().map(|&i| self.coords[i]).collect(),
            atom_mask: idx.iter().map(|&i| self.atom_mask[i]).collect(),
            aatype: idx.iter().map(|&i| self.aatype[i]).collect(),
            chain_ids: idx.iter().map(|&i| self.chain_ids[i].clone()).collect(),
            residue_ids: idx.iter().map(|&i| self.residue_ids[i]).collect(),
        }
    }

    /// The residues of one chain, or `None` if the chain id does not occur.
    #[must_use]
    pub fn chain(&self, id: &str) -> Option<Self> {
        if !self.chain_ids.iter().any(|c| c == id) {
            return None;
        }
        Some(self.select(|i| self.chain_ids[i] == id))
    }

    /// Residue range `[start, end)` as a new backbone.
    #[must_use]
    pub fn slice(&self, start: usize, end: usize) -> Self {
        self.select(|i| i >= start && i < end)
    }
}
