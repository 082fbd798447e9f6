#!/usr/bin/env bash
# Runs one benchmark (or all): bash bench/run.sh [scenarios|api|memory|...|all]. Prints the figures.
# bash bench/run.sh profile [claims, default 500]: the CPU profile of pooled claims (bench/profile.ts).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../scripts/toolchain-env.sh
source scripts/toolchain-env.sh
npm run --silent build
npx tsc -p tsconfig.bench.json
# The compiled helpers find protos, examples and package.json relative to themselves.
for f in proto examples package.json node_modules; do ln -sfn "$ROOT/$f" ".local/bench-dist/$f"; done
which=${1:-all}
if [ "$which" = profile ]; then
  shift
  node .local/bench-dist/bench/profile.js "$@"
  exit
fi
for b in bench/*.bench.ts; do
  name=$(basename "$b" .bench.ts)
  if [ "$which" = all ] || [ "$which" = "$name" ]; then
    echo "== $name"
    node ".local/bench-dist/bench/$name.bench.js"
  fi
done
