"""The dev stack through the real ``pulumi`` CLI and the real docker provider, on Podman's Docker API.

CI (``.ci/run``) builds or reuses the engine (``.ci/engine.sh``), starts Podman's API
(``.ci/podman.sh start`` → ``DOCKER_HOST``) with its health-check loop (``healthd``: Podman has no
systemd timers here, so nothing else would run the containers' health checks that pulumi-docker's
``wait`` observes), and builds the local test images. Nothing here starts or skips anything.

The project is a user's (``Pulumi.yaml``, ``import berth; berth.main()``) with the repository's
``Pulumi.dev.yaml`` where only images, the proxy's host ports (free loopback ports) and its resolver
(the test image's nginx 1.22 lacks ``resolve``) are changed (``tests/real/stacks/realdev.py``).

Scenarios, in file order, on one deployment:
a `pulumi up` → every container healthy; HTTPS → app → Postgres + Redis; redirect; rate limit; worker;
  each client logs in as its own role, which can do only what it needs (the app's cannot create roles,
  reach another database or run programs); no secret in the inspect output of a container that has
  exited, every generated file read back, the TLS key nginx's alone
b `pulumi preview --expect-no-changes` right after up and after `pulumi refresh` (Podman reads some
  fields back unlike what was declared; Berth ignores them after creation)
c an app image tag + one env value → only the app containers (and the proxy that routes to them) are
  replaced; the plain env change is visible in the diff, the secret values are not
d a Postgres image tag bump → the database container is replaced, its volume and rows are kept
e a backup (as the backup role), then the database lost and restored into a fresh one through
  `restore_from` (as the owner); the restore job's secrets gone once it ran
f Prometheus scrapes app, exporters and Pushgateway; the Grafana stand-in has its provisioning
g `pulumi destroy` leaves nothing of dev; a prod-like stack: destroy stops at the protected volumes,
  after unprotect keeps exactly them, and a redeploy onto them (new passwords) reads the old rows
"""

from __future__ import annotations

import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.real import redis_users
from tests.real.pulumi_cli import EngineMissing, Pulumi, PulumiError, changes, write_project, write_stack_config
from tests.real.stacks.seeds import force_cleanup, wait_until
from tests.real.stacks.seeds import leftovers as stack_leftovers

sys.path.insert(0, str(Path(__file__).resolve().parent / "stacks"))
import realdev  # noqa: E402

pytestmark = pytest.mark.real_docker

STACK = realdev.STACK
PREFIX = f"berth-{STACK}"
#: The stack that owns every container, volume and network of the deployment (label berth.owner).
OWNER = f"organization/berth/{STACK}"
APP_CONTAINERS = {f"{PREFIX}-api", f"{PREFIX}-worker-1", f"{PREFIX}-worker-2", f"{PREFIX}-beat"}
PROXY_CONTAINER = f"{PREFIX}-proxy"
PG_TAG_B = "localhost/berth-postgres:15-tagbump"
PROD_NAME = f"berth-{STACK}prod"


def log(msg: str) -> None:
    print(msg, flush=True)


@dataclass
class Env:
    client: Any
    pulumi: Pulumi
    project: Path
    config: dict[str, Any]
    http_port: int
    https_port: int
    facts: dict[str, Any] = field(default_factory=dict)

    def write(self, config: dict[str, Any]) -> None:
        # `pulumi stack init` added the passphrase salt to the stack file: keep it.
        path = self.project / f"Pulumi.{STACK}.yaml"
        salt = [line for line in path.read_text().splitlines() if line.startswith("encryptionsalt:")]
        write_stack_config(self.project, STACK, config)
        if salt:
            path.write_text(salt[0] + "\n" + path.read_text())
        self.config = config

    def url(self, path: str, https: bool = True) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}" if https else f"http://127.0.0.1:{self.http_port}{path}"


