# localhost/berth-grafana-standin:1 - NOT Grafana (Grafana can't be obtained here). A tiny Python server
# on :3000 that, at start-up, parses every YAML/JSON file under /etc/grafana/provisioning,
# /etc/grafana/dashboards, /var/lib/grafana/dashboards (and the dashboard folders named by
# provisioning providers) and exits 1
# if one doesn't parse; then serves GET /api/health -> {"database": "ok", ...}. uid 472 like Grafana.
PACKAGES=(python3 python3-yaml)
TAGS=(localhost/berth-grafana-standin:1)
USERS=("grafana 472 0 /usr/share/grafana")
CHANGES=(
  'ENTRYPOINT ["/usr/local/bin/grafana-standin"]'
  'USER 472:0'
  'ENV PYTHONDONTWRITEBYTECODE=1'
  'ENV PYTHONUNBUFFERED=1'
  'LABEL berth.standin=grafana'
  'EXPOSE 3000'
)
customize() {
  local root="$1"
  mkdir -p "$root/etc/grafana/dashboards" "$root/etc/grafana/provisioning" "$root/var/lib/grafana/dashboards"
  chown -R 472:0 "$root/var/lib/grafana"
  chmod 0755 "$root/usr/local/bin/grafana-standin"
}
