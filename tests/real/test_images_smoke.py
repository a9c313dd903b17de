"""Smoke tests of the locally built images (tests/images/) on Podman's Docker-compatible API.

Each image is run on a network this module creates and its contract (the one the stacks and the
other real tests rely on) is checked. Services are reached from the host only through ports
published on 127.0.0.1, and container-to-container on the module's own network.

Prerequisites (CI's .ci/run does them before pytest):
    bash .ci/podman.sh install
    eval "$(bash .ci/podman.sh start)"      # sets DOCKER_HOST=unix:///run/berth-podman/podman.sock
    bash tests/images/build.sh
These tests never skip: without DOCKER_HOST or without the images they fail and say what to run.
(We deliberately do not start Podman from a fixture: starting/stopping the shared service is CI's job.)

Podman never runs health checks by itself on these machines (no systemd timers), so the one health
check used here is driven with `podman healthcheck run NAME`.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import docker
import pytest

pytestmark = pytest.mark.real_docker

IMAGES = {
    "postgres": "localhost/berth-postgres:15",
    "redis": "localhost/berth-redis:7",
    "nginx": "localhost/berth-nginx:1",
    "testapp1": "localhost/berth-testapp:1",
    "testapp2": "localhost/berth-testapp:2",
    "backup": "localhost/berth-backup:1",
    "prometheus": "localhost/berth-prometheus:2",
    "postgres_exporter": "localhost/berth-postgres-exporter:1",
    "redis_exporter": "localhost/berth-redis-exporter:1",
    "grafana": "localhost/berth-grafana-standin:1",
    "pushgateway": "localhost/berth-pushgateway:1",
}
PG_USER, PG_PASSWORD, PG_DB = "berth", "pg-secret-1", "smoke"
REDIS_PASSWORD = "redis-secret-1"
LABEL = {"berth.test": "images-smoke"}


# --------------------------------------------------------------------------- helpers
def wait_for(what: str, fn, timeout: float = 60.0, interval: float = 0.5):
    """Call fn until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001
            last = f"{type(e).__name__}: {e}"
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last})")


def http(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 10):
    """(status, body) of a request to 127.0.0.1; HTTP errors are returned, not raised."""
    assert url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")), url
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def http_json(url: str, payload: dict | None = None):
    data = json.dumps(payload).encode() if payload is not None else None
    status, body = http(url, data, {"Content-Type": "application/json"} if data else None)
    return status, (json.loads(body) if body.strip().startswith(("{", "[")) else body)


