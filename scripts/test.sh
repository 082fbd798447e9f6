#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, static checks, unit tests, e2e tests (real
# Pulumi CLI, real registry, real etcd, started on free 127.0.0.1 ports by the e2e global set-up).
# Ends with one line "N passed, N failed" summing every suite (a failed static check counts as one
# failure).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
# shellcheck source=toolchain-env.sh
source scripts/toolchain-env.sh

REPORTS=$ROOT/.local/reports
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
check_failures=0
check() {
  local name=$1; shift
  echo "== $name: $*"
  if "$@"; then echo "== $name: ok"; else echo "== $name: FAILED"; check_failures=$((check_failures + 1)); fi
}

check build npm run --silent build
check typecheck npm run --silent typecheck
check lint npm run --silent lint
check format npm run --silent format:check

suite() {
  local name=$1 config=$2
  echo "== $name tests"
  npx vitest run --config "$config" --reporter=default --reporter=json --outputFile.json="$REPORTS/$name.json"
}
suite unit vitest.config.mts
suite e2e vitest.e2e.config.mts

node scripts/summarize-tests.mjs "$check_failures" "$REPORTS"/*.json
