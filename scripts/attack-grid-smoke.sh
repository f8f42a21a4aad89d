#!/usr/bin/env bash
# Runs every attack on every model family (the GN-FT paper's 5 x 7 Table I) end to end on a tiny
# synthetic set with one training epoch: a check that each pair works, not a measurement. Writes one
# JSON line per pair (exit code, front-end, seconds, CA/ASR) to $OUT (default results/attack-grid-smoke.jsonl).
# usage: bash scripts/attack-grid-smoke.sh [DATA_DIR] [WORK_DIR]
set -u
cd "$(dirname "$0")/.."
data=${1:-/tmp/kws-smoke-data}
work=${2:-/tmp/kws-smoke}
out=${OUT:-results/attack-grid-smoke.jsonl}
mkdir -p "$(dirname "$out")" "$work"
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-$work/cache}
[ -f "$data/synth.json" ] || ./bin/kwshield data synth --preset tiny --out "$data" --seed 1 > /dev/null
: > "$out"
for model in resnet lstm smallcnn kwt eat; do
  for attack in badnets ultrasonic jingleback daba flowmur pbsm vsvc-dsp; do
    start=$(date +%s)
    extra=()
    [ "$attack" = flowmur ] && extra=(-o epochs=1 -o clips=64)
    [ "$attack" = daba ] && extra=(-o poolSize=8)
    ./bin/kwshield attack --data "$data" --attack "$attack" --model "$model" --epochs 1 "${extra[@]}" --out "$work/$model-$attack" --force --json > "$work/$model-$attack.json" 2> "$work/$model-$attack.log"
    code=$?
    result=$(tail -n 1 "$work/$model-$attack.json")
    seconds=$(( $(date +%s) - start ))
    node -e '
      const [model, attack, code, seconds, line] = process.argv.slice(1);
      let r = {}; try { r = JSON.parse(line); } catch {}
      console.log(JSON.stringify({ model, attack, ok: code === "0" && r.kind === "attack", frontEnd: r.frontEnd, seconds: Number(seconds),
        backdoored: r.backdoored, clean: r.clean && { ca: r.clean.ca, asr: r.clean.asr } }));' "$model" "$attack" "$code" "$seconds" "$result" >> "$out"
    tail -n 1 "$out"
  done
done
