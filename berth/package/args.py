"""The arguments of Berth's components as other Pulumi languages see them: the schema's source.

Each ``...Args`` is a flat ``TypedDict`` that Pulumi's Python component provider host reads to infer
the package schema (``pulumi.provider.experimental``: property names in camelCase, ``NotRequired``
for optional, enums for closed choices, ``pulumi.Input`` for values only passed through). The
schema is the public contract of every language's SDK and of YAML programs; it is checked in
(``berth/package/plugin/schema.json``) and a test fails when it drifts from this file.

Most fields mirror a spec model (``MIRRORS``): same name (snake_case here, camelCase in the schema),
same checks, same defaults. Their descriptions come from the spec model's field (the text of the
README's configuration reference, with its unit and default), so they are written once; a field
of the package alone is documented by the docstring under it. A default is behaviour of the
component, not a schema default: an unset property means "what Berth does without it".

What the stack config computes from the whole stack is explicit here, as in ``berth.api``:
``platform`` (where it goes), ``clients`` (who may connect, by workload name), ``uses`` /
``startAfter`` and each route's ``service`` (components of the same platform, as resource
references: ``${db}`` in YAML, which also orders them).

No ``from __future__ import annotations``: the host reads the annotations as objects.
"""

from typing import Any, NotRequired, TypedDict

import pulumi

from berth.components.spec import (
    MonitoringSpec,
    Autoscale,
    BackupSpec,
    BackupTier,
    BrokerSpec,
    CacheSpec,
    DatabaseEngine,
    DatabaseSpec,
    Environment,
    GeneratedSecret,
    GraphDatabaseSpec,
    Health,
    Metrics,
    ProxySpec,
    RateLimit,
    Resources,
    Route,
    ServiceSpec,
    Target,
    TlsMode,
    TlsSpec,
)


class ResourcesArgs(TypedDict):
    """CPU/memory requests and limits. Each component has its own defaults (see each property)."""

    cpu: NotRequired[str]
    memory: NotRequired[str]
    cpu_limit: NotRequired[str]
    memory_limit: NotRequired[str]


class MonitoringSpecArgs(TypedDict):
    """Monitoring of what is created on the platform, as berth:monitoring (given to the Platform,
    before its stores: each database then has a role for its exporter from its first start)."""

    prometheus_image: NotRequired[str]
    grafana_image: NotRequired[str]
    postgres_exporter_image: NotRequired[str]
    redis_exporter_image: NotRequired[str]
    mongodb_exporter_image: NotRequired[str]
    pushgateway_image: NotRequired[str]
    grafana: NotRequired[bool]
    grafana_path: NotRequired[str]
    retention: NotRequired[str]
    storage: NotRequired[str]
    grafana_allow_from: NotRequired[list[str]]


class PlatformArgs(TypedDict):
    """Where the components go: a Docker host or a Kubernetes namespace."""

    name: NotRequired[str]
    """Prefix of what the platform creates on the target (Docker containers <name>-api, volumes,
    networks; the default namespace): an RFC 1123 label. Defaults to the resource's name. Two
    platforms on one Docker host need different names (e.g. shop-${pulumi.stack})."""
    target: NotRequired[Target]
    """docker or kubernetes. Defaults to docker."""
    environment: NotRequired[Environment]
    """dev, staging or prod; prod protects and retains data volumes, PVCs, StatefulSets and the
    namespace. Defaults to dev."""
    docker_host: NotRequired[str]
    """Docker only: the Docker host, e.g. ssh://deploy@host. Defaults to the local engine (DOCKER_HOST)."""
    docker_engine: NotRequired[str]
    """Docker only: what serves the host's Docker API, docker or podman (they take a tmpfs owner in
    different forms). Defaults to docker."""
    namespace: NotRequired[str]
    """Kubernetes only: the namespace (Pod Security "restricted", default-deny NetworkPolicy).
    Defaults to the name."""
    kubernetes_context: NotRequired[str]
    """Kubernetes only: the kubeconfig context. Defaults to the current one."""
    storage_class: NotRequired[str]
    """Kubernetes only: StorageClass of the PVCs. Defaults to the cluster's."""
    ingress_namespace: NotRequired[str]
    """Kubernetes only: namespace of the ingress controller, allowed in for the Proxy. Defaults to
    ingress-nginx."""
    monitoring: NotRequired[MonitoringSpecArgs]
    """The platform is monitored: its databases and caches get exporters, its services with metrics
    are scraped, its backups report to a Pushgateway. Declare a berth:Monitoring after the services
    (and before the Proxy) to create Prometheus, the exporters and Grafana. Defaults to none."""


