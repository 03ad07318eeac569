//! Residue vocabulary: the 20 standard amino acids in AlphaFold order plus `X`.
//!
//! The integer code (`aatype`) is the index into [`RESTYPES`]; 20 is unknown (`X`).
//! This is the order used by AlphaFold/OpenFold `residue_constants.restypes`, ProteinMPNN
//! uses a different (alphabetical) order, so convert at that boundary, not here.

/// One-letter codes in AlphaFold order. Index = `aatype`.
pub const RESTYPES: [char; 20] = [
    'A', 'R', 'N', 'D', 'C', 'Q', 'E', 'G', 'H', 'I', 'L', 'K', 'M', 'F', 'P', 'S', 'T', 'W', 'Y', 'V',
];

/// Three-letter codes in the same order as [`RESTYPES`].
pub const RESTYPES_3: [&str; 20] = [
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE",
    "PRO", "SER", "THR", "TRP", "TYR", "VAL",
];

/// `aatype` of an unknown residue (`X`, written as `UNK`).
pub const UNKNOWN: u8 = 20;

/// Backbone atom names in storage order: index 0..4 of every residue's atom array.
pub const BACKBONE_ATOMS: [&str; 4] = ["N", "CA", "C", "O"];

/// `aatype` from a one-letter code; anything else is [`UNKNOWN`].
#[must_use]
pub fn aatype_from_one(c: char) -> u8 {
    let c = c.to_ascii_uppercase();
    RESTYPES.iter().position(|&r| r == c).map_or(UNKNOWN, |i| i as u8)
}

/// One-letter code of an `aatype`; out of range is `X`.
#[must_use]
pub fn one_from_aatype(a: u8) -> char {
    RESTYPES.get(a as usize).copied().unwrap_or('X')
}

/// Three-letter code of an `aatype`; out of range is `UNK`.
#[must_use]
pub fn three_from_aatype(a: u8) -> &'static str {
    RESTYPES_3.get(a as usize).copied().unwrap_or("UNK")
}

/// Map a residue name from a PDB/mmCIF file to an `aatype`.
///
/// Standard names map directly. Common modified residues map to their parent, as PDB's
/// `_pdbx_struct_mod_residue` does (MSE → MET, and a few frequent others).
/// Returns `None` for names that are not amino acids at all (waters, ligands, nucleotides),
/// which the reader then skips.
#[must_use]
pub fn aatype_from_three(name: &str) -> Option<u8> {
    let upper = name.trim().to_ascii_uppercase();
    let parent = match upper.as_str() {
        "MSE" => "MET",
        "SEP" => "SER",
        "TPO" => "THR",
        "PTR" => "TYR",
        "HIE" | "HID" | "HIP" | "HSD" | "HSE" | "HSP" => "HIS",
        "CYX" | "CYM" => "CYS",
        "ASH" => "ASP",
        "GLH" => "GLU",
        "LYN" => "LYS",
        "MLY" | "M3L" => "LYS",
        "CSO" | "CME" => "CYS",
        "HYP" => "PRO",
        other => other,
    };
    if parent == "UNK" {
        return Some(UNKNOWN);
    }
    RESTYPES_3.iter().position(|&r| r == parent).map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (i, (&one, &three)) in RESTYPES.iter().zip(RESTYPES_3.iter()).enumerate() {
            assert_eq!(aatype_from_one(one), i as u8);
            assert_eq!(one_from_aatype(i as u8), one);
            assert_eq!(aatype_from_three(three), Some(i as u8));
            assert_eq!(three_from_aatype(i as u8), three);
        }
    }

    #[test]
    fn modified_and_foreign_residues() {
        assert_eq!(aatype_from_three("MSE"), aatype_from_three("MET"));
        assert_eq!(aatype_from_three("HOH"), None);
        assert_eq!(aatype_from_three("NAG"), None);
        assert_eq!(aatype_from_three("UNK"), Some(UNKNOWN));
        assert_eq!(aatype_from_one('z'), UNKNOWN);
    }
}