def tar_of(files: dict[str, tuple[bytes | str, int]]) -> bytes:
    """A tar archive (for put_archive) of {name: (content, mode)}; owned by root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, (content, mode) in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def host_port(container, port: str) -> int:
    def published():
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port)
        return int(bindings[0]["HostPort"]) if bindings else None

    return wait_for(f"published port {port} of {container.name}", published, timeout=10)


def exec_ok(container, cmd, **kw) -> str:
    code, out = container.exec_run(cmd, **kw)
    out = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
    assert code == 0, f"{cmd!r} in {container.name} exited {code}: {out}"
    return out


class Env:
    """Creates containers on one network and removes everything it created."""

    def __init__(self, client):
        self.client = client
        self.suffix = uuid.uuid4().hex[:8]
        self.network = client.networks.create(f"berth-smoke-{self.suffix}", driver="bridge", labels=LABEL)
        self.containers = []

    def name(self, base: str) -> str:
        return f"smoke-{base}-{self.suffix}"

    def create(self, image: str, base: str, files: dict[str, bytes] | None = None, **kw):
        """Create (and upload `files` = {dir: tar bytes} into) a container, then start it."""
        kw.setdefault("labels", LABEL)
        c = self.client.containers.create(image, name=self.name(base), network=self.network.name, **kw)
        self.containers.append(c)
        for path, archive in (files or {}).items():
            try:
                assert c.put_archive(path, archive), f"upload to {path} failed"
            except docker.errors.APIError as e:
                # Podman 4.3's copier child (a re-exec that unpacks into the stopped container's root)
                # sometimes dies under load: "passing bulk input to subprocess: write |1: broken pipe".
                # Its own defect, not the image's: uploaded again once, and said so.
                if "broken pipe" not in str(e):
                    raise
                print(f"[images smoke] {base}: upload to {path} failed once ({e}); again", flush=True)
                assert c.put_archive(path, archive), f"upload to {path} failed"
        c.start()
        return c

    def run_once(self, image: str, base: str, command, timeout: float = 120, **kw):
        """Run a command to completion; returns (exit code, logs)."""
        c = self.create(image, base, command=command, **kw)
        code = c.wait(timeout=timeout)["StatusCode"]
        return code, c.logs().decode(errors="replace")

    def close(self):
        def remove(c):
            try:
                c.kill()  # SIGKILL: nothing to shut down gracefully, and `rm -f` would wait per container
            except Exception:  # noqa: BLE001
                pass
            try:
                c.remove(force=True, v=True)
            except Exception:  # noqa: BLE001
                pass

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(remove, self.containers))
        try:
            self.network.remove()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client():
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail(
            "DOCKER_HOST is not set. These tests need Podman's Docker API: run\n"
            "  bash .ci/podman.sh install && eval \"$(bash .ci/podman.sh start)\" && bash tests/images/build.sh\n"
            "(CI's .ci/run does this before pytest)."
        )
    c = docker.from_env(timeout=300)
    try:
        c.ping()
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer ({e}); run: bash .ci/podman.sh start")
    missing = [ref for ref in IMAGES.values() if not _image_exists(c, ref)]
    if missing:
        pytest.fail(f"images missing: {missing}; run: bash tests/images/build.sh")
    yield c
    c.close()


def _image_exists(client, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="module")
def env(client):
    e = Env(client)
    yield e
    e.close()


INITDB_SQL = "CREATE TABLE seeded (note text); INSERT INTO seeded VALUES ('from-initdb-sql');\n"
# Not executable: sourced by the entrypoint, like the official image does.
INITDB_SH = 'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "CREATE TABLE sh_ran (uid int); INSERT INTO sh_ran VALUES ($(id -u))"\n'


# As the stacks run postgres: read-only root, tmpfs on /tmp and /var/run/postgresql.
# (Podman-only quirk, not Docker's: on a *writable* root, a restarted container's tmpfs takes the mode of
# the mountpoint directory the first start created in the container's layer (755), whatever mode= says,
# so postgres running as 999 could not write its lock file after a restart. With a read-only root the
# mountpoint is on Podman's fresh /run tmpfs every start.)
STACK_TMPFS = "rw,noexec,nosuid,size=64m,mode=1777"
PG_TMPFS = {"/tmp": STACK_TMPFS, "/var/run/postgresql": STACK_TMPFS}


@pytest.fixture(scope="module")
def postgres(env):
    c = env.create(
        IMAGES["postgres"], "pg",
        # Read-only root: the init scripts go into a (anonymous) volume, where Docker accepts uploads too.
        volumes=["/docker-entrypoint-initdb.d"],
        files={"/docker-entrypoint-initdb.d": tar_of({"01-seed.sql": (INITDB_SQL, 0o644),
                                                      "02-script.sh": (INITDB_SH, 0o644)})},
        environment={"POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": PG_PASSWORD, "POSTGRES_DB": PG_DB},
        command=["postgres", "-c", "max_connections=50"],
        read_only=True, tmpfs=PG_TMPFS,
    )
    wait_for("postgres on TCP", lambda: pg_ready(c), timeout=120)
    return c


def pg_ready(container) -> bool:
    """TCP readiness: during initdb the temporary server listens on the unix socket only."""
    container.reload()
    if container.status != "running":
        raise AssertionError(f"{container.name} is {container.status}: {container.logs().decode()[-1500:]}")
    return container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", PG_USER, "-d", PG_DB])[0] == 0


@pytest.fixture(scope="module")
def redis_server(env):
    c = env.create(IMAGES["redis"], "redis",
                   command=["redis-server", "--requirepass", REDIS_PASSWORD, "--appendonly", "yes", "--dir", "/data"])
    wait_for("redis PONG", lambda: "PONG" in c.exec_run(
        ["redis-cli", "-a", REDIS_PASSWORD, "--no-auth-warning", "ping"])[1].decode(), timeout=30)
    return c


def redis_cli(container, *args: str) -> str:
    return exec_ok(container, ["redis-cli", "-a", REDIS_PASSWORD, "--no-auth-warning", *args]).strip()


def pg_url(env, host_alias: str = "pg") -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{env.name(host_alias)}:5432/{PG_DB}"


def redis_url(env) -> str:
    return f"redis://:{REDIS_PASSWORD}@{env.name('redis')}:6379/0"


# --------------------------------------------------------------------------- tests
def test_postgres_contract(env, postgres):
    assert exec_ok(postgres, ["id", "-u"]).strip() == "999"
    exec_ok(postgres, ["pg_isready"])
    for tool in ("psql", "pg_dump", "pg_restore", "pg_basebackup", "pg_ctl", "pg_isready"):
        exec_ok(postgres, ["sh", "-c", f"command -v {tool}"])
    logs = postgres.logs().decode()
    assert "PostgreSQL init process complete" in logs, logs[-2000:]

    # Over the network (the container's own name resolves to its address on the test network, so
    # this is a host connection, not loopback), with the password: scram-sha-256.
    sql = ("SELECT note FROM seeded; SELECT uid FROM sh_ran; SHOW max_connections; SHOW password_encryption;"
           "CREATE TABLE smoke_rows (v text); INSERT INTO smoke_rows VALUES ('written'); SELECT v FROM smoke_rows;")
    out = exec_ok(postgres, ["psql", "-v", "ON_ERROR_STOP=1", "-At", pg_url(env), "-c", sql])
    lines = out.split()
    assert lines[:3] == ["from-initdb-sql", "999", "50"] and "scram-sha-256" in lines and "written" in lines, out

    code, out = postgres.exec_run(["psql", pg_url(env).replace(PG_PASSWORD, "wrong-password"), "-c", "SELECT 1"])
    assert code != 0 and b"password authentication failed" in out, out

    # The container restarts on the same PGDATA without re-initialising.
    postgres.stop(timeout=30)
    postgres.start()
    postgres.reload()
    assert postgres.status == "running", postgres.logs().decode()[-2000:]
    wait_for("postgres after restart", lambda: pg_ready(postgres), timeout=60)
    assert "Skipping initialization" in postgres.logs().decode()


def test_postgres_runs_like_the_stacks_with_explicit_user_and_args(env):
    """The image ships no /run/postgresql (= /var/run/postgresql): with a read-only root Podman's
    compat API mounts its own tmpfs on /run, and an image directory there made the stack's nested tmpfs
    root-owned 1755 (no lock file for postgres). The stack's tmpfs must be what postgres gets."""
    c = env.create(IMAGES["postgres"], "pg-user", user="999:999", read_only=True,
                   environment={"POSTGRES_PASSWORD": "x"}, command=["-c", "shared_buffers=16MB"],
                   tmpfs=PG_TMPFS)
    wait_for("postgres (read-only root, --user 999:999)",
             lambda: c.exec_run(["pg_isready", "-h", "127.0.0.1"])[0] == 0, timeout=120)
    assert exec_ok(c, ["psql", "-U", "postgres", "-Atc", "SHOW shared_buffers"]).strip() == "16MB"
    assert exec_ok(c, ["stat", "-c", "%a", "/var/run/postgresql"]).strip() == "1777"
    exec_ok(c, ["test", "-S", "/var/run/postgresql/.s.PGSQL.5432"])
    exec_ok(c, ["test", "-f", "/var/run/postgresql/.s.PGSQL.5432.lock"])


