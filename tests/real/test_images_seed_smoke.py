"""Smoke tests of the images the seed systems need (tests/images/): MongoDB (a FerretDB stand-in), its
backup image, RabbitMQ, Neo4j (its own server from Maven Central in a stand-in of the official image),
and the test app's MongoDB / AMQP parts, on Podman's Docker-compatible API.

The database, broker, graph and backup containers run as a stack runs them: their settings come from
Berth's own components (``database_workloads``, ``broker_workloads``, ``graph_workloads``,
``backup_workloads``) mapped by the Docker
target's ``container_args`` (read-only root where declared, tmpfs /tmp, the component's uid, all
capabilities dropped, no-new-privileges, memory/CPU limits, the component's health check and named
volumes), with only the image set to the local one. The test app runs read-only as uid 10001.

Prerequisites as for test_images_smoke.py (CI's .ci/run): Podman's API in DOCKER_HOST and
`bash tests/images/build.sh` (or `build.sh mongo backup-mongo rabbitmq neo4j testapp`). Never skips.
Podman runs no health checks by itself here: they are driven with `podman healthcheck run NAME`.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

import docker
import pytest

from berth.components.backup import backup_workloads
from berth.components.broker import broker_workloads
from berth.components.database import Credentials, database_workloads
from berth.components.graph import PASSWORD_MARK, graph_workloads
from berth.components.ir import Workload
from berth.components.spec import BackupSpec, BrokerSpec, DatabaseSpec, GraphDatabaseSpec, Resources
from berth.components.targets.docker import DockerContext, container_args, files_init_args
from tests.real.test_images_smoke import Env, exec_ok, host_port, http, http_json, wait_for

pytestmark = pytest.mark.real_docker

IMAGES = {
    "postgres": "localhost/berth-postgres:15",
    "mongo": "localhost/berth-mongo:7",
    "backup_mongo": "localhost/berth-backup-mongo:1",
    "rabbitmq": "localhost/berth-rabbitmq:3",
    "neo4j": "localhost/berth-neo4j:4",
    "testapp1": "localhost/berth-testapp:1",
    "testapp2": "localhost/berth-testapp:2",
}
LABEL = {"berth.test": "images-seed-smoke"}
DB, DB_NAME, DB_USER = "shop-db", "shop", "shop"
MONGO_PASSWORD = "mongo-secret-1"  # the services' user (readWrite on shop)
MONGO_CREDENTIALS = Credentials(MONGO_PASSWORD, "root-secret-1", monitor="monitor-secret-1", backup="backup-secret-1",
                                restore="restore-secret-1")
BROKER, BROKER_PASSWORD = "jobs", "amqp-secret-1"
APP_TMPFS = {"/tmp": "rw,noexec,nosuid,size=64m,mode=1777"}
APP_SECURITY = dict(user="10001:10001", read_only=True, tmpfs=APP_TMPFS, cap_drop=["ALL"],
                    security_opt=["no-new-privileges:true"])
SECONDS = 1_000_000_000


# --------------------------------------------------------------------------- running like a stack
class SeedEnv(Env):
    """test_images_smoke's Env + named volumes (removed at the end) and containers run from workloads."""

    def __init__(self, client):
        super().__init__(client)
        self.volumes = []

    def volume(self, name: str) -> str:
        full = f"seed-smoke-{self.suffix}-{name}"
        if full not in [v.name for v in self.volumes]:
            self.volumes.append(self.client.volumes.create(full, labels=LABEL))
        return full

    def write_files(self, ctx: DockerContext, w: Workload) -> None:
        """Run the one-shot container that writes ``w``'s generated files into their volumes, as the
        Docker target declares it (files_init_args), and wait for it to succeed."""
        args = files_init_args(ctx, w)
        c = self.client.containers.create(
            w.image, name=self.name(f"{w.name}-files"), entrypoint=args["entrypoints"], command=args["command"],
            environment=list(args["envs"]), user=args["user"], network_mode="none", read_only=args["read_only"],
            cap_drop=args["capabilities"]["drops"], cap_add=args["capabilities"].get("adds"),
            security_opt=args["security_opts"], labels=LABEL,
            volumes={self.volume(v["volume_name"]): {"bind": v["container_path"], "mode": "rw"} for v in args["volumes"]})
        self.containers.append(c)
        if args.get("uploads"):  # secret files, as the provider uploads them when it creates the writer
            assert c.put_archive("/", uploads_tar(args["uploads"])), "upload failed"
        c.start()
        result = c.wait(timeout=120)
        assert result["StatusCode"] == 0, c.logs().decode(errors="replace")

    def run_workload(self, w: Workload, publish: tuple[int, ...] = (), start: bool = True):
        """Create (and start) the container Berth's Docker target declares for ``w``, after its
        generated files were written into their volumes."""
        ctx = DockerContext("seedsmoke", self.network.name, self.network.name, engine="podman")
        if w.files:
            self.write_files(ctx, w)
        args = container_args(ctx, w)
        caps = args["capabilities"]
        kw = dict(
            hostname=args["hostname"],
            environment=list(args["envs"]),  # secrets were given as plain strings: no Outputs here
            read_only=args["read_only"],
            tmpfs=args.get("tmpfs"),
            user=args.get("user"),
            cap_drop=caps["drops"],
            cap_add=caps.get("adds"),
            security_opt=args["security_opts"],
            labels=LABEL,
            networking_config={self.network.name: self.client.api.create_endpoint_config(aliases=[w.name])},
            volumes={self.volume(v["volume_name"]): {"bind": v["container_path"],
                                                     "mode": "ro" if v.get("read_only") else "rw"}
                     for v in args.get("volumes", [])},
        )
        if args.get("memory"):
            kw.update(mem_limit=f"{args['memory']}m", memswap_limit=f"{args['memory_swap']}m")
        if args.get("cpus"):
            kw["nano_cpus"] = int(float(args["cpus"]) * SECONDS)
        if args.get("entrypoints"):
            kw["entrypoint"] = args["entrypoints"]
        if args.get("command"):
            kw["command"] = args["command"]
        if w.health and w.health.command:
            kw["healthcheck"] = {"test": list(w.health.command), "interval": w.health.interval * SECONDS,
                                 "timeout": w.health.timeout * SECONDS, "retries": w.health.retries,
                                 "start_period": w.health.start_period * SECONDS}
        if publish:
            kw["ports"] = {f"{p}/tcp": ("127.0.0.1",) for p in publish}
        files = {"/": uploads_tar(args["uploads"])} if args.get("uploads") else None
        c = self.client.containers.create(w.image, name=self.name(w.name), network=self.network.name, **kw)
        self.containers.append(c)
        for path, archive in (files or {}).items():
            assert c.put_archive(path, archive), f"upload to {path} failed"
        if start:
            c.start()
        return c

    def replace_workload(self, w: Workload, **kw):
        """What a redeploy does to a workload: its container (and writer) replaced, its volumes kept."""
        for c in [x for x in self.containers if x.name in (self.name(w.name), self.name(f"{w.name}-files"))]:
            c.remove(force=True)
            self.containers.remove(c)
        return self.run_workload(w, **kw)

    def close(self):
        super().close()
        for v in self.volumes:
            try:
                v.remove(force=True)
            except Exception:  # noqa: BLE001
                pass


