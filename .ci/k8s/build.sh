#!/usr/bin/env bash
# Build the test cluster's binaries and images once, cached outside the repo:
#   ${BERTH_CACHE:-/var/cache/berth}/k8s/v1.31.0/bin/{kube-apiserver,kube-controller-manager,
#       kube-scheduler,kubelet,kube-proxy,kubectl,coredns,kube-network-policies,metrics-server}
#   ${BERTH_CACHE:-/var/cache/berth}/k8s/v1.31.0/images/{pause.tar,busybox.tar,kube-network-policies.tar}
#       (OCI archives for `ctr -n k8s.io images import`: localhost/pause:3.10, localhost/berth-busybox:1,
#       localhost/kube-network-policies:v0.8.0)
# Anything already in the cache is skipped. Go's module and build caches live under BERTH_CACHE/go.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
START=$(date +%s)

command -v go >/dev/null || die "go is not installed"
export GOPATH=${BERTH_CACHE}/go
export GOMODCACHE=${GOPATH}/pkg/mod
export GOCACHE=${GOPATH}/build-cache
export GOFLAGS=-buildvcs=false
export GOTOOLCHAIN=local
export CGO_ENABLED=0
mkdir -p "$K8S_BIN" "$K8S_IMAGES" "$GOCACHE"
BUILD_FLAGS=(-p 2 -trimpath "-ldflags=-s -w")
# The version the binaries report (kubectl version, node info), as Kubernetes' own build sets it.
K8S_X=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_X="$K8S_X -X $pkg.gitVersion=${K8S_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=31 -X $pkg.gitTreeState=clean"
done
K8S_BUILD_FLAGS=(-p 2 -trimpath "-ldflags=-s -w${K8S_X}")
STAMP=$K8S_BIN/.kubernetes-build-flags

# --- Kubernetes binaries from k8s.io/kubernetes through a wrapper module -------------------
missing=()
if [ "$(cat "$STAMP" 2>/dev/null)" != "${K8S_BUILD_FLAGS[*]}" ]; then
  missing=($K8S_BINARIES)   # built with other flags: rebuild (the Go build cache makes this a relink)
