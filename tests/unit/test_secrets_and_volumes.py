"""Secrets never appear in plaintext outside Secrets on Kubernetes; data volumes survive image changes
and are protected in prod."""

from __future__ import annotations

import json

import pytest

from berth.record import PLACEHOLDER_RE, placeholders_in, record
from berth.components.program import main

from .support import (
    CONTAINER,
    K8S_NAMESPACE,
    K8S_SECRET,
    PASSWORD,
    PVC,
    STACK,
    STATEFULSET,
    VOLUME,
    config,
    k8s_objects,
    named,
    pod_templates,
    rec,
)

# ---------------------------------------------------------------- secrets on Kubernetes


def _leaks(recording):
    """Resources other than Secrets and random generators whose inputs carry a placeholder."""
    allowed = (K8S_SECRET, PASSWORD, "random:index/randomString:RandomString")
    return {
        f"{r.type}::{r.name}": sorted(placeholders_in(r.inputs))
        for r in recording.resources
        if r.type not in allowed and placeholders_in(r.inputs)
    }


def test_prod_placeholders_only_in_secrets(recorded):
    prod = recorded("prod")
    assert _leaks(prod) == {}
    # ...and the Secrets really carry them (the check above is not vacuous).
    in_secrets = set().union(*(placeholders_in(r.inputs) for r in prod.by_type(K8S_SECRET)))
    assert "<<berth:password:db-password>>" in in_secrets
    assert "<<berth:password:redis-password>>" in in_secrets


def test_config_and_generated_secrets_only_in_secrets_on_kubernetes():
    r = rec(
        "kubernetes",
        secrets={"api-key": "s3cr3t-value"},
        databases={"db": {"engine": "mongodb"}},
        services={"bot": {"image": "acme/bot:1.0", "uses": ["db"],
                          "secret_env": {"API_KEY": "api-key", "SIGNING_KEY": {"generate": True}}}},
    )
    assert _leaks(r) == {}
    assert "s3cr3t-value" not in json.dumps([x.inputs for x in r.resources])
    secret = r.find(K8S_SECRET, "bot-env").inputs["stringData"]
    assert secret["API_KEY"] == "<<berth:config:api-key>>"
    assert PLACEHOLDER_RE.fullmatch(secret["SIGNING_KEY"])


CONNECTION_VARS = {"DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL", "MONGODB_URI"}


def test_pod_env_uses_secret_key_refs(recorded):
    prod = recorded("prod")
    secret_keys = {
        (r.inputs["metadata"]["name"], k) for r in prod.by_type(K8S_SECRET) for k in r.inputs.get("stringData", {})
    }
    refs = 0
    for name, tpl in pod_templates(prod):
        for c in tpl["spec"]["containers"]:
            for e in c.get("env", []):
                if "valueFrom" in e:
                    ref = e["valueFrom"]["secretKeyRef"]
                    assert (ref["name"], ref["key"]) in secret_keys, (name, e)
                    refs += 1
                else:
                    # Connection URLs and passwords always arrive by reference.
                    assert e["name"] not in CONNECTION_VARS and not e["name"].endswith("PASSWORD"), (name, e)
    assert refs >= 8


def test_database_url_output_is_secret():
    """The stack output carries the password placeholder and is marked secret."""
    seen: dict[str, bool] = {}

    async def program():
        main()
        from pulumi.runtime.settings import get_root_resource

        dbs = get_root_resource().outputs["databases"]
        seen["url"] = await dbs["db"]["url"].is_secret()
        seen["host"] = await dbs["db"]["host"].is_secret()

    r = record(STACK, config=config("kubernetes", databases={"db": {}}), program=program)
    assert "<<berth:password:db-password>>" in r.outputs["databases"]["db"]["url"]
    assert seen == {"url": True, "host": False}


# ---------------------------------------------------------------- volumes


def _with_images(app_image: str, db_image: str):
    return rec(
        "docker",
        databases={"db": {"image": db_image}},
        caches={"cache": {}},
        services={"api": {"image": app_image, "port": 8000, "uses": ["db", "cache"]}},
    )


def test_volumes_unchanged_when_images_change():
    before = _with_images("acme/api:1.0.0", "postgres:15.5")
    after = _with_images("acme/api:1.1.0", "postgres:15.6")
    vb, va = named(before, VOLUME), named(after, VOLUME)
    # The last two: the entrypoint and roles scripts', not data.
    assert set(vb) == {"db-data", "cache-data", "db-files-berth", "db-files-docker-entrypoint-initdb-d"}
    for n in vb:
        assert vb[n].urn == va[n].urn
        assert vb[n].inputs == va[n].inputs
    # The change did reach the containers (so the comparison above is meaningful).
    assert before.find(CONTAINER, "db").inputs["image"] != after.find(CONTAINER, "db").inputs["image"]
    assert before.find(CONTAINER, "db").urn == after.find(CONTAINER, "db").urn


def test_volumes_have_explicit_names_and_are_kept_by_containers(recorded):
    dev = recorded("dev")
    for v in dev.by_type(VOLUME):
        assert v.inputs.get("name") == f"berth-dev-{v.name}"
    for c in dev.by_type(CONTAINER):
        # Named volumes are never removed with a container; a long-running one keeps its anonymous
        # volumes too, a one-shot one (no data of its own) does not leak them.
        assert c.inputs["removeVolumes"] is (c.inputs["restart"] == "no"), c.name
        for mount in c.inputs.get("volumes", []):
            assert mount["volumeName"] in {v.inputs["name"] for v in dev.by_type(VOLUME)}


