"""Secure by default: what a stack gets without asking, and what it must ask for.

- egress: none unless a service asks; with it, the cloud metadata addresses and the cluster's private
  ranges (where its API server lives) stay refused on Kubernetes.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from berth.components.spec import ConfigError, ServiceSpec, parse_spec

from .support import CONTAINER, NETPOL, PREFIX, named, rec

ROOT = Path(__file__).resolve().parents[2]
APP = "ghcr.io/acme/app:1.0"
METADATA = ("169.254.169.254", "fd00:ec2::254")


# ---------------------------------------------------------------- 1. egress only when asked


def test_a_service_has_no_egress_unless_it_asks():
    assert ServiceSpec(image=APP).egress is False
    services = {"web": {"image": APP, "port": 8000}, "bot": {"image": APP, "egress": True}}
    docker = named(rec("docker", services=services), CONTAINER)
    assert [n["name"] for n in docker["web"].inputs["networksAdvanced"]] == [f"{PREFIX}-internal"]
    assert {n["name"] for n in docker["bot"].inputs["networksAdvanced"]} == {f"{PREFIX}-internal", f"{PREFIX}-edge"}
    k8s = named(rec("kubernetes", services=services), NETPOL)
    assert k8s["web-netpol"].inputs["spec"]["policyTypes"] == ["Ingress"] and "egress" not in k8s["web-netpol"].inputs["spec"]
    assert "Egress" in k8s["bot-netpol"].inputs["spec"]["policyTypes"]


def _refused(rule: dict) -> tuple[list[str], list[str]]:
    """(allowed cidrs, refused cidrs) of one NetworkPolicy egress rule made of ipBlocks only."""
    blocks = [peer["ipBlock"] for peer in rule["to"]]
    assert all(set(peer) == {"ipBlock"} for peer in rule["to"]), rule
    return [b["cidr"] for b in blocks], [c for b in blocks for c in b.get("except", [])]


def _covered(address: str, cidrs: list[str]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(c) for c in cidrs)


def test_egress_on_kubernetes_refuses_metadata_and_the_cluster_private_ranges():
    netpol = named(rec("kubernetes", services={"bot": {"image": APP, "egress": True}}), NETPOL)["bot-netpol"]
    (rule,) = netpol.inputs["spec"]["egress"]
    allowed, refused = _refused(rule)
    assert sorted(allowed) == ["0.0.0.0/0", "::/0"]
    for address in METADATA + ("100.100.100.200",):  # AWS/GCP/Azure, AWS IPv6, Alibaba
        assert _covered(address, refused), address
    # The API server of most clusters (kubeadm, k3s, EKS/GKE private endpoints) sits on a private
    # address; the kubernetes Service's ClusterIP is translated to it before the policy applies.
    for address in ("10.96.0.1", "172.20.0.1", "192.168.1.10", "fd12::1"):
        assert _covered(address, refused), address
    assert not _covered("93.184.215.14", refused) and not _covered("2606:4700::1", refused)


def test_egress_except_is_configurable_and_metadata_stays_refused():
    cfg = {"services": {"bot": {"image": APP, "egress": True}},
           "kubernetes": {"egress_except": ["203.0.113.7/32", "10.0.0.0/8"]}}
    netpol = named(rec("kubernetes", **cfg), NETPOL)["bot-netpol"]
    (rule,) = netpol.inputs["spec"]["egress"]
    _, refused = _refused(rule)
    assert _covered("203.0.113.7", refused) and _covered("10.1.2.3", refused)
    assert not _covered("192.168.1.10", refused)  # the list replaces the default ranges...
    for address in METADATA + ("100.100.100.200",):  # ...but never the metadata addresses
        assert _covered(address, refused), address


@pytest.mark.parametrize("value,fragment", [
    ("10.1.2.3/8", "10.0.0.0/8"),  # host bits set: say the network meant
    ("not-a-cidr", "CIDR"),
    ("0.0.0.0/0", "everything"),
])
def test_egress_except_refuses_bad_cidrs_with_the_key(value, fragment):
    with pytest.raises(ConfigError) as e:
        parse_spec({"target": "kubernetes", "kubernetes": {"egress_except": [value]}})
    text = str(e.value)
    assert "berth:kubernetes.egress_except" in text and fragment in text, text


def _stack_files() -> list[Path]:
    return sorted([*ROOT.glob("Pulumi.*.yaml"), *ROOT.glob("examples/*/Pulumi.*.yaml")])


@pytest.mark.parametrize("path", _stack_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_service_with_egress_says_why(path):
    """Egress is asked for in the stack file with a comment on the same line saying what the
    service calls out to."""
    lines = path.read_text().splitlines()
    services = ((yaml.safe_load(path.read_text()) or {}).get("config") or {}).get("berth:services") or {}
    asking = [n for n, s in services.items() if s.get("egress") is True]
    marked = [i for i, line in enumerate(lines) if re.match(r"^\s+egress:\s*true\b", line)]
    assert len(marked) == len(asking), "egress: true written in another form: keep it on its own line"
    for i in marked:
        assert re.search(r"#\s*\S", lines[i]), f"{path.name}:{i + 1}: egress: true without a comment saying why"
