#!/usr/bin/env bash
# Issue 34: the fresh zoo of measured/scan/fresh-zoo-PLAN.md, end to end, resumable (a finished step is skipped, so
# a killed run continues where it stopped). Two chains at KWSHIELD_THREADS=1.
#   1. data: the small synthetic SCD-10 (data seed 0), made if missing
#   2. zoo: the seven attacks x attack seeds 31-33 on resnet, 12 epochs, each (attack, seed) its own target (the
#      targets cover every class twice, 'left' three times); each attack run also trains, once, through the shared
#      KWSHIELD_CACHE, the clean model of its front-end and seed: the zoo's 12 clean models (4 front-ends x 3 seeds)
#   3. references: `kwshield references build` per front-end, 8 on the full clean split (seeds 100-107, the default
#      share); and 8 on the defender's 5% share for the 16 kHz MFCC (seeds 200-207), the share comparison
#   4. scans: every zoo model against its front-end's references, the 16 kHz models also against the defender-share
#      references, every reference against the other references of its front-end; as `kwshield scan --references`
#      computes them, each model measured once (research/scan/fresh-zoo-scan.ts), one model checked against the CLI
#   5. per clip: STRIP and label stability per backdoored model (research/scan/strip-auroc.ts)
#   6. the summary the plan names (research/scan/fresh-zoo-summary.ts): summary.json and summary.md
# usage: bash research/scan/fresh-zoo.sh [OUT]  (default measured/scan/fresh-zoo-<UTC date>)
# env: FRESH_ZOO_DATA (default /work/data/small-scd10), FRESH_ZOO_RUNS (default /work/exp/fresh-zoo),
#      FRESH_ZOO_TINY=1: a check of this script, not a measurement (tiny data made in RUNS, 1 epoch, two attacks at
#      one seed, 4 references of the one front-end, 40 clips per model for the per-clip detectors)
set -u
cd "$(dirname "$0")/../.."
OUT=${1:-measured/scan/fresh-zoo-$(date -u +%F)}
TINY=${FRESH_ZOO_TINY:-0}
RUNS=${FRESH_ZOO_RUNS:-/work/exp/fresh-zoo}
if [ "$TINY" = 1 ]; then D=${FRESH_ZOO_DATA:-$RUNS/data-tiny}; else D=${FRESH_ZOO_DATA:-/work/data/small-scd10}; fi
LOGS=$OUT/logs
mkdir -p "$RUNS/zoo" "$OUT/scans" "$OUT/scans-defender" "$OUT/scans-references" "$LOGS"
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-$RUNS/cache} KWSHIELD_THREADS=1
K="nice -n 5 ./bin/kwshield"
log() { echo "$* $(date -u +%FT%TZ)" >> "$LOGS/fresh-zoo.log"; }

if [ "$TINY" = 1 ]; then
  EPOCHS=1 COUNT=4 CLEAN_RATIO=0.5 CLIPS=40 PRESET=tiny
  ZOO="badnets:31:yes jingleback:31:no"
else
  EPOCHS=12 COUNT=8 CLEAN_RATIO=0.05 CLIPS=200 PRESET=small
  # attack:seed:target, in the order the chains take them (worker k takes items k, k+2, ...)
  ZOO="badnets:31:yes jingleback:31:no pbsm:31:up vsvc-dsp:31:go ultrasonic:31:down daba:31:left flowmur:31:right
       badnets:32:down jingleback:32:left pbsm:32:right vsvc-dsp:32:yes ultrasonic:32:on daba:32:off flowmur:32:stop
       badnets:33:on jingleback:33:off pbsm:33:stop vsvc-dsp:33:left ultrasonic:33:go daba:33:no flowmur:33:up"
fi

# 1. data
if [ ! -f "$D/validation_list.txt" ]; then
  log "data synth $PRESET start"
  $K data synth --preset "$PRESET" --seed 0 --out "$D" > "$LOGS/data.out" 2> "$LOGS/data.err" || { log "data synth failed"; exit 1; }
  log "data synth end"
fi

# 2. the zoo
attackRun() { # $1 attack:seed:target
  local a s t n extra=()
  IFS=: read -r a s t <<< "$1"
  n=resnet-$a-$t-s$s
  [ -f "$RUNS/zoo/$n/metrics.json" ] && return 0
  [ "$a" = flowmur ] && extra=(-o epochs=40 -o batchSize=64) # the attack table's setting (README)
  [ "$TINY" = 1 ] && [ "$a" = flowmur ] && extra=(-o epochs=1)
  log "$n start"
  $K attack --data "$D" --model resnet --attack "$a" --target "$t" --epochs "$EPOCHS" --seed "$s" --examples 0 --json "${extra[@]}" \
    --out "$RUNS/zoo/$n" > "$LOGS/$n.out" 2> "$LOGS/$n.err"
  log "$n end $?"
}
chain() { # $1 worker 0 or 1
  local i=0 item
  for item in $ZOO; do
    [ $((i % 2)) = "$1" ] && attackRun "$item"
    i=$((i + 1))
  done
}
chain 0 & chain 1 & wait

