#!/bin/sh
# Your own model, end to end: a DS-CNN with its own log-mel front-end, trained and backdoored in PyTorch
# (train_backdoored.py), imported into kwshield, measured, purified by GN-FT, FT and FP, measured again, and
# each purified model.pt loaded back into PyTorch (evaluate.py) for the same CA/ASR there.
#
# usage: examples/own-model/run.sh [tiny|small] [WORK]     (default: small, /tmp/own-model-<preset>)
#   tiny:  about a minute of PyTorch training on 80 clips; defenses on 50% of them (5% would be 4 clips)
#   small: the measurement (3000 training clips); defenses on 5% of the clean training clips (150)
# PY_THREADS=2 lets PyTorch train on two threads (default 1); KWSHIELD_THREADS likewise for kwshield.
# Writes WORK/summary.txt: CA/ASR/RA before and after each defense, in kwshield and in PyTorch.
set -eu
PRESET=${1:-small}
WORK=${2:-/tmp/own-model-$PRESET}
HERE=$(cd "$(dirname "$0")" && pwd)
KWS="$HERE/../../bin/kwshield"
PY=${PYTHON:-/usr/bin/python3}
export KWSHIELD_THREADS=${KWSHIELD_THREADS:-1}
case "$PRESET" in
  tiny) EPOCHS=10 BATCH=16 RATIO=0.5 ;;
  small) EPOCHS=30 BATCH=32 RATIO=0.05 ;;
  *) echo "usage: $0 [tiny|small] [WORK]" >&2; exit 2 ;;
esac
mkdir -p "$WORK"
[ -f "$WORK/data/synth.json" ] || "$KWS" data synth --preset "$PRESET" --out "$WORK/data"
[ -f "$WORK/pytorch/model.pt" ] || (cd "$HERE" && "$PY" train_backdoored.py --data "$WORK/data" --out "$WORK/pytorch" --epochs "$EPOCHS" --batch "$BATCH" --threads "${PY_THREADS:-1}")

"$KWS" import --torchscript "$WORK/pytorch/model.pt" --input waveform-16k-1s --classes "$WORK/pytorch/classes.txt" --out "$WORK/imported" --force
measure() { # run label
  "$KWS" eval --model "$1" --data "$WORK/data" --triggered "$WORK/pytorch/triggered" --target up --json | tail -n 1 > "$WORK/kwshield-$2.json"
  (cd "$HERE" && "$PY" evaluate.py --model "$1/model.pt" --data "$WORK/data" --classes "$WORK/pytorch/classes.txt" \
    --triggered "$WORK/pytorch/triggered" --target up --json) > "$WORK/pytorch-$2.json"
}
measure "$WORK/imported" backdoored
for defense in gnft ft fp; do
  if "$KWS" defend --model "$WORK/imported" --data "$WORK/data" --defense "$defense" --clean-ratio "$RATIO" --out "$WORK/$defense" --force; then
    measure "$WORK/$defense" "$defense"
  else
    echo "$defense did not run (see its message above)" >&2
  fi
done

"$PY" - "$WORK" <<'EOF' | tee "$WORK/summary.txt"
import json, os, sys
work = sys.argv[1]
print(f"{'model':<12} {'kwshield CA':>11} {'ASR':>6} {'RA':>6}   {'PyTorch CA':>10} {'ASR':>6} {'RA':>6}")
for label in ("backdoored", "gnft", "ft", "fp"):
    k, p = (os.path.join(work, f"{side}-{label}.json") for side in ("kwshield", "pytorch"))
    if not os.path.exists(k):
        print(f"{label:<12} (did not run)")
        continue
    k, p = json.load(open(k)), json.load(open(p))
    t = k["triggered"]
    pc = lambda x: f"{100 * x:5.1f}%"
    print(f"{label:<12} {pc(k['cleanAccuracy']):>11} {pc(t['asr']):>6} {pc(t['ra']):>6}   {pc(p['ca']):>10} {pc(p['asr']):>6} {pc(p['ra']):>6}")
EOF
