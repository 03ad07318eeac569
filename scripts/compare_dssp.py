#!/usr/bin/env python3
"""Compare protforge's 3-state DSSP with mkdssp (Debian dssp 4.2.2) on real PDB chains.

For each PDB file:
  1. run `mkdssp --output-format dssp` on a temporary copy (a HEADER line is added when missing:
     without one, mkdssp 4.2.2 takes the file for mmCIF and fails) and reduce its 8 states to 3:
     H, G, I -> H;  E, B -> E;  T, S, P, blank -> C;
  2. run our command (default `protforge eval ss {file} --json`, JSON key `ss`) on the file;
  3. run our command on a CA-only copy of the file, which exercises the CA-geometry fallback;
  4. compare per residue, matching residues by (chain, number, insertion code). Only residues
     that mkdssp assigns (all of N, CA, C, O present) are scored.

Prints overall and per-chain agreement and writes a JSON summary with --json-out.
Not part of `cargo test`; needs mkdssp and a built protforge (or --ours).

Usage:
  scripts/compare_dssp.py [--glob '/work/shared/data/structures/pdb/val/*.pdb'] [--limit N]
                          [--ours 'protforge eval ss {file} --json'] [--json-out FILE] [-v]
"""

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections import Counter

AA3 = {
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
    "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL", "MSE",
}
TO3 = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}


def reduce3(c):
    return TO3.get(c, "C")


def pdb_residues(lines):
    """Residue keys (chain, number, icode) in file order: first model, protein residues only."""
    keys = []
    for line in lines:
        if line.startswith("ENDMDL"):
            break
        if not line.startswith(("ATOM", "HETATM")) or len(line) < 54:
            continue
        if line[16] not in " A" or line[17:20].strip() not in AA3:
            continue
        key = (line[21], int(line[22:26]), line[26].strip())
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def write_copy(lines, path, ca_only=False):
    with open(path, "w") as f:
        if not any(l.startswith("HEADER") for l in lines):
            f.write("HEADER    PROTFORGE COMPARISON                    01-JAN-00   XXXX              \n")
        for line in lines:
            if ca_only and line.startswith(("ATOM", "HETATM")) and line[12:16].strip() != "CA":
                continue
            f.write(line if line.endswith("\n") else line + "\n")


def run_mkdssp(pdb_path, out_path):
    r = subprocess.run(["mkdssp", "--output-format", "dssp", pdb_path, out_path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mkdssp failed on {pdb_path}: {r.stderr.strip()[:300]}")
    states = {}
    started = False
    with open(out_path) as f:
        for line in f:
            if line.startswith("  #  RESIDUE"):
                started = True
                continue
            if not started or len(line) < 17 or line[13] == "!":
                continue
            key = (line[11], int(line[5:10]), line[10].strip())
            states[key] = line[16]
    return states


def run_ours(cmd_template, pdb_path):
    cmd = [a.replace("{file}", pdb_path) for a in shlex.split(cmd_template)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[:300]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def score(keys, ours, ref):
    agree = total = 0
    conf = Counter()
    for k, s in zip(keys, ours):
        if k not in ref:
            continue
        r = reduce3(ref[k])
        total += 1
        agree += s == r
        conf[(r, s)] += 1
    return agree, total, conf


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glob", default="/work/shared/data/structures/pdb/val/*.pdb")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N files (sorted)")
    ap.add_argument("--ours", default="protforge eval ss {file} --json",
                    help="command printing JSON with key 'ss'; {file} is replaced by the path")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    files = sorted(glob.glob(args.glob))
    if args.limit:
        files = files[: args.limit]
    if not files:
        sys.exit(f"no files match {args.glob}")

    rows = []
    tot = {"full": [0, 0], "ca": [0, 0], "ss8": [0, 0]}
    conf_full, conf_ca = Counter(), Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            with open(path) as f:
                lines = f.readlines()
            keys = pdb_residues(lines)
            full_pdb = os.path.join(tmp, "full.pdb")
            ca_pdb = os.path.join(tmp, "ca.pdb")
            write_copy(lines, full_pdb)
            write_copy(lines, ca_pdb, ca_only=True)
            ref = run_mkdssp(full_pdb, os.path.join(tmp, "out.dssp"))
            res_full = run_ours(args.ours, full_pdb)
            res_ca = run_ours(args.ours, ca_pdb)
            ss_full, ss_ca = res_full["ss"], res_ca["ss"]
            if len(ss_full) != len(keys) or len(ss_ca) != len(keys):
                raise RuntimeError(f"{path}: {len(keys)} residues but ss lengths {len(ss_full)}/{len(ss_ca)}")
            a, t, c = score(keys, ss_full, ref)
            a_ca, t_ca, c_ca = score(keys, ss_ca, ref)
            conf_full.update(c)
            conf_ca.update(c_ca)
            tot["full"][0] += a
            tot["full"][1] += t
            tot["ca"][0] += a_ca
            tot["ca"][1] += t_ca
            row = {"file": os.path.basename(path), "n": t, "agree": a / t if t else None,
                   "agree_ca": a_ca / t_ca if t_ca else None}
            if "ss8" in res_full:
                a8 = sum(1 for k, s in zip(keys, res_full["ss8"]) if k in ref
                         and (s if s != "-" else " ") == ref[k])
                tot["ss8"][0] += a8
                tot["ss8"][1] += t
                row["agree8"] = a8 / t if t else None
            rows.append(row)
            if args.verbose:
                print(f"{row['file'][:70]:70s} n={t:4d} q3={row['agree']:.4f} ca={row['agree_ca']:.4f}")
                if a != t:
                    ref3 = "".join(reduce3(ref[k]) if k in ref else "." for k in keys)
                    print("   mkdssp:", ref3)
                    print("   ours:  ", ss_full)

    scored = [r for r in rows if r["n"]]
    summary = {
        "chains": len(scored),
        "residues": tot["full"][1],
        "q3_full": tot["full"][0] / tot["full"][1],
        "q3_full_min_chain": min(r["agree"] for r in scored),
        "chains_full_100pct": sum(1 for r in scored if r["agree"] == 1.0),
        "q3_ca": tot["ca"][0] / tot["ca"][1],
        "q3_ca_min_chain": min(r["agree_ca"] for r in scored),
        "confusion_full_ref_ours": {f"{a}{b}": n for (a, b), n in sorted(conf_full.items())},
        "confusion_ca_ref_ours": {f"{a}{b}": n for (a, b), n in sorted(conf_ca.items())},
    }
    if tot["ss8"][1]:
        summary["q8_full"] = tot["ss8"][0] / tot["ss8"][1]
    print(json.dumps(summary, indent=2))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"summary": summary, "chains": rows}, f, indent=1)


if __name__ == "__main__":
    main()
