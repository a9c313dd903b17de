#!/usr/bin/env python3
"""Turn `containerd config default` (stdin) into the test cluster's containerd config (stdout).

Usage: containerd_config.py CONTAINERD_DIR STATE_DIR PAUSE_IMAGE SNAPSHOTTER
"""
import re, sys
cd, state, pause, snap = sys.argv[1:5]
text = sys.stdin.read()
def sub(pattern, repl, count=1):
    global text
    new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
    if n == 0:
        sys.exit(f"containerd config: pattern not found: {pattern}")
    text = new
sub(r'^root = ".*"$', f'root = "{cd}/root"')
sub(r'^state = ".*"$', f'state = "{cd}/state"')
sub(r'^(\[grpc\]\n  address = )".*"$', rf'\1"{cd}/containerd.sock"')
sub(r'^(\s*)restrict_oom_score_adj = false', r'\1restrict_oom_score_adj = true')      # no negative oom_score_adj here
sub(r'^(\s*)sandbox_image = ".*"', rf'\1sandbox_image = "{pause}"')                   # local pause image
sub(r'^(\s*)bin_dir = ".*"', r'\1bin_dir = "/usr/lib/cni"')                          # Debian's CNI plugins
sub(r'^(\s*)conf_dir = ".*"', rf'\1conf_dir = "{state}/cni/net.d"')                  # ours only, not Podman's
sub(r'^(\s*)netns_mounts_under_state_dir = false', r'\1netns_mounts_under_state_dir = true')
sub(r'^(\s*)config_path = ""', rf'\1config_path = "{cd}/certs.d"')
sub(r'^(\s*path = )"/opt/containerd"', rf'\1"{cd}/opt"')
sub(r'^(\s*)snapshotter = "overlayfs"', rf'\1snapshotter = "{snap}"')
print(text, end="")
