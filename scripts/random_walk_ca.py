#!/usr/bin/env python3
"""Random-walk CA baseline for `protforge eval backbones` (PAR issue, baseline (c)).

Each chain is a self-avoiding random walk with CA-CA bonds of exactly 3.8 A, CA pseudo bond
angles drawn uniformly from [80, 150] degrees, uniform pseudo-dihedrals, and rejection of any
step that comes within 4.0 A of an earlier non-adjacent CA. Written as CA-only poly-GLY PDB files.

    python3 scripts/random_walk_ca.py --lengths 50:200:25 --num-samples 15 --seed 0 --out /tmp/rw
"""
import argparse
import math
import os

import numpy as np


def place(a, b, c, bond, angle, dihedral):
    """Point d with |cd| = bond, angle(b, c, d) = angle, dihedral(a, b, c, d) = dihedral (radians)."""
    bc = c - b
    bc /= np.linalg.norm(bc)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    d2 = np.array([-bond * math.cos(angle), bond * math.sin(angle) * math.cos(dihedral), bond * math.sin(angle) * math.sin(dihedral)])
    return c + d2[0] * bc + d2[1] * m + d2[2] * n


def walk(n, rng, bond=3.8, min_dist=4.0, tries=200):
    while True:
        pts = [np.zeros(3), np.array([bond, 0.0, 0.0])]
        ang = math.radians(rng.uniform(80, 150))
        pts.append(pts[1] + bond * np.array([-math.cos(ang), math.sin(ang), 0.0]))
        ok = True
        while len(pts) < n and ok:
            for _ in range(tries):
                d = place(pts[-3], pts[-2], pts[-1], bond, math.radians(rng.uniform(80, 150)), rng.uniform(-math.pi, math.pi))
                if len(pts) < 3 or np.min(np.linalg.norm(np.array(pts[:-1]) - d, axis=1)) >= min_dist:
                    pts.append(d)
                    break
            else:
                ok = False
        if ok:
            x = np.array(pts[:n])
            return x - x.mean(axis=0)


def write_pdb(path, ca):
    lines = []
    for i, p in enumerate(ca):
        lines.append("ATOM  %5d  CA  GLY A%4d    %8.3f%8.3f%8.3f  1.00  0.00           C" % (i + 1, i + 1, p[0], p[1], p[2]))
    lines.append("TER")
    lines.append("END")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="50:200:25", help="START:STOP:STEP, stop inclusive")
    ap.add_argument("--num-samples", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    start, stop, step = (int(v) for v in a.lengths.split(":"))
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    k = 0
    for n in range(start, stop + 1, step):
        for _ in range(a.num_samples):
            write_pdb(os.path.join(a.out, "rw_%03d.pdb" % k), walk(n, rng))
            k += 1
    print("wrote %d random walks to %s" % (k, a.out))


if __name__ == "__main__":
    main()
