#!/usr/bin/env bash
# Running the workflows in .github/workflows for real on this machine, with `act`.
#
#   bash .ci/act.sh build         # build (or reuse) act, the pinned actions' bundles and a tool cache
#   eval "$(bash .ci/act.sh env)"   # BERTH_ACT, BERTH_ACTIONS, BERTH_ACT_TOOLCACHE (prints `export ...`)
#
# GitHub is not reachable here, so nothing is cloned at run time:
# - act (github.com/nektos/act) is built from the Go module proxy into $BERTH_CACHE/bin, its artifact
#   server made to serve the artifact clients the workflows pin (see build_act);
# - each action the workflows pin is a snapshot in ../shared/vendor/gh-action-NAME.tar.gz (one folder
#   of the action's repository at the commit ../shared/vendor/SOURCES.md names). Where a snapshot lacks
#   the `dist/` bundle that action.yml runs, it is built from the sources with npm, by the action's own
#   build script. Each lands in $BERTH_CACHE/actions/NAME-<hash of the tarball>, and actions.tsv there
#   maps `owner/repo commit-prefix folder` for `act --local-repository` (tests/workflows/act.py);
# - actions/setup-python finds Python in a tool cache (act's RUNNER_TOOL_CACHE) instead of
#   downloading it: Python/<version>/x64 holds links to this machine's python3.
# upload-artifact's lock file names @actions/artifact 6.2.0, which the registry here does not serve:
# its build installs 6.2.1 (the next patch release, which its package.json range allows) and keeps
# every other locked version.
# A cold build takes a few minutes (act ~8 min on 2 cores, each npm build ~1-2 min); cached, a few checks.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${BERTH_SHARED:-$(cd "$REPO/../shared" 2>/dev/null && pwd || true)}
BERTH_CACHE=${BERTH_CACHE:-/var/cache/berth}
ACT_VERSION=v0.2.89
ACT=$BERTH_CACHE/bin/act-$ACT_VERSION-berth-artifacts2
ACTIONS=$BERTH_CACHE/actions
TOOLCACHE=$BERTH_CACHE/act/tool_cache

