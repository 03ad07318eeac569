//! PDB/mmCIF → [`Backbone`] through pdbtbx (the only pdbtbx user in the workspace).

use std::collections::BTreeMap;
use std::path::Path;

use crate::backbone::{Backbone, ResidueId};
use crate::error::{MAX_ABS_COORD, StructureError};
use crate::io::{Format, guard, text};
use crate::residue;

/// Alternative names accepted for the carbonyl O when `O` itself is absent
/// (C-terminal oxygens in CHARMM `OT1`, GROMACS `OC1`/`O1`).
const O_FALLBACKS: [&str; 3] = ["OT1", "OC1", "O1"];

/// A parsed file: pdbtbx's structure plus our and pdbtbx's warnings.
pub(crate) struct Parsed {
    pub(crate) pdb: pdbtbx::PDB,
    pub(crate) warnings: Vec<String>,
}

/// Decode (gzip), check and parse `bytes`. `format` is the format implied by the file name,
/// if any; content sniffing decides otherwise, and overrides a `.pdb` name holding mmCIF.
pub(crate) fn parse_bytes(
    bytes: &[u8],
    format: Option<Format>,
    path: &Path,
    first_model_only: bool,
) -> Result<Parsed, StructureError> {
    if bytes.is_empty() {
        return Err(StructureError::Empty { path: path.to_path_buf() });
    }
    let decoded = text::gunzip(bytes, path)?;
    let content = text::as_text(&decoded, path)?;
    let sniffed = text::sniff_format(content);
    let mut warnings = Vec::new();
    let format = match (format, sniffed) {
        (Some(f), Some(s)) if f != s => {
            warnings.push(format!("file name suggests {f} but content is {s}; reading as {s}"));
            s
        }
        (Some(f), _) => f,
        (None, Some(s)) => s,
        (None, None) => {
            return Err(StructureError::UnsupportedFormat {
                path: path.to_path_buf(),
                detail: "expected .pdb/.ent/.cif/.mmcif/.pdbx (optionally .gz) or PDB/mmCIF content"
                    .to_string(),
            });
        }
    };
    let sanitised;
    let input: &str = match format {
        Format::Pdb => {
            sanitised = text::sanitise_pdb(content, path)?;
            warnings.extend(sanitised.warnings.iter().cloned());
            if sanitised.n_atom_records == 0 {
                return Err(StructureError::parse(path, "no ATOM or HETATM records"));
            }
            &sanitised.text
        }
        Format::Mmcif => content,
    };
    let mut opts = pdbtbx::ReadOptions::new();
    opts.set_level(pdbtbx::StrictnessLevel::Loose)
        .set_format(match format {
            Format::Pdb => pdbtbx::Format::Pdb,
            Format::Mmcif => pdbtbx::Format::Mmcif,
        })
        .set_only_first_model(first_model_only)
        // Only ATOM/HETATM/MODEL/ENDMDL/TER/END (PDB): header records (CRYST1, DBREF, SEQRES...)
        // are not needed and make pdbtbx fail on many real files (e.g. a CRYST1 without Z).
        .set_only_atomic_coords(true);
    let result = guard::catch(path, || opts.read_raw(std::io::BufReader::new(input.as_bytes())))?;
    match result {
        Ok((pdb, pdb_warnings)) => {
            warnings.extend(summarise(&pdb_warnings));
            Ok(Parsed { pdb, warnings })
        }
        Err(errors) => {
            let e = breaking_error(&errors, path, format);
            // A file that does not end in a newline and fails to parse was most likely cut.
            if !content.ends_with('\n') && matches!(e, StructureError::Parse { .. }) {
                return Err(StructureError::Truncated {
                    path: path.to_path_buf(),
                    detail: format!("no final newline, and {}", e.to_string().split_once(": ").map_or("", |x| x.1)),
                });
            }
            Err(e)
        }
    }
}

