//! Raw input handling before any parser sees the bytes: loading, gzip, text checks,
//! format detection and the sanitising of MD-style PDB files.

use std::io::Read;
use std::path::Path;

use crate::error::{MAX_ABS_COORD, StructureError};
use crate::io::Format;

/// Largest accepted decompressed size of a gzipped input (2 GiB), a guard against gzip bombs.
pub(crate) const MAX_DECOMPRESSED_BYTES: u64 = 2 << 30;

/// Read a whole file, mapping failures to [`StructureError::Io`].
pub(crate) fn load(path: &Path) -> Result<Vec<u8>, StructureError> {
    std::fs::read(path).map_err(|e| StructureError::io(path, e))
}

/// Whether `bytes` start with the gzip magic number.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompress gzip data (detected by its magic number, whatever the extension).
/// Non-gzip input is returned borrowed.
pub(crate) fn gunzip<'a>(bytes: &'a [u8], path: &Path) -> Result<std::borrow::Cow<'a, [u8]>, StructureError> {
    if !is_gzip(bytes) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(bytes);
    match decoder.take(MAX_DECOMPRESSED_BYTES + 1).read_to_end(&mut out) {
        Ok(n) if n as u64 > MAX_DECOMPRESSED_BYTES => Err(StructureError::parse(
            path,
            format!("gzip content exceeds {} bytes", MAX_DECOMPRESSED_BYTES),
        )),
        Ok(_) => Ok(std::borrow::Cow::Owned(out)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(StructureError::Truncated {
            path: path.to_path_buf(),
            detail: "gzip stream ends early".to_string(),
        }),
        Err(e) => Err(StructureError::parse(path, format!("invalid gzip data: {e}"))),
    }
}

/// Check that `bytes` are non-empty UTF-8 text without NUL bytes.
pub(crate) fn as_text<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, StructureError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(StructureError::Empty { path: path.to_path_buf() });
    }
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(StructureError::NotText {
            path: path.to_path_buf(),
            offset,
            detail: "NUL byte".to_string(),
        });
    }
    std::str::from_utf8(bytes).map_err(|e| StructureError::NotText {
        path: path.to_path_buf(),
        offset: e.valid_up_to(),
        detail: "invalid UTF-8".to_string(),
    })
}

/// Format from the file name: `.pdb .ent .cif .mmcif .pdbx`, each optionally followed by `.gz`
/// (case-insensitive).
pub(crate) fn format_from_extension(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let ext = Path::new(name).extension()?.to_str()?;
    match ext {
        "pdb" | "ent" | "pdb1" => Some(Format::Pdb),
        "cif" | "mmcif" | "pdbx" => Some(Format::Mmcif),
        _ => None,
    }
}

/// Format from content: a first meaningful line `data_...` means mmCIF; PDB record names
/// at the start of a line mean PDB.
pub(crate) fn sniff_format(text: &str) -> Option<Format> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?;
    if first.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data_")) {
        return Some(Format::Mmcif);
    }
    const PDB_RECORDS: [&str; 8] = ["ATOM  ", "HETATM", "HEADER", "MODEL ", "REMARK", "CRYST1", "TITLE ", "COMPND"];
    let looks_pdb = text.lines().take(10_000).any(|l| {
        PDB_RECORDS.iter().any(|r| l.starts_with(r) || (l.len() < 6 && r.trim_end() == l.trim_end()))
    });
    looks_pdb.then_some(Format::Pdb)
}

/// Result of [`sanitise_pdb`].
pub(crate) struct Sanitised {
    /// Text safe to hand to pdbtbx; line numbers are preserved.
    pub(crate) text: String,
    /// What was changed, one line each.
    pub(crate) warnings: Vec<String>,
    /// Number of ATOM/HETATM records.
    pub(crate) n_atom_records: usize,
}

/// Minimum length of an ATOM/HETATM record: the z coordinate ends at column 54.
const MIN_ATOM_LINE: usize = 54;

