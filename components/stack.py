"""Compose a whole stack from the validated spec: the only place components meet a target."""

from __future__ import annotations

from typing import Any, Optional

import pulumi

from .app_service import AppService, Connection
from .cache import Cache
from .database import Database
from .spec import StackSpec, Target


class Platform(pulumi.ComponentResource):
    """The shared ground of a stack: Docker networks, or the Kubernetes namespace and its baseline policies."""

    def __init__(self, name: str, spec: StackSpec, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("berth:index:Platform", name, None, opts)
        if spec.target == Target.DOCKER:
            from .targets.docker import DockerTarget

            self.target: Any = DockerTarget(name, spec.docker.host, spec.protect, parent=self)
        else:
            from .targets.kubernetes import KubeContext, KubernetesTarget

            ctx = KubeContext(
                namespace=spec.kubernetes.namespace or name,
                stack=name,
                storage_class=spec.kubernetes.storage_class,
                ingress_namespace=spec.kubernetes.ingress_namespace,
            )
            self.target = KubernetesTarget(ctx, spec.kubernetes.context, spec.protect, parent=self)
        self.register_outputs({})


def service_order(spec: StackSpec) -> list[str]:
    """Services in dependency order (``depends_on`` first); a cycle is a config error."""
    from .spec import NAMESPACE, ConfigError

    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = " -> ".join([*path[path.index(n):], n])
            raise ConfigError([f"{NAMESPACE}:services.{n}.depends_on: dependency cycle {cycle}; break the cycle"])
        state[n] = 1
        for d in spec.services[n].depends_on:
            if d in spec.services:
                visit(d, [*path, n])
        state[n] = 2
        order.append(n)

    for n in sorted(spec.services):
        visit(n, [])
    return order


def consumers(spec: StackSpec) -> dict[str, set[str]]:
    """Who connects to whom: drives NetworkPolicies (ingress allowed only from these)."""
    allow: dict[str, set[str]] = {n: set() for n in [*spec.databases, *spec.caches, *spec.services]}
    for sname, svc in spec.services.items():
        used = svc.uses if isinstance(svc.uses, list) else list(svc.uses)
        for store in used:
            allow[store].add(sname)
            if store in spec.databases and spec.databases[store].replica:
                allow.setdefault(f"{store}-replica", set()).add(sname)
        for dep in svc.depends_on:
            allow.setdefault(dep, set()).add(sname)
    for db, d in spec.databases.items():
        if d.replica:
            allow[db].add(f"{db}-replica")
    return allow


def build(spec: StackSpec, prefix: str) -> dict[str, Any]:
    """Create every component of the stack; returns the stack outputs."""
    platform = Platform(prefix, spec)
    target = platform.target
    allow = consumers(spec)
    extra_allow = stack_extras_allow(spec)
    for k, v in extra_allow.items():
        allow.setdefault(k, set()).update(v)
    if spec.target == Target.KUBERNETES:
        target.register(planned_workloads(spec))

    dbs = {n: Database(n, d, target, sorted(allow.get(n, ()))) for n, d in sorted(spec.databases.items())}
    caches = {n: Cache(n, c, target, sorted(allow.get(n, ()))) for n, c in sorted(spec.caches.items())}
    connections: dict[str, Connection] = {}
    for n, db in dbs.items():
        connections[n] = Connection(
            spec.databases[n].engine.value, db.connection_url, getattr(db, "replica_url", None)
        )
    for n, c in caches.items():
        connections[n] = Connection("redis", c.url)

    services: dict[str, AppService] = {}
    for n in service_order(spec):
        s = spec.services[n]
        used = s.uses if isinstance(s.uses, list) else list(s.uses)
        deps: list[pulumi.Resource] = []
        for u in used:
            deps += (dbs[u].ready if u in dbs else caches[u].ready)
        for d in s.depends_on:
            deps += services[d].ready if d in services else (dbs[d].ready if d in dbs else caches[d].ready)
        services[n] = AppService(n, s, target, connections, spec.secrets, deps, sorted(allow.get(n, ())))

    outputs: dict[str, Any] = {
        "target": spec.target.value,
        "databases": {n: {"host": d.host, "port": d.port, "url": d.connection_url} for n, d in dbs.items()},
        "caches": {n: {"host": c.host, "url": c.url} for n, c in caches.items()},
        "services": {n: getattr(s, "url", s.host) for n, s in services.items()},
    }
    from .extras import build_extras

    outputs.update(build_extras(spec, prefix, target, dbs, caches, services))
    return outputs


def stack_extras_allow(spec: StackSpec) -> dict[str, set[str]]:
    from .extras import extras_allow

    return extras_allow(spec)


def planned_workloads(spec: StackSpec) -> list:
    """Workload names and labels known before creation (for NetworkPolicy peers)."""
    from .extras import planned_names
    from .ir import Role, Workload

    names = [*spec.databases, *[f"{d}-replica" for d, s in spec.databases.items() if s.replica], *spec.caches,
             *spec.services, *planned_names(spec)]
    return [Workload(name=n, role=Role.APP, image="-") for n in names]
