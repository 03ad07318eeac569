//! CA → backbone reconstruction (`protforge_structure::rebuild`) on committed fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use protforge_se3::{Rigid, Rotation, Vec3, dihedral, geometry, kabsch};
use protforge_structure::{
    Backbone, ReadOptions, ResidueId, StructureError, complete_backbone, read_backbone, rebuild,
    rebuild_backbone,
};

fn example(name: &str) -> Backbone {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/backbones")
        .join(name);
    let bb = read_backbone(&p, &ReadOptions::default()).unwrap().backbone;
    assert!(bb.is_full());
    bb
}

fn v3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

fn f3(p: Vec3) -> [f32; 3] {
    [p.x as f32, p.y as f32, p.z as f32]
}

fn dist(a: [f32; 3], b: [f32; 3]) -> f64 {
    (v3(a) - v3(b)).norm()
}

/// Global N, CA, C, O RMSD (Å) after Kabsch superposition.
fn backbone_rmsd(a: &[[[f32; 3]; 4]], b: &[[[f32; 3]; 4]]) -> f64 {
    let pa: Vec<Vec3> = a.iter().flat_map(|r| r.map(v3)).collect();
    let pb: Vec<Vec3> = b.iter().flat_map(|r| r.map(v3)).collect();
    kabsch::superpose(&pa, &pb).unwrap().rmsd
}

#[test]
fn rmsd_on_real_chains_is_below_0_6() {
    for name in ["barnase_A.pdb", "1a8o_A.pdb", "t4_lysozyme_L99A_A.pdb"] {
        let bb = example(name);
        let rebuilt = rebuild_backbone(&bb.ca()).unwrap();
        assert_eq!(rebuilt.len(), bb.len());
        let rmsd = backbone_rmsd(&rebuilt, &bb.coords);
        assert!(rmsd < 0.6, "{name}: backbone RMSD {rmsd:.3} Å");
        // CA atoms are returned exactly.
        assert!(rebuilt.iter().zip(&bb.coords).all(|(r, t)| r[1] == t[1]));
    }
}

#[test]
fn bond_lengths_and_angles_are_chemical() {
    let bb = example("barnase_A.pdb");
    let rebuilt = rebuild_backbone(&bb.ca()).unwrap();
    let mut taus = Vec::new();
    for (i, r) in rebuilt.iter().enumerate() {
        let (n_ca, ca_c, c_o) = (dist(r[0], r[1]), dist(r[1], r[2]), dist(r[2], r[3]));
        assert!(
            (n_ca - geometry::BOND_N_CA).abs() < 0.1,
            "residue {i}: N-CA {n_ca}"
        );
        assert!(
            (ca_c - geometry::BOND_CA_C).abs() < 0.1,
            "residue {i}: CA-C {ca_c}"
        );
        assert!(
            (c_o - geometry::BOND_C_O).abs() < 0.01,
            "residue {i}: C=O {c_o}"
        );
        if let Some(next) = rebuilt.get(i + 1) {
            let c_n = dist(r[2], next[0]);
            assert!(
                (c_n - geometry::BOND_C_N).abs() < 0.01,
                "residue {i}: C-N {c_n}"
            );
            // Trans peptides: ω ≈ 180°.
            let omega = dihedral(v3(r[1]), v3(r[2]), v3(next[0]), v3(next[1]));
            assert!(
                omega.abs() > 150f64.to_radians(),
                "residue {i}: ω {}",
                omega.to_degrees()
            );
        }
        let tau = (v3(r[0]) - v3(r[1]))
            .angle(&(v3(r[2]) - v3(r[1])))
            .to_degrees();
        assert!((85.0..140.0).contains(&tau), "residue {i}: N-CA-C {tau}");
        taus.push(tau);
    }
    let mean = taus.iter().sum::<f64>() / taus.len() as f64;
    assert!((mean - 111.2).abs() < 2.0, "mean N-CA-C {mean}");
}

#[test]
fn rigid_motion_of_the_trace_moves_the_backbone_rigidly() {
    let bb = example("1a8o_A.pdb");
    let ca = bb.ca();
    let g = Rigid::new(
        Rotation::from_axis_angle(&Vec3::new(0.3, -1.0, 0.7), 2.1).unwrap(),
        Vec3::new(12.0, -40.0, 7.5),
    );
    let moved: Vec<[f32; 3]> = ca.iter().map(|&p| f3(g.apply(v3(p)))).collect();
    let a = rebuild_backbone(&ca).unwrap();
    let b = rebuild_backbone(&moved).unwrap();
    let mut worst = 0.0f64;
    for (ra, rb) in a.iter().zip(&b) {
        for k in 0..4 {
            worst = worst.max((g.apply(v3(ra[k])) - v3(rb[k])).norm());
        }
    }
    assert!(worst < 1e-3, "max deviation {worst} Å");
}

