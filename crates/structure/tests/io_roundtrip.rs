//! Golden round trips: read → write → read on every structure fixture, and PDB → mmCIF → PDB.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

mod common;

use common::fixture;
use protforge_structure::io::{self, ReadOptions, read_backbone};
use protforge_structure::{Backbone, StructureError};

const STRUCTURES: [&str; 7] = [
    "hiv_capsid_ctd_1a8o.pdb",
    "hiv_capsid_ctd_1a8o.cif.gz",
    "altloc_icode_multichain_biopython.pdb",
    "lac_repressor_dna_nmr_1lcd.pdb",
    "ace2_rbd_cryoem_7ddo.pdb.gz",
    "small_domain_2m9i_mdtraj.pdb",
    "small_domain_2m9i_md_style.pdb",
];

/// Same residues, types, chains, ids and masks; present coordinates within `tol` Å.
fn assert_same(a: &Backbone, b: &Backbone, tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    assert_eq!(a.aatype, b.aatype, "{what}: aatype");
    assert_eq!(a.chain_ids, b.chain_ids, "{what}: chains");
    assert_eq!(a.residue_ids, b.residue_ids, "{what}: residue ids");
    assert_eq!(a.atom_mask, b.atom_mask, "{what}: mask");
    for (i, (ra, rb)) in a.coords.iter().zip(&b.coords).enumerate() {
        for k in 0..4 {
            for d in 0..3 {
                assert!((ra[k][d] - rb[k][d]).abs() <= tol, "{what}: residue {i} atom {k}: {:?} vs {:?}", ra[k], rb[k]);
            }
        }
    }
}

fn read(p: &std::path::Path) -> Backbone {
    read_backbone(p, &ReadOptions::default()).unwrap().backbone
}

#[test]
fn read_write_read_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    for name in STRUCTURES {
        let orig = read(&fixture(name));
        for ext in ["pdb", "cif", "pdb.gz"] {
            let out = dir.path().join(format!("{name}.{ext}"));
            io::write_structure(&out, &orig).unwrap();
            let back = read(&out);
            assert_same(&orig, &back, 1e-3, &format!("{name} via {ext}"));
        }
    }
}

#[test]
fn pdb_to_mmcif_to_pdb_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    for name in STRUCTURES {
        let orig = read(&fixture(name));
        let cif = dir.path().join("a.cif");
        io::write_mmcif(&cif, &orig).unwrap();
        let pdb = dir.path().join("b.pdb");
        io::write_pdb(&pdb, &read(&cif)).unwrap();
        let back = read(&pdb);
        assert_same(&orig, &back, 1e-3, name);
        assert_eq!(std::fs::read_to_string(&pdb).unwrap(), io::pdb_string(&orig), "{name}: PDB text is stable");
    }
}

#[test]
fn masked_atoms_are_not_written() {
    let mut bb = read(&fixture("small_domain_2m9i_mdtraj.pdb"));
    bb.atom_mask[3] = [false, true, false, false];
    let text = io::pdb_string(&bb);
    assert_eq!(text.lines().filter(|l| l.starts_with("ATOM")).count(), 34 * 4 - 3);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("masked.pdb");
    io::write_pdb(&p, &bb).unwrap();
    let back = read(&p);
    assert_eq!(back.atom_mask[3], [false, true, false, false]);
    assert_eq!(back.coords[3][0], [0.0; 3]);
}

#[test]
fn ca_only_trace_round_trips() {
    let ca: Vec<[f32; 3]> = (0..12).map(|i| [3.8 * i as f32, (i % 2) as f32, 0.5]).collect();
    let bb = Backbone::from_ca(&ca, None);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.pdb");
    io::write_pdb(&p, &bb).unwrap();
    let back = read(&p);
    assert!(back.is_ca_only());
    assert_eq!(back.sequence(), "XXXXXXXXXXXX");
    assert_same(&bb, &back, 1e-3, "CA trace");
}

#[test]
fn write_errors_name_the_file() {
    let mut bb = read(&fixture("small_domain_2m9i_mdtraj.pdb"));
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no/such/dir/out.pdb");
    let e = io::write_pdb(&missing_dir, &bb).unwrap_err();
    assert!(matches!(e, StructureError::Io { .. }));
    assert!(e.to_string().contains("no/such/dir/out.pdb"), "{e}");
    bb.chain_ids = vec!["AB".to_string(); bb.len()];
    let p = dir.path().join("long_chain.pdb");
    let e = io::write_pdb(&p, &bb).unwrap_err();
    assert!(matches!(e, StructureError::Unwritable { .. }));
    assert!(!p.exists(), "nothing written on error");
    // mmCIF has no chain-id length limit.
    let p = dir.path().join("long_chain.cif");
    io::write_mmcif(&p, &bb).unwrap();
    assert_eq!(read(&p).chains(), vec!["AB"]);
    let e = io::write_structure(&dir.path().join("x.xyz"), &bb).unwrap_err();
    assert!(matches!(e, StructureError::UnsupportedFormat { .. }));
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty());
}

/// Writes `target/io_check/*.{pdb,cif}` for a manual check with `mkdssp` and `TMalign`
/// (not run by default): `cargo test --release -p protforge-structure --test io_roundtrip -- --ignored`.
#[test]
#[ignore = "writes files for external tools"]
fn write_samples_for_external_tools() {
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/io_check");
    std::fs::create_dir_all(&out).unwrap();
    for name in ["hiv_capsid_ctd_1a8o.pdb", "ace2_rbd_cryoem_7ddo.pdb.gz", "small_domain_2m9i_mdtraj.pdb"] {
        let bb = read(&fixture(name));
        let stem = name.split('.').next().unwrap();
        io::write_pdb(&out.join(format!("{stem}.pdb")), &bb).unwrap();
        io::write_mmcif(&out.join(format!("{stem}.cif")), &bb).unwrap();
    }
}
