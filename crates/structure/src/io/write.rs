//! Our own PDB and mmCIF writers, and atomic file output.
//!
//! PDB follows the wwPDB v3.3 fixed columns (pdbtbx's writer is non-standard, RUST-NOTES §3):
//! `HEADER` (so `mkdssp` recognises PDB), `CRYST1 1 1 1` (no crystal), `ATOM` records, `TER`
//! after each chain, `END`. Only atoms present in `atom_mask` are written.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::backbone::Backbone;
use crate::error::StructureError;
use crate::residue;

/// Element symbol of each backbone atom (N, CA, C, O).
const ELEMENTS: [&str; 4] = ["N", "C", "C", "O"];

/// First line of every PDB we write; `mkdssp` needs a HEADER record to accept PDB input.
/// The date and id are fixed placeholders so that output is deterministic.
const HEADER: &str = "HEADER    PROTFORGE BACKBONE                      01-JAN-00   XXXX              ";
/// Unit cell of a structure without crystal (wwPDB convention for NMR/models).
const CRYST1: &str = "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1          ";

/// Smallest and largest coordinate (Å) that fit the PDB `8.3` columns.
pub(crate) const PDB_COORD_MIN: f32 = -999.999;
pub(crate) const PDB_COORD_MAX: f32 = 9999.999;

/// Check that `bb` can be written to PDB columns: chain ids of at most one character,
/// residue numbers in -999..=9999, coordinates of present atoms in [-999.999, 9999.999] Å
/// and finite, consistent array lengths.
///
/// # Errors
/// [`StructureError::Unwritable`] or [`StructureError::BadCoordinates`] naming `path` and
/// the first offending residue.
pub fn check_pdb_writable(bb: &Backbone, path: &Path) -> Result<(), StructureError> {
    check_lengths(bb, path)?;
    check_pdb_ids(bb, path)?;
    check_coords(bb, &bb.coords, path, PDB_COORD_MIN, PDB_COORD_MAX)
}

/// Chain ids and residue numbers of `bb` fit the PDB columns.
pub(crate) fn check_pdb_ids(bb: &Backbone, path: &Path) -> Result<(), StructureError> {
    for i in 0..bb.chain_ids.len().min(bb.residue_ids.len()) {
        let chain = &bb.chain_ids[i];
        if chain.chars().count() > 1 {
            return Err(StructureError::Unwritable {
                path: path.to_path_buf(),
                detail: format!("chain id '{chain}' has more than 1 character (PDB limit); write mmCIF instead"),
            });
        }
        let number = bb.residue_ids[i].number;
        if !(-999..=9999).contains(&number) {
            return Err(StructureError::Unwritable {
                path: path.to_path_buf(),
                detail: format!("residue number {number} in chain '{chain}' does not fit PDB columns (-999..9999)"),
            });
        }
    }
    Ok(())
}

/// Array lengths agree.
pub(crate) fn check_lengths(bb: &Backbone, path: &Path) -> Result<(), StructureError> {
    let n = bb.coords.len();
    if bb.atom_mask.len() != n || bb.aatype.len() != n || bb.chain_ids.len() != n || bb.residue_ids.len() != n {
        return Err(StructureError::Unwritable {
            path: path.to_path_buf(),
            detail: format!(
                "inconsistent backbone arrays: coords {n}, atom_mask {}, aatype {}, chain_ids {}, residue_ids {}",
                bb.atom_mask.len(),
                bb.aatype.len(),
                bb.chain_ids.len(),
                bb.residue_ids.len()
            ),
        });
    }
    Ok(())
}

/// Present atoms of `coords` (laid out like `bb`) are finite and within `[lo, hi]` Å.
pub(crate) fn check_coords(
    bb: &Backbone,
    coords: &[[[f32; 3]; 4]],
    path: &Path,
    lo: f32,
    hi: f32,
) -> Result<(), StructureError> {
    for (i, (res, mask)) in coords.iter().zip(&bb.atom_mask).enumerate() {
        for k in 0..4 {
            if !mask[k] {
                continue;
            }
            if let Some(v) = res[k].iter().find(|v| !v.is_finite() || **v < lo || **v > hi) {
                return Err(StructureError::BadCoordinates {
                    path: path.to_path_buf(),
                    residue: format!(
                        "{}:{} {}",
                        bb.chain_ids[i],
                        residue::three_from_aatype(bb.aatype[i]),
                        bb.residue_ids[i]
                    ),
                    detail: format!("{} coordinate {v} outside [{lo}, {hi}] Å", residue::BACKBONE_ATOMS[k]),
                });
            }
        }
    }
    Ok(())
}

