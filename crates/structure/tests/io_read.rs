//! Reading PDB/mmCIF fixtures: selection rules, warnings and bad input.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

mod common;

use common::fixture;
use protforge_structure::io::{self, Format, ReadOptions, read_backbone, read_backbone_bytes, read_topology};
use protforge_structure::{Backbone, ResidueId, StructureError, atom, residue};

fn read(name: &str) -> Backbone {
    read_backbone(&fixture(name), &ReadOptions::default()).unwrap().backbone
}

fn read_err(name: &str) -> StructureError {
    read_backbone(&fixture(name), &ReadOptions::default()).unwrap_err()
}

/// The first `ATOM`/`HETATM` line of the first model matching residue and atom name.
fn coords_in_text(text: &str, chain: char, resseq: &str, atom_name: &str) -> [f32; 3] {
    let line = text
        .lines()
        .take_while(|l| !l.starts_with("ENDMDL"))
        .find(|l| {
            (l.starts_with("ATOM") || l.starts_with("HETATM"))
                && l[12..16].trim() == atom_name
                && l[21..22].starts_with(chain)
                && l[22..27].trim() == resseq
        })
        .unwrap();
    [30..38, 38..46, 46..54].map(|r| line[r].trim().parse().unwrap())
}

#[test]
fn mse_is_met_and_waters_are_skipped() {
    let bb = read("hiv_capsid_ctd_1a8o.pdb");
    assert_eq!(bb.len(), 70);
    assert_eq!(bb.chains(), vec!["A"]);
    assert_eq!(bb.residue_ids[0], ResidueId::new(151));
    assert_eq!(bb.aatype[0], residue::aatype_from_three("MET").unwrap(), "MSE 151 read as MET");
    assert!(bb.sequence().starts_with("MDIRQGPKEPFRDYVDRFYK"));
    assert!(bb.is_full());
    let text = std::fs::read_to_string(fixture("hiv_capsid_ctd_1a8o.pdb")).unwrap();
    assert_eq!(bb.coords[0][atom::CA], coords_in_text(&text, 'A', "151", "CA"));
}

#[test]
fn pdb_mmcif_and_gzip_agree() {
    let pdb = read("hiv_capsid_ctd_1a8o.pdb");
    let cif = read("hiv_capsid_ctd_1a8o.cif");
    let gz = read("hiv_capsid_ctd_1a8o.cif.gz");
    assert_eq!(pdb, cif);
    assert_eq!(cif, gz);
}

#[test]
fn nmr_reads_first_model_and_skips_dna() {
    let bb = read("lac_repressor_dna_nmr_1lcd.pdb");
    assert_eq!(bb.len(), 51);
    assert_eq!(bb.chains(), vec!["A"], "DNA chains B and C are skipped");
    let text = std::fs::read_to_string(fixture("lac_repressor_dna_nmr_1lcd.pdb")).unwrap();
    assert_eq!(bb.coords[0][atom::CA], coords_in_text(&text, 'A', "1", "CA"));
    assert_eq!(bb.coords[50][atom::O], coords_in_text(&text, 'A', "51", "O"));
}

#[test]
fn first_altloc_is_used() {
    let bb = read("ace2_rbd_cryoem_7ddo.pdb.gz");
    assert_eq!(bb.chains(), vec!["A", "C"]);
    let i = bb.residue_ids.iter().zip(&bb.chain_ids).position(|(r, c)| r.number == 228 && c == "A").unwrap();
    // ATOM 1711 CA AHIS A 228 85.484 83.437 102.414 (B: 85.491 83.431 102.409)
    assert_eq!(bb.coords[i][atom::CA], [85.484, 83.437, 102.414]);
}

#[test]
fn insertion_codes_and_masks() {
    let out = read_backbone(&fixture("altloc_icode_multichain_biopython.pdb"), &ReadOptions::default()).unwrap();
    let bb = out.backbone;
    assert_eq!(bb.chains(), vec!["A", "B"]);
    let i = bb.residue_ids.iter().position(|r| *r == ResidueId { number: 51, insertion: Some('A') }).unwrap();
    assert_eq!(bb.chain_ids[i], "B");
    assert_eq!(bb.coords[i][atom::N], [5.041, -3.523, 47.145]);
    // This file deliberately has residues with missing atoms: masked atoms have zero coordinates.
    assert!(!bb.is_full());
    for (c, m) in bb.coords.iter().zip(&bb.atom_mask) {
        for k in 0..4 {
            if !m[k] {
                assert_eq!(c[k], [0.0; 3]);
            }
        }
    }
    assert!(out.warnings.iter().any(|w| w.contains("MODEL")), "{:?}", out.warnings);
}

#[test]
fn pdbtbx_warnings_are_returned() {
    // pdbtbx warns about this file's missing element columns / serial overflow etc.; at least
    // our own sanitiser note and pdbtbx's notes come back as single lines.
    let out = read_backbone(&fixture("altloc_icode_multichain_biopython.pdb"), &ReadOptions::default()).unwrap();
    assert!(!out.warnings.is_empty());
    assert!(out.warnings.iter().all(|w| !w.contains('\n')));
}

#[test]
fn chain_selection() {
    let path = fixture("ace2_rbd_cryoem_7ddo.pdb.gz");
    let c = read_backbone(&path, &ReadOptions { chain: Some("C".into()) }).unwrap().backbone;
    assert_eq!(c.chains(), vec!["C"]);
    let all = read("ace2_rbd_cryoem_7ddo.pdb.gz");
    assert_eq!(c, all.chain("C").unwrap());
    let e = read_backbone(&path, &ReadOptions { chain: Some("Z".into()) }).unwrap_err();
    assert!(matches!(e, StructureError::UnknownChain { .. }));
    assert_eq!(e.to_string(), format!("{}: chain 'Z' not found (chains: A, C)", path.display()));
}

