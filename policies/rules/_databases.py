"""Databases and the schedules that dump them, found from deployed resources alone.

A *database* is a long-running container (Docker Container; container of a Kubernetes Pod, Deployment,
StatefulSet, ReplicaSet or DaemonSet) that runs a database server: its image is a known engine
(``ENGINES``) and it runs the image's default command or the server binary, or a role label says
``database`` (``berth.role`` on Docker, ``app.kubernetes.io/component`` on Kubernetes) — labels help
but are never required. Its *host names* are what other containers use to reach it: the Docker
container name, hostname and network aliases; the Kubernetes workload name, ``serviceName``, the
Services whose selector matches its pods, and StatefulSet pod names.

A *backup schedule* is a Kubernetes CronJob (not suspended), or a long-running container whose command
runs a cron loop (supercronic, crond, ``while true; … sleep``), that ends up running a dump tool of the
engine (``pg_dump``, ``mongodump``, …; see ``_runs.reachable_text``) against one of the database's
host names, taken from ``-h``/``--host`` flags, connection URIs and ``*_HOST`` env values.

To recognise another engine, image or dump tool, extend ``ENGINES``; the rules' ``databaseImages`` and
``backupImages`` config add images without a code change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ._common import (
    DOCKER_CONTAINER,
    DOCKER_REMOTE_IMAGE,
    as_dict,
    as_list,
    config_list,
    docker_labels,
    docker_one_shot,
    get,
    k8s_kind,
    k8s_name,
    k8s_namespace,
    pod_labels,
    selector_matches,
)
from ._runs import Run, StackIndex, docker_run, k8s_runs, reachable_text


@dataclass(frozen=True)
class Engine:
    name: str
    images: tuple[str, ...]  # image base names (last path element, no tag)
    servers: tuple[str, ...]  # server binaries
    dump_tools: tuple[str, ...]


ENGINES = (
    Engine("postgres", ("postgres", "postgresql", "postgis", "timescaledb", "timescaledb-ha"), ("postgres",),
           ("pg_dump", "pg_dumpall", "pg_basebackup")),
    Engine("mongo", ("mongo", "mongodb", "mongodb-community-server"), ("mongod",), ("mongodump",)),
    Engine("mysql", ("mysql", "mariadb", "percona-server"), ("mysqld", "mariadbd"), ("mysqldump", "mariadb-dump")),
)
ALL_DUMP_TOOLS = tuple(t for e in ENGINES for t in e.dump_tools)
DATABASE_ROLE = "database"
DATABASE_KINDS = ("Pod", "Deployment", "StatefulSet", "ReplicaSet", "DaemonSet")

CRON_LOOP = re.compile(
    r"\b(?:supercronic|crond|go-crond|ofelia|cron\s+-f)\b"
    r"|(?s:\bwhile\s+(?:true|:|\[\s*1\s*\])\s*;?\s*do\b.{0,4000}?\bsleep\b)"
)
# A standby that streams from a primary: its data is the primary's, the primary's backup covers it.
REPLICA = re.compile(r"\bpg_basebackup\b[^\n]*\s(?:-R|--write-recovery-conf)\b|standby\.signal|primary_conninfo")
HOST_FLAG = re.compile(r"""(?:^|[\s'"])(?:-h|--host)(?:=|\s+)["']?(?:[\w.-]+/)?([A-Za-z0-9_.,:-]+)""")
URI_HOST = re.compile(r"""\b(?:postgres(?:ql)?|mongodb(?:\+srv)?|mysql|mariadb)://(?:[^@/\s'"]*@)?([A-Za-z0-9_.,:-]+)""")
CONNINFO_HOST = re.compile(r"\bhost=([A-Za-z0-9_.-]+)")
HOST_ENV = re.compile(r"(?:^|_)(?:HOST|HOSTNAME|SERVER|ADDR|ADDRESS)$|^(?:PGHOST|MONGO_HOST|MYSQL_HOST)$", re.I)


def image_base(image: str) -> str:
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0].lower() if image else ""


