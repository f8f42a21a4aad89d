#!/usr/bin/env bash
# Submits a kwshield grid as a Slurm job array sized from the grid itself: one task per row (or TASKS
# tasks, if fewer), each asking for the grid's `threads` CPUs times WORKERS (jobs at a time per task), and
# writing its log under the results folder, not into the checkout.
#
#   SHARED=/shared/me/kwshield bash examples/slurm/submit.sh grids/table1.yaml [TASKS]
#
# Environment: SHARED (required: a folder every node mounts), WORKERS (default 1), MEM (per task, default
# 4G), PARTITION, and any sbatch option in SBATCH_EXTRA (e.g. "--time=24:00:00 --gres=gpu:1").
# Prints the job id of the array on stdout.
set -euo pipefail
GRID=${1:?usage: SHARED=DIR bash examples/slurm/submit.sh GRID.yaml [TASKS]}
: "${SHARED:?set SHARED to a folder every node mounts (results, run folders, locks)}"
cd "$(dirname "$0")/../.."
[ -f "$GRID" ] || { echo "submit.sh: no grid file $GRID" >&2; exit 2; }
NAME=$(basename "$GRID" .yaml)
WORKERS=${WORKERS:-1}

# The manifest says how many rows the grid has and how many threads each job uses.
read -r ROWS THREADS < <(./bin/kwshield grid expand "$GRID" --json | tail -1 |
  node -e 'const m = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(m.counts.rows, m.threads)')
TASKS=${2:-$ROWS}
[ "$TASKS" -gt "$ROWS" ] && TASKS=$ROWS
LOGS=$SHARED/results/$NAME/slurm-logs
mkdir -p "$LOGS"

# shellcheck disable=SC2086
sbatch --parsable --job-name="kwshield-$NAME" --array="0-$((TASKS - 1))" \
  --cpus-per-task=$((THREADS * WORKERS)) --mem="${MEM:-4G}" \
  --output="$LOGS/%A_%a.out" ${PARTITION:+--partition="$PARTITION"} ${SBATCH_EXTRA:-} \
  --export=ALL,SHARED="$SHARED",GRID="$GRID",WORKERS="$WORKERS",KWSHIELD_HOME="$PWD" \
  examples/slurm/grid-array.sh
