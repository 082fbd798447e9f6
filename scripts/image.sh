#!/usr/bin/env bash
# The container image, on machines with buildah and podman (and runc) but no Docker engine and no
# way to pull base images:
#
#   bash scripts/image.sh build [--target full|slim] [--tag IMAGE]
#       Builds the Dockerfile with buildah. Its base images (build arguments NODE_IMAGE and
#       GO_IMAGE, official images by default) are replaced by local stand-ins: a Debian bookworm
#       rootfs made with debootstrap, plus this machine's Node.js 24 (and npm) or its Go
#       toolchain, and its CA bundle (the registries may be reached through a proxy with a
#       private CA). The stand-ins are made once and kept (rootfs under $CM_TOOLCHAIN_DIR, images
#       in podman's store). The host's Go module and build caches and npm cache are mounted into
#       the build, so a machine that ran scripts/setup.sh does not compile or download it all again.
#   bash scripts/image.sh run [--tag IMAGE] [--data VOLUME] [--cache VOLUME] [PODMAN-RUN-OPTIONS...] [-- COMMAND...]
#       Runs it in the foreground with podman (runc, host network, ulimits these machines allow),
#       DIR and CACHE in the named volumes chall-manager-data and chall-manager-cache (or the
#       volumes or host directories given; a host directory must be writable by uid 65532).
#       Other options go to `podman run`, e.g. `-e ETCD_ENDPOINT=127.0.0.1:2379 -e OCI_INSECURE=true`.
#
# IMAGE defaults to localhost/chall-manager:latest (full) or localhost/chall-manager:slim.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=toolchain-env.sh
source "$ROOT/scripts/toolchain-env.sh"

