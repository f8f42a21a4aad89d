#!/usr/bin/env bash
# One-time set-up of a checkout: system packages (see setup-system.sh), npm dependencies, and the
# libtorch addon. Safe to run again: it skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh "$@"
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then export npm_config_nodedir=/usr; fi
# better-sqlite3 compiles its bundled SQLite with node-gyp; never try to download a prebuilt binary.
export npm_config_build_from_source=true
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
elif [ ! -f native/build/Release/kwshield_torch.node ]; then
  npm run build:native
fi
