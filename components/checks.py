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
from .spec import ConfigError


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


def check_plan(plan: Plan) -> None:
    """Raise ``ConfigError`` with every problem of the plan; log its warnings (an autoscaler's
    maximum that the nodes cannot reach)."""
    problems = name_problems(plan)
    capacity, warnings = capacity_problems(plan)
    problems += capacity
    if problems:
        raise ConfigError(problems)
    for w in warnings:
        pulumi.log.warn(w)
