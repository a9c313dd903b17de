# localhost/berth-pushgateway:1 - Debian's prometheus-pushgateway (1.5; the stacks declare
# prom/pushgateway:v1.9.0, whose flags used here are the same). Like prom/pushgateway: busybox-based
# (wget for HTTP health checks), ENTRYPOINT pushgateway, CMD = nothing (a command of only flags is its
# arguments), uid 65534, WORKDIR /pushgateway owned by 65534 (no /data in the image), :9091.
PACKAGES=(prometheus-pushgateway busybox)
TAGS=(localhost/berth-pushgateway:1)
CHANGES=(
  'ENTRYPOINT ["/usr/bin/prometheus-pushgateway"]'
  'USER 65534:65534'
  'WORKDIR /pushgateway'
  'EXPOSE 9091'
)
customize() {
  local root="$1"
  mkdir -p "$root/pushgateway"
  chown 65534:65534 "$root/pushgateway"
  # Debian's busybox installs no applet links: wget (health checks) as in the official busybox base.
  ln -sf /bin/busybox "$root/usr/bin/wget"
}