def uploads_tar(uploads: list[dict]) -> bytes:
    """The provider's uploads as one archive extracted at "/" (directories created, root-owned)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({os.path.dirname(u["file"]).lstrip("/") for u in uploads})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
        for u in uploads:
            data = u["content"].encode()
            info = tarfile.TarInfo(u["file"].lstrip("/"))
            info.size, info.mode, info.mtime = len(data), int(u["permissions"], 8), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def podman_healthcheck(container) -> bool:
    """One run of the container's health check (Podman has no timers here); True once healthy."""
    podman = shutil.which("podman")
    assert podman, "podman CLI not on PATH"
    container.reload()
    if container.status != "running":
        raise AssertionError(f"{container.name} is {container.status}: {container.logs().decode()[-2000:]}")
    subprocess.run([podman, "healthcheck", "run", container.name], capture_output=True, timeout=60)
    container.reload()
    return container.attrs["State"]["Health"]["Status"] == "healthy"


def wait_healthy(container, timeout: float = 120):
    wait_for(f"{container.name} healthy (its own health check)", lambda: podman_healthcheck(container),
             timeout=timeout, interval=2)


def mongo_spec(**kw) -> DatabaseSpec:
    return DatabaseSpec(engine="mongodb", database=DB_NAME, user=DB_USER, image=IMAGES["mongo"], **kw)


def mongo_url(host: str = DB, password: str = MONGO_PASSWORD, user: str = DB_USER) -> str:
    """The shape of the Database component's connection_url for MongoDB."""
    return f"mongodb://{user}:{password}@{host}:27017/{DB_NAME}?authSource=admin"


def amqp_url(password: str = BROKER_PASSWORD) -> str:
    """The shape of the Broker component's amqp_url."""
    return f"amqp://{BROKER}:{password}@{BROKER}:5672/{BROKER}"


