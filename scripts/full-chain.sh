#!/usr/bin/env bash
# Issue 9's `full`-preset measurement (2026-12-03): the synthetic SCD-10 at the real set's size (19,000 train
# clips, so 5% clean data is ~950 clips), resnet backdoored by BadNets and by JingleBack (seed 0), then GN-FT
# default, FT and FP on each (defense seed 0), GN-FT's paper recipe (300 epochs of two passes over ~855 clips,
# about 48 min a model at 1 thread) and GN-FT default again with defense seed 1 (another clean subset). Two
# chains, one per core, 1 thread each; about 2 hours in all.
# Chosen: 6 training epochs (not the small preset's 12): 19,000 clips x 6 epochs is 3.5x the optimizer steps
# of 2,700 x 12, and the whole measurement has to fit one session.
# usage: bash scripts/full-chain.sh   (after: kwshield data synth --preset full --seed 0 --out /work/data/full-scd10)
set -u
cd "$(dirname "$0")/.."
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-/work/exp/cache} KWSHIELD_THREADS=1
DATA=${DATA:-/work/data/full-scd10}
L=/work/exp/logs
mkdir -p $L /work/exp/runs
sweep() { # $1 sweep config name
  echo "sweep $1 start $(date -u +%T)" >> $L/full-chain.log
  npx tsx scripts/sweep.ts measured/defenses/$1.json >> $L/$1.out 2>> $L/$1.err
  echo "sweep $1 end $? $(date -u +%T)" >> $L/full-chain.log
}
attack() { # $1 attack
  local n=resnet-full-$1-s0
  [ -f /work/exp/runs/$n/metrics.json ] && return 0
  echo "$n start $(date -u +%T)" >> $L/full-chain.log
  ./bin/kwshield attack --data $DATA --model resnet --attack $1 --epochs 6 --seed 0 --examples 2 --json \
    --out /work/exp/runs/$n > $L/$n.out 2> $L/$n.err
  echo "$n end $? $(date -u +%T)" >> $L/full-chain.log
}
(attack badnets; sweep full-b0; sweep full-b0p; sweep full-b0x) &
(attack jingleback; sweep full-j0; sweep full-j0x; sweep full-j0p) &
wait
