#!/usr/bin/env bash
# Podman as a Docker-compatible API for Berth's "real" tests.
#
#   bash .ci/podman.sh install   # idempotent: apt packages + /etc/containers/{containers,storage}.conf
#   bash .ci/podman.sh start     # podman system service on $BERTH_PODMAN_SOCK; prints `export DOCKER_HOST=...`
#   bash .ci/podman.sh stop      # stops the service started by `start` (by PID file)
#   bash .ci/podman.sh status    # exit 0 if the socket answers /_ping
#   bash .ci/podman.sh dns-check IMAGE   # fail fast unless container names resolve (on every network)
#   bash .ci/podman.sh healthd start|stop  # run health checks as Docker would (see cmd_healthd)
#   bash .ci/podman.sh start2 [IMAGE...]   # a SECOND Docker API with its own storage (a second "host"),
#                                          # the images copied into it, its health-check loop and the
#                                          # cross-host address; prints `export BERTH_DOCKER_HOST2=...`
#   bash .ci/podman.sh stop2               # stops all of that
#   eval "$(bash .ci/podman.sh start)"   # sets DOCKER_HOST in the calling shell
#
# Settings follow shared/REAL-TARGETS.md: runc, cgroupfs, file events logger, raised default ulimits,
# netavark networks with DNS; two departures, both measured in CI (see cmd_install): overlay storage
# where the kernel mounts it (vfs copies the whole image per container) and Debian's newer
# aardvark-dns. Health checks are NOT run by Podman on this
# machine (no systemd timers): `healthd start` runs them in a loop.
set -euo pipefail

RUN_DIR="${BERTH_PODMAN_RUN_DIR:-/run/berth-podman}"
SOCK="${BERTH_PODMAN_SOCK:-$RUN_DIR/podman.sock}"
PID_FILE="$RUN_DIR/podman.pid"
LOG_FILE="$RUN_DIR/podman.log"