/// Append the ATOM and TER records of one model (`coords` laid out like `bb`).
/// Serial numbers start at 1 and wrap after 99999, as MD tools do.
pub(crate) fn push_pdb_atoms(out: &mut String, bb: &Backbone, coords: &[[[f32; 3]; 4]]) {
    let mut serial = 0usize;
    let n = bb.len().min(coords.len());
    for (i, res_coords) in coords.iter().enumerate().take(n) {
        let resname = residue::three_from_aatype(bb.aatype[i]);
        let chain = bb.chain_ids[i].chars().next().unwrap_or(' ');
        let id = bb.residue_ids[i];
        let icode = id.insertion.unwrap_or(' ');
        for k in 0..4 {
            if !bb.atom_mask[i][k] {
                continue;
            }
            serial += 1;
            let [x, y, z] = res_coords[k];
            // Columns: 1-6 record, 7-11 serial, 13-16 name (1-3 char names start at 14),
            // 17 altLoc, 18-20 resName, 22 chain, 23-26 resSeq, 27 iCode, 31-54 x y z,
            // 55-60 occupancy, 61-66 B, 77-78 element.
            let _ = writeln!(
                out,
                "ATOM  {:>5}  {:<3}{:1}{:>3} {:1}{:>4}{:1}   {:>8.3}{:>8.3}{:>8.3}{:>6.2}{:>6.2}          {:>2}  ",
                serial % 100_000,
                residue::BACKBONE_ATOMS[k],
                ' ',
                resname,
                chain,
                id.number,
                icode,
                x,
                y,
                z,
                1.0,
                0.0,
                ELEMENTS[k],
            );
        }
        let chain_ends = i + 1 == n || bb.chain_ids[i + 1] != bb.chain_ids[i];
        if chain_ends && serial > 0 {
            serial += 1;
            let _ = writeln!(
                out,
                "TER   {:>5}      {:>3} {:1}{:>4}{:1}{:53}",
                serial % 100_000,
                resname,
                chain,
                id.number,
                icode,
                ""
            );
        }
    }
}

/// PDB text of one model, without validation (see [`check_pdb_writable`]): a chain id
/// longer than one character is cut to its first character, and values outside the PDB
/// column ranges overflow their columns. [`crate::io::write_pdb`] validates first.
#[must_use]
pub fn pdb_string(bb: &Backbone) -> String {
    let mut out = String::with_capacity(bb.len() * 4 * 81 + 256);
    out.push_str(HEADER);
    out.push('\n');
    out.push_str(CRYST1);
    out.push('\n');
    push_pdb_atoms(&mut out, bb, &bb.coords);
    out.push_str("END\n");
    out
}

/// Multi-model PDB text: one `MODEL`/`ENDMDL` block per frame (`frames[f]` laid out like `bb`).
#[must_use]
pub(crate) fn pdb_models_string(bb: &Backbone, frames: &[Vec<[[f32; 3]; 4]>]) -> String {
    let mut out = String::with_capacity(frames.len() * (bb.len() * 4 * 81 + 32) + 256);
    out.push_str(HEADER);
    out.push('\n');
    out.push_str(CRYST1);
    out.push('\n');
    for (f, coords) in frames.iter().enumerate() {
        let _ = writeln!(out, "MODEL     {:>4}{:66}", (f + 1) % 10_000, "");
        push_pdb_atoms(&mut out, bb, coords);
        let _ = writeln!(out, "ENDMDL{:74}", "");
    }
    out.push_str("END\n");
    out
}

/// A CIF value, quoted when it would otherwise be misread (blank, reserved words, leading
/// special characters, whitespace).
fn cif_value(s: &str) -> String {
    let needs_quote = s.is_empty()
        || s == "."
        || s == "?"
        || s.starts_with(['_', '#', '$', '\'', '"', ';', '[', ']'])
        || s.chars().any(char::is_whitespace)
        || ["data_", "loop_", "save_", "global_", "stop_"].iter().any(|w| s.to_ascii_lowercase().starts_with(w));
    if !needs_quote {
        s.to_string()
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        format!("\"{s}\"")
    }
}

