#!/usr/bin/env python3
"""PAR benchmarks of the PAR issue: unconditional quality, baselines, motif scaffolding, speed.

Set PROTFORGE_THREADS=N to cap the evaluation's worker threads (e.g. 1 next to a training job).
Every sub-command writes a JSON summary (committed under docs/bench/ for the shipped numbers)
and prints a Markdown table row. It drives the `protforge` binary (PATH or --bin) and reads
../shared/data for the validation set and the motif problems (never copied into the project).

    # (a)/(b) a model's samples: 15 per length at 50..200 step 25 (105 in all)
    python3 scripts/par_benchmark.py uncond --weights weights/par --label par --json docs/bench/uncond_par.json
    # the same samples without idealisation (the model's own geometry)
    python3 scripts/par_benchmark.py uncond --weights weights/par --label par-raw --raw --json docs/bench/uncond_par_raw.json
    # (c) random-walk CA baseline and (d) the validation set itself
    python3 scripts/par_benchmark.py baselines --json-dir docs/bench
    # motif scaffolding on the 24 Genie2 design25 problems, 8 samples each (inpainting, the default)
    python3 scripts/par_benchmark.py motif --weights weights/par --json docs/bench/motif_par.json
    # the same with PAR's teacher forcing between scales only
    python3 scripts/par_benchmark.py motif --weights weights/par --motif-mode teacher-force --json docs/bench/motif_par_teacher_force.json
    # seconds per sample and peak memory at L = 100, 200; default and fast schedules
    python3 scripts/par_benchmark.py speed --weights weights/par --label par --json docs/bench/speed_par.json
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DATASET = os.path.join(ROOT, "data", "protforge_v1.safetensors")
KEYS = ["n", "ca_bond_ok_frac", "clash_frac", "helix_frac", "strand_frac", "median_rg_ratio", "mean_pairwise_tm", "clusters_tm05", "median_max_tm_to_reference"]


def run(cmd, **kw):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(cmd), p.stderr.strip()))
    return p.stdout, time.time() - t0


def evaluate(binary, folder):
    threads = ["--threads", os.environ["PROTFORGE_THREADS"]] if os.environ.get("PROTFORGE_THREADS") else []
    out, secs = run([binary, "--no-progress", *threads, "eval", "backbones", folder, "--reference", DATASET, "--json"])
    agg = json.loads(out)
    agg = agg.get("aggregate", agg)
    agg["coil_frac"] = max(0.0, 1.0 - agg.get("helix_frac", 0.0) - agg.get("strand_frac", 0.0))
    agg["eval_seconds"] = round(secs, 1)
    return agg


def row(label, agg):
    f = lambda k, d=3: ("%.*f" % (d, agg[k])) if isinstance(agg.get(k), (int, float)) else "–"
    return "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        label, agg.get("n"), f("ca_bond_ok_frac"), f("clash_frac"), f("helix_frac", 2), f("strand_frac", 2), f("coil_frac", 2),
        f("median_rg_ratio", 2), f("mean_pairwise_tm"), agg.get("clusters_tm05", "–"), f("median_max_tm_to_reference"))


HEADER = ("| set | n | CA–CA ok | clash frac | H | E | C | median Rg ratio | mean pairwise TM | clusters @TM0.5 | median novelty max-TM |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def save(path, obj):
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(obj, f, indent=2)
        os.replace(path + ".tmp", path)


def cmd_uncond(a):
    out = a.out or tempfile.mkdtemp(prefix="par_uncond_")
    gen = [a.bin, "--no-progress", "--weights", a.weights, "generate", "--lengths", a.lengths, "--num-samples", str(a.num_samples),
           "--seed", str(a.seed), "--out", out, "--force"] + (["--schedule", a.schedule] if a.schedule else []) + (["--no-idealize"] if a.raw else [])
    _, secs = run(gen)
    agg = evaluate(a.bin, out)
    moved = sorted(s["idealize"]["rmsd_moved"] for s in json.load(open(os.path.join(out, "manifest.json")))["samples"] if "idealize" in s)
    if moved:
        agg["idealize_rmsd_moved_median"] = round(moved[len(moved) // 2], 3)
        agg["idealize_rmsd_moved_mean"] = round(sum(moved) / len(moved), 3)
    agg["idealized"] = not a.raw
    agg.update(label=a.label, weights=a.weights, lengths=a.lengths, num_samples=a.num_samples, seed=a.seed,
               schedule=a.schedule or "default", generate_seconds=round(secs, 1), command=" ".join(gen))
    save(a.json, agg)
    print(HEADER)
    print(row(a.label, agg))


def ca_count(path):
    with open(path) as f:
        return sum(1 for l in f if l.startswith("ATOM") and l[12:16] == " CA ")


def cmd_baselines(a):
    results = {}
    with tempfile.TemporaryDirectory() as rw:
        run([sys.executable, os.path.join(ROOT, "scripts", "random_walk_ca.py"), "--lengths", a.lengths, "--num-samples", str(a.num_samples),
             "--seed", str(a.seed), "--out", rw])
        results["random_walk"] = evaluate(a.bin, rw)
    with tempfile.TemporaryDirectory() as val:
        lo, hi = (int(v) for v in a.lengths.split(":")[:2])
        for p in sorted(glob.glob(os.path.join(SHARED, "structures", "pdb", "val", "*.pdb"))):
            if lo <= ca_count(p) <= hi:
                os.symlink(p, os.path.join(val, os.path.basename(p)))
        results["validation_set"] = evaluate(a.bin, val)
    print(HEADER)
    for k, v in results.items():
        print(row(k, v))
        if a.json_dir:
            save(os.path.join(a.json_dir, "uncond_%s.json" % k), v)


def cmd_motif(a):
    problems = sorted(glob.glob(os.path.join(SHARED, "motifs", "genie2_design25", "*.pdb")))
    base = a.out or tempfile.mkdtemp(prefix="par_motif_")
    per = []
    print("motif mode: %s" % a.motif_mode)
    print("| problem | contig | lengths | samples | success (motif CA-RMSD < 1 Å) | valid successes | median motif RMSD (Å) | CA–CA ok | clash frac | s/sample |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in problems:
        name = os.path.basename(p)[:-4]
        out = os.path.join(base, name)
        cmd = [a.bin, "--no-progress", "--weights", a.weights, "scaffold", "--motif", p, "--num-samples", str(a.num_samples), "--seed", str(a.seed),
               "--motif-mode", a.motif_mode, "--out", out, "--force"] + (["--schedule", a.schedule] if a.schedule else [])
        _, secs = run(cmd)
        man = json.load(open(os.path.join(out, "manifest.json")))
        # Per-sample validity from `eval backbones`: every CA-CA bond in range and no clash.
        ev, _ = run([a.bin, "--no-progress", "eval", "backbones", out, "--no-diversity", "--json"])
        by_file = {os.path.basename(s["file"]): s for s in json.loads(ev)["structures"]}
        samples = []
        for s in man["samples"]:
            e = by_file[s["file"]]
            samples.append(dict(file=s["file"], motif_ca_rmsd=s["motif_ca_rmsd"], ca_bonds_ok=e["ca_bonds"]["n_ok"], ca_bonds=e["ca_bonds"]["n_bonds"],
                                has_clash=e["clashes"]["has_clash"], valid=e["ca_bonds"]["n_ok"] == e["ca_bonds"]["n_bonds"] and not e["clashes"]["has_clash"]))
        rmsds = sorted(s["motif_ca_rmsd"] for s in samples)
        ok = [s for s in samples if s["motif_ca_rmsd"] < 1.0]
        # Validity of the successful samples (all samples when none succeeded, marked so).
        judged = ok or samples
        bonds_ok = sum(s["ca_bonds_ok"] for s in judged) / max(1, sum(s["ca_bonds"] for s in judged))
        clash = sum(s["has_clash"] for s in judged) / len(judged)
        valid_ok = sum(1 for s in ok if s["valid"])
        rec = dict(problem=man["problem"], file=name, contig=man["contig"], length=man["length"], samples=len(rmsds), successes=len(ok),
                   valid_successes=valid_ok, success_frac=len(ok) / len(rmsds), median_rmsd=rmsds[len(rmsds) // 2], min_rmsd=rmsds[0],
                   validity_of="successes" if ok else "all samples", ca_bond_ok_frac=bonds_ok, clash_frac=clash,
                   seconds_per_sample=secs / len(rmsds), per_sample=samples)
        per.append(rec)
        print("| %s | `%s` | %s | %d | %d/%d | %d/%d | %.2f | %.3f | %.2f | %.1f |" % (
            name, man["contig"], "%s-%s" % tuple(man["length"]) if man["length"] else "contig", len(rmsds), len(ok), len(rmsds), valid_ok, len(rmsds),
            rec["median_rmsd"], rec["ca_bond_ok_frac"], rec["clash_frac"], rec["seconds_per_sample"]), flush=True)
    solved = sum(1 for r in per if r["successes"] > 0)
    solved_valid = sum(1 for r in per if r["valid_successes"] > 0)
    print("\nproblems with at least one success: %d / %d; with at least one valid success: %d / %d" % (solved, len(per), solved_valid, len(per)))
    save(a.json, dict(weights=a.weights, motif_mode=a.motif_mode, num_samples=a.num_samples, seed=a.seed, schedule=a.schedule or "default", problems=per,
                      solved=solved, solved_valid=solved_valid))


def peak_rss_mb(cmd):
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(cmd), p.stderr.strip()[-2000:]))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return int(m.group(1)) / 1024 if m else None


def cmd_speed(a):
    res = []
    print("| model | L | schedule | s/sample | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for weights, label in zip(a.weights, a.label):
            for length in a.speed_lengths:
                for sched_name, sched in (("default", None), ("fast", a.fast)):
                    out = os.path.join(tmp, "%s_%d_%s" % (label, length, sched_name))
                    cmd = [a.bin, "--no-progress", "--weights", weights, "generate", "--length", str(length), "--num-samples", str(a.num_samples),
                           "--batch-size", str(a.num_samples), "--seed", "0", "--out", out, "--backbone", "ca"] + (["--schedule", sched] if sched else [])
                    t0 = time.time()
                    rss = peak_rss_mb(cmd)
                    secs = (time.time() - t0) / a.num_samples
                    r = dict(model=label, weights=weights, length=length, schedule=sched or "default", seconds_per_sample=round(secs, 2),
                             peak_rss_mb=round(rss, 1) if rss else None, batch=a.num_samples)
                    res.append(r)
                    print("| %s | %d | %s | %.2f | %s |" % (label, length, r["schedule"], secs, r["peak_rss_mb"]), flush=True)
    save(a.json, res)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "protforge"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("uncond")
    u.add_argument("--weights", required=True)
    u.add_argument("--label", required=True)
    u.add_argument("--schedule")
    u.add_argument("--raw", action="store_true", help="raw sampled CA traces (generate --no-idealize)")
    b = sub.add_parser("baselines")
    b.add_argument("--json-dir")
    for p in (u, b):
        p.add_argument("--lengths", default="50:200:25")
        p.add_argument("--num-samples", type=int, default=15)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out")
    u.add_argument("--json")
    m = sub.add_parser("motif")
    m.add_argument("--weights", required=True)
    m.add_argument("--num-samples", type=int, default=8)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--schedule")
    m.add_argument("--motif-mode", default="inpaint", choices=["inpaint", "teacher-force"])
    m.add_argument("--out")
    m.add_argument("--json")
    s = sub.add_parser("speed")
    s.add_argument("--weights", nargs="+", required=True)
    s.add_argument("--label", nargs="+", required=True)
    s.add_argument("--speed-lengths", type=int, nargs="+", default=[100, 200])
    s.add_argument("--fast", default="sde:400,ode:2")
    s.add_argument("--num-samples", type=int, default=4)
    s.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "speed" and len(a.weights) != len(a.label):
        sys.exit("--weights and --label need the same number of entries")
    {"uncond": cmd_uncond, "baselines": cmd_baselines, "motif": cmd_motif, "speed": cmd_speed}[a.cmd](a)


if __name__ == "__main__":
    main()
