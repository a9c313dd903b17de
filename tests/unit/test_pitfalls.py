"""The provider pitfalls of shared/PROVIDER-PITFALLS.md, checked on the pure mappings and on every
recorded resource of both stacks."""

from __future__ import annotations

import re

import pytest

from berth.components.ir import Probe
from berth.components.targets.docker import REPLACE_ON_CHANGES, docker_cpus, go_duration, healthcheck, wait_timeout

from .support import CONTAINER, DEPLOYMENT, HPA, K8S_NAMESPACE, K8S_SERVICE, NETWORK, k8s_objects, rec


@pytest.mark.parametrize(
    "quantity,expected",
    [("1", "1.0"), ("2", "2.0"), ("0.5", "0.5"), ("500m", "0.5"), ("1000m", "1.0"), ("1500m", "1.5"),
     ("100m", "0.1"), ("1.5", "1.5"), ("4", "4.0")],
)
def test_docker_cpus_canonical(quantity, expected):
    assert docker_cpus(quantity) == expected


@pytest.mark.parametrize(
    "seconds,expected",
    [(0, "0s"), (5, "5s"), (30, "30s"), (59, "59s"), (60, "1m0s"), (90, "1m30s"), (600, "10m0s"),
     (3599, "59m59s"), (3600, "1h0m0s"), (3661, "1h1m1s")],
)
def test_go_duration(seconds, expected):
    assert go_duration(seconds) == expected


@pytest.mark.parametrize(
    "probe",
    [Probe(command=("CMD", "true")), Probe(path="/health", port=8000, interval=90, timeout=10, retries=3, start_period=120),
     Probe(command=("pg_isready",), interval=1, timeout=1, retries=100, start_period=0)],
)
def test_healthcheck_is_complete_and_waits_long_enough(probe):
    hc = healthcheck(probe)
    assert set(hc) == {"tests", "interval", "timeout", "start_period", "retries"}
    assert hc["tests"][0] in ("CMD", "CMD-SHELL")
    assert wait_timeout(probe) >= probe.start_period + probe.retries * probe.interval


