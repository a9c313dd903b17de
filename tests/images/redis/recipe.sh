# localhost/berth-redis:7 - Debian's redis-server (7.0) with the official image's contract:
# CMD redis-server, extra args passed through, data in /data, uid/gid 999, redis-cli present.
PACKAGES=(redis-server redis-tools)
TAGS=(localhost/berth-redis:7)
USERS=("redis 999 999 /data")
CHANGES=(
  'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
  'CMD ["redis-server"]'
  'USER 999:999'
  'WORKDIR /data'
  'VOLUME /data'
  'EXPOSE 6379'
)
customize() {
  local root="$1"
  mkdir -p "$root/data"
  chown 999:999 "$root/data"
  chmod 0755 "$root/data"
}
