#!/usr/bin/env bash
# Issue 37's `full`-preset measurement: the five attacks that had only small-preset numbers (Ultrasonic, DABA,
# FlowMur, PBSM, VSVC-DSP), each backdoors a resnet at the real set's size (19,000 train clips, attack seed 0,
# 6 epochs as scripts/full-chain.sh chose for BadNets and JingleBack), then at 5% clean data (~855 clips) the
# defenses, in the order of what decides the plan (measured/defenses/full7-PLAN.md): all five attacks, GN-FT
# default defense seed 0 on each, then seed 1, NFT and NGF paper recipes on the first model, FT paper and FP
# default, TSBD default, GN-FT paper last. Two workers (one per core, 1 thread each) take the next step from one
# ordered list; a sweep whose attack is still training waits for it. Each step skips what is already done
# (attack: metrics.json; sweep: its JSONL lines), so after an interruption the same command continues.
# Results: measured/defenses/full7-*.jsonl, measured/attacks/full7/.
# usage: bash scripts/full-chain-seven.sh     (nice it when the machine is shared)
set -u
cd "$(dirname "$0")/.."
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-/work/exp/cache} KWSHIELD_THREADS=1
DATA=${DATA:-/work/data/full-scd10}
RUNS=${RUNS:-/work/exp/runs}
L=${LOGS:-/work/exp/logs}
RESULTS=${RESULTS:-$PWD/measured/defenses}
ATTACKS_OUT=$RESULTS/../attacks/full7
mkdir -p "$L" "$RUNS" "$ATTACKS_OUT"
log() { echo "$* $(date -u +%FT%T)" >> "$L/full-chain-seven.log"; }
if [ ! -f "$DATA/synth.json" ]; then
  log "data synth start"
  ./bin/kwshield data synth --preset full --seed 0 --out "$DATA" > "$L/data.out" 2> "$L/data.err"
  log "data synth end $?"
fi

run_of() { echo "$RUNS/resnet-full-$1-s0"; }
attack() { # $1 attack, rest: -o options
  local a=$1; shift
  local n; n=$(run_of "$a")
  [ -f "$n/metrics.json" ] && return 0
  log "attack $a start"
  ./bin/kwshield attack --data "$DATA" --model resnet --attack "$a" --epochs 6 --seed 0 --examples 2 --json "$@" \
    --resume --out "$n" > "$L/attack-$a.out" 2> "$L/attack-$a.err"
  log "attack $a end $?"
  if [ -f "$n/metrics.json" ]; then cp "$n/metrics.json" "$ATTACKS_OUT/resnet-full-$a-s0.metrics.json"
  else touch "$L/attack-$a.failed"; fi
}
sweep() { # $1 results name, $2 attack, $3 defense seed, $4 settings JSON
  local cfg=$L/full7-$1.json run; run=$(run_of "$2")
  until [ -f "$run/metrics.json" ]; do # its attack is training on the other worker
    [ -f "$L/attack-$2.failed" ] && { log "sweep $1 skipped: attack $2 failed"; return 0; }
    sleep 60
  done
  cat > "$cfg" <<JSON
{ "runs": ["$run"], "seeds": [$3], "cleanRatio": 0.05,
  "results": "$RESULTS/full7-$1.jsonl", "work": "/work/exp/defended-full7-$1", "settings": $4 }
JSON
  log "sweep $1 start"
  npx tsx scripts/sweep.ts "$cfg" >> "$L/full7-$1.out" 2>> "$L/full7-$1.err"
  log "sweep $1 end $?"
}
GNFT='{ "gnft-default": { "defense": "gnft", "recipe": "default" } }'
FTFP='{ "ft-paper": { "defense": "ft", "recipe": "paper" }, "fp-default": { "defense": "fp", "recipe": "default" } }'
TSBD='{ "tsbd-default": { "defense": "tsbd", "recipe": "default" } }'
PAPER='{ "gnft-paper": { "defense": "gnft", "recipe": "paper" } }'
NFTNGF='{ "nft-paper": { "defense": "nft", "recipe": "paper" }, "ngf-paper": { "defense": "ngf", "recipe": "paper" } }'
ATTACKS="pbsm ultrasonic vsvc-dsp daba flowmur"
letter() { echo "${1:0:1}"; } # p u v d f: the results files' names
steps() { # the ordered list, one step a line
  for a in $ATTACKS; do echo "attack $a"; done
  for a in $ATTACKS; do echo "sweep $(letter $a)-g $a 0 GNFT"; done
  for a in $ATTACKS; do echo "sweep $(letter $a)-x $a 1 GNFT"; done
  echo "sweep p-n pbsm 0 NFTNGF"
  for a in $ATTACKS; do echo "sweep $(letter $a)-f $a 0 FTFP"; done
  for a in $ATTACKS; do echo "sweep $(letter $a)-t $a 0 TSBD"; done
  for a in $ATTACKS; do echo "sweep $(letter $a)-p $a 0 PAPER"; done
}
run_step() { # $@: one line of steps
  case $1 in
    attack) if [ "$2" = flowmur ]; then attack flowmur -o epochs=40 -o batchSize=64; else attack "$2"; fi ;;
    sweep) sweep "$2" "$3" "$4" "${!5}" ;;
  esac
}
QUEUE=$L/full-chain-seven.queue
steps > "$QUEUE.all"
: > "$QUEUE.taken"
next_step() { # prints the first step no worker has taken, and marks it taken (under a lock)
  (
    flock 9
    local s
    s=$(grep -vxF -f "$QUEUE.taken" "$QUEUE.all" | head -1)
    [ -n "$s" ] && echo "$s" >> "$QUEUE.taken"
    echo "$s"
  ) 9> "$QUEUE.lock"
}
worker() {
  local s
  while s=$(next_step) && [ -n "$s" ]; do
    # shellcheck disable=SC2086
    run_step $s
  done
}
worker & worker & wait
log "done"
