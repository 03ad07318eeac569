#!/usr/bin/env python3
"""First-scale point prompts from real chains, for `protforge generate --prompt`.

For each chosen validation chain (50-200 CA atoms, a seeded random pick), write its CA trace
area-downsampled to N points (window centroids, as PAR's `Down` with `downsample: area`) as a
CA-only PDB `<out>/<name>_p<N>.pdb`, and list `<name> <length>` in `<out>/list.txt`. Used by
docs/BENCHMARKS.md "Which scale loses the helices":

    python3 scripts/par_prompt_points.py --out /tmp/prompts
    while read name L; do
      target/release/protforge generate --length $L --prompt /tmp/prompts/${name}_p16.pdb \
          --num-samples 2 --seed 0 --prefix $name --out /tmp/prompted/$name
      target/release/protforge generate --length $L --num-samples 2 --seed 0 --prefix $name --out /tmp/uncond/$name
    done < /tmp/prompts/list.txt
"""
import argparse
import glob
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ca_trace(path):
    xs = []
    for line in open(path):
        if line.startswith("ATOM") and line[12:16].strip() == "CA" and line[16] in " A":
            xs.append([float(line[30:38]), float(line[38:46]), float(line[46:54])])
        if line.startswith("ENDMDL"):
            break
    return np.array(xs)


def area_downsample(x, size):
    """Centroids of `size` equal windows along the chain (fractional coverage at the edges)."""
    n = len(x)
    out = []
    for j in range(size):
        a, b = j * n / size, (j + 1) * n / size
        w = np.zeros(n)
        for i in range(int(np.floor(a)), int(np.ceil(b))):
            w[i] = max(0.0, min(b, i + 1) - max(a, i))
        out.append((w[:, None] * x).sum(0) / w.sum())
    return np.array(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--val-dir", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "structures", "pdb", "val"))
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--chains", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.val_dir, "*.pdb")))
    if not files:
        raise SystemExit("par_prompt_points.py: error: no PDB files in %s" % a.val_dir)
    chosen = [(p, x) for p in files for x in [ca_trace(p)] if 50 <= len(x) <= 200]
    pick = np.random.default_rng(a.seed).choice(len(chosen), min(a.chains, len(chosen)), replace=False)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "list.txt"), "w") as listing:
        for k in pick:
            path, x = chosen[k]
            name = os.path.basename(path)[:-4]
            with open(os.path.join(a.out, "%s_p%d.pdb" % (name, a.points)), "w") as f:
                for i, c in enumerate(area_downsample(x, a.points)):
                    f.write("ATOM  %5d  CA  GLY A%4d    %8.3f%8.3f%8.3f  1.00  0.00           C\n" % (i + 1, i + 1, *c))
                f.write("END\n")
            listing.write("%s %d\n" % (name, len(x)))


if __name__ == "__main__":
    main()