def test_podman_gets_an_exec_health_check_with_spaces_as_one_shell_line():
    """Podman 4's Docker API re-splits CMD arguments on spaces (seen: `sh -c celery` ran, with the rest
    of the script as its arguments); Docker Engine keeps them. The shell line runs the same command."""
    import shlex
    import subprocess

    script = 'test -n "$(printf %s celery@$HOSTNAME)" && echo "a b"'
    probe = Probe(command=("sh", "-c", script))
    assert healthcheck(probe)["tests"] == ["CMD", "sh", "-c", script]
    podman = healthcheck(probe, "podman")["tests"]
    assert podman[0] == "CMD-SHELL" and shlex.split(podman[1]) == ["sh", "-c", script]
    out = subprocess.run(["sh", "-c", podman[1]], capture_output=True, text=True, env={"HOSTNAME": "h", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout == "a b\n", out
    # Plain words stay an exec check on either engine.
    assert healthcheck(Probe(command=("pg_isready", "-q", "-h", "127.0.0.1")), "podman")["tests"] == \
        ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"]


@pytest.fixture(scope="module")
def docker_rec(recorded):
    return recorded("dev")


@pytest.fixture(scope="module")
def k8s_rec(recorded):
    return recorded("prod")


def _seconds(go: str) -> int:
    total, num = 0, ""
    for ch in go:
        if ch.isdigit():
            num += ch
        else:
            total += int(num) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    return total


def test_containers_follow_docker_pitfalls(docker_rec):
    containers = docker_rec.by_type(CONTAINER)
    assert len(containers) >= 6
    for c in containers:
        i = c.inputs
        # "1.0", "0.5", "0.25": a decimal point, no trailing zeros beyond the first decimal.
        assert re.fullmatch(r"\d+\.(0|\d*[1-9])", i["cpus"]), (c.name, i["cpus"])
        assert i["memorySwap"] == i["memory"], c.name
        assert {"healthcheck", "tmpfs"} <= set(c.replace_on_changes), c.name
        # Long-running containers keep their anonymous volumes; one-shot ones (files writers, jobs)
        # hold no data and must not leak them (test_one_shot_docker_containers_leave_no_...).
        assert i["removeVolumes"] is (i["restart"] == "no") and i["rm"] is False, c.name
        if "healthcheck" in i:
            hc = i["healthcheck"]
            for field in ("interval", "timeout", "startPeriod"):
                assert go_duration(_seconds(hc[field])) == hc[field], (c.name, field, hc[field])
            if i.get("wait"):
                assert i["waitTimeout"] >= _seconds(hc["startPeriod"]) + hc["retries"] * _seconds(hc["interval"]), c.name
        else:
            assert not i.get("wait"), f"{c.name}: wait without a healthcheck fails the apply"
        role = {x["label"]: x["value"] for x in i["labels"]}.get("berth.role")
        if role in ("database", "cache"):
            assert i["destroyGraceSeconds"] >= 30, c.name
        for h in i.get("hosts", []):
            assert ":" not in h["ip"], c.name  # no IPv6 in hosts


def test_replace_on_changes_constant():
    assert {"healthcheck", "tmpfs", "init", "cpuPeriod", "cpuQuota"} <= set(REPLACE_ON_CHANGES)


def test_no_replicas_on_deployments_scaled_by_an_hpa(k8s_rec):
    scaled = {h.inputs["spec"]["scaleTargetRef"]["name"] for h in k8s_rec.by_type(HPA)}
    assert "api" in scaled
    for d in k8s_rec.by_type(DEPLOYMENT):
        if d.inputs["metadata"]["name"] in scaled:
            assert "replicas" not in d.inputs["spec"] or "spec.replicas" in d.ignore_changes, d.name


def test_hpa_on_docker_config_also_has_no_replicas():
    # `replicas` next to `autoscale` is refused by the spec (test_spec_errors); the HPA alone must
    # still leave the Deployment without replicas.
    r = rec("kubernetes", services={"web": {"image": "a/web:1.0", "port": 80, "autoscale": {"min": 2, "max": 4}}})
    assert "replicas" not in r.find(DEPLOYMENT, "web-deployment").inputs["spec"]
    assert r.find(HPA, "web-hpa").inputs["spec"]["minReplicas"] == 2


STABLE_SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component"}


def _selectors(r):
    spec = r.inputs.get("spec", {})
    if r.type == K8S_SERVICE:
        yield spec.get("selector") or {}
    elif isinstance(spec.get("selector"), dict):
        yield spec["selector"].get("matchLabels") or {}
    if isinstance(spec.get("podSelector"), dict):
        yield spec["podSelector"].get("matchLabels") or {}


def test_selectors_are_stable(k8s_rec):
    """Selectors hold only stable identity labels (never version, image or chart labels)."""
    checked = 0
    for r in k8s_objects(k8s_rec):
        for sel in _selectors(r):
            if not sel:
                continue
            checked += 1
            assert set(sel) <= STABLE_SELECTOR_KEYS, (r.name, sel)
            assert all(":" not in v and "@" not in v for v in sel.values()), (r.name, sel)
        template_labels = r.inputs.get("spec", {}).get("template", {}).get("metadata", {}).get("labels")
        sel = (r.inputs.get("spec", {}).get("selector") or {}).get("matchLabels")
        if template_labels is not None and sel:  # Jobs have no selector of their own
            assert sel.items() <= template_labels.items(), r.name
    assert checked >= 15


def test_selector_unchanged_when_the_image_changes():
    def selectors(image):
        r = rec("kubernetes", services={"web": {"image": image, "port": 80}})
        return r.find(DEPLOYMENT, "web-deployment").inputs["spec"]["selector"]

    assert selectors("acme/web:1.0") == selectors("acme/web:2.0")


def test_every_namespaced_object_has_a_namespace(k8s_rec):
    for r in k8s_objects(k8s_rec):
        if r.type == K8S_NAMESPACE:
            continue
        assert r.inputs["metadata"].get("namespace") == "easyflow", r.name
        assert "generateName" not in r.inputs["metadata"], r.name


def test_services_explicitly_named_and_cluster_internal(k8s_rec):
    services = k8s_rec.by_type(K8S_SERVICE)
    assert services
    for s in services:
        assert s.inputs["metadata"].get("name"), s.name
        assert s.inputs["spec"].get("type", "ClusterIP") != "LoadBalancer", s.name
    for r in k8s_objects(k8s_rec):
        assert r.inputs["metadata"].get("name"), f"{r.type}::{r.name} is auto-named"


def test_no_job_has_a_ttl(k8s_rec):
    for r in k8s_objects(k8s_rec):
        if r.type.endswith(":Job"):
            assert "ttlSecondsAfterFinished" not in r.inputs["spec"], r.name
        if r.type.endswith(":CronJob"):
            assert "ttlSecondsAfterFinished" not in r.inputs["spec"]["jobTemplate"]["spec"], r.name


def test_statefulset_force_new_fields_are_set_at_creation(k8s_rec):
    for r in k8s_rec.by_type("kubernetes:apps/v1:StatefulSet"):
        spec = r.inputs["spec"]
        for field in ("serviceName", "podManagementPolicy", "revisionHistoryLimit", "selector"):
            assert field in spec, (r.name, field)


def test_secrets_have_an_explicit_type(k8s_rec):
    for r in k8s_rec.by_type("kubernetes:core/v1:Secret"):
        assert r.inputs.get("type") == "Opaque", r.name


def test_resource_urns_are_unique():
    """Two services whose image references differ only in '/' vs '-' must not produce the same RemoteImage."""
    r = rec("docker", services={"a": {"image": "acme/api:1.0"}, "b": {"image": "acme-api:1.0"}})
    urns = [x.urn for x in r.resources]
    assert len(urns) == len(set(urns)), sorted(u for u in urns if urns.count(u) > 1)


def test_generated_secret_names_do_not_collide():
    """``api`` with SECRET_KEY and ``api-secret`` with KEY both derive the RandomPassword name api-secret-key."""
    r = rec("docker", services={
        "api": {"image": "acme/api:1.0", "secret_env": {"SECRET_KEY": {"generate": True}}},
        "api-secret": {"image": "acme/api:1.0", "secret_env": {"KEY": {"generate": True}}},
    })
    urns = [x.urn for x in r.resources]
    assert len(urns) == len(set(urns)), sorted(u for u in urns if urns.count(u) > 1)


def test_every_kubernetes_object_has_its_stacks_stable_field_manager_and_owner():
    """A retained object (StatefulSet, PVC, Namespace) outlives `pulumi destroy` and the random
    field manager kept in the destroyed stack's state; the next `up` must apply as the same manager,
    or server-side apply conflicts with the old one (seen on a real cluster: .spec.volumeClaimTemplates).
    The manager is the stack's own, and so is the owner annotation every object carries: another
    stack applying the same object conflicts on it instead of taking it over."""
    from berth.record import record

    for stack in ("prod", "t"):
        objs = k8s_objects(record(stack) if stack == "prod" else record(stack, config={"berth:target": "kubernetes"}))
        assert objs
        for r in objs:
            annotations = (r.inputs.get("metadata") or {}).get("annotations") or {}
            assert annotations.get("berth.dev/stack") == f"organization/berth/{stack}", r.name
            assert annotations.get("pulumi.com/patchFieldManager") == f"berth/organization/berth/{stack}", r.name


def test_the_field_manager_fits_the_api_servers_limit():
    from berth.components.targets.kubernetes import field_manager

    long = "acme/" + "p" * 100 + "/" + "s" * 60
    assert len(field_manager(long)) == 128 and field_manager(long) != field_manager(long + "x")
    assert field_manager("acme/shop/prod") == "berth/acme/shop/prod"


def test_docker_fields_read_back_differently_are_create_only_and_still_replace_on_change():
    """Podman's Docker API reads `tmpfs` and `logOpts` back unlike what was declared (seen with the
    real provider): the engine ignores them after creation, and a hash label carries a real change
    (labels force replacement) so the container is still recreated when they change."""
    from berth.components.ir import Role, Workload
    from berth.components.targets.docker import CREATE_ONLY, CREATE_ONLY_LABEL, DockerContext, container_args

    ctx = DockerContext(prefix="p", internal_network="p-internal", edge_network="p-edge")

    def label(w):
        return {x["label"]: x["value"] for x in container_args(ctx, w)["labels"]}[CREATE_ONLY_LABEL]

    base = Workload(name="api", role=Role.APP, image="app:1")
    assert label(base) == label(Workload(name="api", role=Role.APP, image="app:2"))
    assert label(base) != label(Workload(name="api", role=Role.APP, image="app:1", tmpfs=("/tmp", "/cache")))
    assert label(base) != label(Workload(name="api", role=Role.APP, image="app:1", tmpfs=()))
    recorded = [r for r in rec("docker", services={"api": {"image": "app:1.0", "port": 8000}}).resources
                if r.type == CONTAINER]
    assert recorded and all(set(CREATE_ONLY) <= set(r.ignore_changes) for r in recorded)


def test_docker_tmpfs_is_owned_by_the_workloads_user_in_each_engines_form():
    """runc gives a tmpfs the mode of its mount point when that already exists: from the second start
    on, a path the image lacks is mounted 0755 root (seen on Docker Engine 20.10 and on Podman outside
    /run). The owner survives that, so each tmpfs is owned by the workload's user, in the form each
    engine takes (Docker Engine refuses `U`, Podman refuses `uid=`); root keeps the plain options."""
    from berth.components.ir import Role, Workload
    from berth.components.targets.docker import DockerContext, container_args

    db = Workload(name="db", role=Role.DATABASE, image="postgres:15", user=999,
                  tmpfs=("/tmp", "/var/run/postgresql"))
    docker = DockerContext(prefix="p", internal_network="i", edge_network="e")
    podman = DockerContext(prefix="p", internal_network="i", edge_network="e", engine="podman")
    assert container_args(docker, db)["tmpfs"] == {
        p: "rw,noexec,nosuid,size=64m,mode=1777,uid=999,gid=999" for p in ("/tmp", "/var/run/postgresql")}
    assert set(container_args(podman, db)["tmpfs"].values()) == {"rw,noexec,nosuid,size=64m,mode=1777,U"}
    grouped = Workload(name="es", role=Role.APP, image="es:8", user=1000, group=0)
    assert container_args(docker, grouped)["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m,mode=1777,uid=1000,gid=0"}
    for user in (None, 0):
        root = Workload(name="r", role=Role.APP, image="r:1", user=user)
        assert container_args(docker, root)["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m,mode=1777"}
    # The engine comes from berth:docker.engine (Docker Engine unless the stack says podman).
    for engine, suffix in ((None, "uid=999,gid=999"), ("podman", "U")):
        cfg = {"berth:databases": {"db": {"storage": "1Gi"}}}
        if engine:
            cfg["berth:docker"] = {"engine": engine}
        dbs = [r for r in rec("docker", **{k.split(":")[1]: v for k, v in cfg.items()}).resources
               if r.type == CONTAINER and r.name == "db"]
        assert dbs and dbs[0].inputs["tmpfs"]["/var/run/postgresql"].endswith(suffix), dbs[0].inputs["tmpfs"]


def test_docker_engine_must_be_docker_or_podman():
    from berth.components.spec import ConfigError, parse_spec

    with pytest.raises(ConfigError) as e:
        parse_spec({"target": "docker", "docker": {"engine": "moby"}})
    assert "berth:docker.engine" in str(e.value)


def test_docker_networks_ignore_the_ipam_fields_the_api_fills_in():
    from berth.components.targets.docker import NETWORK_READ_BACK

    nets = rec("docker", services={"api": {"image": "app:1.0", "port": 8000}}).by_type(NETWORK)
    assert len(nets) == 2
    for n in nets:
        assert set(NETWORK_READ_BACK) <= set(n.ignore_changes), n.name
        assert not set(NETWORK_READ_BACK) & set(n.inputs), "Berth never declares them"


def test_one_shot_docker_containers_leave_no_anonymous_volumes_behind():
    """Files writers and jobs run images with VOLUME directories they do not mount (a database
    image's data dir); removed without their anonymous volumes they leak one per replacement.
    Long-running containers keep them (data may live there); named volumes are never removed."""
    r = rec("docker", databases={"db": {}}, backups={"db": {"pre_deploy": True}},
            services={"api": {"image": "app:1.0", "port": 8000, "uses": ["db"]}})
    for c in r.by_type(CONTAINER):
        one_shot = c.inputs["restart"] == "no"
        assert c.inputs["removeVolumes"] is one_shot, c.name


def test_kubernetes_readiness_starts_at_once_and_liveness_waits_out_the_start_period():
    """Every await (StatefulSet ready, rollout, the Job after the database, the apps after the Job) ends
    at a readiness probe: it runs from the start and often, and gives up no sooner than before.
    The start period goes to the startup probe (nothing is restarted while it starts)."""
    from berth.components.ir import Port, Role, Workload
    from berth.components.targets.kubernetes import READINESS_PERIOD, container_probes

    p = Probe(command=("CMD", "pg_isready"), interval=10, timeout=5, retries=10, start_period=30)
    w = Workload(name="db", role=Role.DATABASE, image="postgres:16", ports=(Port("postgres", 5432),), health=p)
    probes = container_probes(w)
    ready, live, start = probes["readinessProbe"], probes["livenessProbe"], probes["startupProbe"]
    assert "initialDelaySeconds" not in ready and ready["periodSeconds"] == READINESS_PERIOD <= 5
    assert ready["periodSeconds"] * ready["failureThreshold"] >= p.interval * p.retries
    assert ready["exec"] == {"command": ["pg_isready"]}
    assert "initialDelaySeconds" not in live and live["periodSeconds"] == 10
    assert start["periodSeconds"] * start["failureThreshold"] >= p.start_period + p.interval * p.retries
    fast = container_probes(Workload(name="api", role=Role.APP, image="app", ports=(Port("http", 8000),),
                                     health=Probe(path="/health", port=8000, interval=1, retries=3)))["readinessProbe"]
    assert fast["periodSeconds"] == 1 and fast["failureThreshold"] == 3


def test_jvm_workloads_get_a_tmpfs_they_can_load_native_libraries_from():
    """Neo4j unpacks JNA's native library into /tmp and loads it; on a noexec tmpfs it does not
    start (seen with Neo4j 4.4.40's own server, tests/real/test_images_seed_smoke.py). The JVM
    workloads keep nosuid; every other workload keeps noexec too."""
    from berth.components.graph import graph_workloads
    from berth.components.logs import LoggingPasswords, logging_workloads
    from berth.components.spec import GraphDatabaseSpec, LoggingSpec
    from berth.components.targets.docker import DockerContext, container_args

    docker = DockerContext(prefix="p", internal_network="i", edge_network="e")
    jvm = [*graph_workloads("graph", GraphDatabaseSpec(), "pw"),
           *[w for w in logging_workloads(LoggingSpec(), "s", LoggingPasswords("e", "k", "l"))
             if w.name in ("elasticsearch", "logstash")]]
    assert {w.name for w in jvm} == {"graph", "elasticsearch", "logstash"}
    for w in jvm:
        for options in container_args(docker, w)["tmpfs"].values():
            assert "noexec" not in options.split(",") and "nosuid" in options.split(","), (w.name, options)
    others = [w for w in logging_workloads(LoggingSpec(), "s", LoggingPasswords("e", "k", "l"))
              if w.name not in ("elasticsearch", "logstash")]
    for w in others:
        assert not w.tmpfs_exec and all("noexec" in o for o in (container_args(docker, w)["tmpfs"] or {}).values())
