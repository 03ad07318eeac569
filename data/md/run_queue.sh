#!/usr/bin/env bash
# Run the reference-MD table (data/md/proteins.tsv) round-robin, in chunks, at niceness
# $PROTFORGE_MD_NICE (default 0: at nice 19 OpenMM gets almost no CPU next to a nice-0 training
# job; give each job one thread instead, e.g. RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 for training).
#
# Pass k brings every run to min(k * CHUNK, target_ns) ns of production, smallest proteins
# first, so every protein reaches each milestone before any goes further. simulate.py commits
# every 100 ps, so the queue can be killed at any moment: at most 100 ps per running protein
# is lost, and the next start continues where the runs stand. It stops when every run is at
# its target_ns (or has failed; failures are logged and skipped until the next start).
#
# Usage (from anywhere):
#   data/md/run_queue.sh [--chunk-ns 0.5] [--threads 1] [--only ID[,ID...]] [--dry-run]
# Background start:
#   nohup data/md/run_queue.sh > /dev/null 2>&1 &
# Stop (by its id, written to data/md/logs/queue-<pid>.pid):
#   kill "$(cat data/md/logs/queue-<pid>.pid)"
# Several instances may run at once (e.g. one per free core): each run directory is locked
# while a simulation works in it, and the other instances skip it.
#
# Env: PROTFORGE_SHARED_DATA  folder that proteins.tsv paths are relative to
#                             (default ../shared/data, relative to the repository root)
#      PYTHON                 interpreter with openmm, pdbfixer, mdtraj (default python3)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root" || exit 1
shared="${PROTFORGE_SHARED_DATA:-../shared/data}"
python="${PYTHON:-python3}"
chunk=0.5
threads=1
only=""
dry=0

die() { echo "run_queue.sh: error: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --chunk-ns) chunk="${2:-}"; shift 2 ;;
        --threads) threads="${2:-}"; shift 2 ;;
        --only) only=",${2:-},"; shift 2 ;;
        --dry-run) dry=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$here/$(basename "${BASH_SOURCE[0]}")"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
awk -v c="$chunk" 'BEGIN { exit !(c + 0 > 0) }' || die "--chunk-ns must be a positive number, got '$chunk'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, got '$threads'"
table="data/md/proteins.tsv"
[[ -r "$table" ]] || die "$table: not readable"
[[ -d "$shared" ]] || die "$shared: no such directory (set PROTFORGE_SHARED_DATA)"
"$python" -c "import openmm, pdbfixer, mdtraj" 2>/dev/null \
    || die "$python lacks openmm/pdbfixer/mdtraj (pip install openmm pdbfixer mdtraj)"

logdir="data/md/logs"
lockdir="data/md/traj/.locks"
log="$logdir/queue.log"
pidfile="$logdir/queue-$$.pid"
if [[ $dry -eq 1 ]]; then
    log=/dev/null
else
    mkdir -p "$logdir" "$lockdir"
fi

note() { printf '%s [queue %d] %s\n' "$(date -u +%FT%TZ)" "$$" "$*" >> "$log"; }

child=""
stop() {
    [[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
    note "stopped by signal"
    exit 143
}
if [[ $dry -eq 0 ]]; then
    trap stop TERM INT HUP
    echo "$$" > "$pidfile"
    trap 'rm -f "$pidfile"' EXIT
fi

# Runs: name, pdb path, seed, target ns. One line per replica, smallest protein first.
mapfile -t runs < <(awk -F'\t' -v only="$only" '
    /^#/ || $1 == "id" || NF < 8 { next }
    only != "" && index(only, "," $1 ",") == 0 { next }
    { for (r = 1; r <= $6; r++) printf "%d\t%s\t%s\t%d\t%s\n", $4, (r == 1 ? $1 : $1 "_r" r), $2, $7 + r - 1, $8 }
' "$table" | sort -t$'\t' -k1,1n -s | cut -f2-)
[[ ${#runs[@]} -gt 0 ]] || die "no runs selected from $table"
max_target="$(printf '%s\n' "${runs[@]}" | cut -f4 | sort -g | tail -1)"

done_ns() {  # production ns committed in a run directory (0 if none)
    local m="data/md/traj/$1/manifest.json"
    [[ -f "$m" ]] || { echo 0; return; }
    "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["ns"])' "$m" 2>/dev/null || echo 0
}

note "start: ${#runs[@]} runs, chunk $chunk ns, $threads thread(s), max target $max_target ns"
declare -A failed=() planned=()
pass=1
while :; do
    goal_pass="$(awk -v k="$pass" -v c="$chunk" 'BEGIN { printf "%.4f", k * c }')"
    worked=0
    for line in "${runs[@]}"; do
        IFS=$'\t' read -r name path seed target <<< "$line"
        [[ -n "${failed[$name]:-}" ]] && continue
        goal="$(awk -v a="$goal_pass" -v b="$target" 'BEGIN { printf "%.4f", (a < b ? a : b) }')"
        have="${planned[$name]:-$(done_ns "$name")}"
        awk -v h="$have" -v g="$goal" 'BEGIN { exit !(h + 1e-6 < g) }' || continue
        if [[ $dry -eq 1 ]]; then
            echo "pass $pass: $name $have -> $goal ns (seed $seed, $shared/$path)"
            planned[$name]="$goal"
            worked=1
            continue
        fi
        exec {lock}> "$lockdir/$name.lock"
        if ! flock -n "$lock"; then
            note "$name: busy in another queue; skipped"
            exec {lock}>&-
            continue
        fi
        worked=1
        note "$name: $have -> $goal ns (pass $pass)"
        nice -n "${PROTFORGE_MD_NICE:-0}" "$python" data/md/simulate.py "$shared/$path" --out "data/md/traj/$name" \
            --ns "$goal" --seed "$seed" --threads "$threads" --name "$name" >> "$log" 2>&1 &
        child=$!
        wait "$child"
        rc=$?
        child=""
        exec {lock}>&-
        if [[ $rc -ne 0 ]]; then
            note "$name: FAILED (exit $rc); skipped until the next start"
            failed[$name]=1
        fi
    done
    if [[ $worked -eq 0 ]] && awk -v a="$goal_pass" -v m="$max_target" 'BEGIN { exit !(a + 1e-6 >= m) }'; then
        break
    fi
    pass=$((pass + 1))
done
fails="${!failed[*]}"
note "finished: every run is at its target or failed (failed: ${fails:-none})"
