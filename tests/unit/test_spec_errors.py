"""The spec rejects every kind of bad input with a message that names the config key and shows the
bad value, and it does so before any resource is registered."""

from __future__ import annotations

import pulumi
import pytest

from berth.record import record
from berth.components.program import main
from berth.components.spec import ConfigError, parse_spec

from .support import STACK, config

APP = {"image": "ghcr.io/acme/app:1.0.0"}


def base(**sections):
    return {"target": "docker", **sections}


# (case id, raw spec without the berth: prefix, config key that must be named, bad value that must be shown)
BAD = [
    ("unknown-top-level-key", base(servics={"api": APP}), "berth:servics", "servics"),
    ("unknown-nested-key", base(services={"api": {**APP, "prot": 8080}}), "berth:services.api.prot", "8080"),
    ("wrong-type", base(services={"api": {**APP, "port": "eighty"}}), "berth:services.api.port", '"eighty"'),
    ("port-out-of-range", base(services={"api": {**APP, "port": 70000}}), "berth:services.api.port", "70000"),
    ("port-zero", base(services={"api": {**APP, "port": 0}}), "berth:services.api.port", "= 0"),
    ("uses-unknown-database", base(services={"api": {**APP, "uses": ["maindb"]}}), "berth:services.api.uses", "maindb"),
    ("replicas-below-one", base(services={"api": {**APP, "replicas": 0}}), "berth:services.api.replicas", "= 0"),
    ("unknown-target", {"target": "nomad"}, "berth:target", "nomad"),
    (
        "missing-secret",
        base(secrets={"other": "x"}, services={"bot": {**APP, "secret_env": {"BOT_TOKEN": "telegram-token"}}}),
        "berth:services.bot.secret_env.BOT_TOKEN",
        "telegram-token",
    ),
    ("image-latest", base(services={"api": {"image": "ghcr.io/acme/app:latest"}}), "berth:services.api.image", "ghcr.io/acme/app:latest"),
    ("image-no-tag", base(services={"api": {"image": "ghcr.io/acme/app"}}), "berth:services.api.image", "ghcr.io/acme/app"),
    (
        "image-registry-port-no-tag",
        base(services={"api": {"image": "localhost:5000/app"}}),
        "berth:services.api.image",
        "localhost:5000/app",
    ),
    (
        "autoscale-min-above-max",
        base(services={"api": {**APP, "port": 80, "autoscale": {"min": 5, "max": 2}}}),
        "berth:services.api.autoscale",
        '"min": 5',
    ),
    (
        "replica-on-mongodb",
        base(databases={"docs": {"engine": "mongodb", "replica": True}}),
        "berth:databases.docs",
        '"replica": true',
    ),
    (
        "route-to-service-without-port",
        base(services={"worker": APP}, proxy={"routes": [{"path": "/", "service": "worker"}]}),
        "berth:proxy.routes[0].service",
        "worker",
    ),
    (
        "dependency-cycle",
        base(services={"a": {**APP, "depends_on": ["b"]}, "b": {**APP, "depends_on": ["c"]}, "c": {**APP, "depends_on": ["a"]}}),
        "depends_on",
        "a -> b -> c -> a",
    ),
    ("invalid-cpu", base(services={"api": {**APP, "resources": {"cpu": "lots"}}}), "berth:services.api.resources.cpu", "lots"),
    (
        "invalid-memory",
        base(services={"api": {**APP, "resources": {"memory": "512MB"}}}),
        "berth:services.api.resources.memory",
        "512MB",
    ),
    (
        "invalid-storage",
        base(databases={"db": {"storage": "10GB"}}),
        "berth:databases.db.storage",
        "10GB",
    ),
    (
        "cpu-limit-below-request",
        base(services={"api": {**APP, "resources": {"cpu": "500m", "cpu_limit": "250m"}}}),
        "berth:services.api.resources",
        "250m",
    ),
    (
        "memory-limit-below-request",
        base(services={"api": {**APP, "resources": {"memory": "1Gi", "memory_limit": "512Mi"}}}),
        "berth:services.api.resources",
        "512Mi",
    ),
    ("duplicate-name-across-sections", base(databases={"store": {}}, caches={"store": {}}), "berth:caches.store", "store"),
    (
        "duplicate-name-service-and-database",
        base(databases={"api": {}}, services={"api": APP}),
        "berth:services.api",
        "api",
    ),
]


