"""Berth's components for a hand-written Pulumi program.

``berth.main()`` builds a whole stack from stack config. A program of your own can instead create the
components one by one, next to raw provider resources::

    import berth

    platform = berth.Platform("shop", target="docker")
    db = berth.Database("db", berth.DatabaseSpec(storage="1Gi"), platform, clients=["api"])
    api = berth.AppService("api", berth.ServiceSpec(image="ghcr.io/acme/api:1.4.2", port=8000, uses=["db"]),
                           platform)
    # db.connection_url (secret) can feed any other resource.

Each component takes its name, its spec model (the same pydantic models, with the same defaults and
checks, as the ``berth:`` config keys: ``berth:databases.db`` is a ``DatabaseSpec``) and the
``Platform``. The classes here are the config-driven components with typed arguments: they declare
the same resources (same types, names and inputs) as ``berth.main()`` does for the equivalent stack
config, so a project can move between the two without replacing anything.

What the stack config computes from the whole stack is given here explicitly, and checked:

* ``clients`` — which workloads may connect to a component. On Kubernetes it becomes the
  component's NetworkPolicy (the namespace denies everything else); on Docker every container on the
  stack's internal network can connect, but the lists are checked on both targets so a program works
  on either. ``"proxy"`` stands for the HTTPS edge (the nginx container, or the ingress controller).
* ``uses`` / ``depends_on`` in a ``ServiceSpec`` name components created earlier on the same platform.
"""

from __future__ import annotations

import re
import warnings
from typing import Literal, Mapping, Optional, Sequence, Union

import pulumi

from berth.components import app_service as _app
from berth.components import backup as _backup
from berth.components import broker as _broker
from berth.components import cache as _cache
from berth.components import database as _database
from berth.components import graph as _graph
from berth.components import monitoring as _monitoring
from berth.components import proxy as _proxy
from berth.components import stack as _stack
from berth.components.ir import Role, Workload
from berth.components.spec.database import reserved_user_problem
from berth.components.spec import (
    BackupSpec,
    BrokerSpec,
    CacheSpec,
    DatabaseSpec,
    DockerSpec,
    Environment,
    GraphDatabaseSpec,
    KubernetesSpec,
    MonitoringSpec,
    ProxySpec,
    ServiceSpec,
    StackSpec,
    Target,
    TlsMode,
    check_targets,
)
from berth.components.spec.checks import check_names, check_references, check_inputs
from berth.components.plan import edge_of, public_url
from berth.components.renderers.nginx import ProxyRoute as _ProxyRoute

__all__ = ["AppService", "Broker", "Cache", "Database", "GraphDatabase", "Monitoring", "Platform", "Proxy", "PROXY"]

#: In ``clients``: the HTTPS edge (Berth's ``Proxy``). On Docker it is the nginx container named
#: ``proxy``; on Kubernetes the ingress controller's namespace.
PROXY = "proxy"

_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")  # as for the names of berth: config keys