log() { echo "podman.sh: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

write_if_changed() { # path content
  local path="$1" content="$2"
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then return 0; fi
  as_root mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" | as_root tee "$path" >/dev/null
  log "wrote $path"
}

# aardvark-dns, Podman's container DNS. Debian 12's 1.4 drops every listening socket and rebinds on each
# SIGHUP (one per container started or stopped on any network), and a SIGHUP that arrives while it
# rebinds is lost, so its names go stale until the next one: in CI a new process in a running
# container could not resolve a neighbour for 30 s ("Temporary failure in name resolution"). 1.14
# (Debian 13's) updates its servers in place; it reads the same config files netavark 1.4 writes.
# (It did not end every such failure: once since, one name stayed unresolvable for 30 s; CHANGELOG.)
# Installed beside Podman's helpers, not over the Debian package: helper_binaries_dir names it first.
AARDVARK_VERSION="1.14.0-3"
AARDVARK_DIR="/usr/local/libexec/berth-podman"
install_aardvark() {
  if [ -x "$AARDVARK_DIR/aardvark-dns" ] && "$AARDVARK_DIR/aardvark-dns" --version 2>/dev/null | grep -q "^aardvark-dns ${AARDVARK_VERSION%%-*}$"; then
    return 0
  fi
  local cache="${BERTH_CACHE:-/var/cache/berth}/apt-trixie" deb
  as_root mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$AARDVARK_DIR"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n' \
    | as_root tee "$cache/sources.list" >/dev/null
  local apt=(apt-get -q -o "Dir::Etc::SourceList=$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$cache/lists" -o "Dir::Cache=$cache" -o "Dir::Cache::archives=$cache/archives"
             -o APT::Sandbox::User=root)
  deb="$(ls "$cache"/archives/aardvark-dns_"${AARDVARK_VERSION}"_*.deb 2>/dev/null | head -1 || true)"
  if [ -z "$deb" ]; then
    as_root "${apt[@]}" update >&2
    (cd "$cache/archives" && as_root "${apt[@]}" download "aardvark-dns=$AARDVARK_VERSION" >&2)
    deb="$(ls "$cache"/archives/aardvark-dns_"${AARDVARK_VERSION}"_*.deb | head -1)"
  fi
  local tmp; tmp="$(mktemp -d)"
  dpkg-deb -x "$deb" "$tmp"
  as_root install -m 0755 "$tmp/usr/lib/podman/aardvark-dns" "$AARDVARK_DIR/aardvark-dns"
  rm -rf "$tmp"
  "$AARDVARK_DIR/aardvark-dns" --version >&2
}

# Whether this kernel mounts overlayfs here (not on every nested or old setup; vfs is the fallback).
overlay_ok() {
  local d; d="$(mktemp -d)"
  mkdir -p "$d/l" "$d/u" "$d/w" "$d/m"
  if as_root mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null; then
    as_root umount "$d/m"; rm -rf "$d"; return 0
  fi
  rm -rf "$d"; return 1
}

cmd_install() {
  # netavark + aardvark-dns: with --no-install-recommends Podman 4.3 falls back to CNI, which has no
  # container name resolution (and the dnsname plugin resolves on one network only).
  # iptables: netavark sets up its bridges' NAT and firewall rules with it ("netavark: No such file or
  # directory" on the first container otherwise). iproute2: `ip`, for start2's cross-host address.
  local pkgs=(podman runc netavark aardvark-dns iptables iproute2 mmdebstrap uidmap curl ca-certificates)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    # apt may be busy (another job installing at the same time): wait for the lock.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
      --no-install-recommends "${missing[@]}"
  else
    log "packages already installed: ${pkgs[*]}"
  fi

  install_aardvark
  local driver=vfs graphroot=/var/lib/containers/storage
  if overlay_ok; then driver=overlay graphroot=/var/lib/containers/storage-overlay; fi
  write_if_changed /etc/containers/containers.conf "# Written by .ci/podman.sh (Berth real tests)
[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
# The aardvark-dns of install_aardvark first, then Podman's defaults.
helper_binaries_dir = [\"$AARDVARK_DIR\", \"/usr/local/libexec/podman\", \"/usr/local/lib/podman\", \"/usr/libexec/podman\", \"/usr/lib/podman\"]

[network]
network_backend = \"netavark\""

  # overlay: a container's root is a mount over the image's layers. vfs (what Podman falls back to)
  # copies the whole image for every container: hundreds of MB written per container, seconds of
  # I/O that stalled everything else on the machine in CI. Each driver has its own graphroot.
  write_if_changed /etc/containers/storage.conf "# Written by .ci/podman.sh (Berth real tests)
[storage]
driver = \"$driver\"
runroot = \"/run/containers/storage-$driver\"
graphroot = \"$graphroot\""
  log "storage driver: $driver ($graphroot)"
  # The vfs stores of earlier runs (no mounts in them): gigabytes nothing reads any more.
  if [ "$driver" = overlay ]; then
    local old
    for old in /var/lib/containers/storage "$ROOT2/storage"; do  # ROOT2: start2's (below)
      if [ -d "$old/vfs" ]; then log "removing the old vfs store $old"; as_root rm -rf "$old"; fi
    done
  fi
  podman --version >&2
}

ping_ok() {
  curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1
}

cmd_start() {
  command -v podman >/dev/null || { log "podman missing: run 'bash .ci/podman.sh install' first"; exit 1; }
  as_root mkdir -p "$RUN_DIR"
  if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && ping_ok; then
    log "already running (pid $(cat "$PID_FILE"))"
  else
    rm -f "$SOCK"
    # setsid: own session so the service outlives the calling shell/job.
    setsid podman system service --time=0 "unix://$SOCK" >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    local i
    for i in $(seq 1 100); do
      ping_ok && break
      if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        log "podman service exited; log:"; tail -20 "$LOG_FILE" >&2; exit 1
      fi
      sleep 0.2
    done
    ping_ok || { log "socket $SOCK did not answer in 20 s; log:"; tail -20 "$LOG_FILE" >&2; exit 1; }
    log "started (pid $(cat "$PID_FILE")), log $LOG_FILE"
  fi
  echo "export DOCKER_HOST=unix://$SOCK"
}

cmd_stop() {
  cmd_healthd stop
  if [ ! -f "$PID_FILE" ]; then log "not running (no $PID_FILE)"; return 0; fi
  local pid; pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local i
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "pid $pid still alive, sending KILL"; kill -9 "$pid" || true; }
    log "stopped pid $pid"
  else
    log "pid $pid not running"
  fi
  rm -f "$PID_FILE" "$SOCK"
}

# Fail fast when containers cannot resolve each other by name: every stack relies on it (the app
# reaches `db`, the proxy reaches `api` and, on its second network, `grafana`). With Podman 4.3 and
# --no-install-recommends the CNI backend has no DNS at all, and CNI's dnsname plugin resolves on one
# network only; netavark + aardvark-dns resolve on every network a container is on.
cmd_dns_check() {
  local image="${1:?usage: podman.sh dns-check IMAGE (with getent and sleep)}" n1=berth-dnscheck-a n2=berth-dnscheck-b
  local out rc=0
  podman rm -f berth-dnscheck-server >/dev/null 2>&1 || true
  podman network rm -f "$n1" "$n2" >/dev/null 2>&1 || true
  podman network create "$n1" >/dev/null && podman network create --internal "$n2" >/dev/null
  podman run -d --name berth-dnscheck-server --network "$n2" --entrypoint sleep "$image" 120 >/dev/null
  # The client is on two networks and must resolve the server on the second one.
  out=$(podman run --rm --network "$n1" --network "$n2" --entrypoint getent "$image" \
        hosts berth-dnscheck-server 2>&1) || rc=$?
  podman rm -f berth-dnscheck-server >/dev/null 2>&1 || true
  podman network rm -f "$n1" "$n2" >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ]; then
    log "container names do not resolve on Podman's networks: $out"
    log "network backend: $(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)"
    log "fix: install netavark and aardvark-dns and set network_backend = \"netavark\" under [network] in"
    log "     /etc/containers/containers.conf ('bash .ci/podman.sh install' does both), then 'podman system reset'"
    exit 1
  fi
  log "container DNS ok (netavark/aardvark-dns): berth-dnscheck-server -> $out"
}

# Health checks: Docker runs a container's HEALTHCHECK on its own; Podman schedules it with systemd
# timers, and this machine has no systemd, so a container's health would stay "starting" and
# pulumi-docker's `wait` (Berth's service_healthy ordering) would time out. This loop plays the
# scheduler: checks starting containers every 2 s, the others every ~15 s. A property of the test
# machine, not of the product: on Docker, or Podman with systemd, nothing like it is needed.
HEALTHD_PID="$RUN_DIR/healthd.pid"

healthd_loop() {
  local round=0 id
  # "$@": podman's global options of the storage to watch (none: the default one; --root/--runroot: start2's).
  while true; do
    for id in $(podman "$@" ps -q --filter health=starting 2>/dev/null); do
      podman "$@" healthcheck run "$id" >/dev/null 2>&1 &
    done
    if [ $((round % 8)) -eq 0 ]; then
      for id in $(podman "$@" ps -q --filter health=healthy --filter health=unhealthy 2>/dev/null); do
        podman "$@" healthcheck run "$id" >/dev/null 2>&1 &
      done
    fi
    wait
    round=$((round + 1))
    sleep 2
  done
}

cmd_healthd() {
  case "${1:-start}" in
    start)
      as_root mkdir -p "$RUN_DIR"
      if [ -f "$HEALTHD_PID" ] && kill -0 "$(cat "$HEALTHD_PID")" 2>/dev/null; then
        log "health-check loop already running (pid $(cat "$HEALTHD_PID"))"; return 0
      fi
      setsid bash "$0" healthd-loop >>"$RUN_DIR/healthd.log" 2>&1 </dev/null &
      echo $! >"$HEALTHD_PID"
      log "health-check loop started (pid $!)" ;;
    stop)
      if [ -f "$HEALTHD_PID" ]; then
        kill -- "-$(cat "$HEALTHD_PID")" 2>/dev/null || kill "$(cat "$HEALTHD_PID")" 2>/dev/null || true
        rm -f "$HEALTHD_PID"; log "health-check loop stopped"
      fi ;;
    *) echo "usage: $0 healthd start|stop" >&2; exit 2 ;;
  esac
}