#[test]
fn short_traces_give_sensible_residues() {
    assert!(rebuild_backbone(&[]).unwrap().is_empty());
    let bb = example("barnase_A.pdb");
    let ca = bb.ca();
    for n in 1..=3 {
        let out = rebuild_backbone(&ca[10..10 + n]).unwrap();
        assert_eq!(out.len(), n);
        for (i, r) in out.iter().enumerate() {
            assert_eq!(r[1], ca[10 + i]);
            assert!(r.iter().flatten().all(|c| c.is_finite()));
            assert!(
                (dist(r[0], r[1]) - geometry::BOND_N_CA).abs() < 0.1,
                "n {n}: N-CA"
            );
            assert!(
                (dist(r[1], r[2]) - geometry::BOND_CA_C).abs() < 0.1,
                "n {n}: CA-C"
            );
            assert!(
                (dist(r[2], r[3]) - geometry::BOND_C_O).abs() < 0.01,
                "n {n}: C=O"
            );
            let tau = (v3(r[0]) - v3(r[1]))
                .angle(&(v3(r[2]) - v3(r[1])))
                .to_degrees();
            assert!((80.0..145.0).contains(&tau), "n {n}: N-CA-C {tau}");
            if let Some(next) = out.get(i + 1) {
                assert!(
                    (dist(r[2], next[0]) - geometry::BOND_C_N).abs() < 0.01,
                    "n {n}: C-N"
                );
            }
        }
    }
    // Three residues: the peptide orientations are determined, so the result is close to the truth.
    let out = rebuild_backbone(&ca[10..13]).unwrap();
    let rmsd = backbone_rmsd(&out, &bb.coords[10..13]);
    assert!(rmsd < 1.0, "3-residue RMSD {rmsd}");
}

#[test]
fn cis_peptide_is_rebuilt_cis() {
    // Ideal chain with a cis peptide between residues 5 and 6 (CA–CA ≈ 2.8 Å).
    let n = 12;
    let mut omega = vec![geometry::OMEGA_TRANS; n];
    omega[5] = 0.0;
    let phi = vec![-70f64.to_radians(); n];
    let psi = vec![140f64.to_radians(); n];
    let truth: Vec<[[f32; 3]; 4]> = geometry::build_backbone(n, &phi, &psi, &omega)
        .into_iter()
        .map(|r| r.map(f3))
        .collect();
    let ca: Vec<[f32; 3]> = truth.iter().map(|r| r[1]).collect();
    assert!(dist(ca[5], ca[6]) < rebuild::CIS_CA_CA);
    let out = rebuild_backbone(&ca).unwrap();
    let w = dihedral(v3(out[5][1]), v3(out[5][2]), v3(out[6][0]), v3(out[6][1]));
    assert!(w.abs() < 20f64.to_radians(), "ω {}", w.to_degrees());
    assert!((dist(out[5][2], out[6][0]) - geometry::BOND_C_N).abs() < 0.01);
    assert!((dist(out[6][0], out[6][1]) - geometry::BOND_N_CA).abs() < 0.1);
}

#[test]
fn gaps_split_the_trace() {
    let bb = example("barnase_A.pdb");
    let mut ca = bb.ca();
    ca.truncate(40);
    // Move the second half 20 Å away: two independent segments.
    for p in &mut ca[20..] {
        p[0] += 20.0;
    }
    let whole = rebuild_backbone(&ca).unwrap();
    let a = rebuild_backbone(&ca[..20]).unwrap();
    let b = rebuild_backbone(&ca[20..]).unwrap();
    assert_eq!(whole, [a, b].concat());
}

#[test]
fn bad_input_is_an_error() {
    let e = rebuild_backbone(&[[0.0, 0.0, 0.0], [f32::NAN, 0.0, 0.0]]).unwrap_err();
    assert!(
        matches!(e, StructureError::BadCoordinates { ref residue, .. } if residue == "1"),
        "{e}"
    );
    let e = rebuild_backbone(&[[0.0, 0.0, 0.0], [3.8, 0.0, 0.0], [3.8, 0.2, 0.0]]).unwrap_err();
    assert!(e.to_string().contains("apart"), "{e}");
}

#[test]
fn complete_backbone_fills_ca_only_and_respects_breaks() {
    let full = example("1a8o_A.pdb");
    let mut ca_only = Backbone::from_ca(&full.ca(), Some(full.aatype.clone()));
    assert!(ca_only.is_ca_only());
    // Chain B from residue 30 on and a numbering gap at residue 15: three segments.
    for i in 30..ca_only.len() {
        ca_only.chain_ids[i] = "B".to_string();
    }
    for i in 15..ca_only.len() {
        ca_only.residue_ids[i] = ResidueId::new(ca_only.residue_ids[i].number + 100);
    }
    let done = complete_backbone(&ca_only).unwrap();
    assert!(done.is_full());
    assert_eq!(done.ca(), full.ca());
    let segs = [0..15, 15..30, 30..full.len()];
    let expected: Vec<[[f32; 3]; 4]> = segs
        .iter()
        .flat_map(|r| rebuild_backbone(&full.ca()[r.clone()]).unwrap())
        .collect();
    assert_eq!(done.coords, expected);
    assert!(backbone_rmsd(&done.coords, &full.coords) < 0.6);
    // A full backbone is unchanged; a residue without CA is an error naming it.
    assert_eq!(complete_backbone(&full).unwrap(), full);
    let mut broken = ca_only.clone();
    broken.atom_mask[3][1] = false;
    let e = complete_backbone(&broken).unwrap_err();
    assert!(e.to_string().contains("A:4"), "{e}");
}

#[test]
fn embedded_table_was_fitted_on_training_chains() {
    let info = rebuild::table_info().unwrap();
    assert!(info.chains >= 1000 && info.windows4 > 100_000, "{info:?}");
}
