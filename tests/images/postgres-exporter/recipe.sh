# localhost/berth-postgres-exporter:1 - Debian's prometheus-postgres-exporter 0.11.
# env DATA_SOURCE_NAME (postgresql://user:pass@host:5432/db?sslmode=disable); listens :9187; uid 65534.
PACKAGES=(prometheus-postgres-exporter)
TAGS=(localhost/berth-postgres-exporter:1)
CHANGES=(
  'ENTRYPOINT ["/usr/bin/prometheus-postgres-exporter"]'
  'CMD ["--web.listen-address=:9187"]'
  'USER 65534:65534'
  'EXPOSE 9187'
)
