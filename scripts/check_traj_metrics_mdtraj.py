#!/usr/bin/env python3
"""Cross-check `protforge eval trajectory` against mdtraj: CA RMSF (frames superposed on the
topology structure), RMSD to the initial structure, and the no-refit pairwise RMSD mean.

    PATH=$PWD/target/release:$PATH python3 scripts/check_traj_metrics_mdtraj.py TRAJ TOPOLOGY
"""
import json
import subprocess
import sys

import mdtraj as md
import numpy as np


def main():
    traj_path, top_path = sys.argv[1], sys.argv[2]
    ours = json.loads(subprocess.run(["protforge", "eval", "trajectory", traj_path, "--topology", top_path, "--json"],
                                     check=True, capture_output=True, text=True).stdout)
    top = md.load(top_path)
    traj = md.load(traj_path, top=top.topology)
    ca = top.topology.select("name CA and (protein or resname ASH GLH HID HIE HIP LYN CYX)")
    # Superpose every frame onto the topology structure (CA), then fluctuations about the mean.
    traj.superpose(top, 0, atom_indices=ca)
    x = traj.xyz[:, ca, :] * 10.0  # nm -> A
    rmsf = np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))
    rmsd0 = md.rmsd(traj, top, 0, atom_indices=ca) * 10.0
    n = len(x)
    pair = [np.sqrt(((x[i] - x[j]) ** 2).sum(axis=1).mean()) for i in range(n) for j in range(i + 1, n)]
    d_rmsf = np.abs(np.array(ours["rmsf"]) - rmsf).max()
    d_rmsd = np.abs(np.array(ours["rmsd_to_initial"]) - rmsd0).max()
    d_pair = abs(ours["pairwise_rmsd"]["mean"] - float(np.mean(pair)))
    print("%s: %d frames, %d CA: max |dRMSF| %.2e A, max |dRMSD0| %.2e A, |d pairwise mean| %.2e A (mdtraj %s)"
          % (traj_path, n, len(ca), d_rmsf, d_rmsd, d_pair, md.__version__))
    if max(d_rmsf, d_rmsd, d_pair) > 1e-2:
        sys.exit("disagreement above 0.01 A")


if __name__ == "__main__":
    main()