@pytest.mark.parametrize("raw,key,value", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_names_key_and_value(raw, key, value):
    with pytest.raises(ConfigError) as info:
        parse_spec(raw)
    message = str(info.value)
    assert key in message, message
    assert value in message, message
    # One problem per mistake: the message is not buried in noise from other union branches.
    assert len(info.value.problems) == 1, info.value.problems


def test_several_mistakes_are_reported_together():
    raw = base(services={"api": {**APP, "port": 70000, "replicas": 0}})
    with pytest.raises(ConfigError) as info:
        parse_spec(raw)
    assert len(info.value.problems) == 2
    assert "2 problem(s)" in str(info.value)


def test_derived_replica_name_may_not_collide_with_a_service():
    """A postgres replica is deployed as the workload ``<db>-replica``; a service of that name would
    give two Kubernetes objects / Docker containers the same name."""
    raw = base(databases={"db": {"replica": True}}, services={"db-replica": APP})
    with pytest.raises(ConfigError) as info:
        parse_spec(raw)
    assert "db-replica" in str(info.value)


def test_cpu_quantity_written_as_a_yaml_number_is_accepted():
    """``Resources.cpu`` documents ``1`` as a valid quantity; in YAML ``cpu_limit: 1`` is a number."""
    spec = parse_spec(base(services={"api": {**APP, "resources": {"cpu": "500m", "cpu_limit": 1}}}))
    assert spec.services["api"].resources.cpu_limit == "1"


def test_missing_target_names_the_key():
    with pytest.raises(ConfigError) as info:
        record(STACK, config={"berth:services": {"api": APP}})
    assert "berth:target" in str(info.value)


def test_config_error_is_a_run_error():
    """The CLI prints a RunError's message without a Python traceback."""
    assert issubclass(ConfigError, pulumi.RunError)
    with pytest.raises(pulumi.RunError):
        parse_spec({"target": "nomad"})


def test_unparseable_json_object_names_the_key():
    with pytest.raises(ConfigError) as info:
        record(STACK, config={"berth:target": "docker", "berth:services": "{not json"})
    assert "berth:services" in str(info.value)


@pytest.mark.parametrize("raw,key,value", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_record_raises_config_error_from_the_real_program(raw, key, value):
    cfg = {f"berth:{k}": v for k, v in raw.items()}
    with pytest.raises(ConfigError) as info:
        record(STACK, config=cfg)
    assert key in str(info.value)


def _capturing(errors: list):
    """The real entry point, with its ConfigError caught so the recording of what was registered survives."""

    def program():
        try:
            main()
        except ConfigError as exc:
            errors.append(exc)

    return program


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
@pytest.mark.parametrize("raw,key,value", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_no_resource_is_registered_before_the_error(raw, key, value, target):
    raw = {**raw, "target": target} if raw.get("target") != "nomad" else raw
    cfg = {f"berth:{k}": v for k, v in raw.items()}
    errors: list = []
    recording = record(STACK, config=cfg, program=_capturing(errors))
    assert errors, "expected a ConfigError"
    assert recording.resources == [], [f"{r.type}::{r.name}" for r in recording.resources]


def test_a_good_config_does_register_resources_through_the_same_wrapper():
    """The wrapper above is not vacuous: with a valid config it records resources."""
    errors: list = []
    recording = record(STACK, config=config("docker", services={"api": APP}), program=_capturing(errors))
    assert not errors
    assert any(r.type == "docker:index/container:Container" for r in recording.resources)
