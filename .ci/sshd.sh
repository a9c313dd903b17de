#!/usr/bin/env bash
# A Docker host reached over SSH, on this machine: what `berth:docker.host: ssh://deploy@HOST` is
# in production (a VPS with a `deploy` user whose docker CLI talks to the host's engine).
#
#   bash .ci/sshd.sh install                  # Debian's openssh-server/-client, the deploy user
#   eval "$(bash .ci/sshd.sh start DOCKER_HOST)"  # sshd on 127.0.0.1:$BERTH_SSHD_PORT for `deploy`,
#                                             # whose docker CLI uses DOCKER_HOST (the local engine);
#                                             # prints BERTH_SSH_KEY, BERTH_SSH_KNOWN_HOSTS, BERTH_SSHD_PORT
#   bash .ci/sshd.sh stop
#
# Key-only login for `deploy` alone (no passwords, no root), its own host key, nothing written to
# the machine's own /etc/ssh. The client key and the known_hosts line are what a team stores as the
# SSH_PRIVATE_KEY and SSH_KNOWN_HOSTS secrets of its workflows (README, "Set up the workflows").
# The engine's socket is given to the group `berth-docker` (as a VPS gives /var/run/docker.sock to
# the group `docker`): the deploy user can run containers, which is what deploying means.
set -euo pipefail
STATE=${BERTH_SSHD_STATE:-/run/berth-sshd}
PORT=${BERTH_SSHD_PORT:-2222}
USER_NAME=deploy
GROUP=berth-docker

log() { echo "sshd.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cmd_install() {
  local missing=() p
  for p in openssh-server openssh-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    # No init system here: keep the package scripts from starting the machine-wide sshd.
    local rc=/usr/sbin/policy-rc.d had=0
    [ -e "$rc" ] && had=1 && cp "$rc" "$rc.berth"
    printf '#!/bin/sh\nexit 101\n' >"$rc" && chmod +x "$rc"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null
    if [ "$had" = 1 ]; then mv "$rc.berth" "$rc"; else rm -f "$rc"; fi
  fi
  command -v docker >/dev/null || die "no docker CLI on this machine: the deploy user needs one (Debian: docker.io)"
  getent group "$GROUP" >/dev/null || groupadd --system "$GROUP"
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --groups "$GROUP" "$USER_NAME"
  fi
  # No password can log in ('*' matches none); not `passwd -l`, whose '!' sshd reads as a locked
  # account and then refuses keys too.
  usermod -p '*' "$USER_NAME"
  log "installed: $(sshd -V 2>&1 | head -1 || ssh -V 2>&1)"
}

running() { [ -f "$STATE/sshd.pid" ] && kill -0 "$(cat "$STATE/sshd.pid")" 2>/dev/null; }

cmd_start() {
  local docker_host=${1:-${DOCKER_HOST:-}}
  [ -n "$docker_host" ] || die "usage: sshd.sh start DOCKER_HOST (unix:///path/to/engine.sock)"
  local sock=${docker_host#unix://}
  [ -S "$sock" ] || die "$sock is not a socket"
  id "$USER_NAME" >/dev/null 2>&1 || die "no user $USER_NAME: run 'bash .ci/sshd.sh install' first"
  cmd_stop >/dev/null 2>&1 || true
  mkdir -p "$STATE/authorized_keys" /run/sshd
  chmod 0755 "$STATE" "$STATE/authorized_keys"
  [ -f "$STATE/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C berth-test-host -f "$STATE/host_ed25519"
  [ -f "$STATE/deploy_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C berth-test-deploy -f "$STATE/deploy_ed25519"
  install -m 0644 "$STATE/deploy_ed25519.pub" "$STATE/authorized_keys/$USER_NAME"
  # The deploy user reaches the engine's socket through its group (and the socket's directory).
  chgrp "$GROUP" "$sock" && chmod g+rw "$sock"
  chmod o+x "$(dirname "$sock")" 2>/dev/null || true
  cat >"$STATE/sshd_config" <<EOF
# Written by .ci/sshd.sh (Berth's tests): one user, keys only.
Port $PORT
ListenAddress 127.0.0.1
HostKey $STATE/host_ed25519
PidFile $STATE/sshd.pid
AuthorizedKeysFile $STATE/authorized_keys/%u
AllowUsers $USER_NAME
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
# What the deploy user's docker CLI talks to (on a VPS: the default /var/run/docker.sock).
SetEnv DOCKER_HOST=$docker_host
MaxStartups 100:30:200
MaxSessions 50
LogLevel VERBOSE
EOF
  /usr/sbin/sshd -t -f "$STATE/sshd_config" || die "sshd_config rejected"
  /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"
  local i
  for i in $(seq 1 50); do running && break; sleep 0.1; done
  running || { tail -20 "$STATE/sshd.log" >&2; die "sshd did not start"; }
  echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$STATE/host_ed25519.pub")" >"$STATE/known_hosts"
  # Fail now, not in a test, if the deploy user cannot reach the engine over SSH.
  ssh -F /dev/null -i "$STATE/deploy_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$STATE/known_hosts" -o StrictHostKeyChecking=yes -p "$PORT" \
    "$USER_NAME@127.0.0.1" docker version --format '{{.Server.Version}}' >"$STATE/check.log" 2>&1 \
    || { cat "$STATE/check.log" >&2; die "deploy@127.0.0.1:$PORT cannot run docker"; }
  log "sshd on 127.0.0.1:$PORT; deploy's engine answers ($(tail -1 "$STATE/check.log"))"
  cat <<EOF
export BERTH_SSHD_PORT=$PORT
export BERTH_SSH_KEY=$STATE/deploy_ed25519
export BERTH_SSH_KNOWN_HOSTS=$STATE/known_hosts
EOF
}

cmd_stop() {
  if running; then kill "$(cat "$STATE/sshd.pid")"; rm -f "$STATE/sshd.pid"; log "stopped"; fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  *) echo "usage: $0 install|start DOCKER_HOST|stop" >&2; exit 2 ;;
esac
