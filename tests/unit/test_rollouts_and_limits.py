"""Pods roll when a secret changes; Kubernetes-only limits are config errors; Docker CPU strings
are the one-decimal form the provider reads back."""

from __future__ import annotations

import pytest

from berth.record import record
from berth.components.ir import Role, Workload
from berth.components.spec import ConfigError
from berth.components.targets.docker import docker_cpus

from .support import DEPLOYMENT, HPA, STACK, config, named, rec

APP = "ghcr.io/acme/app:1.0.0"


def _checksum(secret_value: str) -> str:
    cfg = config("kubernetes", services={"api": {"image": APP, "port": 8000, "secret_env": {"TOKEN": "token"}}},
                 secrets={"token": secret_value})
    # Secret config normally becomes a placeholder; keep the value so two values can be compared.
    from berth import record as rec_mod

    orig = rec_mod.secret_placeholders
    rec_mod.secret_placeholders = lambda c: c
    try:
        r = record(STACK, config=cfg)
    finally:
        rec_mod.secret_placeholders = orig
    tpl = named(r, DEPLOYMENT)["api-deployment"].inputs["spec"]["template"]["metadata"]
    return tpl["annotations"]["berth.dev/secret-checksum"]


def test_pod_template_changes_when_a_secret_value_changes():
    a, a_again, b = _checksum("first-value"), _checksum("first-value"), _checksum("second-value")
    assert a == a_again  # no roll on an unchanged deploy
    assert a != b  # a changed secret rolls the pods
    assert "first-value" not in a and len(a) == 16


def test_run_as_root_is_refused_on_kubernetes():
    cfg = config("kubernetes", services={"api": {"image": APP, "run_as_root": True}})
    with pytest.raises(ConfigError) as err:
        record(STACK, config=cfg)
    assert "berth:services.api.run_as_root" in str(err.value)
    assert "restricted" in str(err.value)


def test_run_as_root_is_allowed_on_docker():
    r = record(STACK, config=config("docker", services={"api": {"image": APP, "run_as_root": True}}))
    api = next(x for x in r.resources if x.type == "docker:index/container:Container" and x.name == "api")
    assert "user" not in api.inputs


def test_kubernetes_target_refuses_capabilities_restricted_does_not_admit():
    from berth.components.targets.kubernetes import RESTRICTED_CAPABILITIES

    assert RESTRICTED_CAPABILITIES == ("NET_BIND_SERVICE",)
    w = Workload(name="x", role=Role.APP, image="a:1", capabilities=("CHOWN",))
    from berth.components.targets import kubernetes as k8s_target

    target = object.__new__(k8s_target.KubernetesTarget)
    with pytest.raises(ValueError, match="CHOWN"):
        target.deploy(w, parent=None, depends_on=[])  # type: ignore[arg-type]


@pytest.mark.parametrize("quantity,expected", [
    ("1", "1.0"), ("2", "2.0"), ("500m", "0.5"), ("250m", "0.3"), ("50m", "0.1"), ("1.5", "1.5"), ("1500m", "1.5"),
])
def test_docker_cpus_are_one_decimal(quantity, expected):
    assert docker_cpus(quantity) == expected


def test_docker_read_only_root_also_where_files_are_generated():
    """Generated files reach Docker containers through read-only volumes (written by a one-shot
    container), not uploads into a writable root: every container of the dev stack is read-only, but
    the writer of the TLS key (test_secure_defaults: secret files are uploaded into its volumes)."""
    from .support import CONTAINER

    seen = {True: 0, False: 0}
    for c in record("dev").by_type(CONTAINER):
        if c.name == "proxy-files":
            continue
        has_files = any(v["readOnly"] for v in c.inputs.get("volumes", []))
        assert c.inputs["readOnly"] is True and "uploads" not in c.inputs, c.name
        assert c.inputs["capabilities"] == {"drops": ["ALL"]} and c.inputs["securityOpts"] == ["no-new-privileges:true"]
        assert c.inputs.get("user"), c.name
        seen[has_files] += 1
    assert seen[True] >= 4 and seen[False] >= 6  # proxy, prometheus, grafana, backup / db, redis, apps, exporters


