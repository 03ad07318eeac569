#!/usr/bin/env python3
"""DSSP agreement between true backbones and backbones rebuilt from their CA trace.

Input: a directory written by the `validate_rebuild` ignored test
(`REBUILD_PDB_DIR=DIR cargo test --release -p protforge-structure --test rebuild_fit -- --ignored validate_rebuild`),
holding DIR/true/NNN.pdb and DIR/rebuilt/NNN.pdb (same residues, chain A, numbered from 1).

For every pair, the 3-state string (H/E/C) of the true and the rebuilt file is computed by
  - ours: `protforge eval ss FILE --json` (full-backbone Kabsch & Sander DSSP), and
  - mkdssp (Debian dssp 4.2.2, `--mkdssp`), 8 states reduced H,G,I -> H; E,B -> E; rest -> C,
and Q3 = fraction of residues with the same state, pooled over all residues (and per chain).
Not part of `cargo test`.

    python3 scripts/rebuild_dssp_q3.py /tmp/rebuild_val [--mkdssp] [--protforge target/release/protforge]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def ours(protforge, path):
    out = subprocess.run([protforge, "eval", "ss", path, "--json", "-q"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["ss"]


def reduce3(c):
    return "H" if c in "HGI" else ("E" if c in "EB" else "C")


def mkdssp(path):
    with open(path) as f:
        lines = f.read().splitlines()
    if not any(l.startswith("HEADER") for l in lines):
        lines.insert(0, "HEADER    PROTFORGE REBUILD                       01-JAN-00   XXXX              ")
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.pdb"), os.path.join(d, "out.dssp")
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run(["mkdssp", "--output-format", "dssp", src, dst], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"mkdssp failed on {path}: {r.stderr.strip()[:300]}")
        ss, started = [], False
        for l in open(dst):
            if l.startswith("  #  RESIDUE"):
                started = True
                continue
            if started and len(l) > 16 and l[13] != "!":
                ss.append(reduce3(l[16]))
        return "".join(ss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--protforge", default="target/release/protforge")
    ap.add_argument("--mkdssp", action="store_true", help="also compare with mkdssp")
    a = ap.parse_args()
    names = sorted(os.listdir(os.path.join(a.dir, "true")))
    methods = [("protforge eval ss", lambda p: ours(a.protforge, p))]
    if a.mkdssp:
        methods.append(("mkdssp", mkdssp))
    for label, fn in methods:
        same = total = 0
        per_chain = []
        conf = {}
        for n in names:
            t = fn(os.path.join(a.dir, "true", n))
            r = fn(os.path.join(a.dir, "rebuilt", n))
            if len(t) != len(r):
                print(f"{n}: length mismatch {len(t)} vs {len(r)}", file=sys.stderr)
                continue
            s = sum(x == y for x, y in zip(t, r))
            same += s
            total += len(t)
            per_chain.append(s / len(t))
            for x, y in zip(t, r):
                conf[x + y] = conf.get(x + y, 0) + 1
        per_chain.sort()
        print(f"{label}: chains {len(per_chain)} residues {total} Q3 pooled {same / total:.4f} "
              f"per-chain median {per_chain[len(per_chain) // 2]:.4f} worst {per_chain[0]:.4f}")
        print("  confusion (true->rebuilt): " + " ".join(f"{k}:{conf[k]}" for k in sorted(conf)))


if __name__ == "__main__":
    main()