def test_postgres_image_has_no_run_postgresql_and_root_entrypoint_creates_it(env):
    """As the official entrypoint: when the directory is missing and /run writable (run as root, no
    tmpfs), it is created for the postgres user."""
    c = env.create(IMAGES["postgres"], "pg-root", user="0", environment={"POSTGRES_PASSWORD": "x"},
                   entrypoint=["sh", "-c", "test ! -e /var/run/postgresql && test ! -e /run/postgresql"
                               " && exec docker-entrypoint.sh postgres"])
    wait_for("postgres (as root, no tmpfs)", lambda: pg_ready_as(c, "postgres"), timeout=120)
    assert exec_ok(c, ["stat", "-c", "%u", "/var/run/postgresql"]).strip() == "999"
    assert exec_ok(c, ["sh", "-c", "ps -o user= -p 1 2>/dev/null || stat -c %u /proc/1"]).strip() in ("postgres", "999")


def pg_ready_as(container, user: str) -> bool:
    container.reload()
    if container.status != "running":
        raise AssertionError(f"{container.name} is {container.status}: {container.logs().decode()[-1500:]}")
    return container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", user])[0] == 0


def test_redis_contract(env, redis_server):
    assert exec_ok(redis_server, ["id", "-u"]).strip() == "999"
    code, out = redis_server.exec_run(["redis-cli", "ping"])
    assert b"NOAUTH" in out, out
    # Through the network address, not loopback (the official image's protected-mode-off default).
    out = exec_ok(redis_server, ["redis-cli", "-h", env.name("redis"), "-a", REDIS_PASSWORD, "--no-auth-warning",
                                 "set", "smoke", "ok"])
    assert "OK" in out, out
    code, out = redis_server.exec_run(["redis-cli", "-h", env.name("redis"), "-a", "wrong", "--no-auth-warning", "ping"])
    assert b"WRONGPASS" in out or b"NOAUTH" in out, out
    assert redis_cli(redis_server, "get", "smoke") == "ok"
    files = wait_for("AOF files in /data", lambda: exec_ok(redis_server, ["sh", "-c", "ls -R /data"]), timeout=10)
    assert "appendonly.aof" in files, files


