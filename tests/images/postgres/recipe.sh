# localhost/berth-postgres:15 - Debian's postgresql-15 with the official `postgres` image's contract:
# POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB/PGDATA, initdb on an empty PGDATA (scram-sha-256 for
# host connections, listen_addresses='*'), /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz once,
# CMD postgres with args passed through; uid/gid 999. The image has no /var/run/postgresql: run as
# 999 it needs a tmpfs (or volume) there, as the stacks mount; run as root the entrypoint creates it.
# Any other command (e.g. a shell script that runs pg_basebackup into PGDATA and then `exec postgres`
# for a streaming standby) is executed as is.
PACKAGES=(postgresql-15 postgresql-client-15 tzdata)
TAGS=(localhost/berth-postgres:15)
USERS=("postgres 999 999 /var/lib/postgresql /bin/bash")
CHANGES=(
  'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
  'CMD ["postgres"]'
  'USER 999:999'
  'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV PGDATA=/var/lib/postgresql/data'
  'ENV LANG=C.UTF-8'
  'STOPSIGNAL SIGINT'
  'VOLUME /var/lib/postgresql/data'
  'EXPOSE 5432'
)
customize() {
  local root="$1"
  # Debian's postinst creates a "main" cluster; containers use PGDATA instead.
  # NB: absolute symlinks in the rootfs (/var/run -> /run) point at the HOST here: use real paths.
  rm -rf "$root/var/lib/postgresql/15" "$root/etc/postgresql/15"
  # No /run/postgresql (= /var/run/postgresql) in the image: stacks mount a tmpfs there, and with a
  # read-only root Podman's compat API puts its own tmpfs on /run; with the directory in the image the
  # stack's tmpfs then comes out root-owned 1755 and postgres can't write its lock file (real Docker
  # doesn't do this). The entrypoint creates the directory when it's missing and /run is writable.
  rm -rf "$root/run/postgresql"
  mkdir -p "$root/var/lib/postgresql/data" "$root/docker-entrypoint-initdb.d"
  chown 999:999 "$root/var/lib/postgresql" "$root/var/lib/postgresql/data"
  chmod 0700 "$root/var/lib/postgresql/data"
  # Same default as the official image (and required by initdb's templates).
  sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" \
    "$root/usr/share/postgresql/15/postgresql.conf.sample"
  grep -F "listen_addresses = '*'" "$root/usr/share/postgresql/15/postgresql.conf.sample" >/dev/null
}
