#!/bin/sh
# apt-cache.sh in|out ROOTFS CACHEDIR
# Shares downloaded .deb files between mmdebstrap runs by hard-linking them into the rootfs's
# /var/cache/apt/archives before the download step (in) and back into CACHEDIR afterwards (out).
# mmdebstrap's cleanup then empties the rootfs's archive dir; the cache keeps its links.
set -eu
mode="$1" root="$2" cache="$3"
arch="$root/var/cache/apt/archives"
mkdir -p "$arch/partial" "$cache"
case "$mode" in
  in) find "$cache" -maxdepth 1 -name '*.deb' -exec cp -l -f -t "$arch/" {} + ;;
  out) for f in "$arch"/*.deb; do
         [ -e "$f" ] || continue
         [ -e "$cache/${f##*/}" ] || cp -l "$f" "$cache/" 2>/dev/null || cp "$f" "$cache/"
       done ;;
  *) echo "usage: $0 in|out ROOTFS CACHEDIR" >&2; exit 2 ;;
esac
