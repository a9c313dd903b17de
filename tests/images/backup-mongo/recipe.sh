# localhost/berth-backup-mongo:1 - like localhost/berth-backup:1 but for MongoDB: mongodump and
# mongorestore (built offline from the mongo-tools source snapshot, ../shared/vendor/mongo-tools.tar.gz,
# static, in /usr/local/bin), bash, gzip, coreutils, findutils and supercronic. uid/gid 10001, workdir
# /backups. The stack supplies the command (e.g. `supercronic /berth/crontab` with Berth's crontab and
# backup/restore scripts).
SUPERCRONIC_VERSION=v0.2.48
MONGO_TOOLS_TARBALL="${BERTH_MONGO_TOOLS_TARBALL:-${BERTH_SHARED:-$HERE/../../../shared}/vendor/mongo-tools.tar.gz}"
PACKAGES=(bash gzip coreutils findutils ca-certificates tzdata)
TAGS=(localhost/berth-backup-mongo:1)
USERS=("backup-user 10001 10001 /backups /bin/bash")
CHANGES=(
  'CMD ["/usr/local/bin/supercronic", "/etc/supercronic/crontab"]'
  'USER 10001:10001'
  'WORKDIR /backups'
  'VOLUME /backups'
)
hash_extra() { # the mongo-tools binaries come from this tarball
  echo "mongo-tools=$(sha256sum <"$MONGO_TOOLS_TARBALL" | cut -c1-64)"
}
customize() {
  local root="$1" bin tools
  bin="$(sh "$LIB/supercronic.sh" "$SUPERCRONIC_VERSION" "$CACHE/bin")"
  install -m 0755 "$bin" "$root/usr/local/bin/supercronic"
  tools="$(sh "$LIB/mongo-tools.sh" "$MONGO_TOOLS_TARBALL" "$CACHE/bin")"
  install -m 0755 "$tools/mongodump" "$tools/mongorestore" "$root/usr/local/bin/"
  chmod 0644 "$root/etc/supercronic/crontab"
}
