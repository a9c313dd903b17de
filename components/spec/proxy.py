"""The edge's model (``berth:proxy``): routes, rate limits and where the certificate comes from."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Optional

from pydantic import BeforeValidator, field_validator, model_validator

from .fields import DOCKER_ONLY, KUBERNETES_ONLY, _field, _Model
from .names import DnsSubdomain, HttpPath, Image, _is_ip
from .shared import Resources


class RateLimit(_Model):
    """Requests per second per client address, with a burst allowance."""

    rate: Annotated[int, BeforeValidator(lambda v: _rate(v))] = _field(
        ..., "Requests per second per client IP.", unit="requests/second (10, 10r/s, 600r/m)", ge=1)
    burst: Optional[int] = _field(
        None, "Requests a client may send at once above the rate before it gets 429 (Docker) / 503 (Kubernetes); "
        "defaults to the rate (one second's worth). Kubernetes (ingress-nginx) allows only whole multiples of the "
        "rate, and at least the rate: another value is refused there rather than rounded.",
        unit="requests", ge=0)

    @property
    def allowed_burst(self) -> int:
        """The burst both targets allow: as given, or the rate."""
        return self.rate if self.burst is None else self.burst


def _rate(v: object) -> object:
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:r?/\s*([sm]))?\s*", v)
        if not m:
            raise ValueError("must be requests per second such as 10 or 10r/s")
        n = int(m.group(1))
        if m.group(2) == "m":
            if n % 60:
                raise ValueError(f"{n}r/m is not a whole number per second; Berth limits per second (e.g. {max(1, n // 60)}r/s)")
            n //= 60
        return n
    return v


class Route(_Model):
    """A path routed by the proxy to a service."""

    path: HttpPath = _field(..., "Path prefix, e.g. / or /api/.")
    service: str = _field(..., "Service (with a port) that serves the path.")
    rate_limit: Optional[RateLimit] = _field(None, "Per-client rate limit for this path.")
    access_log: bool = _field(True, "Log requests to this path (nginx).", targets=DOCKER_ONLY, wrong_target="warn")
    cache_static: bool = _field(False, "Add 1-year cache headers (static assets; nginx).", targets=DOCKER_ONLY,
                                wrong_target="warn")


class TlsMode(str, Enum):
    SELF_SIGNED = "self-signed"
    FILES = "files"
    SECRET = "secret"
    ACME = "acme"


class TlsSpec(_Model):
    """Where the proxy's certificate comes from (see the README's TLS table)."""

    mode: TlsMode = _field(TlsMode.SELF_SIGNED, "self-signed (generated), secret (from berth:secrets), files "
                           "(read where Pulumi runs) or acme (cert-manager, Kubernetes).")
    cert_secret: str = _field("tls-cert", "Mode secret: name in berth:secrets holding the PEM certificate chain.")
    key_secret: str = _field("tls-key", "Mode secret: name in berth:secrets holding the PEM private key.")
    cert_file: Optional[str] = _field(None, "Mode files: PEM certificate chain path on the machine running Pulumi.")
    key_file: Optional[str] = _field(None, "Mode files: PEM key path on the machine running Pulumi.")
    cluster_issuer: str = _field("letsencrypt-prod", "Mode acme: cert-manager ClusterIssuer.",
                                 targets=KUBERNETES_ONLY)
    email: Optional[str] = _field(None, "Mode acme: contact address (informational; the ClusterIssuer has its own).",
                                  targets=KUBERNETES_ONLY)

    @model_validator(mode="after")
    def _mode_fields(self) -> "TlsSpec":
        if self.mode == TlsMode.FILES and not (self.cert_file and self.key_file):
            raise ValueError("mode `files` needs cert_file and key_file")
        owners = {"cert_file": TlsMode.FILES, "key_file": TlsMode.FILES, "cert_secret": TlsMode.SECRET,
                  "key_secret": TlsMode.SECRET, "cluster_issuer": TlsMode.ACME, "email": TlsMode.ACME}
        for field, mode in owners.items():
            if field in self.model_fields_set and self.mode != mode:
                raise ValueError(f"`{field}` belongs to mode {mode.value}, but mode is {self.mode.value}; "
                                 f"remove {field} or set mode: {mode.value}")
        return self


class ProxySpec(_Model):
    """nginx on Docker (the only published container), an Ingress on Kubernetes."""

    routes: list[Route] = _field(..., "Paths routed to services.", min_length=1)
    tls: TlsSpec = _field(TlsSpec(), "HTTPS certificate.")
    image: Image = _field("nginxinc/nginx-unprivileged:1.27.3", "nginx image (unprivileged).", targets=DOCKER_ONLY)
    http_port: int = _field(80, "Host port for HTTP (redirects to HTTPS).", ge=1, le=65535, targets=DOCKER_ONLY)
    https_port: int = _field(443, "Host port for HTTPS.", ge=1, le=65535, targets=DOCKER_ONLY)
    bind_address: str = _field("0.0.0.0", "Host address the proxy publishes on.", targets=DOCKER_ONLY)
    resolver: Optional[str] = _field(
        "127.0.0.11",
        "DNS server nginx re-resolves upstreams with (Docker's embedded DNS); null resolves once at start "
        "(nginx < 1.27.3).",
        targets=DOCKER_ONLY,
    )
    ingress_class: DnsSubdomain = _field("nginx", "IngressClass of the Ingresses.", targets=KUBERNETES_ONLY)
    health_path: HttpPath = _field("/health", "The proxy's own unlogged health endpoint.", targets=DOCKER_ONLY)
    resources: Resources = _field(Resources(cpu="100m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi"),
                                  "CPU/memory of nginx.", targets=DOCKER_ONLY)

    @field_validator("bind_address")
    @classmethod
    def _ip(cls, v: str) -> str:
        if not _is_ip(v):
            raise ValueError("must be an IP address of the host, e.g. 0.0.0.0 or 127.0.0.1")
        return v

    @model_validator(mode="after")
    def _ports(self) -> "ProxySpec":
        if self.http_port == self.https_port:
            raise ValueError(f"http_port and https_port are both {self.http_port}; give them different ports")
        return self
