#!/usr/bin/env bash
# Issue 11: shadow models for a meta-classifier scan (MNTD, Xu et al. S&P'21): resnet on the small synthetic
# SCD-10, 12 epochs as the zoo (research/scan/zoo-build.sh), backdoored with the jumbo attack (a random waveform pattern
# per seed, research/scan/jumbo.ts) at a target and poison ratio that vary with the seed. Seeds 10-19 are disjoint
# from the zoo's 0-2, so each run's clean twin (trained once, through KWSHIELD_CACHE) is a clean shadow that is
# not a zoo model. Two chains, one thread each; a finished run is skipped, so a killed build continues.
# usage: bash research/scan/shadow-build.sh [DATA] [RUNS] [LOGS] [FIRST_SEED] [COUNT]
set -u
D=${1:-/work/data/small-scd10}
R=${2:-/work/exp/shadows}
L=${3:-/work/exp/logs}
FIRST=${4:-10}
COUNT=${5:-10}
mkdir -p "$R" "$L"
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-/work/exp/cache} KWSHIELD_THREADS=1
targets=(left stop yes go off down no on right up)
ratios=(0.05 0.1 0.03 0.15)
shadow() { # $1 seed
  local s=$1 n="resnet-jumbo-s$1"
  [ -f "$R/$n/metrics.json" ] && return 0
  echo "$n start $(date -u +%T)" >> "$L/shadows.log"
  npx tsx research/scan/kwshield-jumbo.ts attack --data "$D" --model resnet --attack jumbo --epochs 12 --seed "$s" --examples 0 --json \
    --target "${targets[$((s % 10))]}" --poison-ratio "${ratios[$((s % 4))]}" --out "$R/$n" > "$L/$n.out" 2> "$L/$n.err"
  echo "$n end $? $(date -u +%T)" >> "$L/shadows.log"
}
chain() { # $1 parity: every other seed
  for ((s = FIRST + $1; s < FIRST + COUNT; s += 2)); do shadow "$s"; done
}
chain 0 & chain 1 & wait
echo "shadows done $(date -u +%T)" >> "$L/shadows.log"