class BackupTierArgs(TypedDict):
    """One schedule of dumps with its own retention."""

    name: str
    schedule: str
    keep: int


class BackupArgs(TypedDict):
    """Scheduled dumps of the database, as berth:backups.NAME: its own read-only role for the dumps,
    the tiers' schedules and retention, a volume for them, and a one-shot restore."""

    tiers: NotRequired[list[BackupTierArgs]]
    """Dump schedules with retention; default daily at 02:00 UTC, 7 kept."""
    storage: NotRequired[str]
    alert_after: NotRequired[str]
    restore_from: NotRequired[str]
    image: NotRequired[str]


class DatabaseArgs(TypedDict):
    """A PostgreSQL or MongoDB database with a generated password."""

    platform: Any
    """The Platform it runs on (a resource reference: ${platform})."""
    clients: NotRequired[list[str]]
    """Workloads that connect to it, by name (the services that use it); a read replica admits the
    same. On Kubernetes this is its NetworkPolicy. Defaults to none."""
    engine: NotRequired[DatabaseEngine]
    version: NotRequired[str]
    image: NotRequired[str]
    database: NotRequired[str]
    user: NotRequired[str]
    storage: NotRequired[str]
    replica: NotRequired[bool]
    resources: NotRequired[ResourcesArgs]
    settings: NotRequired[dict[str, str]]
    backup: NotRequired[BackupArgs]
    """Scheduled dumps of this database (the dumps' role, schedules, retention, restore). Defaults to
    none."""


class CacheArgs(TypedDict):
    """A Redis cache with a generated password and append-only persistence."""

    platform: Any
    """The Platform it runs on (a resource reference: ${platform})."""
    clients: NotRequired[list[str]]
    """Workloads that connect to it, by name. On Kubernetes this is its NetworkPolicy. Defaults to none."""
    version: NotRequired[str]
    image: NotRequired[str]
    storage: NotRequired[str]
    maxmemory: NotRequired[str]
    resources: NotRequired[ResourcesArgs]


class BrokerArgs(TypedDict):
    """A RabbitMQ message broker with a generated password."""

    platform: Any
    """The Platform it runs on (a resource reference: ${platform})."""
    clients: NotRequired[list[str]]
    """Workloads that connect to it, by name. On Kubernetes this is its NetworkPolicy. Defaults to none."""
    version: NotRequired[str]
    image: NotRequired[str]
    user: NotRequired[str]
    vhost: NotRequired[str]
    storage: NotRequired[str]
    resources: NotRequired[ResourcesArgs]


class GraphDatabaseArgs(TypedDict):
    """A Neo4j graph database with a generated password."""

    platform: Any
    """The Platform it runs on (a resource reference: ${platform})."""
    clients: NotRequired[list[str]]
    """Workloads that connect to it, by name. On Kubernetes this is its NetworkPolicy. Defaults to none."""
    version: NotRequired[str]
    image: NotRequired[str]
    storage: NotRequired[str]
    heap: NotRequired[str]
    page_cache: NotRequired[str]
    resources: NotRequired[ResourcesArgs]


class AutoscaleArgs(TypedDict):
    """Horizontal autoscaling (Kubernetes HPA; Docker runs min replicas)."""

    min: int
    max: int
    cpu: NotRequired[int]
    memory: NotRequired[int]
    scale_down_after: NotRequired[str]


class HealthArgs(TypedDict):
    """A health check: an HTTP path on the service port, or an exec command."""

    path: NotRequired[str]
    command: NotRequired[list[str]]
    ready_path: NotRequired[str]
    interval: NotRequired[str]
    timeout: NotRequired[str]
    retries: NotRequired[int]
    start_period: NotRequired[str]


class MetricsArgs(TypedDict):
    """Where Prometheus scrapes the service."""

    path: NotRequired[str]
    port: NotRequired[int]


