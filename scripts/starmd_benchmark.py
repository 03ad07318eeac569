#!/usr/bin/env python3
"""STAR-MD validation benchmark (the STAR-MD issue's "What to report"): long rollouts on the
held-out proteins against their OpenMM reference, with the oracle and baselines side by side.

    python3 scripts/starmd_benchmark.py --weights weights/starmd --frames 1000 --dt-ns 0.1 \
        --out runs/starmd_bench --json docs/bench/starmd_val.json

For every validation protein of data/md/proteins.tsv (split `val`, at least two replicas run by
the MD queue) the reference is replica 1 (`data/md/traj/<ID>/traj.xtc`) and every ensemble starts
from its frame 0 (`topology.pdb`). Compared, each with `protforge eval trajectory ... --reference
<replica 1> --json`:

  model          protforge rollout, the weights' context noise
  no-ctx-noise   the same weights, rollout with --context-noise 0 (the inference-time ablation)
  static         the initial structure plus Gaussian noise matched to the reference RMSF: residue
                 i of every frame is shifted rigidly by N(0, (RMSF_i^2 / 3) I), RMSF_i from the
                 reference after superposition (`eval trajectory` on the reference itself)
  oracle         replica 2, an independent OpenMM run of the same protein (`<ID>_r2`)

Extra validation: the real trajectories converted into data/md/staged/ (or staged/local/) are
rolled out from their first frame and compared the same way (`--staged`).

Long-horizon stability comes from the same rollouts: per-frame validity (no CA clash < 3.0 Å,
no CA-CA bond > 4.2 Å) and RMSD to the initial structure, summarised over frame windows.

Rollouts are the slow part (~1-2 s per frame for a 20-60-residue protein with 200 diffusion
steps on one thread); they are kept in --out and reused when the file exists (delete to redo).
PROTFORGE_THREADS=N caps the worker threads of every protforge call.
"""
import argparse
import csv
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MD = os.path.join(ROOT, "data", "md")
METHODS = ["model", "no-ctx-noise", "static", "oracle"]


def run(cmd):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(cmd), p.stderr.strip()[-2000:]))
    return p.stdout, time.time() - t0


def threads():
    t = os.environ.get("PROTFORGE_THREADS")
    return ["--threads", t] if t else []


def evaluate(a, traj, topology, reference):
    out, _ = run([a.bin, "--no-progress", *threads(), "eval", "trajectory", traj, "--topology", topology, "--reference", reference, "--json"])
    return json.loads(out)


def static_baseline(a, topology, reference, n_frames, out_path, seed):
    """Initial structure + per-residue rigid Gaussian shifts with the reference's RMSF."""
    import mdtraj
    import numpy as np

    ref_eval = evaluate(a, reference, topology, reference)
    rmsf = np.asarray(ref_eval["rmsf"])  # Å, one per residue
    top = mdtraj.load(topology)
    res_of_atom = np.array([atom.residue.index for atom in top.topology.atoms])
    if rmsf.shape[0] != top.topology.n_residues:
        sys.exit("%s: %d residues but the reference RMSF has %d" % (topology, top.topology.n_residues, rmsf.shape[0]))
    rng = np.random.default_rng(seed)
    sigma_nm = rmsf / np.sqrt(3.0) / 10.0
    # Frame 0 is the initial structure itself, as in a rollout; then n_frames noisy copies.
    shifts = rng.normal(size=(n_frames + 1, rmsf.shape[0], 3)) * sigma_nm[None, :, None]
    shifts[0] = 0.0
    xyz = top.xyz[0][None, :, :] + shifts[:, res_of_atom, :]
    traj = mdtraj.Trajectory(xyz.astype(np.float32), top.topology)
    tmp = out_path + ".tmp.xtc"
    traj.save_xtc(tmp)
    os.replace(tmp, out_path)


def rollout(a, init, out_path, extra):
    """`protforge rollout` to out_path, alone in its folder (it writes the trajectory atomically,
    then manifest.json and <stem>_topology.pdb beside it); skipped when that folder already
    holds a finished run's manifest."""
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    manifest = os.path.join(os.path.dirname(out_path), "manifest.json")
    if os.path.exists(out_path) and os.path.exists(manifest):
        return json.load(open(manifest)).get("wall_time_s")
    cmd = [a.bin, "--no-progress", *threads(), "--weights", a.weights, "rollout", "--init", init, "--frames", str(a.frames),
           "--dt-ns", str(a.dt_ns), "--seed", str(a.seed), "--out", out_path, "--force"] + (["--steps", str(a.steps)] if a.steps else []) + extra
    _, secs = run(cmd)
    return secs


def windows(values, n):
    """Mean of `values` over n equal frame windows (fewer if there are fewer frames)."""
    n = max(1, min(n, len(values)))
    size = len(values) / n
    return [sum(values[int(i * size):int((i + 1) * size)]) / max(1, int((i + 1) * size) - int(i * size)) for i in range(n)]