NGINX_CONF = """
worker_processes 1;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events { worker_connections 64; }
http {
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path /tmp/proxy_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    access_log /dev/stdout;
    gzip on;
    gzip_types application/json;
    limit_req_zone $binary_remote_addr zone=smoke:1m rate=50r/s;
    set_real_ip_from 10.0.0.0/8;
    real_ip_header X-Forwarded-For;
    server {
        listen 8080;
        location / { limit_req zone=smoke burst=20; add_header X-Berth smoke always; return 200 "nginx-ok\\n"; }
        location = /status { stub_status; }
    }
    server {
        listen 8443 ssl http2;
        ssl_certificate /etc/nginx/certs/tls.crt;
        ssl_certificate_key /etc/nginx/certs/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "nginx-tls-ok\\n"; }
    }
}
"""


def _self_signed_cert() -> tuple[bytes, bytes]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed on the host to make a test certificate (apt-get install openssl)"
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                        "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.crt"], check=True, capture_output=True)
        with open(f"{d}/tls.crt", "rb") as crt, open(f"{d}/tls.key", "rb") as key:
            return crt.read(), key.read()


def test_nginx_contract(env):
    crt, key = _self_signed_cert()
    c = env.create(
        IMAGES["nginx"], "nginx",
        files={"/etc/nginx": tar_of({"nginx.conf": (NGINX_CONF, 0o644)}),
               "/etc/nginx/certs": tar_of({"tls.crt": (crt, 0o644), "tls.key": (key, 0o644)})},
        user="101:101", read_only=True, tmpfs={"/tmp": ""}, cap_drop=["ALL"],
        ports={"8080/tcp": ("127.0.0.1",)},
    )
    port = host_port(c, "8080/tcp")
    status, body = wait_for("nginx on 127.0.0.1", lambda: (lambda r: r if r[0] == 200 else None)(
        http(f"http://127.0.0.1:{port}/")), timeout=30)
    assert body == "nginx-ok\n"
    assert exec_ok(c, ["id", "-u"]).strip() == "101"
    out = exec_ok(c, ["nginx", "-t", "-c", "/etc/nginx/nginx.conf"])
    assert "test is successful" in out, out
    assert "nginx-tls-ok" in exec_ok(c, ["curl", "-sk", "--http2", "https://127.0.0.1:8443/"])
    assert "Active connections" in exec_ok(c, ["curl", "-s", "http://127.0.0.1:8080/status"])
    c.reload()
    assert c.status == "running"


