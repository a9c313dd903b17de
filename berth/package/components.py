"""Berth's components as the component package serves them: ``(name, args, opts)``, args a typed dict.

Each class is the ``berth.api`` component of the same name (the same checks, the same resources
with the same names and parents, so a program can move between Python and another language without
replacing anything); what differs is how the arguments arrive. They come as the properties of
``args.py`` (from a YAML program, or an SDK generated from the schema) and are turned into the spec
models here; every problem is reported with its property path before the component creates
anything (``convert.PropertyError``). The typed ``pulumi.Output`` attributes below are the outputs
of the schema.

References between components (``platform: ${platform}``, ``uses: [${db}]``) reach the provider
as the live objects this process constructed earlier (``live``): a deployment's Berth components
are all constructed by one provider process, in the order the references give.
"""

# No `from __future__ import annotations`: the host reads the `args` and output annotations as objects.
import json
import re
from typing import Any, Iterable, Mapping, Optional, Sequence

import pulumi
from pydantic import ValidationError

from berth import api
from berth.components.spec import (
    NAMESPACE,
    BackupSpec,
    BackupTier,
    BrokerSpec,
    CacheSpec,
    DatabaseSpec,
    GeneratedSecret,
    GraphDatabaseSpec,
    MonitoringSpec,
    ProxySpec,
    ServiceSpec,
    StackSpec,
    TlsMode,
)
from berth.components.spec.checks import check_references

from .args import (
    AppServiceArgs,
    BrokerArgs,
    CacheArgs,
    DatabaseArgs,
    GraphDatabaseArgs,
    MonitoringArgs,
    PlatformArgs,
    ProxyArgs,
)
from .convert import MapKey, Props, PropertyError, model_field_names, outputs_in, words

#: The components constructed in this process, by (type token, name): what a resource reference
#: from a later component resolves to (``provider.LiveComponents``).
LIVE: dict[tuple[str, str], pulumi.Resource] = {}

_STORE_KINDS = ("Database", "Cache", "Broker", "GraphDatabase")


def _token(kind: str) -> str:
    return f"berth:index:{kind}"


def _remember(kind: str, name: str, component: pulumi.Resource) -> None:
    LIVE[(_token(kind), name)] = component


def resolve(value: Any) -> Optional[pulumi.Resource]:
    """A reference (the object itself, or its URN) to a component constructed in this process."""
    if isinstance(value, pulumi.Resource):
        if isinstance(value, (Platform, Database, Cache, Broker, GraphDatabase, AppService, Proxy)):
            return value
        name = getattr(value, "_name", None)
        typ = getattr(value, "_type", None)
        return LIVE.get((typ, name)) if typ and name else None
    if isinstance(value, str) and value.startswith("urn:pulumi:"):
        # urn:pulumi:<stack>::<project>::<parent types$>type::<name>
        parts = value.split("::")
        if len(parts) >= 4:
            return LIVE.get((parts[2].rsplit("$", 1)[-1], "::".join(parts[3:])))
    return None


def resolve_name(platform: Optional["Platform"], name: Any) -> Optional[pulumi.Resource]:
    """A component of ``platform`` by its name (after a route's reference became the name)."""
    if platform is None or not isinstance(name, str):
        return None
    return next((c for c in LIVE.values() if getattr(c, "_berth_platform", None) is platform
                 and getattr(c, "_berth_name", None) == name), None)


def _kind(component: Any) -> str:
    for kind in (*_STORE_KINDS, "AppService", "Platform", "Proxy"):
        if isinstance(component, globals()[kind]):
            return kind
    return type(component).__name__


def _names(*models: type) -> set[str]:
    out: set[str] = set()
    for m in models:
        out |= model_field_names(m)
    return out


def _platform(p: Props) -> Optional["Platform"]:
    value = p.args.get("platform")
    if value is None:
        p.problem(["platform"], "is required: the Platform this component runs on, e.g. platform: ${platform}",
                  shown="(missing)")
        return None
    found = resolve(value)
    if not isinstance(found, Platform):
        p.problem(["platform"], "must be a berth:Platform (a resource reference, e.g. ${platform})", value=None,
                  shown=_shown_ref(value))
        return None
    return found


def _shown_ref(value: Any) -> str:
    if isinstance(value, pulumi.Resource):
        return f"<{getattr(value, '_type', type(value).__name__)} {getattr(value, '_name', '?')}>"
    if isinstance(value, pulumi.Output):
        return "<output>"
    return str(value)[:80]