class GeneratedSecretArgs(TypedDict):
    """A value generated once per stack (pulumi-random) and kept secret."""

    length: NotRequired[int]


class AppServiceArgs(TypedDict):
    """An application container: a web app (with a port), or a worker, scheduler or bot (without)."""

    platform: Any
    """The Platform it runs on (a resource reference: ${platform})."""
    clients: NotRequired[list[str]]
    """Workloads that connect to it, by name: "proxy" when the Proxy routes to it. On Kubernetes
    this is its NetworkPolicy. Defaults to none."""
    image: str
    command: NotRequired[list[str]]
    entrypoint: NotRequired[list[str]]
    port: NotRequired[int]
    replicas: NotRequired[int]
    singleton: NotRequired[bool]
    autoscale: NotRequired[AutoscaleArgs]
    env: NotRequired[dict[str, str]]
    secret_env: NotRequired[dict[str, pulumi.Input[str]]]
    """Env from secret values: VAR: the value (a secret config value, or another resource's
    output); the container gets it as a secret, never in plain env. Defaults to none."""
    generated_secret_env: NotRequired[dict[str, GeneratedSecretArgs]]
    """Env generated once per stack and kept secret: VAR: {} (32 characters) or {length: 48}.
    Defaults to none."""
    uses: NotRequired[list[Any]]
    """Databases, caches, brokers and graph databases of the same platform it connects to (resource
    references: [${db}, ${cache}]); each must list this service in its clients. Injects
    DATABASE_URL / MONGODB_URI / REDIS_URL / AMQP_URL / NEO4J_URI (+ DATABASE_REPLICA_URL) as
    secret env, and starts after them. Defaults to none."""
    start_after: NotRequired[list[Any]]
    """Services or stores of the same platform whose containers must be ready before this one starts
    (resource references). Unlike the dependsOn resource option, it waits for their workloads.
    Defaults to none."""
    health: NotRequired[HealthArgs]
    metrics: NotRequired[MetricsArgs]
    resources: NotRequired[ResourcesArgs]
    run_as_user: NotRequired[int]
    run_as_root: NotRequired[bool]
    read_only_root: NotRequired[bool]
    writable_paths: NotRequired[list[str]]
    egress: NotRequired[bool]
    public_url: NotRequired[str]


class RateLimitArgs(TypedDict):
    """Requests per second per client address, with a burst allowance."""

    rate: str
    burst: NotRequired[int]


class RouteArgs(TypedDict):
    """A path routed by the proxy to a service."""

    path: str
    service: Any
    """The AppService that serves the path (a resource reference: ${api}); it needs a port and
    "proxy" in its clients."""
    rate_limit: NotRequired[RateLimitArgs]
    access_log: NotRequired[bool]
    cache_static: NotRequired[bool]


class TlsArgs(TypedDict):
    """Where the proxy's certificate comes from."""

    mode: NotRequired[TlsMode]
    cert_file: NotRequired[str]
    key_file: NotRequired[str]
    cluster_issuer: NotRequired[str]
    email: NotRequired[str]


class ProxyArgs(TypedDict):
    """The HTTPS edge: nginx on Docker (the only published container), Ingresses on Kubernetes."""

    platform: Any
    """The Platform it runs on (a resource reference: ${platform}); one proxy per platform, named proxy."""
    routes: list[RouteArgs]
    domain: NotRequired[str]
    """Public host name of the proxy / Ingress (no scheme, no path). Defaults to localhost."""
    tls: NotRequired[TlsArgs]
    tls_certificate: NotRequired[pulumi.Input[str]]
    """TLS mode secret: the PEM certificate chain (e.g. a secret config value)."""
    tls_private_key: NotRequired[pulumi.Input[str]]
    """TLS mode secret: the PEM private key (a secret config value; kept secret)."""
    image: NotRequired[str]
    http_port: NotRequired[int]
    https_port: NotRequired[int]
    bind_address: NotRequired[str]
    resolver: NotRequired[str]
    """Docker only: DNS server nginx re-resolves upstreams with (Docker's embedded DNS); an empty
    string resolves them once at start (nginx < 1.27.3). Defaults to 127.0.0.11."""
    ingress_class: NotRequired[str]
    health_path: NotRequired[str]
    resources: NotRequired[ResourcesArgs]


