# shellcheck shell=bash
# Sourced by the project's scripts: where the toolchain lives, and PATH pointing at it.
CM_TOOLCHAIN_DIR=${CM_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chall-manager-toolchain}
CM_TOOLCHAIN_BIN=$CM_TOOLCHAIN_DIR/bin
# The oldest Pulumi CLI this project accepts on PATH instead of building its own.
CM_PULUMI_MIN_VERSION=3.276.0
case ":$PATH:" in *":$CM_TOOLCHAIN_BIN:"*) ;; *) PATH=$CM_TOOLCHAIN_BIN:$PATH ;; esac
# Scenarios run offline: no update checks, no telemetry calls home.
export PULUMI_SKIP_UPDATE_CHECK=true
export CM_TOOLCHAIN_DIR CM_TOOLCHAIN_BIN PATH
