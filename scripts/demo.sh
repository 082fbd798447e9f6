#!/usr/bin/env bash
# The main job on a fresh machine: set-up, build, then the service on embedded defaults (local
# lock, DIR and CACHE under .local/), a local registry holding the example scenario, and a walk
# through a player's instance: create the challenge, create an instance, connect to it and read
# its flag, renew it, delete it. The service then keeps running until Ctrl-C
# (`--once`: stop after the walk-through).
#
# Environment: PORT (default 8080), REGISTRY (host:port of a running registry; default: start one).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ONCE=false
[ "${1:-}" = "--once" ] && ONCE=true

bash scripts/setup.sh
# shellcheck source=toolchain-env.sh
source scripts/toolchain-env.sh
npm run --silent build

WORK=$ROOT/.local/demo
mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { printf '\n\033[1m[demo] %s\033[0m\n' "$*"; }
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# --- A registry with the example scenario -------------------------------------------------
if [ -z "${REGISTRY:-}" ]; then
  REGISTRY=127.0.0.1:$(free_port)
  rm -rf "$WORK/registry" && mkdir -p "$WORK/registry"
  cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $WORK/registry/data }, delete: { enabled: true } }
http: { addr: $REGISTRY, secret: demo }
EOF
  docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
  PIDS+=($!)
  until curl -sf -o /dev/null "http://$REGISTRY/v2/"; do sleep 0.1; done
  say "registry started at $REGISTRY"
fi
SCENARIO=$REGISTRY/examples/nodejs-flag-server:v1
say "pushing examples/nodejs-flag-server to $SCENARIO with ORAS"
(cd examples/nodejs-flag-server && oras push --plain-http "$SCENARIO" \
  --artifact-type application/vnd.ctfer-io.scenario \
  Pulumi.yaml:application/vnd.ctfer-io.file package.json:application/vnd.ctfer-io.file \
  index.js:application/vnd.ctfer-io.file >/dev/null)

# --- The service --------------------------------------------------------------------------
export PORT=${PORT:-8080} DIR=${DIR:-$WORK/data} CACHE=${CACHE:-$WORK/cache} OCI_INSECURE=true SWAGGER=true
node --max-semi-space-size=4 dist/main.js >"$WORK/service.log" 2>&1 &
PIDS+=($!)
API=http://127.0.0.1:$PORT
until curl -sf -o /dev/null "$API/healthcheck"; do sleep 0.1; done
say "chall-manager on $API (gRPC and REST on one port; logs: $WORK/service.log; Swagger: $API/swagger/)"

call() { # METHOD PATH [BODY]
  echo "> $1 $2 ${3:-}"
  curl -sS -X "$1" "$API$2" -H 'content-type: application/json' ${3:+-d "$3"}
  echo
}

# A previous demo run may have left its challenge: start clean.
curl -sf -o /dev/null -X DELETE "$API/api/v1/challenge/demo" || true
say "1. create the challenge (validates the scenario with a Pulumi preview)"
call POST /api/v1/challenge "{\"id\":\"demo\",\"scenario\":\"$SCENARIO\",\"timeout\":\"600s\"}"
say "2. create an instance for source team-1 (a real pulumi up)"
instance=$(call POST /api/v1/instance '{"challengeId":"demo","sourceId":"team-1"}')
echo "$instance"
port=$(echo "$instance" | sed -n 's/.*nc 127\.0\.0\.1 \([0-9]*\).*/\1/p')
say "3. connect to the instance (nc 127.0.0.1 $port): it answers the flag"
exec 3<>"/dev/tcp/127.0.0.1/$port" && cat <&3 && exec 3<&-
say "4. renew it"
call PATCH /api/v1/instance/demo/team-1 '{}'
say "5. delete it (pulumi destroy: the TCP service stops)"
call DELETE /api/v1/instance/demo/team-1
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && echo "still listening?!" || echo "port $port closed"
say "6. the challenge remains; the service keeps serving"
call GET /api/v1/challenge/demo

if [ "$ONCE" = true ]; then
  call DELETE /api/v1/challenge/demo
  say "done"
  exit 0
fi
say "Ctrl-C to stop (try: curl $API/api/v1/challenge)"
wait "${PIDS[-1]}"
