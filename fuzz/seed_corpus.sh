#!/bin/sh
# Copy the shared fixtures into fuzz/corpus/<target>/ as seed inputs (corpus/ is not committed).
set -eu
cd "$(dirname "$0")"
F=../tests/fixtures
mkdir -p corpus/read_structure corpus/read_xtc
for f in "$F"/*.pdb "$F"/*.cif "$F"/*.gz "$F"/fuzz_regressions/structure_*; do
  [ -f "$f" ] && cp "$f" corpus/read_structure/
done
for f in "$F"/*.xtc "$F"/*.dcd "$F"/fuzz_regressions/xtc_*; do
  [ -f "$f" ] && cp "$f" corpus/read_xtc/
done
# Small generated trajectories, if the mdtraj check files exist.
for f in ../target/traj_check/traj.xtc ../target/traj_check/traj.dcd; do
  [ -f "$f" ] && cp "$f" corpus/read_xtc/
done
ls corpus/*/ | head -50