/// Whether pdbtbx accepts `c` in identifiers (printable ASCII).
fn printable(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Make PDB text, including MD-style files (CHARMM, GROMACS, VMD, MDAnalysis), acceptable
/// to pdbtbx at `Loose` strictness (RUST-NOTES §3). Line numbers are preserved.
/// - free-text `REMARK` lines without a remark number are blanked;
/// - `MODEL` records without a valid number are numbered in order;
/// - every line is right-padded to 80 columns (MD files omit the element columns);
/// - characters outside printable ASCII (invalid in PDB, and a panic in pdbtbx's atom
///   constructor) are replaced by `?`, one per character so columns stay aligned;
/// - coordinates, occupancy and B-factor of `ATOM`/`HETATM` records are checked here, so a
///   NaN or huge value gets a clear error instead of a parser failure.
///
/// # Errors
/// - an `ATOM`/`HETATM` record shorter than 54 columns (its coordinates are cut):
///   [`StructureError::Truncated`] when it is the unterminated last line, else
///   [`StructureError::Parse`] with its line number;
/// - an unparsable number: [`StructureError::Parse`];
/// - a non-finite or huge coordinate: [`StructureError::BadCoordinates`].
pub(crate) fn sanitise_pdb(text: &str, path: &Path) -> Result<Sanitised, StructureError> {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut replaced = 0usize;
    let mut n_models = 0usize;
    let mut renumbered_models = 0usize;
    let mut n_atom_records = 0usize;
    let n_lines = text.lines().count();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line: std::borrow::Cow<'_, str> = if raw.chars().all(printable) {
            std::borrow::Cow::Borrowed(raw)
        } else {
            replaced += 1;
            std::borrow::Cow::Owned(raw.chars().map(|c| if printable(c) { c } else { '?' }).collect())
        };
        let record = line.get(..6).unwrap_or(&line);
        if record.starts_with("REMARK") && line.get(7..10).is_none_or(|f| f.trim().parse::<usize>().is_err()) {
            out.push('\n');
            continue;
        }
        if record.starts_with("MODEL") {
            n_models += 1;
            if line.get(6..).is_none_or(|n| n.trim().parse::<usize>().is_err()) {
                out.push_str(&format!("MODEL     {n_models:>4}{:66}\n", ""));
                renumbered_models += 1;
                continue;
            }
        }
        let is_atom = record == "ATOM  "
            || record == "HETATM"
            || (line.len() < 6 && (line.starts_with("ATOM") || line.starts_with("HETAT")));
        if is_atom {
            n_atom_records += 1;
            let cols = line.trim_end().len();
            if cols < MIN_ATOM_LINE {
                if line_no == n_lines && !text.ends_with('\n') {
                    return Err(StructureError::Truncated {
                        path: path.to_path_buf(),
                        detail: format!("last line {line_no} is a cut {} record of {cols} columns", record.trim()),
                    });
                }
                return Err(StructureError::Parse {
                    path: path.to_path_buf(),
                    line: Some(line_no),
                    message: format!("{} record has {cols} columns; coordinates need {MIN_ATOM_LINE}", record.trim()),
                });
            }
            check_atom_numbers(&line, line_no, path)?;
        }
        out.push_str(&line);
        for _ in line.len()..80 {
            out.push(' ');
        }
        out.push('\n');
    }
    let mut warnings = Vec::new();
    if renumbered_models > 0 {
        warnings.push(format!("numbered {renumbered_models} MODEL record(s) that had no valid model number"));
    }
    if replaced > 0 {
        warnings.push(format!("replaced non-printable or non-ASCII characters on {replaced} line(s) by '?'"));
    }
    Ok(Sanitised { text: out, warnings, n_atom_records })
}

