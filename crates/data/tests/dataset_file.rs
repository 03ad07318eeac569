//! Dataset file round trip and schema validation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use protforge_data::format::{KEY_CHAINS, KEY_VERSION, SCHEMA_VERSION};
use protforge_data::{ChainRecord, DataError, Dataset, DatasetChain, Split, WriteMetadata, write_dataset};
use protforge_structure::Backbone;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::collections::HashMap;
use std::path::Path;

fn helix_like(n: usize, phase: f32) -> Backbone {
    let coords = (0..n)
        .map(|i| {
            let t = i as f32 * 1.745 + phase; // 100° per residue
            let ca = [2.3 * t.cos(), 2.3 * t.sin(), 1.5 * i as f32];
            [
                [ca[0] - 0.5, ca[1] + 1.2, ca[2] - 0.4],
                ca,
                [ca[0] + 1.1, ca[1] + 0.6, ca[2] + 0.5],
                [ca[0] + 1.3, ca[1] + 1.8, ca[2] + 0.9],
            ]
        })
        .collect();
    Backbone::from_coords(coords, (0..n).map(|i| ((i * 7) % 21) as u8).collect())
}

fn record(id: &str, split: Split, cluster: u32, length: usize) -> ChainRecord {
    ChainRecord { id: id.into(), source: "unit".into(), split, cluster, length }
}

fn sample_chains() -> Vec<DatasetChain> {
    let a = helix_like(12, 0.0);
    let mut b = helix_like(5, 1.0);
    b.atom_mask[2][3] = false; // an absent O: stored as zeros with mask 0
    let c = helix_like(30, 2.0);
    vec![
        DatasetChain { record: record("a", Split::Train, 0, 12), backbone: a },
        DatasetChain { record: record("b", Split::Val, 1, 5), backbone: b },
        DatasetChain { record: record("c", Split::Train, 0, 30), backbone: c },
    ]
}

#[test]
fn write_then_open_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/ds.safetensors");
    let chains = sample_chains();
    write_dataset(&path, &chains, &WriteMetadata { licence: "CC0 test".into(), build: None }).unwrap();
    // No temporary file left behind.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1);

    let ds = Dataset::open(&path).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.n_residues(), 47);
    assert_eq!(ds.ids().collect::<Vec<_>>(), vec!["a", "b", "c"]);
    assert_eq!(ds.lengths(), vec![12, 5, 30]);
    assert_eq!(ds.clusters(), vec![0, 1, 0]);
    assert_eq!(ds.train_indices(), vec![0, 2]);
    assert_eq!(ds.val_indices(), vec![1]);
    assert_eq!(ds.find("c"), Some(2));
    assert_eq!(ds.licence(), "CC0 test");
    for (i, c) in chains.iter().enumerate() {
        let bb = ds.chain(i).unwrap();
        assert_eq!(bb.aatype, c.backbone.aatype);
        assert_eq!(bb.atom_mask, c.backbone.atom_mask);
        for (r, (got, want)) in bb.coords.iter().zip(&c.backbone.coords).enumerate() {
            for k in 0..4 {
                let expect = if c.backbone.atom_mask[r][k] { want[k] } else { [0.0; 3] };
                assert_eq!(got[k], expect, "chain {i} residue {r} atom {k}");
            }
        }
        assert_eq!(ds.sequence(i).unwrap(), c.backbone.sequence());
    }
    assert!(ds.chain(3).is_none());
    let w = ds.cluster_weights(Some(Split::Train));
    assert_eq!(w, vec![0.5, 0.0, 0.5]);
    let info = ds.info();
    assert_eq!((info.n_train, info.n_val, info.residues_train, info.residues_val), (2, 1, 42, 5));
    assert_eq!((info.n_clusters, info.min_length, info.median_length, info.max_length), (2, 5, 12, 30));
    assert_eq!(info.sources["unit"].chains, 3);
}

#[test]
fn writer_rejects_inconsistent_chains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let mut chains = sample_chains();
    chains[0].record.length = 11;
    let e = write_dataset(&path, &chains, &WriteMetadata::default()).unwrap_err();
    assert!(matches!(e, DataError::InvalidChains { .. }), "{e}");
    let mut chains = sample_chains();
    chains[2].record.id = "a".into();
    let e = write_dataset(&path, &chains, &WriteMetadata::default()).unwrap_err();
    assert!(e.to_string().contains("duplicate chain id 'a'"), "{e}");
    assert!(!path.exists());
}

/// Tensors of a valid two-chain file, as owned bytes, for tampering.
struct Parts {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
}

fn valid_parts() -> Parts {
    let r = 7usize;
    let coords: Vec<u8> = (0..r * 12).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect();
    let aatype: Vec<u8> = (0..r as u8).collect();
    let mask = vec![1u8; r * 4];
    let offsets: Vec<u8> = [0i64, 3, 7].iter().flat_map(|o| o.to_le_bytes()).collect();
    let chains = serde_json::to_string(&vec![record("x", Split::Train, 0, 3), record("y", Split::Val, 1, 4)]).unwrap();
    let meta = HashMap::from([(KEY_VERSION.to_string(), SCHEMA_VERSION.to_string()), (KEY_CHAINS.to_string(), chains)]);
    Parts {
        tensors: vec![
            ("coords".into(), Dtype::F32, vec![r, 4, 3], coords),
            ("aatype".into(), Dtype::U8, vec![r], aatype),
            ("atom_mask".into(), Dtype::U8, vec![r, 4], mask),
            ("chain_offsets".into(), Dtype::I64, vec![3], offsets),
        ],
        meta,
    }
}

