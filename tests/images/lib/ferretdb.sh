#!/bin/sh
# ferretdb.sh VERSION CACHEDIR [PATCH...] -> prints the path of a static FerretDB binary
# (github.com/FerretDB/FerretDB from the Go module proxy, CGO off: the SQLite backend is pure Go), with
# the given patches applied (-p1 from the module root; git apply, or patch where git is missing), built
# into CACHEDIR/ferretdb-VERSION-<sha16 of the patches> if it is not there yet.
# `go install ...@VERSION` would build a binary that panics at start: FerretDB reads its own version
# from build/version/version.txt, which its release process generates and the module does not hold.
# So the module is copied out of the module cache and the file written, as `task gen-version` would.
set -eu
version="$1" cachedir="$2"
shift 2
sum="$(cat "$@" </dev/null | sha256sum | cut -c1-16)"
out="$cachedir/ferretdb-$version-$sum"
if [ ! -x "$out" ]; then
  GO="$(command -v go || echo /usr/local/go/bin/go)"
  [ -x "$GO" ] || { echo "ferretdb.sh: no Go toolchain found" >&2; exit 1; }
  echo "ferretdb.sh: building github.com/FerretDB/FerretDB@$version" >&2
  src="$("$GO" mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -d "$src" ] || { echo "ferretdb.sh: module download failed" >&2; exit 1; }
  tmp="$(mktemp -d)"
  cp -r "$src/." "$tmp/src"
  chmod -R u+w "$tmp/src"
  for p in "$@"; do
    # git apply works outside a repository too, and a CI runner that checked out this repo has git.
    if command -v git >/dev/null; then
      git -C "$tmp/src" apply -p1 "$p" >&2 || { echo "ferretdb.sh: $p does not apply" >&2; exit 1; }
    else
      patch -d "$tmp/src" -p1 --forward --quiet <"$p" >&2 || { echo "ferretdb.sh: $p does not apply" >&2; exit 1; }
    fi
  done
  echo "$version" >"$tmp/src/build/version/version.txt"
  echo "berth-test-image" >"$tmp/src/build/version/package.txt"
  (cd "$tmp/src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    "$GO" build -trimpath -ldflags='-s -w' -o "$tmp/ferretdb" ./cmd/ferretdb) >&2
  mkdir -p "$cachedir"
  mv "$tmp/ferretdb" "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
fi
echo "$out"
