#!/usr/bin/env bash
# Rebuild data/protforge_v1.safetensors from ../shared/data (see data/README.md).
# The file is not committed: most chains come from sources that may not be vendored.
#
# Usage: data/build_dataset.sh [extra `protforge data build` flags, e.g. --force]
# Env:   PROTFORGE_SHARED_DATA  folder holding structures/{train,val}.jsonl (default ../shared/data)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${PROTFORGE_SHARED_DATA:-$root/../shared/data}"
cd "$root"

for f in "$shared/structures/train.jsonl" "$shared/structures/val.jsonl"; do
    [[ -r "$f" ]] || { echo "build_dataset.sh: $f: not readable (set PROTFORGE_SHARED_DATA)" >&2; exit 1; }
done

# --val-input makes validation exactly the chains of val.jsonl (mmseqs2 40 % split of
# MANIFEST.md) plus any train chain that our k-mer clustering links to them; --val-fraction
# is then ignored.
cargo run --release -p protforge -- data build \
    --input "$shared/structures/train.jsonl" \
    --val-input "$shared/structures/val.jsonl" \
    --out data/protforge_v1.safetensors \
    --min-len 40 --max-len 512 --seed 0 \
    "$@"

if python3 -c "import safetensors, numpy" 2>/dev/null; then
    python3 scripts/check_dataset_python.py data/protforge_v1.safetensors
fi
