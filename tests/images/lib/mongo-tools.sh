#!/bin/sh
# mongo-tools.sh TARBALL CACHEDIR -> prints a directory holding static mongodump and mongorestore,
# built offline (-mod=vendor, CGO off) from a mongo-tools source snapshot (the Go module proxy refuses
# the module; ../shared/vendor/SOURCES.md) into CACHEDIR/mongo-tools-<sha16 of the tarball>/.
set -eu
tarball="$1" cachedir="$2"
[ -f "$tarball" ] || { echo "mongo-tools.sh: no source snapshot at $tarball" >&2; exit 1; }
sum="$(sha256sum "$tarball" | cut -c1-16)"
out="$cachedir/mongo-tools-$sum"
if [ ! -x "$out/mongodump" ] || [ ! -x "$out/mongorestore" ]; then
  GO="$(command -v go || echo /usr/local/go/bin/go)"
  [ -x "$GO" ] || { echo "mongo-tools.sh: no Go toolchain found" >&2; exit 1; }
  echo "mongo-tools.sh: building mongodump, mongorestore from $tarball ($sum)" >&2
  tmp="$(mktemp -d)"
  tar -C "$tmp" -xzf "$tarball"
  src="$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  for tool in mongodump mongorestore; do
    (cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
      "$GO" build -mod=vendor -trimpath -ldflags="-s -w -X main.VersionStr=snapshot-$sum" -o "$tmp/bin/$tool" "./$tool/main") >&2
  done
  mkdir -p "$cachedir"
  rm -rf "$out.tmp" && mv "$tmp/bin" "$out.tmp" && rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
fi
echo "$out"
