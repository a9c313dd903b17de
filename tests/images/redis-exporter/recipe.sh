# localhost/berth-redis-exporter:1 - Debian's prometheus-redis-exporter 1.45.
# env REDIS_ADDR (redis://host:6379), REDIS_PASSWORD; listens :9121; uid 65534.
PACKAGES=(prometheus-redis-exporter)
TAGS=(localhost/berth-redis-exporter:1)
CHANGES=(
  'ENTRYPOINT ["/usr/bin/prometheus-redis-exporter"]'
  'USER 65534:65534'
  'EXPOSE 9121'
)