def pymongo_in(container, script: str) -> dict:
    """Run a Python snippet with pymongo inside the mongo image (over the network, not loopback); the
    snippet sets `out`, printed as JSON."""
    code = "import json, pymongo, pymongo.errors\nout = {}\n" + script + "\nprint(json.dumps(out, default=str))\n"
    return json.loads(exec_ok(container, ["python3", "-c", code]).strip().splitlines()[-1])


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client():
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("DOCKER_HOST is not set: run bash .ci/podman.sh install && eval \"$(bash .ci/podman.sh start)\" "
                    "&& bash tests/images/build.sh (CI's .ci/run does this).")
    c = docker.from_env(timeout=300)
    try:
        c.ping()
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer ({e}); run: bash .ci/podman.sh start")
    missing = []
    for ref in IMAGES.values():
        try:
            c.images.get(ref)
        except Exception:  # noqa: BLE001
            missing.append(ref)
    if missing:
        pytest.fail(f"images missing: {missing}; run: bash tests/images/build.sh mongo backup-mongo rabbitmq neo4j testapp")
    yield c
    c.close()


@pytest.fixture(scope="module")
def env(client):
    e = SeedEnv(client)
    yield e
    e.close()


@pytest.fixture(scope="module")
def mongo(env):
    w = database_workloads(DB, mongo_spec(), MONGO_CREDENTIALS)[0]
    c = env.run_workload(w)
    wait_healthy(c)
    return c


@pytest.fixture(scope="module")
def broker(env):
    w = broker_workloads(BROKER, BrokerSpec(image=IMAGES["rabbitmq"]), BROKER_PASSWORD)[0]
    c = env.run_workload(w, publish=(15672,))
    wait_healthy(c, timeout=180)
    return c


# --------------------------------------------------------------------------- MongoDB (FerretDB)
def test_mongo_runs_as_the_database_component_with_checked_credentials(env, client, mongo):
    mongo.reload()
    host_config = mongo.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True and "/tmp" in (host_config.get("Tmpfs") or {}), host_config
    assert exec_ok(mongo, ["id", "-u"]).strip() == "999"
    assert client.images.get(IMAGES["mongo"]).labels.get("berth.standin") == "mongodb"
    assert exec_ok(mongo, ["mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"]).strip() == "1"

    out = pymongo_in(mongo, f"""
c = pymongo.MongoClient({mongo_url()!r}, serverSelectionTimeoutMS=10000)
db = c.get_default_database()
ins = db.smoke.insert_one({{"value": "hello-ferret", "n": 1}})
out["found"] = db.smoke.find_one({{"_id": ins.inserted_id}})["value"]
out["dbs"] = c.list_database_names()
def code_of(url, op):
    try:
        op(pymongo.MongoClient(url, serverSelectionTimeoutMS=10000))
        return "accepted"
    except pymongo.errors.OperationFailure as e:
        return e.code
out["wrong_password"] = code_of({mongo_url(password="wrong")!r}, lambda c: c.shop.smoke.find_one())
out["anonymous_find"] = code_of("mongodb://{DB}:27017/", lambda c: c.shop.smoke.find_one())
out["anonymous_ping"] = code_of("mongodb://{DB}:27017/", lambda c: c.admin.command("ping"))
""")
    assert out["found"] == "hello-ferret" and DB_NAME in out["dbs"], out
    # 18 AuthenticationFailed, 13 Unauthorized; ping needs no login, as on MongoDB (the health check).
    assert out["wrong_password"] == 18 and out["anonymous_find"] == 13 and out["anonymous_ping"] == "accepted", out

    # A restart keeps the data and the users, which Berth sets again (mongo-users.js).
    mongo.restart(timeout=30)
    wait_healthy(mongo)
    out = pymongo_in(mongo, f"""
c = pymongo.MongoClient({mongo_url()!r}, serverSelectionTimeoutMS=10000)
out["n"] = c.shop.smoke.count_documents({{"value": "hello-ferret"}})
""")
    assert out["n"] == 1, out
    assert mongo.logs().decode().count("berth: users set from the stack's secrets: root, shop, berth_monitor, "
                                       "berth_backup, berth_restore") == 2


