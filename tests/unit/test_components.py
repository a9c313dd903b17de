"""Each component (Database postgres / postgres+replica / mongodb, Cache, AppService web/worker/bot)
on each target (docker, kubernetes): through the real program under recording mocks with small
configs, and through the pure ``*_workloads`` / mapping functions."""

from __future__ import annotations

import json

import pytest

from berth.record import placeholder
from berth.components.app_service import Connection, connection_env, replica_var, service_workload
from berth.components.cache import cache_workloads, redis_command
from berth.components.database import Credentials, database_workloads, default_image
from berth.components.ir import Kind, Role
from berth.components.spec import CacheSpec, DatabaseSpec, GeneratedSecret, ServiceSpec
from berth.components.targets.docker import DockerContext, container_args
from berth.components.targets.kubernetes import KubeContext, manifests

from .support import (
    CONTAINER,
    DEPLOYMENT,
    HPA,
    K8S_CONFIGMAP,
    K8S_SECRET,
    K8S_SERVICE,
    NETPOL,
    PASSWORD,
    PDB,
    PREFIX,
    STATEFULSET,
    VOLUME,
    docker_files,
    env_map,
    named,
    rec,
)

APP = "ghcr.io/acme/app:1.0.0"
DB_PW = placeholder("password", "db-password")
CREDS = Credentials("pw", "apw")

# ---------------------------------------------------------------- Database: postgres


def test_postgres_on_docker():
    r = rec("docker", databases={"db": {"database": "shop", "user": "shopper"}})
    comp = r.find("berth:index:Database", "db")
    c = r.find(CONTAINER, "db")
    v = r.find(VOLUME, "db-data")
    assert r.find(PASSWORD, "db-password").parent == comp.urn
    assert c.parent == comp.urn and v.parent == comp.urn
    assert c.inputs["image"] == "postgres:15"
    env = env_map(c)
    # The superuser (the image's POSTGRES_USER) has a password of its own; the services log in as
    # the owner role, whose password keeps the name the only password had (db-password).
    assert env["POSTGRES_USER"] == "postgres" and env["POSTGRES_PASSWORD"] == placeholder("password", "db-admin-password")
    assert env["BERTH_OWNER"] == "shopper" and env["BERTH_OWNER_PASSWORD"] == DB_PW and env["POSTGRES_DB"] == "shop"
    assert "BERTH_MONITOR_PASSWORD" not in env and "BERTH_BACKUP_PASSWORD" not in env  # no exporter, no backups
    assert env["PGDATA"].startswith("/var/lib/postgresql/data/")
    assert c.inputs["volumes"] == [
        {"volumeName": f"{PREFIX}-db-data", "containerPath": "/var/lib/postgresql/data", "readOnly": False},
        # the entrypoint and roles scripts, written by the one-shot db-files container (read-only root)
        {"volumeName": f"{PREFIX}-db-files-berth", "containerPath": "/berth", "readOnly": True},
        {"volumeName": f"{PREFIX}-db-files-docker-entrypoint-initdb-d", "containerPath": "/docker-entrypoint-initdb.d",
         "readOnly": True},
    ]
    assert c.inputs["healthcheck"]["tests"][:2] == ["CMD", "pg_isready"]
    assert c.inputs["destroyGraceSeconds"] >= 30
    # Databases are never on the edge network (no route out, never published).
    assert [n["name"] for n in c.inputs["networksAdvanced"]] == [f"{PREFIX}-internal"]
    assert "ports" not in c.inputs
    assert v.urn in c.depends_on
    url = r.outputs["databases"]["db"]["url"]
    assert url == f"postgresql://shopper:{DB_PW}@db:5432/shop"


