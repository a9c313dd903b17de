#!/usr/bin/env bash
# Build Berth's local test images (no image registry is reachable: everything is built here).
#
#   bash tests/images/build.sh                  # all images
#   bash tests/images/build.sh postgres redis   # some of them
#   bash tests/images/build.sh --list           # recipe names
#
# Each image comes from a recipe directory tests/images/<name>/:
#   recipe.sh   bash, sourced: PACKAGES=(...) TAGS=(...) CHANGES=(...) USERS=(...)
#               optional functions customize ROOTFS (runs on the host, as root, after rootfs/ is
#               copied in), tag_changes TAG (prints extra `podman import --change` lines, one per line)
#               and hash_extra (prints what else the image is made from, e.g. a source tarball's sha256,
#               so that the cache key changes with it)
#   rootfs/     files copied into the image's root (entrypoints, app code, default configs)
# The rootfs is made with mmdebstrap (--variant=essential: no apt in the image; docs, man pages and
# translations excluded via dpkg path-exclude) and imported with `podman import --change ...`.
#
# Cache (outside the repo): ${BERTH_CACHE:-/var/cache/berth}
#   images/<name>-<hash16>.tar   `podman save` of the image's tags; hash16 = first 16 hex chars of the
#                                sha256 over the recipe dir + this script (but its ALL_IMAGES list: adding
#                                an image rebuilds no other) + lib/ + what the recipe's hash_extra prints
#   apt-archives/                .deb files shared between builds (hard-linked in and out)
#   bin/                         Go programs built here: supercronic, ferretdb, mongodump/mongorestore
# With the same hash a later run loads the tarball instead of building. If the tags are already in
# Podman's storage with the same hash label, nothing is done (BERTH_IMAGES_FORCE_LOAD=1 loads anyway;
# BERTH_IMAGES_REBUILD=1 ignores the cache and builds).
#
# Needs root, podman, mmdebstrap (bash .ci/podman.sh install). Uses the host's apt sources.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="$HERE/lib"
CACHE="${BERTH_CACHE:-/var/cache/berth}"
SUITE="${BERTH_DEBIAN_SUITE:-bookworm}"
ALL_IMAGES=(postgres redis nginx testapp backup prometheus postgres-exporter redis-exporter grafana-standin pushgateway
  mongo backup-mongo rabbitmq neo4j)

if [ -z "${BERTH_APT_SOURCES:-}" ]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ]; then BERTH_APT_SOURCES="$f"; break; fi
  done
fi

