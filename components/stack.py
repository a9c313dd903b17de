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
                egress_except=tuple(spec.kubernetes.egress_except),
            )
            self.target = KubernetesTarget(ctx, spec.kubernetes.context, spec.protect, parent=self)
        self.register_outputs({})


def service_order(spec: StackSpec) -> list[str]:
    """Services in dependency order (``depends_on`` first); cycles were refused by the spec."""
    from .spec import service_order as order

    return order(spec.services)[0]


def revision(spec: StackSpec) -> str:
    """A short hash of what the apps run: the pre-deploy backup job is renewed when it changes."""
    import hashlib
    import json

    blob = json.dumps({n: s.model_dump(mode="json") for n, s in sorted(spec.services.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def extra_workload_names(spec: StackSpec) -> dict[str, list[str]]:
    """Workloads of BackupJob and Monitoring per thing they connect to."""
    names: dict[str, list[str]] = {}
    for db, b in spec.backups.items():
        lst = names.setdefault(db, [])
        if spec.target == Target.KUBERNETES:
            lst += [f"{db}-backup-{t.name}" for t in b.tiers]
        else:
            lst.append(f"{db}-backup")
        if b.pre_deploy:
            lst.append(f"{db}-predeploy-backup-{revision(spec)}")
        if b.restore_from:
            lst.append(f"{db}-restore")
    if spec.monitoring and spec.monitoring.enabled:
        for store in [*spec.databases, *spec.caches]:
            names.setdefault(store, []).append(f"{store}-exporter")
    return names


def consumers(spec: StackSpec) -> dict[str, set[str]]:
    """Who connects to whom: drives NetworkPolicies (ingress allowed only from these)."""
    allow: dict[str, set[str]] = {
        n: set() for n in [*spec.databases, *spec.caches, *spec.brokers, *spec.graphs, *spec.services]
    }
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
    for store, names in extra_workload_names(spec).items():
        allow.setdefault(store, set()).update(names)
    edge = "proxy" if spec.target == Target.DOCKER else "ingress-controller"
    if spec.proxy:
        for r in spec.proxy.routes:
            allow[r.service].add(edge)
    if spec.monitoring and spec.monitoring.enabled:
        for n, s in spec.services.items():
            if s.metrics:
                allow[n].add("prometheus")
    if logging_enabled(spec) and spec.logging.kibana and spec.logging.kibana_path and spec.proxy:
        allow["kibana"] = {edge}
    return allow


def logging_enabled(spec: StackSpec) -> bool:
    return bool(spec.logging and spec.logging.enabled)


def planned_workloads(spec: StackSpec) -> list:
    """Workload names known before creation (NetworkPolicy peers select by name)."""
    from .ir import Role, Workload

    names = [*spec.databases, *[f"{d}-replica" for d, s in spec.databases.items() if s.replica], *spec.caches,
             *spec.services, *[n for lst in extra_workload_names(spec).values() for n in lst]]
    if spec.proxy and spec.target == Target.DOCKER:
        names.append("proxy")
    if spec.monitoring and spec.monitoring.enabled:
        names += ["prometheus", "grafana", *(["pushgateway"] if spec.backups else [])]
    names += [*spec.brokers, *spec.graphs]
    if logging_enabled(spec):
        names += ["elasticsearch", "logstash", *(["kibana"] if spec.logging.kibana else [])]
    return [Workload(name=n, role=Role.APP, image="-") for n in names]


def build(spec: StackSpec, prefix: str) -> dict[str, Any]:
    """Create every component of the stack; returns the stack outputs."""
    from .backup import BackupJob
    from .broker import Broker
    from .capacity import check_capacity
    from .graph import GraphDatabase
    from .logs import KIBANA_PORT, Logging, shipping_env
    from .monitoring import MetricsApp, Monitoring, Watched
    from .proxy import Backend, Proxy
    from .renderers.backup import max_interval_seconds
    from .renderers.nginx import ProxyRoute

    check_capacity(spec, prefix)  # a stack that does not fit its machines fails before any resource exists
    platform = Platform(prefix, spec)
    target = platform.target
    allow = consumers(spec)
    if spec.target == Target.KUBERNETES:
        target.register(planned_workloads(spec))

    dbs = {n: Database(n, d, target, sorted(allow.get(n, ())), replica_allow_from=sorted(allow.get(f"{n}-replica", ())))
           for n, d in sorted(spec.databases.items())}
    caches = {n: Cache(n, c, target, sorted(allow.get(n, ()))) for n, c in sorted(spec.caches.items())}
    connections: dict[str, Connection] = {}
    for n, db in dbs.items():
        connections[n] = Connection(spec.databases[n].engine.value, db.connection_url, getattr(db, "replica_url", None))
    for n, c in caches.items():
        connections[n] = Connection("redis", c.url)
    brokers = {n: Broker(n, b, target, sorted(allow.get(n, ()))) for n, b in sorted(spec.brokers.items())}
    for n, b in brokers.items():
        connections[n] = Connection("rabbitmq", b.url)
    graphs = {n: GraphDatabase(n, g, target, sorted(allow.get(n, ()))) for n, g in sorted(spec.graphs.items())}
    for n, g in graphs.items():
        connections[n] = Connection("neo4j", g.uri, extra=(("USER", g.user), ("PASSWORD", pulumi.Output.secret(g.password))))
    stores: dict[str, list[pulumi.Resource]] = {
        **{n: d.ready for n, d in dbs.items()}, **{n: c.ready for n, c in caches.items()},
        **{n: b.ready for n, b in brokers.items()}, **{n: g.ready for n, g in graphs.items()},
    }

    logging = None
    if logging_enabled(spec):
        lg = spec.logging
        kibana_url = None
        if lg.kibana and lg.kibana_path and spec.proxy:
            port = "" if spec.proxy.https_port == 443 else f":{spec.proxy.https_port}"
            kibana_url = f"https://{spec.domain}{port}{lg.kibana_path}"
        edge = "proxy" if spec.target == Target.DOCKER else "ingress-controller"
        logging = Logging("logging", lg, prefix, target, sorted(spec.services), kibana_url,
                          (edge,) if kibana_url else ())

    # Backups first: with pre_deploy, apps roll out only after the dump succeeded.
    backups: dict[str, BackupJob] = {}
    predeploy: list[pulumi.Resource] = []
    for db, b in sorted(spec.backups.items()):
        s3 = None
        if b.s3:
            s3 = (pulumi.Output.secret(spec.secrets[b.s3.access_key_secret]),
                  pulumi.Output.secret(spec.secrets[b.s3.secret_key_secret]))
        pushgateway = "pushgateway" if spec.monitoring and spec.monitoring.enabled else None
        backups[db] = BackupJob(db, spec.databases[db], b, dbs[db].password, target, dbs[db].ready, revision(spec), s3,
                                pushgateway)
        predeploy += backups[db].predeploy

    services: dict[str, AppService] = {}
    for n in service_order(spec):
        s = spec.services[n]
        used = s.uses if isinstance(s.uses, list) else list(s.uses)
        deps: list[pulumi.Resource] = list(predeploy)
        for u in used:
            deps += stores[u]
        for d in s.depends_on:
            deps += services[d].ready if d in services else stores[d]
        if logging:
            # Where to ship logs; the service's own env wins. No dependency: log transports retry.
            s = s.model_copy(update={"env": {**shipping_env(), **s.env}})
        services[n] = AppService(n, s, target, connections, spec.secrets, deps, sorted(allow.get(n, ())))

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

    mon = spec.monitoring if spec.monitoring and spec.monitoring.enabled else None
    grafana_route = None
    if mon and mon.grafana and mon.grafana_path and spec.proxy:
        grafana_route = ProxyRoute(mon.grafana_path, "grafana", allow_from=tuple(mon.grafana_allow_from))
    monitoring = None
    if mon:
        apps = [MetricsApp(n, s.metrics.port or s.port, s.metrics.path) for n, s in sorted(spec.services.items()) if s.metrics]
        watched = [Watched(n, d.engine.value, dbs[n].connection_url)
                   for n, d in sorted(spec.databases.items())]
        watched += [Watched(n, "redis", caches[n].password) for n in sorted(caches)]
        backup_ages = [(db, max(max_interval_seconds(t.schedule) for t in b.tiers) + 3600) for db, b in spec.backups.items()]
        edge = "proxy" if spec.target == Target.DOCKER else "ingress-controller"
        port = "" if not spec.proxy or spec.proxy.https_port == 443 else f":{spec.proxy.https_port}"
        url = f"https://{spec.domain}{port}{mon.grafana_path}" if grafana_route else None
        deps = {**{n: d.ready for n, d in dbs.items()}, **{n: c.ready for n, c in caches.items()}}
        backup_clients = [n for db in spec.backups for n in extra_workload_names(spec).get(db, []) if "-exporter" not in n]
        monitoring = Monitoring("monitoring", mon, prefix, target, apps, watched, deps, backup_ages, url,
                                (edge,) if grafana_route else (), backup_clients)
        outputs["grafana_admin_password"] = pulumi.Output.secret(monitoring.grafana_password)

    if spec.proxy:
        backends = {n: Backend(n, s.port, s.autoscale.min if s.autoscale else s.replicas)
                    for n, s in spec.services.items() if s.port}
        extra = []
        if grafana_route:
            backends["grafana"] = Backend("grafana", 3000)
            extra.append(grafana_route)
        if logging and logging.kibana_ready and spec.logging.kibana_path:
            backends["kibana"] = Backend("kibana", KIBANA_PORT)
            extra.append(ProxyRoute(spec.logging.kibana_path, "kibana", allow_from=tuple(spec.logging.kibana_allow_from)))
        ready = [r for s in services.values() for r in s.ready] + (monitoring.ready if monitoring else [])
        ready += logging.kibana_ready if logging else []
        known = {s.workload.name: s.workload for s in services.values()}
        known.update({w.name: w for w in (monitoring.workloads if monitoring else [])})
        known.update({w.name: w for w in (getattr(logging, "workloads", None) or [])})
        upstreams = [known[b] for b in sorted(backends) if b in known]
        proxy = Proxy("proxy", spec.proxy, spec.domain, target, backends, ready, extra, upstreams,
                      secrets=spec.secrets)
        outputs["url"] = proxy.url
    return outputs