def test_postgres_on_kubernetes():
    r = rec("kubernetes", databases={"db": {"storage": "5Gi"}})
    sts = r.find(STATEFULSET, "db-statefulset")
    svc = r.find(K8S_SERVICE, "db-service")
    secret = r.find(K8S_SECRET, "db-env")
    assert sts.parent == r.find("berth:index:Database", "db").urn
    assert sts.inputs["metadata"]["name"] == "db"
    assert sts.inputs["spec"]["serviceName"] == "db"
    claims = sts.inputs["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["db-data"]
    assert claims[0]["spec"]["resources"]["requests"]["storage"] == "5Gi"
    container = sts.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "postgres:15"
    assert {"name": "db-data", "mountPath": "/var/lib/postgresql/data"} in container["volumeMounts"]
    # Ready when Postgres accepts connections; alive while it listens (a long crash recovery is not
    # restarted in a loop), after a startup probe with the start period's room.
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert container["livenessProbe"]["tcpSocket"] == {"port": 5432}
    assert container["startupProbe"]["tcpSocket"] == {"port": 5432}
    assert svc.inputs["spec"]["clusterIP"] == "None"  # headless governing service
    assert svc.inputs["spec"]["ports"][0]["port"] == 5432
    assert secret.inputs["stringData"] == {"POSTGRES_PASSWORD": placeholder("password", "db-admin-password"),
                                           "BERTH_OWNER_PASSWORD": DB_PW}
    assert secret.urn in sts.depends_on


def test_postgres_replica_on_docker():
    r = rec("docker", databases={"db": {"replica": True}})
    containers = named(r, CONTAINER)
    assert set(containers) == {"db", "db-replica", "db-files", "db-replica-files"}  # + their files writers
    primary, replica = containers["db"], containers["db-replica"]
    assert replica.inputs["entrypoints"] == ["bash", "/berth/replica-entrypoint.sh"]
    assert "pg_basebackup" in docker_files(r, "db-replica")["/berth/replica-entrypoint.sh"]
    assert "chmod 555 /berth-files/0/replica-entrypoint.sh" in containers["db-replica-files"].inputs["command"][0]
    # The replica clones the primary: it is created once the primary is healthy.
    assert primary.urn in replica.depends_on
    rp = placeholder("password", "db-replication-password")
    assert env_map(primary)["REPLICATION_PASSWORD"] == rp
    assert env_map(replica)["REPLICATION_PASSWORD"] == rp
    assert env_map(replica)["PRIMARY_HOST"] == "db"
    # The replica has its own volume: it never shares the primary's data directory.
    data = {v.inputs["name"] for v in r.by_type(VOLUME) if {"label": "berth.config", "value": "true"} not in v.inputs["labels"]}
    assert data == {f"{PREFIX}-db-data", f"{PREFIX}-db-replica-data"}
    assert r.outputs["databases"]["db"]["url"].endswith("@db:5432/db")


def test_postgres_replica_on_kubernetes():
    r = rec("kubernetes", databases={"db": {"replica": True}}, services={"api": {"image": APP, "uses": ["db"]}})
    sets = named(r, STATEFULSET)
    assert set(sets) == {"db-statefulset", "db-replica-statefulset"}
    replica = sets["db-replica-statefulset"]
    assert sets["db-statefulset"].urn in replica.depends_on
    tpl = replica.inputs["spec"]["template"]["spec"]
    assert tpl["containers"][0]["command"] == ["bash", "/berth/replica-entrypoint.sh"]
    cm = r.find(K8S_CONFIGMAP, "db-replica-files")
    assert "pg_basebackup" in json.dumps(cm.inputs["data"])
    assert "REPLICATION" in named(r, K8S_CONFIGMAP)["db-files"].inputs["data"]["berth_postgres-roles.sh"]
    # The app gets both URLs, by reference.
    env = {e["name"]: e for e in r.find(DEPLOYMENT, "api-deployment").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_REPLICA_URL"]["valueFrom"]["secretKeyRef"] == {"name": "api-env", "key": "DATABASE_REPLICA_URL"}
    assert "@db-replica:5432/" in r.find(K8S_SECRET, "api-env").inputs["stringData"]["DATABASE_REPLICA_URL"]
    # Only the app (and the replica itself) may connect to the replica.
    netpol = r.find(NETPOL, "db-replica-netpol")
    peers = [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in netpol.inputs["spec"]["ingress"][0]["from"]]
    assert "api" in peers


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_mongodb(target):
    r = rec(target, databases={"docs": {"engine": "mongodb"}})
    pw = placeholder("password", "docs-password")
    root = placeholder("password", "docs-admin-password")
    if target == "docker":
        c = r.find(CONTAINER, "docs")
        assert c.inputs["image"] == "mongo:7.0"
        env = env_map(c)
        # Berth makes every user itself (mongo-users.js): the image makes none.
        assert env["BERTH_ROOT_PASSWORD"] == root and env["BERTH_OWNER_PASSWORD"] == pw
        assert not any(k.startswith("MONGO_INITDB_ROOT") for k in env)
        assert c.inputs["command"] == ["mongod", "--auth", "--bind_ip_all"]
        assert c.inputs["volumes"][0]["containerPath"] == "/data/db"
        users = docker_files(r, "docs")["/berth/mongo-users.js"]
    else:
        sts = r.find(STATEFULSET, "docs-statefulset")
        assert sts.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == "mongo:7.0"
        assert r.find(K8S_SERVICE, "docs-service").inputs["spec"]["ports"][0]["port"] == 27017
        assert r.find(K8S_SECRET, "docs-env").inputs["stringData"] == {"BERTH_ROOT_PASSWORD": root,
                                                                       "BERTH_OWNER_PASSWORD": pw}
        users = r.find(K8S_CONFIGMAP, "docs-files").inputs["data"]["berth_mongo-users.js"]
    assert '"roles": [{"db": "docs", "role": "readWrite"}], "user": "docs"' in users and pw not in users
    assert r.outputs["databases"]["docs"]["url"] == f"mongodb://docs:{pw}@docs:27017/docs?authSource=admin"


# ---------------------------------------------------------------- Cache


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_cache(target):
    r = rec(target, caches={"cache": {"maxmemory": "128mb"}})
    pw = placeholder("password", "cache-password")
    if target == "docker":
        c = r.find(CONTAINER, "cache")
        cmd = c.inputs["command"]
        assert c.inputs["image"] == "redis:7.2"
        assert env_map(c)["REDIS_PASSWORD"] == pw
        assert r.find(VOLUME, "cache-data").inputs["name"] == f"{PREFIX}-cache-data"
    else:
        container = r.find(STATEFULSET, "cache-statefulset").inputs["spec"]["template"]["spec"]["containers"][0]
        cmd = container["args"]
        assert r.find(K8S_SECRET, "cache-env").inputs["stringData"] == {
            "REDIS_PASSWORD": pw, "REDIS_ADMIN_PASSWORD": placeholder("password", "cache-admin-password")}
    # The password comes from the environment at run time, never from the command line input.
    assert pw not in json.dumps(cmd)
    # ... and never reaches redis-server's argv (readable by every process on the host): it goes
    # into a private config file on the container's tmpfs.
    assert "--requirepass" not in cmd[-1] and "exec redis-server /tmp/redis-auth.conf " in cmd[-1]
    assert "umask 077" in cmd[-1] and '"${REDIS_ADMIN_PASSWORD:?is not set}"; } > /tmp/redis-auth.conf' in cmd[-1]
    assert "--maxmemory 128mb --maxmemory-policy allkeys-lru" in cmd[-1]
    assert "--appendonly yes" in cmd[-1]
    # Without monitoring there is no exporter, and so no exporter's user.
    assert "REDIS_MONITOR_PASSWORD" not in cmd[-1]
    assert r.outputs["caches"]["cache"]["url"] == f"redis://:{pw}@cache:6379/0"


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_cache_exporter_logs_in_as_its_own_user(target):
    r = rec(target, caches={"cache": {}}, monitoring={})
    apps, monitor = placeholder("password", "cache-password"), placeholder("password", "cache-monitor-password")
    admin = placeholder("password", "cache-admin-password")
    assert len({apps, monitor, admin}) == 3
    if target == "docker":
        cache, exporter = env_map(r.find(CONTAINER, "cache")), env_map(r.find(CONTAINER, "cache-exporter"))
        assert cache["REDIS_MONITOR_PASSWORD"] == monitor and cache["REDIS_PASSWORD"] == apps
        assert cache["REDIS_ADMIN_PASSWORD"] == admin
    else:
        assert r.find(K8S_SECRET, "cache-env").inputs["stringData"] == {
            "REDIS_PASSWORD": apps, "REDIS_ADMIN_PASSWORD": admin, "REDIS_MONITOR_PASSWORD": monitor}
        exporter = {**r.find(K8S_SECRET, "cache-exporter-env").inputs["stringData"],
                    **{e["name"]: e["value"] for e in r.find(DEPLOYMENT, "cache-exporter-deployment").inputs[
                        "spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}}
    assert exporter["REDIS_USER"] == "berth_monitor" and exporter["REDIS_PASSWORD"] == monitor
    # The apps' URL keeps the apps' password (the default user).
    assert r.outputs["caches"]["cache"]["url"] == f"redis://:{apps}@cache:6379/0"


def test_cache_users_file_is_written_on_every_start(tmp_path):
    """The shell the Redis container runs writes the users file (mode 600) from its environment,
    then execs redis-server on it: run here with a redis-server that prints what it was given."""
    import os
    import subprocess

    fake = tmp_path / "redis-server"
    fake.write_text('#!/bin/sh\ncat "$1"; stat -c %a "$1"; shift; echo "$@"\n')
    fake.chmod(0o755)
    script = redis_command(CacheSpec(), monitored=True)[-1].replace("/tmp/redis-auth.conf", str(tmp_path / "a.conf"))
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "REDIS_PASSWORD": "apps0pw",
           "REDIS_ADMIN_PASSWORD": "admin0pw", "REDIS_MONITOR_PASSWORD": "mon0pw"}
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, env=env).stdout.splitlines()
    assert out[0] == "user default reset on ~* &* +@all -@admin >apps0pw"
    assert out[1] == "user berth_admin reset on ~* &* +@all >admin0pw"
    # The exporter: no key or channel pattern, and only reads of the server's state.
    assert out[2].startswith("user berth_monitor reset on +ping +info +config|get ") and out[2].endswith(" >mon0pw")
    assert "~" not in out[2] and "&" not in out[2] and "@all" not in out[2]
    assert out[3] == "600"
    assert out[4].startswith("--appendonly yes") and "pw" not in out[4]
    # A password missing from the environment stops the start: no user gets the password "".
    del env["REDIS_ADMIN_PASSWORD"]
    bad = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "REDIS_ADMIN_PASSWORD" in bad.stderr and "user" not in bad.stdout


# ---------------------------------------------------------------- AppService: web, worker, bot

SERVICES = {
    "web": {"image": APP, "port": 8000, "uses": ["db", "cache"], "env": {"LOG_LEVEL": "info"},
            "secret_env": {"SESSION_KEY": {"generate": True}}},
    "worker": {"image": APP, "command": ["celery", "worker"], "replicas": 2, "uses": {"db": "PG_URL"},
               "egress": False},
    "bot": {"image": "ghcr.io/acme/bot:2.1", "secret_env": {"BOT_TOKEN": "telegram-token"}, "egress": True,
            "depends_on": ["web"]},
}
STORES = {"databases": {"db": {}}, "caches": {"cache": {}}, "secrets": {"telegram-token": "t0ken"}}


@pytest.fixture(scope="module")
def apps_docker():
    return rec("docker", services=SERVICES, **STORES)


@pytest.fixture(scope="module")
def apps_k8s():
    return rec("kubernetes", services=SERVICES, **STORES)


def test_web_on_docker(apps_docker):
    r = apps_docker
    c = r.find(CONTAINER, "web")
    env = env_map(c)
    assert env["LOG_LEVEL"] == "info"
    assert env["DATABASE_URL"] == f"postgresql://db:{DB_PW}@db:5432/db"
    assert env["REDIS_URL"].startswith("redis://:<<berth:password:cache-password>>@cache:6379")
    # A generated secret: a RandomPassword owned by the service, passed by its (placeholder) result.
    web = r.find("berth:index:AppService", "web")
    owned = [p.name for p in r.by_type(PASSWORD) if p.parent == web.urn]
    assert len(owned) == 1 and env["SESSION_KEY"] == placeholder("password", owned[0])
    assert "8000" in c.inputs["healthcheck"]["tests"][1] and "/health" in c.inputs["healthcheck"]["tests"][1]
    # It waits for what it uses.
    assert r.find(CONTAINER, "db").urn in c.depends_on and r.find(CONTAINER, "cache").urn in c.depends_on
    assert "ports" not in c.inputs  # only the proxy publishes ports
    assert c.inputs["user"] == "10001:10001" and c.inputs["readOnly"] is True
    assert r.outputs["services"]["web"] == "http://web:8000"


def test_worker_on_docker(apps_docker):
    workers = [n for n in named(apps_docker, CONTAINER) if n.startswith("worker")]
    assert sorted(workers) == ["worker-1", "worker-2"]
    c = apps_docker.find(CONTAINER, "worker-1")
    assert c.inputs["name"] == f"{PREFIX}-worker-1"
    assert c.inputs["command"] == ["celery", "worker"]
    env = env_map(c)
    assert "PG_URL" in env and "DATABASE_URL" not in env  # mapping form names the variable
    assert "healthcheck" not in c.inputs and "wait" not in c.inputs  # no port, no default HTTP check
    assert [n["name"] for n in c.inputs["networksAdvanced"]] == [f"{PREFIX}-internal"]


def test_bot_on_docker(apps_docker):
    c = apps_docker.find(CONTAINER, "bot")
    assert env_map(c)["BOT_TOKEN"] == placeholder("config", "telegram-token")
    # A bot calls an external API: it joins the edge network too.
    assert {n["name"] for n in c.inputs["networksAdvanced"]} == {f"{PREFIX}-internal", f"{PREFIX}-edge"}
    assert apps_docker.find(CONTAINER, "web").urn in c.depends_on


def test_web_on_kubernetes(apps_k8s):
    r = apps_k8s
    d = r.find(DEPLOYMENT, "web-deployment")
    container = d.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert container["livenessProbe"]["tcpSocket"] == {"port": 8000}
    names = {e["name"] for e in container["env"]}
    assert {"LOG_LEVEL", "DATABASE_URL", "REDIS_URL", "SESSION_KEY"} <= names
    svc = r.find(K8S_SERVICE, "web-service")
    assert svc.inputs["metadata"]["name"] == "web" and svc.inputs["spec"]["type"] == "ClusterIP"
    assert d.inputs["spec"]["replicas"] == 1
    # The bot depends on web, so the bot is allowed in.
    netpol = r.find(NETPOL, "web-netpol")
    peers = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in netpol.inputs["spec"]["ingress"][0]["from"]}
    assert peers == {"bot"}


def test_worker_on_kubernetes(apps_k8s):
    d = apps_k8s.find(DEPLOYMENT, "worker-deployment")
    assert d.inputs["spec"]["replicas"] == 2
    assert d.inputs["spec"]["template"]["spec"]["containers"][0]["args"] == ["celery", "worker"]
    assert "worker-service" not in named(apps_k8s, K8S_SERVICE)
    assert apps_k8s.find(PDB, "worker-pdb").inputs["spec"]["maxUnavailable"] == 1
    assert "web-hpa" not in named(apps_k8s, HPA)
    netpol = apps_k8s.find(NETPOL, "worker-netpol").inputs["spec"]
    assert "ingress" not in netpol and netpol["policyTypes"] == ["Ingress"]  # no rules: nothing may connect


def test_bot_on_kubernetes(apps_k8s):
    netpol = apps_k8s.find(NETPOL, "bot-netpol").inputs["spec"]
    assert "Egress" in netpol["policyTypes"]
    # Out to anywhere but the metadata service and private ranges (tests/unit/test_secure_defaults.py).
    assert [b["ipBlock"]["cidr"] for b in netpol["egress"][0]["to"]] == ["0.0.0.0/0", "::/0"]
    secret = apps_k8s.find(K8S_SECRET, "bot-env")
    assert secret.inputs["stringData"] == {"BOT_TOKEN": placeholder("config", "telegram-token")}
    assert apps_k8s.find(DEPLOYMENT, "web-deployment").urn in apps_k8s.find(DEPLOYMENT, "bot-deployment").depends_on


# ---------------------------------------------------------------- pure functions


DCTX = DockerContext(prefix="p", internal_network="p-internal", edge_network="p-edge")
KCTX = KubeContext(namespace="ns", stack="p")


@pytest.mark.parametrize(
    "spec,image,port,kinds",
    [
        (DatabaseSpec(), "postgres:15", 5432, ["db"]),
        (DatabaseSpec(version="16"), "postgres:16", 5432, ["db"]),
        (DatabaseSpec(replica=True), "postgres:15", 5432, ["db", "db-replica"]),
        (DatabaseSpec(engine="mongodb"), "mongo:7.0", 27017, ["db"]),
        (DatabaseSpec(image="registry.local/pg:15.6"), "registry.local/pg:15.6", 5432, ["db"]),
    ],
)
def test_database_workloads(spec, image, port, kinds):
    ws = database_workloads("db", spec, Credentials("pw", "apw", "rpw" if spec.replica else None), allow_from=["api"])
    assert [w.name for w in ws] == kinds
    assert default_image(spec) == image
    for w in ws:
        assert w.kind == Kind.STATEFUL and w.role == Role.DATABASE and w.stateful_data
        assert w.ports[0].port == port
        assert w.user == 999 and "api" in w.allow_from
        assert len(w.volumes) == 1 and w.volumes[0].name == f"{w.name}-data"
        assert all(sv.secret == f"{w.name}-env" for sv in w.secret_env.values())


def test_postgres_settings_become_flags():
    [w] = database_workloads("db", DatabaseSpec(settings={"max_connections": "200", "shared_buffers": "256MB"}), CREDS)
    assert w.command == ("postgres", "-c", "max_connections=200", "-c", "shared_buffers=256MB")
    [plain] = database_workloads("db", DatabaseSpec(), CREDS)
    # With our own entrypoint (passwords follow the stack), the image's CMD is given explicitly.
    assert plain.command == ("postgres",)
    assert plain.entrypoint == ("bash", "/berth/primary-entrypoint.sh")


def test_cache_workload_and_command():
    [w] = cache_workloads("cache", CacheSpec(), "pw", "adminpw", allow_from=["api"])
    assert w.image == "redis:7.2" and w.ports[0].port == 6379 and w.volumes[0].path == "/data"
    assert "--maxmemory" not in redis_command(CacheSpec())[-1]
    assert "--maxmemory 1gb" in redis_command(CacheSpec(maxmemory="1gb"))[-1]


CONNS = {
    "db": Connection("postgres", "pg-url", "pg-replica-url"),
    "docs": Connection("mongodb", "mongo-url"),
    "cache": Connection("redis", "redis-url"),
}


@pytest.mark.parametrize(
    "uses,expected",
    [
        (["db"], {"DATABASE_URL": "pg-url", "DATABASE_REPLICA_URL": "pg-replica-url"}),
        (["docs", "cache"], {"MONGODB_URI": "mongo-url", "REDIS_URL": "redis-url"}),
        ({"cache": "BROKER_URL"}, {"BROKER_URL": "redis-url"}),
        ({"db": "PG"}, {"PG": "pg-url", "PG_REPLICA": "pg-replica-url"}),
    ],
)
def test_connection_env(uses, expected):
    spec = ServiceSpec(image=APP, uses=uses)
    assert {k: v[1] for k, v in connection_env(spec, CONNS).items()} == expected


def test_replica_var():
    assert replica_var("DATABASE_URL") == "DATABASE_REPLICA_URL"
    assert replica_var("PG") == "PG_REPLICA"


@pytest.mark.parametrize(
    "spec,has_port,health_path,replicas",
    [
        (ServiceSpec(image=APP, port=8000), True, "/health", 1),
        (ServiceSpec(image=APP, port=8000, health={"path": "/livez"}), True, "/livez", 1),
        (ServiceSpec(image=APP, port=80, autoscale={"min": 3, "max": 6}), True, "/health", 3),
        (ServiceSpec(image=APP, replicas=4), False, None, 4),
        (ServiceSpec(image=APP, health={"command": ["true"]}), False, None, 1),
    ],
)
def test_service_workload(spec, has_port, health_path, replicas):
    w = service_workload("svc", spec, {}, {})
    assert bool(w.ports) == has_port
    assert (w.health.path if w.health else None) == health_path
    assert w.replicas == replicas
    assert w.role == Role.APP and w.kind == Kind.SERVICE


def test_service_workload_run_as_root_clears_user():
    assert service_workload("s", ServiceSpec(image=APP, run_as_root=True), {}, {}).user is None
    assert service_workload("s", ServiceSpec(image=APP), {}, {}).user == 10001


@pytest.mark.parametrize(
    "spec,expect_kinds",
    [
        (ServiceSpec(image=APP, port=80), ["Secret", "Deployment", "Service", "NetworkPolicy"]),
        (ServiceSpec(image=APP, replicas=2), ["Secret", "Deployment", "PodDisruptionBudget", "NetworkPolicy"]),
        (
            ServiceSpec(image=APP, port=80, autoscale={"min": 2, "max": 5}),
            ["Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"],
        ),
    ],
)
def test_service_manifests(spec, expect_kinds):
    spec = spec.model_copy(update={"secret_env": {"TOKEN": GeneratedSecret()}})
    w = service_workload("svc", spec, {}, {"TOKEN": "v"})
    assert [m["kind"] for m in manifests(KCTX, w, {})] == expect_kinds


@pytest.mark.parametrize(
    "builder,kinds",
    [
        (lambda: database_workloads("db", DatabaseSpec(), CREDS)[0], ["Secret", "ConfigMap", "StatefulSet", "Service", "NetworkPolicy"]),
        (lambda: cache_workloads("c", CacheSpec(), "pw", "adminpw")[0], ["Secret", "StatefulSet", "Service", "NetworkPolicy"]),
        (
            lambda: database_workloads("db", DatabaseSpec(replica=True), Credentials("pw", "apw", "rpw"))[0],
            ["Secret", "ConfigMap", "StatefulSet", "Service", "NetworkPolicy"],
        ),
    ],
)
def test_store_manifests(builder, kinds):
    assert [m["kind"] for m in manifests(KCTX, builder(), {})] == kinds


def test_container_args_for_a_database():
    w = database_workloads("db", DatabaseSpec(), CREDS)[0]
    a = container_args(DCTX, w)
    assert a["name"] == "p-db" and a["hostname"] == "db"
    assert a["volumes"] == [{"volume_name": "p-db-data", "container_path": "/var/lib/postgresql/data", "read_only": False},
                            {"volume_name": "p-db-files-berth", "container_path": "/berth", "read_only": True},
                            {"volume_name": "p-db-files-docker-entrypoint-initdb-d",
                             "container_path": "/docker-entrypoint-initdb.d", "read_only": True}]
    assert a["remove_volumes"] is False and a["rm"] is False and a["must_run"] is True
    assert a["user"] == "999:999"
    assert a["networks_advanced"] == [{"name": "p-internal", "aliases": ["db"]}]
    assert {"label": "berth.secret-envs", "value": "BERTH_OWNER_PASSWORD,POSTGRES_PASSWORD"} in a["labels"]


def test_container_args_for_replicas_are_numbered():
    w = service_workload("worker", ServiceSpec(image=APP, replicas=3), {}, {})
    assert [container_args(DCTX, w, i)["name"] for i in range(3)] == ["p-worker-1", "p-worker-2", "p-worker-3"]