fn write_parts(path: &Path, parts: &Parts) {
    let views: Vec<(String, TensorView<'_>)> =
        parts.tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    std::fs::write(path, safetensors::serialize(views, Some(parts.meta.clone())).unwrap()).unwrap();
}

fn open_err(parts: &Parts) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.safetensors");
    write_parts(&path, parts);
    let e = Dataset::open(&path).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}: ", path.display())), "error must name the file: {msg}");
    msg
}

#[test]
fn valid_parts_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.safetensors");
    write_parts(&path, &valid_parts());
    let ds = Dataset::open(&path).unwrap();
    assert_eq!(ds.lengths(), vec![3, 4]);
    assert_eq!(ds.chain(1).unwrap().coords[0][0], [18.0, 18.5, 19.0]);
}

#[test]
fn missing_tensor() {
    let mut p = valid_parts();
    p.tensors.retain(|t| t.0 != "chain_offsets");
    let msg = open_err(&p);
    assert!(msg.ends_with("not a protforge dataset (missing tensor 'chain_offsets')"), "{msg}");
}

#[test]
fn wrong_dtype() {
    let mut p = valid_parts();
    let c = &mut p.tensors[0];
    c.1 = Dtype::I32;
    let msg = open_err(&p);
    assert!(msg.contains("tensor 'coords' has dtype I32, expected F32"), "{msg}");
}

#[test]
fn wrong_shape() {
    let mut p = valid_parts();
    p.tensors[2].2 = vec![14, 2];
    let msg = open_err(&p);
    assert!(msg.contains("tensor 'atom_mask' has shape [14, 2], expected [7, 4]"), "{msg}");
}

#[test]
fn offsets_not_monotone() {
    let mut p = valid_parts();
    p.tensors[3].3 = [0i64, 5, 3].iter().flat_map(|o| o.to_le_bytes()).collect();
    let msg = open_err(&p);
    assert!(msg.contains("chain_offsets not strictly increasing"), "{msg}");
}

#[test]
fn offsets_wrong_end() {
    let mut p = valid_parts();
    p.tensors[3].3 = [0i64, 3, 6].iter().flat_map(|o| o.to_le_bytes()).collect();
    let msg = open_err(&p);
    assert!(msg.contains("chain_offsets ends at 6 but there are 7 residues"), "{msg}");
}

#[test]
fn metadata_missing() {
    let mut p = valid_parts();
    p.meta.clear();
    assert!(open_err(&p).contains("missing metadata key 'protforge_dataset'"));
    let mut p = valid_parts();
    p.meta.remove(KEY_CHAINS);
    assert!(open_err(&p).contains("missing metadata key 'chains'"));
}

#[test]
fn metadata_malformed() {
    let mut p = valid_parts();
    p.meta.insert(KEY_CHAINS.into(), "[{\"id\": 3}]".into());
    assert!(open_err(&p).contains("metadata 'chains' is not a valid chain list"));
    let mut p = valid_parts();
    let one = serde_json::to_string(&vec![record("x", Split::Train, 0, 3)]).unwrap();
    p.meta.insert(KEY_CHAINS.into(), one);
    assert!(open_err(&p).contains("metadata lists 1 chains but chain_offsets has 3 entries"));
    let mut p = valid_parts();
    let wrong = serde_json::to_string(&vec![record("x", Split::Train, 0, 4), record("y", Split::Val, 1, 3)]).unwrap();
    p.meta.insert(KEY_CHAINS.into(), wrong);
    assert!(open_err(&p).contains("chain 0 ('x') has length 4 in metadata but 3 in offsets"));
}

#[test]
fn other_version_is_unsupported() {
    let mut p = valid_parts();
    p.meta.insert(KEY_VERSION.into(), "99".into());
    let msg = open_err(&p);
    assert!(msg.contains("unsupported protforge dataset version '99'"), "{msg}");
}

#[test]
fn bad_values() {
    let mut p = valid_parts();
    p.tensors[1].3[4] = 21;
    assert!(open_err(&p).contains("aatype[4] = 21 is out of range"));
    let mut p = valid_parts();
    p.tensors[0].3[4 * 13..4 * 14].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(open_err(&p).contains("coords has a non-finite value at residue 1"));
}

#[test]
fn not_safetensors_at_all() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in
        [("empty.safetensors", &b""[..]), ("garbage.safetensors", &b"\x00\xffthis is not a header at all"[..])]
    {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = Dataset::open(&path).unwrap_err();
        assert!(matches!(e, DataError::Schema { .. }), "{e}");
        assert!(e.to_string().contains(name));
    }
    let e = Dataset::open(dir.path().join("missing.safetensors")).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
}