class MonitoringArgs(TypedDict):
    """Prometheus, an exporter per database and cache, the Pushgateway and Grafana, for what was created
    on the platform (whose monitoring property configures them)."""

    platform: Any
    """The Platform it watches (a resource reference: ${platform}), created with a monitoring property."""
    watch: NotRequired[list[Any]]
    """The platform's databases, caches and services with metrics (resource references: [${db},
    ${cache}, ${api}]): it watches everything created on the platform before it, and these references
    make sure they are (a YAML program otherwise creates unrelated resources in any order; one created
    after it is refused). Defaults to none."""
    domain: NotRequired[str]
    """The Proxy's domain: Grafana is then served through the Proxy at grafana_path. Defaults to none
    (Grafana internal only)."""
    https_port: NotRequired[int]
    """Docker: the Proxy's https_port, when not 443. Defaults to 443."""


#: The spec model each args type mirrors: its fields of the same name are checked by that model and
#: described by it (the README's configuration reference).
MIRRORS: dict[type, type] = {
    ResourcesArgs: Resources,
    DatabaseArgs: DatabaseSpec,
    BackupArgs: BackupSpec,
    BackupTierArgs: BackupTier,
    MonitoringSpecArgs: MonitoringSpec,
    CacheArgs: CacheSpec,
    BrokerArgs: BrokerSpec,
    GraphDatabaseArgs: GraphDatabaseSpec,
    AutoscaleArgs: Autoscale,
    HealthArgs: Health,
    MetricsArgs: Metrics,
    GeneratedSecretArgs: GeneratedSecret,
    AppServiceArgs: ServiceSpec,
    RateLimitArgs: RateLimit,
    RouteArgs: Route,
    TlsArgs: TlsSpec,
    ProxyArgs: ProxySpec,
}

#: Fields of a mirrored spec model that the package leaves out or serves in another shape (then
#: under its own docstring), and why; a test checks that every other field is served as the spec has it.
NOT_SERVED: dict[tuple[type, str], str] = {
    (CacheSpec, "engine"): "always redis",
    (BrokerSpec, "engine"): "always rabbitmq",
    (GraphDatabaseSpec, "engine"): "always neo4j",
    (GeneratedSecret, "generate"): "always true: generated_secret_env holds only generated values",
    (GeneratedSecret, "export"): "a YAML program exports the component's values in its own outputs section",
    (ServiceSpec, "secret_env"): "a union (a name, a generated value, another stack's output): served as "
                                 "secret_env (values) and generated_secret_env; another stack's output is a "
                                 "StackReference of the program's own",
    (ServiceSpec, "uses"): "served as resource references (uses) instead of names",
    (ServiceSpec, "depends_on"): "served as resource references (start_after) instead of names",
    (TlsSpec, "cert_secret"): "mode secret takes the values themselves (the proxy's tls_certificate and "
                              "tls_private_key), not names in berth:secrets",
    (TlsSpec, "key_secret"): "as cert_secret",
    (MonitoringSpec, "enabled"): "the platform's monitoring property is the switch: without it, no monitoring",
    (BackupSpec, "s3"): "its keys are names in berth:secrets, which a component program has not; not served yet",
    (BackupSpec, "pre_deploy"): "refused outside berth.main(): the dump before each deploy is named after what "
                                "every app runs, which only the whole stack config shows",
}

#: Properties that hold a resource of this package. The host's schema inference names a resource
#: type only for other packages' resources (through their pulumi-plugin.json), so these are
#: annotated ``Any`` and the schema is given the reference (``provider.package_schema``); ``uses``
#: and ``start_after`` take several kinds of component and stay ``Any``.
REFERENCES: dict[tuple[type, str], str] = {
    (DatabaseArgs, "platform"): "Platform",
    (CacheArgs, "platform"): "Platform",
    (BrokerArgs, "platform"): "Platform",
    (GraphDatabaseArgs, "platform"): "Platform",
    (AppServiceArgs, "platform"): "Platform",
    (ProxyArgs, "platform"): "Platform",
    (MonitoringArgs, "platform"): "Platform",
    (RouteArgs, "service"): "AppService",
}
