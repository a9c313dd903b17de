#!/usr/bin/env bash
# The real Pulumi engine for CI and the real-deploy tests.
#
#   bash .ci/engine.sh build        # build (or reuse) the CLI + kubernetes/random/tls/docker plugins
#   eval "$(bash .ci/engine.sh env)"  # PATH and settings for running them (prints `export ...` lines)
#   bash .ci/engine.sh check        # exit 0 when `pulumi version` runs and every plugin is there
#
# The binaries come from ../shared/engine/build.sh (the verified recipe; called from ../shared, not
# copied here) and are cached outside the repo in $BERTH_CACHE/engine/<key>/bin, where <key> names
# the CLI and kubernetes versions and hashes build.sh and the vendored provider sources, so a change
# of recipe builds anew. A cold build takes 30-45 min on 2 cores; a cached one is a few checks.
# The language host is ../shared/engine/pulumi-language-python (a stand-in for the Go host that
# cannot be had here; users run the official CLI, which ships it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${BERTH_SHARED:-$(cd "$REPO/../shared" 2>/dev/null && pwd || true)}
BERTH_CACHE=${BERTH_CACHE:-/var/cache/berth}
ENGINE=$SHARED/engine
PLUGINS="pulumi pulumi-resource-kubernetes pulumi-resource-random pulumi-resource-tls pulumi-resource-docker"

log() { echo "engine.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -x "$ENGINE/build.sh" ] || die "no $ENGINE/build.sh: the shared engine recipe must sit beside the repo (../shared)"

key() {
  local pv kv h
  pv=$(sed -n 's/^PULUMI_VERSION=\${PULUMI_VERSION:-\(.*\)}$/\1/p' "$ENGINE/build.sh")
  kv=$(sed -n 's/^K8S_VERSION=\${K8S_VERSION:-\(.*\)}$/\1/p' "$ENGINE/build.sh")
  [ -n "$pv" ] && [ -n "$kv" ] || die "cannot read the versions from $ENGINE/build.sh"
  h=$(cat "$ENGINE/build.sh" "$SHARED"/vendor/pulumi-*.tar.gz "$SHARED"/vendor/terraform-provider-*.tar.gz | sha256sum | cut -c1-10)
  echo "pulumi-${pv}_k8s-${kv}_${h}"
}

KEY=$(key)
DIR=$BERTH_CACHE/engine/$KEY
BIN=$DIR/bin

complete() { local b; for b in $PLUGINS; do [ -x "$BIN/$b" ] || return 1; done; }

cmd_build() {
  if complete; then log "cached: $BIN"; return 0; fi
  mkdir -p "$DIR"
  # One build at a time (engineers and CI share this machine's cache).
  exec 8>"$DIR.lock"
  flock -w 7200 8 || die "timed out waiting for $DIR.lock"
  if complete; then log "cached (built meanwhile): $BIN"; return 0; fi
  local t0; t0=$(date +%s)
  log "building into $BIN (log: $DIR/build.log)"
  if ! bash "$ENGINE/build.sh" "$BIN" "$DIR/src" >"$DIR/build.log" 2>&1; then
    tail -40 "$DIR/build.log" >&2
    die "engine build failed (full log: $DIR/build.log)"
  fi
  complete || die "build.sh finished but plugins are missing in $BIN"
  log "built in $(( $(date +%s) - t0 ))s"
  # The sources and module downloads are only needed to build; the Go build cache stays in GOCACHE.
  rm -rf "$DIR/src"
}

cmd_env() {
  complete || die "engine not built: run 'bash .ci/engine.sh build' first"
  cat <<EOF
export BERTH_ENGINE_BIN="$BIN"
export PATH="$ENGINE:$BIN:$REPO/.venv/bin:\$PATH"
export PULUMI_LH_PYTHON="$REPO/.venv/bin/python"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
EOF
}

cmd_check() {
  complete || die "engine not built in $BIN"
  "$BIN/pulumi" version >/dev/null || die "$BIN/pulumi does not run"
  echo "pulumi $("$BIN/pulumi" version) in $BIN"
}

case "${1:-}" in
  build) cmd_build ;;
  env) cmd_env ;;
  check) cmd_check ;;
  key) echo "$KEY" ;;
  *) echo "usage: $0 build|env|check|key" >&2; exit 2 ;;
esac
