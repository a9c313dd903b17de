"""The real tests' guard against two test stacks sharing a namespace or Docker prefix
(tests/real/pulumi_cli.py: every successful `up` claims where it landed, a destroy gives it back)."""

from __future__ import annotations

import pytest

from tests.real import pulumi_cli
from tests.real.pulumi_cli import SharedPlace, claim, landing, release


@pytest.fixture(autouse=True)
def claims(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTH_TEST_CLAIMS", str(tmp_path))
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run1")
    return tmp_path


def test_where_a_stack_lands():
    k8s = {"berth:target": "kubernetes", "berth:kubernetes": {"namespace": "berth-t-prod"}}
    assert landing(k8s, "berth", "prod", None) == "kubernetes namespace berth-t-prod"
    assert landing({"berth:target": "kubernetes"}, "berth", "prod", None) == "kubernetes namespace berth-prod"
    docker = {"berth:target": "docker", "berth:docker": {"host": "unix:///run/podman.sock"}}
    assert landing(docker, "berth", "dev", None) == "docker host unix:///run/podman.sock prefix berth-dev"
    assert landing({"berth:target": "docker", "berth:name": "shop"}, "berth", "dev", "tcp://h:2375") == \
        "docker host tcp://h:2375 prefix shop"
    assert landing({"berth:name": "x"}, "berth", "dev", None) is None  # not a Berth stack file


def test_a_second_stack_in_a_claimed_place_fails_and_a_destroy_gives_it_back():
    place = "kubernetes namespace berth-t-prod"
    claim(place, "/tmp/a::prod")
    claim(place, "/tmp/a::prod")  # the same stack again (a second up, a redeploy): fine
    with pytest.raises(SharedPlace, match="two test stacks deployed into kubernetes namespace berth-t-prod"):
        claim(place, "/tmp/b::prod")
    release(place, "/tmp/b::prod")  # not the holder: the claim stands
    with pytest.raises(SharedPlace):
        claim(place, "/tmp/b::prod")
    release(place, "/tmp/a::prod")
    claim(place, "/tmp/b::prod")


def test_claims_are_per_run(monkeypatch):
    claim("docker host h prefix p", "/tmp/a::dev")
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run2")
    claim("docker host h prefix p", "/tmp/b::dev")
    assert pulumi_cli.claims_dir().name == "berth-test-claims-run2"
