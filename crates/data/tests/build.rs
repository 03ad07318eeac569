//! `build` over a temporary folder with a PDB file, a garbage file, `.jsonl` files and a
//! validation input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use protforge_data::{BuildOptions, DataError, Dataset, Split, build};
use protforge_structure::residue::{RESTYPES, RESTYPES_3};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Backbone atoms of an ideal-ish helix: CA–CA ≈ 3.83 Å.
fn helix(n: usize, offset: [f32; 3]) -> Vec<[[f32; 3]; 4]> {
    (0..n)
        .map(|i| {
            let t = i as f32 * 100f32.to_radians();
            let ca = [offset[0] + 2.3 * t.cos(), offset[1] + 2.3 * t.sin(), offset[2] + 1.5 * i as f32];
            [
                [ca[0] - 0.5, ca[1] + 1.2, ca[2] - 0.4],
                ca,
                [ca[0] + 1.1, ca[1] + 0.6, ca[2] + 0.5],
                [ca[0] + 1.3, ca[1] + 1.8, ca[2] + 0.9],
            ]
        })
        .collect()
}

fn random_seq(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| RESTYPES[rng.random_range(0..20)]).collect()
}

fn json_record(id: &str, seq: &str, coords: &[[[f32; 3]; 4]]) -> String {
    serde_json::json!({"id": id, "source": "unit", "seq": seq, "coords": coords}).to_string()
}

/// A minimal fixed-column PDB with one chain.
fn pdb_text(chain: char, seq: &str, coords: &[[[f32; 3]; 4]]) -> String {
    let mut s = String::from("HEADER    TEST PROTEIN\n");
    let mut serial = 1;
    for (i, (aa, res)) in seq.chars().zip(coords).enumerate() {
        let three = RESTYPES_3[RESTYPES.iter().position(|&c| c == aa).unwrap()];
        for (name, xyz) in [" N", " CA", " C", " O"].iter().zip(res) {
            let element = name.trim().chars().next().unwrap();
            writeln!(
                s,
                "ATOM  {serial:>5} {name:<4} {three:>3} {chain}{:>4}    {:>8.3}{:>8.3}{:>8.3}{:>6.2}{:>6.2}          {element:>2}",
                i + 1,
                xyz[0],
                xyz[1],
                xyz[2],
                1.0,
                20.0
            )
            .unwrap();
            serial += 1;
        }
    }
    s.push_str("TER\nEND\n");
    s
}

struct Fixture {
    _dir: tempfile::TempDir,
    train: PathBuf,
    val: PathBuf,
    out: PathBuf,
    seq_a: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train_in");
    let val = dir.path().join("val_in");
    std::fs::create_dir_all(train.join("nested")).unwrap();
    std::fs::create_dir_all(&val).unwrap();
    let mut rng = StdRng::seed_from_u64(11);

    // A good PDB file (one chain of 45 residues) in a nested folder.
    let seq_p = random_seq(&mut rng, 45);
    std::fs::write(train.join("nested/good.pdb"), pdb_text('B', &seq_p, &helix(45, [0.0; 3]))).unwrap();
    // Garbage with a structure extension, and a file to ignore.
    let garbage: Vec<u8> = (0..2000).map(|_| rng.random::<u8>()).collect();
    std::fs::write(train.join("garbage.cif"), garbage).unwrap();
    std::fs::write(train.join("notes.txt"), "not an input").unwrap();

    let seq_a = random_seq(&mut rng, 50);
    let seq_c = random_seq(&mut rng, 100);
    let seq_d = random_seq(&mut rng, 20);
    let seq_f = random_seq(&mut rng, 80);
    // G is F with one substitution: it must follow F into validation.
    let mut seq_g: Vec<char> = seq_f.chars().collect();
    seq_g[40] = if seq_g[40] == 'W' { 'A' } else { 'W' };
    let seq_g: String = seq_g.into_iter().collect();

    let mut c_coords = helix(100, [0.0; 3]);
    for r in &mut c_coords[60..] {
        for a in r.iter_mut() {
            a[0] += 10.0; // chain break between residues 60 and 61
        }
    }
    let lines = [
        json_record("A", &seq_a, &helix(50, [0.0; 3])),
        json_record("B_dup_of_A", &seq_a, &helix(50, [5.0; 3])),
        json_record("C", &seq_c, &c_coords),
        json_record("D_short", &seq_d, &helix(20, [0.0; 3])),
        "this line is not json".to_string(),
        json_record("E_mismatch", "ACDE", &helix(5, [0.0; 3])),
        String::new(),
        json_record("G", &seq_g, &helix(80, [0.0; 3])),
    ];
    std::fs::write(train.join("chains.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(val.join("val.jsonl"), json_record("F", &seq_f, &helix(80, [1.0; 3])) + "\n").unwrap();

    let out = dir.path().join("out/ds.safetensors");
    Fixture { _dir: dir, train, val, out, seq_a }
}

fn rejected_reason<'a>(s: &'a protforge_data::BuildSummary, path: &Path, line: Option<usize>) -> &'a str {
    s.rejected
        .iter()
        .find(|r| r.path == path && r.line == line)
        .map(|r| r.reason.as_str())
        .unwrap_or_else(|| panic!("{} line {line:?} not rejected: {:#?}", path.display(), s.rejected))
}

