#!/usr/bin/env bash
# The official Pulumi YAML language host, for the test that deploys a YAML program through Berth's
# component package (tests/real/test_yaml_program.py).
#
#   bash .ci/yaml-host.sh build          # build (or reuse) pulumi-language-yaml
#   eval "$(bash .ci/yaml-host.sh env)"  # put it on PATH (prints an `export` line)
#   bash .ci/yaml-host.sh check          # exit 0 when it is built
#
# Unlike the Python language host (a stand-in here), this is the real Go host users get with the
# CLI: its module builds from the Go module proxy. It is cached outside the repo in
# $BERTH_CACHE/bin/pulumi-language-yaml-<version>/ (a folder of its own, because the engine finds a
# language host on PATH by its exact name). About 4 min with a warm module cache, 2 cores.
set -euo pipefail
BERTH_CACHE=${BERTH_CACHE:-/var/cache/berth}
VERSION=v1.25.0
DIR=$BERTH_CACHE/bin/pulumi-language-yaml-$VERSION
MODULE=github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml

log() { echo "yaml-host.sh: $*" >&2; }

cmd_build() {
  if [ -x "$DIR/pulumi-language-yaml" ]; then log "cached: $DIR"; return 0; fi
  mkdir -p "$DIR"
  exec 8>"$DIR.lock"   # one build at a time: engineers and CI share this cache
  flock -w 3600 8 || { log "ERROR: timed out waiting for $DIR.lock"; exit 1; }
  if [ -x "$DIR/pulumi-language-yaml" ]; then log "cached (built meanwhile): $DIR"; return 0; fi
  local t0; t0=$(date +%s)
  # The same Go caches as the cluster's binaries (.ci/k8s/build.sh); the binary lands in a temporary
  # name first so an interrupted build is never taken for a finished one.
  GOPATH=$BERTH_CACHE/go GOMODCACHE=$BERTH_CACHE/go/pkg/mod GOCACHE=$BERTH_CACHE/go/build-cache \
    GOFLAGS=-buildvcs=false GOBIN="$DIR/.tmp" go install -ldflags "-s -w" "$MODULE@$VERSION"
  mv "$DIR/.tmp/pulumi-language-yaml" "$DIR/pulumi-language-yaml"
  rmdir "$DIR/.tmp"
  log "built in $(( $(date +%s) - t0 ))s: $DIR"
}

case "${1:-}" in
  build) cmd_build ;;
  env) [ -x "$DIR/pulumi-language-yaml" ] || { log "ERROR: not built: run 'bash .ci/yaml-host.sh build'"; exit 1; }
       echo "export PATH=\"$DIR:\$PATH\"" ;;
  check) [ -x "$DIR/pulumi-language-yaml" ] ;;
  *) echo "usage: $0 build|env|check" >&2; exit 2 ;;
esac
