#!/usr/bin/env bash
# Start a single-node Kubernetes v1.31 cluster on this machine, everything on loopback (the pod
# network is a bridge that this script creates). Needs the binaries from .ci/k8s/build.sh.
# NetworkPolicies are enforced (kube-network-policies, a pod) and resource metrics are served
# (metrics-server, a host process, as the metrics.k8s.io API), so HPAs scale.
#   State, logs, PIDs:  ${BERTH_K8S_STATE:-/tmp/berth-k8s}/{logs,pids,...}
#   Admin kubeconfig:   ${BERTH_K8S_STATE:-/tmp/berth-k8s}/kubeconfig   (printed on the last line)
# Idempotent: when the cluster is already up and healthy it only prints the kubeconfig path.
# Stop with .ci/k8s/down.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
S=$BERTH_K8S_STATE
KUBECTL="$K8S_BIN/kubectl --kubeconfig=$S/kubeconfig"
T_START=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }

[ "$(id -u)" = 0 ] || die "must run as root"
for b in $K8S_BINARIES coredns kube-network-policies metrics-server; do [ -x "$K8S_BIN/$b" ] || die "$K8S_BIN/$b missing: run .ci/k8s/build.sh first"; done
for i in pause busybox kube-network-policies; do [ -f "$K8S_IMAGES/$i.tar" ] || die "$K8S_IMAGES/$i.tar missing: run .ci/k8s/build.sh first"; done

