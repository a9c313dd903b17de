#!/usr/bin/env bash
# Copy images from Podman's store into the test cluster's containerd (namespace k8s.io), e.g.
#   .ci/k8s/load-images.sh localhost/berth-postgres:15 localhost/berth-redis:7
# Pods then use them with imagePullPolicy Never or IfNotPresent (the cluster pulls nothing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
[ $# -gt 0 ] || { echo "usage: $0 IMAGE..." >&2; exit 2; }
S=$BERTH_K8S_STATE
SOCK=$S/containerd/containerd.sock
[ -S "$SOCK" ] || die "containerd socket $SOCK not found: run .ci/k8s/up.sh first"
if ! command -v podman >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman >/dev/null || die "could not install podman"
fi
CTR="ctr --address $SOCK -n k8s.io"
SNAP=$(cat "$S/containerd/snapshotter" 2>/dev/null || echo overlayfs)
for img in "$@"; do
  t0=$(date +%s)
  podman image exists "$img" || die "podman has no image $img"
  tmp=$(mktemp --tmpdir berth-image.XXXXXX.tar)
  # docker-archive keeps the repo:tag name, which ctr uses for the imported image.
  if ! podman save --format docker-archive -o "$tmp" "$img" >/dev/null 2>&1; then
    rm -f "$tmp"; die "podman save $img failed"
  fi
  out=$($CTR images import --snapshotter "$SNAP" "$tmp" 2>&1) || { rm -f "$tmp"; die "ctr import of $img failed: $out"; }
  rm -f "$tmp"
  # Podman names images without a registry as localhost/NAME; make sure the exact name given exists.
  want=$img
  case "$want" in */*) ;; *) want=localhost/$want ;; esac
  case "${want##*/}" in *:*) ;; *) want=$want:latest ;; esac
  if ! grep -qxF "$want" <<<"$($CTR images ls -q)"; then
    got=$(echo "$out" | sed -n 's/^unpacking \([^ ]*\) .*/\1/p' | head -1)
    [ -n "$got" ] && $CTR images tag "$got" "$want" >/dev/null || die "imported $img but cannot find it as $want (ctr said: $out)"
  fi
  log "loaded $want in $(( $(date +%s) - t0 ))s"
done
