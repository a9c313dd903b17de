"""The capacity check (``berth:docker.capacity`` / ``berth:kubernetes.capacity``, components/capacity.py):
a stack whose plan does not fit the machines it declares fails before any resource exists, with the key,
the totals, the capacity, the biggest consumers and the fix; every seed stack declares its machines and fits."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from berth.components.capacity import capacity_problems, consumers
from berth.components.checks import check_plan
from berth.components.plan import plan_stack
from berth.components.spec import ConfigError, cpu_millis, memory_mib, parse_spec
from berth.components.targets.docker import docker_cpus
from berth.record import ROOT, Recording, record

from .support import CONTAINER, DEPLOYMENT, HPA, STATEFULSET, config

CRONJOB = "kubernetes:batch/v1:CronJob"
JOB = "kubernetes:batch/v1:Job"

#: Every stack file of the project: the seed examples and the repo's own dev/prod.
STACK_FILES = sorted(ROOT.glob("examples/*/Pulumi.*.yaml")) + [ROOT / "Pulumi.dev.yaml", ROOT / "Pulumi.prod.yaml"]
STACKS = [(p.parent, p.name[len("Pulumi."):-len(".yaml")]) for p in STACK_FILES if p.name != "Pulumi.yaml"]
IDS = [f"{d.name}:{s}" if d != ROOT else s for d, s in STACKS]


def spec_of(target: str = "docker", **sections: Any):
    return parse_spec({k.split(":", 1)[1]: v for k, v in config(target, **sections).items()})


def plan_of(spec, prefix: str = "berth-t"):
    return plan_stack(spec, prefix)


def problems(target: str = "docker", **sections: Any) -> list[str]:
    return capacity_problems(plan_of(spec_of(target, **sections)))[0]


def stack_spec(project_dir: Path, stack: str):
    raw = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("berth:")}
    if "secrets" in raw:
        raw["secrets"] = {k: "placeholder" for k in raw["secrets"]}
    return parse_spec(raw)


API_3X1G = {"api": {"image": "app:1", "port": 8000, "replicas": 3, "resources": {"memory_limit": "1Gi"}}}
DB = {"db": {}}  # Postgres: its default limit is 1Gi


# ---------------------------------------------------------------- Docker


def test_docker_memory_limits_that_do_not_fit_name_key_totals_capacity_biggest_and_fix():
    [msg] = problems(services=API_3X1G, databases=DB, docker={"capacity": {"cpus": 2, "memory": "4Gi"}})
    assert msg.startswith('berth:docker.capacity = {"cpus": "2", "memory": "4Gi"}: ')
    assert "4 containers may use 4Gi of memory" in msg  # 3 × 1Gi + 1Gi
    assert "3840Mi (memory 4Gi - reserved_memory 256Mi)" in msg
    assert ("Biggest: api 3 × 1Gi = 3Gi (berth:services.api.resources.memory_limit), "
            "db 1Gi (berth:databases.db.resources.memory_limit)") in msg
    assert "declare the host it needs (memory: 5Gi)" in msg


def test_docker_fits_a_host_big_enough_and_nothing_is_checked_without_a_capacity():
    assert problems(services=API_3X1G, databases=DB, docker={"capacity": {"cpus": 2, "memory": "5Gi"}}) == []
    huge = {f"s{i}": {"image": "app:1", "replicas": 10, "resources": {"memory_limit": "4Gi"}} for i in range(5)}
    assert capacity_problems(plan_of(spec_of(services=huge))) == ([], [])


def test_docker_counts_the_autoscalers_minimum():
    svc = {"api": {"image": "app:1", "port": 8000, "autoscale": {"min": 2, "max": 10},
                   "resources": {"memory_limit": "1Gi"}}}
    assert problems(services=svc, docker={"capacity": {"cpus": 2, "memory": "2304Mi"}}) == []  # 2 × 1Gi fits
    [msg] = problems(services=svc, docker={"capacity": {"cpus": 2, "memory": "2303Mi"}})
    assert "api 2 × 1Gi = 2Gi" in msg


def test_docker_overcommit_is_explicit_and_one_container_must_still_fit_the_host():
    cap = {"cpus": 2, "memory": "2304Mi", "memory_overcommit": 2}
    assert problems(services=API_3X1G, databases=DB, docker={"capacity": cap}) == []
    [msg] = problems(services={"big": {"image": "app:1", "resources": {"memory_limit": "3Gi"}}},
                     docker={"capacity": cap})
    assert "memory limits above the 2Gi the host has for containers: big 3Gi " \
           "(berth:services.big.resources.memory_limit)" in msg


def test_docker_refuses_a_cpu_limit_above_the_hosts_cpus_but_does_not_sum_cpu():
    svc = {"api": {"image": "app:1", "resources": {"cpu_limit": "4"}}}
    [msg] = problems(services=svc, docker={"capacity": {"cpus": 2, "memory": "8Gi"}})
    assert "CPU limits above the host's 2 CPUs: api 4 (berth:services.api.resources.cpu_limit)" in msg
    assert "lower them to at most 2" in msg
    # Ten 1-CPU containers on 2 CPUs: slower under load, never refused or killed.
    many = {f"w{i}": {"image": "app:1", "resources": {"cpu_limit": "1"}} for i in range(10)}
    assert problems(services=many, docker={"capacity": {"cpus": 2, "memory": "8Gi"}}) == []


def test_docker_cpu_limits_are_counted_as_docker_rounds_them():
    spec = spec_of(services={"api": {"image": "app:1", "resources": {"cpu": "100m", "cpu_limit": "250m"}}},
                   docker={"capacity": {"cpus": 1, "memory": "1Gi"}})
    [api] = [c for c in consumers(plan_of(spec)) if c.name == "api"]
    assert api.cpu_limit == 300 and docker_cpus("250m") == "0.3"


def test_berths_own_workloads_are_counted_with_where_they_come_from():
    spec = spec_of(
        databases={"db": {"replica": True}}, caches={"redis": {}}, services={"api": {"image": "app:1", "port": 80}},
        proxy={"routes": [{"path": "/", "service": "api"}]}, backups={"db": {"pre_deploy": True}},
        monitoring={"enabled": True}, logging={"enabled": True},
        docker={"capacity": {"cpus": 2, "memory": "4Gi"}},
    )
    got = {c.name: (c.source, c.fixed) for c in consumers(plan_of(spec))}
    assert got["db-replica"] == ("berth:databases.db.resources", False)
    assert got["proxy"] == ("berth:proxy.resources", False)
    assert got["elasticsearch"] == ("berth:logging.resources", False)
    assert got["logstash"] == got["kibana"] == ("berth:logging", True)
    assert got["db-backup"] == ("berth:backups.db", True)
    assert got["prometheus"] == got["grafana"] == got["db-exporter"] == got["pushgateway"] == ("berth:monitoring", True)
    assert {n for n in got if n.startswith("db-predeploy-backup")}, "the pre-deploy dump runs while the stack runs"
    [msg] = capacity_problems(plan_of(spec))[0]
    assert "elasticsearch 2Gi (berth:logging.resources.memory_limit)" in msg
    assert "kibana 1Gi (berth:logging, a fixed size)" in msg


# ---------------------------------------------------------------- Kubernetes


K8S_API = {"api": {"image": "app:1", "port": 8000, "replicas": 3,
                   "resources": {"cpu": "500m", "memory": "1Gi", "cpu_limit": "1", "memory_limit": "1Gi"}}}


def test_kubernetes_requests_that_do_not_fit_name_key_totals_capacity_and_the_nodes_needed():
    # 3 × 1Gi requested of 2Gi allocatable; the CPU (1500m of 1750m) and the limits (3Gi of 2 × 2Gi) fit.
    [mem] = problems("kubernetes", services=K8S_API, kubernetes={"capacity": {"cpus": 2, "memory": "3Gi"}})
    assert mem.startswith('berth:kubernetes.capacity = {"cpus": "2", "memory": "3Gi"}: ')
    assert "the stack's 3 pods request 3Gi of memory, more than 1 node can give them: 2Gi (1 × (memory 3Gi - reserved_memory 1Gi))" in mem
    assert "Pending" in mem and "api 3 × 1Gi = 3Gi (berth:services.api.resources.memory)" in mem
    assert "(nodes: 2 of this size, or bigger nodes)" in mem


def test_kubernetes_fits_more_nodes_and_counts_cronjobs_and_jobs_as_pods():
    cap = {"nodes": 2, "cpus": 2, "memory": "3Gi"}
    assert problems("kubernetes", services=K8S_API, kubernetes={"capacity": cap}) == []
    tiers = [{"name": n, "schedule": "0 2 * * *", "keep": 3} for n in ("daily", "weekly", "monthly")]
    spec = spec_of("kubernetes", databases=DB, backups={"db": {"tiers": tiers, "pre_deploy": True}},
                   kubernetes={"capacity": cap})
    names = [c.name for c in consumers(plan_of(spec))]
    assert {"db-backup-daily", "db-backup-weekly", "db-backup-monthly"} <= set(names)
    assert any(n.startswith("db-predeploy-backup-") for n in names)


def test_kubernetes_cpu_requests_must_fit_too():
    [msg] = problems("kubernetes", services=K8S_API, kubernetes={"capacity": {"cpus": 1, "memory": "8Gi"}})
    assert "3 pods request 1500m of CPU" in msg
    assert "750m (1 × (cpus 1 - reserved_cpu 250m))" in msg and "(nodes: 2 of this size" in msg


def test_kubernetes_a_pod_bigger_than_one_node_never_schedules():
    svc = {"big": {"image": "app:1", "resources": {"memory": "3Gi", "memory_limit": "3Gi"}}}
    msgs = problems("kubernetes", services=svc, kubernetes={"capacity": {"nodes": 4, "cpus": 2, "memory": "2Gi"}})
    assert any("more memory than one node can give a pod (1Gi): big 3Gi (berth:services.big.resources.memory)" in m
               for m in msgs), msgs


def test_kubernetes_memory_limits_may_overcommit_by_the_documented_factor():
    svc = {"api": {"image": "app:1", "replicas": 2, "resources": {"memory": "512Mi", "memory_limit": "2Gi"}}}
    cap = {"cpus": 2, "memory": "3Gi"}  # 2Gi allocatable: requests 1Gi fit, limits 4Gi = 2 × 2Gi
    assert problems("kubernetes", services=svc, kubernetes={"capacity": cap}) == []
    [msg] = problems("kubernetes", services=svc, kubernetes={"capacity": {**cap, "memory_overcommit": 1}})
    assert "pods may use 4Gi of memory (the sum of their memory limits), more than 2Gi" in msg
    assert "memory_overcommit 1" in msg and "api 2 × 2Gi = 4Gi (berth:services.api.resources.memory_limit)" in msg


def test_kubernetes_warns_when_an_autoscalers_max_cannot_be_reached():
    svc = {"api": {"image": "app:1", "port": 8000, "autoscale": {"min": 2, "max": 10},
                   "resources": {"cpu": "500m", "memory": "512Mi", "memory_limit": "1Gi"}}}
    spec = spec_of("kubernetes", services=svc, kubernetes={"capacity": {"cpus": 2, "memory": "4Gi"}})
    found, warnings = capacity_problems(plan_of(spec))
    assert found == []
    # 1750m allocatable: 3 pods of 500m (memory would allow 6).
    assert warnings == ["berth:services.api.autoscale.max = 10: the 1 node of berth:kubernetes.capacity has room "
                        "for 3 api pods (each requests 500m CPU and 512Mi); under load the autoscaler's pods beyond "
                        "that would stay Pending: lower max, or declare more nodes"]
    roomy = spec_of("kubernetes", services=svc, kubernetes={"capacity": {"nodes": 3, "cpus": 2, "memory": "4Gi"}})
    assert capacity_problems(plan_of(roomy)) == ([], [])


# ---------------------------------------------------------------- the spec


@pytest.mark.parametrize("capacity, expected", [
    ({"cpus": 2, "memory": "4GB"}, "berth:docker.capacity.memory = \"4GB\": must be a size in Kubernetes binary "
                                   "units: write 4Gi"),
    ({"cpus": 2, "memmory": "4Gi"}, "did you mean berth:docker.capacity.memory?"),
    ({"memory": "4Gi"}, "berth:docker.capacity.cpus = (missing)"),
    ({"cpus": 2, "memory": "256Mi"}, "reserved_memory 256Mi leaves nothing of memory 256Mi"),
    ({"cpus": 0, "memory": "4Gi"}, "cpus 0 is less than 0.1 CPU"),
    ({"cpus": 2, "memory": "4Gi", "memory_overcommit": 0.5}, "memory_overcommit = 0.5"),
])
def test_bad_docker_capacity_is_a_named_key_error(capacity, expected):
    with pytest.raises(ConfigError) as err:
        spec_of(docker={"capacity": capacity})
    assert expected in str(err.value)


def test_capacity_of_the_other_target_is_refused():
    with pytest.raises(ConfigError, match=r"berth:docker: set for target kubernetes"):
        spec_of("kubernetes", docker={"capacity": {"cpus": 2, "memory": "4Gi"}})
    with pytest.raises(ConfigError, match=r"reserved_cpu 2 leaves nothing of cpus 2"):
        spec_of("kubernetes", kubernetes={"capacity": {"cpus": 2, "memory": "4Gi", "reserved_cpu": 2}})


# ---------------------------------------------------------------- in the program


def test_the_program_fails_before_any_resource_exists(monkeypatch):
    created: list[str] = []
    original = pulumi.Resource.__init__

    def spy(self, t, name, *args, **kwargs):
        created.append(t)
        original(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", spy)
    cfg = config(services=API_3X1G, databases=DB, docker={"capacity": {"cpus": 2, "memory": "4Gi"}})
    with pytest.raises(ConfigError, match=r"berth:docker\.capacity = .*may use 4Gi of memory"):
        record("t", config=cfg)
    assert created == ["pulumi:pulumi:Stack"], created
    created.clear()
    record("t", config={**cfg, "berth:docker": {"capacity": {"cpus": 2, "memory": "5Gi"}}})
    assert len(created) > 5


def test_the_plan_check_logs_the_warnings(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **kw: seen.append(msg))
    spec = spec_of("kubernetes", services={"api": {"image": "app:1", "autoscale": {"min": 1, "max": 50}}},
                   kubernetes={"capacity": {"cpus": 2, "memory": "4Gi"}})
    check_plan(plan_of(spec))
    assert len(seen) == 1 and seen[0].startswith("berth:services.api.autoscale.max = 50")


# ---------------------------------------------------------------- the seed stacks


@pytest.mark.parametrize("project_dir, stack", STACKS, ids=IDS)
def test_every_stack_declares_its_machines_with_a_comment_and_fits_them(project_dir, stack):
    spec = stack_spec(project_dir, stack)
    cap = spec.docker.capacity if spec.target.value == "docker" else spec.kubernetes.capacity
    assert cap is not None, f"{project_dir.name}/Pulumi.{stack}.yaml declares no berth:{spec.target.value}.capacity"
    lines = (project_dir / f"Pulumi.{stack}.yaml").read_text().splitlines()
    [at] = [i for i, line in enumerate(lines) if re.match(r"\s+capacity:", line)]
    assert lines[at - 1].strip().startswith("#"), "say where the size comes from in a comment above it"
    assert capacity_problems(plan_of(spec, "x"))[0] == []


def _recorded_units(rec: Recording, target: str) -> Counter:
    """(workload, count, resources) of what the program declared, read from the resources."""
    units: Counter = Counter()
    if target == "docker":
        for c in rec.by_type(CONTAINER):
            labels = {label["label"]: label["value"] for label in c.inputs["labels"]}
            if labels["berth.role"] == "init":
                continue  # writes a workload's generated files and exits before the workload starts
            name = labels["berth.workload"]
            units[(name, c.inputs["memory"], c.inputs["cpus"])] += 1
        return units
    hpa_min = {h.inputs["spec"]["scaleTargetRef"]["name"]: h.inputs["spec"]["minReplicas"] for h in rec.by_type(HPA)}
    for type_ in (DEPLOYMENT, STATEFULSET, CRONJOB, JOB):
        for r in rec.by_type(type_):
            spec = r.inputs["spec"]
            pod = (spec["jobTemplate"]["spec"] if type_ == CRONJOB else spec)["template"]["spec"]
            [container] = pod["containers"]
            res = container["resources"]
            name = r.inputs["metadata"]["name"]
            count = spec.get("replicas", hpa_min.get(name, 1))
            units[(name, count, cpu_millis(res["requests"]["cpu"]), memory_mib(res["requests"]["memory"]),
                   cpu_millis(res["limits"]["cpu"]), memory_mib(res["limits"]["memory"]))] += 1
    return units


def _computed_units(spec, prefix: str) -> Counter:
    units: Counter = Counter()
    for w in plan_stack(spec, prefix).workloads:
        r = w.resources
        if spec.target.value == "docker":
            units[(w.name, memory_mib(r.memory_limit), docker_cpus(r.cpu_limit))] += w.scaling.min if w.scaling else w.replicas
        else:
            units[(w.name, w.scaling.min if w.scaling else w.replicas, cpu_millis(r.cpu), memory_mib(r.memory),
                   cpu_millis(r.cpu_limit), memory_mib(r.memory_limit))] += 1
    return units


@pytest.mark.parametrize("project_dir, stack", STACKS, ids=IDS)
def test_the_workloads_counted_are_the_ones_the_program_deploys(project_dir, stack):
    """The plan the capacity check reads is what the program deploys: the same workloads, counts and
    resources as the recorded resources."""
    rec = record(stack, project_dir=project_dir)
    spec = stack_spec(project_dir, stack)
    prefix = spec.name or f"{rec.project}-{stack}"
    assert _computed_units(spec, prefix) == _recorded_units(rec, spec.target.value)
