"""`berth recover`'s decisions (berth/recover.py), from a state as `pulumi stack export` writes it after
a killed `pulumi up`. The whole command runs for real in tests/real/test_dockerd_dev.py and
tests/real/test_faults_k8s.py."""

from __future__ import annotations

from berth.cli import main
from berth.recover import DOCKER_CONTAINER, DOCKER_NETWORK, DOCKER_VOLUME, plan

PROVIDER = "urn:pulumi:dev::shop::berth:index:Platform$pulumi:providers:docker::docker"


def pending(type_: str, name: str, provider: str = "") -> dict:
    return {"type": "creating", "resource": {"urn": f"urn:pulumi:dev::shop::{type_}::{name}", "type": type_,
                                             "inputs": {"name": f"p-{name}"}, "provider": provider}}


def state(*ops: dict) -> dict:
    return {"resources": [{"urn": PROVIDER, "type": "pulumi:providers:docker", "inputs": {"host": "ssh://deploy@h"}}],
            "pending_operations": list(ops)}


def test_a_container_the_killed_run_created_is_removed_and_created_again():
    seen = []

    def exists(host, kind, name):
        seen.append((host, kind, name))
        return "abc123" if name == "p-api" else None

    p = plan(state(pending(DOCKER_CONTAINER, "api", f"{PROVIDER}::0b1c"), pending(DOCKER_CONTAINER, "worker")), exists)
    assert p.remove_containers == [("ssh://deploy@h", "p-api")]  # on the stack's own host
    assert seen == [("ssh://deploy@h", "container", "p-api"), ("", "container", "p-worker")]
    assert p.imports == []
    assert len(p.cleared) == 2  # both pending creates go: the next `up` creates both


def test_a_network_is_imported_a_volume_is_adopted_never_removed():
    p = plan(state(pending(DOCKER_NETWORK, "internal"), pending(DOCKER_VOLUME, "db-data")),
             lambda host, kind, name: "net0123456789" if kind == "network" else name)
    assert p.imports == [("urn:pulumi:dev::shop::docker:index/network:Network::internal", "net0123456789")]
    assert p.remove_containers == []
    assert p.cleared == ["urn:pulumi:dev::shop::docker:index/volume:Volume::db-data"]


def test_kubernetes_and_other_pending_creates_are_cleared_and_pending_deletes_left_to_up():
    ops = [pending("kubernetes:apps/v1:Deployment", "api"), pending("random:index/randomPassword:RandomPassword", "pw"),
           {"type": "deleting", "resource": {"urn": "urn:x::docker:index/container:Container::old",
                                              "type": DOCKER_CONTAINER, "inputs": {"name": "p-old"}}}]
    p = plan(state(*ops), lambda *a: (_ for _ in ()).throw(AssertionError("no Docker lookup for these")))
    assert len(p.cleared) == 2 and p.remove_containers == [] and p.imports == []


def test_recover_without_a_project_is_a_named_error(tmp_path, capsys):
    assert main(["recover", "-s", "dev", "--project-dir", str(tmp_path)]) == 2
    assert "no Pulumi.yaml" in capsys.readouterr().err
