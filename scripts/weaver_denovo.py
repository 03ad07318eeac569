#!/usr/bin/env python3
"""De novo ProteinWeaver benchmark (issue 6): assemble PAR-generated domains with one or more
Weaver weight folders and summarise validity, compactness and interface contacts, as sampled
(`raw_score` in manifest.json) and after the default refinement (`score`).

Every weight folder runs `protforge assemble --domain-lengths ...` with the same seed, so sample
i gets the same PAR domains and linker lengths under every model: the comparison is paired, and
the script also reports each later model's per-sample win rate against the first (higher total
score wins, ties count one half).

    python3 scripts/weaver_denovo.py --weights runs/weaver/best weights/weaver --label base aligned \
        --domain-lengths 80,100 --linker 10-20 --num-samples 32 --json docs/bench/weaver_denovo.json

Needs target/release/protforge (or --protforge). Writes each run to OUT/<label>/ (default
runs/weaver_denovo/).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def summarise(samples, key):
    scores = [s[key] for s in samples]
    n = len(scores)

    def mean(f):
        return sum(f(s) for s in scores) / n if n else float("nan")

    return {
        "n": n,
        "valid": mean(lambda s: 1.0 if s["valid"] else 0.0),
        "clash_free": mean(lambda s: 1.0 if s["n_clashes"] == 0 else 0.0),
        "mean_clashes": mean(lambda s: s["n_clashes"]),
        "linker_bonds_ok": mean(lambda s: s["linker_bond_ok_frac"]),
        "no_threading": mean(lambda s: 1.0 if s["n_threaded"] == 0 else 0.0),
        "mean_contacts": mean(lambda s: s["n_contacts"]),
        "with_interface": mean(lambda s: 1.0 if s["n_contacts"] > 0 else 0.0),
        "median_rg_ratio": statistics.median(s["rg_ratio"] for s in scores) if n else None,
        "mean_total": mean(lambda s: s["total"]),
    }


def win_rate(base, cand, key):
    wins = 0.0
    for b, c in zip(base, cand):
        tb, tc = b[key]["total"], c[key]["total"]
        wins += 1.0 if tc > tb else 0.5 if tc == tb else 0.0
    return wins / max(len(base), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", required=True, help="Weaver weight folders; the first is the baseline of the win rates")
    ap.add_argument("--label", nargs="+", help="one label per weight folder (default: the folder names)")
    ap.add_argument("--domain-lengths", default="80,100")
    ap.add_argument("--linker", default="10-20")
    ap.add_argument("--num-samples", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--protforge", default="target/release/protforge")
    ap.add_argument("--par-weights", help="PAR weights that generate the domains (default: the shipped weights/par)")
    ap.add_argument("--out", default="runs/weaver_denovo")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    labels = args.label or [os.path.basename(os.path.normpath(w)) for w in args.weights]
    if len(labels) != len(args.weights):
        sys.exit("weaver_denovo.py: error: --label needs one label per --weights folder")

    runs = {}
    for w, label in zip(args.weights, labels):
        out = os.path.join(args.out, label)
        cmd = [args.protforge, "--no-progress", "--threads", str(args.threads), "assemble", "--weights", w,
               "--domain-lengths", args.domain_lengths, "--linker", args.linker,
               "--num-samples", str(args.num_samples), "--seed", str(args.seed), "--out", out]
        if args.par_weights:
            cmd += ["--par-weights", args.par_weights]
        t0 = time.time()
        subprocess.run(cmd, check=True)
        wall = time.time() - t0
        with open(os.path.join(out, "manifest.json")) as f:
            samples = json.load(f)["samples"]
        runs[label] = {"weights": w, "command": " ".join(cmd), "wall_s": round(wall, 1),
                       "raw": summarise(samples, "raw_score"), "refined": summarise(samples, "score"),
                       "_samples": samples}

    first = labels[0]
    for label in labels[1:]:
        runs[label]["win_rate_vs_" + first] = {
            key_name: win_rate(runs[first]["_samples"], runs[label]["_samples"], key)
            for key_name, key in (("raw", "raw_score"), ("refined", "score"))
        }
    for r in runs.values():
        del r["_samples"]
    summary = {"domain_lengths": args.domain_lengths, "linker": args.linker,
               "num_samples": args.num_samples, "seed": args.seed, "runs": runs}

    cols = ["valid", "clash_free", "mean_clashes", "linker_bonds_ok", "no_threading",
            "mean_contacts", "with_interface", "median_rg_ratio", "mean_total"]
    print("| model | stage | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for label, r in runs.items():
        for stage in ("raw", "refined"):
            print(f"| {label} | {stage} | " + " | ".join(f"{r[stage][c]:.3f}" for c in cols) + " |")
    for label, r in runs.items():
        for k, v in r.items():
            if k.startswith("win_rate"):
                print(f"{label} {k}: raw {v['raw']:.3f}, refined {v['refined']:.3f}")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
