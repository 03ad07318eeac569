#!/usr/bin/env python3
"""Reference MD for protforge (STAR-MD training and validation data).

Takes one protein PDB and runs implicit-solvent Langevin dynamics with OpenMM:

  pdbfixer   remove heterogens and water, drop existing hydrogens, add missing heavy atoms,
             add hydrogens at pH 7
  force field  amber99sbildn.xml + amber99_obc.xml (native OBC GB implicit solvent), no cutoff
  system     HBonds constraints, hydrogen mass 1.5 amu
  integrator LangevinMiddleIntegrator, 300 K, friction 1/ps, 4 fs
  protocol   minimise (tolerance 10 kJ/mol/nm), equilibrate 100 ps (velocities drawn at 300 K
             from --seed), then production with one frame every 10 ps (2,500 steps); frame 0 is
             the equilibrated structure at production time 0

Outputs in --out DIR (each written to a temporary file, then renamed):

  topology.pdb   backbone only (N, CA, C, O per residue, in residue order), frame-0 coordinates,
                 original chain id, residue names and numbers; no CRYST1
  traj.xtc       backbone frames, nm, time in ps since the end of equilibration
  prepared.pdb   the full-atom system after pdbfixer (rebuilds the OpenMM system on resume)
  state.xml      OpenMM State (positions, velocities, time) after the last saved frame
  manifest.json  protein, source, settings, ns, frames, stride, seed, timings, versions

A run is resumable and extendable. Progress is committed every --commit-ps of production
(default 100 ps): traj.xtc is rewritten whole (old frames plus new) to a temporary file and
renamed, then state.xml, then manifest.json, so a kill at any moment loses at most one commit
interval and never leaves a half-written file. On resume the production time stored in
state.xml is authoritative; extra XTC frames from an interrupted commit are dropped.

  --ns N        total production target in ns; if DIR already holds a run with the same seed
                and source, it continues it up to N (a no-op when already there)
  --extend N    add N ns of production to the run in DIR

Each invocation that continues a run seeds the Langevin noise with seed*1000 + segment + 1, so
a chunked run is reproducible for the same sequence of chunks but is not bit-identical to one
long run.

Usage:
  simulate.py PDB --out DIR --ns N --seed S [--threads 1] [--chain X] [--name ID]
  simulate.py PDB --out DIR --extend N [--threads 1]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform as _platform
import socket
import sys
import time
from pathlib import Path

SCHEMA = "protforge-md/1"
STRIDE_PS = 10.0
TIMESTEP_FS = 4.0
TEMPERATURE_K = 300.0
FRICTION_PER_PS = 1.0
HYDROGEN_MASS_AMU = 1.5
PH = 7.0
FORCE_FIELD = ["amber99sbildn.xml", "amber99_obc.xml"]
MIN_TOLERANCE = 10.0  # kJ/mol/nm
MIN_MAX_ITER = 5000
PEPTIDE_CN_MAX_A = 2.0  # a C(i)-N(i+1) distance above this is a chain break
BACKBONE = ("N", "CA", "C", "O")
ONE_LETTER = {"ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
              "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
              "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V"}
# Residue names that only encode a protonation or disulfide state; hydrogens are rebuilt anyway.
PROTONATION_VARIANTS = {"HID", "HIE", "HIP", "HSD", "HSE", "HSP", "CYX", "CYM", "ASH", "GLH", "LYN"}


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


def _steps_per_frame() -> int:
    return int(round(STRIDE_PS * 1000.0 / TIMESTEP_FS))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------------------------
# Preparation


def prepare(pdb_path: Path, chain: str | None, replace_nonstandard: bool):
    """pdbfixer the input; returns (topology, positions, fixes dict). Raises InputError."""
    import openmm.app as app
    from pdbfixer import PDBFixer

    try:
        fixer = PDBFixer(filename=str(pdb_path))
    except Exception as e:  # pdbfixer raises assorted errors on malformed files
        raise InputError(f"{pdb_path}: cannot read as PDB/PDBx ({type(e).__name__}: {e})") from None

    fixes: dict = {}
    # Modified residues (often HETATM, e.g. MSE, SEP) must be found before heterogens go.
    fixer.findNonstandardResidues()
    modifiable = {r for r, _ in fixer.nonstandardResidues}
    chains = [c for c in fixer.topology.chains()
              if any(r.name in ONE_LETTER or r in modifiable for r in c.residues())]
    if not chains:
        raise InputError(f"{pdb_path}: no protein chain")
    ids = [c.id for c in chains]
    if chain is not None:
        if chain not in ids:
            raise InputError(f"{pdb_path}: no protein chain {chain!r} (protein chains: {', '.join(repr(i) for i in ids)})")
        keep = next(c for c in chains if c.id == chain)
    elif len(chains) > 1:
        raise InputError(f"{pdb_path}: {len(chains)} protein chains ({', '.join(ids)}); choose one with --chain")
    else:
        keep = chains[0]
    fixer.removeChains([c.index for c in fixer.topology.chains() if c is not keep])
    fixes["chain"] = keep.id

    fixer.findNonstandardResidues()
    modified = [(r, s) for r, s in fixer.nonstandardResidues if r.name not in PROTONATION_VARIANTS]
    if modified and not replace_nonstandard:
        found = ", ".join(f"{r.name}{r.id}->{s}" for r, s in modified)
        raise InputError(f"{pdb_path}: non-standard residues {found}; pass --replace-nonstandard to mutate them to their parents")
    if fixer.nonstandardResidues:
        fixes["renamed_or_replaced_residues"] = ", ".join(f"{r.name}{r.id}->{s}" for r, s in fixer.nonstandardResidues)
        fixer.replaceNonstandardResidues()
    fixer.removeHeterogens(keepWater=False)

    # Missing residues (from SEQRES): drop terminal ones, refuse internal gaps.
    fixer.findMissingResidues()
    chain_len = {c.index: len(list(c.residues())) for c in fixer.topology.chains()}
    internal = {k: v for k, v in fixer.missingResidues.items() if 0 < k[1] < chain_len[k[0]]}
    if internal:
        where = ", ".join(f"{len(v)} before residue index {k[1]}" for k, v in internal.items())
        raise InputError(f"{pdb_path}: missing internal residues ({where}); fill or split the chain first")
    fixes["terminal_missing_residues_ignored"] = sum(len(v) for v in fixer.missingResidues.values())
    fixer.missingResidues = {}

    # Drop existing hydrogens so that protonation at pH 7 and H names come from one place.
    modeller = app.Modeller(fixer.topology, fixer.positions)
    hyd = [a for a in modeller.topology.atoms() if a.element is not None and a.element.symbol == "H"]
    fixes["input_hydrogens_removed"] = len(hyd)
    modeller.delete(hyd)
    fixer.topology, fixer.positions = modeller.topology, modeller.positions

    odd = sorted({r.name for r in fixer.topology.residues() if r.name not in ONE_LETTER})
    if odd:
        raise InputError(f"{pdb_path}: residues that are not standard amino acids: {', '.join(odd)}")

    fixer.findMissingAtoms()
    fixes["missing_heavy_atoms_added"] = sum(len(v) for v in fixer.missingAtoms.values())
    fixes["missing_terminal_atoms_added"] = sum(len(v) for v in fixer.missingTerminals.values())
    fixer.addMissingAtoms()
    fixer.addMissingHydrogens(PH)

    top, pos = fixer.topology, fixer.positions
    top.setPeriodicBoxVectors(None)
    _check_continuous(top, pos, pdb_path)
    return top, pos, fixes


def _check_continuous(top, pos, pdb_path: Path) -> None:
    import openmm.unit as unit

    res = list(top.residues())
    if len(res) < 2:
        raise InputError(f"{pdb_path}: only {len(res)} residue(s); need a peptide chain")
    xyz = pos.value_in_unit(unit.angstrom)
    for a, b in zip(res, res[1:]):
        c = next((x for x in a.atoms() if x.name == "C"), None)
        n = next((x for x in b.atoms() if x.name == "N"), None)
        if c is None or n is None:
            raise InputError(f"{pdb_path}: residue {a.name}{a.id} or {b.name}{b.id} lacks backbone C/N")
        d = math.dist(xyz[c.index], xyz[n.index])
        if d > PEPTIDE_CN_MAX_A:
            raise InputError(f"{pdb_path}: chain break between {a.name}{a.id} and {b.name}{b.id} "
                             f"(C-N {d:.2f} A); fill the gap or split the chain first")


def backbone_topology(top):
    """Backbone-only topology (N, CA, C, O of every residue) and the full-system atom indices."""
    import openmm.app as app

    bb = app.Topology()
    idx: list[int] = []
    for chain in top.chains():
        nc = bb.addChain(chain.id)
        for r in chain.residues():
            atoms = {a.name: a for a in r.atoms()}
            missing = [n for n in BACKBONE if n not in atoms]
            if missing:
                raise InputError(f"residue {r.name}{r.id} lacks backbone atom(s) {', '.join(missing)}")
            nr = bb.addResidue(r.name, nc, id=r.id, insertionCode=r.insertionCode)
            for n in BACKBONE:
                bb.addAtom(n, atoms[n].element, nr)
                idx.append(atoms[n].index)
    return bb, idx


def build_simulation(top, positions, threads: int, integrator_seed: int):
    import openmm
    import openmm.app as app
    import openmm.unit as unit

    ff = app.ForceField(*FORCE_FIELD)
    try:
        system = ff.createSystem(top, nonbondedMethod=app.NoCutoff, constraints=app.HBonds,
                                 hydrogenMass=HYDROGEN_MASS_AMU * unit.amu)
    except ValueError as e:
        raise InputError(f"force field cannot parametrise the structure: {str(e).splitlines()[0]}") from None
    integ = openmm.LangevinMiddleIntegrator(TEMPERATURE_K * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                            TIMESTEP_FS * unit.femtoseconds)
    integ.setRandomNumberSeed(integrator_seed)
    plat = openmm.Platform.getPlatformByName("CPU")
    sim = app.Simulation(top, system, integ, plat, {"Threads": str(threads)})
    sim.context.setPositions(positions)
    return sim


# --------------------------------------------------------------------------------------------
# Trajectory I/O


def write_xtc(path: Path, frames, times_ps) -> None:
    import numpy as np
    from mdtraj.formats import XTCTrajectoryFile

    tmp = path.with_name(path.name + ".tmp")
    xyz = np.asarray(frames, dtype=np.float32)
    t = np.asarray(times_ps, dtype=np.float32)
    step = np.rint(t * 1000.0 / TIMESTEP_FS).astype(np.int32)
    with XTCTrajectoryFile(str(tmp), "w") as f:
        f.write(xyz, time=t, step=step)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_xtc(path: Path):
    from mdtraj.formats import XTCTrajectoryFile

    with XTCTrajectoryFile(str(path), "r") as f:
        xyz, time_ps, _step, _box = f.read()
    return list(xyz), [float(x) for x in time_ps]


def write_pdb(path: Path, top, positions_nm) -> None:
    import io

    import openmm.app as app
    import openmm.unit as unit

    buf = io.StringIO()
    app.PDBFile.writeFile(top, positions_nm * unit.nanometer, buf, keepIds=True)
    _atomic_write_text(path, buf.getvalue())


# --------------------------------------------------------------------------------------------
# Run


class Run:
    """State of one output directory."""

    def __init__(self, out: Path):
        self.out = out
        self.manifest_path = out / "manifest.json"
        self.state_path = out / "state.xml"
        self.xtc_path = out / "traj.xtc"
        self.top_path = out / "topology.pdb"
        self.prepared_path = out / "prepared.pdb"

    def exists(self) -> bool:
        """True when a commit has completed (manifest.json is written last); raises if it is incomplete."""
        if not self.manifest_path.exists():
            return False
        missing = [p.name for p in (self.state_path, self.xtc_path, self.prepared_path) if not p.exists()]
        if missing:
            raise InputError(f"{self.out}: manifest.json present but {', '.join(missing)} missing; restore them or remove the directory")
        return True

    def load_manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{self.manifest_path}: unreadable manifest ({e})") from None


def commit(run: Run, sim, manifest: dict, frames, times_ps, seg: dict, wall_prod: float) -> None:
    """Write traj.xtc, state.xml and manifest.json, in that order, each atomically."""
    import openmm
    import openmm.unit as unit

    state = sim.context.getState(getPositions=True, getVelocities=True, getEnergy=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    if not math.isfinite(energy):
        raise RuntimeError(f"potential energy is {energy}; the simulation blew up")
    write_xtc(run.xtc_path, frames, times_ps)
    _atomic_write_text(run.state_path, openmm.XmlSerializer.serialize(state))
    ns_done = (len(frames) - 1) * STRIDE_PS / 1000.0
    seg["end_ps"] = times_ps[-1]
    seg["wall_s"] = round(wall_prod, 2)
    seg_ns = (seg["end_ps"] - seg["start_ps"]) / 1000.0
    seg["ns_per_day"] = round(seg_ns / wall_prod * 86400.0, 2) if wall_prod > 0 and seg_ns > 0 else None
    segs = manifest["segments"]
    prod_wall = sum(s["wall_s"] for s in segs if s.get("wall_s"))
    prod_ns = sum((s["end_ps"] - s["start_ps"]) / 1000.0 for s in segs)
    manifest["ns"] = round(ns_done, 4)
    manifest["frames"] = len(frames)
    manifest["wall_time_s"]["production"] = round(prod_wall, 2)
    manifest["wall_time_s"]["total"] = round(prod_wall + sum(v for k, v in manifest["wall_time_s"].items()
                                                              if k not in ("production", "total")), 2)
    manifest["ns_per_day"] = round(prod_ns / prod_wall * 86400.0, 2) if prod_wall > 0 and prod_ns > 0 else None
    manifest["potential_energy_kj_mol"] = round(energy, 2)
    manifest["updated"] = _now()
    _atomic_write_text(run.manifest_path, json.dumps(manifest, indent=2) + "\n")


def new_run(args, run: Run):
    """Prepare, minimise and equilibrate; commit frame 0. Returns (sim, manifest, frames, times, idx)."""
    import openmm
    import openmm.unit as unit

    pdb = Path(args.pdb)
    if not pdb.is_file():
        raise InputError(f"{pdb}: no such file")
    t0 = time.perf_counter()
    top, pos, fixes = prepare(pdb, args.chain, args.replace_nonstandard)
    bb_top, idx = backbone_topology(top)
    run.out.mkdir(parents=True, exist_ok=True)
    write_pdb(run.prepared_path, top, pos.value_in_unit(unit.nanometer))
    sim = build_simulation(top, pos, args.threads, args.seed * 1000 + 1)
    t_setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    sim.minimizeEnergy(tolerance=MIN_TOLERANCE * unit.kilojoule_per_mole / unit.nanometer, maxIterations=MIN_MAX_ITER)
    t_min = time.perf_counter() - t0

    t0 = time.perf_counter()
    sim.context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, args.seed * 1000 + 1)
    n_eq = int(round(args.equil_ps * 1000.0 / TIMESTEP_FS))
    sim.step(n_eq)
    t_eq = time.perf_counter() - t0
    sim.context.setTime(0.0)
    sim.context.setStepCount(0)

    x = sim.context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    frames, times = [x[idx].astype("float32")], [0.0]
    write_pdb(run.top_path, bb_top, frames[0])

    seq = "".join(_one_letter(r.name) for r in bb_top.residues())
    res = list(bb_top.residues())
    manifest = {
        "schema": SCHEMA,
        "protein": args.name or pdb.stem,
        "source_file": str(args.pdb),
        "source_sha256": _sha256(pdb),
        "chain": fixes.pop("chain"),
        "residues": len(res),
        "first_residue": res[0].id,
        "last_residue": res[-1].id,
        "sequence": seq,
        "atoms": top.getNumAtoms(),
        "backbone_atoms": len(idx),
        "fixes": fixes,
        "force_field": FORCE_FIELD,
        "solvent": "implicit, OBC GB (amber99_obc.xml), no cutoff",
        "constraints": "HBonds",
        "hydrogen_mass_amu": HYDROGEN_MASS_AMU,
        "timestep_fs": TIMESTEP_FS,
        "temperature_k": TEMPERATURE_K,
        "friction_per_ps": FRICTION_PER_PS,
        "integrator": "LangevinMiddleIntegrator",
        "ph": PH,
        "minimise": {"tolerance_kj_mol_nm": MIN_TOLERANCE, "max_iterations": MIN_MAX_ITER},
        "equilibration_ps": args.equil_ps,
        "stride_ps": STRIDE_PS,
        "frame_time": "frame k is at k * stride_ps after equilibration; frame 0 is the equilibrated start",
        "seed": args.seed,
        "ns": 0.0,
        "frames": 1,
        "wall_time_s": {"setup": round(t_setup, 2), "minimise": round(t_min, 2),
                        "equilibrate": round(t_eq, 2), "production": 0.0, "total": 0.0},
        "ns_per_day": None,
        "openmm_version": openmm.version.full_version,
        "pdbfixer_version": _version("pdbfixer"),
        "mdtraj_version": _version("mdtraj"),
        "python": _platform.python_version(),
        "platform": sim.context.getPlatform().getName(),
        "threads": int(sim.context.getPlatform().getPropertyValue(sim.context, "Threads")),
        "host": socket.gethostname(),
        "files": {"topology": run.top_path.name, "trajectory": run.xtc_path.name,
                  "prepared": run.prepared_path.name, "state": run.state_path.name},
        "created": _now(),
        "segments": [],
    }
    seg = {"segment": 0, "start_ps": 0.0, "end_ps": 0.0, "threads": manifest["threads"], "started": _now()}
    manifest["segments"].append(seg)
    commit(run, sim, manifest, frames, times, seg, 0.0)
    return sim, manifest, frames, times, idx, seg


def resume_run(args, run: Run):
    """Rebuild the system from prepared.pdb and continue from state.xml."""
    import openmm
    import openmm.app as app
    import openmm.unit as unit

    manifest = run.load_manifest()
    if manifest.get("schema") != SCHEMA:
        raise InputError(f"{run.manifest_path}: schema {manifest.get('schema')!r}, expected {SCHEMA!r}")
    if args.seed is not None and args.seed != manifest["seed"]:
        raise InputError(f"{run.out}: holds a run with seed {manifest['seed']}, not {args.seed}; use another --out")
    if args.pdb and Path(args.pdb).is_file() and _sha256(Path(args.pdb)) != manifest["source_sha256"]:
        raise InputError(f"{run.out}: holds a run of a different source file ({manifest['source_file']})")
    for key, want in (("stride_ps", STRIDE_PS), ("timestep_fs", TIMESTEP_FS), ("force_field", FORCE_FIELD)):
        if manifest.get(key) != want:
            raise InputError(f"{run.manifest_path}: {key} is {manifest.get(key)!r}, this script uses {want!r}")
    try:
        pdb = app.PDBFile(str(run.prepared_path))
        state = openmm.XmlSerializer.deserialize(run.state_path.read_text())
    except Exception as e:
        raise InputError(f"{run.out}: cannot read prepared.pdb/state.xml ({type(e).__name__}: {e})") from None
    segment = max(s["segment"] for s in manifest["segments"]) + 1
    sim = build_simulation(pdb.topology, pdb.positions, args.threads, manifest["seed"] * 1000 + segment + 1)
    sim.context.setState(state)
    _, idx = backbone_topology(pdb.topology)

    t_state = state.getTime().value_in_unit(unit.picosecond)
    n_expected = int(round(t_state / STRIDE_PS)) + 1
    frames, times = read_xtc(run.xtc_path)
    if len(frames) < n_expected:
        raise InputError(f"{run.xtc_path}: {len(frames)} frames but state.xml is at {t_state:.0f} ps "
                         f"({n_expected} frames); the run is inconsistent, start it again")
    frames, times = frames[:n_expected], times[:n_expected]
    # Forget production that an interrupted commit wrote past the saved state.
    kept = []
    for s in manifest["segments"]:
        if s["segment"] > 0 and s["start_ps"] >= t_state:
            continue
        if s["end_ps"] > t_state:
            span = s["end_ps"] - s["start_ps"]
            s["wall_s"] = round(s["wall_s"] * (t_state - s["start_ps"]) / span, 2)
            s["end_ps"] = times[-1]
        kept.append(s)
    manifest["segments"] = kept
    sim.context.setStepCount(int(round(t_state * 1000.0 / TIMESTEP_FS)))
    seg = {"segment": segment, "start_ps": times[-1], "end_ps": times[-1],
           "threads": int(sim.context.getPlatform().getPropertyValue(sim.context, "Threads")), "started": _now()}
    manifest["segments"].append(seg)
    manifest["threads"] = seg["threads"]
    return sim, manifest, frames, times, idx, seg


def produce(run: Run, sim, manifest, frames, times, idx, seg, target_frames: int, commit_every: int, quiet: bool):
    import openmm.unit as unit

    spf = _steps_per_frame()
    start_frames = len(frames)
    wall = 0.0
    since = 0
    t0 = time.perf_counter()
    while len(frames) < target_frames:
        sim.step(spf)
        x = sim.context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        frames.append(x[idx].astype("float32"))
        times.append(round(times[-1] + STRIDE_PS, 6))
        since += 1
        if since >= commit_every or len(frames) >= target_frames:
            wall = time.perf_counter() - t0
            commit(run, sim, manifest, frames, times, seg, wall)
            since = 0
            if not quiet:
                done = (len(frames) - start_frames) * STRIDE_PS / 1000.0
                print(f"{manifest['protein']}: {manifest['ns']:.3f} ns ({len(frames)} frames), "
                      f"this segment {done:.3f} ns at {seg['ns_per_day']} ns/day", flush=True)
    if len(frames) == start_frames and not quiet:
        print(f"{manifest['protein']}: already at {manifest['ns']:.3f} ns; nothing to do", flush=True)


def _one_letter(name: str) -> str:
    return ONE_LETTER.get(name, "X")


def _version(pkg: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(pkg)
    except Exception:
        return None


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pdb", nargs="?", help="input PDB/PDBx file (optional with --extend)")
    p.add_argument("--out", required=True, help="output directory")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ns", type=float, help="total production length in ns (continues a matching run in --out)")
    g.add_argument("--extend", type=float, metavar="NS", help="add NS ns of production to the run in --out")
    p.add_argument("--seed", type=int, help="random seed (required for a new run; >= 0)")
    p.add_argument("--threads", type=int, default=1, help="CPU platform threads (default 1)")
    p.add_argument("--chain", help="chain id to simulate when the file has several")
    p.add_argument("--name", help="protein id for the manifest (default: file stem)")
    p.add_argument("--equil-ps", type=float, default=100.0, help="equilibration before frame 0 (default 100 ps)")
    p.add_argument("--commit-ps", type=float, default=100.0,
                   help="save traj/state/manifest every this much production (default 100 ps)")
    p.add_argument("--replace-nonstandard", action="store_true",
                   help="mutate non-standard residues (e.g. MSE) to their parents instead of failing")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    prog = "simulate.py"
    try:
        amount = args.ns if args.ns is not None else args.extend
        if not math.isfinite(amount) or amount <= 0 or (args.extend is None and amount > 100000):
            raise InputError(f"--{'ns' if args.ns is not None else 'extend'} must be a positive number of ns, got {amount}")
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, got {args.threads}")
        if args.seed is not None and args.seed < 0:
            raise InputError(f"--seed must be >= 0, got {args.seed}")
        if args.equil_ps < 0 or args.commit_ps < STRIDE_PS:
            raise InputError(f"--equil-ps must be >= 0 and --commit-ps >= {STRIDE_PS:g}")
        run = Run(Path(args.out))
        if args.extend is not None:
            if not run.exists():
                raise InputError(f"{run.out}: no run to extend (no manifest.json)")
            sim, manifest, frames, times, idx, seg = resume_run(args, run)
            target_frames = len(frames) + int(round(args.extend * 1000.0 / STRIDE_PS))
        else:
            target_frames = int(round(args.ns * 1000.0 / STRIDE_PS)) + 1
            if run.exists():
                sim, manifest, frames, times, idx, seg = resume_run(args, run)
            else:
                if args.pdb is None:
                    raise InputError("a new run needs the input PDB")
                if args.seed is None:
                    raise InputError("a new run needs --seed")
                if run.out.exists() and not run.out.is_dir():
                    raise InputError(f"{run.out}: exists and is not a directory")
                sim, manifest, frames, times, idx, seg = new_run(args, run)
        commit_every = max(1, int(round(args.commit_ps / STRIDE_PS)))
        produce(run, sim, manifest, frames, times, idx, seg, target_frames, commit_every, args.quiet)
        return 0
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the last commit in {args.out} is intact", file=sys.stderr)
        return 130
    except Exception as e:  # OpenMM failures (e.g. NaN coordinates): one line, nothing half-written
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"{prog}: error: {type(e).__name__}: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