log() { echo "[images] $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

recipe_hash() { # name -> 16 hex chars
  local name="$1"
  (
    cd "$HERE"
    find "$name" lib build.sh -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z |
      while IFS= read -r -d '' f; do
        if [ "$f" = build.sh ]; then
          # Without the image list (from ALL_IMAGES= to the first line ending in ")").
          printf '%s %s %s\n' "$f" "$(stat -c %a "$f")" \
            "$(awk '/^ALL_IMAGES=/{skip=1} !skip{print} skip&&/\)$/{skip=0}' "$f" | sha256sum | cut -d' ' -f1)"
        else
          printf '%s %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)"
        fi
      done
    echo "suite=$SUITE"
    if declare -F hash_extra >/dev/null; then hash_extra; fi
  ) | sha256sum | cut -c1-16
}

image_hash_label() { # tag -> label value or empty
  podman image inspect --format '{{index .Labels "berth.recipe-hash"}}' "$1" 2>/dev/null || true
}

build_one() {
  local name="$1"
  local dir="$HERE/$name"
  [ -f "$dir/recipe.sh" ] || { log "no recipe: $dir/recipe.sh"; return 1; }

  # Recipe variables (reset per image).
  local -a PACKAGES=() TAGS=() CHANGES=() USERS=()
  unset -f customize tag_changes hash_extra 2>/dev/null || true
  # shellcheck disable=SC1090
  source "$dir/recipe.sh"

  local hash tarball t0 action
  hash="$(recipe_hash "$name")"
  tarball="$CACHE/images/$name-$hash.tar"
  t0="$(now)"

  local present=1 tag
  for tag in "${TAGS[@]}"; do
    [ "$(image_hash_label "$tag")" = "$hash" ] || present=0
  done

  if [ "${BERTH_IMAGES_REBUILD:-0}" != 1 ] && [ "$present" = 1 ] && [ "${BERTH_IMAGES_FORCE_LOAD:-0}" != 1 ]; then
    action="present"
  elif [ "${BERTH_IMAGES_REBUILD:-0}" != 1 ] && [ -f "$tarball" ]; then
    log "$name: loading $tarball"
    podman load -q -i "$tarball" >/dev/null
    action="loaded"
  else
    log "$name: building (hash $hash)"
    build_rootfs_and_import "$name" "$dir" "$hash"
    mkdir -p "$CACHE/images"
    rm -f "$CACHE/images/$name-"????????????????.tar   # older hashes of this image only
    podman save -q -m --format docker-archive -o "$tarball.tmp" "${TAGS[@]}"
    mv "$tarball.tmp" "$tarball"
    action="built"
  fi

  local secs size
  secs="$(elapsed "$t0")"
  size="$(podman image inspect --format '{{.Size}}' "${TAGS[0]}" | awk '{printf "%.0fMB", $1/1000000}')"
  log "$name: $action in ${secs}s (${TAGS[*]}, $size)"
  printf '%-18s %-8s %7ss %8s  %s\n' "$name" "$action" "$secs" "$size" "${TAGS[*]}" >>"${SUMMARY_FILE:-/dev/null}"
}

safe_rm_rootfs() { # never recurse into a mount left behind by an interrupted mmdebstrap
  local dir="$1" m
  [ -e "$dir" ] || return 0
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  if awk -v d="$dir/" 'index($2, d) == 1 {found=1} END{exit !found}' /proc/mounts; then
    log "refusing to remove $dir: still has mounts"; return 1
  fi
  rm -rf --one-file-system "$dir"
}

build_rootfs_and_import() {
  local name="$1" dir="$2" hash="$3"
  local work="$CACHE/work" aptcache="$CACHE/apt-archives"
  local rootfs="$work/$name.rootfs"
  mkdir -p "$work" "$aptcache"
  safe_rm_rootfs "$rootfs"

  local -a args=(
    --mode=root --variant=essential --format=directory --quiet
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --skip=essential/unlink --skip=download/empty
    --setup-hook="sh '$LIB/apt-cache.sh' in \"\$1\" '$aptcache'"
    --customize-hook="sh '$LIB/apt-cache.sh' out \"\$1\" '$aptcache'"
  )
  if [ "${#PACKAGES[@]}" -gt 0 ]; then
    args+=(--include="$(IFS=,; echo "${PACKAGES[*]}")")
  fi
  # dpkg without fsync (eatmydata, removed again at the end): much faster on a busy disk.
  if [ -d /usr/share/mmdebstrap/hooks/eatmydata ]; then
    args+=(--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata)
  fi
  local u
  for u in "${USERS[@]}"; do
    # "name uid gid home [shell]": created before the packages so their maintainer scripts reuse it.
    args+=(--essential-hook="sh '$LIB/add-user.sh' \"\$1\" $u")
  done

  local t
  t="$(now)"
  mmdebstrap "${args[@]}" "$SUITE" "$rootfs" ${BERTH_APT_SOURCES:+"$BERTH_APT_SOURCES"} \
    >"$work/$name.mmdebstrap.log" 2>&1 || {
    log "$name: mmdebstrap failed; last lines of $work/$name.mmdebstrap.log:"
    tail -30 "$work/$name.mmdebstrap.log" >&2
    return 1
  }
  log "$name: mmdebstrap ${#PACKAGES[@]} packages in $(elapsed "$t")s"

  if [ -d "$dir/rootfs" ]; then
    # Existing directories keep their owner/mode; new files are root-owned.
    tar -C "$dir/rootfs" --exclude=__pycache__ --exclude='*.pyc' -c . |
      tar -C "$rootfs" -x --no-same-owner --no-overwrite-dir
  fi
  if declare -F customize >/dev/null; then
    LIB="$LIB" CACHE="$CACHE" customize "$rootfs"
  fi

  # Trim what containers never use.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt "$rootfs"/usr/share/man "$rootfs"/usr/share/info \
    "$rootfs"/usr/share/lintian
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  : >"$rootfs/etc/machine-id" 2>/dev/null || true

  local -a base_changes=("LABEL berth.recipe-hash=$hash" "LABEL berth.image=$name"
    "LABEL org.opencontainers.image.source=berth/tests/images/$name")
  local tag c
  for tag in "${TAGS[@]}"; do
    local -a change_args=()
    for c in "${base_changes[@]}" "${CHANGES[@]}"; do change_args+=(--change "$c"); done
    if declare -F tag_changes >/dev/null; then
      while IFS= read -r c; do [ -n "$c" ] && change_args+=(--change "$c"); done < <(tag_changes "$tag")
    fi
    tar -C "$rootfs" --numeric-owner -c . |
      podman import -q "${change_args[@]}" --message "berth $name ($hash)" - "$tag" >/dev/null
  done
  [ "${BERTH_KEEP_ROOTFS:-0}" = 1 ] || safe_rm_rootfs "$rootfs"
}

# One build at a time on this machine: builds share $CACHE/work, apt-archives and Podman's tags, and two
# at once broke each other. The whole run holds $CACHE/build.lock (flock; released when the process
# exits); its `--one` children inherit it (BERTH_IMAGES_LOCKED), a direct `--one` takes it itself.
# A second build waits for the first, then usually finds its images present.
take_build_lock() {
  [ "${BERTH_IMAGES_LOCKED:-}" = "$CACHE" ] && return 0
  mkdir -p "$CACHE"
  exec 9>>"$CACHE/build.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE/build.lock; waiting"
    flock 9
  fi
  export BERTH_IMAGES_LOCKED="$CACHE"
}

main() {
  if [ "${1:-}" = "--list" ]; then printf '%s\n' "${ALL_IMAGES[@]}"; return 0; fi
  take_build_lock
  if [ "${1:-}" = "--one" ]; then build_one "$2"; return 0; fi
  local -a names=("$@")
  [ "${#names[@]}" -gt 0 ] || names=("${ALL_IMAGES[@]}")
  command -v podman >/dev/null || { log "podman missing: bash .ci/podman.sh install"; exit 1; }
  command -v mmdebstrap >/dev/null || { log "mmdebstrap missing: bash .ci/podman.sh install"; exit 1; }
  local t0 n failed=()
  t0="$(now)"
  SUMMARY_FILE="$(mktemp)"
  export SUMMARY_FILE
  for n in "${names[@]}"; do
    # One process per image, so that `set -e` applies inside it (errexit is off in `cmd || ...`).
    bash "${BASH_SOURCE[0]}" --one "$n" || { failed+=("$n"); log "$n: FAILED"; }
  done
  echo "image              action      time      size  tags"
  cat "$SUMMARY_FILE"
  rm -f "$SUMMARY_FILE"
  echo "total: $(elapsed "$t0")s"
  if [ "${#failed[@]}" -gt 0 ]; then log "FAILED: ${failed[*]}"; exit 1; fi
}

main "$@"
exit $?
