"""Who owns what is on the target (components/live.py), against small stand-ins of the Docker and
Kubernetes APIs on this machine (a Unix socket, a loopback port); the real targets are in
tests/real (two stacks on one namespace, on one Docker host)."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading
import urllib.parse
from pathlib import Path

import pytest

from berth.components import live
from berth.components.live import Found, ownership_problems

from .support import STACK, config


def test_another_stacks_objects_are_refused_naming_the_owner_and_the_key():
    found = [Found("volume", "shop-db-data", "acme/shop/prod"), Found("container", "shop-api", "acme/shop/prod"),
             Found("network", "shop-internal", "organization/berth/t")]
    problems, warnings = ownership_problems(found, "organization/berth/t", "berth:name = shop", "give it another")
    assert problems == ["berth:name = shop: container shop-api, volume shop-db-data on the target belong to stack "
                        "acme/shop/prod, and this stack (organization/berth/t) would take them over; give it another"]
    assert warnings == []


def test_own_objects_are_adopted_and_unowned_ones_with_a_warning():
    found = [Found("volume", "shop-db-data", "acme/shop/prod"), Found("volume", "shop-redis-data", None)]
    problems, warnings = ownership_problems(found, "acme/shop/prod", "berth:name = shop", "fix")
    assert problems == []
    assert warnings == ["berth:name = shop: volume shop-redis-data on the target name no owning stack (made by an "
                        "earlier Berth, or by hand); this stack (acme/shop/prod) adopts them"]


def test_nothing_is_read_under_mocks(monkeypatch):
    """`berth render` and the unit tests have no target."""
    from berth.record import record

    def refuse(*a, **k):
        raise AssertionError("the target was read under mocks")

    monkeypatch.setattr(live, "docker_found", refuse)
    monkeypatch.setattr(live, "namespace_found", refuse)
    record(STACK, config=config("docker"))
    record(STACK, config=config("kubernetes"))


class _Api(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - the stdlib's name
        url = urllib.parse.urlsplit(self.path)
        body = self.routes.get(url.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body if body is not None else {}).encode())
        type(self).seen.append((url.path, urllib.parse.parse_qs(url.query), self.headers.get("Authorization")))

    def log_message(self, *a):
        pass


def _serve(server) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def test_docker_objects_are_read_by_the_stacks_label_over_the_socket(tmp_path):
    class Docker(_Api):
        seen: list = []
        routes = {
            "/containers/json": [{"Names": ["/shop-api"], "Labels": {"berth.stack": "shop", "berth.owner": "a/b/c"}}],
            "/volumes": {"Volumes": [{"Name": "shop-db-data", "Labels": {"berth.stack": "shop"}}]},
            "/networks": [{"Name": "shop-edge", "Labels": {"berth.stack": "shop", "berth.owner": "a/b/c"}}],
        }

    sock = str(tmp_path / "docker.sock")
    server = socketserver.UnixStreamServer(sock, Docker)
    server.get_request = lambda: (server.socket.accept()[0], ("local", 0))  # type: ignore[method-assign]
    _serve(server)
    try:
        found = live.docker_found(f"unix://{sock}", "shop")
    finally:
        server.shutdown()
    assert found == [Found("container", "shop-api", "a/b/c"), Found("volume", "shop-db-data", None),
                     Found("network", "shop-edge", "a/b/c")]
    for _path, query, _auth in Docker.seen:
        assert json.loads(query["filters"][0]) == {"label": ["berth.stack=shop"]}


def test_the_namespace_is_read_with_the_kubeconfigs_token(tmp_path, monkeypatch):
    class Kube(_Api):
        seen: list = []
        routes = {"/api/v1/namespaces/shop": {"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "berth"}, "annotations": {"berth.dev/stack": "a/b/c"}}},
            "/api/v1/namespaces/theirs": {"metadata": {"labels": {}}}}

    server = http.server.HTTPServer(("127.0.0.1", 0), Kube)
    _serve(server)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "current-context": "test", "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    try:
        assert live.namespace_found(None, "shop") == [Found("namespace", "shop", "a/b/c")]
        assert live.namespace_found("test", "theirs") == []  # not Berth's namespace: not its to judge
        assert live.namespace_found(None, "new") == []  # not there yet
        with pytest.raises(live.Unreachable):
            live.namespace_found("other", "shop")
    finally:
        server.shutdown()
    assert {auth for *_x, auth in Kube.seen} == {"Bearer t0ken"}


def test_an_unreachable_target_is_not_checked(monkeypatch):
    monkeypatch.setattr(live, "under_mocks", lambda: False)
    monkeypatch.setenv("KUBECONFIG", os.devnull)
    assert live.check_ownership("kubernetes", prefix="p", owner="o/p/s", name_set=False, namespace="p") == ([], [])
    assert live.check_ownership("docker", prefix="p", owner="o/p/s", name_set=False,
                                docker_host=f"unix://{Path('/nonexistent/docker.sock')}") == ([], [])
