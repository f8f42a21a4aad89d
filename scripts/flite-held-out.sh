#!/usr/bin/env bash
# Issue 37 item 3: how the small-preset numbers hold on voices from an engine the models never heard. The
# small synthetic SCD-10 (seed 0) with flite held out: espeak-ng speaks train and validation, flite's four
# CMU timbres (awb, kal, rms, slt) speak the test split. A clean ResNet's CA on flite, BadNets and
# JingleBack ASR on flite, and GN-FT default's CA/ASR after (5% clean data from the espeak training split).
# 12 epochs and the attack table's command otherwise. One thread; results copied to measured/held-out-engine/.
# usage: bash scripts/flite-held-out.sh
set -u
cd "$(dirname "$0")/.."
export KWSHIELD_THREADS=${KWSHIELD_THREADS:-1} KWSHIELD_CACHE=${KWSHIELD_CACHE:-/work/exp/flite/cache}
D=${DATA:-/work/data/small-scd10-flite-test}
R=${RUNS:-/work/exp/flite/runs}
OUT=measured/held-out-engine
mkdir -p "$R" "$OUT"
[ -f "$D/synth.json" ] || ./bin/kwshield data synth --preset small --seed 0 --engines espeak-ng,flite --test-engine flite --out "$D" --json > "$OUT/synth.json.line"
for a in badnets jingleback; do
  run=$R/resnet-small-flite-$a-s0
  [ -f "$run/metrics.json" ] || ./bin/kwshield attack --data "$D" --model resnet --attack $a --epochs 12 --seed 0 --json --resume --out "$run" > "$OUT/attack-$a.json"
  [ -f "$run-gnft/metrics.json" ] || ./bin/kwshield defend --model "$run" --defense gnft --attack-of "$run" --seed 0 --json --resume --out "$run-gnft" > "$OUT/defend-$a-gnft.json"
done
