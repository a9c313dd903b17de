"""The neutral workload form between components and targets.

Components turn intent into ``Workload``s; targets turn ``Workload``s into Docker or Kubernetes
resources. Nothing here imports a target, and targets never know which component they serve.
Values that decide *what* is built are plain Python; values only passed through (secrets,
generated passwords, rendered files with secrets) may be ``pulumi.Input``, and those that only a
resource can give are ``Later`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

import pulumi

from .spec import Resources


class Kind(str, Enum):
    """How a workload runs."""

    SERVICE = "service"  # long-running, stateless (Deployment / containers)
    STATEFUL = "stateful"  # long-running with a data volume (StatefulSet / container + named volume)
    CRON = "cron"  # scheduled (CronJob / a scheduler container running supercronic)


class Role(str, Enum):
    """What a workload is, used for labels, policies and network rules."""

    DATABASE = "database"
    CACHE = "cache"
    APP = "app"
    PROXY = "proxy"
    BACKUP = "backup"
    MONITORING = "monitoring"
    EXPORTER = "exporter"
    BROKER = "broker"
    LOGGING = "logging"


class Later:
    """A value that only a resource gives, once it exists: a generated password, a certificate,
    another stack's output.

    The whole plan (every workload of every component) is computed, and checked, before any
    resource exists, yet its workloads pass such values through: an app's ``DATABASE_URL`` holds
    the database's generated password. They hold ``output``, an Output that stays pending until the
    component that creates the resource calls ``resolve`` with the real value; whatever was derived
    from it (a URL, a hash) then completes too, with the resource as a dependency and its secrecy.
    ``name`` is the resource that gives it, for the error when one is never resolved.
    """

    def __init__(self, name: str):
        self.name = name
        self.output, self._resolve = pulumi.deferred_output()
        self.resolved = False

    def resolve(self, value: pulumi.Input[str]) -> None:
        self._resolve(pulumi.Output.from_input(value))
        self.resolved = True

    def fail(self, error: BaseException) -> None:
        """Resolve with an error: what was derived from the value fails with ``error`` instead of
        waiting for ever (Pulumi waits for every pending Output before the program ends)."""

        def raise_it(_: object) -> str:
            raise error

        self._resolve(pulumi.Output.from_input("").apply(raise_it))
        self.resolved = True

    def __repr__(self) -> str:
        return f"Later({self.name!r})"


@dataclass(frozen=True)
class SecretValue:
    """A secret handed to a workload: stored in Secret ``secret`` under ``key`` (Kubernetes), or
    passed as an env value (Docker: the container's env is then a secret output)."""

    secret: str
    key: str
    value: pulumi.Input[str]


@dataclass(frozen=True)
class Port:
    name: str
    port: int


@dataclass(frozen=True)
class Publish:
    """A host port (Docker) for the edge proxy only."""

    host_port: int
    container_port: int
    host_ip: str = "0.0.0.0"


@dataclass(frozen=True)
class DataVolume:
    """A persistent volume: a named docker volume / a PVC (volumeClaimTemplate for STATEFUL)."""

    name: str
    path: str
    size: str = "10Gi"
    #: Shared volumes (e.g. backups read by a restore job) are standalone PVCs, not claim templates.
    shared: bool = False


@dataclass(frozen=True)
class File:
    """A generated file mounted read-only at ``path``. A ``secret`` file belongs to the workload's
    user and should be readable by it alone (``mode=0o400``); on Docker it never travels in an
    environment (targets/docker.py: uploads)."""

    name: str
    path: str
    content: pulumi.Input[str]
    secret: bool = False
    mode: int = 0o444


@dataclass(frozen=True)
class ImageBuild:
    """An image built on the Docker host from a folder shipped with Berth (kept there, never
    pushed); the workload's ``image`` is the local name it is built as."""

    #: Names the build (``build-<name>``); one build per image name.
    name: str
    context: str
    args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """A health check in neutral form. ``http`` probes GET ``path`` on ``port``."""

    command: Optional[tuple[str, ...]] = None
    path: Optional[str] = None
    port: Optional[int] = None
    interval: int = 10
    timeout: int = 5
    retries: int = 5
    start_period: int = 20
    #: Run it on Docker too. Docker health checks run inside the container, so images without a
    #: shell or HTTP client (scratch-based exporters) can only be probed by the kubelet.
    docker: bool = True


@dataclass(frozen=True)
class Scaling:
    min: int
    max: int
    cpu: Optional[int] = 70
    memory: Optional[int] = None
    #: Seconds of low load before scaling down (Kubernetes' default: 300).
    scale_down_after: int = 300


@dataclass(frozen=True)
class Workload:
    """One deployable unit: a container (Docker) or a pod template (Kubernetes)."""

    name: str
    role: Role
    image: str
    kind: Kind = Kind.SERVICE
    #: Replaces the image ENTRYPOINT (Kubernetes ``command``, Docker ``entrypoints``).
    entrypoint: Optional[tuple[str, ...]] = None
    #: Replaces the image CMD (Kubernetes ``args``, Docker ``command``).
    command: Optional[tuple[str, ...]] = None
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretValue] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    publish: tuple[Publish, ...] = ()
    volumes: tuple[DataVolume, ...] = ()
    files: tuple[File, ...] = ()
    tmpfs: tuple[str, ...] = ("/tmp",)
    health: Optional[Probe] = None
    readiness: Optional[Probe] = None
    resources: Resources = Resources()
    replicas: int = 1
    scaling: Optional[Scaling] = None
    schedule: Optional[str] = None
    user: Optional[int] = 10001
    group: Optional[int] = None
    read_only_root: bool = True
    depends_on: tuple[str, ...] = ()
    #: Other workloads allowed to connect to this one's ports (NetworkPolicy ingress).
    allow_from: tuple[str, ...] = ()
    #: May open connections outside the stack (internet egress).
    egress: bool = False
    #: Contains data that must survive: protect + retain in prod, grace on stop.
    stateful_data: bool = False
    #: A one-shot job (restore / pre-deploy backup): not kept running.
    one_shot: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    #: Extra capabilities this workload needs beyond none (kept to a tiny allow-list).
    capabilities: tuple[str, ...] = ()
    stop_grace_seconds: int = 10
    #: Build ``image`` on the host instead of pulling it (Docker only).
    build: Optional[ImageBuild] = None
    #: At most one running at any time, rollouts included (a scheduler: two would run each task twice).
    singleton: bool = False
    #: Directories of the image the workload writes into when it starts (an entrypoint that rewrites
    #: its configuration): each is a writable copy of the image's own directory, so the root stays
    #: read-only. Kubernetes: an emptyDir an init container fills from the image; Docker: a volume
    #: Docker fills from the image when it is created, named after what the container runs, so a
    #: changed image or setting starts again from the image's files.
    seeded: tuple[str, ...] = ()
    #: Its tmpfs paths may hold what it runs: a JVM that unpacks a native library into /tmp and loads
    #: it from there (JNA in Neo4j and Elasticsearch, JRuby's FFI in Logstash) fails on a noexec /tmp
    #: (Neo4j does not start). Docker only: an emptyDir is never noexec.
    tmpfs_exec: bool = False

    @property
    def fs_group(self) -> Optional[int]:
        return self.group if self.group is not None else self.user


def probe_http_command(p: Probe) -> tuple[str, ...]:
    """The exec form of an HTTP probe for Docker (which has only exec health checks)."""
    url = f"http://127.0.0.1:{p.port}{p.path}"
    # wget or curl, whichever the image has; python3 as the last resort for slim Python images.
    script = (
        f"wget -q -O /dev/null {url} 2>/dev/null || curl -fsS -o /dev/null {url} 2>/dev/null || "
        f"python3 -c \"import urllib.request,sys; urllib.request.urlopen('{url}', timeout=4)\""
    )
    return ("CMD-SHELL", script)