def engine_of_image(image: str, extra: Iterable[str] = ()) -> Optional[Engine]:
    base = image_base(image)
    for e in ENGINES:
        if base in e.images:
            return e
    for entry in extra:  # "image" or "image=engine"
        img, _, eng = str(entry).partition("=")
        if base == image_base(img):
            return next((e for e in ENGINES if e.name == (eng or "postgres")), None)
    return None


def _server_runs(run: Run, text: str, engine: Engine) -> bool:
    if not run.argv:
        return True  # the image's default command is the server
    names = "|".join(re.escape(s) for s in engine.servers)
    first = [a.rsplit("/", 1)[-1] for a in run.argv[:2]]
    if any(a in engine.servers for a in first):
        return True
    return bool(re.search(rf"(?m)(?:^|\bexec\s+|&&\s*|;\s*|docker-entrypoint\.sh\s+)\s*(?:\S*/)?(?:{names})(?![\w.-])", text))


def dump_tools_in(text: str) -> set[str]:
    return {t for t in ALL_DUMP_TOOLS if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", text)}


def hosts_in(text: str, env: dict[str, str]) -> set[str]:
    """Host names a command line/script connects to, plus the host-like env values."""
    out: set[str] = set()
    for rx in (HOST_FLAG, URI_HOST):
        for m in rx.finditer(text):
            for h in m.group(1).split(","):
                out.add(h.split(":", 1)[0])
    out.update(m.group(1) for m in CONNINFO_HOST.finditer(text))
    for k, v in env.items():
        if isinstance(v, str) and HOST_ENV.search(k):
            out.add(v.split(":", 1)[0])
        if isinstance(v, str):
            out.update(h.split(":", 1)[0] for m in URI_HOST.finditer(v) for h in m.group(1).split(","))
    return {h.strip().strip(".").lower() for h in out if h and "$" not in h}


@dataclass
class Database:
    run: Run
    engine: Optional[Engine]
    names: set[str]  # host names / workload names
    text: str = ""
    replica_of: set[str] = field(default_factory=set)

    @property
    def res(self):
        return self.run.res

    def describe(self) -> str:
        what = self.engine.name if self.engine else "database"
        return f"{self.run.describe()} ({what})"

    def reached_by(self, host: str, platform: str, namespace: str) -> bool:
        """Whether ``host``, used by a container on ``platform`` in ``namespace``, names this database."""
        if platform != self.run.platform or not host:
            return False
        if platform == "docker":
            return host in self.names  # container name, hostname or network alias
        labels = host.split(".")
        if labels[0] not in self.names:
            return False
        # <svc>, <svc>.<ns>[.svc.cluster.local], <pod>.<svc>[.<ns>...]
        rest = labels[2:] if len(labels) > 1 and labels[1] in self.names else labels[1:]
        if not rest:
            return _same_ns(namespace, self.run.namespace)
        return _same_ns(rest[0], self.run.namespace)


def _same_ns(a: str, b: str) -> bool:
    return not a or not b or a == b


def _docker_image_ref(r, by_urn) -> str:
    """A container's `image` is often a RemoteImage's id (unknown in preview): use the RemoteImage's name."""
    for urn in list(r.property_dependencies.get("image", [])) + list(r.dependencies):
        dep = by_urn.get(urn)
        if dep is not None and dep.type == DOCKER_REMOTE_IMAGE and isinstance(dep.props.get("name"), str):
            return dep.props["name"]
    image = r.props.get("image")
    return image if isinstance(image, str) else ""


def _docker_names(props) -> set[str]:
    names = {props.get("name"), props.get("hostname"), docker_labels(props).get("berth.workload")}
    for n in as_list(props.get("networksAdvanced")):
        names.update(a for a in as_list(as_dict(n).get("aliases")))
    return {n.lower() for n in names if isinstance(n, str) and n}


def _k8s_names(r, index: StackIndex) -> set[str]:
    kind = k8s_kind(r.type)
    name = k8s_name(r.props, "")
    names = {name, get(r.props, "spec", "serviceName")}
    labels = pod_labels(kind, r.props)
    ns = k8s_namespace(r.props)
    for svc in index.resources:
        if k8s_kind(svc.type) != "Service" or not _same_ns(k8s_namespace(svc.props), ns):
            continue
        selector = as_dict(get(svc.props, "spec", "selector", default={}))
        if selector and labels and selector_matches(selector, labels):
            names.add(k8s_name(svc.props, svc.name))
    if kind == "StatefulSet" and name:
        replicas = get(r.props, "spec", "replicas", default=1)
        count = int(replicas) if isinstance(replicas, (int, float)) and replicas > 0 else 1
        names.update(f"{name}-{i}" for i in range(min(count, 16)))
    return {n.lower() for n in names if isinstance(n, str) and n}


def databases(resources, config=None, index: Optional[StackIndex] = None) -> list[Database]:
    """Every database server the stack runs (one entry per container that runs it)."""
    config = config or {}
    index = index or StackIndex(resources)
    extra_images = config_list(config, "databaseImages", [])
    out: list[Database] = []
    for r in index.resources:
        if r.type == DOCKER_CONTAINER:
            if docker_one_shot(r.props):
                continue
            run = docker_run(r, index)
            labelled = docker_labels(r.props).get("berth.role") == DATABASE_ROLE
            db = _judge(run, _docker_image_ref(r, index.by_urn), labelled, extra_images)
            if db:
                db.names = _docker_names(r.props)
                out.append(db)
        elif k8s_kind(r.type) in DATABASE_KINDS:
            kind = k8s_kind(r.type)
            labelled = DATABASE_ROLE in (pod_labels(kind, r.props).get("app.kubernetes.io/component"),
                                         get(r.props, "metadata", "labels", "app.kubernetes.io/component"))
            for run in k8s_runs(r, index):
                db = _judge(run, run.image, labelled, extra_images)
                if db:
                    db.names = _k8s_names(r, index)
                    out.append(db)
                    break  # one database per workload (a sidecar exporter is not another one)
    return out


def _judge(run: Run, image: str, labelled: bool, extra_images) -> Optional[Database]:
    engine = engine_of_image(image, extra_images)
    if engine is None and not labelled:
        return None
    text = reachable_text(run)
    if CRON_LOOP.search(text):
        return None  # a scheduler using the database image (e.g. for its client tools)
    if engine is not None and not labelled and not _server_runs(run, text, engine):
        return None  # the image's client tools (a dump or restore job), not the server
    db = Database(run, engine, set(), text)
    if REPLICA.search(text):
        db.replica_of = hosts_in(text, run.env)
    return db


# ---------------------------------------------------------------- schedules

@dataclass
class Schedule:
    run: Run
    tools: set[str]
    hosts: set[str]

    def describe(self) -> str:
        return self.run.describe()


def _is_backup_image(image: str, config) -> bool:
    wanted = {image_base(i) for i in config_list(config, "backupImages", [])}
    return bool(image) and image_base(image) in wanted


def schedules(resources, config=None, index: Optional[StackIndex] = None) -> list[Schedule]:
    """Every recurring job of the stack, with the dump tools it runs and the hosts it talks to."""
    config = config or {}
    index = index or StackIndex(resources)
    out: list[Schedule] = []
    for r in index.resources:
        kind = k8s_kind(r.type)
        if kind == "CronJob":
            if get(r.props, "spec", "suspend") is True:
                continue
            runs, cron = k8s_runs(r, index), True
        elif r.type == DOCKER_CONTAINER:
            if docker_one_shot(r.props):
                continue
            runs, cron = [docker_run(r, index)], False
        elif kind in DATABASE_KINDS:
            runs, cron = k8s_runs(r, index), False
        else:
            continue
        for run in runs:
            text = reachable_text(run)
            if not cron and not CRON_LOOP.search(text):
                continue
            tools = dump_tools_in(text)
            if _is_backup_image(run.image, config):
                tools.add("*")
            out.append(Schedule(run, tools, hosts_in(text, run.env)))
    return out


def backs_up(schedule: Schedule, db: Database) -> bool:
    if not schedule.tools:
        return False
    if db.engine is not None and "*" not in schedule.tools and not (schedule.tools & set(db.engine.dump_tools)):
        return False
    return any(db.reached_by(h, schedule.run.platform, schedule.run.namespace) for h in schedule.hosts)