/// Turn pdbtbx's breaking errors into one [`StructureError::Parse`] (the most severe first).
fn breaking_error(errors: &[pdbtbx::PDBError], path: &Path, format: Format) -> StructureError {
    let Some(worst) = errors.iter().min_by_key(|e| e.level()) else {
        return StructureError::parse(path, format!("{format} parser failed without a message"));
    };
    let more = if errors.len() > 1 { format!(" (+{} more)", errors.len() - 1) } else { String::new() };
    let message = format!("{}: {}{more}", worst.short_description(), one_line(worst.long_description()));
    let line = context_line(worst.context());
    // A cut mmCIF loop or missing data block usually surfaces as "end of file" style errors.
    let lower = message.to_ascii_lowercase();
    if lower.contains("end of file") || lower.contains("unexpected end") || lower.contains("eof") {
        return StructureError::Truncated { path: path.to_path_buf(), detail: message };
    }
    StructureError::Parse { path: path.to_path_buf(), line, message }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1-based line number of a pdbtbx error context, when it has one.
fn context_line(c: &pdbtbx::Context) -> Option<usize> {
    match c {
        pdbtbx::Context::FullLine { linenumber, .. } | pdbtbx::Context::Line { linenumber, .. } => {
            Some(*linenumber)
        }
        pdbtbx::Context::Range { start_linenumber, .. }
        | pdbtbx::Context::RangeHighlights { start_linenumber, .. } => Some(*start_linenumber),
        pdbtbx::Context::Multiple { contexts } => contexts.iter().find_map(|(_, c)| context_line(c)),
        _ => None,
    }
}

/// pdbtbx warnings as one line each, identical descriptions grouped with a count and the
/// first line number.
fn summarise(warnings: &[pdbtbx::PDBError]) -> Vec<String> {
    let mut groups: BTreeMap<(String, String), (usize, Option<usize>)> = BTreeMap::new();
    let mut order = Vec::new();
    for w in warnings {
        let key = (w.level().descriptor().to_string(), w.short_description().to_string());
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (0, context_line(w.context()))
        });
        entry.0 += 1;
    }
    order
        .into_iter()
        .map(|key| {
            let (count, line) = groups[&key];
            let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
            let times = if count > 1 { format!(" ({count} times)") } else { String::new() };
            format!("{}: {}{at}{times}", key.0, key.1)
        })
        .collect()
}

/// A backbone plus, per backbone atom, its 0-based index among all atoms of the model in
/// file order (including hydrogens, waters, ligands), as MD engines number atoms.
pub(crate) struct Extracted {
    pub(crate) backbone: Backbone,
    pub(crate) atom_index: Vec<[Option<usize>; 4]>,
    pub(crate) n_atoms: usize,
    pub(crate) duplicate_serials: bool,
    pub(crate) warnings: Vec<String>,
}

/// Label for error messages, e.g. `A:MET 12`.
fn residue_label(chain: &str, name: &str, id: ResidueId) -> String {
    format!("{chain}:{name} {id}")
}

