#!/usr/bin/env bash
# Docker Engine (Debian's docker.io, dockerd 20.10) as a second real Docker target for Berth's tests,
# beside Podman's Docker API and the test cluster, sharing nothing with either.
#
#   bash .ci/dockerd.sh install            # idempotent: docker.io (no service started by the package)
#   bash .ci/dockerd.sh start              # its own containerd + dockerd; prints `export BERTH_DOCKERD_HOST=...`
#   bash .ci/dockerd.sh stop               # stops both (by PID file); data stays in $ROOT for the next start
#   bash .ci/dockerd.sh restart            # dockerd only (what a reboot of a VPS does to its containers)
#   bash .ci/dockerd.sh status             # exit 0 if the socket answers /_ping
#   bash .ci/dockerd.sh load IMAGE...      # copy images from Podman's storage (podman save | docker load)
#   eval "$(bash .ci/dockerd.sh start)"
#
# Own paths: data under $ROOT (/var/lib/berth-dockerd), sockets, PIDs and logs under $RUN_DIR
# (/run/berth-dockerd). Its own containerd (own root, state and socket, no CRI plugin): the test
# cluster's containerd listens on /run/containerd/containerd.sock, and a dockerd started without
# --containerd would use that one when it answers.
set -euo pipefail

RUN_DIR="${BERTH_DOCKERD_RUN_DIR:-/run/berth-dockerd}"
ROOT="${BERTH_DOCKERD_ROOT:-/var/lib/berth-dockerd}"
SOCK="$RUN_DIR/docker.sock"
CTRD_SOCK="$RUN_DIR/containerd/containerd.sock"
# Address pools of its own: the test cluster uses 10.244.0.0/16 (pods) and 10.96.0.0/16 (services),
# Podman 10.88.0.0/16 and 10.89.x.0/24, the cross-host address 10.231.0.1.
BIP="172.29.0.1/24"
POOL="base=172.30.0.0/16,size=24"

