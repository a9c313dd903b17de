# Shared settings for the Berth test cluster scripts (.ci/k8s/*.sh). Sourced, not run.
K8S_VERSION=v1.31.0
STAGING_VERSION=v0.31.0
COREDNS_VERSION=v1.11.3
# NetworkPolicy enforcement and resource metrics (HPA), both from the Go module proxy.
NETPOL_VERSION=v0.8.0          # sigs.k8s.io/kube-network-policies
METRICS_SERVER_VERSION=v0.8.0  # sigs.k8s.io/metrics-server
NETPOL_IMAGE=localhost/kube-network-policies:${NETPOL_VERSION}
PAUSE_TAG=3.10
PAUSE_IMAGE=localhost/pause:${PAUSE_TAG}
BUSYBOX_IMAGE=localhost/berth-busybox:1
BERTH_CACHE=${BERTH_CACHE:-/var/cache/berth}
K8S_CACHE=${BERTH_CACHE}/k8s/${K8S_VERSION}
K8S_BIN=${K8S_CACHE}/bin
K8S_IMAGES=${K8S_CACHE}/images
BERTH_K8S_STATE=${BERTH_K8S_STATE:-/tmp/berth-k8s}
K8S_BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"

# Network layout (all on this machine; nothing is routed anywhere else).
POD_CIDR=10.244.0.0/24          # the node's pod CIDR (controller-manager allocates it from CLUSTER_CIDR)
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
CNI_BRIDGE=berth-cni0
BRIDGE_IP=10.244.0.1            # gateway of the pod network; CoreDNS binds here
ETCD_PORT=23790
ETCD_PEER_PORT=23800
APISERVER_PORT=16443
METRICS_SERVER_PORT=16444       # metrics-server, on BRIDGE_IP (the API server proxies metrics.k8s.io to it)
NETPOL_QUEUE=100                # the nfqueue kube-network-policies reads (its default)
NETPOL_METRICS_PORT=16445       # its Prometheus metrics, on 127.0.0.1
NETPOL_CHAIN=BERTH-NETPOL       # iptables chain (mangle) that hands new pod connections to that queue

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# One up.sh/down.sh at a time per state dir (several engineers and CI share this machine). The lock
# file sits beside the state dir, which down.sh deletes.
lock_cluster() {
  [ "${BERTH_K8S_LOCKED:-}" = 1 ] && return 0
  mkdir -p "$(dirname "$BERTH_K8S_STATE")"
  exec 9>"${BERTH_K8S_STATE}.lock"
  if ! flock -n 9; then
    log "another up.sh/down.sh is running on $BERTH_K8S_STATE: waiting (up to 10 min)"
    flock -w 600 9 || die "timed out waiting for the lock ${BERTH_K8S_STATE}.lock"
  fi
  export BERTH_K8S_LOCKED=1
}
