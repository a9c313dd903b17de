"""Both stacks (Pulumi.dev.yaml, Pulumi.prod.yaml) evaluate end to end under recording mocks."""

from __future__ import annotations

import pytest

from berth.record import PLACEHOLDER_RE, record

from .support import CONTAINER, DEPLOYMENT, HPA, NETWORK, PDB, STATEFULSET, VOLUME, named


def test_dev_is_docker_with_the_expected_containers(recorded):
    dev = recorded("dev")
    assert dev.outputs["target"] == "docker"
    containers = named(dev, CONTAINER)
    assert {"api", "worker-1", "worker-2", "beat", "db", "redis"} <= set(containers)
    assert not any(r.type.startswith("kubernetes:") for r in dev.resources)
    assert {n.inputs["name"] for n in dev.by_type(NETWORK)} >= {"berth-dev-internal", "berth-dev-edge"}
    assert {v.inputs["name"] for v in dev.by_type(VOLUME)} >= {"berth-dev-db-data", "berth-dev-redis-data"}
    assert containers["api"].inputs["image"] == "ghcr.io/easy-flow/api:1.4.0"


def test_prod_is_kubernetes_with_autoscaled_api(recorded):
    prod = recorded("prod")
    assert prod.outputs["target"] == "kubernetes"
    assert not any(r.type.startswith("docker:") for r in prod.resources)
    hpa = prod.find(HPA, "api-hpa").inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    assert "replicas" not in prod.find(DEPLOYMENT, "api-deployment").inputs["spec"]


def test_prod_database_with_replica_and_pdbs(recorded):
    prod = recorded("prod")
    sets = named(prod, STATEFULSET)
    assert {"db-statefulset", "db-replica-statefulset", "redis-statefulset"} <= set(sets)
    assert sets["db-statefulset"].inputs["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    pdbs = {p.inputs["metadata"]["name"] for p in prod.by_type(PDB)}
    assert {"api", "worker"} <= pdbs
    assert prod.find(DEPLOYMENT, "worker-deployment").inputs["spec"]["replicas"] == 2
    assert prod.find(DEPLOYMENT, "beat-deployment").inputs["spec"]["replicas"] == 1


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_outputs_carry_database_urls_as_placeholders(recorded, stack):
    out = recorded(stack).outputs
    url = out["databases"]["db"]["url"]
    assert url.startswith("postgresql://easyflow:")
    assert PLACEHOLDER_RE.search(url).group(0) == "<<berth:password:db-password>>"
    assert out["databases"]["db"]["host"] == "db" and out["databases"]["db"]["port"] == 5432
    assert "<<berth:password:redis-password>>" in out["caches"]["redis"]["url"]
    assert out["services"]["api"] == "http://api:8000"


def test_every_resource_has_a_unique_urn_and_known_parent(recorded):
    for stack in ("dev", "prod"):
        r = recorded(stack)
        urns = [x.urn for x in r.resources]
        assert len(urns) == len(set(urns)), stack
        for x in r.resources:
            assert x.parent == "" or x.parent in urns or x.parent.endswith("pulumi:pulumi:Stack::berth-" + stack), x.urn


def test_component_children_follow_the_naming_contract(recorded):
    """Children are named ``<component>-<role>`` (or the component's own name) and parented to it."""
    prod = recorded("prod")
    comps = {x.urn: x.name for x in prod.resources if x.type in (
        "berth:index:Database", "berth:index:Cache", "berth:index:AppService")}
    children = [x for x in prod.resources if x.parent in comps]
    assert children
    for x in children:
        owner = comps[x.parent]
        assert x.name == owner or x.name.startswith(owner + "-"), (owner, x.name)


def test_recording_is_deterministic():
    a, b = record("prod"), record("prod")
    # Registration order may vary with asyncio scheduling; the declared set may not.
    assert sorted(x.urn for x in a.resources) == sorted(x.urn for x in b.resources)
    assert {x.urn: x.inputs for x in a.resources} == {x.urn: x.inputs for x in b.resources}


# Renaming one of these replaces it: a new password (apps lose their sessions / DB login), an empty
# volume, a new StatefulSet. A change here needs `aliases` in the component and an update of this list.
STABLE_URNS = {
    "dev": [
        "urn:pulumi:dev::berth::berth:index:Database$random:index/randomPassword:RandomPassword::db-password",
        "urn:pulumi:dev::berth::berth:index:Database$docker:index/volume:Volume::db-data",
        "urn:pulumi:dev::berth::berth:index:Cache$docker:index/volume:Volume::redis-data",
        "urn:pulumi:dev::berth::berth:index:Database$docker:index/container:Container::db",
        "urn:pulumi:dev::berth::berth:index:AppService$docker:index/container:Container::api",
    ],
    "prod": [
        "urn:pulumi:prod::berth::berth:index:Database$random:index/randomPassword:RandomPassword::db-password",
        "urn:pulumi:prod::berth::berth:index:Database$random:index/randomPassword:RandomPassword::db-replication-password",
        "urn:pulumi:prod::berth::berth:index:Database$kubernetes:apps/v1:StatefulSet::db-statefulset",
        "urn:pulumi:prod::berth::berth:index:Database$kubernetes:apps/v1:StatefulSet::db-replica-statefulset",
        "urn:pulumi:prod::berth::berth:index:Cache$kubernetes:apps/v1:StatefulSet::redis-statefulset",
        "urn:pulumi:prod::berth::berth:index:Platform$kubernetes:core/v1:Namespace::namespace",
        "urn:pulumi:prod::berth::berth:index:AppService$kubernetes:apps/v1:Deployment::api-deployment",
    ],
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stateful_resource_urns_are_stable(recorded, stack):
    urns = {x.urn for x in recorded(stack).resources}
    assert [u for u in STABLE_URNS[stack] if u not in urns] == []
