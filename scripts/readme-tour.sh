#!/usr/bin/env bash
# Runs every shell command of README.md's tour ("A tour" and "Your own model") in a fresh clone of this checkout,
# in order, and logs each command's exit code and wall time, so "every command in the README runs" is a check
# anyone can repeat, not a claim. The clone gets this checkout's node_modules and built addon (set-up is the
# README's first command and is not repeated here). Your-own-model commands use the committed fixture archive
# (fixtures/torchscript/kws-wave16k-scd10.pt, a tiny waveform model) in place of my-kws.pt, and a few test clips of
# two words (untriggered: the check is that the command runs, not what ASR it finds) in place of my-triggered-clips/.
# usage: bash scripts/readme-tour.sh [WORK]        (default /tmp/readme-tour; log: WORK/tour.log)
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/readme-tour}
rm -rf "$WORK" && mkdir -p "$WORK"
git clone -q "$SRC" "$WORK/clone"
cd "$WORK/clone" || exit 1
ln -s "$SRC/node_modules" node_modules
mkdir -p native/build/Release && cp "$SRC/native/build/Release/kwshield_torch.node" native/build/Release/
LOG=$WORK/tour.log
: > "$LOG"
# The fenced sh blocks of the two sections, one command a line (comments and blank lines dropped).
commands() {
  awk '/^## /{section=$0} /^```sh/{inblock=1; next} /^```/{inblock=0; next}
       inblock && (section ~ /A tour/ || section ~ /Your own model/) && $0 !~ /^ *#/ && NF {print}' README.md
}
failed=0
while IFS= read -r line; do
  cmd=${line//my-kws.pt/fixtures\/torchscript\/kws-wave16k-scd10.pt}
  if [[ $cmd == *my-triggered-clips/* && ! -d my-triggered-clips ]]; then
    mkdir -p my-triggered-clips/yes my-triggered-clips/no
    grep '^yes/' data/scd10/testing_list.txt | head -5 | xargs -I{} cp data/scd10/{} my-triggered-clips/yes/
    grep '^no/' data/scd10/testing_list.txt | head -5 | xargs -I{} cp data/scd10/{} my-triggered-clips/no/
  fi
  start=$(date +%s)
  if bash -c "$cmd" > "$WORK/last.out" 2>&1; then status=ok; else status="FAILED ($?)"; failed=1; fi
  echo "$(date -u +%FT%T) $(( $(date +%s) - start ))s $status: $cmd" | tee -a "$LOG"
  [ "$status" = ok ] || tail -20 "$WORK/last.out" | tee -a "$LOG"
done < <(commands)
exit $failed
