"""Proxy component: the stack's edge. nginx on Docker (the only published container), an Ingress on
Kubernetes (ssl-redirect, rate-limit annotations). Same routes on both.

TLS per mode (``berth:proxy.tls.mode``), the same on both targets except ``acme``:

=============  ==========================================  ============================================
mode           Docker (nginx)                              Kubernetes (Ingress)
=============  ==========================================  ============================================
self-signed    pulumi-tls key + certificate, written       the same pair in a ``kubernetes.io/tls`` Secret
secret         ``berth:secrets`` (config secrets), written  the same, in the Secret
files          PEM files read where Pulumi runs, written   the same, in the Secret
acme           refused by the spec                         cert-manager fills the Secret (ClusterIssuer)
=============  ==========================================  ============================================

"Written": into a read-only volume of nginx's, by its one-shot files container (targets/docker.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence

import pulumi

from .ir import File, Kind, Later, Port, Probe, Publish, Role, Workload
from .renderers.nginx import (
    CERT_PATH,
    HTTP_PORT,
    HTTPS_PORT,
    KEY_PATH,
    ProxyRoute,
    Upstream,
    render_nginx_conf,
    security_headers,
)
from .spec import ConfigError, ProxySpec, TlsMode

NGINX_UID = 101  # the nginx-unprivileged image's user
NGINX_CONF = "/etc/nginx/berth/nginx.conf"


@dataclass(frozen=True)
class Backend:
    """A routable service: its DNS name, port and replica count."""

    host: str
    port: int
    replicas: int = 1


def proxy_routes(spec: ProxySpec, extra: Sequence[ProxyRoute] = ()) -> list[ProxyRoute]:
    routes = [
        ProxyRoute(r.path, r.service, r.rate_limit.rate if r.rate_limit else None,
                   r.rate_limit.allowed_burst if r.rate_limit else 0, r.access_log, r.cache_static)
        for r in spec.routes
    ]
    return routes + list(extra)


def nginx_conf(spec: ProxySpec, domain: str, backends: Mapping[str, Backend], extra: Sequence[ProxyRoute] = ()) -> str:
    routes = proxy_routes(spec, extra)
    used = sorted({r.upstream for r in routes})
    upstreams = [Upstream(u, backends[u].host, backends[u].port, backends[u].replicas) for u in used]
    return render_nginx_conf(domain, upstreams, routes, resolver=spec.resolver, health_path=spec.health_path,
                             https_port=spec.https_port)


def proxy_workload(
    spec: ProxySpec, domain: str, backends: Mapping[str, Backend], cert_pem: pulumi.Input[str],
    key_pem: pulumi.Input[str], extra: Sequence[ProxyRoute] = (),
) -> Workload:
    """The nginx container (pure). Publishes 80/443 on the host onto unprivileged 8080/8443."""
    return Workload(
        name="proxy",
        role=Role.PROXY,
        image=spec.image,
        kind=Kind.SERVICE,
        # The generated nginx.conf has a directory of its own (a read-only volume on Docker, which
        # must not hide the image's /etc/nginx/mime.types).
        command=("nginx", "-c", NGINX_CONF, "-g", "daemon off;"),
        ports=(Port("http", HTTP_PORT), Port("https", HTTPS_PORT)),
        publish=(
            Publish(spec.http_port, HTTP_PORT, spec.bind_address),
            Publish(spec.https_port, HTTPS_PORT, spec.bind_address),
        ),
        files=(
            File("nginx-conf", NGINX_CONF, nginx_conf(spec, domain, backends, extra)),
            File("tls-cert", CERT_PATH, cert_pem),
            # nginx's own (uid 101), readable by it alone (Docker: uploaded, never in an environment).
            File("tls-key", KEY_PATH, key_pem, secret=True, mode=0o400),
        ),
        tmpfs=("/tmp",),
        health=Probe(path=spec.health_path, port=HTTP_PORT, interval=10, timeout=3, retries=3, start_period=5),
        resources=spec.resources,
        user=NGINX_UID,
        group=NGINX_UID,
        egress=True,
    )


SECURITY_HEADERS = "security-headers"
CUSTOM_HEADERS = "nginx.ingress.kubernetes.io/custom-headers"


def security_headers_manifest(namespace: str, stack: str) -> dict[str, Any]:
    """The ConfigMap of response headers every Ingress names in ``custom-headers``: the same headers
    as the Docker proxy's nginx.conf. ingress-nginx sends only headers its controller ConfigMap lists
    in ``global-allowed-response-headers`` and answers 503 on every path of an Ingress naming another
    (README: Kubernetes and the ingress controller)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": SECURITY_HEADERS,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": stack, "app.kubernetes.io/managed-by": "berth",
                       "app.kubernetes.io/component": "proxy"},
        },
        "data": security_headers(),
    }


