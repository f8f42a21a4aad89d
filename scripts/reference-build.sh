#!/usr/bin/env bash
# Issue 11: clean reference models for the reference scan (scripts/scan-meta.ts evaluate): resnet on the 16 kHz
# MFCC, 12 epochs as the zoo (scripts/zoo-build.sh), trained with `kwshield train` at seeds disjoint from the
# zoo's 0-2, so that no zoo model is anyone's reference by construction. Two chains, one thread each; a
# finished run is skipped, so a killed build continues.
# usage: bash scripts/reference-build.sh [DATA] [RUNS] [LOGS] [FIRST_SEED] [COUNT]
set -u
D=${1:-/work/data/small-scd10}
R=${2:-/work/exp/references}
L=${3:-/work/exp/logs}
FIRST=${4:-10}
COUNT=${5:-8}
mkdir -p "$R" "$L"
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-/work/exp/cache} KWSHIELD_THREADS=1
reference() { # $1 seed
  local n="resnet-clean-s$1"
  [ -f "$R/$n/metrics.json" ] && return 0
  echo "$n start $(date -u +%T)" >> "$L/references.log"
  ./bin/kwshield train --data "$D" --model resnet --epochs 12 --seed "$1" --out "$R/$n" > "$L/$n.out" 2> "$L/$n.err"
  echo "$n end $? $(date -u +%T)" >> "$L/references.log"
}
chain() { # $1 parity: every other seed
  for ((s = FIRST + $1; s < FIRST + COUNT; s += 2)); do reference "$s"; done
}
chain 0 & chain 1 & wait
echo "references done $(date -u +%T)" >> "$L/references.log"