class Platform(_stack.Platform):
    """Where the components go: a Docker host (the stack's networks) or a Kubernetes namespace (with
    Pod Security "restricted" and a default-deny NetworkPolicy).

    ``name`` prefixes what the stack creates on the target (Docker containers ``<name>-api``,
    volumes, networks; the default namespace): an RFC 1123 label, and two stacks on one Docker host
    must use different names. ``environment="prod"`` protects and retains data volumes, PVCs,
    StatefulSets and the namespace (as ``berth:environment: prod``).

    ``prefix``, when given, names what the target creates instead of ``name`` (which stays the
    resource's name): Berth's component package takes it from a YAML program's ``name`` property.

    Docker only: ``docker_host`` (``ssh://deploy@host``; default: the local engine, ``DOCKER_HOST``) and
    ``docker_engine`` (``docker``, the default, or ``podman``: what serves that host's Docker API).
    Kubernetes only: ``namespace`` (default: ``name``), ``kubernetes_context`` (default: the current
    kubeconfig context), ``storage_class`` and ``ingress_namespace`` (allowed in for the ``Proxy``).

    ``monitoring`` (a ``MonitoringSpec``, as ``berth:monitoring``): the stack is monitored. It is given
    here, before the stores, because each database then gets a role for its exporter from its first
    start, each store and each service with ``metrics`` admits its scraper, and backups report to the
    Pushgateway; ``berth.Monitoring`` (after the services, before the ``Proxy``) then creates
    Prometheus, the exporters, the Pushgateway and Grafana for what was created on the platform.

    Attributes for raw resources next to Berth's: ``provider`` (the explicit provider, or ``None``
    for the default one), ``internal_network`` (Docker: the name of the network the datastores are
    on, as an Output that depends on it) and ``namespace`` (Kubernetes). A raw resource that must
    come after the namespace or the networks can list the platform in ``depends_on``.
    """

    def __init__(
        self,
        name: str,
        target: Union[Literal["docker", "kubernetes"], Target] = "docker",
        *,
        environment: Union[Literal["dev", "staging", "prod"], Environment] = "dev",
        namespace: Optional[str] = None,
        docker_host: Optional[str] = None,
        docker_engine: Literal["docker", "podman"] = "docker",
        kubernetes_context: Optional[str] = None,
        storage_class: Optional[str] = None,
        ingress_namespace: str = "ingress-nginx",
        monitoring: Optional[MonitoringSpec] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
        prefix: Optional[str] = None,
    ):
        kind = Target(target)
        if monitoring is not None and not isinstance(monitoring, MonitoringSpec):
            raise TypeError(f"Platform {name!r}: monitoring must be a berth.MonitoringSpec, got {type(monitoring).__name__}")
        resource_name, name = name, prefix or name
        wrong = {"namespace": namespace, "kubernetes_context": kubernetes_context, "storage_class": storage_class}
        if kind == Target.DOCKER:
            given = [k for k, v in wrong.items() if v is not None]
            if ingress_namespace != "ingress-nginx":
                given.append("ingress_namespace")
        else:
            given = ["docker_host"] if docker_host is not None else []
            if docker_engine != "docker":
                given.append("docker_engine")
        if given:
            raise ValueError(f"Platform {name!r}: {', '.join(given)} set for target {kind.value}, where it does "
                             "nothing; remove it")
        spec = StackSpec(
            target=kind,
            environment=Environment(environment),
            name=name,
            docker=DockerSpec(host=docker_host, engine=docker_engine) if docker_host else DockerSpec(engine=docker_engine),
            kubernetes=KubernetesSpec(namespace=namespace, context=kubernetes_context, storage_class=storage_class,
                                      ingress_namespace=ingress_namespace),
        )
        super().__init__(resource_name, spec, opts, prefix=name)
        self.spec = spec
        self.prefix = name
        self._prefix = name  # plain, where a subclass makes ``prefix`` an Output (the component package)
        self.kind = kind
        self.environment = spec.environment
        self.provider: Optional[pulumi.ProviderResource] = self.target.provider
        self.namespace: Optional[str] = self.target.ctx.namespace if kind == Target.KUBERNETES else None
        self.internal_network: Optional[pulumi.Output[str]] = (
            self.target.internal.name if kind == Target.DOCKER else None)
        # What later components refer to by name (ServiceSpec.uses / depends_on, proxy routes).
        self._stores: dict[str, tuple[_app.Connection, list[pulumi.Resource]]] = {}
        self._services: dict[str, AppService] = {}
        self._clients: dict[str, tuple[str, ...]] = {}
        # Monitoring (``monitoring``): what berth.Monitoring watches, collected as the components are made.
        self.monitoring: Optional[MonitoringSpec] = monitoring if monitoring is not None and monitoring.enabled else None
        if self.monitoring is not None:
            self._check_target_fields("monitoring", "monitoring", None, self.monitoring)
        self._watched: list[tuple[_monitoring.Watched, list[pulumi.Resource]]] = []
        self._metrics: list[_monitoring.MetricsApp] = []
        self._backup_ages: list[tuple[str, int]] = []
        self._backup_clients: list[str] = []
        self._monitor: Optional["Monitoring"] = None

    # ------------------------------------------------------------------ bookkeeping for the components

    def _claim(self, what: str, name: str) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"{what} name {name!r} must be lowercase letters, digits and '-', start with a letter, "
                             "at most 30 characters; rename it")
        taken = {*self._stores, *self._services, *self._clients, PROXY}  # _clients: also db-replica
        if self.monitoring is not None:
            taken |= set(_MONITORING_NAMES) | {f"{s}-exporter" for s in self._stores}
            if name.endswith("-exporter"):
                raise ValueError(f"{what} name {name!r}: names ending in -exporter are the exporters' of a monitored "
                                 "platform; rename it")
        if name in taken:
            raise ValueError(f"{what} name {name!r} is already used on platform {self._prefix!r}; names must be unique")

    def _allow_from(self, name: str, clients: Sequence[str], also: Sequence[str] = ()) -> list[str]:
        """``clients`` (plus ``also``, Berth's own workloads such as a read replica) as the target names
        them. Kubernetes learns the names, so a NetworkPolicy can select pods that are created later
        (as ``berth.build`` registers every planned workload first)."""
        for c in clients:
            if not isinstance(c, str) or not c:
                raise ValueError(f"{name}: clients must be workload names, got {c!r}")
        self._clients[name] = tuple(sorted(set(clients)))
        edge = edge_of(self.kind)
        names = sorted({*(edge if c == PROXY else c for c in clients), *also})
        if self.kind == Target.KUBERNETES:
            self.target.register([Workload(name=n, role=Role.APP, image="-") for n in names
                                  if n not in self.target.workloads and n != edge])
        return names

    def _check_target_fields(self, what: str, section: str, name: Optional[str], spec: object) -> None:
        """Settings of the other target are refused, as in stack config (warned where config warns)."""
        problems: list[str] = []
        warnings: list[str] = []
        value = spec if name is None else {name: spec}
        check_targets(StackSpec.model_construct(target=self.kind, **{section: value}), problems, warnings)
        key = f"berth:{section}." + ("" if name is None else f"{name}.")
        label = what if name is None else f"{what} {name!r}"
        for w in warnings:
            pulumi.log.warn(f"{label}: {w.replace(key, '')}")
        if problems:
            raise ValueError(f"{label}: " + "; ".join(p.replace(key, "") for p in problems))

    def _store(self, name: str, connection: _app.Connection, ready: list[pulumi.Resource]) -> None:
        self._stores[name] = (connection, ready)


