#!/usr/bin/env python3
"""Compare protforge's TM-align with the reference `TMalign` binary on real chains.

Reads the validation chains of ../shared/data (PDB files, backbone only), picks pairs with a
fixed seed, runs both programs and reports the agreement of tm_a / tm_b (TM-score normalised
by chain 1 / chain 2), RMSD and aligned length. Optionally times all-vs-all TM-align on 100
chains: ours (`protforge eval backbones DIR --threads 2`, whose diversity step is the rayon
all-vs-all `pairwise_tm`) against `TMalign` run as 2 parallel processes (`xargs -P 2`).

Usage (from the repository root, after `cargo build --release -p protforge`):
    python3 scripts/compare_tmalign.py                       # 200 + 50 pairs, seed 0
    python3 scripts/compare_tmalign.py --timing              # also the all-vs-all timing

Ours is the CLI, `protforge eval tm A B --json --threads 1`, one process per pair, on the same
PDB files as TMalign (default binary: target/release/protforge; see --protforge). Per-pair
times include process start-up and reading both files. Only the Python standard library is
needed.
"""

import argparse
import csv
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_chains(data_dir):
    rows = []
    with open(data_dir / "chains.tsv") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r["split"] == "val" and r["pdb_file"]:
                rows.append(r)
    return rows


def pick_pairs(rows, n_cross, n_same, seed):
    """`n_cross` pairs from different sequence clusters and `n_same` from the same cluster,
    always of different lengths, without repeats."""
    rng = random.Random(seed)
    idx = list(range(len(rows)))
    cross, same, seen = [], [], set()
    same_candidates = [
        (i, j)
        for i in idx
        for j in idx
        if i < j and rows[i]["cluster"] == rows[j]["cluster"] and rows[i]["length"] != rows[j]["length"]
    ]
    rng.shuffle(same_candidates)
    for i, j in same_candidates[:n_same]:
        same.append((i, j) if rng.random() < 0.5 else (j, i))
        seen.add((min(i, j), max(i, j)))
    while len(cross) < n_cross:
        i, j = rng.sample(idx, 2)
        key = (min(i, j), max(i, j))
        if key in seen or rows[i]["cluster"] == rows[j]["cluster"] or rows[i]["length"] == rows[j]["length"]:
            continue
        seen.add(key)
        cross.append((i, j))
    return cross, same


TM_RE = {
    "len1": re.compile(r"Length of Chain_1:\s+(\d+)"),
    "len2": re.compile(r"Length of Chain_2:\s+(\d+)"),
    "aligned": re.compile(r"Aligned length=\s*(\d+), RMSD=\s*([\d.]+)"),
    "tm1": re.compile(r"TM-score=\s*([\d.]+) \(if normalized by length of Chain_1"),
    "tm2": re.compile(r"TM-score=\s*([\d.]+) \(if normalized by length of Chain_2"),
}


def run_tmalign(a, b):
    out = subprocess.run(["TMalign", a, b], capture_output=True, text=True, check=True).stdout
    m = {k: r.search(out) for k, r in TM_RE.items()}
    return {
        "tm_a": float(m["tm1"].group(1)),
        "tm_b": float(m["tm2"].group(1)),
        "rmsd": float(m["aligned"].group(2)),
        "aligned": int(m["aligned"].group(1)),
        "len_a": int(m["len1"].group(1)),
        "len_b": int(m["len2"].group(1)),
    }


def run_ours(exe, a, b):
    """`protforge eval tm A B --json` for one pair; adds the wall time of the call as `seconds`."""
    t0 = time.perf_counter()
    out = subprocess.run([exe, "eval", "tm", a, b, "--json", "--threads", "1"],
                         capture_output=True, text=True, check=True).stdout
    res = json.loads(out)
    res["seconds"] = time.perf_counter() - t0
    return res


def pct(values, q):
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarise(label, ref, ours):
    d_a = [abs(r["tm_a"] - o["tm_a"]) for r, o in zip(ref, ours)]
    d_b = [abs(r["tm_b"] - o["tm_b"]) for r, o in zip(ref, ours)]
    d_rmsd = [abs(r["rmsd"] - o["rmsd"]) for r, o in zip(ref, ours)]
    d_ali = [abs(r["aligned"] - o["aligned"]) for r, o in zip(ref, ours)]
    d_max = [max(x, y) for x, y in zip(d_a, d_b)]
    n = len(ref)
    print(f"\n== {label}: {n} pairs, reference TM (by chain 2) median {statistics.median(r['tm_b'] for r in ref):.3f}")
    print(f"|dTM_a|   median {statistics.median(d_a):.4f}  p95 {pct(d_a, 0.95):.4f}  max {max(d_a):.4f}")
    print(f"|dTM_b|   median {statistics.median(d_b):.4f}  p95 {pct(d_b, 0.95):.4f}  max {max(d_b):.4f}")
    print(f"max(|dTM_a|,|dTM_b|) median {statistics.median(d_max):.4f}  p95 {pct(d_max, 0.95):.4f}")
    print(f"pairs with |dTM| <= 0.001: {sum(d <= 0.001 for d in d_max)}/{n}; <= 0.01: {sum(d <= 0.01 for d in d_max)}/{n}")
    print(f"|dRMSD| (A) median {statistics.median(d_rmsd):.3f}  p95 {pct(d_rmsd, 0.95):.3f}")
    print(f"|dAligned|  median {statistics.median(d_ali):.1f}  p95 {pct(d_ali, 0.95):.1f}  identical {sum(d == 0 for d in d_ali)}/{n}")
    return {"n": n, "median_dtm_a": statistics.median(d_a), "p95_dtm_a": pct(d_a, 0.95),
            "median_dtm_b": statistics.median(d_b), "p95_dtm_b": pct(d_b, 0.95),
            "median_drmsd": statistics.median(d_rmsd), "p95_drmsd": pct(d_rmsd, 0.95),
            "aligned_identical": sum(d == 0 for d in d_ali)}