else
  for b in $K8S_BINARIES; do [ -x "$K8S_BIN/$b" ] || missing+=("$b"); done
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "building ${missing[*]} (k8s.io/kubernetes ${K8S_VERSION})"
  WRAP=${K8S_CACHE}/wrapper
  mkdir -p "$WRAP"
  if [ ! -f "$WRAP/go.sum" ]; then
    kmod=$(cd "$WRAP" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    # k8s.io/kubernetes replaces its staging modules with ./staging/...; a module that depends on it
    # has to pin each one to the published version instead.
    staging=$(grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$kmod" | awk '{print $1}' | sort -u)
    n=$(echo "$staging" | wc -l)
    [ "$n" -ge 25 ] || die "found only $n staging modules in $kmod"
    {
      echo "module berth.local/k8s-build"
      echo
      echo "go 1.22.0"
      echo
      echo "require k8s.io/kubernetes ${K8S_VERSION}"
      echo
      echo "replace ("
      for m in $staging; do echo "	$m => $m ${STAGING_VERSION}"; done
      echo ")"
    } > "$WRAP/go.mod"
    {
      echo "//go:build tools"
      echo
      echo "package tools"
      echo
      echo "import ("
      for b in $K8S_BINARIES; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
      echo ")"
    } > "$WRAP/tools.go"
    log "wrapper module with $n staging replacements; go mod tidy"
    (cd "$WRAP" && go mod tidy)
  fi
  pkgs=()
  for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  t0=$(date +%s)
  (cd "$WRAP" && go build "${K8S_BUILD_FLAGS[@]}" -o "$K8S_BIN/" "${pkgs[@]}")
  echo "${K8S_BUILD_FLAGS[*]}" > "$STAMP"
  log "kubernetes binaries built in $(( $(date +%s) - t0 ))s"
else
  log "kubernetes binaries cached in $K8S_BIN"
fi

# --- CoreDNS --------------------------------------------------------------------------------
if [ ! -x "$K8S_BIN/coredns" ]; then
  t0=$(date +%s)
  log "building coredns ${COREDNS_VERSION}"
  GOBIN="$K8S_BIN" go install "${BUILD_FLAGS[@]}" "github.com/coredns/coredns@${COREDNS_VERSION}"
  log "coredns built in $(( $(date +%s) - t0 ))s"
else
  log "coredns cached"
fi

# --- kube-network-policies and metrics-server -----------------------------------------------------
# Each from its own module that records it as a tool (`go get -tool`), so its go.mod and go.sum pin
# exactly the dependency versions the upstream module declares; one module per tool, because
# minimal version selection across both would move their k8s.io libraries. Rebuilt when the
# version in lib.sh changes (the stamp beside the binary).
build_tool() { # NAME PACKAGE VERSION [LDFLAGS-EXTRA]
  local name=$1 pkg=$2 version=$3 x=${4:-} dir=${K8S_CACHE}/tools/$1 want t0
  want="$pkg@$version ${BUILD_FLAGS[*]}$x"
  if [ -x "$K8S_BIN/$name" ] && [ "$(cat "$K8S_BIN/.$name-build" 2>/dev/null)" = "$want" ]; then
    log "$name cached"; return 0
  fi
  t0=$(date +%s)
  log "building $name ($pkg@$version)"
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && go mod init "berth.local/tools/$name" >/dev/null 2>&1 && go get -tool "$pkg@$version" >"$dir/go-get.log" 2>&1) ||
    { cat "$dir/go-get.log" >&2; die "go get -tool $pkg@$version failed"; }
  (cd "$dir" && go build -p 2 -trimpath "-ldflags=-s -w$x" -o "$K8S_BIN/$name" "$pkg")
  echo "$want" > "$K8S_BIN/.$name-build"
  log "$name built in $(( $(date +%s) - t0 ))s"
}
build_tool kube-network-policies sigs.k8s.io/kube-network-policies/cmd "$NETPOL_VERSION"
build_tool metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "$METRICS_SERVER_VERSION" \
  " -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"

# --- Images: pause (static C) and busybox (Debian's busybox-static) --------------------------
if [ ! -f "$K8S_IMAGES/pause.tar" ]; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/rootfs"
  cc -static -Os -Wall -o "$tmp/rootfs/pause" "$HERE/pause.c"
  strip "$tmp/rootfs/pause"
  python3 "$HERE/oci_image.py" --rootfs "$tmp/rootfs" --name "$PAUSE_IMAGE" \
    --entrypoint /pause --user 65535:65535 --out "$K8S_IMAGES/pause.tar.tmp"
  mv "$K8S_IMAGES/pause.tar.tmp" "$K8S_IMAGES/pause.tar"
  rm -rf "$tmp"
  log "pause image -> $K8S_IMAGES/pause.tar ($PAUSE_IMAGE)"
else
  log "pause image cached"
fi
if [ ! -f "$K8S_IMAGES/busybox.tar" ]; then
  if [ ! -x /bin/busybox ] || ! grep -q 'statically linked' <<<"$(file -L /bin/busybox 2>/dev/null)"; then
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
  fi
  bb=/bin/busybox
  tmp=$(mktemp -d)
  mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/tmp" "$tmp/rootfs/data"
  chmod 1777 "$tmp/rootfs/tmp"
  cp "$bb" "$tmp/rootfs/bin/busybox"
  for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$tmp/rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n' > "$tmp/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$tmp/rootfs/etc/group"
  python3 "$HERE/oci_image.py" --rootfs "$tmp/rootfs" --name "$BUSYBOX_IMAGE" \
    --cmd /bin/sh --env PATH=/bin --out "$K8S_IMAGES/busybox.tar.tmp"
  mv "$K8S_IMAGES/busybox.tar.tmp" "$K8S_IMAGES/busybox.tar"
  rm -rf "$tmp"
  log "busybox image -> $K8S_IMAGES/busybox.tar ($BUSYBOX_IMAGE)"
else
  log "busybox image cached"
fi

# kube-network-policies runs as a pod (a DaemonSet, as upstream ships it): its static binary alone.
if [ ! -f "$K8S_IMAGES/kube-network-policies.tar" ] || [ "$K8S_BIN/kube-network-policies" -nt "$K8S_IMAGES/kube-network-policies.tar" ]; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/rootfs/bin"
  cp "$K8S_BIN/kube-network-policies" "$tmp/rootfs/bin/netpol"
  python3 "$HERE/oci_image.py" --rootfs "$tmp/rootfs" --name "$NETPOL_IMAGE" \
    --entrypoint /bin/netpol --out "$K8S_IMAGES/kube-network-policies.tar.tmp"
  mv "$K8S_IMAGES/kube-network-policies.tar.tmp" "$K8S_IMAGES/kube-network-policies.tar"
  rm -rf "$tmp"
  log "kube-network-policies image -> $K8S_IMAGES/kube-network-policies.tar ($NETPOL_IMAGE)"
else
  log "kube-network-policies image cached"
fi

log "build.sh done in $(( $(date +%s) - START ))s; cache: $(du -sh "$K8S_CACHE" | cut -f1) in $K8S_CACHE, go caches: $(du -sh "$GOPATH" | cut -f1)"
