"""Checks on the whole plan, before any resource exists: what only the finished plan shows.

They read the plan they are given and never rebuild it. The spec's own checks
(``spec/checks.py``) saw each config key; these see every workload of every component at once:

* names: two workloads of one name would be one container (or one set of Kubernetes objects)
  declared twice, which the engine refuses as a duplicate URN, far from the cause. A name chosen in
  config can be one that Berth gives a workload of its own (``prometheus``, ``proxy``, ``db-backup``).
* capacity (``capacity.py``): the workloads' resources against the declared machines.
"""

from __future__ import annotations

import pulumi

from .capacity import capacity_problems
from .plan import Plan
from .spec import NAMESPACE, ConfigError, Target
from .targets import docker, kubernetes


def name_problems(plan: Plan) -> list[str]:
    """Workload names that two things in the plan use, each named by the config key that adds it."""
    keys: dict[str, list[str]] = {}
    for key, w in plan.owned():
        keys.setdefault(w.name, []).append(key)
    problems = []
    for name, owners in sorted(keys.items()):
        if len(owners) < 2:
            continue
        chosen = [k for k in owners if k.endswith(f".{name}")]  # the name a team gave in config
        if chosen:
            others = " and ".join(sorted({k for k in owners if k != chosen[0]}))
            problems.append(f"{chosen[0]}: the name is taken by {others}'s {name}; rename it")
        else:
            problems.append(f"workload {name!r} is added by both {' and '.join(owners)}; rename one of them")
    return problems


def object_problems(plan: Plan) -> list[str]:
    """Names two workloads would give the same object on the target, though the workloads' own names
    differ: a service ``proxy-files`` and the container that writes the proxy's generated files
    (Docker), a service ``worker-1`` and the first of two ``worker`` containers, a service named like
    the namespace's baseline NetworkPolicy (Kubernetes). Each by the config key that chose it."""
    spec = plan.spec
    owners: dict[tuple[str, str], list[tuple[str, str, str]]] = {}  # (kind, name) -> [(key, workload, what)]
    if spec.target == Target.DOCKER:
        ctx = docker.docker_context(plan.prefix)
        for key, w in plan.owned():
            for kind, name, what in docker.object_names(ctx, w):
                owners.setdefault((kind, name), []).append((key, w.name, what))
    else:
        kctx = kubernetes.kube_context(spec, plan.prefix)
        for m in kubernetes.namespace_manifests(kctx)[1:]:
            owners.setdefault((m["kind"], m["metadata"]["name"]), []).append(
                (f"{NAMESPACE}:kubernetes", "the namespace", "namespace baseline policy"))
        peers = {w.name: w for w in plan.workloads}
        for key, w in plan.owned():
            for m in kubernetes.manifests(kctx, w, peers):
                owners.setdefault((m["kind"], m["metadata"]["name"]), []).append((key, w.name, m["kind"]))
    problems = []
    for (kind, name), users in sorted(owners.items()):
        if len({u[0] for u in users}) < 2:
            continue  # one key's own objects (a backup volume its scheduler and restore job share)
        # The one that chose the name: a service whose own name the object bears.
        chosen = next((u for u in users if u[0].startswith(f"{NAMESPACE}:services.") and name.endswith(u[1])),
                      users[-1])
        others = sorted({f"{u[0]}'s {u[2]}" for u in users if u[0] != chosen[0]})
        problems.append(f"{chosen[0]}: its {kind.lower()} {name!r} would also be {' and '.join(others)} "
                        f"({kind.lower()} names are one per {'host' if spec.target == Target.DOCKER else 'namespace'}); "
                        "rename it")
    return problems


def check_plan(plan: Plan) -> None:
    """Raise ``ConfigError`` with every problem of the plan; log its warnings (an autoscaler's
    maximum that the nodes cannot reach)."""
    problems = name_problems(plan)
    if not problems:  # the same workload name twice is the same objects twice: said once, above
        problems = object_problems(plan)
    capacity, warnings = capacity_problems(plan)
    problems += capacity
    if problems:
        raise ConfigError(problems)
    for w in warnings:
        pulumi.log.warn(w)