def test_mongo_users_berth_makes_and_a_redeploy_with_new_passwords(env, mongo):
    """The users Berth makes, each able to log in with its own password. FerretDB has no roles
    (createUser takes only `roles: []`): what each user may do cannot be enforced by this stand-in;
    the roles Berth asks for are listed here and in the database's log. A redeploy over the retained
    volume (new container, new passwords) works with the new ones only."""
    users = pymongo_in(mongo, f"""
c = pymongo.MongoClient({mongo_url(user="root", password="root-secret-1")!r}, serverSelectionTimeoutMS=10000)
out["users"] = sorted(u["user"] for u in c.admin.command("usersInfo")["users"])
""")["users"]
    assert users == ["berth_backup", "berth_monitor", "berth_restore", "root", "shop"], users
    logs = mongo.logs().decode()
    for line in ("root would have root@admin", "shop would have readWrite@shop",
                 "berth_monitor would have clusterMonitor@admin, read@local", "berth_backup would have backup@admin",
                 "berth_restore would have restore@admin"):
        assert f"stand-in: FerretDB has no roles: {line}" in logs, line
    print("[mongo] users Berth makes (roles printed by the stand-in, not enforced by FerretDB):\n" +
          "\n".join(x for x in logs.splitlines() if "FerretDB has no roles" in x)[-1200:])

    db = f"{DB}-again"
    first = env.run_workload(database_workloads(db, mongo_spec(), MONGO_CREDENTIALS)[0])
    wait_healthy(first)
    pymongo_in(first, f"pymongo.MongoClient({mongo_url(db)!r}).shop.kept.insert_one({{'n': 1}})")
    again = Credentials("mongo-secret-2", "root-secret-2", monitor="monitor-secret-2", backup="backup-secret-2",
                        restore="restore-secret-2")
    new = env.replace_workload(database_workloads(db, mongo_spec(), again)[0])
    wait_healthy(new)
    out = pymongo_in(new, f"""
def login(url):
    try:
        return pymongo.MongoClient(url, serverSelectionTimeoutMS=10000).shop.kept.count_documents({{}})
    except pymongo.errors.OperationFailure as e:
        return e.code
out["new"] = login({mongo_url(db, "mongo-secret-2")!r})
out["old"] = login({mongo_url(db, MONGO_PASSWORD)!r})
out["backup"] = login({mongo_url(db, "backup-secret-2", "berth_backup")!r})
""")
    assert out == {"new": 1, "old": 18, "backup": 1}, out  # the row kept; 18: AuthenticationFailed


def test_mongo_entrypoint_refuses_what_it_cannot_honour(env):
    code, out = env.run_once(IMAGES["mongo"], "mongo-no-password", None, timeout=60,
                             environment={"MONGO_INITDB_ROOT_USERNAME": "root"})
    assert code == 1 and "both must be specified" in out, out
    code, out = env.run_once(IMAGES["mongo"], "mongo-bad-option", ["mongod", "--config", "/etc/mongod.conf"],
                             timeout=60)
    assert code == 2 and "--config is not supported" in out, out
    code, out = env.run_once(IMAGES["mongo"], "mongosh-unsupported", ["mongosh", "--eval", "db.items.find()"],
                             timeout=60)
    assert code == 2 and "unsupported --eval" in out, out


def test_backup_mongo_dumps_and_restores_into_a_fresh_database(env, mongo):
    """Berth's backup and restore scripts (renderers/backup.py) with mongodump/mongorestore against the
    FerretDB image: the scheduler container as the BackupJob component declares it on Docker."""
    pymongo_in(mongo, f"""
db = pymongo.MongoClient({mongo_url()!r}, serverSelectionTimeoutMS=10000).get_default_database()
db.orders.drop()
db.orders.insert_many([{{"n": i, "item": "sku-%d" % i}} for i in range(50)])
db.orders.create_index([("n", 1)], unique=True)
""")
    spec = BackupSpec(tiers=[{"name": "daily", "schedule": "0 3 * * *", "keep": 3}])
    scheduler = backup_workloads(DB, mongo_spec(), spec, MONGO_CREDENTIALS, "docker", image=IMAGES["backup_mongo"])[0]
    assert scheduler.env["DB_USER"] == "berth_backup"
    # supercronic with its metrics on the container's loopback, which the health check reads.
    assert scheduler.command[0] == "supercronic" and scheduler.command[-1] == "/berth/crontab", scheduler.command
    bk = env.run_workload(scheduler)
    assert exec_ok(bk, ["id", "-u"]).strip() == "10001"
    exec_ok(bk, ["supercronic", "-test", "/berth/crontab"])
    out = exec_ok(bk, ["bash", "/berth/backup.sh", "daily", "3"])
    assert "backup written: /backups/daily/shop-" in out and ".archive.gz" in out, out
    assert "done dumping `shop.orders` (50 documents)" in bk.exec_run(
        ["bash", "/berth/backup.sh", "daily", "3"])[1].decode(), "second dump"
    code, out = bk.exec_run(["bash", "/berth/backup.sh", "daily", "3"], environment={"DB_PASSWORD": "wrong"})
    assert code != 0 and b"Authentication failed" in out, out

    # A fresh database (another stack's passwords) gets the newest dump, indexes included, through the
    # restore job's login (berth_restore).
    fresh = env.run_workload(database_workloads(f"{DB}-fresh", mongo_spec(), Credentials(
        "other-secret", "other-root", backup="other-backup", restore="other-restore"))[0])
    restore_as = {"DB_HOST": f"{DB}-fresh", "DB_USER": "berth_restore", "DB_PASSWORD": "other-restore"}
    wait_healthy(fresh)
    # Under load Podman's container DNS (aardvark-dns) has timed out on a container started seconds
    # before ("lookup shop-db-fresh: i/o timeout"): wait until the name resolves from the backup container.
    wait_for(f"{DB}-fresh in DNS", lambda: bk.exec_run(["getent", "hosts", f"{DB}-fresh"])[0] == 0, timeout=30)
    out = exec_ok(bk, ["bash", "/berth/restore.sh", "latest"], environment=restore_as)
    assert "restore done" in out and "finished restoring `shop.orders` (50 documents, 0 failures)" in out, out
    out = pymongo_in(fresh, f"""
db = pymongo.MongoClient({mongo_url(f"{DB}-fresh", "other-secret")!r}, serverSelectionTimeoutMS=10000).shop
out["n"] = db.orders.count_documents({{}})
out["indexes"] = sorted((i["name"], bool(i.get("unique"))) for i in db.orders.list_indexes())
try:
    db.orders.insert_one({{"n": 7}})
    out["duplicate"] = "accepted"
except pymongo.errors.DuplicateKeyError:
    out["duplicate"] = "refused"
""")
    assert out == {"n": 50, "indexes": [["_id_", False], ["n_1", True]], "duplicate": "refused"}, out
    # Once per dump: the same restore again does nothing (a replaced restore job must not load an old
    # dump over newer data); removed from the list, it runs, and --drop replaces, it does not add.
    out = exec_ok(bk, ["bash", "/berth/restore.sh", "latest"], environment=restore_as)
    assert "already restored: latest" in out and "restore done" not in out, out
    exec_ok(bk, ["sh", "-c", "sed -i '/^latest$/d' /backups/.berth-restored"])
    exec_ok(bk, ["bash", "/berth/restore.sh", "latest"], environment=restore_as)
    out = pymongo_in(fresh, f"""
out["n"] = pymongo.MongoClient({mongo_url(f"{DB}-fresh", "other-secret")!r}).shop.orders.count_documents({{}})
""")
    assert out["n"] == 50, out


