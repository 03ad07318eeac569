#!/usr/bin/env python3
"""Score the prompt ladder written by `denoise_probe` and group it by generated coarse scales.

`denoise_probe WEIGHTS DATA N OUT` writes `OUT/prompt_k<k>/chain_<c>_<j>.pdb`: samples whose
first k scales were the true (area-downsampled) validation chain. This script runs
`protforge eval backbones` on each folder and prints, per scale count n of the chain (4 for
L <= 128, 5 above, with the default {16, 32, 64, 128, 256} scales) and per number g of
*generated* coarse scales (g = n - 1 - k; g = 0 means every coarse scale was the truth), the
mean helix fraction and the median Rg ratio. Used by docs/BENCHMARKS.md "Which scale loses
the helices":

    target/release/examples/denoise_probe weights/par data/protforge_v1.safetensors 12 /tmp/ladder
    python3 scripts/par_prompt_ladder.py /tmp/ladder
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="the denoise_probe output folder")
    ap.add_argument("--protforge", default=os.path.join(ROOT, "target/release/protforge"))
    ap.add_argument("--sizes", default="16,32,64,128,256", help="the model's scale sizes")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    folders = sorted(d for d in os.listdir(args.out) if d.startswith("prompt_k"))
    if not folders:
        sys.exit(f"{args.out}: no prompt_k<k> folders (run denoise_probe with an output folder)")
    helix = collections.defaultdict(list)
    rg = collections.defaultdict(list)
    for d in folders:
        k = int(d[len("prompt_k"):])
        res = subprocess.run([args.protforge, "--no-progress", "eval", "backbones", os.path.join(args.out, d), "--json"],
                             capture_output=True, text=True, check=True)
        for s in json.loads(res.stdout)["structures"]:
            n = len([x for x in sizes if x < s["n_res"]]) + 1
            helix[(n, n - 1 - k)].append(s["helix_frac"])
            rg[(n, n - 1 - k)].append(s["rg_ratio"])
    print("| scales n | generated coarse scales g | samples | helix | median Rg ratio |")
    print("|---|---|---|---|---|")
    for key in sorted(helix):
        h = helix[key]
        print(f"| {key[0]} | {key[1]} | {len(h)} | {statistics.mean(h):.3f} | {statistics.median(rg[key]):.2f} |")


if __name__ == "__main__":
    main()
