#!/usr/bin/env python3
"""Validate protforge's fast TM-align modes (`TmAlignMode::Fast`, the schedule of
`TMalign -fast`, and `TmAlignMode::Screen`, the ranking stage of novelty) against our exact
mode and against a `TMalign` binary run with `-fast`.

Pairs are picked as in scripts/compare_tmalign.py (validation chains, fixed seed; default 80
cross-cluster + 20 same-cluster). Ours is the example `tm_pairs` (all three modes in one
process, single thread). The Debian `tm-align` 20190822 binary has no `-fast` option (it
ignores the flag), so pass a build that has it with --tmalign-fast (e.g. a TMalign/US-align
build; not part of this repository).

Usage (from the repository root):
    cargo build --release -p protforge-eval --example tm_pairs
    python3 scripts/compare_tmalign_fast.py --tmalign-fast /path/to/TMalign
"""

import argparse
import importlib.util
import json
import re
import statistics
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("cmp", REPO / "scripts" / "compare_tmalign.py")
cmp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cmp)


# Both report styles: "(if normalized by length of Chain_1" (20190822) and
# "(normalized by length of Structure_1" (newer TMalign / US-align builds).
TM_RE = [re.compile(r"TM-score=\s*([\d.]+) \((?:if )?normalized by length of (?:Chain|Structure)_%d" % k) for k in (1, 2)]


def run_tmalign(exe, a, b, fast):
    out = subprocess.run([exe, a, b] + (["-fast"] if fast else []), capture_output=True, text=True, check=True).stdout
    tm_a, tm_b = (float(r.search(out).group(1)) for r in TM_RE)
    return {"tm_a": tm_a, "tm_b": tm_b}


def stats(label, xs, ys):
    d = [max(abs(x["tm_a"] - y["tm_a"]), abs(x["tm_b"] - y["tm_b"])) for x, y in zip(xs, ys)]
    print(f"{label:38s} median {statistics.median(d):.4f}  p95 {cmp.pct(d, 0.95):.4f}  max {max(d):.4f}  "
          f"<=0.01: {sum(v <= 0.01 for v in d)}/{len(d)}")
    return {"median": statistics.median(d), "p95": cmp.pct(d, 0.95), "max": max(d)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "structures")
    ap.add_argument("--cross", type=int, default=80)
    ap.add_argument("--same", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmalign", default="TMalign", help="reference binary for the exact mode")
    ap.add_argument("--tmalign-fast", default=None, help="a TMalign binary that supports -fast")
    ap.add_argument("--example", default=str(REPO / "target" / "release" / "examples" / "tm_pairs"))
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    rows = cmp.load_chains(args.data)
    pdbs = [str(args.data / r["pdb_file"]) for r in rows]
    cross, same = cmp.pick_pairs(rows, args.cross, args.same, args.seed)
    pairs = cross + same
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as fh:
        for i, j in pairs:
            fh.write(f"{pdbs[i]}\t{pdbs[j]}\n")
        listing = fh.name
    out = subprocess.run(["nice", "-n", "19", args.example, listing], capture_output=True, text=True, check=True).stdout
    ours = [json.loads(line) for line in out.splitlines()]
    with ThreadPoolExecutor(max_workers=2) as ex:
        ref = list(ex.map(lambda ij: run_tmalign(args.tmalign, pdbs[ij[0]], pdbs[ij[1]], False), pairs))
        ref_fast = (list(ex.map(lambda ij: run_tmalign(args.tmalign_fast, pdbs[ij[0]], pdbs[ij[1]], True), pairs))
                    if args.tmalign_fast else None)
    ex_, fa, sc = [o["exact"] for o in ours], [o["fast"] for o in ours], [o["screen"] for o in ours]
    t = {m: sum(o[m]["seconds"] for o in ours) / len(ours) * 1e3 for m in ("exact", "fast", "screen")}
    print(f"{len(pairs)} pairs (seed {args.seed}); max(|dTM_a|, |dTM_b|):")
    summary = {"n": len(pairs), "ms_per_pair": t}
    summary["fast_vs_exact"] = stats("ours fast vs ours exact", fa, ex_)
    summary["screen_vs_exact"] = stats("ours screen vs ours exact", sc, ex_)
    summary["exact_vs_TMalign"] = stats("ours exact vs TMalign", ex_, ref)
    if ref_fast:
        summary["fast_vs_TMalign_fast"] = stats("ours fast vs TMalign -fast", fa, ref_fast)
        summary["TMalign_fast_vs_TMalign"] = stats("TMalign -fast vs TMalign", ref_fast, ref)
    print("mean ms/pair (single thread, wall): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