# --------------------------------------------------------------------------- PostgreSQL from before roles
def test_postgres_roles_over_a_database_from_before_them(env):
    """A database Berth made before its services had a role of their own: they logged in as the
    superuser (the image's POSTGRES_USER was the spec's user). Berth's start renames that superuser to
    postgres, makes the services' role, gives it what they made, and sets every password from the new
    stack; the old password no longer works. (A real deploy onto such a volume: a Berth upgrade.)"""
    spec = DatabaseSpec(user="shop", database="shop", image=IMAGES["postgres"])
    w = database_workloads("legacy-db", spec, Credentials("owner-new", "admin-new", backup="backup-new"))[0]
    data = next(v["volume_name"] for v in container_args(DockerContext("seedsmoke", "x", "x"), w)["volumes"]
                if v["container_path"] == "/var/lib/postgresql/data")
    old = env.create(IMAGES["postgres"], "legacy-db-before", user="999:999", read_only=True,
                     tmpfs={"/tmp": "rw,size=64m,mode=1777", "/var/run/postgresql": "rw,size=64m,mode=1777"},
                     environment={"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "owner-old", "POSTGRES_DB": "shop",
                                  "PGDATA": w.env["PGDATA"]},
                     volumes={env.volume(data): {"bind": "/var/lib/postgresql/data", "mode": "rw"}})
    wait_for("the database from before", lambda: old.exec_run(["pg_isready", "-q", "-h", "127.0.0.1"])[0] == 0
             and "ready to accept" in old.logs().decode().rsplit("init process complete", 1)[-1], timeout=120)
    exec_ok(old, ["psql", "-v", "ON_ERROR_STOP=1", "-U", "shop", "-d", "shop", "-c",
                  "CREATE TABLE items (id serial PRIMARY KEY, value text); INSERT INTO items (value) VALUES ('kept');"
                  "CREATE VIEW recent AS SELECT * FROM items; CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';"])
    old.stop(timeout=30)

    c = env.run_workload(w)
    wait_healthy(c)
    logs = c.logs().decode()
    assert "berth: the superuser shop is now postgres" in logs and "berth: shop now owns what the superuser owned" in logs

    c.reload()
    address = next(n["IPAddress"] for n in c.attrs["NetworkSettings"]["Networks"].values() if n.get("IPAddress"))

    def sql(query: str, user: str = "postgres", password: str = "", db: str = "shop") -> tuple[int, str]:
        # The socket trusts (and so does 127.0.0.1, as initdb wrote it in the image's first start); the
        # network, as the other containers reach it, asks for a password.
        host = ["-h", address] if password else []
        code, out = c.exec_run(["psql", "-X", "-At", *host, "-U", user, "-d", db, "-c", query],
                               environment={"PGPASSWORD": password} if password else {})
        return code, out.decode(errors="replace").strip()

    assert sql("SELECT rolname || ' ' || rolsuper || ' ' || rolcreaterole FROM pg_roles WHERE rolname IN "
               "('postgres', 'shop', 'berth_backup') ORDER BY 1")[1].split("\n") == [
        "berth_backup false false", "postgres true true", "shop false false"]
    assert sql("SELECT string_agg(c.relname || ':' || pg_get_userbyid(c.relowner), ' ' ORDER BY c.relname) FROM pg_class c "
               "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'S')")[1] == \
        "items:shop items_id_seq:shop recent:shop"
    assert sql("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'one'")[1] == "shop"
    # The services' role: its data, with the new password only; nothing beyond its database.
    assert sql("INSERT INTO items (value) VALUES ('new'); SELECT count(*) FROM items", "shop", "owner-new") == \
        (0, "INSERT 0 1\n2")
    code, out = sql("SELECT 1", "shop", "owner-old")
    assert code != 0 and "password authentication failed" in out, out
    for query, refused in (("CREATE ROLE intruder", "permission denied to create role"),
                           ("COPY (SELECT 1) TO PROGRAM 'id'", "pg_execute_server_program"),
                           ("SELECT rolpassword FROM pg_authid", "permission denied")):
        code, out = sql(query, "shop", "owner-new")
        assert code != 0 and refused in out, (query, out)
    code, out = sql("SELECT 1", "shop", "owner-new", db="postgres")
    assert code != 0 and 'permission denied for database "postgres"' in out, out
    # The superuser: only over the container's socket.
    code, out = sql("SELECT 1", "postgres", "admin-new")
    assert code != 0 and "pg_hba.conf rejects connection" in out, out


