#!/usr/bin/env bash
# Every Debian package the test command needs beyond Python, Go and the real targets' own scripts
# (.ci/podman.sh install, .ci/k8s/up.sh install theirs). One command for a developer's machine too:
#   sudo bash .ci/system-packages.sh
#   nginx-light   `nginx -t` checks the generated nginx.conf
#   prometheus    `promtool check config|rules` checks the generated Prometheus files
#   shellcheck    checks the generated shell scripts, and actionlint uses it for workflow `run:` steps
#   openssl       certificates for the test cluster and TLS checks
#   golang-go     builds actionlint (go install), only when Go is missing
#   maven         fetches Neo4j's jars for its test image (tests/images/neo4j), only when Maven is missing
set -euo pipefail
pkgs=(nginx-light prometheus shellcheck openssl ca-certificates curl)
command -v go >/dev/null || pkgs+=(golang-go)
command -v mvn >/dev/null || pkgs+=(maven)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "system packages: ${pkgs[*]}"