/// Minimal mmCIF (PDBx) text of `bb`: `_entry`, and an `_atom_site` loop with the columns
/// `group_PDB id type_symbol label_atom_id label_alt_id label_comp_id label_asym_id
/// label_entity_id label_seq_id pdbx_PDB_ins_code Cartn_x/y/z occupancy B_iso_or_equiv
/// auth_seq_id auth_comp_id auth_asym_id auth_atom_id pdbx_PDB_model_num`, followed by
/// `_pdbx_poly_seq_scheme` (one row per residue; `mkdssp` needs it).
///
/// Each chain becomes its own entity and asym id; `label_seq_id` counts residues from 1
/// within a chain; author chain ids and residue numbers are kept in the `auth_*` columns.
/// Coordinates are written with 3 decimals (Å).
#[must_use]
pub fn mmcif_string(bb: &Backbone) -> String {
    let mut out = String::with_capacity(bb.len() * 4 * 90 + 1024);
    out.push_str("data_protforge\n#\n_entry.id protforge\n#\nloop_\n");
    for col in [
        "group_PDB",
        "id",
        "type_symbol",
        "label_atom_id",
        "label_alt_id",
        "label_comp_id",
        "label_asym_id",
        "label_entity_id",
        "label_seq_id",
        "pdbx_PDB_ins_code",
        "Cartn_x",
        "Cartn_y",
        "Cartn_z",
        "occupancy",
        "B_iso_or_equiv",
        "auth_seq_id",
        "auth_comp_id",
        "auth_asym_id",
        "auth_atom_id",
        "pdbx_PDB_model_num",
    ] {
        let _ = writeln!(out, "_atom_site.{col}");
    }
    let mut serial = 0usize;
    for CifResidue { i, entity, seq, label, chain, resname } in cif_residues(bb) {
        let id = bb.residue_ids[i];
        let icode = id.insertion.map_or_else(|| "?".to_string(), |c| cif_value(&c.to_string()));
        for (k, (name, element)) in residue::BACKBONE_ATOMS.iter().zip(ELEMENTS).enumerate() {
            if !bb.atom_mask[i][k] {
                continue;
            }
            serial += 1;
            let [x, y, z] = bb.coords[i][k];
            let _ = writeln!(
                out,
                "ATOM {serial} {element} {name} . {resname} {label} {entity} {seq} {icode} {x:.3} {y:.3} {z:.3} 1.00 0.00 {} {resname} {chain} {name} 1",
                id.number,
            );
        }
    }
    out.push_str("#\n");
    push_poly_seq_scheme(&mut out, bb);
    out
}

/// Append `_pdbx_poly_seq_scheme`, one row per residue. `mkdssp` 4.2 finds no residues in an
/// mmCIF file without it.
fn push_poly_seq_scheme(out: &mut String, bb: &Backbone) {
    out.push_str("loop_\n");
    for col in [
        "asym_id",
        "entity_id",
        "seq_id",
        "mon_id",
        "ndb_seq_num",
        "pdb_seq_num",
        "auth_seq_num",
        "pdb_mon_id",
        "auth_mon_id",
        "pdb_strand_id",
        "pdb_ins_code",
        "hetero",
    ] {
        let _ = writeln!(out, "_pdbx_poly_seq_scheme.{col}");
    }
    for CifResidue { i, entity, seq, label, chain, resname } in cif_residues(bb) {
        let id = bb.residue_ids[i];
        let icode = id.insertion.map_or_else(|| ".".to_string(), |c| cif_value(&c.to_string()));
        let n = id.number;
        let _ = writeln!(out, "{label} {entity} {seq} {resname} {seq} {n} {n} {resname} {resname} {chain} {icode} n");
    }
    out.push_str("#\n");
}

/// mmCIF labels of one residue: entity and `label_seq_id` restart at every chain change.
struct CifResidue {
    i: usize,
    entity: usize,
    seq: usize,
    label: String,
    chain: String,
    resname: &'static str,
}