say() { printf '[image] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is missing: run scripts/setup.sh (it installs podman, buildah, runc and debootstrap)"; }

BASES=$CM_TOOLCHAIN_DIR/image-bases
STANDIN=localhost/chall-manager-standin

# The Debian mirror apt uses here (deb822 sources first, then one-line ones).
mirror() {
  local uri
  uri=$(awk '$1 == "URIs:" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# A bookworm minbase rootfs as a tarball, made once.
base_rootfs() {
  local tarball=$BASES/bookworm-minbase.tar
  if [ ! -s "$tarball" ]; then
    need debootstrap
    local t tmp
    t=$(date +%s)
    tmp=$(mktemp -d)
    say "debootstrap bookworm (minbase) from $(mirror)"
    debootstrap --variant=minbase bookworm "$tmp/rootfs" "$(mirror)" >"$tmp/debootstrap.log" 2>&1 ||
      { tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
    rm -rf "$tmp/rootfs"/var/cache/apt/archives/*.deb "$tmp/rootfs"/var/lib/apt/lists/*
    mkdir -p "$BASES"
    tar -C "$tmp/rootfs" -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    rm -rf "$tmp"
    say "rootfs made in $(($(date +%s) - t))s"
  fi
  echo "$tarball"
}

# Unpacks the base rootfs into $1 with this machine's CA bundle, where Debian's ca-certificates
# keeps it when a build installs that package.
unpack_base() {
  local into=$1
  mkdir -p "$into"
  tar -C "$into" -xf "$(base_rootfs)"
  mkdir -p "$into/etc/ssl/certs" "$into/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$into/etc/ssl/certs/ca-certificates.crt"
  cp /etc/ssl/certs/ca-certificates.crt "$into/usr/local/share/ca-certificates/host-bundle.crt"
}

# Imports rootfs $1 as image $2 with the given --change instructions.
import_rootfs() {
  local rootfs=$1 image=$2
  shift 2
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  tar -C "$rootfs" -c . | podman import --quiet "${changes[@]}" - "$image" >/dev/null
}

# Stand-in for node:24-bookworm-slim: Node.js 24 at /usr/local/bin with npm beside it, as there.
node_standin() {
  local node
  node=$(command -v node) || die "node is missing: run scripts/setup.sh"
  local v
  v=$("$node" --version | sed 's/^v//')
  [ "${v%%.*}" = 24 ] || die "node on PATH is v$v; the image needs Node.js 24 (run scripts/setup.sh)"
  local image=$STANDIN/node:$v-bookworm-slim
  if ! podman image exists "$image"; then
    local npm_dir tmp
    npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
    [ -f "$npm_dir/package.json" ] || die "cannot find npm's package directory"
    tmp=$(mktemp -d)
    unpack_base "$tmp/rootfs"
    install -m 0755 "$(readlink -f "$node")" "$tmp/rootfs/usr/local/bin/node"
    mkdir -p "$tmp/rootfs/usr/local/lib/node_modules"
    cp -a "$npm_dir" "$tmp/rootfs/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/rootfs/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/rootfs/usr/local/bin/npx"
    import_rootfs "$tmp/rootfs" "$image" \
      "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "ENV NODE_VERSION=$v" 'CMD ["node"]'
    rm -rf "$tmp"
    say "made $image"
  fi
  echo "$image"
}

# Stand-in for golang:1.26-bookworm: this machine's Go toolchain at /usr/local/go, GOPATH /go.
go_standin() {
  need go
  local goroot v
  goroot=$(go env GOROOT)
  v=$(go env GOVERSION | sed 's/^go//')
  local image=$STANDIN/golang:$v-bookworm
  if ! podman image exists "$image"; then
    local tmp
    tmp=$(mktemp -d)
    unpack_base "$tmp/rootfs"
    cp -a "$goroot" "$tmp/rootfs/usr/local/go"
    mkdir -p "$tmp/rootfs/go/bin" "$tmp/rootfs/go/src"
    import_rootfs "$tmp/rootfs" "$image" \
      "ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      "ENV GOPATH=/go" "ENV GOLANG_VERSION=$v" "WORKDIR /go"
    rm -rf "$tmp"
    say "made $image"
  fi
  echo "$image"
}

default_tag() { if [ "$1" = slim ]; then echo localhost/chall-manager:slim; else echo localhost/chall-manager:latest; fi; }

build() {
  local target=full tag=""
  while [ $# -gt 0 ]; do
    case $1 in
      --target) target=$2; shift 2 ;;
      --tag) tag=$2; shift 2 ;;
      *) die "build: unknown option $1" ;;
    esac
  done
  case $target in full | slim) ;; *) die "--target is full or slim" ;; esac
  tag=${tag:-$(default_tag "$target")}
  need buildah
  need podman
  local t node_image go_image
  t=$(date +%s)
  node_image=$(node_standin)
  go_image=$(go_standin)
  # The host's caches, when there are any: the builds read and fill them as on the host.
  local mounts=() gomodcache gocache npmcache
  gomodcache=$(go env GOMODCACHE)
  gocache=$(go env GOCACHE)
  npmcache=$(npm config get cache)
  mkdir -p "$gomodcache" "$gocache" "$npmcache"
  mounts+=(-v "$gomodcache:/go/pkg/mod" -v "$gocache:/root/.cache/go-build" -v "$npmcache:/root/.npm")
  say "building $tag (target $target) on $node_image and $go_image"
  buildah bud --isolation chroot --layers --quiet \
    --build-arg "NODE_IMAGE=$node_image" --build-arg "GO_IMAGE=$go_image" \
    "${mounts[@]}" --target "$target" -t "$tag" -f "$ROOT/Dockerfile" "$ROOT" >/dev/null
  say "built $tag in $(($(date +%s) - t))s: $(podman image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%d MB", $1 / 1000000 }')"
}

run() {
  local tag=localhost/chall-manager:latest data=chall-manager-data cache=chall-manager-cache opts=() cmd=()
  while [ $# -gt 0 ]; do
    case $1 in
      --tag) tag=$2; shift 2 ;;
      --data) data=$2; shift 2 ;;
      --cache) cache=$2; shift 2 ;;
      --) shift; cmd=("$@"); break ;;
      *) opts+=("$1"); shift ;;
    esac
  done
  need podman
  # runc: podman's default runtime (crun) refuses hybrid cgroups. The ulimits: podman's defaults
  # need CAP_SYS_RESOURCE, which these machines do not grant.
  exec podman --runtime runc run --rm --network host \
    --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
    -v "$data:/data" -v "$cache:/cache" \
    "${opts[@]}" "$tag" "${cmd[@]}"
}

case ${1:-} in
  build) shift; build "$@" ;;
  run) shift; run "$@" ;;
  *) die "usage: $0 build [--target full|slim] [--tag IMAGE] | run [--tag IMAGE] [--data VOLUME] [--cache VOLUME] [PODMAN-RUN-OPTIONS...] [-- COMMAND...]" ;;
esac
