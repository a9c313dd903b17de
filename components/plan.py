"""The plan: the whole stack, computed from the spec before any resource exists.

The stack is built in one direction: spec → plan → checks → target. ``plan_stack`` computes every
workload of every component once, with the components' own pure planning functions; the checks
(``checks.py``: names, capacity) read the plan they are given, and ``stack.py`` hands it to the
target, each component deploying its share. Values that only a resource can give (generated
passwords, certificates, other stacks' outputs) are ``Later`` values in the plan; each component
resolves its own when it creates the resource. Nothing here creates a resource.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional

import pulumi

from .app_service import Connection, ServicePlan, plan_service
from .backup import BackupPlan, alert_after_seconds, plan_backup
from .broker import BrokerPlan, amqp_url, plan_broker
from .cache import CachePlan, monitor_password, plan_cache, redis_url
from .database import DatabasePlan, connection_url, database_passwords, monitor_url, plan_database
from .graph import BOLT_PORT, NEO4J_USER, GraphPlan, plan_graph
from .ir import Later, Role, Workload
from .logs import KIBANA_PORT, LoggingPlan, plan_logging, shipping_env
from .monitoring import PUSHGATEWAY, MetricsApp, MonitoringPlan, Watched, plan_monitoring
from .proxy import Backend, ProxyPlan, plan_proxy
from .renderers.nginx import ProxyRoute
from .spec import NAMESPACE, StackSpec, Target, service_order


@dataclass(frozen=True)
class Plan:
    """Every workload of the stack with what each component needs to deploy it, by component and
    name (names sorted; ``order`` is the services' deploy order, ``depends_on`` first)."""

    spec: StackSpec
    prefix: str
    #: A short hash of what the apps run: names the pre-deploy backup job (``revision``).
    revision: str
    databases: Mapping[str, DatabasePlan]
    caches: Mapping[str, CachePlan]
    brokers: Mapping[str, BrokerPlan]
    graphs: Mapping[str, GraphPlan]
    #: What a service that ``uses`` a store gets: its URL (with the password to come), by store.
    connections: Mapping[str, Connection]
    logging: Optional[LoggingPlan]
    backups: Mapping[str, BackupPlan]
    services: Mapping[str, ServicePlan]
    order: tuple[str, ...]
    monitoring: Optional[MonitoringPlan]
    proxy: Optional[ProxyPlan]

    @property
    def workloads(self) -> list[Workload]:
        """Every workload the stack deploys, by component (stores, logging, backups, services,
        monitoring, the proxy), each by name."""
        return [w for _, w in self.owned()]

    def owned(self) -> list[tuple[str, Workload]]:
        """Every workload with the config key that adds it (``berth:services.api``,
        ``berth:databases.db.replica``, ``berth:monitoring``), in the order of ``workloads``."""
        out: list[tuple[str, Workload]] = []
        for section in ("databases", "caches", "brokers", "graphs"):
            for name, part in getattr(self, section).items():
                out += [(f"{NAMESPACE}:{section}.{name}" + ("" if w.name == name else ".replica"), w)
                        for w in part.workloads]
        out += [(f"{NAMESPACE}:logging", w) for w in (self.logging.workloads if self.logging else ())]
        out += [(f"{NAMESPACE}:backups.{db}", w) for db, part in self.backups.items() for w in part.workloads]
        out += [(f"{NAMESPACE}:services.{name}", part.workload) for name, part in self.services.items()]
        out += [(f"{NAMESPACE}:monitoring", w) for w in (self.monitoring.workloads if self.monitoring else ())]
        out += [(f"{NAMESPACE}:proxy", self.proxy.workload)] if self.proxy and self.proxy.workload else []
        return out

    @property
    def laters(self) -> Iterator[Later]:
        """Every value the plan waits for: the stack fails naming any left unresolved once every
        component exists (a resource waiting for one would wait forever)."""
        for db in self.databases.values():
            yield from db.passwords.laters()
        for cache in self.caches.values():
            yield from cache.laters()
        for parts in (self.brokers, self.graphs):
            yield from (part.password for part in parts.values())
        if self.logging:
            yield from self.logging.laters()
        for svc in self.services.values():
            yield from svc.secrets.values()
        if self.monitoring:
            yield self.monitoring.grafana_password
        if self.proxy and self.proxy.cert and self.proxy.key:
            yield from (self.proxy.cert, self.proxy.key)


def revision(spec: StackSpec) -> str:
    """A short hash of what the apps run: the pre-deploy backup job is renewed when it changes."""
    blob = json.dumps({n: s.model_dump(mode="json") for n, s in sorted(spec.services.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def edge_of(target: Target) -> str:
    """What routed requests come from on ``target``: the nginx container, or the ingress controller."""
    return "proxy" if target == Target.DOCKER else "ingress-controller"


def edge(spec: StackSpec) -> str:
    return edge_of(spec.target)


def public_url(domain: str, https_port: int, path: str) -> str:
    """Where the edge serves ``path``: ``https://domain[:port]path``."""
    return f"https://{domain}{'' if https_port == 443 else f':{https_port}'}{path}"


def _url(spec: StackSpec, path: str) -> str:
    return public_url(spec.domain, spec.proxy.https_port if spec.proxy else 443, path)


def consumers(spec: StackSpec, backups: Mapping[str, BackupPlan], monitoring: Optional[MonitoringPlan]) -> dict[str, set[str]]:
    """Who connects to whom: drives NetworkPolicies (ingress allowed only from these). Berth's own
    clients of a store (its backup jobs, its exporter) are read from their planned workloads."""
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
    for db, part in backups.items():
        allow.setdefault(db, set()).update(w.name for w in part.workloads)
    for w in monitoring.workloads if monitoring else ():
        if w.role == Role.EXPORTER:
            allow.setdefault(w.name.removesuffix("-exporter"), set()).add(w.name)
    if spec.proxy:
        for r in spec.proxy.routes:
            allow[r.service].add(edge(spec))
    if monitoring:
        for n, s in spec.services.items():
            if s.metrics:
                allow[n].add("prometheus")
    return allow


def plan_stack(spec: StackSpec, prefix: str) -> Plan:
    """The whole stack's plan (pure)."""
    mon = spec.monitoring if spec.monitoring and spec.monitoring.enabled else None
    lg = spec.logging if spec.logging and spec.logging.enabled else None
    rev = revision(spec)

    # The stores' passwords first: backups, exporters and services pass them through. A database has
    # a role (and a password) for its exporter and its backups only when the stack has them.
    db_passwords = {n: database_passwords(n, d, monitored=bool(mon), backed_up=n in spec.backups)
                    for n, d in sorted(spec.databases.items())}
    passwords = {n: Later(f"{n}-password") for n in sorted([*spec.caches, *spec.brokers, *spec.graphs])}
    cache_monitors = {n: monitor_password(n) for n in sorted(spec.caches)} if mon else {}

    # Backups, then monitoring: their workloads are among the clients the databases admit.
    backups: dict[str, BackupPlan] = {}
    for db, b in sorted(spec.backups.items()):
        s3 = None
        if b.s3:
            s3 = (pulumi.Output.secret(spec.secrets[b.s3.access_key_secret]),
                  pulumi.Output.secret(spec.secrets[b.s3.secret_key_secret]))
        backups[db] = plan_backup(db, spec.databases[db], b, db_passwords[db].credentials(), spec.target.value, prefix,
                                  rev, s3, PUSHGATEWAY if mon else None)
    grafana_route = None
    if mon and mon.grafana and mon.grafana_path and spec.proxy:
        grafana_route = ProxyRoute(mon.grafana_path, "grafana", allow_from=tuple(mon.grafana_allow_from))
    monitoring = None
    if mon:
        apps = [MetricsApp(n, s.metrics.port or s.port, s.metrics.path) for n, s in sorted(spec.services.items())
                if s.metrics]
        watched = [Watched(n, d.engine.value, monitor_url(n, d, db_passwords[n].monitor.output))  # type: ignore[union-attr]
                   for n, d in sorted(spec.databases.items())]
        watched += [Watched(n, "redis", cache_monitors[n].output) for n in sorted(spec.caches)]
        backup_ages = [(db, alert_after_seconds(b)) for db, b in spec.backups.items()]
        backup_clients = [w.name for db in spec.backups for w in backups[db].workloads]
        monitoring = plan_monitoring(mon, prefix, apps, watched, backup_ages,
                                     _url(spec, mon.grafana_path) if grafana_route else None,
                                     (edge(spec),) if grafana_route else (), backup_clients)

    allow = consumers(spec, backups, monitoring)
    databases = {n: plan_database(n, d, db_passwords[n], sorted(allow.get(n, ())),
                                  replica_allow_from=sorted(allow.get(f"{n}-replica", ())))
                 for n, d in sorted(spec.databases.items())}
    caches = {n: plan_cache(n, c, passwords[n], sorted(allow.get(n, ())), cache_monitors.get(n))
              for n, c in sorted(spec.caches.items())}
    brokers = {n: plan_broker(n, b, passwords[n], sorted(allow.get(n, ()))) for n, b in sorted(spec.brokers.items())}
    graphs = {n: plan_graph(n, g, passwords[n], sorted(allow.get(n, ()))) for n, g in sorted(spec.graphs.items())}
    connections: dict[str, Connection] = {}
    for n, d in sorted(spec.databases.items()):
        password = db_passwords[n].owner.output
        replica = connection_url(n, d, password, host=f"{n}-replica") if d.replica else None
        connections[n] = Connection(d.engine.value, connection_url(n, d, password), replica)
    for n in sorted(spec.caches):
        connections[n] = Connection("redis", redis_url(n, passwords[n].output))
    for n, b in sorted(spec.brokers.items()):
        connections[n] = Connection("rabbitmq", amqp_url(n, b, passwords[n].output))
    for n in sorted(spec.graphs):
        connections[n] = Connection("neo4j", pulumi.Output.from_input(f"bolt://{n}:{BOLT_PORT}"), extra=(
            ("USER", pulumi.Output.from_input(NEO4J_USER)), ("PASSWORD", pulumi.Output.secret(passwords[n].output))))

    logging = None
    if lg:
        kibana_url = _url(spec, lg.kibana_path) if lg.kibana and lg.kibana_path and spec.proxy else None
        logging = plan_logging(lg, prefix, sorted(spec.services), kibana_url, (edge(spec),) if kibana_url else ())

    services: dict[str, ServicePlan] = {}
    for n, s in sorted(spec.services.items()):
        if lg:
            # Where to ship logs; the service's own env wins. No dependency: log transports retry.
            s = s.model_copy(update={"env": {**shipping_env(), **s.env}})
        services[n] = plan_service(n, s, connections, spec.secrets, sorted(allow.get(n, ())))

    proxy = None
    if spec.proxy:
        backends = {n: Backend(n, s.port, s.autoscale.min if s.autoscale else s.replicas)
                    for n, s in spec.services.items() if s.port}
        extra = []
        if grafana_route:
            backends["grafana"] = Backend("grafana", 3000)
            extra.append(grafana_route)
        if lg and lg.kibana and lg.kibana_path:
            backends["kibana"] = Backend("kibana", KIBANA_PORT)
            extra.append(ProxyRoute(lg.kibana_path, "kibana", allow_from=tuple(lg.kibana_allow_from)))
        known = {p.workload.name: p.workload for p in services.values()}
        known.update({w.name: w for w in (monitoring.workloads if monitoring else ())})
        known.update({w.name: w for w in (logging.workloads if logging else ())})
        upstreams = [known[b] for b in sorted(backends) if b in known]
        proxy = plan_proxy(spec.proxy, spec.domain, spec.target.value, backends, extra, upstreams)

    return Plan(spec=spec, prefix=prefix, revision=rev, databases=databases, caches=caches, brokers=brokers,
                graphs=graphs, connections=connections, logging=logging, backups=backups, services=services,
                order=tuple(service_order(spec.services)[0]), monitoring=monitoring, proxy=proxy)
