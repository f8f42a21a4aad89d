#!/usr/bin/env bash
# Installs the system packages kwshield needs (Debian/Ubuntu): libtorch (unless $LIBTORCH points to
# one) with OpenBLAS, espeak-ng (the synthetic Speech Commands voices) and flite (a second speech engine,
# `data synth --engines espeak-ng,flite`). With --bench it adds python3-torch,
# python3-torchaudio and libjemalloc2, used only by the side-by-side benchmark and to remake reference fixtures. With --test it adds
# Debian's chromium, in which the report's end-to-end test renders report.html (the test skips without it).
# With --slurm it adds slurmctld, slurmd, slurm-client and munge (a single-node Slurm for test/slurm.test.ts).
# As root with apt it installs what is missing; otherwise it prints the exact command and fails.
set -euo pipefail

packages=()
if [ -z "${LIBTORCH:-}" ] && [ ! -f /usr/include/ATen/ATen.h ]; then packages+=(libtorch-dev); fi
command -v espeak-ng >/dev/null 2>&1 || packages+=(espeak-ng)
command -v flite >/dev/null 2>&1 || packages+=(flite)
# Debian's libtorch calls the system BLAS; the reference BLAS it falls back to made a Linear layer
# 7x slower than OpenBLAS here (measured: 441 ms vs 63 ms for a [25088, 64] x [64, 256] product).
if [ -z "${LIBTORCH:-}" ] && ! ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then packages+=(libopenblas0-pthread); fi
for flag in "$@"; do
  case "$flag" in
    --bench)
      /usr/bin/python3 -c 'import torch, torchaudio' >/dev/null 2>&1 || packages+=(python3-torch python3-torchaudio)
      # jemalloc: one of the allocators the benchmark gives PyTorch so that it runs at its best
      ls /usr/lib/*/libjemalloc.so.2 >/dev/null 2>&1 || packages+=(libjemalloc2) ;;
    --test) [ -x /usr/bin/chromium ] || packages+=(chromium) ;;
    # a single-node Slurm (scripts/slurm-local.sh) for test/slurm.test.ts and for trying examples/slurm/
    --slurm)
      [ -x /usr/sbin/slurmctld ] || packages+=(slurmctld)
      [ -x /usr/sbin/slurmd ] || packages+=(slurmd)
      [ -x /usr/bin/sbatch ] || packages+=(slurm-client)
      [ -x /usr/sbin/munged ] || packages+=(munge) ;;
    *) echo "setup-system.sh: unknown option $flag (use --bench, --test and/or --slurm)" >&2; exit 2 ;;
  esac
done

if [ ${#packages[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${packages[@]}"
else
  echo "kwshield needs these system packages: ${packages[*]}" >&2
  echo "install them with:  sudo apt-get install -y ${packages[*]}" >&2
  echo "(or point LIBTORCH at an unpacked libtorch instead of installing libtorch-dev)" >&2
  exit 1
fi
