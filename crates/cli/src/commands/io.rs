//! Reading structures for the commands: one place that turns library errors into one-line,
//! file-naming messages.

use protforge_structure::io::{ReadOptions, read_backbone};
use protforge_structure::Backbone;
use std::path::Path;

/// Whether a file name looks like a structure file we read (.pdb .ent .cif .mmcif .pdbx, optionally .gz).
pub(crate) fn is_structure_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".pdb", ".ent", ".cif", ".mmcif", ".pdbx"].iter().any(|ext| name.ends_with(ext))
}

/// Read a backbone (optionally one chain). Parse warnings are dropped here; `inspect` shows them.
pub(crate) fn read_structure(path: &Path, chain: Option<&str>) -> anyhow::Result<Backbone> {
    let opts = ReadOptions { chain: chain.map(str::to_string) };
    // Library errors already name the file and the problem.
    let out = read_backbone(path, &opts)?;
    Ok(out.backbone)
}