/// The mmCIF labels of every residue of `bb`, in order (shared by `_atom_site` and
/// `_pdbx_poly_seq_scheme`, which must agree).
fn cif_residues(bb: &Backbone) -> Vec<CifResidue> {
    let (mut entity, mut seq) = (0usize, 0usize);
    (0..bb.len())
        .map(|i| {
            if i == 0 || bb.chain_ids[i] != bb.chain_ids[i - 1] {
                entity += 1;
                seq = 0;
            }
            seq += 1;
            let label = label_asym(entity);
            let chain = if bb.chain_ids[i].is_empty() { label.clone() } else { cif_value(&bb.chain_ids[i]) };
            CifResidue { i, entity, seq, label, chain, resname: residue::three_from_aatype(bb.aatype[i]) }
        })
        .collect()
}

/// mmCIF `label_asym_id` for the n-th chain (1-based): A..Z, AA..ZZ, ...
fn label_asym(n: usize) -> String {
    let mut n = n;
    let mut s = Vec::new();
    while n > 0 {
        let r = (n - 1) % 26;
        s.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Write `bytes` to `path` atomically: into a temporary file in the same directory, then
/// renamed over `path`, so readers never see a partial file. A name ending in `.gz` is
/// gzip-compressed.
///
/// # Errors
/// [`StructureError::Io`] naming `path` (missing directory, permissions, disk full...).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StructureError> {
    let err = |e| StructureError::io(path, e);
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).map_err(err)?;
        return write_file_atomic(path, &enc.finish().map_err(err)?).map_err(err);
    }
    write_file_atomic(path, bytes).map_err(err)
}

/// Write `bytes` to `path` exactly (no compression) through a new temporary file in the same
/// directory, `fsync` and a rename: readers never see a partial file, a full disk never
/// truncates an existing one, and a file another process has memory-mapped is replaced, not
/// overwritten. The temporary file is removed on failure. This is the one atomic writer of the
/// workspace; other crates map its `io::Error` into their own error types.
///
/// # Errors
/// The underlying I/O error (the caller names the path).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::ResidueId;

    fn tiny() -> Backbone {
        let mut bb = Backbone::from_coords(
            vec![
                [[1.0, 2.0, 3.0], [2.5, 2.0, 3.0], [3.0, 3.4, 3.0], [2.4, 4.4, 3.2]],
                [[-4.0, 3.6, 2.9], [5.0, 4.0, 3.0], [6.0, 5.0, 3.0], [-999.0, 9999.0, 0.0]],
            ],
            vec![12, 20],
        );
        bb.residue_ids[1] = ResidueId { number: 2, insertion: Some('A') };
        bb.atom_mask[1][2] = false;
        bb
    }

    #[test]
    fn pdb_columns() {
        let s = pdb_string(&tiny());
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with("HEADER"));
        assert!(lines[1].starts_with("CRYST1"));
        assert_eq!(lines[2], "ATOM      1  N   MET A   1       1.000   2.000   3.000  1.00  0.00           N  ");
        assert_eq!(&lines[3][12..16], " CA ");
        // residue 2: N, CA, O (C masked), UNK, insertion code A
        assert_eq!(&lines[6][17..27], "UNK A   2A");
        assert_eq!(lines.len(), 2 + 4 + 3 + 1 + 1);
        assert_eq!(&lines[8][30..54], "-999.0009999.000   0.000");
        assert!(lines[9].starts_with("TER       8      UNK A   2A"), "{}", lines[9]);
        assert_eq!(lines[10], "END");
        for l in &lines[2..10] {
            assert_eq!(l.len(), 80);
        }
    }

    #[test]
    fn unwritable() {
        let mut bb = tiny();
        bb.chain_ids = vec!["AB".into(); 2];
        let e = check_pdb_writable(&bb, Path::new("x.pdb")).unwrap_err();
        assert!(e.to_string().contains("chain id 'AB'"), "{e}");
        let mut bb = tiny();
        bb.coords[0][0][0] = -1000.0;
        assert!(matches!(check_pdb_writable(&bb, Path::new("x.pdb")), Err(StructureError::BadCoordinates { .. })));
        let mut bb = tiny();
        bb.coords[1][2][0] = f32::NAN; // masked: ignored
        assert!(check_pdb_writable(&bb, Path::new("x.pdb")).is_ok());
    }

    #[test]
    fn label_asym_ids() {
        assert_eq!(label_asym(1), "A");
        assert_eq!(label_asym(26), "Z");
        assert_eq!(label_asym(27), "AA");
    }

    #[test]
    fn cif_quoting() {
        assert_eq!(cif_value("A"), "A");
        assert_eq!(cif_value("."), "'.'");
        assert_eq!(cif_value("a b"), "'a b'");
    }
}
