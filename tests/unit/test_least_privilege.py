"""Who logs in to each data store as whom (README "Who logs in as whom"): a role per kind of client,
on both targets, each with only what it needs; generated passwords, one per role, as secrets.

What the roles may do is proven against the real servers in tests/real (test_docker_dev.py,
test_k8s_prod.py, test_images_seed_smoke.py); here: who gets which login, and the generated scripts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from berth.components.broker import DEFINITIONS, password_hash, render_definitions
from berth.components.database import (
    ADMIN_USER,
    BACKUP_USER,
    MONITOR_USER,
    MONGO_USERS_JS,
    Credentials,
    database_workloads,
    mongo_users,
    render_mongo_users,
)
from berth.components.spec import ConfigError, DatabaseSpec, parse_spec
from berth.record import placeholders_in

from .support import CONTAINER, K8S_CONFIGMAP, K8S_SECRET, STATEFULSET, config, docker_files, env_map, named, rec


def placeholder(name: str) -> str:
    return f"<<berth:password:{name}>>"


FULL = dict(
    databases={"db": {"user": "shop", "database": "shop"}, "docs": {"engine": "mongodb", "user": "docs_app"}},
    services={"api": {"image": "acme/api:1.0.0", "port": 8000, "uses": ["db", "docs"]}},
    backups={"db": {"restore_from": "latest"}, "docs": {"image": "acme/mongo-backup:1"}},
    monitoring={"enabled": True, "mongodb_exporter_image": "acme/mongodb-exporter:1"},
)


# ---------------------------------------------------------------- PostgreSQL


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_each_postgres_client_logs_in_as_its_own_role(target):
    r = rec(target, **FULL)
    if target == "docker":
        c = named(r, CONTAINER)
        api, exporter, backup, restore = (env_map(c[n]) for n in ("api", "db-exporter", "db-backup", "db-restore"))
        db = env_map(c["db"])
        api_url, exporter_url = api["DATABASE_URL"], exporter["DATA_SOURCE_NAME"]
        # The restore keeps its secrets out of its environment (a file it deletes: test_secure_defaults).
        restore_user = restore["DB_USER"]
        backup_user, backup_pw = backup["DB_USER"], backup["DB_PASSWORD"]
    else:
        secrets = {s.name: s.inputs["stringData"] for s in r.by_type(K8S_SECRET)}
        db = {**secrets["db-env"], **_k8s_env(named(r, STATEFULSET)["db-statefulset"])}
        api_url, exporter_url = secrets["api-env"]["DATABASE_URL"], secrets["db-exporter-env"]["DATA_SOURCE_NAME"]
        backup_user = _k8s_env(r.find("kubernetes:batch/v1:CronJob", "db-backup-daily-cronjob"))["DB_USER"]
        backup_pw = secrets["db-backup-daily-env"]["DB_PASSWORD"]
        restore_user = _k8s_env(r.find("kubernetes:batch/v1:Job", "db-restore-job"))["DB_USER"]
        assert secrets["db-restore-env"]["DB_PASSWORD"] == placeholder("db-password")
    # The services: the owner role, with the password the database's only password had before.
    assert api_url == f"postgresql://shop:{placeholder('db-password')}@db:5432/shop"
    # The exporter: berth_monitor (pg_monitor), a password of its own.
    assert exporter_url == f"postgresql://{MONITOR_USER}:{placeholder('db-monitor-password')}@db:5432/shop?sslmode=disable"
    # The dumps: berth_backup; the restore: the owner (pg_restore --clean drops what it recreates).
    assert (backup_user, backup_pw) == (BACKUP_USER, placeholder("db-backup-password"))
    assert restore_user == "shop"
    # The database gets every password, to set each role's at every start; the superuser is postgres.
    assert db["POSTGRES_USER"] == ADMIN_USER and db["BERTH_OWNER"] == "shop"
    assert {db[k] for k in ("POSTGRES_PASSWORD", "BERTH_OWNER_PASSWORD", "BERTH_MONITOR_PASSWORD",
                            "BERTH_BACKUP_PASSWORD")} == {placeholder(f"db-{p}") for p in
                                                           ("admin-password", "password", "monitor-password",
                                                            "backup-password")}


def _k8s_env(r) -> dict[str, str]:
    spec = r.inputs["spec"]
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    return {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"] if "value" in e}


def test_one_generated_password_per_role():
    r = rec("docker", **FULL)
    passwords = {p.name for p in r.by_type("random:index/randomPassword:RandomPassword")}
    assert {"db-password", "db-admin-password", "db-monitor-password", "db-backup-password"} <= passwords
    assert {"docs-password", "docs-admin-password", "docs-monitor-password", "docs-backup-password",
            "docs-restore-password"} <= passwords
    assert "db-restore-password" not in passwords  # PostgreSQL restores as the owner
    # Without monitoring or backups, no role (and no password) for them.
    bare = {p.name for p in rec("docker", databases={"db": {}}).by_type("random:index/randomPassword:RandomPassword")}
    assert bare == {"db-password", "db-admin-password"}


def test_postgres_roles_script_sets_every_role_from_the_environment():
    [w] = database_workloads("db", DatabaseSpec(user="shop"), Credentials("owner-pw", "admin-pw", monitor="m", backup="b"))
    files = {f.path: f for f in w.files}
    script = files["/berth/postgres-roles.sh"].content
    assert isinstance(script, str) and not any(p in script for p in ("owner-pw", "admin-pw"))
    # The owner: logs in, owns its database and schema, nothing more.
    assert "WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT ${3:-NOREPLICATION NOBYPASSRLS}" in script
    assert 'ALTER DATABASE $db OWNER TO $owner;' in script and "ALTER SCHEMA public OWNER TO $owner;" in script
    assert "REVOKE CONNECT, TEMPORARY ON DATABASE $other FROM PUBLIC;" in script
    assert "GRANT pg_monitor TO berth_monitor;" in script and "GRANT pg_read_all_data TO berth_backup;" in script
    # The superuser only over the socket; every statement fails loudly, and none is logged.
    assert 'sed -i "1i host all $POSTGRES_USER all reject"' in script
    assert "log_min_error_statement=panic" in script
    # Run at every start before the server (the entrypoint), and on the first start (initdb.d).
    assert "bash /berth/postgres-roles.sh start" in files["/berth/primary-entrypoint.sh"].content
    assert "postgres-roles.sh init" in files["/docker-entrypoint-initdb.d/20-berth-roles.sh"].content
    assert w.entrypoint == ("bash", "/berth/primary-entrypoint.sh")


@pytest.mark.parametrize(("section", "message"), [
    ({"db": {"user": "postgres"}}, "berth:databases.db.user is the name of a role Berth makes itself"),
    ({"postgres": {}}, "berth:databases.postgres.user defaults to the database's name, 'postgres'"),
    ({"db": {"user": "berth_backup"}}, "berth:databases.db.user is the name of a role Berth makes itself"),
    ({"db": {"user": "pg_app"}}, "reserved by PostgreSQL"),
    ({"db": {"engine": "mongodb", "user": "root"}}, "berth:databases.db.user is the name of a role"),
])
def test_a_user_named_like_one_of_berths_roles_is_refused(section, message):
    with pytest.raises(ConfigError) as e:
        parse_spec({k.split(":", 1)[1]: v for k, v in config("docker", databases=section).items()})
    assert message in str(e.value) and "set `user:`" in str(e.value)


def test_the_typed_api_refuses_it_too():
    from berth.record import record

    def program():
        import berth

        platform = berth.Platform("shop", target="docker")
        berth.Database("db", berth.DatabaseSpec(user="replicator"), platform)

    with pytest.raises(Exception, match="database 'db': spec.user is the name of a role Berth makes itself"):
        record("t", config={}, program=program)


# ---------------------------------------------------------------- MongoDB


def test_mongo_users_each_with_its_role_and_no_password_in_the_script():
    users = mongo_users("docs", DatabaseSpec(engine="mongodb", user="app", database="shop"),
                        Credentials("o", "a", monitor="m", backup="b", restore="r"))
    assert {u["user"]: [f"{r['role']}@{r['db']}" for r in u["roles"]] for u in users} == {
        "root": ["root@admin"], "app": ["readWrite@shop"], "berth_monitor": ["clusterMonitor@admin", "read@local"],
        "berth_backup": ["backup@admin"], "berth_restore": ["restore@admin"]}
    script = render_mongo_users(users)
    assert re.search(r"^const users = \[.*\];$", script, re.M) and "const retired = [];" in script
    assert '"passwordFrom": "BERTH_OWNER_PASSWORD"' in script
    # Without monitoring or backups, their users are dropped (they own nothing).
    bare = render_mongo_users(mongo_users("docs", DatabaseSpec(engine="mongodb"), Credentials("o", "a")))
    assert 'const retired = ["berth_backup", "berth_monitor", "berth_restore"];' in bare
    assert MONGO_USERS_JS.count("process.env[u.passwordFrom]") == 1


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_mongo_clients_log_in_as_their_own_users(target):
    r = rec(target, **FULL)
    if target == "docker":
        c = named(r, CONTAINER)
        exporter = env_map(c["docs-exporter"])["MONGODB_URI"]
        backup = env_map(c["docs-backup"])
        db = env_map(c["docs"])
        users = docker_files(r, "docs")["/berth/mongo-users.js"]
    else:
        secrets = {s.name: s.inputs["stringData"] for s in r.by_type(K8S_SECRET)}
        exporter = secrets["docs-exporter-env"]["MONGODB_URI"]
        backup = {**_k8s_env(r.find("kubernetes:batch/v1:CronJob", "docs-backup-daily-cronjob")),
                  **secrets["docs-backup-daily-env"]}
        db = secrets["docs-env"]
        users = r.find(K8S_CONFIGMAP, "docs-files").inputs["data"]["berth_mongo-users.js"]
    assert exporter == f"mongodb://berth_monitor:{placeholder('docs-monitor-password')}@docs:27017/admin?authSource=admin"
    assert backup["DB_USER"] == "berth_backup" and backup["DB_PASSWORD"] == placeholder("docs-backup-password")
    assert db["BERTH_RESTORE_PASSWORD"] == placeholder("docs-restore-password")
    assert not placeholders_in(users) and '"user": "docs_app"' in users


# ---------------------------------------------------------------- RabbitMQ


def test_rabbitmq_definitions_one_user_on_its_vhost_not_an_administrator():
    doc = json.loads(render_definitions("jobs", "orders", "s3cret"))
    assert doc["users"] == [{"name": "jobs", "password_hash": password_hash("jobs", "s3cret"),
                             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}]
    assert doc["vhosts"] == [{"name": "orders"}]
    assert doc["permissions"] == [{"user": "jobs", "vhost": "orders", "configure": ".*", "write": ".*", "read": ".*"}]
    # RabbitMQ's sha256 scheme: base64(4-byte salt + sha256(salt + password)); the same for the same input.
    raw = base64.b64decode(password_hash("jobs", "s3cret"))
    assert len(raw) == 36 and hashlib.sha256(raw[:4] + b"s3cret").digest() == raw[4:]
    assert password_hash("jobs", "s3cret") == password_hash("jobs", "s3cret") != password_hash("jobs", "other")


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_rabbitmq_imports_its_definitions_at_every_boot_from_a_secret_file(target):
    r = rec(target, brokers={"jobs": {}})
    if target == "docker":
        c = named(r, CONTAINER)
        env = env_map(c["jobs"])
        writer = c["jobs-files"]
        [upload] = [u for u in writer.inputs["uploads"] if u["file"].endswith("/definitions.json")]
        # The password only as RabbitMQ's hash of it (of its placeholder here).
        content = upload["content"]
        assert upload["permissions"] == "0400" and '"password_hash"' in content and "<<" not in content
        assert "chown 999:999" in writer.inputs["command"][0]
        assert not placeholders_in(writer.inputs.get("envs", []))
    else:
        sts = named(r, STATEFULSET)["jobs-statefulset"]
        env = _k8s_env(sts)
        secret_files = r.find(K8S_SECRET, "jobs-secret-files").inputs["stringData"]
        assert '"password_hash"' in secret_files[DEFINITIONS.strip("/").replace("/", "_")]
        volumes = sts.inputs["spec"]["template"]["spec"]["volumes"]
        [items] = [v["secret"]["items"] for v in volumes if "secret" in v]
        assert items == [{"key": "berth_rabbitmq_definitions.json", "path": "berth_rabbitmq_definitions.json",
                          "mode": 0o400}]
    assert env["RABBITMQ_ADVANCED_CONFIG_FILE"] == "/berth/rabbitmq/advanced.config"
