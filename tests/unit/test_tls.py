"""TLS works on each target in each mode it accepts: the certificate the edge serves is created (or,
in mode acme, requested from cert-manager), and modes `self-signed` and `secret` need no file on the
machine that runs Pulumi (a CI runner previews them)."""

from __future__ import annotations

import pytest

from berth.components.spec import ConfigError
from berth.record import record

from .support import K8S_SECRET, STACK, config, docker_files

APP = {"image": "ghcr.io/acme/app:1.0.0", "port": 8000}
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def stack(target: str, tls: dict, **extra):
    cfg = config(target, domain="shop.example.com", services={"api": APP},
                 proxy={"routes": [{"path": "/", "service": "api"}], "tls": tls}, **extra)
    return record(STACK, config=cfg)


def files(tmp_path):
    (tmp_path / "fullchain.pem").write_text(CERT)
    (tmp_path / "privkey.pem").write_text(KEY)
    return {"mode": "files", "cert_file": str(tmp_path / "fullchain.pem"), "key_file": str(tmp_path / "privkey.pem")}


SECRETS = {"secrets": {"tls-cert": CERT, "tls-key": KEY}}
#: (mode id, tls settings (a function of tmp_path), extra config, expected certificate, expected key)
MODES = [
    ("self-signed", lambda tmp: {"mode": "self-signed"}, {}, "<<berth:tls-cert:proxy-tls-cert>>",
     "<<berth:tls-key:proxy-tls-key>>"),
    ("default-is-self-signed", lambda tmp: {}, {}, "<<berth:tls-cert:proxy-tls-cert>>", "<<berth:tls-key:proxy-tls-key>>"),
    ("secret", lambda tmp: {"mode": "secret"}, SECRETS, "<<berth:config:tls-cert>>", "<<berth:config:tls-key>>"),
    ("secret-other-names", lambda tmp: {"mode": "secret", "cert_secret": "shop-crt", "key_secret": "shop-key"},
     {"secrets": {"shop-crt": CERT, "shop-key": KEY}}, "<<berth:config:shop-crt>>", "<<berth:config:shop-key>>"),
    ("files", files, {}, CERT, None),  # the key read from a file stays a secret (redacted by render)
]


@pytest.mark.parametrize("tls,extra,cert,key", [m[1:] for m in MODES], ids=[m[0] for m in MODES])
def test_kubernetes_ingress_certificate_exists(tmp_path, tls, extra, cert, key):
    """The Ingress names a Secret; Berth creates it (kubernetes.io/tls) in the same namespace,
    before the Ingresses."""
    r = stack("kubernetes", tls(tmp_path), **extra)
    secret = r.find(K8S_SECRET, "tls-secret")
    ingresses = r.by_type(INGRESS)
    assert ingresses
    for ing in ingresses:
        assert ing.inputs["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "tls-shop-example-com"}]
        assert ing.inputs["metadata"]["namespace"] == secret.inputs["metadata"]["namespace"]
        assert secret.urn in ing.depends_on
        assert "cert-manager.io/cluster-issuer" not in ing.inputs["metadata"]["annotations"]
    assert secret.inputs["metadata"]["name"] == "tls-shop-example-com"
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert secret.inputs["stringData"]["tls.crt"] == cert
    if key:
        assert secret.inputs["stringData"]["tls.key"] == key


@pytest.mark.parametrize("tls,extra,cert,key", [m[1:] for m in MODES], ids=[m[0] for m in MODES])
def test_docker_proxy_serves_the_certificate(tmp_path, tls, extra, cert, key):
    uploads = docker_files(record(STACK, config=config("docker", domain="shop.example.com", services={"api": APP},
                                                       proxy={"routes": [{"path": "/", "service": "api"}],
                                                              "tls": tls(tmp_path)}, **extra)), "proxy")
    assert uploads["/etc/nginx/certs/tls.crt"] == cert
    if key:
        assert uploads["/etc/nginx/certs/tls.key"] == key


def test_kubernetes_acme_leaves_the_secret_to_cert_manager():
    r = stack("kubernetes", {"mode": "acme", "cluster_issuer": "letsencrypt-staging"})
    assert not [s for s in r.by_type(K8S_SECRET) if s.name == "tls-secret"]
    annotated = [i for i in r.by_type(INGRESS) if "cert-manager.io/cluster-issuer" in i.inputs["metadata"]["annotations"]]
    assert len(annotated) == 1
    assert annotated[0].inputs["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-staging"


def test_every_ingress_secret_is_created_or_requested():
    """Whatever the mode, no Ingress names a certificate Secret that nothing makes."""
    for tls, extra in [({"mode": "self-signed"}, {}), ({"mode": "secret"}, SECRETS), ({"mode": "acme"}, {})]:
        r = stack("kubernetes", tls, **extra)
        secrets = {s.inputs["metadata"]["name"] for s in r.by_type(K8S_SECRET)}
        for ing in r.by_type(INGRESS):
            name = ing.inputs["spec"]["tls"][0]["secretName"]
            acme = any("cert-manager.io/cluster-issuer" in i.inputs["metadata"]["annotations"] for i in r.by_type(INGRESS))
            assert name in secrets or (tls["mode"] == "acme" and acme), (tls, name)


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_secret_mode_needs_no_file_on_disk(tmp_path, monkeypatch, target):
    """What a CI runner has: the stack's config (secrets included), no certificate files."""
    monkeypatch.chdir(tmp_path)
    r = stack(target, {"mode": "secret"}, **SECRETS)
    assert r.resources


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_files_mode_without_the_files_is_a_named_error_before_any_resource(tmp_path, target):
    tls = {"mode": "files", "cert_file": str(tmp_path / "nope.pem"), "key_file": str(tmp_path / "nope.key")}
    with pytest.raises(ConfigError) as info:
        stack(target, tls)
    text = str(info.value)
    assert "berth:proxy.tls.cert_file" in text and "tls.mode secret" in text


def test_files_mode_refuses_a_file_that_is_not_pem(tmp_path):
    tls = files(tmp_path)
    (tmp_path / "privkey.pem").write_text("not a key\n")
    with pytest.raises(ConfigError) as info:
        stack("docker", tls)
    assert "berth:proxy.tls.key_file" in str(info.value) and "PEM" in str(info.value)