def _clients(p: Props) -> list[str]:
    clients = p.plain(["clients"]).get("clients") or []
    if not isinstance(clients, list) or not all(isinstance(c, str) and c for c in clients):
        p.problem(["clients"], "must be a list of workload names, e.g. [api, worker]", value=clients)
        return []
    return clients


def _refs(p: Props, key: str, platform: Optional["Platform"], kinds: Sequence[str]) -> list[str]:
    """The names of the components a list property refers to (``uses: [${db}, ${cache}]``)."""
    values = p.args.get(key)
    if values is None:
        return []
    if isinstance(values, pulumi.Output) or not isinstance(values, (list, tuple)):
        p.problem([key], "must be a list of resource references, e.g. [${db}]", shown=_shown_ref(values))
        return []
    names: list[str] = []
    for i, value in enumerate(values):
        found = resolve(value)
        if found is None or _kind(found) not in kinds:
            p.problem([key, i], f"must be a {' / '.join('berth:' + k for k in kinds)} (a resource reference)",
                      shown=_shown_ref(value))
            continue
        if platform is not None and found._berth_platform is not platform:  # type: ignore[attr-defined]
            p.problem([key, i], f"{_kind(found)} {found._berth_name!r} runs on another platform; "  # type: ignore[attr-defined]
                      "components can only use components of their own platform", shown=_shown_ref(value))
            continue
        names.append(found._berth_name)  # type: ignore[attr-defined]
    return names


def _spec(p: Props, model: type, keys: Iterable[str], **extra: Any) -> Any:
    values = p.plain(list(keys))
    values.update(extra)
    return p.model(model, values)


def _stack_checks(p: Props, platform: Optional["Platform"], section: str, spec: Any, names: set[str],
                  **sections: Any) -> None:
    """The checks the stack's config gets across its keys (``components/spec/checks.py``) that
    concern this one component: ``replicas`` next to ``autoscale``, Redis ``maxmemory`` at its
    limit, a route path twice, acme on Docker, ... References between components are resources
    here and checked as such, so those problems are not repeated."""
    if spec is None or platform is None:
        return
    key = f"{NAMESPACE}:{section}" + ("" if section == "proxy" else f".{p.name}")
    fields: dict[str, Any] = {"databases": {}, "caches": {}, "brokers": {}, "graphs": {}, "services": {}, "proxy": None,
                              "backups": {}, "monitoring": None, "logging": None, "secrets": {}}
    fields.update(sections)
    fields[section] = spec if section == "proxy" else {p.name: spec}
    stack = StackSpec.model_construct(target=platform.kind, domain="localhost", **fields)
    problems: list[str] = []
    check_references(stack, problems)
    for text in problems:
        if text.startswith(key) and not re.match(rf"{re.escape(key)}\.(uses|depends_on|secret_env)\b", text):
            p.stack_problem(text, key, names)


def _construct(p: Props, names: set[str], construct) -> None:
    """Run ``berth.api``'s constructor; its refusals (names, clients, target settings) become
    problems of this component."""
    try:
        construct()
    except ValueError as exc:
        raise p.refused(exc, names) from None


#: A platform setting's place in the stack spec → its property.
_PLATFORM_KEYS = {("name",): "name", ("docker", "host"): "docker_host", ("docker", "engine"): "docker_engine", ("kubernetes", "namespace"): "namespace",
                  ("kubernetes", "context"): "kubernetes_context", ("kubernetes", "storage_class"): "storage_class",
                  ("kubernetes", "ingress_namespace"): "ingress_namespace"}
_PLATFORM_NAMES = set(PlatformArgs.__annotations__) | _names(MonitoringSpec)


