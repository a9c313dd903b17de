"""The typed stack spec: every ``berth:*`` config key, validated before any resource exists.

All stack config is read here and nowhere else (``load_spec``). A bad value raises ``ConfigError``,
which names the config key (``berth:services.api.port``), shows the bad value and says the fix. It
subclasses ``pulumi.RunError`` so the CLI prints the message without a Python traceback.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

NAMESPACE = "berth"

_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
_CPU_RE = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")
_MEM_RE = re.compile(r"^\d+(Mi|Gi)$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CRON_RE = re.compile(r"^(@(daily|weekly|monthly|hourly))$|^(\S+\s+){4}\S+$")


class ConfigError(pulumi.RunError):
    """A user mistake in stack config. Each problem names its key, its value and the fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        text = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{text}")


class Target(str, Enum):
    """Where the stack is deployed."""

    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class Environment(str, Enum):
    """``prod`` protects stateful resources (protect + retain on delete); ``dev`` does not."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


def _size(v: str) -> str:
    if not _MEM_RE.match(str(v)):
        raise ValueError("must be a size such as 10Gi or 512Mi")
    return str(v)


#: A volume size (Kubernetes quantity in Mi or Gi), checked wherever storage is configured.
Size = Annotated[str, AfterValidator(_size)]


class _Model(BaseModel):
    # Unknown keys are errors: a typo must never be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- value helpers


def cpu_millis(value: str) -> int:
    """``"500m"`` → 500, ``"1"`` → 1000, ``"1.5"`` → 1500."""
    return int(value[:-1]) if value.endswith("m") else int(round(float(value) * 1000))


def memory_mib(value: str) -> int:
    """``"512Mi"`` → 512, ``"1Gi"`` → 1024."""
    return int(value[:-2]) * (1024 if value.endswith("Gi") else 1)


class Resources(_Model):
    """CPU/memory requests and limits. Defaults: request 100m/128Mi, limit 500m/256Mi."""

    cpu: str = Field("100m", description="CPU request (Kubernetes quantity: 250m, 1, 1.5).")
    memory: str = Field("128Mi", description="Memory request (Mi or Gi).")
    cpu_limit: str = Field("500m", description="CPU limit; on Docker becomes `cpus`.")
    memory_limit: str = Field("256Mi", description="Memory limit; on Docker becomes `memory` (no swap).")

    @field_validator("cpu", "cpu_limit", mode="before")
    @classmethod
    def _cpu(cls, v: object) -> str:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = f"{v:g}"  # YAML turns `cpu_limit: 1` into a number
        if not _CPU_RE.match(str(v)):
            raise ValueError("must be a CPU quantity such as 250m, 1 or 1.5")
        return str(v)

    @field_validator("memory", "memory_limit")
    @classmethod
    def _mem(cls, v: str) -> str:
        if not _MEM_RE.match(str(v)):
            raise ValueError("must be a memory quantity such as 256Mi or 1Gi")
        return str(v)

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> "Resources":
        if cpu_millis(self.cpu_limit) < cpu_millis(self.cpu):
            raise ValueError(f"cpu_limit {self.cpu_limit} is below the request {self.cpu}; raise cpu_limit")
        if memory_mib(self.memory_limit) < memory_mib(self.memory):
            raise ValueError(
                f"memory_limit {self.memory_limit} is below the request {self.memory}; raise memory_limit"
            )
        return self


class Health(_Model):
    """A health check: an HTTP ``path`` on the service port, or an exec ``command``."""

    path: Optional[str] = Field(None, description="HTTP path probed on the service port, e.g. /health.")
    command: Optional[list[str]] = Field(None, description="Exec check, e.g. [pg_isready, -q].")
    ready_path: Optional[str] = Field(None, description="Readiness path if it differs (e.g. /ready).")
    interval: int = Field(10, ge=1, le=3600, description="Seconds between checks (default 10).")
    timeout: int = Field(5, ge=1, le=600, description="Seconds before a check fails (default 5).")
    retries: int = Field(5, ge=1, le=100, description="Failures before unhealthy (default 5).")
    start_period: int = Field(20, ge=0, le=3600, description="Grace seconds at start (default 20).")

    @model_validator(mode="after")
    def _one_kind(self) -> "Health":
        if (self.path is None) == (self.command is None):
            raise ValueError("give exactly one of `path` (HTTP) or `command` (exec)")
        return self


class Autoscale(_Model):
    """Horizontal autoscaling (Kubernetes HPA; Docker runs ``min`` replicas)."""

    min: int = Field(..., ge=1, description="Fewest replicas.")
    max: int = Field(..., ge=1, le=100, description="Most replicas.")
    cpu: Optional[int] = Field(70, ge=1, le=100, description="Target average CPU utilisation, percent.")
    memory: Optional[int] = Field(None, ge=1, le=100, description="Target average memory utilisation, percent.")

    @model_validator(mode="after")
    def _range(self) -> "Autoscale":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); make min <= max")
        return self


class GeneratedSecret(_Model):
    """A secret generated per stack with pulumi-random and kept secret."""

    generate: Literal[True] = True
    length: int = Field(32, ge=16, le=128)


class Metrics(_Model):
    """Where Prometheus scrapes the service."""

    path: str = "/metrics"
    port: Optional[int] = Field(None, ge=1, le=65535, description="Defaults to the service port.")


# ---------------------------------------------------------------- components


class DatabaseEngine(str, Enum):
    POSTGRES = "postgres"
    MONGODB = "mongodb"


DEFAULT_DB_VERSION = {DatabaseEngine.POSTGRES: "15", DatabaseEngine.MONGODB: "7.0"}
DB_PORT = {DatabaseEngine.POSTGRES: 5432, DatabaseEngine.MONGODB: 27017}


class DatabaseSpec(_Model):
    """A database. Defaults: PostgreSQL 15, 10Gi volume, database and user named after the key."""

    engine: DatabaseEngine = DatabaseEngine.POSTGRES
    version: Optional[str] = Field(None, description="Engine version; defaults to 15 (postgres) / 7.0 (mongodb).")
    image: Optional[str] = Field(None, description="Image override; defaults to the official image for the version.")
    database: Optional[str] = Field(None, description="Database name; defaults to the config key.")
    user: Optional[str] = Field(None, description="Owner role; defaults to the config key.")
    storage: Size = Field("10Gi", description="Volume size (Kubernetes PVC request).")
    replica: bool = Field(False, description="Postgres only: add a streaming-replication read replica.")
    resources: Resources = Resources(cpu="250m", memory="256Mi", cpu_limit="1", memory_limit="1Gi")
    settings: dict[str, str] = Field(default_factory=dict, description="postgres -c key=value settings.")

    @model_validator(mode="after")
    def _replica_engine(self) -> "DatabaseSpec":
        if self.replica and self.engine != DatabaseEngine.POSTGRES:
            raise ValueError("`replica: true` is supported for engine postgres only; remove it")
        return self


class CacheSpec(_Model):
    """A Redis cache with a password and AOF persistence. Defaults: Redis 7.2, 1Gi volume."""

    engine: Literal["redis"] = "redis"
    version: str = "7.2"
    image: Optional[str] = None
    storage: Size = "1Gi"
    maxmemory: Optional[str] = Field(None, description="e.g. 256mb; eviction policy allkeys-lru when set.")
    resources: Resources = Resources(cpu="100m", memory="128Mi", cpu_limit="500m", memory_limit="512Mi")


class BrokerSpec(_Model):
    """A RabbitMQ message broker: generated password, persistent volume, management UI (internal only).

    Services that list it in ``uses`` get ``AMQP_URL`` (secret). Defaults: RabbitMQ 3.13 with the
    management plugin, user and vhost named after the config key, 2Gi volume.
    """

    engine: Literal["rabbitmq"] = "rabbitmq"
    version: str = Field("3.13", description="RabbitMQ version; the image is rabbitmq:<version>-management.")
    image: Optional[str] = Field(None, description="Image override (keep rabbitmq-diagnostics for the health check).")
    user: Optional[str] = Field(None, description="Default user; defaults to the config key.")
    vhost: Optional[str] = Field(None, description="Default virtual host; defaults to the config key.")
    storage: Size = Field("2Gi", description="Volume size for /var/lib/rabbitmq (queues, Erlang cookie).")
    resources: Resources = Resources(cpu="100m", memory="256Mi", cpu_limit="1", memory_limit="512Mi")


class GraphDatabaseSpec(_Model):
    """A Neo4j graph database (community edition): generated password, persistent volume, internal only.

    Services that list it in ``uses`` get ``NEO4J_URI`` (``bolt://<name>:7687``), ``NEO4J_USER`` and
    ``NEO4J_PASSWORD`` (secrets); with the mapping form ``{graph: GRAPH_URI}`` the names become
    ``GRAPH_URI`` / ``GRAPH_USER`` / ``GRAPH_PASSWORD``. Defaults: Neo4j 4.4, 10Gi volume, 512m heap.
    """

    engine: Literal["neo4j"] = "neo4j"
    version: str = Field("4.4", description="Neo4j version; the image is neo4j:<version>.")
    image: Optional[str] = Field(None, description="Image override.")
    storage: Size = Field("10Gi", description="Volume size for /data.")
    heap: str = Field("512m", description="JVM heap (dbms.memory.heap.max_size), e.g. 512m or 2g.")
    page_cache: str = Field("256m", description="Page cache (dbms.memory.pagecache.size), e.g. 256m or 1g.")
    resources: Resources = Resources(cpu="250m", memory="1Gi", cpu_limit="1", memory_limit="1536Mi")

    @field_validator("heap", "page_cache")
    @classmethod
    def _jvm_size(cls, v: str) -> str:
        if not re.match(r"^\d+[mg]$", v):
            raise ValueError("must be a JVM size such as 512m or 2g")
        return v


class ServiceSpec(_Model):
    """An application container: web app (with ``port``), worker, scheduler or bot (without)."""

    image: str = Field(..., description="Image with a pinned tag or digest.")
    command: Optional[list[str]] = Field(None, description="Replaces the image's CMD (compose `command`).")
    entrypoint: Optional[list[str]] = Field(None, description="Replaces the image's ENTRYPOINT; rarely needed.")
    port: Optional[int] = Field(None, ge=1, le=65535, description="Container port; omit for workers/bots.")
    replicas: int = Field(1, ge=1, le=100, description="Replicas (Docker: containers). Default 1.")
    autoscale: Optional[Autoscale] = None
    env: dict[str, str] = Field(default_factory=dict, description="Plain environment variables.")
    secret_env: dict[str, Union[str, GeneratedSecret]] = Field(
        default_factory=dict,
        description="Env from secrets: a name in berth:secrets, or {generate: true}.",
    )
    uses: Union[list[str], dict[str, str]] = Field(
        default_factory=list,
        description="Databases/caches to connect to; list form injects DATABASE_URL / MONGODB_URI / REDIS_URL.",
    )
    depends_on: list[str] = Field(default_factory=list, description="Services to start first.")
    health: Optional[Health] = Field(None, description="Defaults to HTTP GET /health when a port is set.")
    metrics: Optional[Metrics] = None
    resources: Resources = Resources()
    run_as_user: int = Field(10001, ge=1, description="Non-root UID (default 10001).")
    run_as_root: bool = Field(False, description="Opt in to root (policy blocks it otherwise).")
    read_only_root: bool = Field(True, description="Read-only root filesystem; /tmp is writable.")
    writable_paths: list[str] = Field(default_factory=lambda: ["/tmp"])
    egress: bool = Field(True, description="May reach the outside (e.g. a bot calling an external API).")
    public_url: Optional[str] = Field(None, description="Reach an app on another host by URL (distributed).")

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        name = v.split("@")[0].rsplit("/", 1)[-1]
        if "@sha256:" not in v and (":" not in name or name.endswith(":latest")):
            raise ValueError("pin the image to a tag or digest (e.g. myapp:1.4.2), not :latest or no tag")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not _ENV_RE.match(k):
                raise ValueError(f"env name {k!r} is not a valid variable name")
        return {k: str(val) for k, val in v.items()}


class RateLimit(_Model):
    rate: int = Field(..., ge=1, description="Requests per second per client IP.")
    burst: int = Field(0, ge=0)


class Route(_Model):
    """A path routed by the proxy to a service."""

    path: str = Field(..., description="Path prefix, e.g. / or /api/.")
    service: str
    rate_limit: Optional[RateLimit] = None
    access_log: bool = True
    cache_static: bool = Field(False, description="Add 1-year cache headers (static assets).")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with /")
        return v


class TlsMode(str, Enum):
    SELF_SIGNED = "self-signed"
    FILES = "files"
    ACME = "acme"


class TlsSpec(_Model):
    mode: TlsMode = TlsMode.SELF_SIGNED
    cert_file: Optional[str] = Field(None, description="PEM certificate path (mode files).")
    key_file: Optional[str] = Field(None, description="PEM key path (mode files).")
    cluster_issuer: str = Field("letsencrypt-prod", description="cert-manager ClusterIssuer (Kubernetes).")
    email: Optional[str] = None

    @model_validator(mode="after")
    def _files(self) -> "TlsSpec":
        if self.mode == TlsMode.FILES and not (self.cert_file and self.key_file):
            raise ValueError("mode `files` needs cert_file and key_file")
        return self


class ProxySpec(_Model):
    """nginx on Docker (the only published container), an Ingress on Kubernetes."""

    routes: list[Route] = Field(..., min_length=1)
    tls: TlsSpec = TlsSpec()
    image: str = "nginxinc/nginx-unprivileged:1.27.3"
    http_port: int = Field(80, ge=1, le=65535)
    https_port: int = Field(443, ge=1, le=65535)
    bind_address: str = Field("0.0.0.0", description="Host address the proxy publishes on (Docker).")
    resolver: Optional[str] = Field(
        "127.0.0.11",
        description="DNS server nginx re-resolves upstreams with (Docker's embedded DNS); null resolves once at start.",
    )
    ingress_class: str = "nginx"
    health_path: str = "/health"
    resources: Resources = Resources(cpu="100m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi")


class BackupTier(_Model):
    name: str
    schedule: str
    keep: int = Field(..., ge=1, le=1000)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not _CRON_RE.match(v.strip()):
            raise ValueError("must be a 5-field cron expression such as '0 2 * * *'")
        return v.strip()


class S3Spec(_Model):
    endpoint: str
    bucket: str
    prefix: str = ""
    access_key_secret: str = Field(..., description="Name in berth:secrets holding the access key id.")
    secret_key_secret: str = Field(..., description="Name in berth:secrets holding the secret key.")


class BackupSpec(_Model):
    """Scheduled logical dumps of one database. Default: daily at 02:00, 7 kept."""

    tiers: list[BackupTier] = Field(
        default_factory=lambda: [BackupTier(name="daily", schedule="0 2 * * *", keep=7)], min_length=1
    )
    storage: Size = "20Gi"
    s3: Optional[S3Spec] = None
    pre_deploy: bool = Field(False, description="Take a dump before each deploy (a one-shot job).")
    restore_from: Optional[str] = Field(
        None, description="Run a one-shot restore of this dump (path under the backup volume, or 'latest')."
    )
    image: Optional[str] = Field(None, description="Image with pg_dump/mongodump (+ supercronic on Docker).")


class MonitoringSpec(_Model):
    enabled: bool = True
    prometheus_image: str = "prom/prometheus:v2.53.2"
    grafana_image: str = "grafana/grafana:11.2.2"
    postgres_exporter_image: str = "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"
    redis_exporter_image: str = "oliver006/redis_exporter:v1.62.0"
    mongodb_exporter_image: str = "percona/mongodb_exporter:0.40.0"
    pushgateway_image: str = "prom/pushgateway:v1.9.0"
    grafana: bool = True
    grafana_path: Optional[str] = Field("/grafana/", description="Route Grafana through the proxy here.")
    retention: str = "15d"
    storage: Size = "10Gi"


class LoggingSpec(_Model):
    """Central logs (ELK): Elasticsearch (single node, security on, generated ``elastic`` password),
    Logstash receiving JSON lines on TCP 5000 and Beats on 5044, and Kibana. Internal only; Kibana is
    reachable through the Proxy when ``kibana_path`` is set. Every service gets ``LOGSTASH_HOST`` and
    ``LOGSTASH_PORT`` to ship its logs to (an app-level log transport: a host-level collector would
    need the host mounts the policy pack forbids)."""

    enabled: bool = True
    elasticsearch_image: str = Field("docker.elastic.co/elasticsearch/elasticsearch:7.17.24",
                                     description="Elasticsearch image (7.x, where Kibana may log in as elastic).")
    logstash_image: str = Field("docker.elastic.co/logstash/logstash:7.17.24", description="Logstash image.")
    kibana_image: str = Field("docker.elastic.co/kibana/kibana:7.17.24", description="Kibana image.")
    kibana: bool = Field(True, description="Run Kibana (default on).")
    kibana_path: Optional[str] = Field("/kibana", description="Route Kibana through the proxy here (no trailing slash).")
    heap: str = Field("512m", description="Elasticsearch JVM heap (-Xms/-Xmx), e.g. 512m or 1g.")
    storage: Size = Field("10Gi", description="Elasticsearch volume size.")
    resources: Resources = Resources(cpu="250m", memory="1Gi", cpu_limit="1", memory_limit="2Gi")

    @field_validator("kibana_path")
    @classmethod
    def _path(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and (not v.startswith("/") or len(v) < 2 or v.endswith("/")):
            raise ValueError("must start with / and not end with / (e.g. /kibana)")
        return v

    @field_validator("heap")
    @classmethod
    def _heap(cls, v: str) -> str:
        if not re.match(r"^\d+[mg]$", v):
            raise ValueError("must be a JVM size such as 512m or 1g")
        return v


class DockerSpec(_Model):
    host: Optional[str] = Field(None, description="Docker host, e.g. ssh://deploy@host; default local engine.")


class KubernetesSpec(_Model):
    namespace: Optional[str] = Field(None, description="Defaults to the project-stack name.")
    storage_class: Optional[str] = None
    context: Optional[str] = Field(None, description="kubeconfig context; default: the current one.")
    ingress_namespace: str = Field("ingress-nginx", description="Namespace of the ingress controller (allowed in).")


class StackSpec(_Model):
    """A whole stack. Its keys are the top-level ``berth:`` config keys."""

    target: Target
    environment: Environment = Environment.DEV
    name: Optional[str] = Field(None, description="Resource name prefix; defaults to project-stack.")
    domain: str = "localhost"
    docker: DockerSpec = DockerSpec()
    kubernetes: KubernetesSpec = KubernetesSpec()
    databases: dict[str, DatabaseSpec] = Field(default_factory=dict)
    caches: dict[str, CacheSpec] = Field(default_factory=dict)
    brokers: dict[str, BrokerSpec] = Field(default_factory=dict, description="Message brokers (RabbitMQ).")
    graphs: dict[str, GraphDatabaseSpec] = Field(default_factory=dict, description="Graph databases (Neo4j).")
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    proxy: Optional[ProxySpec] = None
    backups: dict[str, BackupSpec] = Field(default_factory=dict)
    monitoring: Optional[MonitoringSpec] = None
    logging: Optional[LoggingSpec] = Field(None, description="Central logs (Elasticsearch, Logstash, Kibana).")
    secrets: dict[str, str] = Field(default_factory=dict, description="Secret values (pulumi config set --secret).")

    @property
    def protect(self) -> bool:
        return self.environment == Environment.PROD


# ---------------------------------------------------------------- cross-field checks


def _check_names(spec: StackSpec, problems: list[str]) -> None:
    seen: dict[str, str] = {}
    derived = {f"{d}-replica": d for d, s in spec.databases.items() if s.replica}
    for section in ("databases", "caches", "services"):
        for name in getattr(spec, section):
            if name in derived:
                problems.append(
                    f"{NAMESPACE}:{section}.{name}: the name is taken by the read replica of database "
                    f"{derived[name]!r}; rename it"
                )
    for section in ("databases", "caches", "brokers", "graphs", "services"):
        for name in getattr(spec, section):
            key = f"{NAMESPACE}:{section}.{name}"
            if not _NAME_RE.match(name):
                problems.append(
                    f"{key}: name {name!r} must be lowercase letters, digits and '-', start with a letter, "
                    "at most 30 characters; rename it"
                )
            if name in seen:
                problems.append(f"{key}: name {name!r} is also used in {NAMESPACE}:{seen[name]}; names must be unique")
            seen[name] = section


def _check_references(spec: StackSpec, problems: list[str]) -> None:
    stores = {**{n: d.engine.value for n, d in spec.databases.items()}, **{n: "redis" for n in spec.caches}}
    stores.update({n: "rabbitmq" for n in spec.brokers})
    stores.update({n: "neo4j" for n in spec.graphs})
    for sname, svc in spec.services.items():
        key = f"{NAMESPACE}:services.{sname}"
        used = list(svc.uses) if isinstance(svc.uses, list) else list(svc.uses.keys())
        for u in used:
            if u not in stores:
                known = ", ".join(sorted(stores)) or "none defined"
                problems.append(
                    f"{key}.uses: {u!r} is not a database, cache, broker or graph database (known: {known}); "
                    f"add it under {NAMESPACE}:databases / caches / brokers / graphs or fix the name"
                )
        if isinstance(svc.uses, list):
            kinds: dict[str, list[str]] = {}
            for u in used:
                if u in stores:
                    kinds.setdefault(stores[u], []).append(u)
            for kind, names in kinds.items():
                if len(names) > 1:
                    problems.append(
                        f"{key}.uses: {names} are all {kind}; use the mapping form to name each variable, "
                        f"e.g. uses: {{{names[0]}: DATABASE_URL, {names[1]}: OTHER_DATABASE_URL}}"
                    )
        for dep in svc.depends_on:
            if dep not in spec.services and dep not in stores:
                problems.append(f"{key}.depends_on: {dep!r} is not a service, database or cache; fix the name")
            if dep == sname:
                problems.append(f"{key}.depends_on: a service cannot depend on itself; remove {dep!r}")
        for var, ref in svc.secret_env.items():
            if not _ENV_RE.match(var):
                problems.append(f"{key}.secret_env: {var!r} is not a valid variable name")
            if isinstance(ref, str) and ref not in spec.secrets:
                problems.append(
                    f"{key}.secret_env.{var}: secret {ref!r} is missing; set it with "
                    f"`pulumi config set --secret --path '{NAMESPACE}:secrets.{ref}' <value>` "
                    "or use {generate: true}"
                )
        clash = set(svc.env) & set(svc.secret_env)
        for var in sorted(clash):
            problems.append(f"{key}.env.{var}: also set in secret_env; keep only one")
        if svc.autoscale and svc.replicas != 1 and not (svc.autoscale.min <= svc.replicas <= svc.autoscale.max):
            problems.append(
                f"{key}.replicas: {svc.replicas} is outside autoscale {svc.autoscale.min}-{svc.autoscale.max}; "
                "drop replicas (autoscale.min is used) or move it into the range"
            )
        if svc.metrics and svc.port is None and svc.metrics.port is None:
            problems.append(f"{key}.metrics: the service has no port; set metrics.port")
        if svc.health and svc.health.path and svc.port is None:
            problems.append(f"{key}.health.path: an HTTP check needs `port`; set port or use health.command")
        if svc.run_as_root and spec.target == Target.KUBERNETES:
            problems.append(
                f"{key}.run_as_root: the stack's namespace enforces Pod Security 'restricted', which admits no "
                "root pods; build the image to run as a non-root user and remove run_as_root"
            )
    if spec.proxy:
        for i, route in enumerate(spec.proxy.routes):
            rkey = f"{NAMESPACE}:proxy.routes[{i}].service"
            target = spec.services.get(route.service)
            if target is None:
                problems.append(f"{rkey}: {route.service!r} is not a service in {NAMESPACE}:services; fix the name")
            elif target.port is None:
                problems.append(f"{rkey}: service {route.service!r} has no port to route to; give it `port`")
        paths = [r.path for r in spec.proxy.routes]
        for p in sorted({p for p in paths if paths.count(p) > 1}):
            problems.append(f"{NAMESPACE}:proxy.routes: path {p!r} is routed twice; keep one")
        if spec.target == Target.DOCKER and spec.proxy.tls.mode == TlsMode.ACME:
            problems.append(
                f"{NAMESPACE}:proxy.tls.mode: 'acme' is for Kubernetes (cert-manager); on Docker use "
                "'files' (certificates from certbot) or 'self-signed'"
            )
    for db, b in spec.backups.items():
        bkey = f"{NAMESPACE}:backups.{db}"
        if db not in spec.databases:
            problems.append(f"{bkey}: {db!r} is not a database in {NAMESPACE}:databases; fix the name")
        if b.s3:
            for field in ("access_key_secret", "secret_key_secret"):
                ref = getattr(b.s3, field)
                if ref not in spec.secrets:
                    problems.append(
                        f"{bkey}.s3.{field}: secret {ref!r} is missing; set it with "
                        f"`pulumi config set --secret --path '{NAMESPACE}:secrets.{ref}' <value>`"
                    )
        if (spec.target == Target.DOCKER and not b.image and db in spec.databases
                and spec.databases[db].engine == DatabaseEngine.MONGODB):
            problems.append(
                f"{bkey}.image: on Docker, MongoDB backups need an image with mongodump and supercronic; set it"
            )
        names = [t.name for t in b.tiers]
        for n in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{bkey}.tiers: tier name {n!r} is used twice; make names unique")
    if spec.monitoring and spec.monitoring.enabled and spec.monitoring.grafana and spec.monitoring.grafana_path:
        if spec.proxy and any(r.path == spec.monitoring.grafana_path for r in spec.proxy.routes):
            problems.append(
                f"{NAMESPACE}:monitoring.grafana_path: {spec.monitoring.grafana_path!r} is already a proxy route; "
                "pick another path"
            )
    _check_logging(spec, problems)


def _check_logging(spec: StackSpec, problems: list[str]) -> None:
    """The logging workloads take fixed names and, with a proxy, a path."""
    if not (spec.logging and spec.logging.enabled):
        return
    taken = {"elasticsearch", "logstash", *(["kibana"] if spec.logging.kibana else [])}
    for section in ("databases", "caches", "brokers", "graphs", "services"):
        for name in sorted(set(getattr(spec, section)) & taken):
            problems.append(
                f"{NAMESPACE}:{section}.{name}: the name is taken by {NAMESPACE}:logging's {name}; rename it"
            )
    path = spec.logging.kibana_path
    if spec.logging.kibana and path and spec.proxy:
        used = [r.path.rstrip("/") or "/" for r in spec.proxy.routes]
        if spec.monitoring and spec.monitoring.enabled and spec.monitoring.grafana and spec.monitoring.grafana_path:
            used.append(spec.monitoring.grafana_path.rstrip("/"))
        if path in used:
            problems.append(
                f"{NAMESPACE}:logging.kibana_path: {path!r} is already routed by the proxy; pick another path"
            )


# ---------------------------------------------------------------- loading


_FIXES = {
    "extra_forbidden": "remove it or fix the spelling",
    "missing": "add it",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "bool_parsing": "use true or false",
    "string_type": "use a string",
    "enum": "use one of the listed values",
    "literal_error": "use one of the listed values",
    "greater_than_equal": "raise it",
    "less_than_equal": "lower it",
    "too_short": "add at least one entry",
    "list_type": "use a list",
    "dict_type": "use a mapping",
}


def _key(loc: tuple) -> str:
    head, *rest = [str(p) for p in loc if p not in ("list[str]", "dict[str,str]")] or ["?"]
    out = f"{NAMESPACE}:{head}"
    for part in rest:
        if part.isdigit():
            out += f"[{part}]"
        elif part in ("GeneratedSecret", "str"):
            continue
        else:
            out += f".{part}"
    return out


def _describe(err: dict) -> str:
    loc = err["loc"]
    key = _key(loc)
    value = err.get("input")
    shown = "(missing)" if err["type"] == "missing" else json.dumps(value, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    msg = err["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(err["type"], "")
    if err["type"] == "extra_forbidden" and len(loc) == 1:
        fix = "it is not a Berth setting: remove it or fix the spelling (see README, config reference)"
    return f"{key} = {shown}: {msg}" + (f"; {fix}" if fix and fix not in msg else "")


def parse_spec(raw: dict[str, Any]) -> StackSpec:
    """Validate a plain dict of ``berth:`` keys (without the prefix). Raises ConfigError."""
    try:
        spec = StackSpec.model_validate(raw)
    except ValidationError as exc:
        # Deduplicate the per-branch noise that unions produce.
        seen, problems = set(), []
        for err in exc.errors():
            text = _describe(err)
            key = text.split(" = ")[0]
            if err["type"] in ("string_type",) and any(p.startswith(key) for p in problems):
                continue
            if text not in seen:
                seen.add(text)
                problems.append(text)
        raise ConfigError(problems) from None
    problems: list[str] = []
    _check_names(spec, problems)
    _check_references(spec, problems)
    _check_cycles(spec, problems)
    if problems:
        raise ConfigError(problems)
    return spec


def service_order(services: dict[str, "ServiceSpec"]) -> tuple[list[str], list[str]]:
    """Services with their ``depends_on`` first, and every dependency cycle found
    (as ``"a -> b -> a"``). The one walk of the dependency graph: validation reports the cycles,
    the stack builds in this order."""
    order: list[str] = []
    cycles: list[tuple[str, str]] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycles.append((n, " -> ".join([*path[path.index(n):], n])))
            return
        state[n] = 1
        for d in services[n].depends_on:
            if d in services and d != n:
                visit(d, [*path, n])
        state[n] = 2
        order.append(n)

    for n in sorted(services):
        visit(n, [])
    return order, [f"{NAMESPACE}:services.{n}.depends_on: dependency cycle {c}; break the cycle" for n, c in cycles]


def _check_cycles(spec: StackSpec, problems: list[str]) -> None:
    """A ``depends_on`` cycle can never start; report it before anything is created."""
    problems.extend(service_order(spec.services)[1])


def read_raw_config() -> dict[str, Any]:
    """Every ``berth:*`` config value of the current stack, objects decoded from JSON."""
    from pulumi.runtime import config as rc

    keys = set(rc.CONFIG.get().keys()) | set(rc.get_config_env().keys())
    raw: dict[str, Any] = {}
    for full in sorted(keys):
        ns, _, key = full.partition(":")
        if ns != NAMESPACE:
            continue
        value = rc.get_config(full)
        if isinstance(value, str):
            stripped = value.strip()
            if stripped[:1] in ("{", "["):
                try:
                    value = json.loads(stripped)
                except json.JSONDecodeError as exc:
                    raise ConfigError([f"{full}: not valid JSON/YAML structure ({exc.msg}); fix the value"]) from None
        raw[key] = value
    return raw


def load_spec() -> StackSpec:
    """Read and validate the current stack's config. The one place config is read."""
    raw = read_raw_config()
    if "target" not in raw:
        raise ConfigError([f"{NAMESPACE}:target = (missing): set it with `pulumi config set {NAMESPACE}:target docker` "
                           "(or kubernetes)"])
    return parse_spec(raw)
