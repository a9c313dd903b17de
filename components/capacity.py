"""Does the stack fit the machines it targets? Checked on the plan, before any resource exists.

The plan holds every workload the stack deploys (the teams' services and Berth's own: exporters,
Prometheus, Grafana, Pushgateway, backup scheduler and jobs, proxy, read replica, logging);
``capacity_problems`` adds up their resources as the target runs them, and ``check_plan``
(``checks.py``) raises ``ConfigError`` naming ``berth:docker.capacity`` / ``berth:kubernetes.capacity``
when they do not fit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Union

from pydantic import BaseModel

from .ir import Role, Workload
from .plan import Plan
from .spec import NAMESPACE, DockerCapacity, KubernetesCapacity, StackSpec, Target, cpu_millis, memory_mib
from .targets.docker import docker_cpus


@dataclass(frozen=True)
class Consumer:
    """One workload's share: ``count`` pods or containers, each with these resources."""

    name: str
    count: int
    cpu: int  # millicores requested (Kubernetes)
    memory: int  # MiB requested (Kubernetes)
    cpu_limit: int  # millicores as the target enforces them (Docker rounds to 0.1 CPU)
    memory_limit: int  # MiB
    #: The config key of its resources (``berth:services.api.resources``), or, for Berth's own
    #: workloads of a fixed size, the setting that adds them (``berth:monitoring``).
    source: str
    fixed: bool = False
    scaling_max: Optional[int] = None

    def total(self, field: str) -> int:
        return self.count * getattr(self, field)

    def where(self, field: str) -> str:
        return f"{self.source}, a fixed size" if self.fixed else f"{self.source}.{field}"


def _source(spec: StackSpec, w: Workload) -> tuple[str, bool]:
    """The config key of a workload's resources, or the setting that adds it (and its size is fixed)."""
    for section in ("services", "databases", "caches", "brokers", "graphs"):
        if w.name in getattr(spec, section):
            return f"{NAMESPACE}:{section}.{w.name}.resources", False
    if w.name.endswith("-replica") and w.name.removesuffix("-replica") in spec.databases:
        return f"{NAMESPACE}:databases.{w.name.removesuffix('-replica')}.resources", False
    if w.role == Role.PROXY:
        return f"{NAMESPACE}:proxy.resources", False
    if w.name == "elasticsearch":
        return f"{NAMESPACE}:logging.resources", False
    if w.role == Role.LOGGING:
        return f"{NAMESPACE}:logging", True
    if w.role == Role.BACKUP:
        return f"{NAMESPACE}:backups.{w.env.get('BERTH_DB_ID', '')}", True
    return f"{NAMESPACE}:monitoring", True


def consumers(plan: Plan) -> list[Consumer]:
    """What each workload of the plan takes, as its target runs it: Docker runs the autoscaler's
    minimum; on Kubernetes the minimum is what a deploy schedules (the maximum is checked apart)."""
    spec = plan.spec
    docker = spec.target == Target.DOCKER
    out = []
    for w in plan.workloads:
        r = w.resources
        source, fixed = _source(spec, w)
        cpu_limit = int(round(float(docker_cpus(r.cpu_limit)) * 1000)) if docker else cpu_millis(r.cpu_limit)
        out.append(Consumer(
            name=w.name, count=w.scaling.min if w.scaling else w.replicas,
            cpu=cpu_millis(r.cpu), memory=memory_mib(r.memory), cpu_limit=cpu_limit,
            memory_limit=memory_mib(r.memory_limit), source=source, fixed=fixed,
            scaling_max=w.scaling.max if w.scaling and not docker else None,
        ))
    return out


