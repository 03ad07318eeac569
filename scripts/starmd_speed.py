#!/usr/bin/env python3
"""STAR-MD rollout speed against OpenMM on the same protein and machine, side by side in one
run (the STAR-MD issue's "Speed" figure), plus rollout memory against frame count.

    python3 scripts/starmd_speed.py --weights weights/starmd --protein 2YSF --dt-ns 0.1 \
        --frames 10 100 --openmm-ps 40 --threads 2 --json docs/bench/speed_starmd.json
    # memory against frame count with the KV cache over the whole history
    python3 scripts/starmd_speed.py --weights weights/starmd --protein 2YSF --dt-ns 0.1 \
        --frames 10 100 400 --openmm-ps 40 --threads 2 --context-frames all --json docs/bench/speed_starmd_all.json

For the protein ID of data/md/proteins.tsv it uses the committed OpenMM system
`data/md/traj/<ID>/prepared.pdb` (the pdbfixer output the reference run simulated) and its
backbone `topology.pdb` as the rollout's starting structure. OpenMM runs `data/md/simulate.py`
with the reference settings (amber99sbildn + OBC, 4 fs, 300 K) for `--openmm-ps` of production
after 10 ps of equilibration, and its production ns/day is read from the run's manifest. Each
rollout runs `protforge rollout` for every frame count; its simulated ns per wall-hour (frames ×
dt over wall time, start-up included), its peak RSS and the KV-cache bytes after every frame
come from its manifest and /proc. Run it with the machine otherwise idle (or pause other jobs
with kill -STOP / kill -CONT): both sides get the same `--threads`.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def peak_rss_mb(cmd, env=None):
    """Run `cmd`, exit on failure, return (peak RSS in MB, wall seconds)."""
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(cmd), p.stderr.strip()[-2000:]))
    kb = int(p.stderr.strip().splitlines()[-1])
    return kb / 1024.0, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "protforge"))
    ap.add_argument("--weights", required=True)
    ap.add_argument("--protein", default="2YSF", help="an id of data/md/proteins.tsv with a committed run")
    ap.add_argument("--dt-ns", type=float, default=0.1)
    ap.add_argument("--frames", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--openmm-ps", type=float, default=40.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--context-frames", help="passed to rollout: a number or `all` (KV cache over the whole history, "
                    "memory linear in the frame count); default: the training window minus one (constant memory)")
    ap.add_argument("--json")
    a = ap.parse_args()

    run_dir = os.path.join(ROOT, "data", "md", "traj", a.protein)
    prepared, topology = os.path.join(run_dir, "prepared.pdb"), os.path.join(run_dir, "topology.pdb")
    for f in (prepared, topology):
        if not os.path.isfile(f):
            sys.exit("%s: missing (run the MD queue for %s first)" % (f, a.protein))
    n_res = sum(1 for line in open(topology) if line.startswith("ATOM") and line[12:16].strip() == "CA")

    result = {"protein": a.protein, "residues": n_res, "threads": a.threads, "dt_ns": a.dt_ns, "weights": a.weights,
              "context_frames": a.context_frames or "default"}
    with tempfile.TemporaryDirectory() as tmp:
        md_out = os.path.join(tmp, "openmm")
        cmd = [sys.executable, os.path.join(ROOT, "data", "md", "simulate.py"), prepared, "--out", md_out, "--ns", str(a.openmm_ps / 1000.0),
               "--seed", "1", "--threads", str(a.threads), "--equil-ps", "10", "--commit-ps", str(a.openmm_ps), "--quiet"]
        rss, wall = peak_rss_mb(cmd)
        m = json.load(open(os.path.join(md_out, "manifest.json")))
        result["openmm"] = {"production_ns": m["ns"], "ns_per_day": m["ns_per_day"], "ns_per_hour": m["ns_per_day"] / 24.0,
                            "wall_s_total": round(wall, 1), "peak_rss_mb": round(rss, 1), "openmm_version": m.get("openmm_version")}
        print("OpenMM   %s (%d aa, %d threads): %.2f ns/day = %.3f ns/hour (production), peak RSS %.0f MB"
              % (a.protein, n_res, a.threads, m["ns_per_day"], m["ns_per_day"] / 24.0, rss), flush=True)
        result["rollouts"] = []
        for frames in a.frames:
            out = os.path.join(tmp, "roll_%d" % frames, "traj.xtc")
            os.makedirs(os.path.dirname(out))
            cmd = [a.bin, "--no-progress", "--threads", str(a.threads), "--weights", a.weights, "rollout", "--init", topology,
                   "--frames", str(frames), "--dt-ns", str(a.dt_ns), "--out", out, "--seed", "0"]
            if a.context_frames:
                cmd += ["--context-frames", a.context_frames]
            rss, wall = peak_rss_mb(cmd)
            rm = json.load(open(os.path.join(os.path.dirname(out), "manifest.json")))
            kv = rm.get("kv_cache_bytes") or []
            r = {"frames": frames, "wall_s": round(wall, 2), "simulated_ns": frames * a.dt_ns,
                 "ns_per_hour": frames * a.dt_ns / wall * 3600.0, "peak_rss_mb": round(rss, 1),
                 "kv_cache_mb_last": round(kv[-1] / 2**20, 3) if kv else None}
            r["speedup_vs_openmm"] = r["ns_per_hour"] / result["openmm"]["ns_per_hour"]
            result["rollouts"].append(r)
            print("STAR-MD  %d frames × %.3g ns: %.1f s wall, %.1f ns/hour (%.0f× OpenMM), peak RSS %.0f MB, KV cache after the last frame %.2f MB"
                  % (frames, a.dt_ns, wall, r["ns_per_hour"], r["speedup_vs_openmm"], rss, r["kv_cache_mb_last"] or 0), flush=True)
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(result, f, indent=2)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
