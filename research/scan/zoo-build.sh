#!/usr/bin/env bash
# Issue 11: the scan zoo on the small synthetic SCD-10 (data seed 0). The seven attacks x attack seeds 0-2 on
# resnet (12 epochs, the README attack table's command), plus BadNets and JingleBack seed 0 on lstm and kwt. Each
# attack run also trains (once, shared through KWSHIELD_CACHE) the clean model of its family, front-end and
# seed: those are the zoo's clean models. Two chains, one thread each; a finished run is skipped, so a killed
# build continues. usage: bash research/scan/zoo-build.sh [DATA] [RUNS] [LOGS]
# ZOO_PART=resnet-16k builds only the resnet attacks on the 16 kHz MFCC (badnets, jingleback, pbsm, vsvc-dsp x
# seeds 0-2) and their clean models: the part a reference scan (kwshield references build) can score.
# ZOO_PART=other-targets builds BadNets to 'left' and JingleBack to 'go' at attack seeds 3-4, and the clean
# models of seeds 3-4: a fresh zoo whose targets are not 'up', to test what a scan chose on the first one.
set -u
D=${1:-/work/data/small-scd10}
R=${2:-/work/exp/runs}
L=${3:-/work/exp/logs}
mkdir -p "$R" "$L"
export KWSHIELD_CACHE=${KWSHIELD_CACHE:-/work/exp/cache} KWSHIELD_THREADS=1
atk() { # $1 model, $2 attack, $3 seed, $4 run name, the rest extra options
  local m=$1 a=$2 s=$3 n=$4; shift 4
  if [ "${ZOO_PART:-}" = resnet-16k ]; then case "$m-$a" in resnet-badnets|resnet-jingleback|resnet-pbsm|resnet-vsvc-dsp) ;; *) return 0 ;; esac; fi
  [ -f "$R/$n/metrics.json" ] && return 0
  echo "$n start $(date -u +%T)" >> "$L/zoo.log"
  ./bin/kwshield attack --data "$D" --model "$m" --attack "$a" --epochs 12 --seed "$s" --examples 0 --json "$@" \
    --out "$R/$n" > "$L/$n.out" 2> "$L/$n.err"
  echo "$n end $? $(date -u +%T)" >> "$L/zoo.log"
}
fm() { atk resnet flowmur "$1" "resnet-flowmur-e40-s$1" -o epochs=40 -o batchSize=64; }
chainA() {
  atk resnet badnets 0 resnet-badnets-s0; atk resnet jingleback 0 resnet-jingleback-s0; atk resnet pbsm 0 resnet-pbsm-s0
  atk resnet jingleback 1 resnet-jingleback-s1; atk resnet pbsm 1 resnet-pbsm-s1; atk resnet vsvc-dsp 1 resnet-vsvc-dsp-s1
  atk resnet ultrasonic 0 resnet-ultrasonic-s0; atk resnet ultrasonic 1 resnet-ultrasonic-s1; fm 0; fm 1
  atk resnet daba 1 resnet-daba-s1; atk resnet badnets 1 resnet-badnets-s1
  atk lstm badnets 0 lstm-badnets-s0; atk lstm jingleback 0 lstm-jingleback-s0
}
chainB() {
  atk resnet vsvc-dsp 0 resnet-vsvc-dsp-s0; atk resnet jingleback 2 resnet-jingleback-s2; atk resnet pbsm 2 resnet-pbsm-s2
  atk resnet vsvc-dsp 2 resnet-vsvc-dsp-s2; atk resnet badnets 2 resnet-badnets-s2
  atk resnet ultrasonic 2 resnet-ultrasonic-s2; fm 2; atk resnet daba 0 resnet-daba-s0; atk resnet daba 2 resnet-daba-s2
  atk kwt badnets 0 kwt-badnets-s0; atk kwt jingleback 0 kwt-jingleback-s0
}
otherTargetsChain() { # $1 seed: the seed's clean model is trained by its first run and reused by the second
  atk resnet badnets "$1" "resnet-badnets-left-s$1" --target left
  atk resnet jingleback "$1" "resnet-jingleback-go-s$1" --target go
}
transformProbeChain() { # $1 seed, then four targets for badnets, jingleback, pbsm, vsvc-dsp
  local s=$1
  atk resnet badnets "$s" "resnet-badnets-$2-s$s" --target "$2"
  atk resnet jingleback "$s" "resnet-jingleback-$3-s$s" --target "$3"
  atk resnet pbsm "$s" "resnet-pbsm-$4-s$s" --target "$4"
  atk resnet vsvc-dsp "$s" "resnet-vsvc-dsp-$5-s$s" --target "$5"
}
if [ "${ZOO_PART:-}" = transform-probe ]; then
  transformProbeChain 5 down left up stop & transformProbeChain 6 yes off go no & wait
  echo "transform-probe done $(date -u +%T)" >> "$L/zoo.log"
  exit 0
fi
if [ "${ZOO_PART:-}" = transform-probe-confirm ]; then
  transformProbeChain 7 on stop yes left & transformProbeChain 8 go up right down & wait
  echo "transform-probe-confirm done $(date -u +%T)" >> "$L/zoo.log"
  exit 0
fi
if [ "${ZOO_PART:-}" = other-targets ]; then
  otherTargetsChain 3 & otherTargetsChain 4 & wait
  echo "other-targets done $(date -u +%T)" >> "$L/zoo.log"
  exit 0
fi
chainA & chainB & wait
echo "zoo done $(date -u +%T)" >> "$L/zoo.log"