def timing(exe, rows, pdbs, tmp, n_chains, seed):
    rng = random.Random(seed + 1)
    sel = sorted(rng.sample(range(len(rows)), n_chains))
    lens = [int(rows[i]["length"]) for i in sel]
    print(f"\n== all-vs-all timing: {n_chains} chains ({n_chains * (n_chains - 1) // 2} pairs), "
          f"lengths {min(lens)}-{max(lens)}, median {statistics.median(lens)}")
    folder = tmp / "ava"
    folder.mkdir()
    for i in sel:
        (folder / Path(pdbs[i]).name).symlink_to(pdbs[i])
    t0 = time.time()
    out = subprocess.run([exe, "eval", "backbones", str(folder), "--json", "--threads", "2", "-q"],
                         capture_output=True, text=True, check=True).stdout
    t_ours = time.time() - t0
    n_read = json.loads(out)["n"]
    print(f"ours (protforge eval backbones --threads 2: read + geometry/DSSP + pairwise_tm on {n_read} files): {t_ours:.2f} s")
    pairs_file = tmp / "ava_pairs.txt"
    with open(pairs_file, "w") as fh:
        for a in range(len(sel)):
            for b in range(a + 1, len(sel)):
                fh.write(f"{pdbs[sel[a]]} {pdbs[sel[b]]}\n")
    t0 = time.time()
    subprocess.run(f"xargs -P 2 -n 2 TMalign < {pairs_file} > /dev/null", shell=True, check=True)
    t_ref = time.time() - t0
    print(f"TMalign (xargs -P 2): {t_ref:.2f} s")
    return {"n_chains": n_chains, "ours_s": t_ours, "tmalign_s": t_ref}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "structures")
    ap.add_argument("--cross", type=int, default=200, help="pairs from different clusters")
    ap.add_argument("--same", type=int, default=50, help="pairs from the same cluster")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protforge", default=str(REPO / "target" / "release" / "protforge"),
                    help="protforge binary (default: target/release/protforge)")
    ap.add_argument("--timing", action="store_true", help="also time all-vs-all on 100 chains")
    ap.add_argument("--timing-chains", type=int, default=100)
    ap.add_argument("--json-out", type=Path, help="write the summary as JSON here")
    ap.add_argument("--show-worst", type=int, default=8)
    args = ap.parse_args()

    rows = load_chains(args.data)
    pdbs = [str(args.data / r["pdb_file"]) for r in rows]
    cross, same = pick_pairs(rows, args.cross, args.same, args.seed)
    pairs = cross + same
    print(f"{len(rows)} val chains; {len(cross)} cross-cluster + {len(same)} same-cluster pairs (seed {args.seed})")

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        t0 = time.time()
        with ThreadPoolExecutor(max_workers=2) as ex:
            ref = list(ex.map(lambda ij: run_tmalign(pdbs[ij[0]], pdbs[ij[1]]), pairs))
        t_ref = time.time() - t0
        t0 = time.time()
        ours = [run_ours(args.protforge, pdbs[i], pdbs[j]) for i, j in pairs]
        t_ours = time.time() - t0
        print(f"wall: TMalign {t_ref:.1f} s (2 processes), ours {t_ours:.1f} s (1 process per pair, 1 thread, serial)")

        mism = [k for k, (r, o) in enumerate(zip(ref, ours)) if (r["len_a"], r["len_b"]) != (o.get("len_a", r["len_a"]), o.get("len_b", r["len_b"]))]
        if mism:
            print(f"WARNING: {len(mism)} pairs with different chain lengths read", file=sys.stderr)

        summary = {"seed": args.seed}
        summary["all"] = summarise("all pairs", ref, ours)
        summary["cross"] = summarise("different clusters", ref[: len(cross)], ours[: len(cross)])
        if same:
            summary["same"] = summarise("same cluster", ref[len(cross):], ours[len(cross):])
        big = [o["seconds"] for o in ours if min(o["len_a"], o["len_b"]) >= 250]
        if big:
            print(f"\nour time per pair with both chains >= 250 residues (incl. process start and reading): "
                  f"median {statistics.median(big) * 1e3:.1f} ms over {len(big)} pairs")

        worst = sorted(range(len(pairs)), key=lambda k: -max(abs(ref[k]["tm_a"] - ours[k]["tm_a"]), abs(ref[k]["tm_b"] - ours[k]["tm_b"])))
        print(f"\nworst {args.show_worst} pairs (tm_a, tm_b, rmsd, aligned: TMalign / ours):")
        for k in worst[: args.show_worst]:
            i, j = pairs[k]
            r, o = ref[k], ours[k]
            print(f"  {Path(pdbs[i]).name[:40]:40s} {Path(pdbs[j]).name[:40]:40s} "
                  f"{r['tm_a']:.4f}/{o['tm_a']:.4f} {r['tm_b']:.4f}/{o['tm_b']:.4f} "
                  f"{r['rmsd']:.2f}/{o['rmsd']:.2f} {r['aligned']}/{o['aligned']}")

        if args.timing:
            summary["timing"] = timing(args.protforge, rows, pdbs, tmp, args.timing_chains, args.seed)
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
