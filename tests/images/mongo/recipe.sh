# localhost/berth-mongo:7 - NOT MongoDB (not obtainable here): FerretDB 1.24.2 (MongoDB wire protocol,
# reports MongoDB 7.0) on its SQLite backend, with the official `mongo` image's contract as Berth uses it:
# env MONGO_INITDB_ROOT_USERNAME / MONGO_INITDB_ROOT_PASSWORD (root user in admin on first start, then
# SCRAM authentication) and MONGO_INITDB_DATABASE, :27017, data in /data/db, uid/gid 999, CMD mongod
# (see rootfs/usr/local/bin/docker-entrypoint.sh). A `mongosh` stand-in answers
# `--eval "db.adminCommand('ping').ok"` with a real ping (python3-pymongo); mongodump and mongorestore
# (built from the mongo-tools source snapshot) are in /usr/local/bin, as in the official image, where
# Berth's Kubernetes backups run when no backup image is set.
# Read-only root works with a tmpfs on /tmp (SQLite's temporary files).
# FerretDB is patched (mongo/patches/): createIndexes accepts and ignores "ns" and "v" as MongoDB does
# (mongorestore sends "ns" with every index); the user commands (createUser, updateUser, dropUser,
# usersInfo) exist without authentication too, as on a mongod without --auth, where Berth's entrypoint
# sets the users (FerretDB 1.24.2 had them only with its new authentication on).
FERRETDB_VERSION=v1.24.2
MONGO_TOOLS_TARBALL="${BERTH_MONGO_TOOLS_TARBALL:-${BERTH_SHARED:-$HERE/../../../shared}/vendor/mongo-tools.tar.gz}"
PACKAGES=(python3 python3-pymongo ca-certificates tzdata)
TAGS=(localhost/berth-mongo:7)
USERS=("mongodb 999 999 /data/db")
CHANGES=(
  'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
  'CMD ["mongod"]'
  'USER 999:999'
  'ENV HOME=/data/db'
  'ENV FERRETDB_TELEMETRY=disable'
  'ENV DO_NOT_TRACK=1'
  'ENV PYTHONDONTWRITEBYTECODE=1'
  'LABEL berth.standin=mongodb'
  'VOLUME /data/db'
  'VOLUME /data/configdb'
  'EXPOSE 27017'
)
hash_extra() { # the mongo-tools binaries come from this tarball
  echo "mongo-tools=$(sha256sum <"$MONGO_TOOLS_TARBALL" | cut -c1-64)"
}
customize() {
  local root="$1" bin tools
  bin="$(sh "$LIB/ferretdb.sh" "$FERRETDB_VERSION" "$CACHE/bin" "$HERE/mongo/patches/"*.patch)"
  install -m 0755 "$bin" "$root/usr/local/bin/ferretdb"
  tools="$(sh "$LIB/mongo-tools.sh" "$MONGO_TOOLS_TARBALL" "$CACHE/bin")"
  install -m 0755 "$tools/mongodump" "$tools/mongorestore" "$root/usr/local/bin/"
  chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh" "$root/usr/local/bin/mongosh" "$root/usr/local/bin/mongod"
  mkdir -p "$root/data/db" "$root/data/configdb"
  chown 999:999 "$root/data/db" "$root/data/configdb"
  chmod 0755 "$root/data/db" "$root/data/configdb"
}
