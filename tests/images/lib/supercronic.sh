#!/bin/sh
# supercronic.sh VERSION CACHEDIR -> prints the path of a static supercronic binary, building it
# with the Go toolchain (CGO_ENABLED=0) into CACHEDIR/supercronic-VERSION if it is not there yet.
set -eu
version="$1" cachedir="$2"
out="$cachedir/supercronic-$version"
if [ ! -x "$out" ]; then
  GO="$(command -v go || echo /usr/local/go/bin/go)"
  [ -x "$GO" ] || { echo "supercronic.sh: no Go toolchain found" >&2; exit 1; }
  tmp="$(mktemp -d)"
  echo "supercronic.sh: building github.com/aptible/supercronic@$version" >&2
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    "$GO" install -trimpath -ldflags='-s -w' "github.com/aptible/supercronic@$version" >&2
  mkdir -p "$cachedir"
  mv "$tmp/supercronic" "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
fi
echo "$out"
