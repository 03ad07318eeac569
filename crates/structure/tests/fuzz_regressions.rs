//! Replays inputs found by `cargo fuzz` (`tests/fixtures/fuzz_regressions/`): every one must
//! produce `Ok` or a one-line `StructureError`, never a panic.
//! `structure_*` files go through the PDB and mmCIF readers, `xtc_*` files through the XTC
//! and DCD decoders.

#![allow(clippy::unwrap_used)]

mod common;

use protforge_structure::io::{Format, ReadOptions, read_backbone_bytes};
use protforge_structure::trajectory::{dcd, xtc};

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = common::fixture("fuzz_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let mut messages = Vec::new();
        if name.starts_with("structure_") {
            for format in [Format::Pdb, Format::Mmcif] {
                if let Err(e) = read_backbone_bytes(&bytes, format, &ReadOptions::default()) {
                    messages.push(e.to_string());
                }
            }
        } else if name.starts_with("xtc_") {
            if let Err(e) = xtc::read_xtc_bytes(&bytes, &path) {
                messages.push(e.to_string());
            }
            if let Err(e) = dcd::read_dcd_bytes(&bytes, &path) {
                messages.push(e.to_string());
            }
        } else {
            continue;
        }
        for m in messages {
            assert!(!m.contains('\n'), "{name}: {m}");
        }
        n += 1;
    }
    // The directory exists and is scanned even when no crash has been found yet.
    assert!(dir.is_dir());
    let _ = n;
}

/// Known panics inside the third-party parsers are caught at our boundary.
#[test]
fn third_party_panics_are_caught() {
    let cif = std::fs::read(common::fixture("fuzz_regressions/structure_nan_x_mmcif.cif")).unwrap();
    let e = read_backbone_bytes(&cif, Format::Mmcif, &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, protforge_structure::StructureError::ParserPanic { .. }), "{e}");
    let p = common::fixture("fuzz_regressions/xtc_smallidx_zero.xtc");
    let e = xtc::read_xtc_bytes(&std::fs::read(&p).unwrap(), &p).unwrap_err();
    assert!(e.to_string().contains("xtc_smallidx_zero.xtc"), "{e}");
}