# --------------------------------------------------------------------------- RabbitMQ
def test_rabbitmq_runs_as_the_broker_component(env, broker):
    broker.reload()
    assert broker.attrs["HostConfig"]["ReadonlyRootfs"] is broker_workloads(BROKER, BrokerSpec(), "x")[0].read_only_root
    assert exec_ok(broker, ["id", "-u"]).strip() == "999"
    # The Erlang cookie lives in HOME = the data volume.
    assert exec_ok(broker, ["stat", "-c", "%u %a", "/var/lib/rabbitmq/.erlang.cookie"]).strip() == "999 400"
    # Its definitions (the password's hash): RabbitMQ's own, readable by it alone.
    assert exec_ok(broker, ["stat", "-c", "%u %a", "/berth/rabbitmq/definitions.json"]).strip() == "999 400"
    # The only user is the services': no tags (not an administrator, no management UI), allowed on its
    # virtual host only; no guest.
    wait_for("vhost jobs", lambda: BROKER in exec_ok(broker, ["rabbitmqctl", "list_vhosts", "-q"]), timeout=60)
    assert exec_ok(broker, ["rabbitmqctl", "list_users", "-q", "--no-table-headers"]).split() == [BROKER, "[]"]
    assert exec_ok(broker, ["rabbitmqctl", "list_user_permissions", BROKER, "-q", "--no-table-headers"]).split() == [
        BROKER, ".*", ".*", ".*"]
    base = f"http://127.0.0.1:{host_port(broker, '15672/tcp')}"
    # `rabbitmq-diagnostics ping` (the health check) answers once the node runs, before its listeners.
    wait_for("the management API", lambda: http(f"{base}/api/overview")[0] == 401, timeout=60)
    for user, password in ((BROKER, BROKER_PASSWORD), (BROKER, "wrong"), ("guest", "guest")):
        assert http(f"{base}/api/overview", headers={"Authorization": basic_auth(user, password)})[0] == 401, user
    plugins = exec_ok(broker, ["rabbitmq-plugins", "list", "-e", "-m"])
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins, plugins


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def http_json_auth(url: str, authorization: str):
    status, body = http(url, headers={"Authorization": authorization})
    return status, json.loads(body) if body.strip().startswith(("{", "[")) else body


def test_rabbitmq_redeploy_with_a_new_password_over_the_retained_volume(env):
    """The definitions are imported at every boot: a new container on the kept volume with a new
    password (a redeploy after `pulumi destroy` in prod) takes it, and the old one is refused."""
    w = broker_workloads("jobs-again", BrokerSpec(image=IMAGES["rabbitmq"]), "first-secret")[0]
    c = env.run_workload(w)
    wait_healthy(c, timeout=180)
    wait_for("vhost jobs-again", lambda: "jobs-again" in exec_ok(c, ["rabbitmqctl", "list_vhosts", "-q"]), timeout=60)
    c = env.replace_workload(broker_workloads("jobs-again", BrokerSpec(image=IMAGES["rabbitmq"]), "second-secret")[0])
    wait_healthy(c, timeout=180)
    wait_for("the user", lambda: "jobs_again" in exec_ok(c, ["rabbitmqctl", "list_users", "-q"]), timeout=60)
    assert c.exec_run(["rabbitmqctl", "authenticate_user", "jobs_again", "second-secret"])[0] == 0
    code, out = c.exec_run(["rabbitmqctl", "authenticate_user", "jobs_again", "first-secret"])
    assert code != 0 and b"invalid credentials" in out, out


