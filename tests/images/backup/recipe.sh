# localhost/berth-backup:1 - postgresql-client-15 (pg_dump, pg_restore, psql), bash, gzip, coreutils,
# findutils and supercronic (cron for containers, built from its Go module, CGO off, static) at
# /usr/local/bin/supercronic. uid/gid 10001, workdir /backups. The stack supplies the command
# (e.g. `supercronic /etc/supercronic/crontab` with its own crontab and backup script).
SUPERCRONIC_VERSION=v0.2.48
PACKAGES=(postgresql-client-15 bash gzip coreutils findutils ca-certificates tzdata)
TAGS=(localhost/berth-backup:1)
USERS=("backup-user 10001 10001 /backups /bin/bash")
CHANGES=(
  'CMD ["/usr/local/bin/supercronic", "/etc/supercronic/crontab"]'
  'USER 10001:10001'
  'WORKDIR /backups'
  'VOLUME /backups'
)
customize() {
  local root="$1" bin
  bin="$(sh "$LIB/supercronic.sh" "$SUPERCRONIC_VERSION" "$CACHE/bin")"
  install -m 0755 "$bin" "$root/usr/local/bin/supercronic"
  chmod 0644 "$root/etc/supercronic/crontab"
}