class Platform(api.Platform):
    """Where the components go: a Docker host (the stack's networks) or a Kubernetes namespace (with
    Pod Security "restricted" and a default-deny NetworkPolicy)."""

    prefix: pulumi.Output[str]
    """The prefix of what it creates on the target."""
    internal_network: Optional[pulumi.Output[str]]
    """Docker: the name of the network the datastores are on (for containers of your own)."""
    namespace: Optional[pulumi.Output[str]]
    """Kubernetes: the namespace."""

    def __init__(self, name: str, args: PlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        p = Props("berth:Platform", name, args)
        values = p.plain(["name", "target", "environment", "docker_host", "docker_engine", "namespace", "kubernetes_context",
                          "storage_class", "ingress_namespace"])
        prefix = values.pop("name", None) or name
        monitoring = p.plain(["monitoring"]).get("monitoring")
        if monitoring is not None:
            values["monitoring"] = p.model(MonitoringSpec, monitoring, prefix=("monitoring",))
        p.check()
        try:
            super().__init__(name, opts=opts, prefix=prefix, **values)
        except ValidationError as exc:  # the settings as the stack's berth: keys check them
            for err in exc.errors():
                loc = tuple(str(x) for x in err["loc"])
                prop = _PLATFORM_KEYS.get(loc, loc[-1] if loc else "")
                value = err.get("input")
                p.problem([prop], words(err["msg"].removeprefix("Value error, "), _PLATFORM_NAMES),
                          shown=json.dumps(value, default=str) if isinstance(value, (str, int, float)) else "")
            p.check()
        except ValueError as exc:
            text = str(exc).removeprefix(f"Platform {prefix!r}: ")
            raise PropertyError("berth:Platform", name, [("", "", words(text, _PLATFORM_NAMES))]) from None
        self.prefix = pulumi.Output.from_input(prefix)
        self._berth_name = name
        _remember("Platform", name, self)


def _store_init(self: Any, kind: str, model: type, name: str, args: Mapping[str, Any],
                opts: Optional[pulumi.ResourceOptions], base: Any) -> None:
    p = Props(f"berth:{kind}", name, args)
    platform = _platform(p)
    clients = _clients(p)
    keys = [k for k in model.model_fields if k != "engine" or kind == "Database"]
    spec = _spec(p, model, keys)
    section = {"Database": "databases", "Cache": "caches", "Broker": "brokers", "GraphDatabase": "graphs"}[kind]
    _stack_checks(p, platform, section, spec, _names(model))
    extra: dict[str, Any] = {}
    names = _names(model) | {"clients", "platform"}
    if kind == "Database":
        backup = p.plain(["backup"]).get("backup")
        if backup is not None:
            extra["backup"] = p.model(BackupSpec, backup, prefix=("backup",), extra_names=_names(BackupTier))
        names |= {"backup"} | _names(BackupSpec, BackupTier)
    p.check()
    _construct(p, names, lambda: base.__init__(self, name, spec, platform, clients=clients, opts=opts, **extra))
    self._berth_name, self._berth_platform = name, platform
    _remember(kind, name, self)


class Database(api.Database):
    """A PostgreSQL or MongoDB database with a generated password and a protected volume in prod."""

    host: pulumi.Output[str]
    """Host name of the database inside the platform."""
    port: pulumi.Output[int]
    """Port (5432 postgres, 27017 mongodb)."""
    database: pulumi.Output[str]
    """Database name."""
    user: pulumi.Output[str]
    """Owner role."""
    password: pulumi.Output[str]
    """The owner's generated password (secret)."""
    connection_url: pulumi.Output[str]
    """postgresql:// or mongodb:// URL with the password (secret)."""
    replica_host: Optional[pulumi.Output[str]]
    """With replica: host name of the read replica."""
    replica_url: Optional[pulumi.Output[str]]
    """With replica: URL of the read replica (secret)."""

    def __init__(self, name: str, args: DatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None):
        _store_init(self, "Database", DatabaseSpec, name, args, opts, api.Database)


class Cache(api.Cache):
    """A Redis cache with a generated password and append-only persistence."""

    host: pulumi.Output[str]
    """Host name of Redis inside the platform."""
    port: pulumi.Output[int]
    """Port (6379)."""
    url: pulumi.Output[str]
    """redis:// URL with the password (secret)."""

    def __init__(self, name: str, args: CacheArgs, opts: Optional[pulumi.ResourceOptions] = None):
        _store_init(self, "Cache", CacheSpec, name, args, opts, api.Cache)


class Broker(api.Broker):
    """A RabbitMQ broker with a generated password."""

    host: pulumi.Output[str]
    """Host name of RabbitMQ inside the platform."""
    port: pulumi.Output[int]
    """AMQP port (5672)."""
    url: pulumi.Output[str]
    """amqp:// URL with the password (secret)."""

    def __init__(self, name: str, args: BrokerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        _store_init(self, "Broker", BrokerSpec, name, args, opts, api.Broker)


class GraphDatabase(api.GraphDatabase):
    """A Neo4j graph database with a generated password."""

    host: pulumi.Output[str]
    """Host name of Neo4j inside the platform."""
    uri: pulumi.Output[str]
    """bolt:// URI (without credentials)."""
    user: pulumi.Output[str]
    """User name."""
    password: pulumi.Output[str]
    """The generated password (secret)."""

    def __init__(self, name: str, args: GraphDatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None):
        _store_init(self, "GraphDatabase", GraphDatabaseSpec, name, args, opts, api.GraphDatabase)


_SERVICE_KEYS = [k for k in ServiceSpec.model_fields if k not in ("secret_env", "uses", "depends_on")]


class AppService(api.AppService):
    """An application: a web app with a port, or a worker, scheduler or bot without."""

    host: pulumi.Output[str]
    """Host name of the service inside the platform."""
    url: Optional[pulumi.Output[str]]
    """With a port: http://<host>:<port>."""

    def __init__(self, name: str, args: AppServiceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        p = Props("berth:AppService", name, args)
        platform = _platform(p)
        clients = _clients(p)
        uses = _refs(p, "uses", platform, _STORE_KINDS)
        after = _refs(p, "start_after", platform, (*_STORE_KINDS, "AppService"))
        secret_env: dict[str, Any] = {}
        secrets: dict[str, pulumi.Input[str]] = {}
        given = p.args.get("secret_env") or {}
        if isinstance(given, pulumi.Output) or not isinstance(given, Mapping):
            p.problem(["secret_env"], "must be a map of variable names to values, e.g. {API_TOKEN: ${apiToken}}",
                      shown=_shown_ref(given))
            given = {}
        for var, value in given.items():
            secret_env[var] = var  # the value's name in `secrets` (the spec's form): the variable itself
            secrets[var] = value
        generated = p.plain(["generated_secret_env"]).get("generated_secret_env") or {}
        for var, options in (generated.items() if isinstance(generated, Mapping) else []):
            where = ("generated_secret_env", MapKey(var))
            if var in secret_env:
                p.problem(where, "is also in secretEnv: give the variable one value; remove it from one of them")
                continue
            checked = p.model(GeneratedSecret, {**(options or {}), "generate": True}, prefix=where)
            if checked is not None:
                secret_env[var] = checked
        spec = _spec(p, ServiceSpec, _SERVICE_KEYS, secret_env=secret_env, uses=uses, depends_on=after)
        names = _names(ServiceSpec) | set(AppServiceArgs.__annotations__)
        _stack_checks(p, platform, "services", spec, names)
        p.check()
        _construct(p, names, lambda: super(AppService, self).__init__(
            name, spec, platform, secrets=secrets, clients=clients, opts=opts))
        self._berth_name, self._berth_platform = name, platform
        _remember("AppService", name, self)


class Proxy(api.Proxy):
    """The HTTPS edge: nginx with generated config and TLS on Docker, Ingresses (and the TLS Secret)
    on Kubernetes. One per platform, named proxy."""

    url: pulumi.Output[str]
    """https://<domain>[:<httpsPort>]/"""

    def __init__(self, name: str, args: ProxyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        p = Props("berth:Proxy", name, args)
        if name != api.PROXY:
            p.problem([], f"a platform's proxy is named {api.PROXY!r} (one per platform; services admit it as "
                      f"clients: [{api.PROXY}]): rename the resource {name!r} to {api.PROXY!r}")
        platform = _platform(p)
        routes = p.args.get("routes")
        spec_routes: list[Any] = []
        if isinstance(routes, pulumi.Output) or not isinstance(routes, (list, tuple)):
            p.problem(["routes"], "must be a list of routes, e.g. [{path: /, service: ${api}}]", shown=_shown_ref(routes))
            routes = []
        for i, route in enumerate(routes):
            route = dict(route or {})
            svc = resolve(route.get("service"))
            if not isinstance(svc, AppService):
                p.problem(["routes", i, "service"], "must be a berth:AppService (a resource reference, e.g. ${api})",
                          shown=_shown_ref(route.get("service")) if route.get("service") is not None else "(missing)")
            elif platform is not None and svc._berth_platform is not platform:
                p.problem(["routes", i, "service"], f"service {svc._berth_name!r} runs on another platform",
                          shown=_shown_ref(route.get("service")))
            else:
                if not svc.spec.port:
                    p.problem(["routes", i, "service"], f"service {svc._berth_name!r} has no port; give it one")
                elif api.PROXY not in platform._clients.get(svc._berth_name, ()):  # type: ignore[union-attr]
                    p.problem(["routes", i, "service"], f"service {svc._berth_name!r} does not admit the proxy: add "
                              f"{api.PROXY} to its clients")
                route["service"] = svc._berth_name
            for path in outputs_in({k: v for k, v in route.items() if k != "service"}, ("routes", i)):
                p.problem(path, "must be a value known before deployment, not a secret or another resource's output")
            spec_routes.append(route)
        tls = dict(p.plain(["tls"]).get("tls") or {})
        secrets: dict[str, pulumi.Input[str]] = {}
        mode = tls.get("mode")
        if mode in (TlsMode.SECRET, TlsMode.SECRET.value):
            for key, secret in (("tls_certificate", "tls-cert"), ("tls_private_key", "tls-key")):
                if p.args.get(key) is None:
                    p.problem([key], "is required with tls.mode secret (the PEM value, e.g. a secret config value)",
                              shown="(missing)")
                else:
                    secrets[secret] = p.args[key]
        else:
            for key in ("tls_certificate", "tls_private_key"):
                if p.args.get(key) is not None:
                    p.problem([key], "belongs to tls.mode secret, but mode is "
                              f"{getattr(mode, 'value', mode) or TlsMode.SELF_SIGNED.value}; remove it or set "
                              "tls: {mode: secret}")
        values = p.plain(["image", "http_port", "https_port", "bind_address", "resolver", "ingress_class",
                          "health_path", "resources"])
        if values.get("resolver") == "":
            values["resolver"] = None  # resolve once at start (YAML cannot give a null property)
        domain = p.plain(["domain"]).get("domain") or "localhost"
        spec = p.model(ProxySpec, {**values, "routes": spec_routes, "tls": tls})
        names = _names(ProxySpec) | set(ProxyArgs.__annotations__)
        routed = {r["service"]: s.spec for r in spec_routes if isinstance(s := resolve_name(platform, r["service"]),
                                                                                AppService)}
        _stack_checks(p, platform, "proxy", spec, names, services=routed,
                      secrets={"tls-cert": "", "tls-key": ""})  # the values themselves are checked above
        p.check()
        _construct(p, names, lambda: super(Proxy, self).__init__(
            name, spec, platform, domain=domain, secrets=secrets, opts=opts))
        self._berth_name, self._berth_platform = name, platform
        _remember("Proxy", name, self)


class Monitoring(api.Monitoring):
    """Prometheus, an exporter per database and cache, the Pushgateway the backups report to, and
    Grafana: for what was created on the platform. One per platform, named monitoring; after the
    services, before the Proxy."""

    grafana_admin_password: pulumi.Output[str]
    """Grafana's admin password (secret; the user is admin)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        p = Props("berth:Monitoring", name, args)
        if name != "monitoring":
            p.problem([], f"a platform's monitoring is named 'monitoring' (one per platform): rename the resource "
                      f"{name!r} to 'monitoring'")
        platform = _platform(p)
        if platform is not None and platform.monitoring is None:
            p.problem(["platform"], "has no monitoring property: give the berth:Platform monitoring: {} (its "
                      "databases and caches then get exporters from their first start)", shown=_shown_ref(p.args["platform"]))
        _refs(p, "watch", platform, (*_STORE_KINDS, "AppService"))  # (they exist: the references ordered them)
        values = p.plain(["domain", "https_port"])
        https_port = values.get("https_port", 443)
        if isinstance(https_port, float) and https_port.is_integer():
            https_port = int(https_port)  # the engine sends every number as a float
        if isinstance(https_port, bool) or not isinstance(https_port, int) or not 1 <= https_port <= 65535:
            p.problem(["https_port"], "must be a port number, 1 to 65535", value=https_port)
        p.check()
        names = set(MonitoringArgs.__annotations__) | _names(MonitoringSpec)
        _construct(p, names, lambda: super(Monitoring, self).__init__(
            name, platform, domain=values.get("domain"), https_port=https_port, opts=opts))
        self._berth_name, self._berth_platform = name, platform
        _remember("Monitoring", name, self)


#: What the package serves, in the schema's order.
COMPONENTS = [Platform, Database, Cache, Broker, GraphDatabase, AppService, Monitoring, Proxy]
