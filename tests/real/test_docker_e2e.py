"""The dev stack, run for real on a Docker API (Podman here), from exactly what the program declares.

CI (`.ci/run`) starts Podman (`bash .ci/podman.sh start` → DOCKER_HOST) and builds the local test
images (`bash tests/images/build.sh`) before pytest. Nothing here starts or skips anything: without
DOCKER_HOST every test fails and says how to start it.

The stack is the repo's Pulumi.dev.yaml with only image settings and proxy ports changed
(tests/real/stacks/realdev.py), recorded with the real program (`berth.record`) and applied by
tests/real/docker_applier.py. The scenarios run in file order and share the deployment:
a apply → healthy, HTTPS → app → Postgres + Redis, redirect, rate limit, worker job
b apply unchanged → nothing recreated
c app image tag + one env value → only app containers recreated, data kept
d Postgres image tag bump → database container replaced, volume and row kept
e backup job → dump in the backup volume, retention; restore into a fresh database
g destroy → nothing of the stack left; a prod-like stack keeps its protected volumes
Everything of the stack (containers, networks, volumes) is removed at the end.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from berth.record import Recording, record

sys.path.insert(0, str(Path(__file__).resolve().parent / "stacks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdev  # noqa: E402
from docker_applier import ApplyReport, DockerApplier, force_cleanup, stack_leftovers  # noqa: E402

pytestmark = pytest.mark.real_docker

STACK = realdev.STACK
PREFIX = f"berth-{STACK}"
APP_CONTAINERS = {f"{PREFIX}-api", f"{PREFIX}-worker-1", f"{PREFIX}-worker-2", f"{PREFIX}-beat"}
PROXY_CONTAINER = f"{PREFIX}-proxy"
PG_TAG_B = "localhost/berth-postgres:15-tagbump"


def log(msg: str) -> None:
    print(msg, flush=True)
    sys.__stderr__.write(msg + "\n")


@dataclass
class Env:
    client: Any
    applier: DockerApplier
    project: Path
    config: dict[str, Any]
    http_port: int
    https_port: int
    reports: dict[str, ApplyReport] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def write(self, config: dict[str, Any]) -> None:
        (self.project / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=True))
        self.config = config

    def record(self) -> Recording:
        return record(STACK, project_dir=self.project)

    def apply(self, label: str) -> ApplyReport:
        rep = self.applier.apply(self.record())
        self.reports[label] = rep
        log(f"\n[{label}] {rep.summary()}")
        return rep

    def url(self, path: str, https: bool = True) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}" if https else f"http://127.0.0.1:{self.http_port}{path}"


def docker_host_or_fail() -> None:
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail(
            "DOCKER_HOST is not set: start Podman's Docker API first:\n"
            "  bash .ci/podman.sh install && eval \"$(bash .ci/podman.sh start)\" && export DOCKER_HOST\n"
            "  bash tests/images/build.sh"
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    docker_host_or_fail()
    import docker

    client = docker.from_env(timeout=300)
    client.ping()
    force_cleanup(client, PREFIX)  # a previous interrupted run
    tmp = tmp_path_factory.mktemp("realdev")
    project = tmp / "project"
    http_port, https_port = realdev.free_port(), realdev.free_port()
    config = realdev.write_project(project, http_port, https_port)
    applier = DockerApplier(tmp / "state" / "applier-state.json", client=client, log=log)
    e = Env(client, applier, project, config, http_port, https_port)
    yield e
    try:
        applier.destroy(keep_protected=False)
    finally:
        force_cleanup(client, PREFIX)
        force_cleanup(client, f"berth-{STACK}prod")
        try:
            client.images.remove(PG_TAG_B)
        except Exception:  # noqa: BLE001
            pass
        left = stack_leftovers(client, PREFIX)
        assert not any(left.values()), f"left behind: {left}"


@pytest.fixture(autouse=True)
def _stop_after_failure(request, env):
    """Scenarios build on each other: after one fails, the later ones fail fast and say so."""
    baseline = env.facts.setdefault("failed_before", request.session.testsfailed)
    if request.session.testsfailed > baseline and not request.node.name.startswith("test_zz"):
        pytest.fail("an earlier scenario of this module failed; see it first")


# ---------------------------------------------------------------- HTTP helpers

_CTX = ssl.create_default_context()
_CTX.check_hostname = False
_CTX.verify_mode = ssl.CERT_NONE  # the stack's self-signed certificate (checked separately below)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


_OPENER = urllib.request.build_opener(urllib.request.HTTPSHandler(context=_CTX), _NoRedirect)


def http(method: str, url: str, body: Optional[dict] = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                          "Host": "easyflow.localhost"})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_json(method: str, url: str, body: Optional[dict] = None) -> dict:
    status, _, raw = http(method, url, body)
    assert status == 200, f"{method} {url} → {status}: {raw[:500]!r}"
    return json.loads(raw)


def wait_http(url: str, timeout: float = 60) -> None:
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


def exec_in(env: Env, container: str, cmd: list[str], user: Optional[str] = None) -> str:
    c = env.client.containers.get(container)
    code, out = c.exec_run(cmd, user=user or "")
    text = out.decode(errors="replace")
    assert code == 0, f"{container}: {cmd} exited {code}: {text}"
    return text


def psql(env: Env, sql: str) -> str:
    db = env.config["berth:databases"]["db"]
    return exec_in(env, f"{PREFIX}-db", ["psql", "-U", db["user"], "-d", db["database"], "-h", "127.0.0.1",
                                        "-tAc", sql]).strip()


def redis_get(env: Env, key: str) -> str:
    pw = env.applier.value_of("<<berth:password:redis-password>>")
    return exec_in(env, f"{PREFIX}-redis", ["redis-cli", "--no-auth-warning", "-a", pw, "GET", key]).strip()


def container_ids(env: Env) -> dict[str, str]:
    return {c.name: c.id for c in env.client.containers.list(all=True, filters={"label": f"berth.stack={PREFIX}"})}


# ---------------------------------------------------------------- a: apply → healthy, traffic


def test_a_apply_dev_stack_all_healthy(env):
    t0 = time.monotonic()
    rep = env.apply("a: first apply")
    env.facts["apply_seconds"] = round(time.monotonic() - t0, 1)
    rec = env.record()
    long_running = [r.inputs["name"] for r in rec.by_type("docker:index/container:Container")
                    if r.inputs.get("mustRun", True) and r.inputs.get("restart") != "no"]
    assert long_running, "no containers declared"
    problems = []
    for name in long_running:
        c = env.client.containers.get(name)
        health = (c.attrs["State"].get("Health") or {}).get("Status")
        if c.status != "running":
            problems.append(f"{name}: {c.status}")
        elif c.attrs["Config"].get("Healthcheck") and health != "healthy":
            if env.applier.run_healthcheck(name) != "healthy":
                problems.append(f"{name}: health {health}")
    assert not problems, problems
    log(f"[a] apply to all-healthy: {env.facts['apply_seconds']}s for {len(long_running)} containers")
    assert set(rep.created) >= set(long_running)


def test_a_https_reaches_app_which_writes_postgres_and_redis(env):
    wait_http(env.url("/health"))
    value = f"berth-e2e-{uuid.uuid4().hex[:8]}"
    item = http_json("POST", env.url("/api/items"), {"value": value})
    assert item["value"] == value
    got = http_json("GET", env.url(f"/api/items/{item['id']}"))
    assert got["value"] == value and got["cached"] == value
    assert psql(env, f"SELECT value FROM items WHERE id = {int(item['id'])}") == value
    assert redis_get(env, f"item:{item['id']}") == value
    env.facts["item"] = item
    # The certificate served is the one the stack generated (self-signed, for the stack's domain).
    pem = ssl.get_server_certificate(("127.0.0.1", env.https_port))
    assert pem.strip() == env.applier.value_of("<<berth:tls-cert:proxy-tls-cert>>").strip()


def test_a_http_redirects_to_https(env):
    status, headers, _ = http("GET", env.url("/api/items/1", https=False))
    assert status in (301, 302, 307, 308), status
    location = headers.get("Location") or headers.get("location")
    assert location and location.startswith("https://"), location


def test_a_rate_limit_gives_429(env):
    import concurrent.futures

    item = env.facts["item"]
    # Concurrent: one at a time, each request (TLS handshake + app + Postgres + Redis) takes longer than
    # the 100 ms that 10 r/s allows here, so a sequential burst never goes over the limit.
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: http("GET", env.url(f"/api/items/{item['id']}"))[0], range(60)))
    secs = time.monotonic() - t0
    counts = {s: statuses.count(s) for s in set(statuses)}
    log(f"[a] burst of 60 GETs on /api/ (30 at a time, {secs:.1f}s): {counts}")
    assert counts.get(429, 0) > 0, counts
    assert counts.get(200, 0) >= 10, counts
    time.sleep(3)  # let the bucket refill for later scenarios


def test_a_worker_runs_jobs(env):
    job = http_json("POST", env.url("/api/jobs"), {"task": "e2e"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = http_json("GET", env.url(f"/api/jobs/{job['id']}"))
        if status["done"]:
            return
        time.sleep(1)
    raise AssertionError(f"job {job['id']} not done by a worker in 60s")


def test_a_uploads_as_the_provider_sends_them_are_accepted_by_docker(env):
    """pulumi-docker (terraform-provider-docker) sends each upload as a tar with one entry named by the
    file's absolute path, extracted at ``/`` of the created container before it starts. Docker refuses
    that for a read-only root ("container rootfs is marked read-only"), so every container that receives
    files must have a writable root; the applier uploads exactly like the provider (and refuses what
    Docker refuses). Each file must be what the container sees at that path."""
    import hashlib

    from docker_applier import upload_content

    rec = env.record()
    # Inputs as applied: generated values (certificate, key, passwords) in place of their placeholders.
    with_uploads = [env.applier.substitute(r.inputs) for r in rec.by_type("docker:index/container:Container")
                    if r.inputs.get("uploads")]
    assert with_uploads, "no container of the dev stack receives generated files"
    problems = []
    for i in with_uploads:
        name = i["name"]
        c = env.client.containers.get(name)
        if i.get("readOnly") or c.attrs["HostConfig"].get("ReadonlyRootfs"):
            problems.append(f"{name}: read-only root (Docker refuses the provider's uploads at '/')")
            continue
        for u in i["uploads"]:
            want = hashlib.sha256(upload_content(u)).hexdigest()
            if c.status == "running":
                code, out = c.exec_run(["sha256sum", u["file"]])
                got = out.decode(errors="replace").split()[0] if code == 0 and out else f"exit {code}: {out!r}"
            else:  # a finished one-shot container: read the file from its filesystem as it sees it
                import tarfile as _tar
                import io as _io
                stream, _ = c.get_archive(u["file"])
                with _tar.open(fileobj=_io.BytesIO(b"".join(stream))) as t:
                    got = hashlib.sha256(t.extractfile(t.getmembers()[0]).read()).hexdigest()
            if got != want:
                problems.append(f"{name}: {u['file']} is not the uploaded content ({got})")
    log(f"[a] uploads checked in {len(with_uploads)} containers: "
        + ", ".join(f"{i['name']} ({len(i['uploads'])})" for i in with_uploads))
    assert not problems, problems


# ---------------------------------------------------------------- b: unchanged


def test_b_second_apply_recreates_nothing(env):
    before = container_ids(env)
    rep = env.apply("b: apply unchanged")
    env.facts["second_apply_seconds"] = rep.seconds
    assert rep.containers_changed == [], rep.containers_changed
    assert rep.removed == []
    assert container_ids(env) == before


# ---------------------------------------------------------------- c: app image + env


def api_addresses(env: Env) -> dict[str, str]:
    nets = env.client.containers.get(f"{PREFIX}-api").attrs["NetworkSettings"]["Networks"]
    return {n: v.get("IPAddress") for n, v in sorted(nets.items())}


def test_c_app_image_and_env_change_recreates_app_containers_and_proxy(env):
    before = container_ids(env)
    ips_before = api_addresses(env)
    cfg = json.loads(json.dumps(env.config))
    for svc in cfg["berth:services"].values():
        svc["image"] = "localhost/berth-testapp:2"
    cfg["berth:services"]["api"]["env"]["LOG_LEVEL"] = "debug"
    env.write(cfg)
    rep = env.apply("c: testapp:1 → :2, LOG_LEVEL=debug")
    env.facts["image_change_apply_seconds"] = rep.seconds
    # The app containers (api, worker-1, worker-2, beat) AND the proxy are recreated, nothing else (db,
    # redis, exporters, prometheus, grafana, backup, pushgateway keep their containers). The proxy is
    # recreated because it routes to api: nginx (Debian's 1.22 here; realdev sets berth:proxy.resolver
    # null) resolves upstream names once, at start, and a replaced api comes back with a new address.
    # The proxy carries a `berth.upstream-revision` label hashing its routed containers' declared
    # inputs, so replacing api changes the proxy's inputs too; it depends on api, so it is replaced after.
    expected = APP_CONTAINERS | {PROXY_CONTAINER}
    assert set(rep.recreated) == expected, rep.recreated
    assert rep.created == []
    after = container_ids(env)
    unchanged = {n for n in before if n not in expected}
    assert {n: after.get(n) for n in unchanged} == {n: before[n] for n in unchanged}
    proxy_t, api_t = rep.timings[PROXY_CONTAINER], rep.timings[f"{PREFIX}-api"]
    assert proxy_t.start >= api_t.running_at, "proxy replaced before the new api was running"
    ips_after = api_addresses(env)
    log(f"[c] api addresses before {ips_before}, after {ips_after} "
        f"({'same' if ips_before == ips_after else 'CHANGED'}); proxy recreated after api")
    env.facts["api_ips"] = (ips_before, ips_after)
    wait_http(env.url("/health"))
    assert http_json("GET", env.url("/api/version"))["version"] == "2"
    item = env.facts["item"]
    assert http_json("GET", env.url(f"/api/items/{item['id']}"))["value"] == item["value"]


# ---------------------------------------------------------------- d: postgres tag bump


def test_d_postgres_tag_bump_replaces_db_keeps_volume_and_row(env):
    # Repository and tag passed apart: Podman's compat API refuses a repo that carries its own tag
    # ("normalizing name for compat API: invalid reference format").
    repo, tag = PG_TAG_B.rsplit(":", 1)
    assert env.client.images.get(realdev.IMAGES["postgres"]).tag(repo, tag)
    volume_before = env.client.volumes.get(f"{PREFIX}-db-data").attrs.get("CreatedAt")
    cfg = json.loads(json.dumps(env.config))
    cfg["berth:databases"]["db"]["image"] = PG_TAG_B
    env.write(cfg)
    rep = env.apply("d: postgres tag bump")
    assert f"{PREFIX}-db" in rep.recreated, rep.recreated
    assert env.client.volumes.get(f"{PREFIX}-db-data").attrs.get("CreatedAt") == volume_before
    item = env.facts["item"]
    assert psql(env, f"SELECT value FROM items WHERE id = {int(item['id'])}") == item["value"]
    wait_http(env.url(f"/api/items/{item['id']}"))


# ---------------------------------------------------------------- e: backup + restore


def test_e_backup_dump_retention_and_restore_into_fresh_database(env):
    backup = f"{PREFIX}-db-backup"
    tier = env.config["berth:backups"]["db"]["tiers"][0]
    name, keep = tier["name"], int(tier["keep"])
    db_name = env.config["berth:databases"]["db"]["database"]
    # Older dated dumps of this tier: retention must keep only the newest `keep` files.
    exec_in(env, backup, ["sh", "-c", f"mkdir -p /backups/{name} && for d in 01 02 03 04 05 06 07 08 09 10; do "
                                      f"f=/backups/{name}/{db_name}-202601${{d}}T020000Z.dump; echo old > $f; "
                                      f"touch -d 2026-01-$d $f; done"])
    out = exec_in(env, backup, ["bash", "/berth/backup.sh", name, str(keep)])
    log(f"[e] backup: {out.strip()[-300:]}")
    files = exec_in(env, backup, ["sh", "-c", f"ls -1t /backups/{name}/"]).split()
    assert len(files) == keep, files
    newest = files[0]
    assert newest.startswith(db_name) and "202601" not in newest, files
    size = int(exec_in(env, backup, ["stat", "-c", "%s", f"/backups/{name}/{newest}"]))
    assert size > 100, f"dump {newest} is {size} bytes"
    # Lose the database (container and volume), then restore into the fresh one.
    for c in (f"{PREFIX}-db",):
        env.client.containers.get(c).remove(force=True)
    env.client.volumes.get(f"{PREFIX}-db-data").remove(force=True)
    cfg = json.loads(json.dumps(env.config))
    cfg["berth:backups"]["db"]["restore_from"] = f"{name}/{newest}"
    env.write(cfg)
    env.apply("e: fresh database + restore job")
    restore = env.client.containers.get(f"{PREFIX}-db-restore")
    result = restore.wait(timeout=180)
    logs = restore.logs().decode(errors="replace")
    assert result["StatusCode"] == 0, logs
    item = env.facts["item"]
    assert psql(env, f"SELECT value FROM items WHERE id = {int(item['id'])}") == item["value"]


# ---------------------------------------------------------------- f: monitoring


def _json_in(env: Env, container: str, url: str) -> Any:
    """GET a container-local URL from inside the container (nothing of it is published)."""
    return json.loads(exec_in(env, container, ["wget", "-q", "-O", "-", url]))


def test_f_prometheus_scrapes_app_exporters_and_pushgateway(env):
    rec = env.record()
    prom = f"{PREFIX}-prometheus"
    deadline = time.monotonic() + 90  # scrape interval 15 s; a target is "up" after its first scrape
    while True:
        targets = _json_in(env, prom, "http://127.0.0.1:9090/api/v1/targets?state=active")["data"]["activeTargets"]
        health = {t["labels"].get("job"): t["health"] for t in targets}
        if health and all(h == "up" for h in health.values()) or time.monotonic() > deadline:
            break
        time.sleep(3)
    log(f"[f] prometheus targets: {health}")
    errors = {t["labels"].get("job"): t.get("lastError") for t in targets if t["health"] != "up"}
    assert not errors, errors
    jobs = set(health)
    assert {"api", "db-exporter", "redis-exporter", "pushgateway", "prometheus"} <= jobs, jobs
    # The alert rules the stack generated were loaded.
    groups = _json_in(env, prom, "http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    assert groups and all(g["rules"] for g in groups), groups
    assert rec.by_type("docker:index/container:Container")


def test_f_grafana_standin_health_and_provisioned_datasource(env):
    graf = f"{PREFIX}-grafana"
    c = env.client.containers.get(graf)
    assert env.applier.run_healthcheck(graf) == "healthy"
    code, out = c.exec_run(["python3", "-c", "import urllib.request,sys;"
                            "[sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:3000'+p, timeout=5).read().decode()+'\\n')"
                            " for p in ('/api/health', '/api/datasources', '/api/search')]"])
    text = out.decode(errors="replace")
    assert code == 0, text
    # Blank lines skipped: the stand-in ends each body with a newline, and the script adds one too.
    health, datasources, dashboards = (json.loads(line) for line in text.splitlines() if line.strip())
    assert health["database"] == "ok"
    assert [d.get("url") for d in datasources] == ["http://prometheus:9090"], datasources
    assert dashboards, "the provisioned dashboard was not found"


# ---------------------------------------------------------------- g: destroy


def test_g_destroy_leaves_nothing_of_the_dev_stack(env):
    rep = env.applier.destroy()
    log(f"\n[g] destroy: removed {len(rep.removed)}, kept {rep.kept}")
    left = stack_leftovers(env.client, PREFIX)
    assert not any(left.values()), left


def test_g_prod_like_destroy_keeps_protected_volumes(env, tmp_path):
    import docker  # noqa: F401

    cfg = json.loads(json.dumps(env.config))
    for b in (cfg.get("berth:backups") or {}).values():
        b.pop("restore_from", None)
    cfg["berth:environment"] = "prod"
    cfg["berth:name"] = f"berth-{STACK}prod"
    cfg["berth:proxy"]["http_port"], cfg["berth:proxy"]["https_port"] = realdev.free_port(), realdev.free_port()
    env.write(cfg)
    applier = DockerApplier(tmp_path / "prod-state.json", client=env.client, log=log)
    rec = env.record()
    protected = sorted(r.inputs["name"] for r in rec.by_type("docker:index/volume:Volume") if r.protect)
    assert protected, "a prod stack protects its data volumes"
    try:
        rep = applier.apply(rec)
        log(f"\n[g] prod-like apply: {rep.summary()}")
        rep = applier.destroy()
        left = stack_leftovers(env.client, f"berth-{STACK}prod")
        assert left["containers"] == [] and left["networks"] == [], left
        assert sorted(left["volumes"]) == protected, left
    finally:
        force_cleanup(env.client, f"berth-{STACK}prod")


def test_zz_report(env):
    """Timings for the issue's note (printed; -s or -rA shows them)."""
    lines = [f"apply to healthy: {env.facts.get('apply_seconds')}s; second apply: {env.facts.get('second_apply_seconds')}s; "
             f"image change apply (c): {env.facts.get('image_change_apply_seconds')}s"]
    first = env.reports.get("a: first apply")
    if first:
        for t in sorted(first.timings.values(), key=lambda t: t.health_seconds or 0):
            state = "running (no health check)" if t.health_seconds is None else f"healthy after {t.health_seconds}s"
            lines.append(f"  {t.name:<32} {t.action:<9} {state}")
    log("\n".join(lines))
