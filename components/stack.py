"""Build a whole stack from the validated spec: spec → plan → checks → resources on the target.

The only place components meet a target: ``build`` plans the stack (``plan.py``), checks the plan
(``checks.py``) before any resource exists, then creates the platform and each component with its
share of the plan, in dependency order.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi

from .app_service import AppService
from .backup import BackupJob
from .broker import Broker
from .cache import Cache
from .checks import check_plan
from .database import Database
from .graph import GraphDatabase
from .logs import Logging
from .monitoring import Monitoring
from .plan import Plan, plan_stack
from .proxy import Proxy
from .live import check_ownership, stack_owner
from .spec import ConfigError, StackSpec, Target
from .targets.docker import DockerTarget
from .targets.kubernetes import KubernetesTarget, kube_context


class Platform(pulumi.ComponentResource):
    """The shared ground of a stack: Docker networks, or the Kubernetes namespace and its baseline policies.

    Before anything is declared, what the target already has under the stack's names is read: names
    another stack owns are refused (``live.py``), at preview as at up."""

    def __init__(self, name: str, spec: StackSpec, opts: Optional[pulumi.ResourceOptions] = None,
                 prefix: Optional[str] = None):
        """``prefix`` names what the target creates (containers, volumes, the namespace); it is the
        resource's ``name`` unless given (a YAML program names the resource and the prefix apart)."""
        prefix = prefix or name
        owner = stack_owner()
        ctx = kube_context(spec, prefix, owner) if spec.target == Target.KUBERNETES else None
        problems, warnings = check_ownership(
            spec.target.value, prefix=prefix, owner=owner, name_set=spec.name is not None,
            docker_host=spec.docker.host, context=spec.kubernetes.context,
            namespace=ctx.namespace if ctx else None, namespace_set=spec.kubernetes.namespace is not None)
        if problems:
            raise ConfigError(problems)
        for w in warnings:
            pulumi.log.warn(w)
        super().__init__("berth:index:Platform", name, None, opts)
        if ctx is None:
            self.target: Any = DockerTarget(prefix, spec.docker.host, spec.protect, parent=self, owner=owner,
                                            engine=spec.docker.engine)
        else:
            self.target = KubernetesTarget(ctx, spec.kubernetes.context, spec.protect, parent=self)
        self.register_outputs({})


def build(spec: StackSpec, prefix: str) -> dict[str, Any]:
    """Plan the stack, check the plan, then create every component; returns the stack outputs.
    A plan that fails its checks raises ``ConfigError`` before any resource exists."""
    plan = plan_stack(spec, prefix)
    try:
        check_plan(plan)
        return deploy(plan)
    except Exception as exc:
        # What was derived from a planned value waits for it, and the program with it: the values
        # no resource gave (none, when a check fails) fail with the program's own error.
        for later in plan.laters:
            if not later.resolved:
                later.fail(exc)
        raise


def deploy(plan: Plan) -> dict[str, Any]:
    """Create the platform and every component from its share of the plan."""
    spec, prefix = plan.spec, plan.prefix
    platform = Platform(prefix, spec)
    target = platform.target
    if spec.target == Target.KUBERNETES:
        target.register(plan.workloads)  # NetworkPolicies select peers that are created later

    dbs = {n: Database(n, spec.databases[n], target, plan=p) for n, p in plan.databases.items()}
    caches = {n: Cache(n, spec.caches[n], target, plan=p) for n, p in plan.caches.items()}
    brokers = {n: Broker(n, spec.brokers[n], target, plan=p) for n, p in plan.brokers.items()}
    graphs = {n: GraphDatabase(n, spec.graphs[n], target, plan=p) for n, p in plan.graphs.items()}
    stores: dict[str, list[pulumi.Resource]] = {
        **{n: d.ready for n, d in dbs.items()}, **{n: c.ready for n, c in caches.items()},
        **{n: b.ready for n, b in brokers.items()}, **{n: g.ready for n, g in graphs.items()},
    }
    logging = Logging("logging", spec.logging, prefix, target, plan=plan.logging) if plan.logging else None

    # Backups first: with pre_deploy, apps roll out only after the dump succeeded.
    predeploy: list[pulumi.Resource] = []
    for db, part in plan.backups.items():
        job = BackupJob(db, spec.databases[db], spec.backups[db], dbs[db].passwords.credentials(), target, dbs[db].ready,
                        plan=part)
        predeploy += job.predeploy

    services: dict[str, AppService] = {}
    for n in plan.order:
        s = spec.services[n]
        deps: list[pulumi.Resource] = list(predeploy)
        for u in (s.uses if isinstance(s.uses, list) else list(s.uses)):
            deps += stores[u]
        for d in s.depends_on:
            deps += services[d].ready if d in services else stores[d]
        services[n] = AppService(n, s, target, plan.connections, spec.secrets, deps, plan=plan.services[n])

    outputs: dict[str, Any] = {
        "target": spec.target.value,
        "databases": {n: {"host": d.host, "port": d.port, "url": d.connection_url} for n, d in dbs.items()},
        "caches": {n: {"host": c.host, "url": c.url} for n, c in caches.items()},
        **({"brokers": {n: {"host": b.host, "url": b.url} for n, b in brokers.items()}} if brokers else {}),
        **({"graphs": {n: {"host": g.host, "uri": g.uri} for n, g in graphs.items()}} if graphs else {}),
        "services": {n: getattr(s, "url", s.host) for n, s in services.items()},
    }
    for s in services.values():
        outputs.update(s.exports)  # secrets shared with other stacks (secret_env ... export)
    for n, d in dbs.items():
        if spec.databases[n].replica:
            outputs["databases"][n]["replica_url"] = d.replica_url

    monitoring = None
    if plan.monitoring:
        deps_by_store = {**{n: d.ready for n, d in dbs.items()}, **{n: c.ready for n, c in caches.items()}}
        monitoring = Monitoring("monitoring", spec.monitoring, prefix, target, depends_on=deps_by_store,
                                plan=plan.monitoring)
        outputs["grafana_admin_password"] = pulumi.Output.secret(monitoring.grafana_password)

    if plan.proxy:
        ready = [r for s in services.values() for r in s.ready] + (monitoring.ready if monitoring else [])
        ready += logging.kibana_ready if logging else []
        proxy = Proxy("proxy", spec.proxy, spec.domain, target, plan.proxy.backends, ready, secrets=spec.secrets,
                      plan=plan.proxy)
        outputs["url"] = proxy.url

    waiting = sorted(later.name for later in plan.laters if not later.resolved)
    if waiting:  # a bug in Berth, not in the config
        raise RuntimeError(f"planned values never given by their resources: {', '.join(waiting)}")
    return outputs