def summarise(ev):
    ref = ev.get("reference", {})
    valid = [1.0 if v else 0.0 for v in ev["valid"]]
    return dict(
        n_frames=ev["n_frames"],
        rmsf_pearson=ref.get("rmsf_pearson"),
        rmsf_mean=sum(ev["rmsf"]) / len(ev["rmsf"]),
        pairwise_rmsd_mean=ev["pairwise_rmsd"]["mean"],
        ref_pairwise_rmsd_mean=ref.get("pairwise_rmsd", {}).get("mean"),
        pca_w2=ref.get("pca_w2"),
        pca_jsd=ref.get("pca_jsd"),
        valid_frac=ev["valid_frac"],
        valid_by_window=windows(valid, 10),
        rmsd_to_initial_by_window=windows(ev["rmsd_to_initial"], 10),
        rmsd_to_initial_final=ev["rmsd_to_initial"][-1],
    )


def cases(a):
    rows = []
    with open(os.path.join(MD, "proteins.tsv")) as f:
        for r in csv.DictReader((l for l in f if not l.startswith("#")), delimiter="\t"):
            if r["split"] != "val":
                continue
            ref_dir, oracle_dir = os.path.join(MD, "traj", r["id"]), os.path.join(MD, "traj", r["id"] + "_r2")
            if not (os.path.isfile(os.path.join(ref_dir, "traj.xtc")) and os.path.isfile(os.path.join(oracle_dir, "traj.xtc"))):
                print("skipping %s: replicas 1 and 2 are not both run" % r["id"], file=sys.stderr)
                continue
            rows.append(dict(name=r["id"], topology=os.path.join(ref_dir, "topology.pdb"), reference=os.path.join(ref_dir, "traj.xtc"),
                             oracle=os.path.join(oracle_dir, "traj.xtc"), kind="openmm"))
    if a.staged:
        for d in sorted(glob.glob(os.path.join(MD, "staged", "*")) + glob.glob(os.path.join(MD, "staged", "local", "*"))):
            if os.path.isfile(os.path.join(d, "traj.xtc")) and os.path.isfile(os.path.join(d, "topology.pdb")):
                rows.append(dict(name="staged/" + os.path.basename(d), topology=os.path.join(d, "topology.pdb"),
                                 reference=os.path.join(d, "traj.xtc"), oracle=None, kind="staged"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "protforge"))
    ap.add_argument("--weights", required=True)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--dt-ns", type=float, default=0.1)
    ap.add_argument("--steps", type=int, help="reverse diffusion steps per frame (default: the weights')")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--staged", action="store_true", help="also the staged real trajectories in data/md/staged/")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--out", required=True, help="folder for the rollouts (reused when present)")
    ap.add_argument("--json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    only = set(a.only.split(",")) if a.only else None
    results = []
    print("| protein | ensemble | frames | RMSF r | pairwise RMSD (Å) (ref) | PC W2 | PC JSD | valid frames | RMSD to init, final (Å) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cases(a):
        if only and c["name"] not in only:
            continue
        tag = c["name"].replace("/", "_")
        paths = {}
        timing = {}
        paths["model"] = os.path.join(a.out, tag, "model", "traj.xtc")
        timing["model"] = rollout(a, c["topology"], paths["model"], [])
        paths["no-ctx-noise"] = os.path.join(a.out, tag, "no_ctx_noise", "traj.xtc")
        timing["no-ctx-noise"] = rollout(a, c["topology"], paths["no-ctx-noise"], ["--context-noise", "0"])
        paths["static"] = os.path.join(a.out, tag, "static.xtc")
        if not os.path.exists(paths["static"]):
            static_baseline(a, c["topology"], c["reference"], a.frames, paths["static"], a.seed)
        if c["oracle"]:
            paths["oracle"] = c["oracle"]
        rec = dict(name=c["name"], kind=c["kind"], topology=c["topology"], reference=c["reference"], methods={})
        for m in METHODS:
            if m not in paths:
                continue
            s = summarise(evaluate(a, paths[m], c["topology"], c["reference"]))
            s["file"] = paths[m]
            s["rollout_seconds"] = timing.get(m)
            rec["methods"][m] = s
            f = lambda v, d=2: "–" if v is None else "%.*f" % (d, v)
            print("| %s | %s | %d | %s | %s (%s) | %s | %s | %s | %s |" % (
                c["name"], m, s["n_frames"], f(s["rmsf_pearson"]), f(s["pairwise_rmsd_mean"]), f(s["ref_pairwise_rmsd_mean"]),
                f(s["pca_w2"]), f(s["pca_jsd"]), f(s["valid_frac"], 3), f(s["rmsd_to_initial_final"])), flush=True)
        results.append(rec)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(weights=a.weights, frames=a.frames, dt_ns=a.dt_ns, steps=a.steps, seed=a.seed, cases=results), f, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