log() { echo "act.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -f "$SHARED/vendor/SOURCES.md" ] || die "no ../shared/vendor/SOURCES.md: the action snapshots must sit beside the repo"

# NAME  owner/repo  what action.yml runs that a snapshot may lack  how to build it (in the folder)
RECIPES=$(cat <<'EOF'
checkout	actions/checkout	dist/index.js	-
setup-python	actions/setup-python	dist/setup/index.js	-
github-script	actions/github-script	dist/index.js	-
download-artifact	actions/download-artifact	dist/index.js	npm ci --no-audit --no-fund --ignore-scripts && npx ncc build src/download-artifact.ts -o dist
upload-artifact	actions/upload-artifact	dist/upload/index.js	npm install --no-audit --no-fund --ignore-scripts @actions/artifact@6.2.1 && npx ncc build src/upload/index.ts -o dist/upload && npx ncc build src/merge/index.ts -o dist/merge
pulumi-actions	pulumi/actions	dist/index.js	npm install --no-audit --no-fund --ignore-scripts && npx ncc build src/main.ts -e typescript -o dist && node scripts/replace-ts.js
EOF
)

commit_of() {  # the commit SOURCES.md gives for a repository (the prefix it prints)
  awk -F'|' -v r="github.com/$1" '$3 ~ r {gsub(/ /, "", $4); split($4, a, "("); print a[1]; exit}' "$SHARED/vendor/SOURCES.md"
}

build_act() {
  if [ -x "$ACT" ]; then return 0; fi
  log "building act $ACT_VERSION (Go module proxy), its artifact server patched"
  local src work
  export GOPATH="${GOPATH:-$BERTH_CACHE/go}" GOFLAGS=-mod=mod
  src=$(cd /tmp && go mod download -json "github.com/nektos/act@$ACT_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || die "go mod download of act gave no source folder"
  work=$(mktemp -d)
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  # act's artifact server (the v4 protocol of upload-artifact/download-artifact) was written for
  # older clients than the ones the workflows pin; two changes make it serve them as GitHub does:
  # - upload-artifact v7 sends `mime_type` in CreateArtifact, a field the server did not know, and it
  #   refused the whole request: it now ignores fields it does not know (as protobuf servers do);
  # - its signed upload/download URLs carried an expiry time with spaces and '+' (as '+'), which the
  #   newer blob client re-encodes, so every upload failed "unauthorized": the expiry is now Unix
  #   seconds and the signature unpadded base64, nothing a client may re-encode.
  python3 - "$work/pkg/artifacts/artifacts_v4.go" <<'PY' || die "act's artifact server changed: review the patch in .ci/act.sh"
import sys
path = sys.argv[1]
src = open(path).read()
edits = [
    ("err = protojson.Unmarshal(body, req)",
     "err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, req)"),
    ('expires := time.Now().Add(60 * time.Minute).Format("2006-01-02 15:04:05.999999999 -0700 MST")',
     "expires := strconv.FormatInt(time.Now().Add(60*time.Minute).Unix(), 10)"),
    ('"?sig=" + base64.URLEncoding.EncodeToString(', '"?sig=" + base64.RawURLEncoding.EncodeToString('),
    ("dsig, _ := base64.URLEncoding.DecodeString(sig)", "dsig, _ := base64.RawURLEncoding.DecodeString(sig)"),
    ('t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", expires)\n\tif err != nil || t.Before(time.Now()) {',
     'unix, err := strconv.ParseInt(expires, 10, 64)\n\tif err != nil || time.Unix(unix, 0).Before(time.Now()) {'),
]
for old, new in edits:
    if src.count(old) != 1:
        sys.exit(f"not found once: {old}")
    src = src.replace(old, new)
open(path, "w").write(src)
PY
  (cd "$work" && go build -trimpath -o "$ACT.tmp" .) || die "act build failed"
  mv "$ACT.tmp" "$ACT"
  rm -rf "$work"
}

build_action() {  # NAME REPO ENTRY RECIPE
  local name=$1 repo=$2 entry=$3 recipe=$4 tarball h dir
  tarball=$SHARED/vendor/gh-action-$name.tar.gz
  [ -f "$tarball" ] || die "missing $tarball"
  h=$(sha256sum "$tarball" | cut -c1-12)
  dir=$ACTIONS/$name-$h
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    tar -xzf "$tarball" -C "$dir" --strip-components=1
    if [ ! -f "$dir/$entry" ]; then
      [ "$recipe" != "-" ] || die "$name: $entry missing and no recipe"
      log "$name: building $entry with npm"
      (cd "$dir" && bash -c "$recipe") >"$dir.build.log" 2>&1 || { tail -30 "$dir.build.log" >&2; die "$name: build failed"; }
      rm -rf "$dir/node_modules"  # ncc bundles everything action.yml runs
    fi
    [ -f "$dir/$entry" ] || die "$name: $entry still missing after the build"
    touch "$dir/.complete"
  fi
  printf '%s\t%s\t%s\n' "$repo" "$(commit_of "$repo")" "$dir"
}

build_toolcache() {
  local py ver dir
  py=$(command -v python3)
  ver=$("$py" -c 'import platform; print(platform.python_version())')
  dir=$TOOLCACHE/Python/$ver/x64
  if [ ! -f "$dir.complete" ]; then
    mkdir -p "$dir/bin"
    ln -sfn "$py" "$dir/bin/python3"
    ln -sfn "$py" "$dir/bin/python"
    touch "$dir.complete"
  fi
}

cmd_build() {
  mkdir -p "$BERTH_CACHE/bin" "$ACTIONS"
  exec 8>"$ACTIONS.lock"
  flock -w 3600 8 || die "timed out waiting for $ACTIONS.lock"
  build_act
  local map; map=$(mktemp)
  while IFS=$'\t' read -r name repo entry recipe; do
    build_action "$name" "$repo" "$entry" "$recipe" >>"$map"
  done <<<"$RECIPES"
  mv "$map" "$ACTIONS/actions.tsv"
  build_toolcache
  log "act $("$ACT" --version | awk '{print $3}'), $(wc -l <"$ACTIONS/actions.tsv") actions, tool cache $TOOLCACHE"
}

cmd_env() {
  [ -x "$ACT" ] && [ -f "$ACTIONS/actions.tsv" ] || die "not built: run 'bash .ci/act.sh build' first"
  cat <<EOF
export BERTH_ACT="$ACT"
export BERTH_ACTIONS="$ACTIONS/actions.tsv"
export BERTH_ACT_TOOLCACHE="$TOOLCACHE"
EOF
}

case "${1:-}" in
  build) cmd_build ;;
  env) cmd_env ;;
  *) echo "usage: $0 build|env" >&2; exit 2 ;;
esac