# A second Docker API on this machine, standing in for a second host (Flow Masters' distributed
# topology: the app on one host, the MCP server on another). Its own storage (--root/--runroot), so its
# containers, volumes and images are not the first service's; networks are defined in the machine's
# one netavark config (a separate one would hand both services the same subnets and bridge names in
# this one network namespace). Images are copied in from the first storage (no registry here).
# The hosts reach each other like two servers on one LAN: BERTH_XHOST_ADDR, an address on a bridge
# interface of this machine (no traffic leaves it), where the first host publishes its proxy; the
# second host's containers reach it through their network's gateway.
RUN_DIR2="${BERTH_PODMAN2_RUN_DIR:-/run/berth-podman2}"
SOCK2="$RUN_DIR2/podman.sock"
ROOT2="${BERTH_PODMAN2_ROOT:-/var/lib/berth-podman2}"
# The driver cmd_install chose; each driver has its own storage here too.
DRIVER="$(sed -n 's/^driver = "\(.*\)"$/\1/p' /etc/containers/storage.conf 2>/dev/null || true)"
PODMAN2=(--root "$ROOT2/storage-${DRIVER:-vfs}" --runroot "$RUN_DIR2/runroot-${DRIVER:-vfs}")
XHOST_IF="berth-xhost"
XHOST_ADDR="${BERTH_XHOST_ADDR:-10.231.0.1}"
STORAGE2_IMAGES=(localhost/berth-testapp:1 localhost/berth-nginx:1)

