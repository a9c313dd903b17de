"""The recording mocks themselves: they fail loudly on anything the program should not do."""

from __future__ import annotations

import pulumi
import pytest

from berth.record import placeholder, placeholders_in, record, secret_placeholders

from .support import STACK, config


def _reset_rpc_state():
    from pulumi.runtime.settings import SETTINGS

    SETTINGS.rpc_manager.clear()


@pytest.fixture
def failing_rpc():
    """Tests that make an RPC fail on purpose clean up after themselves, so a leak of the failure
    (see test_a_failed_recording_does_not_leak_into_the_next) cannot break unrelated tests."""
    yield
    _reset_rpc_state()


def _unknown_type_program():
    pulumi.CustomResource("acme:index:Thing", "thing", {})


@pytest.mark.usefixtures("failing_rpc")
def test_unknown_resource_type_fails():
    def program():
        pulumi.CustomResource("acme:index:Thing", "thing", {})

    with pytest.raises(RuntimeError, match="unexpected resource type acme:index:Thing"):
        record(STACK, config=config("docker"), program=program)


@pytest.mark.usefixtures("failing_rpc")
def test_unknown_call_fails():
    def program():
        pulumi.runtime.invoke("acme:index:getThing", {})

    with pytest.raises(RuntimeError, match="unexpected call acme:index:getThing"):
        record(STACK, config=config("docker"), program=program)


@pytest.mark.usefixtures("failing_rpc")
def test_a_failed_recording_does_not_leak_into_the_next():
    """record() promises a fresh start per recording; a failed provider RPC must not be re-raised
    by the next, valid recording."""
    with pytest.raises(RuntimeError):
        record(STACK, config=config("docker"), program=_unknown_type_program)
    good = record(STACK, config=config("docker", services={"one": {"image": "a/one:1.0"}}))
    assert "one" in {r.name for r in good.resources}


def test_recordings_are_isolated():
    """A second recording starts with no resources or config of the first."""
    first = record(STACK, config=config("docker", services={"one": {"image": "a/one:1.0"}}))
    second = record(STACK, config=config("docker", services={"two": {"image": "a/two:1.0"}}))
    assert {"one"} <= {r.name for r in first.resources}
    assert "one" not in {r.name for r in second.resources}
    assert "two" in {r.name for r in second.resources}


def test_secret_config_becomes_placeholders():
    cfg = secret_placeholders({"berth:secrets": {"token": "real"}, "berth:api": {"secure": "AAAA"}, "berth:x": "y"})
    assert cfg == {"berth:secrets": {"token": placeholder("config", "token")}, "berth:api": placeholder("config", "berth:api"),
                   "berth:x": "y"}
    assert placeholders_in({"a": ["x <<berth:password:p>> y"]}) == {"<<berth:password:p>>"}


def test_fixture_caches_per_stack(recorded):
    assert recorded("dev") is recorded("dev")
    assert recorded("dev") is not recorded("prod")