def test_testapp_contract(env, client, postgres, redis_server):
    for tag, version in (("testapp1", "1"), ("testapp2", "2")):
        img = client.images.get(IMAGES[tag])
        assert img.labels.get("version") == version
        assert f"APP_VERSION={version}" in img.attrs["Config"]["Env"]

    app_env = {"DATABASE_URL": pg_url(env), "DATABASE_REPLICA_URL": pg_url(env), "REDIS_URL": redis_url(env)}
    web = env.create(
        IMAGES["testapp2"], "web", environment=app_env, read_only=True, tmpfs={"/tmp": ""}, cap_drop=["ALL"],
        ports={"8000/tcp": ("127.0.0.1",)},
        healthcheck={"test": ["CMD", "healthcheck"], "interval": 5_000_000_000, "retries": 3},
    )
    worker = env.create(IMAGES["testapp2"], "worker", environment=app_env, read_only=True, tmpfs={"/tmp": ""},
                        command=["celery", "-A", "app.worker", "worker", "--concurrency", "2", "--loglevel", "info"])
    beat = env.create(IMAGES["testapp2"], "beat", environment=app_env, read_only=True, tmpfs={"/tmp": ""},
                      command=["celery", "-A", "app.worker", "beat", "--loglevel=info", "--schedule", "/tmp/beat"])
    base = f"http://127.0.0.1:{host_port(web, '8000/tcp')}"
    wait_for("testapp /health", lambda: http(f"{base}/health")[0] == 200, timeout=30)

    assert exec_ok(web, ["id", "-u"]).strip() == "10001"
    status, health = http_json(f"{base}/api/health")
    assert status == 200 and health["version"] == "2", health
    assert health["checks"] == {"database": "ok", "redis": "ok"}, health

    status, item = http_json(f"{base}/api/items", {"value": "hello-smoke"})
    assert status == 200 and item["value"] == "hello-smoke", item
    status, got = http_json(f"{base}/api/items/{item['id']}")
    assert status == 200 and got["value"] == "hello-smoke" and got["cached"] == "hello-smoke", got
    assert redis_cli(redis_server, "get", f"item:{item['id']}") == "hello-smoke"
    out = exec_ok(postgres, ["psql", "-U", PG_USER, "-d", PG_DB, "-Atc", f"SELECT value FROM items WHERE id={item['id']}"])
    assert out.strip() == "hello-smoke"
    status, form_item = http(f"{base}/api/items", b"value=from-form", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(form_item)["value"] == "from-form"
    status, rep = http_json(f"{base}/api/replica/items/{item['id']}")
    assert status == 200 and rep["value"] == "hello-smoke", rep
    assert http_json(f"{base}/api/items/999999")[0] == 404
    assert http_json(f"{base}/api/slow?ms=50")[0] == 200

    status, job = http_json(f"{base}/api/jobs", {})
    assert status == 200 and job["id"], job
    wait_for("worker to finish the job", lambda: http_json(f"{base}/api/jobs/{job['id']}")[1]["done"], timeout=30)
    last_beat = wait_for("a beat job", lambda: redis_cli(redis_server, "get", "beat:last"), timeout=30)
    assert last_beat.startswith("beat-")
    wait_for("worker to finish the beat job", lambda: redis_cli(redis_server, "exists", f"done:{last_beat}") == "1",
             timeout=30)
    # Retried briefly: under load Podman's container DNS (aardvark-dns) has answered a new process's
    # lookup of the Redis container with a temporary failure ("Temporary failure in name resolution"),
    # although the same worker had just consumed jobs from it.
    wait_for("celery inspect ping", lambda: exec_ok(worker, ["celery", "-A", "app.worker", "inspect", "ping"]) or True,
             timeout=30, interval=2)

    status, metrics = http(f"{base}/metrics")
    assert status == 200
    assert 'http_requests_total{method="POST",path="/api/items",status="200"}' in metrics, metrics
    assert "# TYPE http_request_duration_seconds histogram" in metrics
    assert 'http_request_duration_seconds_bucket{method="GET",path="/health",le="+Inf"}' in metrics

    # Podman runs no health checks by itself here: drive one and read the status over the API.
    podman = shutil.which("podman")
    assert podman, "podman CLI not on PATH"
    subprocess.run([podman, "healthcheck", "run", web.name], check=True, capture_output=True, timeout=60)
    web.reload()
    assert web.attrs["State"]["Health"]["Status"] == "healthy", web.attrs["State"].get("Health")
    for c in (web, worker, beat):
        c.reload()
        assert c.status == "running", (c.name, c.logs()[-2000:])


def test_backup_image(env, postgres):
    script = ("set -e; id -u; command -v pg_dump pg_restore psql gzip find bash supercronic;"
              "pg_dump --version; supercronic -test /etc/supercronic/crontab;"
              f"pg_dump -h {env.name('pg')} -U {PG_USER} -d {PG_DB} | gzip > /backups/smoke.sql.gz;"
              "test -s /backups/smoke.sql.gz; gzip -dc /backups/smoke.sql.gz | grep -c 'CREATE TABLE'")
    code, out = env.run_once(IMAGES["backup"], "backup", ["bash", "-c", script],
                             environment={"PGPASSWORD": PG_PASSWORD})
    assert code == 0, out
    assert out.splitlines()[0] == "10001", out
    assert "pg_dump (PostgreSQL) 15" in out and "/usr/local/bin/supercronic" in out, out


PROMETHEUS_CONF = """
global: {scrape_interval: 5s}
scrape_configs:
  - job_name: self
    static_configs: [{targets: ["localhost:9090"]}]
  - job_name: app
    metrics_path: /metrics
    static_configs: [{targets: ["web:8000"]}]
"""


def test_prometheus_image(env):
    conf = tar_of({"prometheus.yml": (PROMETHEUS_CONF, 0o644)})
    code, out = env.run_once(IMAGES["prometheus"], "promtool", ["check", "config", "/etc/prometheus/prometheus.yml"],
                             entrypoint=["promtool"], files={"/etc/prometheus": conf})
    assert code == 0 and "SUCCESS" in out, out
    c = env.create(IMAGES["prometheus"], "prometheus", files={"/etc/prometheus": conf},
                   ports={"9090/tcp": ("127.0.0.1",)})
    port = host_port(c, "9090/tcp")
    wait_for("prometheus /-/ready", lambda: http(f"http://127.0.0.1:{port}/-/ready")[0] == 200, timeout=60)
    assert exec_ok(c, ["id", "-u"]).strip() == "65534"


def test_busybox_wget_for_http_health_checks(env):
    """Like the official busybox-based images, these have wget: the stacks' CMD-SHELL HTTP checks run."""
    for key in ("prometheus", "postgres_exporter", "pushgateway"):
        code, out = env.run_once(IMAGES[key], f"wget-{key.replace('_', '-')}", ["-c", "command -v wget && wget --help 2>&1 | head -1"],
                                 entrypoint=["/bin/sh"], timeout=30)
        assert code == 0 and "BusyBox" in out, (key, out)


def test_pushgateway_image(env):
    """The stack's command: flags only (ENTRYPOINT pushgateway), uid 65534, /-/healthy through wget
    (the stack's health check), a pushed metric is served and persisted to the file."""
    c = env.create(IMAGES["pushgateway"], "pushgateway",
                   command=["--persistence.file=/pushgateway/pushgateway.db", "--persistence.interval=1s",
                            "--web.listen-address=:9091"],
                   ports={"9091/tcp": ("127.0.0.1",)})
    base = f"http://127.0.0.1:{host_port(c, '9091/tcp')}"
    wait_for("pushgateway /-/healthy", lambda: http(f"{base}/-/healthy")[0] == 200, timeout=60)
    exec_ok(c, ["sh", "-c", "wget -q -O /dev/null http://127.0.0.1:9091/-/healthy"])
    assert exec_ok(c, ["id", "-u"]).strip() == "65534"
    status, body = http(f"{base}/metrics/job/berth_backup/instance/db", data=b"berth_backup_last_success 42\n",
                        headers={"Content-Type": "text/plain"})
    assert status in (200, 202), (status, body)
    assert "berth_backup_last_success" in http(f"{base}/metrics")[1]
    wait_for("persistence file", lambda: c.exec_run(["test", "-s", "/pushgateway/pushgateway.db"])[0] == 0, timeout=30)


def test_exporters(env, postgres, redis_server):
    pg_exp = env.create(IMAGES["postgres_exporter"], "pg-exporter",
                        environment={"DATA_SOURCE_NAME": pg_url(env) + "?sslmode=disable"},
                        ports={"9187/tcp": ("127.0.0.1",)})
    redis_exp = env.create(IMAGES["redis_exporter"], "redis-exporter",
                           environment={"REDIS_ADDR": f"redis://{env.name('redis')}:6379",
                                        "REDIS_PASSWORD": REDIS_PASSWORD},
                           ports={"9121/tcp": ("127.0.0.1",)})
    for c, port, line in ((pg_exp, "9187/tcp", "pg_up 1"), (redis_exp, "9121/tcp", "redis_up 1")):
        url = f"http://127.0.0.1:{host_port(c, port)}/metrics"
        wait_for(f"{line} from {c.name}", lambda: line in http(url)[1], timeout=60)
        c.reload()
        assert c.attrs["Config"]["User"] not in ("", "0", "root", "0:0")


GRAFANA_DS = """
apiVersion: 1
datasources:
  - name: Prometheus
    type: prometheus
    url: http://prometheus:9090
    isDefault: true
"""
GRAFANA_PROVIDERS = """
apiVersion: 1
providers:
  - name: berth
    type: file
    options: {path: /etc/grafana/dashboards}
"""


def test_grafana_standin(env, client):
    assert client.images.get(IMAGES["grafana"]).labels.get("berth.standin") == "grafana"
    c = env.create(
        IMAGES["grafana"], "grafana",
        files={"/etc/grafana/provisioning": tar_of({"datasources/ds.yaml": (GRAFANA_DS, 0o644),
                                                    "dashboards/providers.yaml": (GRAFANA_PROVIDERS, 0o644)}),
               "/etc/grafana/dashboards": tar_of({"app.json": ('{"title": "App", "uid": "app", "panels": []}', 0o644)})},
        ports={"3000/tcp": ("127.0.0.1",)},
    )
    base = f"http://127.0.0.1:{host_port(c, '3000/tcp')}"
    status, body = wait_for("grafana stand-in /api/health", lambda: (lambda r: r if r[0] == 200 else None)(
        http_json(f"{base}/api/health")), timeout=30)
    assert body["database"] == "ok"
    assert [d["uid"] for d in http_json(f"{base}/api/search")[1]] == ["app"]

    code, out = env.run_once(IMAGES["grafana"], "grafana-bad", None, timeout=30,
                             files={"/etc/grafana/dashboards": tar_of({"broken.json": ("{not json", 0o644)})})
    assert code == 1 and "broken.json" in out, out
