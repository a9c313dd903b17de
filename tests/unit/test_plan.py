"""The stack is built in one direction: spec → plan → checks → target (components/plan.py).

Every workload of every component is computed once, in the plan, before any resource exists; the
checks read that plan, and the components deploy the very workloads it holds.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from berth.components import ir
from berth.components import stack as stack_module
from berth.components.plan import plan_stack
from berth.components.spec import ConfigError, parse_spec
from berth.components.targets.docker import DockerTarget
from berth.components.targets.kubernetes import KubernetesTarget
from berth.record import record

from .support import config

EVERYTHING: dict[str, Any] = {
    "databases": {"db": {"replica": True}},
    "caches": {"cache": {}},
    "brokers": {"queue": {}},
    "graphs": {"graph": {}},
    "services": {
        "api": {"image": "app:1", "port": 8000, "uses": ["db", "cache", "queue", "graph"], "metrics": {},
                "secret_env": {"TOKEN": {"generate": True, "export": "api_token"}}},
        "worker": {"image": "app:1", "uses": ["db"], "depends_on": ["api"]},
    },
    "proxy": {"routes": [{"path": "/", "service": "api"}]},
    "backups": {"db": {"pre_deploy": True, "restore_from": "latest"}},
    "monitoring": {"enabled": True},
    "logging": {"enabled": True},
}


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_every_workload_is_planned_once_and_deployed_as_planned(monkeypatch, target):
    plans: list = []
    deployed: list[ir.Workload] = []

    def planning(spec, prefix):
        plans.append(plan_stack(spec, prefix))
        return plans[-1]

    monkeypatch.setattr(stack_module, "plan_stack", planning)
    for cls in (DockerTarget, KubernetesTarget):
        monkeypatch.setattr(cls, "deploy", lambda self, w, *a, _deploy=cls.deploy, **kw: (
            deployed.append(w), _deploy(self, w, *a, **kw))[1])
    record("t", config=config(target, **EVERYTHING))
    [plan] = plans
    assert sorted(map(id, deployed)) == sorted(map(id, plan.workloads)), "deployed workloads are the plan's own"
    names = [w.name for w in plan.workloads]
    assert len(names) == len(set(names))
    assert {"db", "db-replica", "cache", "queue", "graph", "api", "worker", "prometheus", "grafana", "pushgateway",
            "db-exporter", "cache-exporter", "elasticsearch", "logstash", "kibana", "db-restore"} <= set(names)
    assert all(later.resolved for later in plan.laters)


def test_planning_creates_no_resource(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a resource was created while planning: {args[:2]}")

    monkeypatch.setattr(pulumi.Resource, "__init__", refuse)
    spec = parse_spec({k.split(":", 1)[1]: v for k, v in config("docker", **EVERYTHING).items()})
    plan = plan_stack(spec, "berth-t")
    assert plan.proxy and plan.proxy.workload and plan.proxy.workload.name == "proxy"
    assert not any(later.resolved for later in plan.laters)


@pytest.mark.parametrize("target, sections, expected", [
    ("docker", {"services": {"prometheus": {"image": "app:1"}}, "monitoring": {"enabled": True}},
     "berth:services.prometheus: the name is taken by berth:monitoring's prometheus; rename it"),
    ("docker", {"services": {"proxy": {"image": "app:1", "port": 80}, "api": {"image": "app:1", "port": 80}},
                "proxy": {"routes": [{"path": "/", "service": "api"}]}},
     "berth:services.proxy: the name is taken by berth:proxy's proxy; rename it"),
    ("kubernetes", {"databases": {"db": {}}, "caches": {"db-backup-daily": {}}, "backups": {"db": {}}},
     "berth:caches.db-backup-daily: the name is taken by berth:backups.db's db-backup-daily; rename it"),
    ("docker", {"databases": {"db": {}}, "services": {"db-backup": {"image": "app:1"}}, "backups": {"db": {}}},
     "berth:services.db-backup: the name is taken by berth:backups.db's db-backup; rename it"),
    ("kubernetes", {"services": {"grafana": {"image": "app:1"}}, "monitoring": {"enabled": True}},
     "berth:services.grafana: the name is taken by berth:monitoring's grafana; rename it"),
    # Names of the objects a workload gets, not only of the workload: the files writer of a workload
    # (Docker), the second container of a service with replicas, the namespace's own policies.
    ("docker", {"services": {"proxy-files": {"image": "app:1"}, "api": {"image": "app:1", "port": 80}},
                "proxy": {"routes": [{"path": "/", "service": "api"}]}},
     "berth:services.proxy-files: its container 'berth-t-proxy-files' would also be berth:proxy's files writer "
     "(container names are one per host); rename it"),
    ("docker", {"services": {"worker": {"image": "app:1", "replicas": 2}, "worker-1": {"image": "app:1"}}},
     "berth:services.worker-1: its container 'berth-t-worker-1' would also be berth:services.worker's container "
     "(container names are one per host); rename it"),
    ("kubernetes", {"services": {"default-deny": {"image": "app:1", "port": 80}}},
     "berth:services.default-deny: its networkpolicy 'default-deny' would also be berth:kubernetes's namespace "
     "baseline policy (networkpolicy names are one per namespace); rename it"),
])
def test_a_name_berth_gives_a_workload_of_its_own_is_refused_before_any_resource(monkeypatch, target, sections,
                                                                                  expected):
    created: list[str] = []
    original = pulumi.Resource.__init__

    def spy(self, t, name, *args, **kwargs):
        created.append(t)
        original(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", spy)
    with pytest.raises(ConfigError) as err:
        record("t", config=config(target, **sections))
    assert err.value.problems == [expected]
    assert created == ["pulumi:pulumi:Stack"]


def test_a_value_no_resource_gives_fails_the_stack_instead_of_waiting_for_ever(monkeypatch):
    resolve = ir.Later.resolve
    monkeypatch.setattr(ir.Later, "resolve", lambda self, value: None if self.name == "db-password"
                        else resolve(self, value))
    with pytest.raises(RuntimeError, match="planned values never given by their resources: db-password"):
        record("t", config=config(databases={"db": {}}, services={"api": {"image": "app:1", "uses": ["db"]}}))