def docker_host_or_fail() -> None:
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail(
            "DOCKER_HOST is not set: start Podman's Docker API first:\n"
            "  bash .ci/podman.sh install && eval \"$(bash .ci/podman.sh start)\" && export DOCKER_HOST\n"
            "  bash .ci/podman.sh healthd start && bash tests/images/build.sh"
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    docker_host_or_fail()
    import docker

    client = docker.from_env(timeout=300)
    client.ping()
    force_cleanup(client, PREFIX)  # an earlier interrupted run
    force_cleanup(client, PROD_NAME)
    tmp = tmp_path_factory.mktemp("docker-dev")
    project = write_project(tmp / "project", "berth")
    http_port, https_port = realdev.free_port(), realdev.free_port()
    dev = realdev.load_dev_config()
    config = realdev.realdev_config(dev, http_port, https_port)
    write_stack_config(project, STACK, config)
    try:
        p = Pulumi(project, STACK, tmp / "state", log=log)
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    p.init()
    e = Env(client, p, project, config, http_port, https_port)
    yield e
    try:
        p.run("state", "unprotect", "--all", "--yes", check=False)
        p.destroy(check=False)
    finally:
        force_cleanup(client, PREFIX)
        force_cleanup(client, PROD_NAME)
        try:
            client.images.remove(PG_TAG_B)
        except Exception:  # noqa: BLE001
            pass
        left = stack_leftovers(client, PREFIX)
        assert not any(left.values()), f"left behind: {left}"


_BASELINE: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _stop_after_failure(request, env):
    """Scenarios build on each other: after one fails, the later ones fail fast and say so."""
    base = _BASELINE.setdefault("failed", request.session.testsfailed)
    if request.session.testsfailed > base and not request.node.name.startswith("test_zz"):
        pytest.fail("an earlier scenario of this module failed; see it first")


# ---------------------------------------------------------------- HTTP helpers

_CTX = ssl.create_default_context()
_CTX.check_hostname = False
_CTX.verify_mode = ssl.CERT_NONE  # the stack's self-signed certificate (compared with the stack's output below)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


_OPENER = urllib.request.build_opener(urllib.request.HTTPSHandler(context=_CTX), _NoRedirect,
                                      urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: Optional[dict] = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_json(method: str, url: str, body: Optional[dict] = None) -> dict:
    status, _, raw = http(method, url, body)
    assert status == 200, f"{method} {url} → {status}: {raw[:500]!r}"
    return json.loads(raw)


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            status, _, raw = http("GET", url, timeout=5)
            if status == 200:
                return
            last = (status, raw[:200])
        except OSError as e:
            last = e
        time.sleep(1)
    raise AssertionError(f"{url} not answering 200 after {timeout}s: {last}")


def exec_in(env: Env, container: str, cmd: list[str]) -> str:
    code, out = env.client.containers.get(container).exec_run(cmd)
    text = out.decode(errors="replace")
    assert code == 0, f"{container}: {cmd} exited {code}: {text}"
    return text


def psql(env: Env, sql: str) -> str:
    db = env.config["berth:databases"]["db"]
    return exec_in(env, f"{PREFIX}-db", ["psql", "-U", db["user"], "-d", db["database"], "-h", "/var/run/postgresql",
                                        "-tAc", sql]).strip()


def psql_as(env: Env, url: str, sql: str, container: Optional[str] = None) -> tuple[int, str]:
    """SQL over TCP with a client's own URL (its role and password), from inside the db container;
    the password goes through the exec's environment, which `docker inspect` does not keep."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    code, out = env.client.containers.get(container or f"{PREFIX}-db").exec_run(
        ["psql", "-X", "-At", "-h", "127.0.0.1", "-U", u.username, "-d", u.path.lstrip("/"), "-c", sql],
        environment={"PGPASSWORD": u.password})
    return code, out.decode(errors="replace").strip()


def env_of(env: Env, container: str) -> dict[str, str]:
    return dict(e.split("=", 1) for e in env.client.containers.get(container).attrs["Config"]["Env"])


def stack_secrets(p: Pulumi) -> dict[str, str]:
    """Every secret the stack generated, from its state: the passwords and the TLS key (as a line of
    its PEM body, which is how it would show inside JSON-escaped inspect output)."""
    out: dict[str, str] = {}
    for r in p.resources():
        name, o = r["urn"].rsplit("::", 1)[-1], r.get("outputs") or {}
        value = o.get("result") if r["type"] == "random:index/randomPassword:RandomPassword" else \
            o.get("privateKeyPem") if r["type"] == "tls:index/privateKey:PrivateKey" else None
        if isinstance(value, dict) and "plaintext" in value:
            value = json.loads(value["plaintext"])
        if isinstance(value, str) and value:
            out[name] = value.splitlines()[1] if value.startswith("-----BEGIN") else value
    return out


def volume_files(env: Env, volumes: list[str]) -> dict[str, tuple[int, int, bytes]]:
    """``volume/path`` → (mode, uid, content) of every file in these volumes, read by ``stat`` and
    ``base64`` as root in a container that only mounts them, read-only, without a network (removed
    after). Not through the archive API: Podman's gives the files the reading container's user."""
    import base64

    probe = env.client.containers.run(
        realdev.IMAGES["postgres"], entrypoint=["sleep"], command=["300"], name=f"berth-t-probe-{uuid.uuid4().hex[:8]}",
        volumes={v: {"bind": f"/probe/{v}", "mode": "ro"} for v in volumes}, network_mode="none", detach=True,
        user="0")
    script = 'find /probe -type f | while read -r f; do printf "%s %s " "$(stat -c "%a %u" "$f")" "$f"; base64 -w0 "$f"; echo; done'
    try:
        code, raw = probe.exec_run(["sh", "-c", script], user="0")
        assert code == 0, raw
        out = {}
        for line in raw.decode().splitlines():
            mode, uid, path, *content = line.split(" ")
            out[path.removeprefix("/probe/")] = (int(mode, 8), int(uid), base64.b64decode(content[0] if content else ""))
        return out
    finally:
        probe.remove(force=True)


def redis_get(env: Env, key: str) -> str:
    # The password from the container's own environment, through REDISCLI_AUTH (no command line).
    return exec_in(env, f"{PREFIX}-redis", ["sh", "-c", f'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli GET {key}']).strip()


def container_ids(env: Env) -> dict[str, str]:
    return {c.name: c.id for c in env.client.containers.list(all=True, filters={"label": f"berth.stack={PREFIX}"})}


def timed(env: Env, label: str, fn, *a, **kw):
    t0 = time.monotonic()
    try:
        return fn(*a, **kw)
    finally:
        env.facts.setdefault("timings", {})[label] = round(time.monotonic() - t0, 1)
        log(f"[docker dev] {label}: {env.facts['timings'][label]}s")


# ---------------------------------------------------------------- a: up → healthy, traffic


def test_a_up_every_container_healthy(env):
    timed(env, "pulumi up (first)", env.pulumi.up)
    problems = []
    containers = env.client.containers.list(all=True, filters={"label": f"berth.stack={PREFIX}"})
    assert len(containers) >= 10, [c.name for c in containers]
    for c in containers:
        if (c.attrs["HostConfig"].get("RestartPolicy") or {}).get("Name") == "no":
            continue  # a one-shot job (pre-deploy backup, restore)
        health = (c.attrs["State"].get("Health") or {}).get("Status")
        if c.status != "running":
            problems.append(f"{c.name}: {c.status}")
        elif not (c.attrs["Config"].get("Healthcheck") or {}).get("Test"):
            # Every long-running container is checked: exporters over HTTP, the backup scheduler on
            # supercronic's port, the workers and beat by Celery's own commands.
            problems.append(f"{c.name}: no health check")
        elif health != "healthy":
            problems.append(f"{c.name}: health {health}")
        if c.labels.get("berth.owner") != OWNER:
            problems.append(f"{c.name}: owner label {c.labels.get('berth.owner')!r}")
    assert not problems, problems
    assert [c.name for c in containers if c.name.startswith(f"{PREFIX}-beat")] == [f"{PREFIX}-beat"]  # a singleton
    for v in env.client.volumes.list(filters={"label": f"berth.stack={PREFIX}"}):
        assert v.attrs["Labels"].get("berth.owner") == OWNER, v.name


def test_a_every_container_has_a_read_only_root_and_its_generated_files(env):
    containers = env.client.containers.list(all=True, filters={"label": f"berth.stack={PREFIX}"})
    writable = [c.name for c in containers if not c.attrs["HostConfig"].get("ReadonlyRootfs")]
    # but the one-shot writer of a secret file (the Docker API refuses uploads into a read-only root),
    # which has exited before anything else started
    assert writable == [PROXY_CONTAINER + "-files"], f"containers with a writable root: {writable}"
    assert "berth.uploads" in env.client.containers.get(writable[0]).labels
    # Each workload's files were written once, by its one-shot files container, which succeeded.
    writers = [c for c in containers if c.labels.get("berth.role") == "init"]
    assert {c.labels["berth.files-for"] for c in writers} >= {"proxy", "prometheus", "grafana", "db-backup", "db"}
    for w in writers:
        assert w.status == "exited" and w.attrs["State"]["ExitCode"] == 0, (w.name, w.logs()[-800:])
        assert w.attrs["HostConfig"].get("NetworkMode") == "none", w.name
    files = {
        PROXY_CONTAINER: ["/etc/nginx/berth/nginx.conf", "/etc/nginx/certs/tls.crt", "/etc/nginx/certs/tls.key"],
        f"{PREFIX}-prometheus": ["/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"],
        f"{PREFIX}-grafana": ["/etc/grafana/provisioning/datasources/prometheus.yml",
                              "/etc/grafana/provisioning/dashboards/berth.yml", "/etc/grafana/dashboards/berth.json"],
        f"{PREFIX}-db-backup": ["/berth/backup.sh", "/berth/restore.sh", "/berth/crontab"],
        f"{PREFIX}-db": ["/berth/primary-entrypoint.sh"],
    }
    probe = ('for f in "$@"; do test -s "$f" || echo "missing $f"; touch "$f" 2>/dev/null && echo "writable $f"; done; '
             'touch /berth-root-probe 2>/dev/null && echo "writable root"; true')
    for name, paths in files.items():
        assert exec_in(env, name, ["sh", "-c", probe, "sh", *paths]).strip() == "", name
    # What the workloads read is what the stack generated.
    assert "limit_req_zone" in exec_in(env, PROXY_CONTAINER, ["cat", "/etc/nginx/berth/nginx.conf"])
    assert "pg_dump" in exec_in(env, f"{PREFIX}-db-backup", ["cat", "/berth/backup.sh"])
    assert "BEGIN CERTIFICATE" in exec_in(env, PROXY_CONTAINER, ["cat", "/etc/nginx/certs/tls.crt"])


def test_a_https_reaches_app_which_writes_postgres_and_redis(env):
    wait_http(env.url("/health"))
    value = f"berth-e2e-{uuid.uuid4().hex[:8]}"
    item = http_json("POST", env.url("/api/items"), {"value": value})
    got = http_json("GET", env.url(f"/api/items/{item['id']}"))
    assert got["value"] == value and got["cached"] == value
    assert psql(env, f"SELECT value FROM items WHERE id = {int(item['id'])}") == value
    assert redis_get(env, f"item:{item['id']}") == value
    env.facts["item"] = item
    # The certificate served is the one the stack generated (pulumi-tls, in the stack's state).
    pem = ssl.get_server_certificate(("127.0.0.1", env.https_port))
    certs = [r["outputs"]["certPem"] for r in env.pulumi.resources() if r["type"] == "tls:index/selfSignedCert:SelfSignedCert"]
    assert [c.strip() for c in certs] == [pem.strip()]


def test_a_http_redirects_to_https(env):
    status, headers, _ = http("GET", env.url("/api/items/1", https=False))
    assert status in (301, 302, 307, 308), status
    assert (headers.get("Location") or headers.get("location") or "").startswith("https://")


def test_a_rate_limit_gives_429(env):
    import concurrent.futures

    item = env.facts["item"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: http("GET", env.url(f"/api/items/{item['id']}"))[0], range(60)))
    counts = {s: statuses.count(s) for s in set(statuses)}
    log(f"[a] burst of 60 GETs on /api/ (30 at a time): {counts}")
    assert counts.get(429, 0) > 0 and counts.get(200, 0) >= 10, counts
    time.sleep(3)  # the bucket refills for later scenarios


def test_a_worker_runs_jobs(env):
    job = http_json("POST", env.url("/api/jobs"), {"task": "e2e"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if http_json("GET", env.url(f"/api/jobs/{job['id']}"))["done"]:
            return
        time.sleep(1)
    raise AssertionError(f"job {job['id']} not done by a worker in 60s")


def test_a_each_client_logs_in_as_its_own_role_with_only_what_it_needs(env):
    db = env.config["berth:databases"]["db"]
    owner, name = db["user"], db["database"]
    # Who logs in as whom: the services as the owner role, the exporter and the dumps as their own.
    app_url = env_of(env, f"{PREFIX}-api")["DATABASE_URL"]
    monitor_url = env_of(env, f"{PREFIX}-db-exporter")["DATA_SOURCE_NAME"].split("?")[0]
    backup = env_of(env, f"{PREFIX}-db-backup")
    backup_url = f"postgresql://{backup['DB_USER']}:{backup['DB_PASSWORD']}@db:5432/{name}"
    assert app_url.startswith(f"postgresql://{owner}:") and monitor_url.startswith("postgresql://berth_monitor:")
    assert backup["DB_USER"] == "berth_backup"
    roles = psql(env, "SELECT string_agg(rolname || ' super=' || rolsuper || ' createrole=' || rolcreaterole || "
                      "' createdb=' || rolcreatedb || ' replication=' || rolreplication, '; ' ORDER BY rolname) "
                      f"FROM pg_roles WHERE rolname IN ('{owner}', 'postgres', 'berth_monitor', 'berth_backup')")
    assert roles == ("berth_backup super=false createrole=false createdb=false replication=false; "
                     "berth_monitor super=false createrole=false createdb=false replication=false; "
                     f"{owner} super=false createrole=false createdb=false replication=false; "
                     "postgres super=true createrole=true createdb=true replication=true"), roles
    assert psql(env, "SELECT pg_has_role('berth_monitor', 'pg_monitor', 'MEMBER') AND "
                     "pg_has_role('berth_backup', 'pg_read_all_data', 'MEMBER')") == "t"
    assert psql(env, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}'") == owner
    assert psql(env, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'items'") == owner

    # The app's role: its own data, nothing else.
    assert psql_as(env, app_url, "SELECT count(*) > 0 FROM items") == (0, "t")
    refused = {
        "CREATE ROLE intruder LOGIN": "permission denied to create role",
        "CREATE ROLE intruder LOGIN SUPERUSER": "must be superuser to create superusers",
        "COPY (SELECT 1) TO PROGRAM 'id'": "pg_execute_server_program",
        "SELECT rolpassword FROM pg_authid": "permission denied for table pg_authid",
        "CREATE DATABASE other": "permission denied to create database",
        "ALTER SYSTEM SET log_statement = 'all'": "permission denied",
    }
    for sql, why in refused.items():
        code, out = psql_as(env, app_url, sql)
        assert code != 0 and why in out, (sql, out)
    for other in ("postgres", "template1"):  # the other databases on its server
        code, out = psql_as(env, app_url.rsplit("/", 1)[0] + f"/{other}", "SELECT 1")
        assert code != 0 and f'permission denied for database "{other}"' in out, out
    # The exporter reads statistics, not data; the dumps read data, and change nothing.
    code, out = psql_as(env, monitor_url, "SELECT count(*) FROM items")
    assert code != 0 and "permission denied for table items" in out, out
    assert psql_as(env, monitor_url, "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename IS NOT NULL") == (0, "t")
    assert psql_as(env, backup_url, "SELECT count(*) > 0 FROM items") == (0, "t")
    code, out = psql_as(env, backup_url, "DELETE FROM items")
    assert code != 0 and "permission denied for table items" in out, out
    # The superuser only over the database container's own socket, never over the network.
    admin = env_of(env, f"{PREFIX}-db")["POSTGRES_PASSWORD"]
    code, out = psql_as(env, f"postgresql://postgres:{admin}@db:5432/{name}", "SELECT 1")
    assert code != 0 and "pg_hba.conf rejects connection" in out, out


def test_a_redis_each_client_logs_in_as_its_own_user(env):
    """The apps as Redis's default user without the admin commands, the exporter as berth_monitor
    (no key), the operator as berth_admin: the passwords as the stack handed them to each."""
    from urllib.parse import urlsplit

    redis = env_of(env, f"{PREFIX}-redis")
    app_url = next(v for k, v in env_of(env, f"{PREFIX}-api").items() if v.startswith("redis://"))
    exporter = env_of(env, f"{PREFIX}-redis-exporter")
    assert urlsplit(app_url).username in (None, "") and urlsplit(app_url).password == redis["REDIS_PASSWORD"]
    assert exporter["REDIS_USER"] == "berth_monitor" and exporter["REDIS_PASSWORD"] == redis["REDIS_MONITOR_PASSWORD"]

    def redis_cli(user: Optional[str], password: str, args: list[str]) -> str:
        # The password through the exec's environment (REDISCLI_AUTH), which `docker inspect` does not keep.
        code, out = env.client.containers.get(f"{PREFIX}-redis").exec_run(
            ["redis-cli", *(["--user", user] if user else []), *args],
            environment={"REDISCLI_AUTH": password} if password else {})
        return out.decode(errors="replace").strip()

    item = env.facts["item"]
    redis_users.check_users(redis_cli, redis["REDIS_PASSWORD"], redis["REDIS_MONITOR_PASSWORD"],
                            redis["REDIS_ADMIN_PASSWORD"], f"item:{item['id']}", item["value"])


def test_a_no_secret_in_an_exited_container_and_the_tls_key_is_nginxs_alone(env):
    """`docker inspect` shows a container's environment, command and labels to anyone who may use the
    Docker API, for as long as the container exists: a container that has exited (the files writers,
    one-shot jobs) keeps none of the stack's secrets there. Running containers get theirs in their
    environment (README: Secure by default). Every generated file is read back from its volume: a file
    holding a secret is the TLS key, mode 0400, owned by nginx's user, and only nginx reads it."""
    secrets = stack_secrets(env.pulumi)
    assert {"db-password", "db-admin-password", "db-monitor-password", "db-backup-password",
            "redis-password", "grafana-admin-password", "proxy-tls-key"} <= set(secrets), sorted(secrets)
    containers = env.client.containers.list(all=True, filters={"label": f"berth.stack={PREFIX}"})
    exited, leaks = [], []
    for c in containers:
        cfg = c.attrs["Config"]
        shown = {"labels": json.dumps(cfg.get("Labels")), "command": json.dumps([cfg.get("Entrypoint"), cfg.get("Cmd")]),
                 "env": json.dumps(cfg.get("Env"))}
        if c.status != "running":
            exited.append(c.name)
        else:
            shown.pop("env")
        leaks += [f"{c.name}: {what} holds {secret}" for what, text in shown.items()
                  for secret, value in secrets.items() if value in text]
    assert not leaks, leaks
    assert len(exited) >= 5 and f"{PROXY_CONTAINER}-files" in exited, exited  # the files writers
    env.facts.setdefault("timings", {})["containers inspected"] = len(containers)

    volumes = [v.name for v in env.client.volumes.list(filters={"label": "berth.config=true"})
               if v.name.startswith(f"{PREFIX}-")]
    files = volume_files(env, volumes)
    holding = {path: (mode, uid) for path, (mode, uid, content) in files.items()
               if any(value.encode() in content for value in secrets.values())}
    assert holding == {f"{PREFIX}-proxy-files-etc-nginx-certs/tls.key": (0o400, 101)}, holding
    writable = {path: oct(mode) for path, (mode, _uid, _c) in files.items() if mode & 0o022}
    assert not writable and len(files) >= 10, (writable, sorted(files))
    proxy = env.client.containers.get(PROXY_CONTAINER)
    assert exec_in(env, PROXY_CONTAINER, ["stat", "-c", "%a %u %g", "/etc/nginx/certs/tls.key"]).strip() == "400 101 101"
    assert "Uid:\t101\t101" in exec_in(env, PROXY_CONTAINER, ["cat", "/proc/1/status"])  # nginx itself
    code, out = proxy.exec_run(["cat", "/etc/nginx/certs/tls.key"], user="10001:10001")
    assert code != 0 and b"Permission denied" in out, out
    log(f"[a] inspected {len(containers)} containers ({len(exited)} exited) and {len(files)} generated files")


# ---------------------------------------------------------------- b: the provider's read-back diffs nothing


def test_b_preview_expects_no_changes_after_up(env):
    timed(env, "pulumi preview --expect-no-changes", env.pulumi.expect_no_changes)


def test_b_no_changes_after_refresh_although_podman_reads_fields_back_differently(env):
    """Podman's API reads back tmpfs (extra options, /run and /var/tmp added), log options (empty) and
    the networks' IPAM driver (host-local) unlike what was declared; Docker Engine reads them back as
    declared (test_dockerd_dev.py). Berth ignores them after creation, so a refresh that writes
    Podman's values into the state leaves the next preview clean."""
    from tests.real.test_dockerd_dev import read_back

    timed(env, "pulumi refresh", env.pulumi.refresh)
    differ = {k for k, (declared, got) in read_back(env.pulumi).items() if declared != got}
    assert any(k.endswith(" tmpfs") for k in differ), differ  # the quirk is still there, and ignored
    timed(env, "pulumi preview --expect-no-changes (after refresh)", env.pulumi.expect_no_changes)


def test_b_second_up_replaces_nothing(env):
    before = container_ids(env)
    res = timed(env, "pulumi up (unchanged)", env.pulumi.up)
    assert container_ids(env) == before
    assert "replaced" not in res.stdout.split("Resources:")[-1], res.stdout[-800:]


def test_b_another_stack_with_this_prefix_is_refused(env, tmp_path):
    """A second stack whose berth:name is this one's would be handed its volumes (Docker gives out an
    existing volume of the requested name as it is) and collide on its containers: it is refused at
    preview and at up, naming the owning stack and the key, and nothing of the dev stack changes."""
    other = write_project(tmp_path / "other", "intruder")
    cfg = json.loads(json.dumps(env.config))
    cfg["berth:name"] = PREFIX
    cfg["berth:proxy"]["http_port"], cfg["berth:proxy"]["https_port"] = realdev.free_port(), realdev.free_port()
    write_stack_config(other, "dev", cfg)
    p = Pulumi(other, "dev", tmp_path / "state", log=log)
    p.init()
    before = container_ids(env)
    volume = env.client.volumes.get(f"{PREFIX}-db-data").attrs
    for res in (timed(env, "pulumi preview (another stack, same prefix)", p.preview, check=False),
                timed(env, "pulumi up (another stack, same prefix)", p.up, check=False)):
        assert res.returncode != 0, res
        assert f"berth:name = {PREFIX}: " in res.output and f"belong to stack {OWNER}" in res.output, res
        assert "give this stack a prefix of its own" in res.output, res
    assert container_ids(env) == before
    assert env.client.volumes.get(f"{PREFIX}-db-data").attrs == volume
    p.rm_stack()


# ---------------------------------------------------------------- c: app image + env


def test_c_app_image_and_env_change(env):
    before = container_ids(env)
    cfg = json.loads(json.dumps(env.config))
    for svc in cfg["berth:services"].values():
        svc["image"] = "localhost/berth-testapp:2"
    cfg["berth:services"]["api"]["env"]["LOG_LEVEL"] = "debug"
    env.write(cfg)
    res = env.pulumi.preview("--diff")
    # A reviewer sees the plain change, never a secret value.
    assert "LOG_LEVEL=debug" in res.stdout, res.stdout[-3000:]
    _, doc = env.pulumi.preview_json()
    ch = changes(doc)
    replaced = set(ch.get("replace", []))
    assert replaced <= {"api", "worker-1", "worker-2", "beat", "proxy"}, ch
    assert {"api", "worker-1", "worker-2", "beat"} <= replaced, ch
    timed(env, "pulumi up (testapp 1 -> 2, LOG_LEVEL=debug)", env.pulumi.up)
    after = container_ids(env)
    expected = APP_CONTAINERS | {PROXY_CONTAINER}
    unchanged = {n for n in before if n not in expected}
    assert {n: after.get(n) for n in unchanged} == {n: before[n] for n in unchanged}
    assert all(after[n] != before[n] for n in APP_CONTAINERS)
    wait_http(env.url("/health"))
    assert http_json("GET", env.url("/api/version"))["version"] == "2"
    item = env.facts["item"]
    assert http_json("GET", env.url(f"/api/items/{item['id']}"))["value"] == item["value"]
    env.pulumi.expect_no_changes()


# ---------------------------------------------------------------- d: postgres tag bump


def test_d_postgres_tag_bump_replaces_db_keeps_volume_and_row(env):
    repo, tag = PG_TAG_B.rsplit(":", 1)
    assert env.client.images.get(realdev.IMAGES["postgres"]).tag(repo, tag)
    volume_before = env.client.volumes.get(f"{PREFIX}-db-data").attrs.get("CreatedAt")
    db_before = env.client.containers.get(f"{PREFIX}-db").id
    cfg = json.loads(json.dumps(env.config))
    cfg["berth:databases"]["db"]["image"] = PG_TAG_B
    env.write(cfg)
    timed(env, "pulumi up (postgres tag bump)", env.pulumi.up)
    assert env.client.containers.get(f"{PREFIX}-db").id != db_before
    assert env.client.volumes.get(f"{PREFIX}-db-data").attrs.get("CreatedAt") == volume_before
    item = env.facts["item"]
    assert psql(env, f"SELECT value FROM items WHERE id = {int(item['id'])}") == item["value"]
    wait_http(env.url(f"/api/items/{item['id']}"))


# ---------------------------------------------------------------- e: backup + restore


def test_e_backup_retention_and_restore_into_fresh_database(env):
    backup = f"{PREFIX}-db-backup"
    tier = env.config["berth:backups"]["db"]["tiers"][0]
    name, keep = tier["name"], int(tier["keep"])
    db_name = env.config["berth:databases"]["db"]["database"]
    exec_in(env, backup, ["sh", "-c", f"mkdir -p /backups/{name} && for d in 01 02 03 04 05 06 07 08 09 10; do "
                                      f"f=/backups/{name}/{db_name}-202601${{d}}T020000Z.dump; echo old > $f; "
                                      f"touch -d 2026-01-$d $f; done"])
    out = exec_in(env, backup, ["bash", "/berth/backup.sh", name, str(keep)])  # as berth_backup (its env)
    assert "backup written:" in out and env_of(env, backup)["DB_USER"] == "berth_backup", out
    files = exec_in(env, backup, ["sh", "-c", f"ls -1t /backups/{name}/"]).split()
    assert len(files) == keep, files
    newest = files[0]
    assert newest.startswith(db_name) and "202601" not in newest, files
    # Lose the database (container and volume) behind Pulumi's back, then restore into a fresh one:
    # `up --refresh` sees both gone and creates them; the restore job loads the dump.
    env.client.containers.get(f"{PREFIX}-db").remove(force=True)
    env.client.volumes.get(f"{PREFIX}-db-data").remove(force=True)
    cfg = json.loads(json.dumps(env.config))
    cfg["berth:backups"]["db"]["restore_from"] = f"{name}/{newest}"
    env.write(cfg)
    try:
        timed(env, "pulumi up --refresh (fresh database + restore job)", env.pulumi.up, "--refresh")
    except PulumiError as e:
        logs = env.client.containers.get(f"{PREFIX}-db-restore").logs().decode(errors="replace")
        raise AssertionError(f"{e}\n--- docker logs {PREFIX}-db-restore\n{logs[-3000:]}") from None
    restore = env.client.containers.get(f"{PREFIX}-db-restore")
    result = restore.wait(timeout=180)
    assert result["StatusCode"] == 0, restore.logs().decode(errors="replace")
    item = env.facts["item"]
    assert psql(env, f"SELECT value FROM items WHERE id = {int(item['id'])}") == item["value"]
    # It restored as the database's owner, which owns what it recreated; its secrets, uploaded into a
    # volume of its own, were read and deleted before it ran: nothing of them stays.
    owner = env.config["berth:databases"]["db"]["user"]
    assert env_of(env, f"{PREFIX}-db-restore")["DB_USER"] == owner
    assert psql(env, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'items'") == owner
    restore.reload()
    assert not [e for e in restore.attrs["Config"]["Env"] if e.startswith("DB_PASSWORD=")]
    assert restore.labels["berth.secret-file-envs"] == "DB_PASSWORD"
    assert volume_files(env, [f"{PREFIX}-db-restore-files-berth-secrets"]) == {}
    # The app writes to the restored database, whose roles its first start made anew.
    wait_http(env.url("/health"))
    try:
        again = http_json("POST", env.url("/api/items"), {"value": "after-restore"})
    except OSError as e:
        raise AssertionError(f"POST /api/items after the restore: {e!r}\n{app_diagnosis(env)}") from None
    assert http_json("GET", env.url(f"/api/items/{again['id']}"))["value"] == "after-restore"


def app_diagnosis(env: Env) -> str:
    """What the app and the database show when the app does not answer: the app's log, the address its
    container resolves for the database, and the database's sessions."""
    out = []
    for what, fn in (
        ("docker logs api (tail)", lambda: env.client.containers.get(f"{PREFIX}-api").logs(tail=40).decode(errors="replace")),
        ("db address seen by api", lambda: exec_in(env, f"{PREFIX}-api", ["getent", "hosts", "db"])),
        ("db container", lambda: env.client.containers.get(f"{PREFIX}-db").attrs["NetworkSettings"]["Networks"]),
        ("pg_stat_activity", lambda: psql(env, "SELECT usename, state, wait_event_type, wait_event, left(query, 80) "
                                                 "FROM pg_stat_activity WHERE usename IS NOT NULL")),
    ):
        try:
            out.append(f"--- {what}\n{fn()}")
        except Exception as e:  # noqa: BLE001 - a diagnosis must not hide the failure
            out.append(f"--- {what}: {e!r}")
    return "\n".join(out)


# ---------------------------------------------------------------- f: monitoring


def _json_in(env: Env, container: str, url: str) -> Any:
    return json.loads(exec_in(env, container, ["wget", "-q", "-O", "-", url]))


def test_f_the_postgres_exporter_reads_the_database_as_its_own_role(env):
    """The target being up says only that the exporter answers; pg_up says it logged in."""
    metrics = exec_in(env, f"{PREFIX}-prometheus", ["wget", "-q", "-O", "-", "http://db-exporter:9187/metrics"])
    assert re.search(r"^pg_up 1$", metrics, re.M), [l for l in metrics.splitlines() if l.startswith("pg_up")]
    assert "pg_stat_database_xact_commit" in metrics


def test_f_the_redis_exporter_reads_redis_as_its_own_user(env):
    """redis_up says the exporter logged in as berth_monitor; no scrape error says no command it
    makes was refused."""
    metrics = exec_in(env, f"{PREFIX}-prometheus", ["wget", "-q", "-O", "-", "http://redis-exporter:9121/metrics"])
    lines = [l for l in metrics.splitlines() if l.startswith(("redis_up", "redis_exporter_last_scrape_error"))]
    assert "redis_up 1" in lines and 'redis_exporter_last_scrape_error{err=""} 0' in lines, lines
    assert re.search(r"^redis_connected_clients [1-9]", metrics, re.M)


def test_f_prometheus_scrapes_app_exporters_and_pushgateway(env):
    prom = f"{PREFIX}-prometheus"
    deadline = time.monotonic() + 90
    while True:
        targets = _json_in(env, prom, "http://127.0.0.1:9090/api/v1/targets?state=active")["data"]["activeTargets"]
        health = {t["labels"].get("job"): t["health"] for t in targets}
        if health and all(h == "up" for h in health.values()) or time.monotonic() > deadline:
            break
        time.sleep(3)
    errors = {t["labels"].get("job"): t.get("lastError") for t in targets if t["health"] != "up"}
    assert not errors, errors
    assert {"api", "db-exporter", "redis-exporter", "pushgateway", "prometheus"} <= set(health), health
    groups = _json_in(env, prom, "http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    assert groups and all(g["rules"] for g in groups), groups


def test_f_grafana_standin_health_and_provisioned_datasource(env):
    c = env.client.containers.get(f"{PREFIX}-grafana")
    code, out = c.exec_run(["python3", "-c", "import urllib.request,sys;"
                            "[sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:3000'+p, timeout=5).read().decode()+'\\n')"
                            " for p in ('/api/health', '/api/datasources', '/api/search')]"])
    text = out.decode(errors="replace")
    assert code == 0, text
    health, datasources, dashboards = (json.loads(line) for line in text.splitlines() if line.strip())
    assert health["database"] == "ok"
    assert [d.get("url") for d in datasources] == ["http://prometheus:9090"], datasources
    assert dashboards


# ---------------------------------------------------------------- g: destroy


def test_g_destroy_leaves_nothing_of_the_dev_stack(env):
    timed(env, "pulumi destroy (dev)", env.pulumi.destroy)
    left = stack_leftovers(env.client, PREFIX)
    assert not any(left.values()), left


def test_g_prod_like_destroy_stops_at_and_then_keeps_protected_volumes(env, tmp_path):
    cfg = json.loads(json.dumps(env.config))
    for b in (cfg.get("berth:backups") or {}).values():
        b.pop("restore_from", None)
    cfg["berth:environment"] = "prod"
    cfg["berth:name"] = PROD_NAME
    cfg["berth:proxy"]["http_port"], cfg["berth:proxy"]["https_port"] = realdev.free_port(), realdev.free_port()
    project = write_project(tmp_path / "project", "berth")
    write_stack_config(project, "prodlike", cfg)
    p = Pulumi(project, "prodlike", tmp_path / "state", log=log)
    p.init()
    https = f"https://127.0.0.1:{cfg['berth:proxy']['https_port']}"
    try:
        timed(env, "pulumi up (prod-like)", p.up)
        wait_http(f"{https}/health")
        kept = http_json("POST", f"{https}/api/items", {"value": "written-before-the-destroy"})
        protected = sorted(r["outputs"]["name"] for r in p.resources()
                           if r["type"] == "docker:index/volume:Volume" and r.get("protect"))
        assert protected, "a prod stack protects its data volumes"
        refused = p.destroy(check=False)
        assert refused.returncode != 0 and "protected" in refused.output, refused
        p.run("state", "unprotect", "--all", "--yes")
        timed(env, "pulumi destroy (prod-like, after unprotect)", p.destroy)
        left = stack_leftovers(env.client, PROD_NAME)
        assert left["containers"] == [] and left["networks"] == [], left
        assert sorted(left["volumes"]) == protected, left

        # README "bringing a retained prod back": the same config again. Every password is new (the
        # generated ones went with the destroyed stack); each role's is set before the database accepts
        # connections, so the app, the exporter and the dumps work on the old data.
        timed(env, "pulumi up (prod-like, onto the retained volumes)", p.up)
        wait_http(f"{https}/health")
        assert http_json("GET", f"{https}/api/items/{kept['id']}")["value"] == "written-before-the-destroy"
        # `up` waits for the database and the app, not for the exporter: Prometheus reaches it by name once
        # it runs (Podman's DNS learns a container's name when it starts). Its state is in the message if not.
        def exporter_metrics() -> str:
            try:
                return exec_in(env, f"{PROD_NAME}-prometheus", ["wget", "-q", "-O", "-", "http://db-exporter:9187/metrics"])
            except AssertionError as e:
                c = env.client.containers.get(f"{PROD_NAME}-db-exporter")
                raise AssertionError(f"{e}; exporter {c.status}, restarts {c.attrs['RestartCount']}, log: "
                                     f"{c.logs(tail=5).decode(errors='replace')}") from None

        metrics = wait_until("Prometheus reads the database exporter", exporter_metrics, 60, 2)
        assert re.search(r"^pg_up 1$", metrics, re.M)
        assert "backup written:" in exec_in(env, f"{PROD_NAME}-db-backup", ["bash", "/berth/backup.sh", "daily", "7"])
    finally:
        p.run("state", "unprotect", "--all", "--yes", check=False)
        p.destroy(check=False)
        force_cleanup(env.client, PROD_NAME)


def test_zz_report(env):
    """Timings for the note (printed; -s or -rA shows them)."""
    log("docker dev timings (s): " + json.dumps(env.facts.get("timings", {})))
