#!/usr/bin/env bash
# Podman as a Docker-compatible API for Berth's "real" tests.
#
#   bash .ci/podman.sh install   # idempotent: apt packages + /etc/containers/{containers,storage}.conf
#   bash .ci/podman.sh start     # podman system service on $BERTH_PODMAN_SOCK; prints `export DOCKER_HOST=...`
#   bash .ci/podman.sh stop      # stops the service started by `start` (by PID file)
#   bash .ci/podman.sh status    # exit 0 if the socket answers /_ping
#   eval "$(bash .ci/podman.sh start)"   # sets DOCKER_HOST in the calling shell
#
# Settings follow shared/REAL-TARGETS.md: runc, cgroupfs, file events logger, vfs storage,
# raised default ulimits. Health checks are NOT run by Podman on this machine (no systemd timers):
# drive them with `podman healthcheck run NAME`.
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

cmd_install() {
  local pkgs=(podman runc mmdebstrap uidmap curl ca-certificates)
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

  write_if_changed /etc/containers/containers.conf '# Written by .ci/podman.sh (Berth real tests)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'

  write_if_changed /etc/containers/storage.conf '# Written by .ci/podman.sh (Berth real tests)
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"'
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

cmd_status() {
  if ping_ok; then echo "running: unix://$SOCK"; else echo "not answering: unix://$SOCK"; exit 1; fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