def test_exporters_are_checked_over_http_on_both_targets():
    from .support import CONTAINER

    dev = {c.name: c for c in record("dev").by_type(CONTAINER)}
    for name in ("redis-exporter", "db-exporter"):
        check = dev[name].inputs["healthcheck"]["tests"]
        assert check[0] == "CMD-SHELL" and "/metrics" in check[1] and dev[name].inputs["wait"] is True, check
    prod = record("prod")
    dep = next(x for x in prod.resources if x.name == "redis-exporter-deployment")
    assert dep.inputs["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/metrics"


def test_every_long_running_docker_container_has_a_health_check():
    """Exporters over HTTP, the backup scheduler by supercronic's own port, workers and beat by the
    checks their stack file gives (celery's own): nothing long-running goes unchecked."""
    from .support import CONTAINER

    for stack in ("dev",):
        for c in record(stack).by_type(CONTAINER):
            if c.inputs.get("mustRun") is False:
                continue  # one-shot: files writers, pre-deploy dump, restore
            assert c.inputs.get("healthcheck", {}).get("tests"), c.name


@pytest.mark.parametrize("section,body,key", [
    ("caches", {"redis": {"storage": "1GB"}}, "berth:caches.redis.storage"),
    ("backups", {"db": {"storage": "lots"}}, "berth:backups.db.storage"),
    ("monitoring", {"storage": "10G"}, "berth:monitoring.storage"),
    ("databases", {"db": {"storage": "10"}}, "berth:databases.db.storage"),
])
def test_every_storage_size_is_checked(section, body, key):
    from berth.components.spec import parse_spec

    raw = {"target": "docker", "databases": {"db": {}}, section: body}
    if section == "databases":
        raw["databases"] = body
    with pytest.raises(ConfigError) as err:
        parse_spec(raw)
    assert key in str(err.value) and "must be a size" in str(err.value)


def _proxy_label(**service_changes):
    import yaml as _yaml

    from berth.record import ROOT, stack_config

    _project, cfg = stack_config("dev")
    cfg = _yaml.safe_load(_yaml.safe_dump(cfg))
    for k, v in service_changes.items():
        svc, field = k.split("__")
        cfg["berth:services"][svc][field] = v
    r = record(STACK, config=cfg)
    proxy = next(x for x in r.resources if x.type == "docker:index/container:Container" and x.name == "proxy")
    return {l["label"]: l["value"] for l in proxy.inputs["labels"]}["berth.upstream-revision"]


def test_proxy_restarts_with_its_upstreams_on_docker():
    """nginx resolves upstream names at start: when a routed app container is replaced (new image,
    new env), the proxy's declared inputs change too, so it is replaced after it; a change to a
    service the proxy doesn't route (the worker) leaves the proxy alone."""
    base = _proxy_label()
    assert base == _proxy_label()
    assert _proxy_label(api__image="ghcr.io/easy-flow/api:1.5.0") != base
    assert _proxy_label(api__env={"LOG_LEVEL": "debug"}) != base
    assert _proxy_label(worker__image="ghcr.io/easy-flow/api:1.5.0") == base


def test_network_policies_never_declare_empty_rule_lists(recorded):
    """The API server drops empty lists, so a declared `ingress: []` is re-applied (and diffed) forever."""
    from .support import NETPOL

    pols = recorded("prod").by_type(NETPOL)
    assert len(pols) > 5
    for p in pols:
        for key in ("ingress", "egress"):
            assert p.inputs["spec"].get(key, None) != [], (p.name, key)
    deny = next(p for p in pols if p.name == "default-deny")
    assert deny.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_autoscale_scale_down_after_sets_the_hpa_stabilization_window_only_when_asked():
    from berth.components.spec import ConfigError

    svc = {"image": "app:1.0", "port": 8000}
    default = rec("kubernetes", services={"api": {**svc, "autoscale": {"min": 2, "max": 4}}})
    hpa = named(default, HPA)["api-hpa"].inputs["spec"]
    assert "behavior" not in hpa  # Kubernetes' own 300 s: nothing declared, nothing to diff
    fast = rec("kubernetes", services={"api": {**svc, "autoscale": {"min": 2, "max": 4, "scale_down_after": "1m"}}})
    assert named(fast, HPA)["api-hpa"].inputs["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}
    with pytest.raises(ConfigError, match="scale_down_after"):
        rec("kubernetes", services={"api": {**svc, "autoscale": {"min": 2, "max": 4, "scale_down_after": "2h"}}})


def test_docker_apps_wait_for_their_predeploy_dump_to_succeed():
    """Seen with the real provider (seed C on Podman): a one-shot container is `created` when it has
    started, so the app replaced after a pre-deploy dump started beside it. The dump is now attached
    (waited for until it exits), and the app carries a label computed from its exit code: a failed
    dump fails the app's update instead of rolling it out."""
    from berth.components.targets.docker import job_succeeded

    r = rec("docker", databases={"db": {}}, backups={"db": {"pre_deploy": True}},
            services={"api": {"image": "app:1.0", "port": 8000, "uses": ["db"]}})
    containers = named(r, "docker:index/container:Container")
    dump = next(c for n, c in containers.items() if n.startswith("db-predeploy-backup-") and not n.endswith("-files"))
    assert dump.inputs["attach"] is True and dump.inputs["mustRun"] is False
    labels = {x["label"]: x["value"] for x in containers["api"].inputs["labels"]}
    assert labels[f"berth.after.{dump.name}"] == "succeeded"
    assert dump.urn in containers["api"].depends_on
    assert job_succeeded("db-predeploy-backup-1", 0) == "succeeded"
    with pytest.raises(Exception, match="exited with code 2"):
        job_succeeded("db-predeploy-backup-1", 2)


# ---------------------------------------------------------------- rollouts and failures (issue 21)


def _pod(r, name: str) -> dict:
    obj = next(x for x in r.resources if x.name in (f"{name}-deployment", f"{name}-statefulset"))
    return obj.inputs["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def prod():
    return record("prod")


@pytest.mark.parametrize("name", ["api", "db", "db-replica", "redis", "prometheus", "grafana", "pushgateway",
                                  "db-exporter", "redis-exporter"])
def test_serving_workloads_are_drained_before_they_are_killed(prod, name):
    """Readiness (the health check) and liveness (does the port still answer) are different checks,
    liveness gives up only after more failures than readiness, and a startup probe with the start
    period's room holds liveness back: an overloaded or recovering pod leaves the Service, it is not
    restarted (kube-score: pod-probes-identical)."""
    (c,) = _pod(prod, name)["containers"]
    ready, live, start = c["readinessProbe"], c["livenessProbe"], c["startupProbe"]
    assert "tcpSocket" in live and "tcpSocket" not in ready, (live, ready)
    assert start["tcpSocket"] == live["tcpSocket"]
    assert live["failureThreshold"] * live["periodSeconds"] > ready["failureThreshold"] * ready["periodSeconds"]
    assert "initialDelaySeconds" not in live and "initialDelaySeconds" not in ready
    assert start["failureThreshold"] * start["periodSeconds"] >= 60


def test_a_slow_starter_gets_its_start_period_before_liveness(prod):
    """Postgres: start period 30 s and 10 retries of 10 s; Neo4j 60 s and 10 of 15 s."""
    (db,) = _pod(prod, "db")["containers"]
    assert db["startupProbe"]["failureThreshold"] * db["startupProbe"]["periodSeconds"] >= 130
    r = record(STACK, config=config("kubernetes", graphs={"g": {}}))
    (g,) = _pod(r, "g")["containers"]
    assert g["startupProbe"]["failureThreshold"] * g["startupProbe"]["periodSeconds"] >= 210


def test_workers_and_schedulers_are_checked_by_their_own_command(prod):
    for name in ("worker", "beat"):
        (c,) = _pod(prod, name)["containers"]
        assert c["livenessProbe"]["exec"]["command"][:2] == ["sh", "-c"] and "readinessProbe" not in c
        assert c["startupProbe"]["exec"] == c["livenessProbe"]["exec"]
    (w,) = _pod(prod, "worker")["containers"]
    assert "inspect ping" in w["livenessProbe"]["exec"]["command"][2]


@pytest.mark.parametrize("name,spread", [("api", True), ("worker", True), ("beat", False), ("db", False),
                                         ("redis-exporter", False)])
def test_replicas_prefer_different_nodes(prod, name, spread):
    affinity = _pod(prod, name).get("affinity")
    if not spread:
        assert affinity is None
        return
    (term,) = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in affinity["podAntiAffinity"]


def test_a_singleton_is_recreated_not_rolled(prod):
    beat = next(x for x in prod.resources if x.name == "beat-deployment")
    api = next(x for x in prod.resources if x.name == "api-deployment")
    assert beat.inputs["spec"]["strategy"] == {"type": "Recreate"}
    assert api.inputs["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    dev = record("dev")
    beats = [c for c in dev.by_type("docker:index/container:Container") if c.inputs["name"].startswith("berth-dev-beat")]
    # One container, replaced by removing it before its successor is created.
    assert [c.name for c in beats] == ["beat"] and beats[0].delete_before_replace


def test_dns_goes_to_the_cluster_dns_only():
    r = record(STACK, config=config("kubernetes", kubernetes={"dns": {"addresses": ["169.254.20.10/32"]}}))
    policy = next(x for x in r.resources if x.name == "allow-dns-and-internal-egress")
    dns, internal = policy.inputs["spec"]["egress"]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert dns["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}},
        {"ipBlock": {"cidr": "169.254.20.10/32"}},
    ]
    assert internal == {"to": [{"podSelector": {}}]}


def test_every_pod_has_an_ephemeral_storage_limit(prod):
    for r in prod.resources:
        spec = r.inputs.get("spec") or {}
        tpl = (spec.get("jobTemplate") or {}).get("spec", spec).get("template")
        for c in (tpl or {}).get("spec", {}).get("containers", []):
            res = c["resources"]
            assert res["requests"]["ephemeral-storage"] and res["limits"]["ephemeral-storage"], r.name


ALL_COMPONENTS = {"databases": {"db": {}}, "caches": {"c": {}}, "brokers": {"mq": {}}, "graphs": {"g": {}},
                  "logging": {"enabled": True}, "services": {"api": {"image": APP, "port": 8000, "uses": ["db"]}},
                  "monitoring": {"enabled": True}, "backups": {"db": {}}}


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_every_container_has_a_read_only_root(target):
    """RabbitMQ, Neo4j, Elasticsearch, Logstash and Kibana too: what they write goes to tmpfs/emptyDir
    paths and to writable copies of their images' config directories."""
    r = record(STACK, config=config(target, **ALL_COMPONENTS))
    if target == "docker":
        # but the one-shot writers of secret files (dockerd refuses uploads into a read-only root)
        writable = [c.name for c in r.by_type("docker:index/container:Container") if not c.inputs.get("readOnly")
                    and not any(x["label"] == "berth.uploads" for x in c.inputs["labels"])]
    else:
        writable = [c["name"] for x in r.resources for c in
                    ((x.inputs.get("spec") or {}).get("template", {}).get("spec", {}).get("containers", []))
                    if not c["securityContext"]["readOnlyRootFilesystem"]]
    assert writable == []


def test_a_seeded_directory_is_a_copy_of_the_images_own():
    """Kubernetes: an emptyDir an init container fills from the image; Docker: a volume Docker fills
    from the image, named after what the container runs (a new image or setting: a new copy)."""
    k = record(STACK, config=config("kubernetes", logging={"enabled": True}))
    es = _pod(k, "elasticsearch")
    (init,) = es["initContainers"]
    assert init["image"] == es["containers"][0]["image"] and init["securityContext"]["readOnlyRootFilesystem"]
    assert init["command"] == ["sh", "-c", "cp -R /usr/share/elasticsearch/config/. /berth-seed/0/"]
    assert {"name": "seed-0", "mountPath": "/usr/share/elasticsearch/config"} in es["containers"][0]["volumeMounts"]
    d = record(STACK, config=config("docker", logging={"enabled": True}))
    es_c = next(c for c in d.by_type("docker:index/container:Container") if c.name == "elasticsearch")
    seeded = [v for v in es_c.inputs["volumes"] if v["containerPath"] == "/usr/share/elasticsearch/config"]
    assert len(seeded) == 1 and not seeded[0].get("readOnly")
    assert seeded[0]["volumeName"].startswith(f"berth-{STACK}-elasticsearch-seed-usr-share-elasticsearch-config-")
    d2 = record(STACK, config=config("docker", logging={"enabled": True, "heap": "256m"}))
    es2 = next(c for c in d2.by_type("docker:index/container:Container") if c.name == "elasticsearch")
    assert [v["volumeName"] for v in es2.inputs["volumes"] if v["containerPath"].endswith("/config")] != \
        [seeded[0]["volumeName"]]