def test_rabbitmq_also_runs_with_a_read_only_root(env):
    """Nothing outside /var/lib/rabbitmq and /tmp is written: the component could declare a read-only root."""
    w = broker_workloads("jobs-ro", BrokerSpec(image=IMAGES["rabbitmq"]), "ro-secret")[0]
    c = env.run_workload(dataclasses.replace(w, read_only_root=True))
    c.reload()
    assert c.attrs["HostConfig"]["ReadonlyRootfs"] is True
    wait_healthy(c, timeout=180)
    # Healthy (ping) comes before the rabbit app has booted: wait for it to serve the env's vhost.
    wait_for("vhost jobs-ro", lambda: "jobs-ro" in exec_ok(c, ["rabbitmqctl", "list_vhosts", "-q"]), timeout=60)
    exec_ok(c, ["rabbitmq-diagnostics", "-q", "check_port_connectivity"])


# --------------------------------------------------------------------------- Neo4j
def graph_spec() -> GraphDatabaseSpec:
    return GraphDatabaseSpec(image=IMAGES["neo4j"], heap="256m", page_cache="64m",
                             resources=Resources(cpu="250m", memory="768Mi", cpu_limit="1", memory_limit="1Gi"))


def cypher(container, password: str, statement: str, database: str = "neo4j"):
    """(status, answer) of one statement over Neo4j's HTTP API, as neo4j with ``password``."""
    url = f"http://127.0.0.1:{host_port(container, '7474/tcp')}/db/{database}/tx/commit"
    body = json.dumps({"statements": [{"statement": statement}]}).encode()
    return http_json_auth_post(url, body, basic_auth("neo4j", password))


def http_json_auth_post(url: str, body: bytes, authorization: str):
    status, text = http(url, data=body, headers={"Content-Type": "application/json", "Authorization": authorization})
    return status, json.loads(text) if text.strip().startswith("{") else text


def run_graph(env, name: str, password: str, replace: bool = False):
    """The graph component's container, until Neo4j answers as neo4j with ``password``."""
    w = graph_workloads(name, graph_spec(), password)[0]
    c = (env.replace_workload if replace else env.run_workload)(w, publish=(7474,))
    wait_for(f"{name} serving neo4j's login", lambda: cypher(c, password, "RETURN 1")[0] == 200, timeout=240,
             interval=2)
    return c


def test_neo4j_runs_as_the_graph_component_with_a_read_only_root(env):
    c = run_graph(env, "graph", "graph-secret-1")
    c.reload()
    assert c.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert exec_ok(c, ["id", "-u"]).strip() == "7474"
    status, out = cypher(c, "graph-secret-1", "CREATE (n:Idea {name: 'berth'}) RETURN n.name")
    assert status == 200 and out["errors"] == [] and out["results"][0]["data"][0]["row"] == ["berth"], out
    assert cypher(c, "wrong-secret", "RETURN 1")[0] == 401
    # Writable: the data volume, the component's tmpfs paths and the copy of the image's conf
    # directory that the entrypoint rewrites; nothing else.
    probe = ("for d in / /var/lib/neo4j /var/lib/neo4j/lib /var/lib/neo4j/run /data /logs /tmp /run "
             "/var/lib/neo4j/conf; do touch $d/.berth-probe 2>/dev/null && echo $d; done")
    assert exec_ok(c, ["sh", "-c", probe]).split() == ["/data", "/logs", "/tmp", "/run", "/var/lib/neo4j/conf"]
    conf = exec_ok(c, ["cat", "/var/lib/neo4j/conf/neo4j.conf"])
    for line in ("dbms.memory.heap.max_size=256m", "dbms.memory.pagecache.size=64m",
                 "dbms.security.auth_enabled=true", "dbms.default_listen_address=0.0.0.0"):
        assert line in conf.splitlines(), (line, conf)
    # The image's health check is the component's: HTTP on / without credentials.
    assert http(f"http://127.0.0.1:{host_port(c, '7474/tcp')}/")[0] == 200


def test_neo4j_redeploy_with_a_new_password_over_the_retained_volume(env):
    """NEO4J_AUTH sets the password only before the first start: over a kept volume (a redeploy
    after `pulumi destroy` in prod), Berth's start script makes the new password neo4j's, the data
    stays, and the old password is refused. A plain restart does not do it again."""
    c = run_graph(env, "graph-again", "first-secret-1")
    assert cypher(c, "first-secret-1", "CREATE (:Thesis {title: 'kept'})")[0] == 200
    c = run_graph(env, "graph-again", "second-secret-2", replace=True)
    status, out = cypher(c, "second-secret-2", "MATCH (t:Thesis) RETURN t.title")
    assert status == 200 and out["results"][0]["data"][0]["row"] == ["kept"], out
    assert cypher(c, "first-secret-1", "RETURN 1")[0] == 401
    assert "setting neo4j's password over the data kept from before" in c.logs().decode(errors="replace")
    mark = exec_ok(c, ["cat", PASSWORD_MARK]).strip()
    assert len(mark) == 64 and "second-secret-2" not in mark
    c.restart(timeout=60)
    wait_for("graph-again after its restart", lambda: cypher(c, "second-secret-2", "RETURN 1")[0] == 200,
             timeout=240, interval=2)
    assert c.logs().decode(errors="replace").count("setting neo4j's password") == 1