/// Check x, y, z (columns 31-54), occupancy (55-60) and B-factor (61-66) of an ATOM/HETATM
/// record (at least 54 columns long, printable ASCII).
fn check_atom_numbers(line: &str, line_no: usize, path: &Path) -> Result<(), StructureError> {
    let label = || {
        format!(
            "{}:{} {}",
            line.get(21..22).unwrap_or("").trim(),
            line.get(17..20).unwrap_or("").trim(),
            line.get(22..27).unwrap_or("").trim()
        )
    };
    let fields = [("x", 30..38, true), ("y", 38..46, true), ("z", 46..54, true), ("occupancy", 54..60, false), ("B-factor", 60..66, false)];
    for (name, cols, is_coord) in fields {
        let Some(field) = line.get(cols) else { continue };
        let field = field.trim();
        if field.is_empty() && !is_coord {
            continue;
        }
        let value: f64 = field.parse().map_err(|_| StructureError::Parse {
            path: path.to_path_buf(),
            line: Some(line_no),
            message: format!("invalid {name} '{field}' for residue {}", label()),
        })?;
        let limit = if is_coord { f64::from(MAX_ABS_COORD) } else { f64::MAX };
        if !value.is_finite() || value.abs() > limit {
            return Err(StructureError::BadCoordinates {
                path: path.to_path_buf(),
                residue: label(),
                detail: format!("{name} = {field} at line {line_no} (must be finite, coordinates within ±{MAX_ABS_COORD} Å)"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        for (name, f) in [
            ("a.pdb", Some(Format::Pdb)),
            ("a.PDB.gz", Some(Format::Pdb)),
            ("pdb1abc.ent.gz", Some(Format::Pdb)),
            ("a.cif", Some(Format::Mmcif)),
            ("a.mmcif.gz", Some(Format::Mmcif)),
            ("a.pdbx", Some(Format::Mmcif)),
            ("a.xyz", None),
            ("a.gz", None),
            ("noext", None),
        ] {
            assert_eq!(format_from_extension(Path::new(name)), f, "{name}");
        }
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff_format("\n# comment\ndata_1ABC\nloop_\n"), Some(Format::Mmcif));
        assert_eq!(sniff_format("HEADER    x\nATOM      1  N   MET A   1"), Some(Format::Pdb));
        assert_eq!(sniff_format("hello world\n"), None);
    }

    #[test]
    fn sanitise_md_pdb() {
        let text = "REMARK    GENERATED BY TRJCONV\r\nREMARK   2 RESOLUTION\nATOM      1  N   MET A   1      11.104   6.134  -6.504\nEND\n";
        let s = sanitise_pdb(text, Path::new("md.pdb")).unwrap();
        let lines: Vec<&str> = s.text.lines().collect();
        assert_eq!(lines.len(), 4, "line numbers preserved");
        assert!(lines.iter().skip(1).all(|l| l.len() == 80));
        assert_eq!(lines[0], "");
        assert_eq!(lines[1].trim_end(), "REMARK   2 RESOLUTION");
        assert_eq!(lines[2].len(), 80);
        assert_eq!(s.n_atom_records, 1);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn cut_atom_line() {
        let text = "ATOM      1  N   MET A   1      11.104   6.134  -6.504\nATOM      2  CA  MET A   1      11.1";
        let e = sanitise_pdb(text, Path::new("t.pdb")).err().unwrap();
        assert!(matches!(e, StructureError::Truncated { .. }), "{e}");
        let text = "ATOM      2  CA  MET A   1      11.1\nEND\n";
        let e = sanitise_pdb(text, Path::new("t.pdb")).err().unwrap();
        assert!(matches!(e, StructureError::Parse { line: Some(1), .. }), "{e}");
    }

    #[test]
    fn binary_and_empty() {
        assert!(matches!(as_text(b"  \n", Path::new("e")), Err(StructureError::Empty { .. })));
        assert!(matches!(as_text(b"AT\0OM", Path::new("b")), Err(StructureError::NotText { offset: 2, .. })));
        assert!(matches!(as_text(&[0x41, 0xff, 0x41], Path::new("b")), Err(StructureError::NotText { offset: 1, .. })));
    }
}
