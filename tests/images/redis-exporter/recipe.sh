# localhost/berth-redis-exporter:1 - Debian's prometheus-redis-exporter 1.45.
# env REDIS_ADDR (redis://host:6379), REDIS_PASSWORD; listens :9121; uid 65534.
PACKAGES=(prometheus-redis-exporter busybox)
TAGS=(localhost/berth-redis-exporter:1)
CHANGES=(
  'ENTRYPOINT ["/usr/bin/prometheus-redis-exporter"]'
  'USER 65534:65534'
  'EXPOSE 9121'
)
customize() {
  # Debian's busybox installs no applet links: wget (the Docker health check over HTTP), as the
  # official image's -alpine variant has.
  ln -sf /bin/busybox "$1/usr/bin/wget"
}