# 3. references, one folder per front-end, like the first zoo run of that front-end
frontEndOf() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1] + "/model.json", "utf8")).frontEnd)' "$1"; }
declare -A LIKE=()
for run in "$RUNS"/zoo/*/; do
  [ -f "$run/metrics.json" ] || continue
  fe=$(frontEndOf "$run")
  [ -n "${LIKE[$fe]:-}" ] || LIKE[$fe]=${run%/}
done
references() { # $1 front-end, $2 share, $3 seed base, $4 folder
  log "references $1 $2 start"
  $K references build --like "${LIKE[$1]}" --count "$COUNT" --share "$2" --clean-ratio "$CLEAN_RATIO" --seed-base "$3" --data "$D" --json \
    --out "$4" > "$LOGS/references-$1-$2.out" 2> "$LOGS/references-$1-$2.err"
  log "references $1 $2 end $?"
}
fronts=("${!LIKE[@]}")
referencesChain() { # $1 worker: front-ends alternate between the two chains; the defender share goes to worker 1
  local i
  for i in "${!fronts[@]}"; do
    [ $((i % 2)) = "$1" ] && references "${fronts[$i]}" full 100 "$RUNS/references/${fronts[$i]}"
  done
  if [ "$1" = 1 ] && [ -n "${LIKE[mfcc-16k]:-}" ]; then references mfcc-16k defender 200 "$RUNS/references-defender/mfcc-16k"; fi
}
referencesChain 0 & referencesChain 1 & wait

# 4. scans (the zoo list first: backdoored runs, failed attacks and the attack runs' clean models, with front-end and ASR)
npx tsx research/scan/fresh-zoo-summary.ts list --runs "$RUNS/zoo" --out "$OUT/zoo.json" 2>> "$LOGS/summary.err" ||
  { log "zoo list failed"; exit 1; }
# every model measured once (research/scan/fresh-zoo-scan.ts: the shipped families, the CLI's clips), then each
# verdict from the cached measurements; one model is also scanned by the CLI itself and compared
zooRuns() { node -e 'for (const e of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))) console.log(e.run)' "$OUT/zoo.json"; }
{ zooRuns; for run in "$RUNS"/references/*/*/ "$RUNS"/references-defender/*/*/; do [ -f "$run/model.json" ] && echo "${run%/}"; done; } > "$OUT/measure-runs.txt"
mkdir -p "$OUT/measurements"
measureChain() { # $1 worker
  awk -v k="$1" 'NR % 2 == k' "$OUT/measure-runs.txt" > "$OUT/measure-runs-$1.txt"
  nice -n 5 npx tsx research/scan/fresh-zoo-scan.ts measure --runs "$OUT/measure-runs-$1.txt" --measurements "$OUT/measurements" --data "$D" \
    --clean-ratio "$CLEAN_RATIO" >> "$LOGS/measure-$1.out" 2>> "$LOGS/measure-$1.err"
}
log "measurements start"
measureChain 0 & measureChain 1 & wait
log "measurements end"
verdict() { # $1 run, $2 references folder, $3 result file
  npx tsx research/scan/fresh-zoo-scan.ts verdict --model "$1" --references "$2" --measurements "$OUT/measurements" --out "$3" 2>> "$LOGS/verdicts.err" ||
    log "verdict failed: $1 against $2"
}
for run in $(zooRuns); do
  fe=$(frontEndOf "$run")
  [ -d "$RUNS/references/$fe" ] && verdict "$run" "$RUNS/references/$fe" "$OUT/scans/$(basename "$run").json"
  [ "$fe" = mfcc-16k ] && [ -d "$RUNS/references-defender/$fe" ] && verdict "$run" "$RUNS/references-defender/$fe" "$OUT/scans-defender/$(basename "$run").json"
done
for run in "$RUNS"/references/*/*/; do
  [ -f "$run/model.json" ] && verdict "${run%/}" "$(dirname "$run")" "$OUT/scans-references/$(basename "$(dirname "$run")")--$(basename "$run").json"
done
first=$(zooRuns | head -1)
if [ -n "$first" ] && [ ! -s "$OUT/cli-check.json" ]; then
  $K scan --model "$first" --references "$RUNS/references/$(frontEndOf "$first")" --data "$D" --clean-ratio "$CLEAN_RATIO" --json \
    > "$OUT/cli-check.json" 2> "$LOGS/cli-check.err"
  npx tsx research/scan/fresh-zoo-scan.ts check --cli "$OUT/cli-check.json" --ours "$OUT/scans/$(basename "$first").json" 2>> "$LOGS/cli-check.err" &&
    log "cli check: equal" || log "cli check: DIFFERS (see logs/cli-check.err)"
fi
log "verdicts end"

# 5. per clip, the backdoored models in two halves
mapfile -t BACKDOORED < <(node -e 'for (const e of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))) if (e.label === "backdoored") console.log(e.run)' "$OUT/zoo.json")
perClip() { # $1 half
  local file=$OUT/per-clip-$1.json runs=()
  [ -s "$file" ] && return 0
  for i in "${!BACKDOORED[@]}"; do [ $((i % 2)) = "$1" ] && runs+=("${BACKDOORED[$i]}"); done
  [ ${#runs[@]} = 0 ] && return 0
  nice -n 5 npx tsx research/scan/strip-auroc.ts "${runs[@]}" --out "$file" --data "$D" --clips "$CLIPS" --clean-ratio "$CLEAN_RATIO" \
    > "$LOGS/per-clip-$1.out" 2> "$LOGS/per-clip-$1.err"
}
log "per-clip start"
perClip 0 & perClip 1 & wait
log "per-clip end"

# 6. the summary of the plan
npx tsx research/scan/fresh-zoo-summary.ts summary --zoo "$OUT/zoo.json" --out "$OUT" >> "$LOGS/summary.out" 2>> "$LOGS/summary.err" &&
  log "summary written" || log "summary failed"
