#!/usr/bin/env bash
# SSH access to ssh:// Docker hosts and a kubeconfig, from the workflow's secrets. Nothing is
# written when a secret is empty; a key without known_hosts is an error, never a blind trust.
set -euo pipefail

if [ -n "${SSH_PRIVATE_KEY:-}" ]; then
  if [ -z "${SSH_KNOWN_HOSTS:-}" ]; then
    echo "::error title=SSH_KNOWN_HOSTS is not set::The secret SSH_PRIVATE_KEY is set but SSH_KNOWN_HOSTS is empty. Add the Docker hosts' public keys as the secret SSH_KNOWN_HOSTS (on each host: ssh-keyscan -t ed25519 localhost, with the host name in place of localhost). Host keys are never accepted without checking."
    exit 1
  fi
  dir="$HOME/.ssh"
  install -d -m 0700 "$dir"
  tmp=$(mktemp -d "$dir/.berth.XXXXXX")
  umask 077
  printf '%s\n' "$SSH_PRIVATE_KEY" >"$tmp/key"
  printf '%s\n' "$SSH_KNOWN_HOSTS" >"$tmp/known_hosts"
  {
    # Host-specific lines first: ssh takes the first value it reads for each option.
    if [ -n "${SSH_CONFIG:-}" ]; then printf '%s\n\n' "$SSH_CONFIG"; fi
    printf 'Host *\n'
    printf '  IdentityFile %s\n  IdentitiesOnly yes\n' "$dir/berth_deploy_key"
    printf '  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n' "$dir/berth_known_hosts"
    printf '  BatchMode yes\n  ConnectTimeout 20\n  ServerAliveInterval 30\n'
  } >"$tmp/config"
  # Jobs of one runner may share a home: each file is replaced whole, never half-written.
  mv -f "$tmp/key" "$dir/berth_deploy_key"
  mv -f "$tmp/known_hosts" "$dir/berth_known_hosts"
  mv -f "$tmp/config" "$dir/config"
  rmdir "$tmp"
  echo "SSH: key and $(grep -cv '^\s*\(#\|$\)' "$dir/berth_known_hosts") known host key(s) installed"
  # OpenSSH reads ~/.ssh from the passwd entry's home, not from $HOME. Where the two differ (a
  # self-hosted runner, a container that sets HOME), the ssh on PATH (which the Docker provider and
  # berth run) is given this config.
  home=$(getent passwd "$(id -u)" | cut -d: -f6 || true)
  if [ "$home" != "$HOME" ]; then
    bin="$RUNNER_TEMP/berth-ssh"
    install -d -m 0700 "$bin"
    printf '#!/bin/sh\nexec %s -F %s "$@"\n' "$(command -v ssh)" "$dir/config" >"$bin/ssh"
    chmod 0700 "$bin/ssh"
    echo "$bin" >>"$GITHUB_PATH"
    echo "SSH: HOME is $HOME, not $home (the home ssh reads): the ssh on PATH reads $dir/config"
  fi
fi

if [ -n "${KUBECONFIG_DATA:-}" ]; then
  umask 077
  printf '%s\n' "$KUBECONFIG_DATA" >"$RUNNER_TEMP/kubeconfig"
  echo "KUBECONFIG=$RUNNER_TEMP/kubeconfig" >>"$GITHUB_ENV"
  echo "Kubernetes: kubeconfig installed (contexts: $(grep -c '^- context:' "$RUNNER_TEMP/kubeconfig" || true))"
fi
