# chall-manager: the service, the Pulumi CLI with its nodejs and go language hosts, and (target
# `full`, the default) the Go toolchain that compiles `main.go` scenarios.
#
#   docker build -t chall-manager .                 # full: Go-binary, main.go and nodejs scenarios
#   docker build --target slim -t chall-manager .   # slim: Go-binary and nodejs scenarios only
#
# The base images are build arguments whose defaults are the official images, so the file builds
# unchanged anywhere; scripts/image.sh builds it on machines that cannot pull them, with local
# stand-ins made from a Debian bookworm rootfs.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG GO_IMAGE=golang:1.26-bookworm

# --- pulumi: the CLI and both language hosts, from the pinned wrapper modules of tools/ ---------
FROM ${GO_IMAGE} AS pulumi
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
WORKDIR /src/tools
COPY tools/pulumi-cli pulumi-cli
COPY tools/pulumi-language-nodejs pulumi-language-nodejs
COPY tools/pulumi-language-go pulumi-language-go
COPY tools/plugin-env plugin-env
# Same builds as scripts/setup.sh: the version each binary reports is its module's pinned version.
# bin/ holds what the CLI finds on PATH; the language hosts go behind the wrappers (no stack
# passphrase for scenario code; the Go host gets the scenario's binary the way it expects it).
RUN set -eu; \
    version() { awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod"; }; \
    build() { \
      v=$(version "$1" "$2"); [ -n "$v" ]; \
      (cd "$1" && go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$v" -o "$3" "$4"); \
    }; \
    build pulumi-cli github.com/pulumi/pulumi/pkg/v3 /out/bin/pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi; \
    build pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3 /out/libexec/pulumi-language-nodejs \
      github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs; \
    build pulumi-language-go github.com/pulumi/pulumi/sdk/v3 /out/libexec/pulumi-language-go \
      github.com/pulumi/pulumi/sdk/v3/go/pulumi-language-go; \
    for p in pulumi-language-nodejs pulumi-resource-pulumi-nodejs; do \
      sed -e "s#@NAME@#$p#" -e "s#@REAL@#/opt/pulumi/libexec/$p#" plugin-env/wrapper.sh >"/out/bin/$p"; \
    done; \
    sed "s#@REAL_HOST@#/opt/pulumi/libexec/pulumi-language-go#" pulumi-language-go/wrapper.sh >/out/bin/pulumi-language-go; \
    chmod 0755 /out/bin/*

# --- app: the TypeScript build, then production node_modules only ------------------------------
# OpenTelemetry's packages each ship three builds (CommonJS, ESM, ESNext) and their source maps,
# about 100 MB: the service and the scenarios it runs require() them, which reads the CommonJS one.
# The scenario SDK (@chall-manager/sdk, the npm workspace sdk/nodejs) is built with the service and
# copied into node_modules in place of npm's workspace link, so scenarios find it as they find
# @pulumi/pulumi (NODE_PATH) without the workspace's sources.
FROM ${NODE_IMAGE} AS app
WORKDIR /app
COPY package.json package-lock.json ./
COPY sdk/nodejs/package.json sdk/nodejs/package.json
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY sdk/nodejs/tsconfig.json sdk/nodejs/tsconfig.build.json sdk/nodejs/README.md sdk/nodejs/
COPY sdk/nodejs/src sdk/nodejs/src
COPY src src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
 && rm node_modules/@chall-manager/sdk \
 && mkdir node_modules/@chall-manager/sdk \
 && cp -R sdk/nodejs/package.json sdk/nodejs/README.md sdk/nodejs/dist node_modules/@chall-manager/sdk/ \
 && find node_modules/@chall-manager/sdk/dist -name '*.map' -type f -delete \
 && rm -rf node_modules/.package-lock.json node_modules/.cache \
 && find node_modules -path '*/@opentelemetry/*/build/*' \( -name esm -o -name esnext \) -type d -prune -exec rm -rf {} + \
 && find node_modules -path '*/@opentelemetry/*' -name '*.map' -type f -delete \
 && cp node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs /app/pulumi-resource-pulumi-nodejs

# --- slim: runtime without the Go toolchain -----------------------------------------------------
FROM ${NODE_IMAGE} AS slim
# tini is PID 1: it forwards SIGTERM to the service and reaps the plugin processes Pulumi starts
# in process groups of their own, which would otherwise stay zombies. ca-certificates: registries,
# the Go module proxy and the clouds scenarios talk to.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 65532 chall-manager \
 && useradd --uid 65532 --gid 65532 --home-dir /home/chall-manager --create-home --shell /usr/sbin/nologin chall-manager \
 && install -d -o 65532 -g 65532 -m 0700 /data /cache
COPY --from=pulumi /out/bin/ /opt/pulumi/bin/
COPY --from=pulumi /out/libexec/ /opt/pulumi/libexec/
COPY --from=app /app/pulumi-resource-pulumi-nodejs /opt/pulumi/libexec/
WORKDIR /app
COPY --from=app /app/package.json package.json
COPY --from=app /app/node_modules node_modules
COPY --from=app /app/dist dist
COPY proto proto
# HOME holds Pulumi's workspace and plugin cache (and, in `full`, Go's caches): with a read-only
# root filesystem, mount a writable volume there, as deploy/ does.
ENV PATH=/opt/pulumi/bin:$PATH \
    NODE_ENV=production \
    HOME=/home/chall-manager \
    PORT=8080 \
    DIR=/data \
    CACHE=/cache \
    PULUMI_SKIP_UPDATE_CHECK=true
VOLUME ["/data", "/cache"]
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/bin/tini", "--"]
# A young generation of 2 x 4 MiB: left to V8, it grows to 2 x 32 MiB on a large host while the
# modules load and stays there, about 20 MiB of idle RSS for no measurable gain in latency.
CMD ["node", "--max-semi-space-size=4", "dist/main.js"]

# --- go: the toolchain `full` carries, without what `go build` never reads (docs, tests, and the
# tools but the compiler, linker, assembler and cgo) -----------------------------------------------
FROM ${GO_IMAGE} AS go
RUN cd /usr/local/go \
 && rm -rf api doc misc test lib/wasm \
 && find pkg/tool -type f ! -name compile ! -name link ! -name asm ! -name cgo -delete \
 && find src -type d -name testdata -prune -exec rm -rf {} + \
 && find src -name '*_test.go' -delete

# --- full (default): runtime with the Go toolchain for main.go scenarios ------------------------
FROM slim AS full
COPY --from=go /usr/local/go /usr/local/go
# GOTOOLCHAIN=local: a scenario's go.mod never makes the service download another toolchain.
# CGO_ENABLED=0: the image has no C compiler; the service compiles scenarios that way anyway.
ENV PATH=/usr/local/go/bin:$PATH \
    GOTOOLCHAIN=local \
    CGO_ENABLED=0