def tls_secret_name(domain: str) -> str:
    """The Secret the Ingresses read their certificate from (cert-manager writes it in mode acme)."""
    return "tls-" + domain.replace(".", "-")


def tls_secret_manifest(namespace: str, stack: str, domain: str, cert_pem: pulumi.Input[str],
                        key_pem: pulumi.Input[str]) -> dict[str, Any]:
    """The Ingress certificate as a ``kubernetes.io/tls`` Secret (modes self-signed, secret, files)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": tls_secret_name(domain),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": stack, "app.kubernetes.io/managed-by": "berth",
                       "app.kubernetes.io/component": "proxy"},
        },
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": cert_pem, "tls.key": key_pem},
    }


def ingress_manifests(
    namespace: str, stack: str, spec: ProxySpec, domain: str, backends: Mapping[str, Backend],
    extra: Sequence[ProxyRoute] = (),
) -> list[dict[str, Any]]:
    """One Ingress per distinct rate limit and source range (ingress-nginx applies both per
    Ingress), same host + TLS."""
    groups: dict[tuple[Optional[int], int, tuple[str, ...]], list[ProxyRoute]] = {}
    for r in proxy_routes(spec, extra):
        groups.setdefault((r.rate, r.burst, r.allow_from), []).append(r)
    out = []
    for (rate, burst, allow_from), routes in sorted(groups.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1], kv[0][2])):
        name = "web" if rate is None else f"web-rl-{rate}-{burst}"
        if allow_from:
            # An admin UI limited to some addresses: its own Ingress, named after what it routes to.
            name += "-" + "-".join(sorted({r.upstream for r in routes}))
        annotations = {
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/proxy-body-size": "10m",
            # The Docker proxy's security headers, from a ConfigMap of this namespace (the only one
            # ingress-nginx reads for it). Not a configuration-snippet: ingress-nginx >= 1.9 refuses
            # snippet annotations by default (they are a privilege escalation).
            CUSTOM_HEADERS: f"{namespace}/{SECURITY_HEADERS}",
        }
        if spec.tls.mode == TlsMode.ACME and not out:
            # One Ingress asks cert-manager for the certificate; the others use the same Secret
            # (several owners of one Certificate conflict).
            annotations["cert-manager.io/cluster-issuer"] = spec.tls.cluster_issuer
        if allow_from:
            annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] = ",".join(allow_from)
        if rate:
            annotations["nginx.ingress.kubernetes.io/limit-rps"] = str(rate)
            # ingress-nginx expresses a burst as a multiple of the rate (limit_req burst = rate x this); the
            # spec refuses on Kubernetes a burst it cannot express (spec/checks.py), so both targets allow
            # the same burst. A multiplier below 1 would be read as its default, 5.
            annotations["nginx.ingress.kubernetes.io/limit-burst-multiplier"] = str(max(1, burst // rate))
        paths = [
            {
                "path": r.path,
                "pathType": "Prefix",
                "backend": {"service": {"name": backends[r.upstream].host, "port": {"number": backends[r.upstream].port}}},
            }
            for r in sorted(routes, key=lambda r: (-len(r.path), r.path))
        ]
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/part-of": stack, "app.kubernetes.io/managed-by": "berth",
                               "app.kubernetes.io/component": "proxy"},
                    "annotations": annotations,
                },
                "spec": {
                    "ingressClassName": spec.ingress_class,
                    "tls": [{"hosts": [domain], "secretName": tls_secret_name(domain)}],
                    "rules": [{"host": domain, "http": {"paths": paths}}],
                },
            }
        )
    return out


def upstream_revision(workloads: Sequence[Workload]) -> pulumi.Output[str]:
    """A hash of what the routed containers are declared as. On Docker, nginx resolves upstream
    names when it starts, and a replaced app container comes back with a new address; carrying
    this hash in a proxy label makes the proxy restart with its upstreams (a few seconds of edge
    downtime per app deploy, instead of 502/504s until someone restarts it). With nginx >= 1.27.3
    and ``resolver`` set, upstreams are also re-resolved while running."""
    plain = [
        {"name": w.name, "image": w.image, "entrypoint": w.entrypoint, "command": w.command, "env": w.env,
         "ports": [p.port for p in w.ports], "replicas": w.replicas, "secret_env": sorted(w.secret_env)}
        for w in sorted(workloads, key=lambda w: w.name)
    ]
    secrets = [w.secret_env[k].value for w in sorted(workloads, key=lambda w: w.name) for k in sorted(w.secret_env)]

    def digest(values: list) -> str:
        blob = json.dumps(plain, sort_keys=True, default=str) + "\0" + "\0".join(str(v) for v in values)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # The hash reveals nothing about the secrets: keep it readable in diffs.
    return pulumi.Output.unsecret(pulumi.Output.all(*secrets).apply(digest))


@dataclass(frozen=True)
class ProxyPlan:
    """The edge's share of the plan: what it routes to and, on Docker, the nginx workload with the
    certificate and key to come (on Kubernetes the Ingresses need no workload)."""

    backends: Mapping[str, Backend]
    extra_routes: tuple[ProxyRoute, ...] = ()
    workload: Optional[Workload] = None
    cert: Optional[Later] = None
    key: Optional[Later] = None


def plan_proxy(spec: ProxySpec, domain: str, target: str, backends: Mapping[str, Backend],
               extra_routes: Sequence[ProxyRoute] = (), upstreams: Sequence[Workload] = ()) -> ProxyPlan:
    """The nginx workload on Docker, labelled with its upstreams' revision (pure)."""
    if target == "kubernetes":
        return ProxyPlan(dict(backends), tuple(extra_routes))
    cert, key = Later("proxy-tls-cert"), Later("proxy-tls-key")
    w = proxy_workload(spec, domain, backends, cert.output, key.output, extra_routes)
    if upstreams:
        w = replace(w, labels={**w.labels, "berth.upstream-revision": upstream_revision(upstreams)})
    return ProxyPlan(dict(backends), tuple(extra_routes), w, cert, key)