log() { echo "dockerd.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

cmd_install() {
  local missing=() p
  # tini: dockerd's docker-init (a container's `init: true`).
  for p in docker.io containerd runc tini iptables curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    # No init system here: keep the package scripts from starting a machine-wide dockerd or
    # containerd (the test cluster runs its own containerd).
    local rc=/usr/sbin/policy-rc.d had=0
    [ -e "$rc" ] && had=1 && as_root cp "$rc" "$rc.berth-dockerd"
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$rc" >/dev/null && as_root chmod +x "$rc"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
      --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$had" = 1 ]; then as_root mv "$rc.berth-dockerd" "$rc"; else as_root rm -f "$rc"; fi
  else
    log "packages already installed"
  fi
  /usr/sbin/dockerd --version >&2
}

ping_ok() { curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_containerd() {
  if alive "$RUN_DIR/containerd.pid" && [ -S "$CTRD_SOCK" ]; then return 0; fi
  as_root mkdir -p "$RUN_DIR/containerd" "$ROOT/containerd"
  # Only what dockerd needs: no CRI plugin (it would read the cluster's CNI config), own paths.
  cat >"$RUN_DIR/containerd.toml" <<EOF
version = 2
root = "$ROOT/containerd"
state = "$RUN_DIR/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = "$RUN_DIR/containerd/debug.sock"
[metrics]
  address = ""
EOF
  rm -f "$CTRD_SOCK"
  setsid /usr/bin/containerd --config "$RUN_DIR/containerd.toml" >>"$RUN_DIR/containerd.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/containerd.pid"
  local _
  for _ in $(seq 1 100); do [ -S "$CTRD_SOCK" ] && return 0; alive "$RUN_DIR/containerd.pid" || break; sleep 0.2; done
  tail -20 "$RUN_DIR/containerd.log" >&2
  die "containerd did not open $CTRD_SOCK"
}

start_dockerd() {
  if alive "$RUN_DIR/dockerd.pid" && ping_ok; then return 0; fi
  rm -f "$SOCK"
  # --ip-forward=false: dockerd would otherwise switch forwarding on and set the FORWARD chain's
  # policy to DROP when it finds forwarding off, which would cut the test cluster's and Podman's
  # traffic; nothing the tests run on dockerd needs forwarding (loopback ports reach containers
  # through docker-proxy, containers on one bridge talk directly). Networks created later use the
  # pool below.
  setsid /usr/sbin/dockerd \
    --data-root "$ROOT/data" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.pid.own" \
    -H "unix://$SOCK" --containerd "$CTRD_SOCK" --containerd-namespace berth-dockerd \
    --containerd-plugins-namespace berth-dockerd-plugins \
    --bip "$BIP" --default-address-pool "$POOL" --ip-forward=false \
    --storage-driver overlay2 --log-driver json-file \
    >>"$RUN_DIR/dockerd.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/dockerd.pid"
  local _
  for _ in $(seq 1 150); do
    ping_ok && return 0
    alive "$RUN_DIR/dockerd.pid" || break
    sleep 0.2
  done
  tail -30 "$RUN_DIR/dockerd.log" >&2
  die "dockerd did not answer on $SOCK"
}

cmd_start() {
  [ -x /usr/sbin/dockerd ] || die "dockerd missing: run 'bash .ci/dockerd.sh install' first"
  as_root mkdir -p "$RUN_DIR" "$ROOT"
  start_containerd
  start_dockerd
  log "running: dockerd $(docker_ version --format '{{.Server.Version}}'), containerd $CTRD_SOCK, log $RUN_DIR/dockerd.log"
  echo "export BERTH_DOCKERD_HOST=unix://$SOCK"
}

stop_pid() { # pidfile name
  local f="$1" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local _
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "$2 (pid $pid) still alive, sending KILL"; kill -9 "$pid" || true; }
  fi
  rm -f "$f"
}

cmd_stop() {
  stop_pid "$RUN_DIR/dockerd.pid" dockerd
  rm -f "$SOCK"
  stop_pid "$RUN_DIR/containerd.pid" containerd
  # containerd leaves the shims of running containers behind when it stops (by design, so that
  # containers outlive a containerd restart); they belong to this containerd only.
  local pid
  for pid in $(pgrep -f -- "-address $CTRD_SOCK\$" || true); do kill -9 "$pid" 2>/dev/null || true; done
  rm -f "$CTRD_SOCK"
  log "stopped"
}

# What a reboot of the host does to dockerd and, through it, every container: stopped with their
# stop signal and started again by their restart policy. Containerd keeps running (on a real host it
# restarts too, and the containers are stopped either way: dockerd stops them without live-restore).
cmd_restart() {
  stop_pid "$RUN_DIR/dockerd.pid" dockerd
  rm -f "$SOCK"
  start_containerd
  start_dockerd
  log "restarted"
}

docker_() { DOCKER_HOST="unix://$SOCK" docker "$@"; }

cmd_load() {
  ping_ok || die "dockerd is not running: bash .ci/dockerd.sh start"
  local img want have
  for img in "$@"; do
    # Copied when missing or different (a rebuilt test image). The image ID is the config digest on
    # both engines, so equal IDs mean the same image.
    want="$(podman image inspect --format '{{.Id}}' "$img")" || die "$img not in Podman's storage"
    have="$(docker_ image inspect --format '{{.Id}}' "$img" 2>/dev/null || true)"
    if [ "${have#sha256:}" != "${want#sha256:}" ]; then
      log "loading $img"
      podman save "$img" | docker_ load -q >&2
    fi
  done
}

cmd_status() {
  if ping_ok; then echo "running: unix://$SOCK"; else echo "not answering: unix://$SOCK"; exit 1; fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_restart ;;
  status) cmd_status ;;
  load) shift; cmd_load "$@" ;;
  *) echo "usage: $0 install|start|stop|restart|status|load IMAGE..." >&2; exit 2 ;;
esac
