#!/usr/bin/env python3
"""Time `protforge eval backbones DIR --reference DATASET` (novelty against the training split)
and compare its per-query max TM-score with another run's (e.g. `--exhaustive`, which passes
`--novelty-exhaustive`: exact TM-align against every reference).

Queries: the `--n` validation chains (PDB files under ../shared/data/structures/pdb/val) whose
length is closest to 50-200 residues (all 96 inside, then the nearest; ties by chain id);
`--subset K` uses a fixed random sample (seed 0) of K of them.

Usage (from the repository root, after `cargo build --release -p protforge`):
    python3 scripts/novelty_bench.py --out /tmp/nov/new105.json                 # 105 queries
    python3 scripts/novelty_bench.py --subset 20 --out /tmp/nov/new20.json
    python3 scripts/novelty_bench.py --subset 20 --exhaustive --out /tmp/nov/exh20.json
    python3 scripts/novelty_bench.py --compare /tmp/nov/exh20.json /tmp/nov/new20.json

Runs are `nice -n 19` (a training job may have priority); the JSON has wall and CPU seconds.
Only the Python standard library is needed.
"""

import argparse
import csv
import json
import random
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pick_queries(data, n, subset):
    rows = [r for r in csv.DictReader(open(data / "chains.tsv"), delimiter="\t") if r["split"] == "val" and r["pdb_file"]]

    def dist(r):
        length = int(r["length"])
        return 0 if 50 <= length <= 200 else (50 - length if length < 50 else length - 200)

    rows.sort(key=lambda r: (dist(r), r["id"]))
    sel = rows[:n]
    if subset:
        sel = random.Random(0).sample(sel, subset)
    return [data / r["pdb_file"] for r in sel]


def run(args):
    queries = pick_queries(args.data, args.n, args.subset)
    with tempfile.TemporaryDirectory() as td:
        for q in queries:
            (Path(td) / q.name).symlink_to(q)
        cmd = ["nice", "-n", "19", args.protforge, "eval", "backbones", td, "--reference", str(args.reference),
               "--no-diversity", "--json", "--threads", str(args.threads), "-q"]
        if args.exhaustive:
            cmd.append("--novelty-exhaustive")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        wall = time.time() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rep = json.loads(out)
    per = {Path(s["file"]).name: s["max_tm_to_reference"] for s in rep["structures"]}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = {"binary": args.protforge, "exhaustive": args.exhaustive, "n_queries": len(per), "wall_s": wall, "cpu_s": cpu, "max_tm": per,
           "median_max_tm": statistics.median(per.values())}
    print(f"{len(per)} queries: wall {wall:.1f} s, CPU {cpu:.1f} s, median max TM {res['median_max_tm']:.4f}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))


def compare(a_path, b_path):
    a, b = json.loads(Path(a_path).read_text()), json.loads(Path(b_path).read_text())
    common = sorted(set(a["max_tm"]) & set(b["max_tm"]))
    d = [abs(a["max_tm"][k] - b["max_tm"][k]) for k in common]
    print(f"{len(common)} common queries: identical (|d| < 1e-9) {sum(x < 1e-9 for x in d)}, "
          f"|d| <= 0.001 {sum(x <= 0.001 for x in d)}, max |d| {max(d):.4f}")
    for k in common:
        if abs(a["max_tm"][k] - b["max_tm"][k]) >= 1e-9:
            print(f"  {k}: {a['max_tm'][k]:.4f} vs {b['max_tm'][k]:.4f}")
    print(f"wall {a['wall_s']:.1f} s vs {b['wall_s']:.1f} s; CPU {a['cpu_s']:.1f} s vs {b['cpu_s']:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "structures")
    ap.add_argument("--reference", type=Path, default=REPO / "data" / "protforge_v1.safetensors")
    ap.add_argument("--protforge", default=str(REPO / "target" / "release" / "protforge"))
    ap.add_argument("--n", type=int, default=105)
    ap.add_argument("--subset", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--exhaustive", action="store_true", help="exact TM-align against every reference")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"))
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        run(args)


if __name__ == "__main__":
    main()