class Proxy(pulumi.ComponentResource):
    """The edge: nginx with generated config and TLS (Docker) or Ingresses (Kubernetes).
    Output: ``url``."""

    def __init__(self, name: str, spec: ProxySpec, domain: str, target, backends: Mapping[str, Backend],
                 depends_on: Sequence[pulumi.Resource] = (), extra_routes: Sequence[ProxyRoute] = (),
                 upstreams: Sequence[Workload] = (), opts: Optional[pulumi.ResourceOptions] = None,
                 secrets: Optional[Mapping[str, str]] = None, plan: Optional[ProxyPlan] = None):
        super().__init__("berth:index:Proxy", name, None, opts)
        plan = plan or plan_proxy(spec, domain, target.name, backends, extra_routes, upstreams)
        if target.name == "kubernetes":
            deps = [target.namespace, *depends_on]
            headers = security_headers_manifest(target.ctx.namespace, target.ctx.stack)
            deps.append(target.create(headers, "security-headers", self, [target.namespace]))
            if spec.tls.mode != TlsMode.ACME:
                # Without this Secret the Ingress would name a certificate nothing creates (the
                # controller then serves its own fake certificate).
                cert, key = self._tls(spec, domain, secrets or {})
                m = tls_secret_manifest(target.ctx.namespace, target.ctx.stack, domain, cert, key)
                deps.append(target.create(m, "tls-secret", self, [target.namespace]))
            for m in ingress_manifests(target.ctx.namespace, target.ctx.stack, spec, domain, plan.backends,
                                       plan.extra_routes):
                target.create(m, f"{m['metadata']['name']}-ingress", self, deps)
        else:
            assert plan.workload and plan.cert and plan.key, "a Docker proxy is planned with its workload"
            cert, key = self._tls(spec, domain, secrets or {})
            plan.cert.resolve(cert)
            plan.key.resolve(key)
            target.deploy(plan.workload, parent=self, depends_on=list(depends_on))
        port = "" if spec.https_port == 443 else f":{spec.https_port}"
        self.url = pulumi.Output.from_input(f"https://{domain}{port}/")
        self.register_outputs({"url": self.url})

    def _tls(self, spec: ProxySpec, domain: str, secrets: Mapping[str, str]) -> tuple[pulumi.Input[str], pulumi.Input[str]]:
        """The certificate chain and key (secret) of a non-acme mode."""
        if spec.tls.mode == TlsMode.SECRET:
            # Config secrets: in the stack file as `secure:` ciphertexts, so a CI runner previews
            # with the stack's key and no file on disk. The spec checked both names exist.
            return secrets[spec.tls.cert_secret], pulumi.Output.secret(secrets[spec.tls.key_secret])
        if spec.tls.mode == TlsMode.FILES:
            try:  # checked by the spec before any resource exists; read here, where they are used
                with open(spec.tls.cert_file) as c, open(spec.tls.key_file) as k:  # type: ignore[arg-type]
                    return c.read(), pulumi.Output.secret(k.read())
            except OSError as exc:
                raise ConfigError([f"berth:proxy.tls: cannot read {exc.filename}: {exc.strerror}; fix the path"]) from None
        import pulumi_tls as tls

        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey("proxy-tls-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        cert = tls.SelfSignedCert(
            "proxy-tls-cert",
            private_key_pem=key.private_key_pem,
            subject={"common_name": domain, "organization": "Berth self-signed"},
            dns_names=[domain, "localhost"],
            ip_addresses=["127.0.0.1"],
            validity_period_hours=24 * 365,
            early_renewal_hours=24 * 30,
            allowed_uses=["key_encipherment", "digital_signature", "server_auth"],
            opts=child,
        )
        return cert.cert_pem, key.private_key_pem
