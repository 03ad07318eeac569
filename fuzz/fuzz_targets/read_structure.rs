//! Fuzz the PDB/mmCIF reader: arbitrary bytes must give `Ok` or a `StructureError`, never a
//! panic. Whatever reads successfully and fits PDB columns must also survive a write and a
//! re-read with the same number of residues.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protforge_structure::io::{self, Format, ReadOptions, read_backbone_bytes};

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions::default();
    for format in [Format::Pdb, Format::Mmcif] {
        if let Ok(out) = read_backbone_bytes(data, format, &opts) {
            let bb = out.backbone;
            if io::check_pdb_writable(&bb, "fuzz.pdb".as_ref()).is_ok() {
                let text = io::pdb_string(&bb);
                let back = read_backbone_bytes(text.as_bytes(), Format::Pdb, &opts)
                    .unwrap_or_else(|e| panic!("our own PDB output failed to read: {e}\n{text}"));
                assert_eq!(back.backbone.len(), bb.len(), "PDB round trip changed the residue count");
            }
            let cif = io::mmcif_string(&bb);
            let back = read_backbone_bytes(cif.as_bytes(), Format::Mmcif, &opts)
                .unwrap_or_else(|e| panic!("our own mmCIF output failed to read: {e}\n{cif}"));
            assert_eq!(back.backbone.len(), bb.len(), "mmCIF round trip changed the residue count");
        }
    }
});