#: The workloads berth.Monitoring creates besides the exporters (``<store>-exporter``).
_MONITORING_NAMES = ("prometheus", "pushgateway", "grafana")


def _not_after_monitoring(platform: Platform, what: str, name: str) -> None:
    if platform._monitor is not None:
        raise ValueError(f"{what} {name!r} is created after the platform's monitoring, which would not watch it: "
                         "create it before berth.Monitoring (from YAML: list it in berth:Monitoring's watch)")


def _admits(platform: Platform, store: str, client: str) -> None:
    allowed = platform._clients.get(store, ())
    if client not in allowed:
        raise ValueError(f"service {client!r} connects to {store!r}, which admits only {list(allowed)}: add "
                         f"{client!r} to the clients of {store!r}")


class Database(_database.Database):
    """A PostgreSQL or MongoDB database (``spec``: engine, version, image, storage, replica, resources,
    settings) with generated passwords and a protected volume in prod.

    ``clients`` are the services (or raw workloads) that connect to it; a read replica admits the same.
    They log in as ``user``, the database's owner, which is not a superuser (README: "Who logs in as
    whom"). Outputs: ``host``, ``port``, ``database``, ``user``, ``password`` (secret), ``connection_url``
    (secret) and with ``replica=True`` ``replica_host`` / ``replica_url`` (secret); ``ready`` lists
    what a dependent should wait for.

    ``backup`` (a ``BackupSpec``: tiers, storage, s3, restore_from, image) gives it scheduled dumps, as
    ``berth:backups.NAME`` does: the database gets the dumps' own read-only role and admits them, and
    ``backup`` becomes the ``BackupJob`` (``None`` without). ``secrets`` holds the S3 keys that
    ``backup.s3`` names. ``pre_deploy`` is refused here: the dump before each deploy is named after
    what the apps run, which only ``berth.main()`` sees whole.
    """

    def __init__(self, name: str, spec: DatabaseSpec, platform: Platform, *, clients: Sequence[str] = (),
                 backup: Optional[BackupSpec] = None, secrets: Optional[Mapping[str, pulumi.Input[str]]] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        platform._claim("database", name)
        _not_after_monitoring(platform, "database", name)
        platform._check_target_fields("database", "databases", name, spec)
        problem = reserved_user_problem("spec", name, spec)
        if problem:
            raise ValueError(f"database {name!r}: {problem}")
        s3 = _check_backup(name, spec, backup, platform, dict(secrets or {})) if backup is not None else None
        monitored = platform.monitoring is not None
        passwords = _database.database_passwords(name, spec, monitored=monitored, backed_up=backup is not None)
        backup_plan = None
        if backup is not None:
            prefix = platform.target.prefix if platform.kind == Target.DOCKER else ""  # images built on the host
            backup_plan = _backup.plan_backup(name, spec, backup, passwords.credentials(), platform.kind.value, prefix,
                                              "", s3, _monitoring.PUSHGATEWAY if monitored else None)
        replica = [f"{name}-replica"] if spec.replica else []
        jobs = [w.name for w in backup_plan.workloads] if backup_plan else []
        exporter = [f"{name}-exporter"] if monitored else []
        # The replica streams from the primary, and admits the primary's clients (as berth.build does);
        # the dumps and the exporter read the primary.
        allow = platform._allow_from(name, clients, also=[*replica, *jobs, *exporter])
        replica_allow = ([n for n in allow if n not in replica and n not in jobs and n not in exporter]
                         if spec.replica else None)
        if spec.replica:  # the replica's name is taken, and it admits the primary's clients
            platform._clients[replica[0]] = platform._clients[name]
        plan = _database.plan_database(name, spec, passwords, allow, replica_allow)
        super().__init__(name, spec, platform.target, allow, opts=opts, replica_allow_from=replica_allow, plan=plan)
        # As berth.build: the backups are a component of their own, beside the database's.
        self.backup: Optional[_backup.BackupJob] = None
        if backup is not None and backup_plan is not None:  # (the one implies the other; both for typing)
            self.backup = _backup.BackupJob(name, spec, backup, passwords.credentials(), platform.target, self.ready,
                                            plan=backup_plan)
        platform._store(name, _app.Connection(spec.engine.value, self.connection_url,
                                              getattr(self, "replica_url", None)), self.ready)
        if monitored and passwords.monitor is not None:
            url = _database.monitor_url(name, spec, passwords.monitor.output)
            platform._watched.append((_monitoring.Watched(name, spec.engine.value, url), self.ready))
            if backup is not None:
                platform._backup_ages.append((name, _backup.alert_after_seconds(backup)))
                platform._backup_clients += jobs


def _check_backup(name: str, spec: DatabaseSpec, backup: BackupSpec, platform: Platform,
                  secrets: dict[str, pulumi.Input[str]]) -> Optional[tuple[pulumi.Output[str], pulumi.Output[str]]]:
    """The checks of a database's ``backup`` (before anything is declared); its S3 keys, if any."""
    if not isinstance(backup, BackupSpec):
        raise TypeError(f"database {name!r}: backup must be a berth.BackupSpec, got {type(backup).__name__}")
    # The checks of berth:backups.NAME (restore_from, tier names, CronJob name lengths, the Docker
    # image of MongoDB's dumps, settings of the other target), worded for this argument.
    key = f"berth:backups.{name}"
    mini = StackSpec(target=platform.kind, databases={name: spec}, backups={name: backup})
    found: list[str] = []
    check_names(mini, found)
    check_references(mini, found)
    check_targets(mini, found, [])
    check_inputs(mini, found, [])
    problems = [p.replace(key, "backup") for p in found if p.startswith(key) and ".s3." not in p]
    if problems:
        raise ValueError(f"database {name!r}: " + "; ".join(problems))
    if backup.pre_deploy:
        raise ValueError(f"database {name!r}: backup.pre_deploy needs what the apps run, which only berth.main() "
                         "sees whole (it names each pre-deploy dump); set pre_deploy=False here, or deploy from "
                         "stack config (berth:backups)")
    s3 = None
    if backup.s3:
        missing = [n for n in (backup.s3.access_key_secret, backup.s3.secret_key_secret) if n not in secrets]
        if missing:
            raise ValueError(f"database {name!r}: backup.s3 takes secrets {missing}, which are not in secrets= "
                             f"({sorted(secrets)}); pass them, e.g. secrets={{{missing[0]!r}: "
                             "config.require_secret(...)}")
        s3 = (pulumi.Output.secret(secrets[backup.s3.access_key_secret]),
              pulumi.Output.secret(secrets[backup.s3.secret_key_secret]))
    return s3


class Cache(_cache.Cache):
    """A Redis cache (``spec``: version, image, storage, maxmemory, resources) with a generated password.

    ``clients`` connect to it. Outputs: ``host``, ``port``, ``url`` (secret ``redis://`` URL), ``ready``.
    """

    def __init__(self, name: str, spec: CacheSpec, platform: Platform, *, clients: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        platform._claim("cache", name)
        _not_after_monitoring(platform, "cache", name)
        platform._check_target_fields("cache", "caches", name, spec)
        exporter = [f"{name}-exporter"] if platform.monitoring is not None else []
        super().__init__(name, spec, platform.target, platform._allow_from(name, clients, also=exporter), opts=opts,
                         monitored=bool(exporter))
        platform._store(name, _app.Connection("redis", self.url), self.ready)
        if exporter and self.monitor_password is not None:
            platform._watched.append((_monitoring.Watched(name, "redis", self.monitor_password), self.ready))


class Broker(_broker.Broker):
    """A RabbitMQ broker (``spec``: version, image, user, vhost, storage, resources).

    ``clients`` connect to it. Outputs: ``host``, ``port``, ``url`` (secret ``amqp://`` URL), ``ready``.
    """

    def __init__(self, name: str, spec: BrokerSpec, platform: Platform, *, clients: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        platform._claim("broker", name)
        platform._check_target_fields("broker", "brokers", name, spec)
        super().__init__(name, spec, platform.target, platform._allow_from(name, clients), opts=opts)
        platform._store(name, _app.Connection("rabbitmq", self.url), self.ready)


class GraphDatabase(_graph.GraphDatabase):
    """A Neo4j graph database (``spec``: version, image, storage, heap, page_cache, resources).

    ``clients`` connect to it. Outputs: ``host``, ``uri`` (bolt), ``user``, ``password`` (secret), ``ready``.
    """

    def __init__(self, name: str, spec: GraphDatabaseSpec, platform: Platform, *, clients: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        platform._claim("graph database", name)
        platform._check_target_fields("graph database", "graphs", name, spec)
        super().__init__(name, spec, platform.target, platform._allow_from(name, clients), opts=opts)
        extra = (("USER", self.user), ("PASSWORD", pulumi.Output.secret(self.password)))
        platform._store(name, _app.Connection("neo4j", self.uri, extra=extra), self.ready)


class AppService(_app.AppService):
    """An application (``spec``: image, command, port, replicas or autoscale, env, secret_env, uses,
    depends_on, health, metrics, resources, ...): a web app with a ``port``, or a worker without.

    ``spec.uses`` names the stores (created before, on the same platform) whose URLs it gets as secret
    env (``DATABASE_URL``, ``REDIS_URL``, ...; each store must list this service in its ``clients``);
    it is created after them and after ``spec.depends_on`` and ``depends_on``. ``secrets`` holds the
    values that ``spec.secret_env`` names (``{"API_TOKEN": "stripe-token"}`` takes ``secrets["stripe-token"]``;
    ``{generate: true}`` entries are generated). ``clients`` connect to it (``"proxy"`` when the Proxy
    routes to it). Outputs: ``host``, ``url`` (with a port), ``ready``, ``workload``.
    """

    def __init__(self, name: str, spec: ServiceSpec, platform: Platform, *,
                 secrets: Optional[Mapping[str, pulumi.Input[str]]] = None, clients: Sequence[str] = (),
                 depends_on: Sequence[pulumi.Resource] = (), opts: Optional[pulumi.ResourceOptions] = None):
        platform._claim("service", name)
        if spec.metrics is not None:
            _not_after_monitoring(platform, "service", name)
        platform._check_target_fields("service", "services", name, spec)
        secrets = dict(secrets or {})
        for var, ref in spec.secret_env.items():
            if isinstance(ref, str) and ref not in secrets:
                raise ValueError(f"service {name!r}: secret_env {var} takes secret {ref!r}, which is not in "
                                 f"secrets= ({sorted(secrets)}); pass it, e.g. secrets={{{ref!r}: config.require_secret(...)}}")
        connections: dict[str, _app.Connection] = {}
        deps: list[pulumi.Resource] = list(depends_on)
        for store in (spec.uses if isinstance(spec.uses, list) else list(spec.uses)):
            if store not in platform._stores:
                raise ValueError(f"service {name!r} uses {store!r}, but no database, cache, broker or graph database "
                                 f"named {store!r} was created on platform {platform._prefix!r} before it "
                                 f"(have: {sorted(platform._stores)}); create it first")
            _admits(platform, store, name)
            connections[store] = platform._stores[store][0]
            deps += platform._stores[store][1]
        for dep in spec.depends_on:
            if dep in platform._services:
                deps += platform._services[dep].ready
            elif dep in platform._stores:
                deps += platform._stores[dep][1]
            else:
                raise ValueError(f"service {name!r} depends on {dep!r}, which was not created on platform "
                                 f"{platform._prefix!r} before it; create it first or remove it from depends_on")
        scraped = platform.monitoring is not None and spec.metrics is not None
        super().__init__(name, spec, platform.target, connections, secrets, deps,
                         platform._allow_from(name, clients, also=["prometheus"] if scraped else []), opts=opts)
        self.spec = spec
        platform._services[name] = self
        if scraped:
            assert spec.metrics is not None  # (scraped says so; for the type checker)
            platform._metrics.append(_monitoring.MetricsApp(name, spec.metrics.port or spec.port, spec.metrics.path))


class Proxy(_proxy.Proxy):
    """The HTTPS edge (``spec``: routes, tls, and on Docker image, ports, bind_address, resolver): nginx
    with generated config and TLS on Docker, Ingresses (and the TLS Secret) on Kubernetes.

    ``name`` comes first, as for every other component, and is ``"proxy"`` (``berth.PROXY``): there is
    one edge per platform, the services admit it as ``clients=["proxy"]``, and what it creates keeps
    the names ``berth.main()`` gives it (``proxy``, ``proxy-tls-key``, ...), so a stack can move
    between the two without a replacement. Each route's service must have been created on the
    platform with a ``port`` and ``"proxy"`` in its ``clients``. ``domain`` is the public host name;
    ``secrets`` holds the certificate and key of ``tls.mode: secret``. It is created after every
    service declared before it. Output: ``url``.

    ``berth.Proxy(spec, platform, ...)`` without the name (Berth 0.3.0) still works and warns
    (DeprecationWarning); it declares the same resources.
    """

    def __init__(self, name: str, spec: ProxySpec, platform: Optional[Platform] = None, *,
                 domain: str = "localhost", secrets: Optional[Mapping[str, pulumi.Input[str]]] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        if isinstance(name, ProxySpec):  # Berth 0.3.0's form, Proxy(spec, platform): kept, with a warning
            warnings.warn('berth.Proxy(spec, platform) is deprecated: give the name first, '
                          'berth.Proxy("proxy", spec, platform)', DeprecationWarning, stacklevel=2)
            name, spec, platform = PROXY, name, spec  # type: ignore[assignment]
        if not isinstance(platform, Platform):
            raise TypeError(f"berth.Proxy({name!r}, spec, platform): the third argument must be a berth.Platform, "
                            f"got {type(platform).__name__}")
        if name != PROXY:
            raise ValueError(f"proxy name {name!r}: the edge is named {PROXY!r} (berth.PROXY), one per platform, which "
                             f"services admit as clients=[{PROXY!r}]; pass {PROXY!r}")
        if PROXY in platform._services or getattr(platform, "_proxy", None) is not None:
            raise ValueError(f"platform {platform._prefix!r} already has a proxy")
        platform._check_target_fields("proxy", "proxy", None, spec)
        domain = StackSpec(target=platform.kind, domain=domain).domain  # the same checks as berth:domain
        backends: dict[str, _proxy.Backend] = {}
        for i, route in enumerate(spec.routes):
            svc = platform._services.get(route.service)
            if svc is None:
                raise ValueError(f"proxy routes[{i}] ({route.path}) goes to service {route.service!r}, which was not "
                                 f"created on platform {platform._prefix!r} (have: {sorted(platform._services)})")
            if not svc.spec.port:
                raise ValueError(f"proxy routes[{i}]: service {route.service!r} has no port; give it one")
            if PROXY not in platform._clients.get(route.service, ()):
                raise ValueError(f"proxy routes[{i}]: service {route.service!r} does not admit the proxy: add "
                                 f"clients=[\"proxy\"] to it")
            s = svc.spec
            backends[route.service] = _proxy.Backend(route.service, s.port, s.autoscale.min if s.autoscale else s.replicas)
        secrets = dict(secrets or {})
        if spec.tls.mode == TlsMode.SECRET:
            missing = [n for n in (spec.tls.cert_secret, spec.tls.key_secret) if n not in secrets]
            if missing:
                raise ValueError(f"proxy tls.mode secret: {missing} not in secrets= ({sorted(secrets)}); pass them")
        # As in berth.build: the edge comes up last, after every service declared before it (and Grafana).
        ready = [r for svc in platform._services.values() for r in svc.ready]
        upstreams = [platform._services[n].workload for n in sorted(backends)]
        extra: list[_ProxyRoute] = []
        monitor = platform._monitor
        if monitor is not None and monitor.grafana_route is not None:
            port = spec.https_port if platform.kind == Target.DOCKER else 443
            if (monitor.domain, monitor.https_port) != (domain, port):
                raise ValueError(f"proxy: Grafana is served at {monitor.grafana_url}, but this proxy serves "
                                 f"{public_url(domain, port, '/')}; give berth.Monitoring the "
                                 "proxy's domain (and https_port)")
            backends["grafana"] = _proxy.Backend("grafana", 3000)
            extra.append(monitor.grafana_route)
            upstreams = [w for w in [*upstreams, *monitor.workloads] if w.name in backends]
            upstreams.sort(key=lambda w: w.name)
            ready += monitor.ready
        super().__init__(name, spec, domain, platform.target, backends, ready, extra, upstreams, opts=opts,
                         secrets=secrets)  # type: ignore[arg-type]
        platform._proxy = self  # type: ignore[attr-defined]


class Monitoring(_monitoring.Monitoring):
    """Prometheus (scraping the services with ``metrics``, alert rules), an exporter for each database
    and cache, the Pushgateway the backups report to, and Grafana with a provisioned datasource and
    dashboard: for what was created on ``platform``, whose ``monitoring`` spec it takes.

    ``name`` is ``"monitoring"`` (one per platform, as ``berth.main()`` names it). Create it after the
    stores and services. ``domain`` (and on Docker the proxy's ``https_port`` when not 443) says where
    the ``Proxy`` serves: Grafana is then reached through it at the spec's ``grafana_path``, and the
    ``Proxy`` must come after it; without ``domain`` Grafana is internal only. Outputs: ``grafana_admin_password``
    (secret); ``ready`` (Grafana).
    """

    def __init__(self, name: str, platform: Platform, *, domain: Optional[str] = None, https_port: int = 443,
                 opts: Optional[pulumi.ResourceOptions] = None):
        if not isinstance(platform, Platform):
            raise TypeError(f"berth.Monitoring({name!r}, platform): platform must be a berth.Platform, got "
                            f"{type(platform).__name__}")
        if name != "monitoring":
            raise ValueError(f"monitoring name {name!r}: it is named 'monitoring' (one per platform); pass 'monitoring'")
        spec = platform.monitoring
        if spec is None:
            raise ValueError(f"platform {platform._prefix!r} has no monitoring: give it berth.Platform(..., "
                             "monitoring=berth.MonitoringSpec()) before its databases and caches are created")
        if platform._monitor is not None:
            raise ValueError(f"platform {platform._prefix!r} already has its monitoring")
        if domain is not None and getattr(platform, "_proxy", None) is not None:
            raise ValueError("create berth.Monitoring before the Proxy (the Proxy routes to Grafana and waits for it), "
                             "or leave out domain= (Grafana internal only)")
        taken = sorted(set(_MONITORING_NAMES) & {*platform._stores, *platform._services})
        if taken:
            raise ValueError(f"{taken} are names of monitoring's own workloads; rename those components")
        self.domain: Optional[str] = None
        self.https_port = https_port
        self.grafana_url: Optional[str] = None
        self.grafana_route: Optional[_ProxyRoute] = None
        edge: Sequence[str] = ()
        if domain is not None and spec.grafana and spec.grafana_path:
            self.domain = StackSpec(target=platform.kind, domain=domain).domain  # the checks of berth:domain
            self.grafana_url = public_url(self.domain, https_port, spec.grafana_path)
            self.grafana_route = _ProxyRoute(spec.grafana_path, "grafana", allow_from=tuple(spec.grafana_allow_from))
            edge = (edge_of(platform.kind),)
        elif spec.grafana_allow_from:
            raise ValueError("monitoring grafana_allow_from is set but Grafana has no route through the proxy: "
                             "give berth.Monitoring the proxy's domain=")
        watched = [w for w, _ in platform._watched]
        plan = _monitoring.plan_monitoring(spec, platform._prefix, sorted(platform._metrics, key=lambda a: a.name),
                                           sorted(watched, key=lambda w: w.name), sorted(platform._backup_ages),
                                           self.grafana_url, edge, sorted(platform._backup_clients))
        depends_on = {w.name: ready for w, ready in platform._watched}
        if platform.kind == Target.KUBERNETES:  # each NetworkPolicy selects the others, created later (Grafana)
            platform.target.register(list(plan.workloads))
        super().__init__(name, spec, platform._prefix, platform.target, depends_on=depends_on, opts=opts, plan=plan)
        self.grafana_admin_password: pulumi.Output[str] = pulumi.Output.secret(self.grafana_password)
        platform._monitor = self
