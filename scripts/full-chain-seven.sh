#!/usr/bin/env bash
# Issue 37's `full`-preset measurement: the five attacks that had only small-preset numbers (Ultrasonic, DABA,
# FlowMur, PBSM, VSVC-DSP), each backdoors a resnet at the real set's size (19,000 train clips, attack seed 0,
# 6 epochs as scripts/full-chain.sh chose for BadNets and JingleBack), then at 5% clean data (~855 clips):
# GN-FT default (defense seed 0), FT paper, FP default, then TSBD default and GN-FT default seed 1, then GN-FT
# paper last (about 50 min a model at 1 thread) where the time allows. Two chains, one per core, 1 thread each.
# Each step skips what is already done (attack: metrics.json; sweep: its JSONL lines), so after an interruption
# the same command continues. Results: measured/defenses/full7-*.jsonl, measured/attacks/full7/.
# usage: bash scripts/full-chain-seven.sh     (nice it when the machine is shared)
set -u
cd "$(dirname "$0")/.."
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-/work/exp/cache} KWSHIELD_THREADS=1
DATA=${DATA:-/work/data/full-scd10}
RUNS=${RUNS:-/work/exp/runs}
L=/work/exp/logs
RESULTS=${RESULTS:-$PWD/measured/defenses}
ATTACKS_OUT=$RESULTS/../attacks/full7
mkdir -p $L $RUNS $ATTACKS_OUT
log() { echo "$* $(date -u +%FT%T)" >> $L/full-chain-seven.log; }
if [ ! -f $DATA/synth.json ]; then
  log "data synth start"
  ./bin/kwshield data synth --preset full --seed 0 --out $DATA > $L/data.out 2> $L/data.err
  log "data synth end $?"
fi
attack() { # $1 attack, rest: -o options
  local a=$1; shift
  local n=resnet-full-$a-s0
  [ -f $RUNS/$n/metrics.json ] && return 0
  log "$n start"
  ./bin/kwshield attack --data $DATA --model resnet --attack $a --epochs 6 --seed 0 --examples 2 --json "$@" \
    --resume --out $RUNS/$n > $L/$n.out 2> $L/$n.err
  log "$n end $?"
  [ -f $RUNS/$n/metrics.json ] && cp $RUNS/$n/metrics.json $ATTACKS_OUT/$n.metrics.json
}
sweep() { # $1 name, $2 attack, $3 seed, $4 settings JSON
  local cfg=$L/full7-$1.json
  cat > $cfg <<JSON
{ "runs": ["$RUNS/resnet-full-$2-s0"], "seeds": [$3], "cleanRatio": 0.05,
  "results": "$RESULTS/full7-$1.jsonl", "work": "/work/exp/defended-full7-$1", "settings": $4 }
JSON
  log "sweep $1 start"
  npx tsx scripts/sweep.ts $cfg >> $L/full7-$1.out 2>> $L/full7-$1.err
  log "sweep $1 end $?"
}
BASE='{ "gnft-default": { "defense": "gnft", "recipe": "default" }, "ft-paper": { "defense": "ft", "recipe": "paper" }, "fp-default": { "defense": "fp", "recipe": "default" } }'
MORE='{ "tsbd-default": { "defense": "tsbd", "recipe": "default" } }'
SEED1='{ "gnft-default": { "defense": "gnft", "recipe": "default" } }'
PAPER='{ "gnft-paper": { "defense": "gnft", "recipe": "paper" } }'
first() { attack $1 "${@:3}"; sweep $2 $1 0 "$BASE"; }
second() { sweep $2-t $1 0 "$MORE"; sweep $2-x $1 1 "$SEED1"; }
(first ultrasonic u; first daba d; first flowmur f -o epochs=40 -o batchSize=64; second ultrasonic u; second daba d;
 second flowmur f; sweep u-p ultrasonic 0 "$PAPER") &
(first pbsm p; first vsvc-dsp v; second pbsm p; second vsvc-dsp v; sweep p-p pbsm 0 "$PAPER"; sweep v-p vsvc-dsp 0 "$PAPER") &
wait
log "done"