ping2_ok() {
  curl -fsS --max-time 2 --unix-socket "$SOCK2" http://d/_ping >/dev/null 2>&1
}

cmd_start2() {
  command -v podman >/dev/null || { log "podman missing: run 'bash .ci/podman.sh install' first"; exit 1; }
  as_root mkdir -p "$RUN_DIR2" "$ROOT2"
  local images=("$@") img
  [ "${#images[@]}" -gt 0 ] || images=("${STORAGE2_IMAGES[@]}")
  for img in "${images[@]}"; do
    # Copied when missing or different from the first storage's (a rebuilt test image).
    if [ "$(podman "${PODMAN2[@]}" image inspect --format '{{.Id}}' "$img" 2>/dev/null)" != \
         "$(podman image inspect --format '{{.Id}}' "$img")" ]; then
      log "copying $img into the second storage"
      podman save "$img" | podman "${PODMAN2[@]}" load -q >&2
    fi
  done
  if [ -f "$RUN_DIR2/podman.pid" ] && kill -0 "$(cat "$RUN_DIR2/podman.pid")" 2>/dev/null && ping2_ok; then
    log "second service already running (pid $(cat "$RUN_DIR2/podman.pid"))"
  else
    rm -f "$SOCK2"
    setsid podman "${PODMAN2[@]}" system service --time=0 "unix://$SOCK2" >>"$RUN_DIR2/podman.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR2/podman.pid"
    local _
    for _ in $(seq 1 100); do ping2_ok && break; sleep 0.2; done
    ping2_ok || { log "second socket $SOCK2 did not answer in 20 s; log:"; tail -20 "$RUN_DIR2/podman.log" >&2; exit 1; }
    log "second service started (pid $(cat "$RUN_DIR2/podman.pid")), storage $ROOT2"
  fi
  if [ -f "$RUN_DIR2/healthd.pid" ] && kill -0 "$(cat "$RUN_DIR2/healthd.pid")" 2>/dev/null; then
    :
  else
    setsid bash "$0" healthd-loop "${PODMAN2[@]}" >>"$RUN_DIR2/healthd.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR2/healthd.pid"
    log "second health-check loop started (pid $!)"
  fi
  if ! ip -4 addr show dev "$XHOST_IF" 2>/dev/null | grep -q "inet $XHOST_ADDR/"; then
    ip link show "$XHOST_IF" >/dev/null 2>&1 || as_root ip link add "$XHOST_IF" type bridge
    as_root ip addr add "$XHOST_ADDR/32" dev "$XHOST_IF"
    as_root ip link set "$XHOST_IF" up
    log "cross-host address $XHOST_ADDR on $XHOST_IF"
  fi
  echo "export BERTH_DOCKER_HOST2=unix://$SOCK2 BERTH_XHOST_ADDR=$XHOST_ADDR"
}

cmd_stop2() {
  local f pid
  for f in "$RUN_DIR2/healthd.pid" "$RUN_DIR2/podman.pid"; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  rm -f "$SOCK2"
  ip link show "$XHOST_IF" >/dev/null 2>&1 && as_root ip link del "$XHOST_IF"
  log "second service stopped"
}

cmd_status() {
  if ping_ok; then echo "running: unix://$SOCK"; else echo "not answering: unix://$SOCK"; exit 1; fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  dns-check) shift; cmd_dns_check "$@" ;;
  healthd) shift; cmd_healthd "$@" ;;
  healthd-loop) shift; healthd_loop "$@" ;;
  start2) shift; cmd_start2 "$@" ;;
  stop2) cmd_stop2 ;;
  *) echo "usage: $0 install|start|stop|status|dns-check IMAGE|healthd start|stop|start2 [IMAGE...]|stop2" >&2; exit 2 ;;
esac
