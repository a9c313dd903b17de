# localhost/berth-prometheus:2 - Debian's prometheus 2.42 (with promtool). Like prom/prometheus:
# ENTRYPOINT prometheus, CMD = its flags (so a command of only flags replaces them), uid 65534; busybox
# wget as in the official (busybox-based) image, for HTTP health checks.
PACKAGES=(prometheus busybox)
TAGS=(localhost/berth-prometheus:2)
CHANGES=(
  'ENTRYPOINT ["/usr/bin/prometheus"]'
  'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090", "--web.console.libraries=/usr/share/prometheus/console_libraries", "--web.console.templates=/usr/share/prometheus/consoles"]'
  'USER 65534:65534'
  'WORKDIR /prometheus'
  'VOLUME /prometheus'
  'EXPOSE 9090'
)
customize() {
  local root="$1"
  mkdir -p "$root/prometheus"
  chown 65534:65534 "$root/prometheus"
  chmod 0644 "$root/etc/prometheus/prometheus.yml"
  mkdir -p "$root/usr/share/prometheus/console_libraries" "$root/usr/share/prometheus/consoles"
  # ~210 MB of raw tz source data that the web UI (which loads the bundled .js files) never reads.
  rm -rf "$root/usr/share/javascript/moment-timezone/data"
  # Debian's busybox installs no applet links: wget (health checks) as in the official busybox base.
  ln -sf /bin/busybox "$root/usr/bin/wget"
}