#[test]
fn md_style_pdb_matches_original() {
    let md = read("small_domain_2m9i_md_style.pdb");
    let orig = read("small_domain_2m9i_mdtraj.pdb");
    assert_eq!(md.len(), 34);
    assert_eq!(md, orig);
}

#[test]
fn in_memory_reading() {
    let bytes = std::fs::read(fixture("hiv_capsid_ctd_1a8o.cif.gz")).unwrap();
    let gz = read_backbone_bytes(&bytes, Format::Mmcif, &ReadOptions::default()).unwrap().backbone;
    let text = std::fs::read(fixture("hiv_capsid_ctd_1a8o.pdb")).unwrap();
    let pdb = read_backbone_bytes(&text, Format::Pdb, &ReadOptions::default()).unwrap().backbone;
    assert_eq!(gz, pdb);
    let e = read_backbone_bytes(b"", Format::Pdb, &ReadOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "<memory>: file is empty");
}

#[test]
fn content_sniffing_without_extension() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("structure_without_extension");
    std::fs::copy(fixture("hiv_capsid_ctd_1a8o.cif"), &p).unwrap();
    assert_eq!(read_backbone(&p, &ReadOptions::default()).unwrap().backbone.len(), 70);
    // mmCIF content behind a .pdb name is read as mmCIF, with a warning.
    let p = dir.path().join("really_cif.pdb");
    std::fs::copy(fixture("hiv_capsid_ctd_1a8o.cif"), &p).unwrap();
    let out = read_backbone(&p, &ReadOptions::default()).unwrap();
    assert_eq!(out.backbone.len(), 70);
    assert!(out.warnings.iter().any(|w| w.contains("content is mmCIF")));
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "just some notes\n").unwrap();
    let e = read_backbone(&p, &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, StructureError::UnsupportedFormat { .. }), "{e}");
}

#[test]
fn topology_atom_indices_count_all_atoms() {
    let path = fixture("small_domain_2m9i_mdtraj.pdb");
    let topo = read_topology(&path, &ReadOptions::default()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let atoms: Vec<&str> = text.lines().filter(|l| l.starts_with("ATOM") || l.starts_with("HETATM")).collect();
    assert_eq!(topo.n_atoms, atoms.len());
    assert!(topo.n_atoms > 34 * 4, "hydrogens are counted");
    for (r, idx) in topo.atom_index.iter().enumerate() {
        for (k, name) in residue::BACKBONE_ATOMS.iter().enumerate() {
            let line = atoms[idx[k].unwrap()];
            assert_eq!(line[12..16].trim(), *name);
            assert_eq!(line[22..26].trim().parse::<i32>().unwrap(), topo.backbone.residue_ids[r].number);
        }
    }
}

#[test]
fn bad_inputs_give_one_line_errors_naming_the_file() {
    type Case = (&'static str, fn(&StructureError) -> bool, &'static str);
    let cases: [Case; 8] = [
        ("bad_empty.pdb", |e| matches!(e, StructureError::Empty { .. }), "file is empty"),
        ("bad_binary_garbage.pdb", |e| matches!(e, StructureError::NotText { .. }), "not a text file"),
        ("bad_truncated_1a8o.pdb", |e| matches!(e, StructureError::Truncated { .. }), "truncated"),
        ("bad_truncated_1a8o.cif", |e| matches!(e, StructureError::Truncated { .. }), "truncated"),
        ("bad_nan_coords.pdb", |e| matches!(e, StructureError::BadCoordinates { .. }), "x = nan"),
        ("bad_huge_coords.pdb", |e| matches!(e, StructureError::BadCoordinates { .. }), "1.0e30"),
        ("bad_waters_only.pdb", |e| matches!(e, StructureError::NoProtein { .. }), "no protein residues"),
        ("does_not_exist.pdb", |e| matches!(e, StructureError::Io { .. }), "No such file"),
    ];
    for (name, is_kind, text) in cases {
        let e = read_err(name);
        let msg = e.to_string();
        assert!(is_kind(&e), "{name}: {msg}");
        assert!(msg.contains(name), "{msg}");
        assert!(msg.contains(text), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[test]
fn nan_in_mmcif_is_rejected() {
    let text = std::fs::read_to_string(fixture("hiv_capsid_ctd_1a8o.cif")).unwrap();
    let bad = text.replacen("19.594", "NaN", 1);
    assert_ne!(bad, text);
    let e = read_backbone_bytes(bad.as_bytes(), Format::Mmcif, &ReadOptions::default()).unwrap_err();
    // pdbtbx panics on a non-numeric coordinate ("Atom X position should be provided"); the
    // panic is caught at our boundary.
    assert!(matches!(e, StructureError::ParserPanic { .. }), "{e}");
    assert!(e.to_string().starts_with("<memory>: parser failure"), "{e}");
    let huge = text.replacen("19.594", "1e30", 1);
    let e = read_backbone_bytes(huge.as_bytes(), Format::Mmcif, &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, StructureError::BadCoordinates { .. }), "{e}");
}

#[test]
fn unknown_format_via_io_module() {
    assert_eq!(io::Format::from_path("x.ent.gz".as_ref()), Some(Format::Pdb));
    assert_eq!(io::Format::from_path("x.xtc".as_ref()), None);
}
