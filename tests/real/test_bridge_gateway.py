"""A container keeps reaching its network's gateway (container DNS) when other containers come and go.

A Linux bridge whose address was never set takes the lowest MAC of its ports: a container joining with
a lower MAC changes it, and every container that had talked to the gateway sends to the old address
until its ARP entry is revalidated (15-45 s and more): on Podman that is container DNS (aardvark-dns
answers on the gateway). Seen in CI as "Temporary failure in name resolution" for 30 s and a POST that
timed out after its database container was replaced. Netavark >= 1.9 and Docker Engine fix each
bridge's address; Debian 12's netavark 1.4 does not, so CI does (.ci/bridge-mac.sh). Here a port with
the lowest possible MAC joins the bridge of a network whose container has just used its gateway: the
bridge must keep its MAC, and that container's very next DNS query, one UDP attempt, be answered.
(Run as root on the engines' machine: it adds that port itself.)

Prerequisites (CI's .ci/run does them): .ci/bridge-mac.sh start, Podman (DOCKER_HOST) and Docker Engine
(BERTH_DOCKERD_HOST) started, the test images built.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

pytestmark = pytest.mark.real_docker

IMAGE = "localhost/berth-testapp:2"  # has python3 and sleep
LOWEST_MAC = "00:00:00:00:00:01"  # below any MAC a veth gets at random

# One DNS query for NAME to the container's first nameserver (the gateway on Podman's user networks,
# where aardvark-dns answers; Docker's embedded server on 127.0.0.11, which needs no gateway), a single
# UDP attempt of 3 s (a stale gateway MAC loses it; glibc would only retry after 5 s).
QUERY = r"""
import random, socket, struct, sys
name = sys.argv[1]
ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
qid = random.randint(0, 65535)
pkt = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + b''.join(
    bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0' + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(pkt, (ns, 53))
try:
    data = s.recv(4096)
except socket.timeout:
    print('no answer from %s within 3 s' % ns); sys.exit(1)
answers = struct.unpack('>H', data[6:8])[0]
print('%s answered rcode=%d answers=%d' % (ns, data[3] & 15, answers))
sys.exit(0 if answers else 2)
"""


def _bridge_of(gateway: str) -> str:
    """The host interface that holds the network's gateway address: its bridge."""
    for link in json.loads(subprocess.run(["ip", "-j", "-4", "addr"], check=True, capture_output=True, text=True).stdout):
        if any(a.get("local") == gateway for a in link.get("addr_info", [])):
            return link["ifname"]
    raise AssertionError(f"no interface holds the gateway {gateway}")


def _mac(ifname: str) -> str:
    return Path(f"/sys/class/net/{ifname}/address").read_text().strip()


def _hosts() -> list:
    return [pytest.param(os.environ.get("DOCKER_HOST"), id="podman"),
            pytest.param(os.environ.get("BERTH_DOCKERD_HOST"), id="dockerd")]


@pytest.mark.parametrize("host", _hosts())
def test_dns_through_the_gateway_survives_a_lower_mac_joining(host):
    assert host, "DOCKER_HOST / BERTH_DOCKERD_HOST unset: start the engines as .ci/run does"
    client = docker.DockerClient(base_url=host, timeout=120)
    suffix = uuid.uuid4().hex[:8]
    net = client.networks.create(f"berth-gw-{suffix}", driver="bridge", labels={"berth.test": "bridge-gateway"})
    made = []
    veth = f"bgw{suffix}"
    try:
        def run(name: str):
            c = client.containers.run(IMAGE, ["sleep", "300"], entrypoint=[], name=f"berth-gw-{name}-{suffix}",
                                      network=net.name, detach=True)
            made.append(c)
            return c

        def ask(c, name: str) -> tuple[int, str]:
            rc, out = c.exec_run(["python3", "-c", QUERY, name])
            return rc, out.decode(errors="replace").strip()

        a = run("a")
        run("b")
        rc, out = ask(a, f"berth-gw-b-{suffix}")  # a learns the gateway's MAC
        assert rc == 0, out
        net.reload()
        bridge = _bridge_of(net.attrs["IPAM"]["Config"][0]["Gateway"])
        before = _mac(bridge)
        # A port with the lowest MAC joins the bridge (what a container's veth does, by chance, when it
        # is lower than every other): an unpinned bridge takes its address.
        subprocess.run(["ip", "link", "add", veth, "address", LOWEST_MAC, "type", "veth", "peer", "name", veth + "p"],
                       check=True)
        subprocess.run(["ip", "link", "set", veth, "master", bridge, "up"], check=True)
        assert _mac(bridge) == before, f"{bridge} changed its MAC {before} -> {_mac(bridge)}: run .ci/bridge-mac.sh start"
        rc, out = ask(a, f"berth-gw-b-{suffix}")
        assert rc == 0, f"after a port with MAC {LOWEST_MAC} joined {bridge}: {out}"
    finally:
        for c in made:
            try:
                c.remove(force=True)
            except docker.errors.APIError:
                pass
        subprocess.run(["ip", "link", "del", veth], capture_output=True)
        net.remove()
        client.close()