#[test]
fn build_reports_bad_inputs_and_splits_by_cluster() {
    let fx = fixture();
    let opts = BuildOptions {
        val_input: vec![fx.val.clone()],
        out: fx.out.clone(),
        val_fraction: 0.5, // ignored because of val_input
        ..BuildOptions::default()
    };
    let calls = std::sync::Mutex::new(Vec::new());
    let progress = |done: usize, total: usize| calls.lock().unwrap().push((done, total));
    let s = build(std::slice::from_ref(&fx.train), &opts, Some(&progress)).unwrap();

    // Files: good.pdb, chains.jsonl, val.jsonl read; garbage.cif rejected; notes.txt ignored.
    assert_eq!(s.files_read, 3, "{s:#?}");
    assert_eq!(s.files_ignored, 1);
    assert_eq!(s.rejected.len(), 3, "{:#?}", s.rejected);
    let garbage = rejected_reason(&s, &fx.train.join("garbage.cif"), None);
    assert!(!garbage.is_empty() && !garbage.contains('\n'));
    assert!(!garbage.contains("garbage.cif"), "path repeated in reason: {garbage}");
    assert!(rejected_reason(&s, &fx.train.join("chains.jsonl"), Some(5)).contains("invalid JSON"));
    assert!(
        rejected_reason(&s, &fx.train.join("chains.jsonl"), Some(6)).contains("seq has 4 residues but coords has 5")
    );

    // Chains: F (val), A, B, C, D, G (jsonl), good.pdb:B.
    assert_eq!(s.chains_seen, 7);
    assert_eq!(s.segments, 8); // C splits in two
    assert_eq!(s.dropped_too_short, 1); // D
    assert_eq!(s.dropped_too_long, 0);
    assert_eq!(s.dropped_duplicate, 1); // B
    assert_eq!(s.kept, 6);
    assert_eq!(s.forced_val, 1);
    assert_eq!(s.moved_to_val, 1); // G clusters with F
    assert_eq!(s.random_val_clusters, 0);
    assert_eq!((s.val_chains, s.train_chains), (2, 4));
    assert_eq!(s.train_residues, 50 + 60 + 40 + 45);
    assert_eq!(s.val_residues, 160);
    assert_eq!(s.val_clusters, 1);

    let calls = calls.into_inner().unwrap();
    let total = calls[0].1;
    assert_eq!(total, 1 + 1 + 7 + 1); // two structure files + 7 non-empty jsonl lines + 1 val line
    assert_eq!(calls.len(), total);
    assert!(calls.iter().any(|&(d, _)| d == total));

    let ds = Dataset::open(&fx.out).unwrap();
    assert_eq!(ds.len(), 6);
    let ids: Vec<&str> = ds.ids().collect();
    assert_eq!(ids, vec!["F", "A", "C/1-60", "C/61-100", "G", "nested/good:B"]);
    let f = ds.find("F").unwrap();
    let g = ds.find("G").unwrap();
    assert_eq!(ds.record(f).unwrap().cluster, ds.record(g).unwrap().cluster);
    assert_eq!(ds.record(g).unwrap().split, Split::Val);
    assert_eq!(ds.sequence(ds.find("A").unwrap()).unwrap(), fx.seq_a);
    assert_eq!(ds.record(ds.find("nested/good:B").unwrap()).unwrap().source, "train_in");
    // No cluster on both sides.
    for r in ds.records() {
        for q in ds.records() {
            if r.cluster == q.cluster {
                assert_eq!(r.split, q.split);
            }
        }
    }
    assert!(ds.build_settings().unwrap()["options"]["min_len"] == 40);
}

#[test]
fn build_is_deterministic() {
    let fx = fixture();
    let opts = BuildOptions { out: fx.out.clone(), val_fraction: 0.3, seed: 5, ..BuildOptions::default() };
    let s1 = build(std::slice::from_ref(&fx.train), &opts, None).unwrap();
    let first_bytes = std::fs::read(&fx.out).unwrap();
    let first = Dataset::open(&fx.out).unwrap();
    let (records, chains): (Vec<_>, Vec<_>) =
        (first.records().to_vec(), (0..first.len()).map(|i| first.chain(i)).collect::<Vec<_>>());
    drop(first);
    let s2 = build(std::slice::from_ref(&fx.train), &opts, None).unwrap();
    let second = Dataset::open(&fx.out).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(records, second.records());
    assert!(chains == (0..second.len()).map(|i| second.chain(i)).collect::<Vec<_>>());
    assert!(s1.val_chains > 0 && s1.train_chains > 0);
    // Byte-identical file (sorted metadata keys, stable order).
    assert!(first_bytes == std::fs::read(&fx.out).unwrap(), "rebuild changed the file bytes");
}

#[test]
fn nothing_usable_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pdb");
    std::fs::write(&junk, b"").unwrap();
    let out = dir.path().join("o.safetensors");
    let opts = BuildOptions { out: out.clone(), ..BuildOptions::default() };
    let e = build(&[junk, dir.path().join("does_not_exist"), dir.path().join("x.txt")], &opts, None).unwrap_err();
    assert!(matches!(e, DataError::EmptyDataset { rejected: 3, .. }), "{e}");
    assert!(!out.exists());
}

#[test]
fn invalid_options_are_rejected() {
    let bad = BuildOptions { min_len: 50, max_len: 40, ..BuildOptions::default() };
    assert!(matches!(bad.validate(), Err(DataError::InvalidOption { option: "max_len", .. })));
    let bad = BuildOptions { val_fraction: 1.5, ..BuildOptions::default() };
    assert!(matches!(bad.validate(), Err(DataError::InvalidOption { option: "val_fraction", .. })));
    assert!(BuildOptions::default().validate().is_ok());
}
