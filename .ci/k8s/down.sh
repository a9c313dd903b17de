#!/usr/bin/env bash
# Stop the test cluster started by .ci/k8s/up.sh and remove its state, so that up.sh can start
# a fresh one. Processes are stopped by the PIDs up.sh recorded; pods' containers are removed
# through the API (so the kubelet tears their network down) and then, for anything left, with ctr.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
S=$BERTH_K8S_STATE
T0=$(date +%s.%N)
lock_cluster
if [ ! -d "$S" ]; then log "nothing to stop: $S does not exist"; exit 0; fi
KUBECTL="$K8S_BIN/kubectl --kubeconfig=$S/kubeconfig --request-timeout=10s"
CD=$S/containerd
CTR="ctr --address $CD/containerd.sock -n k8s.io"

pid_of() { [ -f "$S/pids/$1.pid" ] && cat "$S/pids/$1.pid"; }
alive() { local p; p=$(pid_of "$1") && kill -0 "$p" 2>/dev/null; }
stop() { # NAME...: SIGTERM the processes together, wait up to 5 s for all, then SIGKILL
  local name p i t pids=() names=()
  t=$(date +%s.%N)
  for name in "$@"; do
    p=$(pid_of "$name") || continue
    kill -TERM "$p" 2>/dev/null && { pids+=("$p"); names+=("$name"); }
    rm -f "$S/pids/$name.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for i in $(seq 1 20); do
    kill -0 "${pids[@]}" 2>/dev/null || break   # true while any is alive
    sleep 0.25
  done
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null && { log "PID $p did not stop: SIGKILL"; kill -KILL "$p" 2>/dev/null; }
  done
  log "stopped ${names[*]} in $(since "$t")s"
}
since() { python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$1"; }
# NetworkPolicy enforcement off: the iptables chain that feeds kube-network-policies' queue (a queue
# nobody reads drops every new pod connection), and its own nftables table where the kernel took it
# (it does not remove it when stopped with SIGTERM).
netpol_off() {
  if iptables -w -t mangle -S "$NETPOL_CHAIN" >/dev/null 2>&1; then
    while iptables -w -t mangle -D POSTROUTING -j "$NETPOL_CHAIN" 2>/dev/null; do :; done
    iptables -w -t mangle -F "$NETPOL_CHAIN" && iptables -w -t mangle -X "$NETPOL_CHAIN"
  fi
  command -v nft >/dev/null && nft delete table inet kube-network-policies 2>/dev/null
  return 0
}

# 1. No new pods: stop the controllers and the scheduler, then delete every pod so the kubelet
#    stops them cleanly (CNI teardown included).
stop kube-controller-manager kube-scheduler
netpol_off
if alive kube-apiserver && alive kubelet && alive containerd; then
  t=$(date +%s.%N)
  $KUBECTL delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1
  for i in $(seq 1 60); do
    n=$($CTR tasks ls -q 2>/dev/null | wc -l)
    [ "$n" -eq 0 ] && break
    sleep 0.5
  done
  log "pods deleted through the API in $(since "$t")s ($n containers left)"
fi
# 2. The node agents.
stop kubelet kube-proxy coredns metrics-server
# 3. Whatever containers are left: kill and delete through containerd, then stop containerd.
if alive containerd; then
  for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks delete -f "$t" >/dev/null 2>&1; done
  for c in $($CTR containers ls -q 2>/dev/null); do $CTR containers delete "$c" >/dev/null 2>&1; done
fi
stop containerd
# Shims of this containerd (their command line names its socket under $S) outlive it when it is
# killed; stop those specific PIDs.
for d in /proc/[0-9]*; do
  mapfile -d '' -t argv 2>/dev/null < "$d/cmdline" || continue
  if [[ "${argv[0]:-}" == *containerd-shim* && " ${argv[*]} " == *" -address $CD/containerd.sock "* ]]; then
    kill -KILL "${d#/proc/}" 2>/dev/null && log "killed leftover shim ${d#/proc/}"
  fi
done
# 4. The control plane.
stop kube-apiserver etcd
# Any other process of this cluster (for example one whose PID file was lost): a cluster component
# whose command line names a path in the state dir.
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = $$ ] && continue
  mapfile -d '' -t argv 2>/dev/null < "$d/cmdline" || continue
  exe=${argv[0]:-}; exe=${exe##*/}
  case "$exe" in etcd|kube-apiserver|kube-controller-manager|kube-scheduler|containerd|kubelet|kube-proxy|coredns|metrics-server) ;; *) continue ;; esac
  mine=0
  for a in "${argv[@]}"; do [[ "$a" == "$S/"* || "$a" == --*=*"$S/"* ]] && mine=1; done
  if [ "$mine" = 1 ]; then
    log "stopping leftover cluster process $p: ${argv[*]:0:4}"
    kill -TERM "$p" 2>/dev/null; sleep 1; kill -KILL "$p" 2>/dev/null
  fi
done

log "processes stopped ($(since "$T0")s)"
# 5. Network: kube-proxy's and kubelet's iptables rules, the pod bridge.
if [ -x "$K8S_BIN/kube-proxy" ]; then
  "$K8S_BIN/kube-proxy" --cleanup --proxy-mode=iptables >"$S/logs/kube-proxy-cleanup.log" 2>&1 || true
fi
netpol_off
# Only KUBE-* chains: CNI-* chains may belong to Podman's networks and are left alone.
for ipt in iptables ip6tables; do
  command -v $ipt >/dev/null || continue
  for tbl in filter nat mangle; do
    # Rules in built-in chains that jump to KUBE-* chains, then the KUBE-* chains themselves.
    $ipt -t "$tbl" -S 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' |
      while read -r _ rest; do eval "$ipt -t $tbl -D $rest" 2>/dev/null; done
    chains=$($ipt -t "$tbl" -S 2>/dev/null | awk '/^-N KUBE-/{print $2}')
    for c in $chains; do $ipt -t "$tbl" -F "$c" 2>/dev/null; done
    for c in $chains; do $ipt -t "$tbl" -X "$c" 2>/dev/null; done
  done
done
ip link del "$CNI_BRIDGE" 2>/dev/null
for v in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
  [ "$(cat /sys/class/net/$v/master/uevent 2>/dev/null | sed -n 's/^INTERFACE=//p')" = "$CNI_BRIDGE" ] && ip link del "$v"
done

log "iptables rules and pod bridge removed ($(since "$T0")s)"
# 6. Kernel settings back to what they were before up.sh.
if [ -f "$S/sysctl.saved" ]; then
  while IFS== read -r k v; do sysctl -qw "$k=$v" 2>/dev/null; done < "$S/sysctl.saved"
fi

# 7. Mounts under the state dir (kubelet volumes, containerd rootfs and netns), then the state dir.
for m in $(awk -v s="$S/" 'index($2, s) == 1 {print $2}' /proc/self/mounts | sort -r); do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
done
# Empty pod cgroups the kubelet made (cgroup v1, cgroupfs driver).
for c in /sys/fs/cgroup/*/kubepods; do
  [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done
log "mounts under $S released ($(since "$T0")s)"
rm -rf "$S" || { log "could not remove all of $S"; exit 1; }
log "cluster stopped and $S removed in $(since "$T0")s"
