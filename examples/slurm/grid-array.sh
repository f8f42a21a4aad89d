#!/usr/bin/env bash
# A kwshield grid as a Slurm job array: task i of N runs shard i/N (whole rows: an attack job with its
# defense jobs), every task writing one result JSON per job into the same shared folder. Submit it with
# examples/slurm/submit.sh, which sizes the array and the CPUs from the grid and puts the logs under the
# results folder; tested on a single-node Slurm (Debian's slurm-wlm) by test/slurm.test.ts.
#
#   SHARED=/shared/me/kwshield bash examples/slurm/submit.sh grids/table1.yaml
#   # afterwards, anywhere that sees $SHARED:
#   ./bin/kwshield grid collect $SHARED/results/table1 --db table1.sqlite && ./bin/kwshield results --db table1.sqlite
#
# By hand, the array must count from 0 (0-(N-1)): --shard takes $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
# with i from 0 (an array of 1-8 would ask for shard 8/8 and stop with a usage error). Ask for the grid's
# `threads` CPUs per task (times WORKERS): a task that asks for more CPUs than a node has pends forever. A
# "%4" suffix (--array=0-7%4) limits how many tasks run at once and changes nothing else. Rows are dealt out
# round-robin (row r goes to shard r mod N), so more tasks than rows leaves some tasks empty:
# `kwshield grid expand GRID` prints the number of rows.
#
#SBATCH --job-name=kwshield-grid
#SBATCH --requeue
#
# GPU nodes: ask for a GPU (SBATCH_EXTRA="--gres=gpu:1" for submit.sh) and use a checkout whose native addon
# was built against a CUDA libtorch: `LIBTORCH=/path/to/libtorch-cuda npm run build:native` (the addon
# records that libtorch's lib folder as its rpath, so $LIBTORCH is needed only when building). The command
# below stays unchanged. Note that the experiment pipeline currently trains on the CPU; a CUDA build is what
# the nodes need once it places models on a device.
set -euo pipefail

: "${SHARED:?set SHARED to a folder every node mounts (results, run folders, locks)}"
GRID=${GRID:-grids/table1.yaml}
NAME=$(basename "$GRID" .yaml)
cd "${KWSHIELD_HOME:-${SLURM_SUBMIT_DIR:-.}}"

# Results: one <id>.json per job, written atomically (temp + rename), so every task may write into one
# shared folder and a reader never sees half a file. Jobs whose result exists with status ok are skipped,
# so resubmitting the array (or a requeued task) continues where it stopped.
RESULTS=$SHARED/results/$NAME
# Work: run folders (models), generated data, logs and the lock files that keep two processes off one
# job. On the shared file system, so a requeued task finds its half-trained models and the locks guard
# across nodes (a lock of another node counts as stale after KWSHIELD_LOCK_STALE_MINUTES, default 60,
# without a heartbeat). A node-local work folder also works, but then a requeued task starts its
# unfinished jobs over.
WORK=$SHARED/work/$NAME
# Feature cache: node-local scratch is fastest (it is only a cache).
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-${TMPDIR:-/tmp}/kwshield-cache-${USER:-$(id -un)}}

# WORKERS jobs at a time on this task's CPUs, each in its own process with KWSHIELD_THREADS from the grid's
# `threads` (default 1): the numbers do not depend on how the work was split.
exec ./bin/kwshield grid run "$GRID" \
  --results "$RESULTS" \
  --work "$WORK" \
  --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
  --workers "${WORKERS:-1}" \
  ${DATA_ROOT:+--data-root "$DATA_ROOT"}