def _mem(mib: float) -> str:
    mib = int(-(-mib // 1))
    return f"{mib // 1024}Gi" if mib and mib % 1024 == 0 else f"{mib}Mi"


def _cpu(millis: float) -> str:
    millis = int(-(-millis // 1))
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


_SHOW = {"memory": _mem, "memory_limit": _mem, "cpu": _cpu, "cpu_limit": _cpu}


def biggest(items: list[Consumer], field: str, n: int = 5) -> str:
    """The largest consumers of ``field``: ``api 3 × 1Gi = 3Gi (berth:services.api.resources.memory_limit)``."""
    show = _SHOW[field]
    ranked = sorted((c for c in items if c.total(field)), key=lambda c: (-c.total(field), c.name))[:n]
    parts = []
    for c in ranked:
        amount = (f"{c.count} × {show(getattr(c, field))} = {show(c.total(field))}" if c.count > 1
                  else show(c.total(field)))
        parts.append(f"{c.name} {amount} ({c.where(field)})")
    return ", ".join(parts)


def _each(items: list[Consumer], field: str, most: float) -> str:
    """The consumers with one unit (container, pod) above ``most``."""
    show = _SHOW[field]
    over = sorted((c for c in items if getattr(c, field) > most), key=lambda c: (-getattr(c, field), c.name))
    return ", ".join(f"{c.name} {show(getattr(c, field))} ({c.where(field)})" for c in over)


def _declared(value: BaseModel) -> str:
    return json.dumps(value.model_dump(mode="json", exclude_unset=True))


def docker_problems(cap: DockerCapacity, items: list[Consumer]) -> list[str]:
    """Memory limits must fit the host (times ``memory_overcommit``); no container may have a CPU
    limit above the host's CPUs (Docker refuses it) or a memory limit above what the host has."""
    shown = f"{NAMESPACE}:docker.capacity = {_declared(cap)}"
    room = memory_mib(cap.memory) - memory_mib(cap.reserved_memory)
    allowed = room * cap.memory_overcommit
    total = sum(c.total("memory_limit") for c in items)
    problems = []
    if total > allowed:
        need = -(-(total / cap.memory_overcommit + memory_mib(cap.reserved_memory)) // 1024)
        over = "" if cap.memory_overcommit == 1 else f") × memory_overcommit {cap.memory_overcommit:g}"
        problems.append(
            f"{shown}: the stack's {sum(c.count for c in items)} containers may use {_mem(total)} of memory (the "
            f"sum of their memory limits), more than the host has for them: {_mem(allowed)} ({'(' if over else ''}"
            f"memory {cap.memory} - reserved_memory {cap.reserved_memory}{over}); when the host runs out, the kernel "
            f"kills a container. Biggest: {biggest(items, 'memory_limit')}. Fix: lower those memory limits or the "
            f"replicas, move part of the stack to another host, or declare the host it needs (memory: {need:g}Gi)"
        )
    elif any(c.memory_limit > room for c in items):
        problems.append(
            f"{shown}: memory limits above the {_mem(room)} the host has for containers: "
            f"{_each(items, 'memory_limit', room)}; lower them"
        )
    if any(c.cpu_limit > cpu_millis(cap.cpus) for c in items):
        problems.append(
            f"{shown}: CPU limits above the host's {cap.cpus} CPUs: {_each(items, 'cpu_limit', cpu_millis(cap.cpus))}; "
            f"Docker refuses to create such a container: lower them to at most {cap.cpus}"
        )
    return problems


def kubernetes_problems(cap: KubernetesCapacity, items: list[Consumer]) -> tuple[list[str], list[str]]:
    """Requests must fit the nodes' allocatable room, each pod one node; memory limits may add up to
    ``memory_overcommit`` times the allocatable memory. Warns when an autoscaler's max cannot be reached."""
    key = f"{NAMESPACE}:kubernetes.capacity"
    shown = f"{key} = {_declared(cap)}"
    node = {"cpu": cpu_millis(cap.cpus) - cpu_millis(cap.reserved_cpu),
            "memory": memory_mib(cap.memory) - memory_mib(cap.reserved_memory)}
    alloc = {f: cap.nodes * node[f] for f in node}
    nodes = f"{cap.nodes} node{'s' if cap.nodes > 1 else ''}"
    problems, warnings = [], []
    what = {"cpu": ("CPU", _cpu, f"cpus {cap.cpus} - reserved_cpu {cap.reserved_cpu}"),
            "memory": ("memory", _mem, f"memory {cap.memory} - reserved_memory {cap.reserved_memory}")}
    for f, (label, show, per_node) in what.items():
        total = sum(c.total(f) for c in items)
        if total > alloc[f]:
            need = -(-total // node[f])
            problems.append(
                f"{shown}: the stack's {sum(c.count for c in items)} pods request {show(total)} of {label}, more than "
                f"{nodes} can give them: {show(alloc[f])} ({cap.nodes} × ({per_node})); the scheduler would leave "
                f"pods Pending. Biggest: {biggest(items, f)}. Fix: lower those requests or the replicas, or declare "
                f"the nodes it needs (nodes: {need:g} of this size, or bigger nodes)"
            )
        if any(getattr(c, f) > node[f] for c in items):
            problems.append(
                f"{shown}: pods requesting more {label} than one node can give a pod ({show(node[f])}): "
                f"{_each(items, f, node[f])}; they would never be scheduled: lower the requests or declare bigger nodes"
            )
    limits = sum(c.total("memory_limit") for c in items)
    if limits > alloc["memory"] * cap.memory_overcommit:
        problems.append(
            f"{shown}: the stack's pods may use {_mem(limits)} of memory (the sum of their memory limits), more than "
            f"{_mem(alloc['memory'] * cap.memory_overcommit)} (the {_mem(alloc['memory'])} that {nodes} can give pods × "
            f"memory_overcommit {cap.memory_overcommit:g}); when pods use their limits together, the kubelet evicts "
            f"them. Biggest: {biggest(items, 'memory_limit')}. Fix: lower those memory limits, declare more or "
            "bigger nodes, or raise memory_overcommit knowingly"
        )
    if problems:
        return problems, warnings
    for c in items:
        if not c.scaling_max or c.scaling_max <= c.count:
            continue
        # Room for more of this workload while every other one stays at its deploy-time count.
        extra = min((alloc[f] - sum(x.total(f) for x in items)) // getattr(c, f)
                    for f in ("cpu", "memory") if getattr(c, f)) if (c.cpu or c.memory) else c.scaling_max
        if c.count + extra < c.scaling_max:
            warnings.append(
                f"{NAMESPACE}:services.{c.name}.autoscale.max = {c.scaling_max}: the {nodes} of {key} "
                f"{'have' if cap.nodes > 1 else 'has'} room for "
                f"{c.count + extra} {c.name} pods (each requests {_cpu(c.cpu)} CPU and {_mem(c.memory)}); under load the "
                "autoscaler's pods beyond that would stay Pending: lower max, or declare more nodes"
            )
    return problems, warnings


def capacity_problems(plan: Plan) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the plan against its declared capacity; none when none is declared."""
    spec = plan.spec
    cap: Union[DockerCapacity, KubernetesCapacity, None] = (
        spec.docker.capacity if spec.target == Target.DOCKER else spec.kubernetes.capacity)
    if cap is None:
        return [], []
    items = consumers(plan)
    if isinstance(cap, DockerCapacity):
        return docker_problems(cap, items), []
    return kubernetes_problems(cap, items)
