"""Names and references the targets take as they are: DNS names and labels, addresses and ranges,
image references, paths, environment variable names and the resource name prefix. A bad one is
refused with the rule it breaks and, where one can be derived, the value to write instead.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from .fields import NAMESPACE

#: Names of databases, caches, brokers, graphs and services: a DNS label short enough for the
#: suffixes Berth adds (``-replica``, ``-exporter``, ``-backup-<tier>``).
_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PG_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MONGO_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")
# Docker's reference grammar (distribution/reference): lowercase repository path, optional
# registry host[:port], tag, digest.
_IMAGE_RE = re.compile(
    r"^(?:(?P<registry>[A-Za-z0-9.-]+(?::\d+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@sha256:[a-f0-9]{64})?$"
)


def _host(v: object) -> str:
    """A bare DNS host name (or IP address): what an Ingress host and a certificate name take."""
    if not isinstance(v, str):
        raise ValueError("must be a host name such as shop.example.com")
    text = v.strip()
    if "://" in text or "/" in text:
        host = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", text).split("/")[0].split("@")[-1].split(":")[0]
        raise ValueError(f"is a URL; give the host name only: {host.lower()!r}")
    if ":" in text and not _is_ip(text):
        raise ValueError(f"carries a port; give {text.split(':')[0]!r} and set {NAMESPACE}:proxy.https_port")
    if _is_ip(text):
        return text
    text = text.lower()
    labels = text.split(".")
    if len(text) > 253 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        raise ValueError("must be a DNS name: labels of a-z, 0-9 and '-', at most 63 characters each, "
                         "no wildcard, no trailing dot")
    return text


def _cidr(v: object) -> object:
    """An address range as a NetworkPolicy ipBlock takes it: ``10.0.0.0/8``; a bare address is ``/32``
    (``/128``)."""
    if not isinstance(v, str):
        return v
    try:
        net = ipaddress.ip_network(v.strip(), strict=False)
    except ValueError:
        raise ValueError("must be a CIDR such as 10.0.0.0/8 or 203.0.113.7/32") from None
    if ipaddress.ip_address(v.strip().split("/")[0]) != net.network_address:
        raise ValueError(f"has host bits set; the network is {str(net)!r}")
    if net.prefixlen == 0:
        raise ValueError("would refuse everything; to give a service no egress, set its egress to false")
    return str(net)


#: Refused to services with egress on Kubernetes by default (``berth:kubernetes.egress_except``).
DEFAULT_EGRESS_EXCEPT = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _dns_label(v: object) -> object:
    if isinstance(v, str) and not _DNS_LABEL_RE.match(v):
        raise ValueError("must be a DNS label (RFC 1123): lowercase letters, digits and '-', start and end with a "
                         "letter or digit, at most 63 characters")
    return v


def _dns_subdomain(v: object) -> object:
    if isinstance(v, str) and (len(v) > 253 or not all(_DNS_LABEL_RE.match(p) for p in v.split("."))):
        raise ValueError("must be a DNS subdomain (RFC 1123): lowercase letters, digits, '-' and '.'")
    return v


def _image(v: object) -> object:
    if isinstance(v, str):
        m = _IMAGE_RE.match(v)
        if not m:
            hint = f"; Docker references are lowercase: {v.lower()!r}" if _IMAGE_RE.match(v.lower()) else ""
            raise ValueError("is not a valid image reference (registry/repository:tag or @sha256:digest)" + hint)
    return v


def _http_path(v: object) -> object:
    if isinstance(v, str) and (not v.startswith("/") or re.search(r"[\s?#]", v)):
        raise ValueError("must be a URL path starting with / (no spaces, query or fragment), e.g. /health")
    return v


def _abs_path(v: object) -> object:
    if isinstance(v, str) and (not v.startswith("/") or "/../" in f"{v}/" or re.search(r"\s", v)):
        raise ValueError("must be an absolute path inside the container, e.g. /tmp")
    return v


def _matching(pattern: str, rule: str):
    """A validator refusing strings that do not match ``pattern``, with a readable ``rule``."""
    compiled = re.compile(pattern)

    def check(v: object) -> object:
        if isinstance(v, str) and not compiled.match(v):
            raise ValueError(rule)
        return v

    return AfterValidator(check)


def _prefix(v: object) -> object:
    if isinstance(v, str) and not _DNS_LABEL_RE.match(v):
        fixed = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", v.lower())).strip("-")[:63].strip("-") or "app"
        raise ValueError("must be lowercase letters, digits and '-' (an RFC 1123 label, at most 63 characters): "
                         f"Docker image names and Kubernetes namespaces accept nothing else; e.g. {fixed!r}")
    return v


def _env_name(v: object) -> object:
    if isinstance(v, str) and not _ENV_RE.match(v):
        raise ValueError(f"{v!r} is not a valid environment variable name (letters, digits, _; not starting "
                         "with a digit)")
    return v


#: A stack output's name (a secret's ``export``, a ``from_stack`` reference's ``output``).
OUTPUT_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

Image = Annotated[str, AfterValidator(_image)]
HttpPath = Annotated[str, AfterValidator(_http_path)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]
EnvName = Annotated[str, AfterValidator(_env_name)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
Cidr = Annotated[str, BeforeValidator(_cidr)]
