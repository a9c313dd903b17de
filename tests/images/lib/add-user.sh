#!/bin/sh
# add-user.sh ROOTFS NAME UID GID HOME [SHELL]
# Adds a system user/group with a fixed uid/gid to a rootfs by editing its
# passwd/group/shadow files (used as an mmdebstrap essential-hook, so packages
# installed afterwards - whose maintainer scripts call adduser - find it).
set -eu
root="$1" name="$2" uid="$3" gid="$4" home="$5" shell="${6:-/usr/sbin/nologin}"
if ! grep -q "^[^:]*:[^:]*:$gid:" "$root/etc/group"; then
  echo "$name:x:$gid:" >>"$root/etc/group"
  [ -f "$root/etc/gshadow" ] && echo "$name:!::" >>"$root/etc/gshadow"
fi
if ! grep -q "^$name:" "$root/etc/passwd"; then
  echo "$name:x:$uid:$gid:$name:$home:$shell" >>"$root/etc/passwd"
  [ -f "$root/etc/shadow" ] && echo "$name:!:19000:0:99999:7:::" >>"$root/etc/shadow"
fi
mkdir -p "$root$home"
chown "$uid:$gid" "$root$home"
