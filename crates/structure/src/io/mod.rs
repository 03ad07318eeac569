//! Structure file I/O: PDB and mmCIF (optionally gzipped) → [`Backbone`], and back.
//!
//! Reading goes through pdbtbx 0.12 at `Loose` strictness, after our own checks (empty,
//! binary, truncated records) and sanitising of MD-style PDB files. Rules:
//! - all chains in file order, or one chain with [`ReadOptions::chain`];
//! - the first model and the first alternate location only;
//! - modified residues map to their parent ([`crate::residue::aatype_from_three`], MSE → MET);
//!   waters, ligands and nucleotides are skipped;
//! - a residue missing some of N, CA, C, O is kept, the missing atoms masked (coordinates 0);
//! - insertion codes are kept in [`crate::ResidueId`];
//! - NaN, infinite or huge (> [`crate::error::MAX_ABS_COORD`] Å) coordinates are an error;
//! - pdbtbx warnings are returned in [`ReadOutput::warnings`], one line each.
//!
//! pdbtbx can panic on malformed input; such panics are caught here and reported as
//! [`StructureError::ParserPanic`] (see the `guard` module for the panic-hook handling).
//!
//! Writing uses our own fixed-column PDB formatter and a minimal mmCIF `_atom_site` loop;
//! both are written atomically (temporary file + rename).
//!
//! ```no_run
//! use protforge_structure::io::{read_backbone, write_pdb, ReadOptions};
//! # fn main() -> Result<(), protforge_structure::StructureError> {
//! let out = read_backbone("1ubq.pdb".as_ref(), &ReadOptions { chain: Some("A".into()) })?;
//! write_pdb("copy.pdb".as_ref(), &out.backbone)?;
//! # Ok(()) }
//! ```

mod guard;
mod read;
mod text;
mod write;

use std::path::Path;

use crate::backbone::Backbone;
use crate::error::StructureError;

pub(crate) use guard::catch as catch_panic;
pub(crate) use read::{extract_model, parse_bytes};
pub(crate) use write::{PDB_COORD_MAX, PDB_COORD_MIN, check_coords, check_lengths, check_pdb_ids, pdb_models_string};
pub use write::{check_pdb_writable, mmcif_string, pdb_string, write_atomic, write_file_atomic};

/// Structure file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// wwPDB fixed-column format (`.pdb`, `.ent`).
    Pdb,
    /// PDBx/mmCIF (`.cif`, `.mmcif`, `.pdbx`).
    Mmcif,
}

impl Format {
    /// Format implied by a file name: `.pdb .ent .cif .mmcif .pdbx`, each optionally
    /// followed by `.gz` (case-insensitive). `None` for anything else.
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Self> {
        text::format_from_extension(path)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pdb => "PDB",
            Self::Mmcif => "mmCIF",
        })
    }
}

/// Options for [`read_backbone`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Keep only this author chain id; `None` keeps all protein chains.
    pub chain: Option<String>,
}

/// The result of reading a structure.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutput {
    /// The protein backbone (Å).
    pub backbone: Backbone,
    /// Non-fatal problems (pdbtbx warnings and our sanitising steps), one line each.
    pub warnings: Vec<String>,
}

/// A structure used as the topology of a trajectory: the backbone plus, for each backbone
/// atom, its 0-based index among **all** atoms of the file's first model in file order
/// (hydrogens, waters, ions and ligands included), which is how MD engines and XTC/DCD
/// files number atoms.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The protein backbone (Å), first model.
    pub backbone: Backbone,
    /// `[n_res][4]` atom index of N, CA, C, O; `None` where the atom is masked.
    pub atom_index: Vec<[Option<usize>; 4]>,
    /// Total number of atoms in the first model.
    pub n_atoms: usize,
    /// Non-fatal problems, one line each.
    pub warnings: Vec<String>,
}

/// Label used as the "path" of in-memory input in errors.
pub const MEMORY_LABEL: &str = "<memory>";

/// Read the protein backbone of a PDB or mmCIF file (optionally gzipped).
///
/// The format comes from the extension (see [`Format::from_path`]); for other names the
/// content decides (`data_` first → mmCIF, PDB records → PDB). Gzip is detected by its magic
/// number.
///
/// # Errors
/// [`StructureError`] naming `path`: `Io` (missing/unreadable), `Empty`, `NotText`,
/// `UnsupportedFormat`, `Truncated`, `Parse`, `ParserPanic`, `BadCoordinates`,
/// `NoProtein`, `UnknownChain`.
pub fn read_backbone(path: &Path, opts: &ReadOptions) -> Result<ReadOutput, StructureError> {
    let bytes = text::load(path)?;
    read_impl(&bytes, Format::from_path(path), path, opts)
}