/// Extract the protein backbone of one pdbtbx model.
///
/// Rules: chains in file order; residues whose name is not an amino acid
/// ([`residue::aatype_from_three`] is `None`) are skipped; the first alternate location of
/// each atom is used; absent backbone atoms are masked (coordinates zero); a residue with
/// none of N, CA, C, O is skipped with a warning.
pub(crate) fn extract_model(model: &pdbtbx::Model, path: &Path) -> Result<Extracted, StructureError> {
    // pdbtbx copies atoms without alt-loc into every alt-loc conformer of their residue, so
    // the same file atom can appear more than once: identify atoms by serial, name and
    // position to count them.
    let mut atoms: Vec<(usize, &str, [u64; 3])> = model
        .atoms()
        .map(|a| {
            let (x, y, z) = a.pos();
            (a.serial_number(), a.name(), [x.to_bits(), y.to_bits(), z.to_bits()])
        })
        .collect();
    atoms.sort_unstable();
    atoms.dedup();
    let n_atoms = atoms.len();
    let mut serials: Vec<usize> = atoms.iter().map(|a| a.0).collect();
    serials.dedup();
    let duplicate_serials = serials.len() != n_atoms;

    let mut bb = Backbone::default();
    let mut atom_index = Vec::new();
    let mut skipped_empty = Vec::new();
    for chain in model.chains() {
        for res in chain.residues() {
            let Some(first) = res.conformers().next() else { continue };
            let name = first.name();
            let (number, insertion) = res.id();
            let id = ResidueId {
                number: i32::try_from(number).map_err(|_| {
                    StructureError::parse(path, format!("residue number {number} out of range in chain {}", chain.id()))
                })?,
                insertion: insertion.and_then(|s| s.trim().chars().next()),
            };
            // Check every atom of every residue (also ligands and waters) for bad values.
            for atom in res.atoms() {
                check_position(atom.pos(), path, || residue_label(chain.id(), name, id))?;
            }
            let Some(aatype) = residue::aatype_from_three(name) else { continue };
            let mut xyz = [[0.0f32; 3]; 4];
            let mut mask = [false; 4];
            let mut index = [None; 4];
            for (k, atom_name) in residue::BACKBONE_ATOMS.iter().enumerate() {
                let fallbacks: &[&str] = if k == crate::atom::O { &O_FALLBACKS } else { &[] };
                let found = std::iter::once(*atom_name)
                    .chain(fallbacks.iter().copied())
                    .find_map(|n| res.conformers().flat_map(pdbtbx::Conformer::atoms).find(|a| a.name() == n));
                if let Some(atom) = found {
                    let (x, y, z) = atom.pos();
                    xyz[k] = [x as f32, y as f32, z as f32];
                    mask[k] = true;
                    index[k] = serials.binary_search(&atom.serial_number()).ok();
                }
            }
            if !mask.iter().any(|&m| m) {
                skipped_empty.push(residue_label(chain.id(), name, id));
                continue;
            }
            bb.coords.push(xyz);
            bb.atom_mask.push(mask);
            bb.aatype.push(aatype);
            bb.chain_ids.push(chain.id().to_string());
            bb.residue_ids.push(id);
            atom_index.push(index);
        }
    }
    let mut warnings = Vec::new();
    if !skipped_empty.is_empty() {
        let more = if skipped_empty.len() > 5 { format!(" and {} more", skipped_empty.len() - 5) } else { String::new() };
        warnings.push(format!(
            "skipped amino-acid residue(s) without any backbone atom: {}{more}",
            skipped_empty[..skipped_empty.len().min(5)].join(", ")
        ));
    }
    Ok(Extracted { backbone: bb, atom_index, n_atoms, duplicate_serials, warnings })
}

/// Reject NaN, infinite or huge (|x| > [`MAX_ABS_COORD`] Å) coordinates.
fn check_position(
    (x, y, z): (f64, f64, f64),
    path: &Path,
    label: impl Fn() -> String,
) -> Result<(), StructureError> {
    for (axis, v) in [("x", x), ("y", y), ("z", z)] {
        if !v.is_finite() || v.abs() > f64::from(MAX_ABS_COORD) {
            return Err(StructureError::BadCoordinates {
                path: path.to_path_buf(),
                residue: label(),
                detail: format!("{axis} = {v} (must be finite and |{axis}| <= {MAX_ABS_COORD} Å)"),
            });
        }
    }
    Ok(())
}

/// Protein chains of `bb` in order, and the chain filter applied.
pub(crate) fn select_chain(bb: Backbone, chain: Option<&str>, path: &Path) -> Result<(Backbone, Vec<bool>), StructureError> {
    if bb.is_empty() {
        return Err(StructureError::NoProtein { path: path.to_path_buf() });
    }
    let Some(id) = chain else {
        let n = bb.len();
        return Ok((bb, vec![true; n]));
    };
    let keep: Vec<bool> = bb.chain_ids.iter().map(|c| c == id).collect();
    if !keep.iter().any(|&k| k) {
        return Err(StructureError::UnknownChain {
            path: path.to_path_buf(),
            chain: id.to_string(),
            available: bb.chains(),
        });
    }
    Ok((bb.select(|i| keep[i]), keep))
}
