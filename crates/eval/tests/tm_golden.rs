//! Golden tests: our TM-align against the `TMalign` binary (Debian `tm-align` 20190822) on
//! real structures committed under `tests/fixtures/` (attribution in that folder's README).
//!
//! Expected values were produced from the repository root with, e.g.,
//! `TMalign tests/fixtures/hiv_capsid_ctd_1a8o.pdb tests/fixtures/small_domain_2m9i_mdtraj.pdb`
//! (Chain_1 = first file = our `a`; "normalized by length of Chain_1" = `tm_a`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::{Path, PathBuf};

use protforge_eval::tm::{tm_align, tm_align_backbones};
use protforge_se3::Vec3;
use protforge_structure::io::{ReadOptions, read_backbone};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// CA atoms as `TMalign` reads a PDB file: `ATOM` records named ` CA ` with alt-loc blank or
/// `A`, the first chain that has any, stopping at `TER`/`END*` once CAs were read.
fn tmalign_ca(name: &str) -> Vec<Vec3> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let mut out = Vec::new();
    let mut chain = None;
    for line in text.lines() {
        if !out.is_empty() && (line.starts_with("TER") || line.starts_with("END")) {
            break;
        }
        let b = line.as_bytes();
        if !line.starts_with("ATOM  ") || b.len() < 54 || &line[12..16] != " CA " || !matches!(b[16], b' ' | b'A') {
            continue;
        }
        match chain {
            None => chain = Some(b[21]),
            Some(c) if c != b[21] => break,
            Some(_) => {}
        }
        let f = |r: std::ops::Range<usize>| line[r].trim().parse::<f64>().unwrap();
        out.push(Vec3::new(f(30..38), f(38..46), f(46..54)));
    }
    out
}

struct Golden {
    a: &'static str,
    b: &'static str,
    len_a: usize,
    len_b: usize,
    tm_a: f64,
    tm_b: f64,
    rmsd: f64,
    aligned: usize,
}

/// `TMalign A B` output (TM-score to 5 decimals, RMSD to 2, as printed).
const GOLDEN: &[Golden] = &[
    Golden {
        a: "hiv_capsid_ctd_1a8o.pdb",
        b: "small_domain_2m9i_mdtraj.pdb",
        len_a: 66,
        len_b: 34,
        tm_a: 0.19695,
        tm_b: 0.23385,
        rmsd: 2.57,
        aligned: 20,
    },
    Golden {
        a: "lac_repressor_dna_nmr_1lcd.pdb",
        b: "hiv_capsid_ctd_1a8o.pdb",
        len_a: 51,
        len_b: 66,
        tm_a: 0.31625,
        tm_b: 0.28386,
        rmsd: 3.44,
        aligned: 34,
    },
    Golden {
        a: "altloc_icode_multichain_biopython.pdb",
        b: "hiv_capsid_ctd_1a8o.pdb",
        len_a: 85,
        len_b: 66,
        tm_a: 0.25765,
        tm_b: 0.28969,
        rmsd: 4.58,
        aligned: 46,
    },
    Golden {
        a: "lac_repressor_dna_nmr_1lcd.pdb",
        b: "altloc_icode_multichain_biopython.pdb",
        len_a: 51,
        len_b: 85,
        tm_a: 0.27879,
        tm_b: 0.22002,
        rmsd: 3.48,
        aligned: 31,
    },
];

#[test]
fn tm_align_matches_the_tmalign_binary() {
    for g in GOLDEN {
        let (a, b) = (tmalign_ca(g.a), tmalign_ca(g.b));
        assert_eq!((a.len(), b.len()), (g.len_a, g.len_b), "{} vs {}", g.a, g.b);
        let r = tm_align(&a, &b).unwrap();
        let ctx = format!("{} vs {}: {:.5} {:.5} {:.2} {}", g.a, g.b, r.tm_a, r.tm_b, r.rmsd, r.aligned);
        assert!((r.tm_a - g.tm_a).abs() <= 0.01, "{ctx}");
        assert!((r.tm_b - g.tm_b).abs() <= 0.01, "{ctx}");
        assert!((r.rmsd - g.rmsd).abs() <= 0.1, "{ctx}");
        assert!(r.aligned.abs_diff(g.aligned) <= 1, "{ctx}");
    }
}

#[test]
fn tm_align_on_backbones_read_from_files() {
    // 2M9I written by two MD tools (GROMACS-style and mdtraj): the same coordinates.
    // `TMalign tests/fixtures/small_domain_2m9i_md_style.pdb tests/fixtures/small_domain_2m9i_mdtraj.pdb`
    // → Aligned length= 34, RMSD= 0.00, TM-score= 1.00000 both ways.
    let read = |n: &str| read_backbone(&fixture(n), &ReadOptions::default()).unwrap().backbone;
    let (a, b) = (read("small_domain_2m9i_md_style.pdb"), read("small_domain_2m9i_mdtraj.pdb"));
    let r = tm_align_backbones(&a, &b).unwrap();
    assert_eq!(r.aligned, 34);
    assert!((r.tm_a - 1.0).abs() < 1e-6 && (r.tm_b - 1.0).abs() < 1e-6, "{r:?}");
    assert_eq!(r.seq_identity, Some(1.0));

    // 1A8O chain A against 2M9I through the structure reader, which reads the 4 selenomethionines
    // (HETATM MSE) as MET: 70 residues, where TMalign 20190822 skips HETATM records (66). The
    // expected values come from TMalign on the file with those records turned into ATOM:
    // `sed 's/^HETATM\(.\{11\}MSE\)/ATOM  \1/' tests/fixtures/hiv_capsid_ctd_1a8o.pdb > /tmp/1a8o.pdb`
    // `TMalign /tmp/1a8o.pdb tests/fixtures/small_domain_2m9i_mdtraj.pdb`
    // → Length 70 / 34, Aligned length= 27, RMSD= 3.83, TM-score= 0.19299 / 0.22855.
    let opts = ReadOptions { chain: Some("A".to_string()) };
    let hiv = read_backbone(&fixture("hiv_capsid_ctd_1a8o.pdb"), &opts).unwrap().backbone;
    let r = tm_align_backbones(&hiv, &b).unwrap();
    assert_eq!(r.len_a, 70);
    assert!((r.tm_a - 0.19299).abs() <= 0.01 && (r.tm_b - 0.22855).abs() <= 0.01, "{r:?}");
    assert!((r.rmsd - 3.83).abs() <= 0.1 && r.aligned.abs_diff(27) <= 1, "{r:?}");
}
