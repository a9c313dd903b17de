#!/usr/bin/env bash
# Keeps the MAC address of every network bridge on this machine fixed (Podman's and the test cluster's).
#
#   bash .ci/bridge-mac.sh start   # before Podman and the cluster start; idempotent
#   bash .ci/bridge-mac.sh stop
#
# A Linux bridge whose address was never set takes the lowest MAC of its ports, so it changes whenever
# a container with a lower MAC joins or the lowest one leaves. Containers keep the old gateway MAC in
# their ARP cache until it is revalidated (15-45 s, longer seen): meanwhile everything they send to the
# gateway is lost. On Podman that is container DNS (aardvark-dns answers on the gateway address), so a
# container that had resolved names could not for tens of seconds after another container started:
# "Temporary failure in name resolution", a POST that timed out after a database was replaced.
# Netavark sets a static bridge MAC since 1.9 (commit "bridge: force static mac on bridge interface");
# Debian 12 ships 1.4. Docker Engine sets its bridges' addresses itself. This sets each bridge's address
# to the one it has, once, as soon as it appears (the kernel then keeps it: addr_assign_type 3).
set -euo pipefail
RUN_DIR="${BERTH_BRIDGE_MAC_RUN_DIR:-/run/berth-bridge-mac}"
PID_FILE="$RUN_DIR/pid"
log() { echo "[bridge-mac] $*" >&2; }

pin_all() {
  local d n addr
  for d in /sys/class/net/*/bridge; do
    [ -d "$d" ] || continue
    n="$(basename "$(dirname "$d")")"
    [ "$(cat "/sys/class/net/$n/addr_assign_type" 2>/dev/null || echo 3)" = 3 ] && continue
    addr="$(cat "/sys/class/net/$n/address" 2>/dev/null)" || continue  # gone meanwhile
    # A bridge without ports may have no address yet (all zero): it is pinned when its first port joins.
    [ "$addr" = 00:00:00:00:00:00 ] && continue
    ip link set dev "$n" address "$addr" 2>/dev/null && echo "$(date +%T) $n $addr"
  done
}

watch_loop() {
  while true; do
    pin_all || true
    # Every link change (a bridge or a container's veth added) pins whatever is new, within milliseconds.
    ip -o monitor link | while read -r _; do pin_all || true; done
    sleep 1
  done
}

case "${1:-}" in
  start)
    mkdir -p "$RUN_DIR"
    if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      log "already running (pid $(cat "$PID_FILE"))"; exit 0
    fi
    setsid bash "$0" loop >>"$RUN_DIR/pinned.log" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    log "started (pid $!); pinned bridges in $RUN_DIR/pinned.log" ;;
  stop)
    if [ -f "$PID_FILE" ]; then
      kill -- "-$(cat "$PID_FILE")" 2>/dev/null || kill "$(cat "$PID_FILE")" 2>/dev/null || true
      rm -f "$PID_FILE"; log "stopped"
    fi ;;
  loop) watch_loop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
