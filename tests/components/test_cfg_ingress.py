"""Table tests of the Kubernetes Ingresses (components/proxy.py ``ingress_manifests``, pure)."""

from __future__ import annotations

import pytest

from berth.components.proxy import Backend, ingress_manifests
from berth.components.renderers.nginx import ProxyRoute
from berth.components.spec import ProxySpec

DOMAIN = "easyflow.example.com"
BACKENDS = {"api": Backend("api", 8000, 3), "web": Backend("web", 3000), "grafana": Backend("grafana", 3000)}
SEED_B_ROUTES = [
    {"path": "/api/webhooks/", "service": "api", "rate_limit": {"rate": 10, "burst": 100}},
    {"path": "/api/", "service": "api", "rate_limit": {"rate": 10, "burst": 20}},
    {"path": "/", "service": "web"},
]


def ingresses(routes=SEED_B_ROUTES, extra=(), **spec):
    s = ProxySpec.model_validate({"routes": routes, "tls": {"mode": "acme"}, **spec})
    return {m["metadata"]["name"]: m for m in ingress_manifests("ns", "berth-prod", s, DOMAIN, BACKENDS, extra)}


def ann(m):
    return m["metadata"]["annotations"]


@pytest.mark.parametrize("issuer", ["letsencrypt-prod", "letsencrypt-staging"])
def test_cert_manager_cluster_issuer(issuer):
    """One Ingress asks cert-manager for the certificate (several owners of one Certificate
    conflict); every Ingress serves the same TLS Secret."""
    ms = list(ingresses(tls={"mode": "acme", "cluster_issuer": issuer}).values())
    issuers = [ann(m).get("cert-manager.io/cluster-issuer") for m in ms]
    assert issuers.count(issuer) == 1 and issuers.count(None) == len(ms) - 1
    assert len({m["spec"]["tls"][0]["secretName"] for m in ms}) == 1


@pytest.mark.parametrize("mode", ["self-signed", "files"])
def test_no_cert_manager_without_acme(mode):
    tls = {"mode": mode, **({"cert_file": "c.pem", "key_file": "k.pem"} if mode == "files" else {})}
    for m in ingresses(tls=tls).values():
        assert "cert-manager.io/cluster-issuer" not in ann(m)


def test_ssl_redirect_on_every_ingress():
    for m in ingresses().values():
        assert ann(m)["nginx.ingress.kubernetes.io/ssl-redirect"] == "true"
        assert ann(m)["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"


@pytest.mark.parametrize(
    "rate,burst,rps,multiplier",
    [
        (10, 20, "10", "2"),    # seed B /api/
        (10, 100, "10", "10"),  # seed B webhooks
        (10, 10, "10", "1"),    # the rate: multiplier 1, ingress-nginx's smallest (and the default burst)
        (3, 9, "3", "3"),
        (50, 50, "50", "1"),
        # Other bursts (15 at 10/s, 0) are refused on Kubernetes by the spec: test_spec_errors.
    ],
)
def test_limit_rps_and_burst_multiplier(rate, burst, rps, multiplier):
    ms = ingresses([{"path": "/api/", "service": "api", "rate_limit": {"rate": rate, "burst": burst}}])
    assert list(ms) == [f"web-rl-{rate}-{burst}"]
    a = ann(ms[f"web-rl-{rate}-{burst}"])
    assert a["nginx.ingress.kubernetes.io/limit-rps"] == rps
    assert a["nginx.ingress.kubernetes.io/limit-burst-multiplier"] == multiplier


def test_one_ingress_per_rate_limit_group():
    ms = ingresses()
    assert sorted(ms) == ["web", "web-rl-10-100", "web-rl-10-20"]
    assert "nginx.ingress.kubernetes.io/limit-rps" not in ann(ms["web"])
    same = ingresses([{"path": "/a/", "service": "api", "rate_limit": {"rate": 5, "burst": 5}},
                      {"path": "/b/", "service": "api", "rate_limit": {"rate": 5, "burst": 5}}])
    assert list(same) == ["web-rl-5-5"]
    assert [p["path"] for p in same["web-rl-5-5"]["spec"]["rules"][0]["http"]["paths"]] == ["/a/", "/b/"]


def test_tls_hosts_and_rule_host():
    for m in ingresses().values():
        assert m["spec"]["tls"] == [{"hosts": [DOMAIN], "secretName": "tls-easyflow-example-com"}]
        assert [r["host"] for r in m["spec"]["rules"]] == [DOMAIN]


@pytest.mark.parametrize("cls", [None, "nginx-internal"])
def test_ingress_class(cls):
    ms = ingresses(**({"ingress_class": cls} if cls else {}))
    for m in ms.values():
        assert m["spec"]["ingressClassName"] == (cls or "nginx")


def test_routes_map_to_service_and_port():
    routed = {}
    for m in ingresses(extra=[ProxyRoute("/grafana/", "grafana")]).values():
        for p in m["spec"]["rules"][0]["http"]["paths"]:
            assert p["pathType"] == "Prefix"
            assert p["path"] not in routed, f"{p['path']} routed twice"
            routed[p["path"]] = (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["number"])
    assert routed == {"/api/webhooks/": ("api", 8000), "/api/": ("api", 8000), "/": ("web", 3000),
                      "/grafana/": ("grafana", 3000)}


def test_no_snippet_annotations_and_labels():
    """ingress-nginx >= 1.9 rejects snippet annotations by default: none may be emitted."""
    for m in ingresses().values():
        assert not any("snippet" in k for k in ann(m))
        assert m["metadata"]["namespace"] == "ns"
        assert m["metadata"]["labels"]["app.kubernetes.io/part-of"] == "berth-prod"


def test_prod_stack_routes_grafana_and_seed_b(recorded):
    from cfgtools import INGRESS

    routed = {}
    for r in recorded("prod").by_type(INGRESS):
        for p in r.inputs["spec"]["rules"][0]["http"]["paths"]:
            routed[p["path"]] = (r.inputs["metadata"]["name"], p["backend"]["service"]["name"])
    assert routed == {"/api/webhooks/": ("web-rl-10-100", "api"), "/api/": ("web-rl-10-20", "api"),
                      "/": ("web", "api"), "/grafana/": ("web", "grafana")}
