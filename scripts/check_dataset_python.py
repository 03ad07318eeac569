#!/usr/bin/env python3
"""Check that a protforge dataset file loads in Python with `safetensors` and is consistent.

Usage: pip install safetensors numpy
       python3 scripts/check_dataset_python.py data/protforge_v1.safetensors

Prints the number of chains/residues per split; exits non-zero on any inconsistency.
Not part of `cargo test`.
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def main(path: str) -> None:
    t = load_file(path)
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
    assert meta["protforge_dataset"] == "1", meta.get("protforge_dataset")
    coords, aatype, mask, off = t["coords"], t["aatype"], t["atom_mask"], t["chain_offsets"]
    chains = json.loads(meta["chains"])
    r = coords.shape[0]
    assert coords.shape == (r, 4, 3) and coords.dtype == np.float32
    assert aatype.shape == (r,) and aatype.dtype == np.uint8 and aatype.max() <= 20
    assert mask.shape == (r, 4) and mask.dtype == np.uint8
    assert off.dtype == np.int64 and off[0] == 0 and off[-1] == r and np.all(np.diff(off) > 0)
    assert len(chains) + 1 == len(off)
    assert all(c["length"] == int(off[i + 1] - off[i]) for i, c in enumerate(chains))
    # Consecutive CA atoms inside a chain are at most 4.2 Å apart (chains were split at breaks).
    ca = coords[:, 1]
    d = np.linalg.norm(ca[1:] - ca[:-1], axis=1)
    inside = np.ones(r - 1, dtype=bool)
    inside[off[1:-1] - 1] = False
    max_gap = float(d[inside].max()) if inside.any() else 0.0
    for split in ("train", "val"):
        sel = [c for c in chains if c["split"] == split]
        print(f"{split}: {len(sel)} chains, {sum(c['length'] for c in sel)} residues, "
              f"{len({c['cluster'] for c in sel})} clusters")
    print(f"max CA-CA inside chains: {max_gap:.2f} Å; all atoms present: {bool(mask.all())}")
    print("OK")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