/// [`read_backbone`] on in-memory bytes (plain or gzipped) of the given format.
/// Errors name [`MEMORY_LABEL`] as the path.
///
/// # Errors
/// As [`read_backbone`], without `Io`.
pub fn read_backbone_bytes(bytes: &[u8], format: Format, opts: &ReadOptions) -> Result<ReadOutput, StructureError> {
    read_impl(bytes, Some(format), Path::new(MEMORY_LABEL), opts)
}

fn read_impl(bytes: &[u8], format: Option<Format>, path: &Path, opts: &ReadOptions) -> Result<ReadOutput, StructureError> {
    let topo = topology_impl(bytes, format, path, opts)?;
    Ok(ReadOutput { backbone: topo.backbone, warnings: topo.warnings })
}

/// Read a structure as a trajectory topology: the backbone and the atom index of each
/// backbone atom (see [`Topology`]).
///
/// # Errors
/// As [`read_backbone`]; additionally [`StructureError::Mismatch`] when atom serial numbers
/// repeat, since atoms could then not be matched to trajectory indices.
pub fn read_topology(path: &Path, opts: &ReadOptions) -> Result<Topology, StructureError> {
    let bytes = text::load(path)?;
    topology_impl(&bytes, Format::from_path(path), path, opts)
}

fn topology_impl(bytes: &[u8], format: Option<Format>, path: &Path, opts: &ReadOptions) -> Result<Topology, StructureError> {
    let parsed = parse_bytes(bytes, format, path, true)?;
    let mut warnings = parsed.warnings;
    let Some(model) = parsed.pdb.models().next() else {
        return Err(StructureError::NoProtein { path: path.to_path_buf() });
    };
    let ex = extract_model(model, path)?;
    warnings.extend(ex.warnings);
    if ex.duplicate_serials {
        warnings.push("atom serial numbers repeat; trajectory atom indices are unreliable".to_string());
    }
    let (backbone, keep) = read::select_chain(ex.backbone, opts.chain.as_deref(), path)?;
    let atom_index = ex.atom_index.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(a, _)| a).collect();
    Ok(Topology { backbone, atom_index, n_atoms: ex.n_atoms, warnings })
}

/// Write `bb` as PDB (see [`pdb_string`]) atomically; a `.gz` name is gzip-compressed.
///
/// # Errors
/// [`StructureError::Unwritable`] / [`StructureError::BadCoordinates`] when `bb` does not fit
/// PDB columns (see [`check_pdb_writable`]); [`StructureError::Io`] naming `path`.
pub fn write_pdb(path: &Path, bb: &Backbone) -> Result<(), StructureError> {
    check_pdb_writable(bb, path)?;
    write_atomic(path, pdb_string(bb).as_bytes())
}

/// Write `bb` as mmCIF (see [`mmcif_string`]) atomically; a `.gz` name is gzip-compressed.
///
/// # Errors
/// [`StructureError::Unwritable`] for inconsistent arrays, [`StructureError::BadCoordinates`]
/// for non-finite or huge coordinates, [`StructureError::Io`] naming `path`.
pub fn write_mmcif(path: &Path, bb: &Backbone) -> Result<(), StructureError> {
    check_lengths(bb, path)?;
    check_coords(bb, &bb.coords, path, -crate::error::MAX_ABS_COORD, crate::error::MAX_ABS_COORD)?;
    write_atomic(path, mmcif_string(bb).as_bytes())
}

/// Write `bb` in the format implied by the extension of `path` (see [`Format::from_path`]).
///
/// # Errors
/// [`StructureError::UnsupportedFormat`] for other extensions, else as [`write_pdb`] /
/// [`write_mmcif`].
pub fn write_structure(path: &Path, bb: &Backbone) -> Result<(), StructureError> {
    match Format::from_path(path) {
        Some(Format::Pdb) => write_pdb(path, bb),
        Some(Format::Mmcif) => write_mmcif(path, bb),
        None => Err(StructureError::UnsupportedFormat {
            path: path.to_path_buf(),
            detail: "expected .pdb/.ent/.cif/.mmcif/.pdbx (optionally .gz)".to_string(),
        }),
    }
}