# --------------------------------------------------------------------------- the test app
def test_testapp_mongo_items_and_messages_through_a_consumer(env, mongo, broker):
    app_env = {"MONGODB_URI": mongo_url(), "AMQP_URL": amqp_url(), "AMQP_QUEUE": "smoke-orders"}
    web = env.create(IMAGES["testapp2"], "web", environment=app_env, ports={"8000/tcp": ("127.0.0.1",)},
                     **APP_SECURITY)
    consumer = env.create(
        IMAGES["testapp1"], "consumer", environment=app_env, command=["python3", "-m", "app.consumer"],
        hostname="consumer", healthcheck={"test": ["CMD", "healthcheck", "http://127.0.0.1:8000/ready"],
                                          "interval": 5 * SECONDS, "retries": 3},
        **APP_SECURITY)
    base = f"http://127.0.0.1:{host_port(web, '8000/tcp')}"
    wait_for("web /ready", lambda: http(f"{base}/ready")[0] == 200, timeout=60)
    assert http_json(f"{base}/ready")[1]["checks"] == {"mongodb": "ok", "amqp": "ok"}
    wait_healthy(consumer, timeout=60)

    status, item = http_json(f"{base}/api/mongo/items", {"value": "hello-mongo"})
    assert status == 200 and item["value"] == "hello-mongo" and len(item["id"]) == 24, item
    status, got = http_json(f"{base}/api/mongo/items/{item['id']}")
    assert status == 200 and got["value"] == "hello-mongo", got
    assert http_json(f"{base}/api/mongo/items/{'0' * 24}")[0] == 404
    out = pymongo_in(mongo, f"""
from bson import ObjectId
out["value"] = pymongo.MongoClient({mongo_url()!r}).shop.items.find_one({{"_id": ObjectId({item['id']!r})}})["value"]
""")
    assert out["value"] == "hello-mongo"

    status, sent = http_json(f"{base}/api/messages", {"body": {"order": 1}})
    assert status == 200 and sent["queue"] == "smoke-orders", sent
    got = wait_for("the consumer to record the message",
                   lambda: (lambda r: r[1] if r[0] == 200 else None)(http_json(f"{base}/api/messages/{sent['id']}")),
                   timeout=30)
    assert got["body"] == {"order": 1} and got["consumed_by"] == "consumer" and got["consumer_version"] == "1", got

    # Durable queue, persistent message: published while no consumer runs, it survives a broker restart.
    consumer.stop(timeout=10)
    status, queued = http_json(f"{base}/api/messages", {"body": "while-away"})
    assert status == 200, queued
    broker.restart(timeout=60)
    wait_healthy(broker, timeout=180)
    assert http_json(f"{base}/api/messages/{queued['id']}")[0] == 404
    consumer.start()
    got = wait_for("the queued message after the restarts",
                   lambda: (lambda r: r[1] if r[0] == 200 else None)(http_json(f"{base}/api/messages/{queued['id']}")),
                   timeout=60)
    assert got["body"] == "while-away", got
    # The web app's publisher reconnects by itself.
    wait_for("web /ready after the broker restart", lambda: http(f"{base}/ready")[0] == 200, timeout=60)
    assert http_json(f"{base}/api/messages", {"body": "after"})[0] == 200
    for c in (web, consumer):
        c.reload()
        assert c.status == "running", (c.name, c.logs()[-2000:])


def test_testapp_ready_checks_only_configured_backends_and_reports_bad_credentials(env, mongo):
    web = env.create(IMAGES["testapp2"], "web-badpw", environment={"MONGODB_URI": mongo_url(password="wrong")},
                     ports={"8000/tcp": ("127.0.0.1",)}, **APP_SECURITY)
    base = f"http://127.0.0.1:{host_port(web, '8000/tcp')}"
    wait_for("web-badpw /health", lambda: http(f"{base}/health")[0] == 200, timeout=60)
    status, body = http_json(f"{base}/ready")
    assert status == 503 and list(body["checks"]) == ["mongodb"], body
    assert "Authentication failed" in body["checks"]["mongodb"], body
    assert http_json(f"{base}/api/mongo/items", {"value": "x"})[0] == 503
    assert http(f"{base}/mcp/health")[0] == 200  # a stack's own health path
