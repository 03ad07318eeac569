#!/usr/bin/env python3
"""Cross-check protforge's XTC and DCD output against mdtraj.

Our trajectories must load in mdtraj with the same coordinates as the multi-model PDB
written alongside, to XTC precision (0.001 nm) and to float32 precision for DCD.

How to run (from the workspace root; needs python3 with numpy and mdtraj):

    cargo test --release -p protforge-structure --test trajectory -- --ignored write_files_for_mdtraj_check
    python3 scripts/check_traj_mdtraj.py            # or: ... target/traj_check

The cargo step writes target/traj_check/{top.pdb, traj.pdb, traj.xtc, traj.dcd}: 6 perturbed
frames of tests/fixtures/hiv_capsid_ctd_1a8o.pdb (70 residues, 280 backbone atoms).
Exit status is non-zero if any tolerance is exceeded.
"""
import sys
from pathlib import Path

import mdtraj
import numpy as np

XTC_TOL_NM = 1e-3   # XTC stores 1/1000 nm; rounding error is at most 0.0005 nm
DCD_TOL_NM = 1e-5   # DCD stores float32 Angstrom (1e-4 A = 1e-5 nm)
PDB_TOL_NM = 1e-4   # PDB stores 0.001 A


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "target" / "traj_check"
    top = str(root / "top.pdb")
    ref = mdtraj.load(str(root / "traj.pdb"))  # multi-model PDB, our own writer
    ok = True
    print(f"reference: {ref.n_frames} frames x {ref.n_atoms} atoms from traj.pdb")
    for name, tol in [("traj.xtc", XTC_TOL_NM), ("traj.dcd", DCD_TOL_NM)]:
        t = mdtraj.load(str(root / name), top=top)
        if t.xyz.shape != ref.xyz.shape:
            print(f"{name}: shape {t.xyz.shape} != {ref.xyz.shape}")
            ok = False
            continue
        diff = np.abs(t.xyz - ref.xyz)
        print(f"{name}: {t.n_frames} frames x {t.n_atoms} atoms, max |diff| = {diff.max():.2e} nm "
              f"(tol {tol:.0e} + PDB rounding {PDB_TOL_NM:.0e}), mean {diff.mean():.2e} nm, "
              f"times {np.round(t.time, 4).tolist()} ps")
        if diff.max() > tol + PDB_TOL_NM:
            ok = False
    # The topology PDB alone must equal frame 0.
    top_t = mdtraj.load(top)
    d0 = np.abs(top_t.xyz[0] - ref.xyz[0]).max()
    print(f"top.pdb vs frame 0: max |diff| = {d0:.2e} nm")
    ok &= d0 <= PDB_TOL_NM
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
