#!/usr/bin/env bash
# The main job on a fresh machine: set-up, build, then the service on embedded defaults
# (local lock, DIR and CACHE under .local/, port 8080 unless PORT says otherwise).
# Stop it with Ctrl-C.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=toolchain-env.sh
source scripts/toolchain-env.sh
npm run --silent build
export PORT=${PORT:-8080} DIR=${DIR:-$ROOT/.local/data} CACHE=${CACHE:-$ROOT/.local/cache}
echo "[demo] chall-manager on http://127.0.0.1:$PORT (DIR=$DIR, CACHE=$CACHE)"
exec node dist/main.js
