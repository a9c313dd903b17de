# localhost/berth-postgres-exporter:1 - Debian's prometheus-postgres-exporter 0.11.
# env DATA_SOURCE_NAME (postgresql://user:pass@host:5432/db?sslmode=disable); listens :9187; uid 65534;
# busybox wget as in the official (busybox-based) image, for HTTP health checks.
PACKAGES=(prometheus-postgres-exporter busybox)
TAGS=(localhost/berth-postgres-exporter:1)
CHANGES=(
  'ENTRYPOINT ["/usr/bin/prometheus-postgres-exporter"]'
  'CMD ["--web.listen-address=:9187"]'
  'USER 65534:65534'
  'EXPOSE 9187'
)
customize() {
  # Debian's busybox installs no applet links: wget (health checks) as in the official busybox base.
  ln -sf /bin/busybox "$1/usr/bin/wget"
}