lock_cluster
P=$S/pki
CTR="ctr --address $S/containerd/containerd.sock -n k8s.io"
start() { # NAME CMD...: run in its own session, log to logs/NAME.log, pid in pids/NAME.pid
  local name=$1; shift
  setsid "$@" >"$S/logs/$name.log" 2>&1 < /dev/null 9>&- &   # 9 is the lock: not inherited
  echo $! > "$S/pids/$name.pid"
}
wait_for() { # SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2
  local end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      log "timed out after ${t}s waiting for $what; last log lines:"
      tail -n 20 "$S"/logs/*.log >&2 || true
      die "timed out waiting for $what"
    fi
    sleep 0.5
  done
  log "$what: ok ($(elapsed "$T_START")s)"
}

# --- add-ons: NetworkPolicy enforcement and metrics-server (also started again by a repair run) ----
# kube-network-policies v0.8.0 (a DaemonSet, as upstream ships it) decides every verdict: it reads
# the first packet of each new connection from an nfqueue and accepts or drops it by the
# NetworkPolicies. It asks for those packets with nftables' `queue` expression; a kernel built
# without CONFIG_NFT_QUEUE (the one on these machines) refuses that table, so here the same packets
# reach the same queue through iptables' NFQUEUE target instead (chain NETPOL_CHAIN in mangle
# POSTROUTING, the hook its own table uses, before SNAT): new connections from or to a pod, not
# those of the node's root processes (the kubelet's probes), as its own rules do.
nft_queue_supported() {
  local t=berth-queue-probe ok=1
  nft add table inet "$t" 2>/dev/null || return 1
  nft add chain inet "$t" c 2>/dev/null && nft add rule inet "$t" c queue num "$NETPOL_QUEUE" 2>/dev/null || ok=0
  nft delete table inet "$t" 2>/dev/null
  [ "$ok" = 1 ]
}
netpol_divert() {
  if nft_queue_supported; then
    log "nftables queue supported: kube-network-policies' own nftables rules divert the packets"
    return 0
  fi
  iptables -w -t mangle -N "$NETPOL_CHAIN" 2>/dev/null || iptables -w -t mangle -F "$NETPOL_CHAIN"
  iptables -w -t mangle -A "$NETPOL_CHAIN" -m owner --uid-owner 0 -j RETURN
  iptables -w -t mangle -A "$NETPOL_CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  iptables -w -t mangle -A "$NETPOL_CHAIN" -s "$POD_CIDR" -j NFQUEUE --queue-num "$NETPOL_QUEUE"
  iptables -w -t mangle -A "$NETPOL_CHAIN" -d "$POD_CIDR" -j NFQUEUE --queue-num "$NETPOL_QUEUE"
  iptables -w -t mangle -C POSTROUTING -j "$NETPOL_CHAIN" 2>/dev/null || iptables -w -t mangle -A POSTROUTING -j "$NETPOL_CHAIN"
  log "kernel without nftables queue: iptables chain $NETPOL_CHAIN (mangle POSTROUTING) feeds queue $NETPOL_QUEUE"
}
netpol_up() {
  $CTR images import --snapshotter "$(cat "$S/containerd/snapshotter")" "$K8S_IMAGES/kube-network-policies.tar" >/dev/null
  $KUBECTL apply -f - >/dev/null <<EOT
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-network-policies, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kube-network-policies}
rules:
- apiGroups: [""]
  resources: [pods, namespaces]
  verbs: [list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kube-network-policies}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-network-policies}
subjects:
- {kind: ServiceAccount, name: kube-network-policies, namespace: kube-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-network-policies
  namespace: kube-system
  labels: {app: kube-network-policies}
spec:
  selector:
    matchLabels: {app: kube-network-policies}
  template:
    metadata:
      labels: {app: kube-network-policies}
    spec:
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: kube-network-policies
      tolerations: [{operator: Exists}]
      containers:
      - name: kube-network-policies
        image: ${NETPOL_IMAGE}
        imagePullPolicy: Never
        # Pod IPs come from the API: containerd 1.6 has no NRI (its NRI plugin fails to connect and
        # exits; v0.8.0 does not pass --disable-nri on). Kernels from 6.12 on have the conntrack fix
        # its DNS workaround is for (this one: $(uname -r)); pods' DNS goes to the node (CoreDNS
        # on the bridge gateway), which no policy hook sees.
        args: [--hostname-override=localhost, --netfilter-bug-1766-fix=false,
               --nfqueue-id=${NETPOL_QUEUE}, --metrics-bind-address=127.0.0.1:${NETPOL_METRICS_PORT}, --v=1]
        env:
        # The in-cluster API address: the API server listens on the node's loopback only.
        - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
        - {name: KUBERNETES_SERVICE_PORT, value: "${APISERVER_PORT}"}
        resources:
          requests: {cpu: 50m, memory: 50Mi}
        securityContext:
          capabilities: {add: [NET_ADMIN]}
EOT
  wait_for 90 "kube-network-policies reading queue $NETPOL_QUEUE" netpol_listening
  netpol_divert
}
metrics_server_up() {
  alive metrics-server && return 0
  start metrics-server "$K8S_BIN/metrics-server" \
    --kubeconfig="$S/metrics-server.kubeconfig" \
    --authentication-kubeconfig="$S/metrics-server.kubeconfig" --authorization-kubeconfig="$S/metrics-server.kubeconfig" \
    --bind-address="${BRIDGE_IP}" --secure-port="${METRICS_SERVER_PORT}" \
    --tls-cert-file="$P/metrics-server.crt" --tls-private-key-file="$P/metrics-server.key" \
    --kubelet-preferred-address-types=Hostname --kubelet-use-node-status-port --kubelet-insecure-tls \
    --metric-resolution=15s --v=1
  # The API server reaches it through this Service's endpoint (the bridge gateway: endpoints may not
  # be loopback) and checks its certificate against caBundle (the cluster CA).
  $KUBECTL apply -f - >/dev/null <<EOT
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  ports: [{name: https, port: 443, targetPort: ${METRICS_SERVER_PORT}, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: metrics-server, namespace: kube-system}
subsets:
- addresses: [{ip: "${BRIDGE_IP}"}]
  ports: [{name: https, port: ${METRICS_SERVER_PORT}, protocol: TCP}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $(base64 -w0 < "$P/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
EOT
  wait_for 60 "metrics.k8s.io available (metrics-server)" metrics_available
}

PROCS="etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns"
alive() { [ -f "$S/pids/$1.pid" ] && kill -0 "$(cat "$S/pids/$1.pid")" 2>/dev/null; }
healthy() {
  [ -f "$S/kubeconfig" ] || return 1
  for p in $PROCS; do alive "$p" || return 1; done
  [ "$($KUBECTL --request-timeout=10s get node localhost -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
# kube-network-policies has opened its queue (it reads the first packet of each pod connection).
netpol_listening() { awk -v q="$NETPOL_QUEUE" '$1 == q {found=1} END {exit !found}' /proc/net/netfilter/nfnetlink_queue 2>/dev/null; }
netpol_active() { # listening, and packets reach its queue (our chain, or its own nftables table)
  netpol_listening && { iptables -w -t mangle -C POSTROUTING -j "$NETPOL_CHAIN" 2>/dev/null ||
    nft list table inet kube-network-policies >/dev/null 2>&1; }
}
metrics_available() {
  [ "$($KUBECTL --request-timeout=10s get apiservice v1beta1.metrics.k8s.io -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ]
}
if [ -d "$S" ]; then
  if healthy; then
    if ! grep -qz -- '--requestheader-client-ca-file' "/proc/$(cat "$S/pids/kube-apiserver.pid")/cmdline" 2>/dev/null; then
      # Started by an older up.sh: no API aggregation, no policy enforcement. Restarting would delete
      # every namespace's workloads (the cluster is shared), so that is left to whoever runs down.sh.
      log "WARNING: cluster already up, but started by an older up.sh: NetworkPolicies are not enforced and"
      log "WARNING: there are no resource metrics (HPAs do not scale). down.sh + up.sh gives both (and deletes"
      log "WARNING: every workload on the cluster: check \`kubectl get ns\` first)."
      echo "$S/kubeconfig"
      exit 0
    fi
    if netpol_active && alive metrics-server && metrics_available; then
      log "cluster already up"
      echo "$S/kubeconfig"
      exit 0
    fi
    log "cluster up, but an add-on is not: starting NetworkPolicy enforcement and metrics-server again"
    netpol_up
    metrics_server_up
    echo "$S/kubeconfig"
    exit 0
  else
    log "found a stale or partial cluster in $S: running down.sh first"
    "$HERE/down.sh"
  fi
fi

# --- packages ---------------------------------------------------------------------------------
need=()
for p in etcd-server containerd containernetworking-plugins runc iptables nftables conntrack socat ethtool \
         iproute2 openssl kmod util-linux mount curl; do
  # Installed, not merely known: `dpkg -s` also succeeds for a removed package whose config remains.
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/berth-k8s-apt.log 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/berth-k8s-apt.log 2>&1 \
      || die "apt-get install failed, see /tmp/berth-k8s-apt.log"
  fi
fi
for p in etcd containerd containerd-shim-runc-v2 runc ctr iptables nft conntrack curl flock; do
  command -v "$p" >/dev/null || die "$p not found after install"
done

mkdir -p "$S"/{logs,pids,pki,etcd,containerd/{root,state,certs.d},kubelet,cni/{net.d,ipam},pv,run}
chmod 755 "$S"

# Settings the kubelet and kube-proxy change are restored by down.sh. IP forwarding and
# bridge-nf-call-iptables, which the pod network needs, stay on (Podman's networks need them too).
: > "$S/sysctl.saved"
for k in vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.conf.all.route_localnet; do
  v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v" >> "$S/sysctl.saved"
done
modprobe br_netfilter 2>/dev/null || true
modprobe overlay 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "warning: bridge-nf-call-iptables not available"


# --- PKI and credentials -------------------------------------------------------------------------
openssl genrsa -out "$P/ca.key" 2048 2>/dev/null
openssl req -x509 -new -key "$P/ca.key" -subj "/CN=berth-test-ca" -days 30 -out "$P/ca.crt" 2>/dev/null
openssl genrsa -out "$P/apiserver.key" 2048 2>/dev/null
cat > "$P/apiserver.ext" <<EOT
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1
extendedKeyUsage=serverAuth
EOT
openssl req -new -key "$P/apiserver.key" -subj "/CN=kube-apiserver" -out "$P/apiserver.csr" 2>/dev/null
openssl x509 -req -in "$P/apiserver.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 \
  -extfile "$P/apiserver.ext" -out "$P/apiserver.crt" 2>/dev/null
# API aggregation (metrics.k8s.io): the API server proxies to metrics-server as front-proxy-client,
# a client certificate from its own CA, and metrics-server serves a certificate of the cluster CA.
openssl genrsa -out "$P/front-proxy-ca.key" 2048 2>/dev/null
openssl req -x509 -new -key "$P/front-proxy-ca.key" -subj "/CN=berth-front-proxy-ca" -days 30 -out "$P/front-proxy-ca.crt" 2>/dev/null
openssl genrsa -out "$P/front-proxy-client.key" 2048 2>/dev/null
openssl req -new -key "$P/front-proxy-client.key" -subj "/CN=front-proxy-client" -out "$P/front-proxy-client.csr" 2>/dev/null
echo "extendedKeyUsage=clientAuth" > "$P/front-proxy-client.ext"
openssl x509 -req -in "$P/front-proxy-client.csr" -CA "$P/front-proxy-ca.crt" -CAkey "$P/front-proxy-ca.key" -CAcreateserial \
  -days 30 -extfile "$P/front-proxy-client.ext" -out "$P/front-proxy-client.crt" 2>/dev/null
openssl genrsa -out "$P/metrics-server.key" 2048 2>/dev/null
cat > "$P/metrics-server.ext" <<EOT
subjectAltName=DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local,IP:${BRIDGE_IP}
extendedKeyUsage=serverAuth
EOT
openssl req -new -key "$P/metrics-server.key" -subj "/CN=metrics-server" -out "$P/metrics-server.csr" 2>/dev/null
openssl x509 -req -in "$P/metrics-server.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 \
  -extfile "$P/metrics-server.ext" -out "$P/metrics-server.crt" 2>/dev/null
openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
tok() { openssl rand -hex 24; }
ADMIN_TOKEN=$(tok); KCM_TOKEN=$(tok); SCHED_TOKEN=$(tok); NODE_TOKEN=$(tok); PROXY_TOKEN=$(tok); DNS_TOKEN=$(tok); METRICS_TOKEN=$(tok)
cat > "$P/tokens.csv" <<EOT
$ADMIN_TOKEN,admin,admin,system:masters
$KCM_TOKEN,system:kube-controller-manager,kcm,system:masters
$SCHED_TOKEN,system:kube-scheduler,sched,system:masters
$NODE_TOKEN,system:node:localhost,node-localhost,system:nodes
$PROXY_TOKEN,system:kube-proxy,kube-proxy,system:node-proxier-group
$DNS_TOKEN,berth:coredns,coredns,berth:coredns
$METRICS_TOKEN,berth:metrics-server,metrics-server,berth:metrics-server
EOT
chmod 600 "$P"/*.key "$P/tokens.csv"
kubeconfig() { # FILE USER TOKEN
  cat > "$1" <<EOT
apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: https://127.0.0.1:${APISERVER_PORT}
    certificate-authority: $P/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: berth
  context: {cluster: berth, user: $2}
current-context: berth
EOT
  chmod 600 "$1"
}
kubeconfig "$S/kubeconfig" admin "$ADMIN_TOKEN"
kubeconfig "$S/kcm.kubeconfig" system:kube-controller-manager "$KCM_TOKEN"
kubeconfig "$S/scheduler.kubeconfig" system:kube-scheduler "$SCHED_TOKEN"
kubeconfig "$S/kubelet.kubeconfig" system:node:localhost "$NODE_TOKEN"
kubeconfig "$S/proxy.kubeconfig" system:kube-proxy "$PROXY_TOKEN"
kubeconfig "$S/coredns.kubeconfig" berth:coredns "$DNS_TOKEN"
kubeconfig "$S/metrics-server.kubeconfig" berth:metrics-server "$METRICS_TOKEN"

# --- etcd + control plane ------------------------------------------------------------------------
start etcd etcd --name berth --data-dir "$S/etcd" \
  --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
  --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
  --initial-cluster "berth=http://127.0.0.1:${ETCD_PEER_PORT}" \
  --listen-metrics-urls "" --quota-backend-bytes 2147483648 --snapshot-count 10000
wait_for 30 "etcd" curl -fsS "http://127.0.0.1:${ETCD_PORT}/health"

start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:${ETCD_PORT}" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="${APISERVER_PORT}" \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
  --token-auth-file="$P/tokens.csv" --anonymous-auth=false \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --allow-privileged=false \
  --kubelet-preferred-address-types=Hostname \
  --endpoint-reconciler-type=lease \
  --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
  --enable-aggregator-routing=true \
  --profiling=false --v=1
wait_for 90 "kube-apiserver" curl -fsS --cacert "$P/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:${APISERVER_PORT}/readyz"

# CoreDNS reads Services, EndpointSlices, Namespaces and Pods.
$KUBECTL apply -f - >/dev/null <<'EOT'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "berth:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "berth:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "berth:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "berth:coredns"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "berth:kube-proxy"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node-proxier"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:kube-proxy"}
---
# metrics-server: reads the kubelet's resource metrics and the objects they belong to, checks the
# API server's proxied requests (its front-proxy CA is in kube-system/extension-apiserver-authentication)
# and delegates authorization.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "berth:metrics-server"}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "berth:metrics-server"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "berth:metrics-server"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "berth:metrics-server"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "berth:metrics-server:auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "berth:metrics-server"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "berth:metrics-server:auth-reader", namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "berth:metrics-server"}
EOT

# The hostPath recycler pod (for PVs with reclaim policy Recycle) must use a local image.
cat > "$S/recycler-pod.yaml" <<EOT
apiVersion: v1
kind: Pod
metadata:
  generateName: pv-recycler-
  namespace: default
spec:
  restartPolicy: Never
  activeDeadlineSeconds: 120
  volumes:
  - name: vol
  containers:
  - name: pv-recycler
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "test -e /scrub && rm -rf /scrub/..?* /scrub/.[!.]* /scrub/* && test -z \"\$(ls -A /scrub)\" || exit 1"]
    volumeMounts:
    - name: vol
      mountPath: /scrub
EOT
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$S/kcm.kubeconfig" --authentication-kubeconfig="$S/kcm.kubeconfig" --authorization-kubeconfig="$S/kcm.kubeconfig" \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-cidr="${CLUSTER_CIDR}" --allocate-node-cidrs=true --node-cidr-mask-size=24 \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --leader-elect=false --secure-port=0 --controllers='*,-cloud-node-lifecycle' \
  --pv-recycler-pod-template-filepath-hostpath="$S/recycler-pod.yaml" \
  --pv-recycler-minimum-timeout-hostpath=60 --pv-recycler-timeout-increment-hostpath=0 \
  --profiling=false --v=2
start kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$S/scheduler.kubeconfig" --authentication-kubeconfig="$S/scheduler.kubeconfig" --authorization-kubeconfig="$S/scheduler.kubeconfig" \
  --leader-elect=false --secure-port=0 --profiling=false --v=1

# --- containerd ---------------------------------------------------------------------------------
CD=$S/containerd
SNAPSHOTTER=overlayfs
mkdir -p "$S/run/ovl"/{l,u,w,m}
if mount -t overlay overlay -o "lowerdir=$S/run/ovl/l,upperdir=$S/run/ovl/u,workdir=$S/run/ovl/w" "$S/run/ovl/m" 2>/dev/null; then
  umount "$S/run/ovl/m"
else
  SNAPSHOTTER=native; log "overlayfs unavailable here: containerd uses the native snapshotter"
fi
rm -rf "$S/run/ovl"
echo "$SNAPSHOTTER" > "$CD/snapshotter"
containerd config default | python3 "$HERE/containerd_config.py" "$CD" "$S" "$PAUSE_IMAGE" "$SNAPSHOTTER" > "$CD/config.toml"
cat > "$S/cni/net.d/10-berth.conflist" <<EOT
{
  "cniVersion": "1.0.0",
  "name": "berth-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${CNI_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$S/cni/ipam",
        "ranges": [[{"subnet": "${POD_CIDR}", "gateway": "${BRIDGE_IP}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOT
# Registry pulls are pointed at a closed loopback port: images come only from `ctr images import`.
start containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
  http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy= \
  containerd --config "$CD/config.toml"
wait_for 30 "containerd" $CTR version
$CTR images import --snapshotter "$SNAPSHOTTER" "$K8S_IMAGES/pause.tar" >/dev/null
$CTR images import --snapshotter "$SNAPSHOTTER" "$K8S_IMAGES/busybox.tar" >/dev/null
images=$($CTR images ls -q)
grep -qxF "$PAUSE_IMAGE" <<<"$images" || die "pause image not imported"
grep -qxF "$BUSYBOX_IMAGE" <<<"$images" || die "busybox image not imported"

# The pod bridge exists before the first pod so that CoreDNS can bind to its gateway address.
ip link show "$CNI_BRIDGE" >/dev/null 2>&1 || ip link add "$CNI_BRIDGE" type bridge
ip addr replace "${BRIDGE_IP}/24" dev "$CNI_BRIDGE"
ip link set "$CNI_BRIDGE" up

# --- kubelet, kube-proxy, CoreDNS -----------------------------------------------------------------
echo "nameserver ${BRIDGE_IP}" > "$S/resolv.conf"
cat > "$S/kubelet-config.yaml" <<EOT
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
failSwapOn: false
enforceNodeAllocatable: []
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDNS: ["${BRIDGE_IP}"]
clusterDomain: cluster.local
resolvConf: $S/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"}
containerLogMaxSize: 10Mi
containerLogMaxFiles: 2
serializeImagePulls: false
volumePluginDir: $S/kubelet/volume-plugins
EOT
start kubelet "$K8S_BIN/kubelet" --config="$S/kubelet-config.yaml" --kubeconfig="$S/kubelet.kubeconfig" \
  --root-dir="$S/kubelet" --cert-dir="$S/kubelet/pki" \
  --container-runtime-endpoint="unix://$CD/containerd.sock" --hostname-override=localhost \
  --pod-infra-container-image="$PAUSE_IMAGE" --v=1
start kube-proxy "$K8S_BIN/kube-proxy" --kubeconfig="$S/proxy.kubeconfig" --proxy-mode=iptables \
  --hostname-override=localhost --cluster-cidr="${CLUSTER_CIDR}" \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249 \
  --nodeport-addresses=127.0.0.0/8 --v=1
# Cluster names from the API; every other name gets NXDOMAIN here: nothing is forwarded upstream.
cat > "$S/Corefile" <<EOT
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind ${BRIDGE_IP}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $S/coredns.kubeconfig berth
        pods insecure
    }
    cache 30
}
.:53 {
    bind ${BRIDGE_IP}
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOT
start coredns "$K8S_BIN/coredns" -conf "$S/Corefile"

node_ready() { [ "$($KUBECTL get node localhost -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_for 120 "node localhost Ready" node_ready
wait_for 60 "ServiceAccount default/default" $KUBECTL -n default get serviceaccount default

# --- NetworkPolicy enforcement, metrics-server -----------------------------------------------------
netpol_up
metrics_server_up

# --- storage: static hostPath PersistentVolumes (no StorageClass; claims without one bind to them)
pv() { # NAME SIZE
  mkdir -p "$S/pv/$1"; chmod 0777 "$S/pv/$1"
  cat <<EOT
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: berth-$1
  labels: {berth.test/pv: "true"}
spec:
  capacity: {storage: $2}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Recycle
  volumeMode: Filesystem
  hostPath: {path: "$S/pv/$1", type: Directory}
EOT
}
pvs=$(for i in $(seq -w 1 20); do pv "$i" 10Gi; done; for i in 21 22 23 24; do pv "$i" 100Gi; done)
out=$(echo "$pvs" | $KUBECTL apply -f - 2>&1) || { echo "$out" >&2; die "creating PersistentVolumes failed"; }
log "24 hostPath PersistentVolumes (20 x 10Gi, 4 x 100Gi, RWO, reclaim Recycle) under $S/pv"

# --- DNS from inside a pod ------------------------------------------------------------------------
$KUBECTL -n default apply -f - >/dev/null <<EOT
apiVersion: v1
kind: Pod
metadata: {name: berth-dns-check}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: c
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "for i in \$(seq 1 30); do nslookup kubernetes.default.svc.cluster.local && exit 0; sleep 1; done; exit 1"]
EOT
pod_done() { [ "$($KUBECTL -n default get pod berth-dns-check -o jsonpath='{.status.phase}')" = Succeeded ]; }
pod_failed() { [ "$($KUBECTL -n default get pod berth-dns-check -o jsonpath='{.status.phase}')" = Failed ]; }
end=$(( $(date +%s) + 90 ))
until pod_done; do
  if pod_failed || [ "$(date +%s)" -ge "$end" ]; then
    $KUBECTL -n default describe pod berth-dns-check >&2 || true
    $KUBECTL -n default logs berth-dns-check >&2 || true
    die "cluster DNS check failed"
  fi
  sleep 0.5
done
grep -q 'Address.*10\.96\.0\.1' <<<"$($KUBECTL -n default logs berth-dns-check)" || die "DNS answer for kubernetes.default is not 10.96.0.1"
$KUBECTL -n default delete pod berth-dns-check --wait=false >/dev/null
log "DNS from a pod: ok ($(elapsed "$T_START")s)"

# --- NetworkPolicy enforced: of two identical servers, the one a policy closes does not answer --------
NC=berth-netpol-check
server() { # NAME
  cat <<EOT
---
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: $NC, labels: {app: $1}}
spec:
  automountServiceAccountToken: false
  containers:
  - {name: c, image: ${BUSYBOX_IMAGE}, imagePullPolicy: Never,
     command: ["/bin/sh", "-c", "echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]}
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: $NC}
spec: {selector: {app: $1}, ports: [{port: 8080}]}
EOT
}
{
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$NC"
  server open; server closed
  cat <<EOT
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: closed, namespace: $NC}
spec: {podSelector: {matchLabels: {app: closed}}, policyTypes: [Ingress]}
EOT
} | $KUBECTL apply -f - >/dev/null
$KUBECTL -n $NC wait --for=condition=Ready pod/open pod/closed --timeout=60s >/dev/null
# The Services' addresses (ClusterIPs, through kube-proxy as any Service call).
OPEN_IP=$($KUBECTL -n $NC get service open -o jsonpath='{.spec.clusterIP}')
CLOSED_IP=$($KUBECTL -n $NC get service closed -o jsonpath='{.spec.clusterIP}')
$KUBECTL apply -f - >/dev/null <<EOT
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NC}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: c
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: Never
    # Debian's static busybox wget crashes with -T: \`timeout\` bounds it (exit 143 when it fires).
    command: ["/bin/sh", "-c", "ok=0; for i in \$(seq 1 60); do if timeout 2 wget -q -O - http://${OPEN_IP}:8080/; then ok=1; break; fi; sleep 1; done; [ \$ok = 1 ] || { echo open unreachable; exit 1; }; timeout 3 wget -q -O - http://${CLOSED_IP}:8080/; rc=\$?; [ \$rc = 143 ] || { echo closed: wget exit \$rc, not a timeout; exit 2; }; echo closed dropped"]
EOT
phase() { $KUBECTL -n $NC get pod client -o jsonpath='{.status.phase}'; }
end=$(( $(date +%s) + 120 ))
until [ "$(phase)" = Succeeded ]; do
  if [ "$(phase)" = Failed ] || [ "$(date +%s)" -ge "$end" ]; then
    $KUBECTL -n $NC logs client >&2 || true
    $KUBECTL -n $NC get pods -o wide >&2 || true
    $KUBECTL -n kube-system logs daemonset/kube-network-policies --tail=20 >&2 || true
    die "NetworkPolicy check failed: the client could not reach the open server, or reached the closed one"
  fi
  sleep 0.5
done
$KUBECTL delete namespace $NC --wait=false >/dev/null
log "NetworkPolicy enforced (a closed server's connections dropped): ok ($(elapsed "$T_START")s)"

log "cluster up in $(elapsed "$T_START")s; logs in $S/logs"
echo "$S/kubeconfig"