@pytest.mark.parametrize("environment,protected", [("prod", True), ("dev", False), ("staging", False)])
def test_docker_data_volumes_protected_in_prod_only(environment, protected):
    r = rec("docker", environment=environment, databases={"db": {"replica": True}}, caches={"cache": {}})
    vols = [v for v in r.by_type(VOLUME) if {"label": "berth.config", "value": "true"} not in v.inputs["labels"]]
    assert len(vols) == 3  # db, replica, cache data; config-file volumes are not data
    for v in vols:
        assert (v.protect, v.retain_on_delete) == (protected, protected), v.name


def test_kubernetes_statefulsets_protected_in_prod(recorded):
    prod = recorded("prod")
    sets = prod.by_type(STATEFULSET)
    stores = {"db-statefulset", "db-replica-statefulset", "redis-statefulset"}
    assert {s.name for s in sets} >= stores
    for s in sets:
        assert "spec.volumeClaimTemplates" in s.ignore_changes, s.name
        if s.name in stores:  # database and cache data (Database, Cache components)
            assert s.protect and s.retain_on_delete, s.name
            assert s.inputs["spec"]["persistentVolumeClaimRetentionPolicy"] == {
                "whenDeleted": "Retain", "whenScaled": "Retain"}
    ns = prod.find(K8S_NAMESPACE, "namespace")
    assert ns.protect and ns.retain_on_delete


def test_kubernetes_statefulsets_not_protected_in_dev():
    r = rec("kubernetes", environment="dev", databases={"db": {}}, caches={"cache": {}})
    sets = r.by_type(STATEFULSET)
    assert len(sets) == 2
    for s in sets:
        assert not s.protect and not s.retain_on_delete, s.name
        assert "spec.volumeClaimTemplates" in s.ignore_changes  # fixed at creation in every environment
    assert not r.find(K8S_NAMESPACE, "namespace").protect


def test_only_stateful_objects_are_protected(recorded):
    """Protection is for data: Deployments, Services, Secrets stay replaceable."""
    prod = recorded("prod")
    protected = {r.type for r in k8s_objects(prod) if r.protect}
    assert {STATEFULSET, K8S_NAMESPACE} <= protected <= {STATEFULSET, K8S_NAMESPACE, PVC}


# ---------------------------------------------------------------- no password on a command line

#: A password handed to a program as an argument: every process on the host can read it
#: (/proc/PID/cmdline, `ps`). Environment variables and private files are the ways in.
_PASSWORD_ARG = [
    r"""(?:^|\s)-a\s+["']?\$\{?\w*(?:PASS|AUTH)""",  # redis-cli -a "$REDIS_PASSWORD"
    r"""--(?:password|pass|requirepass)[= ]\S*\$\{?\w*PASS""",  # --password=$X, --requirepass "$X"
    r"""--uri[= ]["']?\S*:\$\{?\w*PASS""",  # mongodump --uri=mongodb://u:$PW@h
    r"""(?:^|\s)requirepass\s+["']?\$""",  # redis-server --requirepass "$X" (as a bare arg)
    r"""-p\$\{?\w*PASS""",  # mysql -p$PW
]


def _commands_and_files(recording) -> list[tuple[str, str]]:
    """(where, text) of every command line, health check and generated file of a recording."""
    out: list[tuple[str, str]] = []

    def walk(where: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k in ("command", "args", "entrypoints", "tests", "content", "data", "stringData"):
                    out.append((f"{where}.{k}", json.dumps(v)))
                walk(f"{where}.{k}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{where}[{i}]", v)

    for r in recording.resources:
        walk(r.name, r.inputs)
    return out


@pytest.mark.parametrize(("project_dir", "stack"), [
    (".", "dev"), (".", "prod"),
    ("examples/flow-masters", "prod"), ("examples/flow-masters", "dev"), ("examples/microservices", "dev"),
    ("examples/microservices", "prod"), ("examples/wishlins", "prod"), ("examples/wishlins", "k8s"),
])
def test_no_password_on_any_command_line(project_dir, stack):
    import re
    from pathlib import Path

    from berth.record import ROOT

    recording = record(stack, project_dir=ROOT / Path(project_dir))
    found = [(where, pattern) for where, text in _commands_and_files(recording)
             for pattern in _PASSWORD_ARG if re.search(pattern, text.replace("\\n", "\n"), re.M)]
    assert not found, found


def test_docker_plain_env_stays_visible_beside_secret_env():
    """The SDK turns a list with one secret element into one secret: a plain env change would show
    in a diff only as "[secret]". Plain values are mirrored into plain labels; secrets never are."""
    r = rec("docker", services={"api": {"image": "app:1.0", "port": 8000, "env": {"LOG_LEVEL": "info"},
                                        "secret_env": {"API_TOKEN": {"generate": True}}}})
    c = named(r, CONTAINER)["api"]
    labels = {x["label"]: x["value"] for x in c.inputs["labels"]}
    assert labels["berth.env.LOG_LEVEL"] == "LOG_LEVEL=info"
    assert labels["berth.image"] == "app:1.0"
    assert not any(k.startswith("berth.env.API_TOKEN") for k in labels)
    assert not placeholders_in(c.inputs["labels"]), "a secret reached a label"
