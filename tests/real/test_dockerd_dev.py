"""The dev stack on Docker Engine (dockerd 20.10, ``.ci/dockerd.sh``) through the real ``pulumi`` CLI,
and the faults a Docker host meets, each with what must hold afterwards.

The stack is the repository's ``Pulumi.dev.yaml`` with what ``tests/real/stacks/realdev.py`` changes
(test images, free loopback ports, nginx's resolver) and ``berth:docker.engine: docker``. What this
module compresses, and why: the backup tier runs every minute and alerts 30 s late
(``alert_after``), or the backup alert would take a day and an hour to fire; and the backup volume is
a 2 MiB filesystem that is full before the first dump (a tmpfs the test mounts on this machine over
the volume's directory before the stack starts; the stack adopts the volume, which has the name and
labels Berth gives it). Nothing else differs from dev. dockerd runs health checks itself: no
health-check loop runs for this engine.

Scenarios, in file order, on one deployment (each fault's recovery time is printed and reported):
a `up` → every container healthy; HTTPS → app → Postgres + Redis; HTTP → HTTPS redirect; worker;
  `preview --expect-no-changes` after `up` and after `refresh`; docker-bench-security's section 5
  finds nothing that tests/checkers/accepted-findings.yaml does not list with its reason
b the backup volume full: the scheduled dump fails and so does one run by hand (non-zero, "No space
  left on device"), BackupMissing fires in the running Prometheus, the database keeps serving
c `pulumi up` of an update (app image 1 → 2) interrupted by SIGINT, then by SIGKILL of the CLI, in
  the middle of replacing the app containers: README's recovery brings the stack to no changes, with
  no container the state does not know, and the rows written before are there
d each long-running container crashes (its main process killed): back and healthy by its restart
  policy; the database's tmpfs (a path the test image lacks) is still writable by postgres
e the database killed under app traffic: it comes back, the app recovers by itself, every
  acknowledged write is there
f dockerd restarted (what a reboot does): every container back and healthy, data intact,
  `preview --refresh --expect-no-changes` clean
g `destroy`: nothing of the stack is left, anonymous volumes included
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.real.pulumi_cli import EngineMissing, Pulumi, Result, write_project, write_stack_config
from tests.real.stacks import seeds

sys.path.insert(0, str(Path(__file__).resolve().parent / "stacks"))
import realdev  # noqa: E402

pytestmark = pytest.mark.real_docker

ROOT = Path(__file__).resolve().parents[2]
STACK = "dockerdev"
PREFIX = f"berth-{STACK}"
APPS = ("api", "worker-1", "worker-2", "beat")
BACKUP_FS_SIZE = "2m"
TIMES: dict[str, float] = {}
FULL: dict[str, str] = {}  # the mount point of the full filesystem under the backup volume


def log(msg: str) -> None:
    print(msg, flush=True)


def dev_config(http_port: int, https_port: int) -> dict[str, Any]:
    cfg = realdev.realdev_config(realdev.load_dev_config(), http_port, https_port, engine="docker")
    cfg["berth:docker"]["host"] = seeds.docker_host_or_fail("docker")
    backup = cfg["berth:backups"]["db"]
    backup["tiers"] = [{"name": "minutely", "schedule": "* * * * *", "keep": 3}]
    backup["alert_after"] = "30s"
    return cfg


def volume_dir(client, name: str) -> str:
    return client.volumes.get(name).attrs["Mountpoint"]


def mount_full_backup_volume(client, prefix: str) -> str:
    """The backup volume, created as Berth creates it (same name and labels), on a small filesystem of
    this machine that is already full. Returns the mount point (unmounted by the fixture)."""
    name = f"{prefix}-db-backups"
    client.volumes.create(name=name, driver="local",
                          labels={"berth.stack": prefix, "berth.workload": "db-backup"})
    path = volume_dir(client, name)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={BACKUP_FS_SIZE},mode=0755,uid=10001,gid=10001",
                    "berth-full-backups", path], check=True)
    # Full: one file takes every block (the backup user could not even create a directory after it).
    with open(os.path.join(path, "filler"), "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return path


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    host = seeds.docker_host_or_fail("docker")
    client = seeds.docker_client(host)
    tmp = tmp_path_factory.mktemp("dockerd-dev")
    project = write_project(tmp / "project", "berth")
    cfg = dev_config(realdev.free_port(), realdev.free_port())
    seeds.force_cleanup(client, PREFIX)
    write_stack_config(project, STACK, cfg)
    try:
        p = Pulumi(project, STACK, tmp / "state", log=log)
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    p.init()
    d = seeds.Deployment(client, p, project, STACK, cfg, PREFIX)
    FULL["mount"] = mount_full_backup_volume(client, PREFIX)
    yield d
    try:
        subprocess.run(["umount", FULL["mount"]], check=False)
        d.destroy_all()
    finally:
        seeds.force_cleanup(client, PREFIX)
        log(f"docker engine dev timings (s): {json.dumps(d.timings)}")
        log(f"docker engine fault recovery (s): {json.dumps(TIMES)}")


_BASELINE: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _stop_after_failure(request, dep):
    """Scenarios build on each other: after one fails, the later ones fail fast and say so."""
    base = _BASELINE.setdefault("failed", request.session.testsfailed)
    if request.session.testsfailed > base and not request.node.name.startswith("test_z"):
        pytest.fail("an earlier scenario of this module failed; see it first")


# ---------------------------------------------------------------- helpers


def psql(d: seeds.Deployment, sql: str) -> str:
    db = d.config["berth:databases"]["db"]
    return d.exec("db", ["psql", "-U", db["user"], "-d", db["database"], "-h", "/var/run/postgresql",
                         "-tAc", sql]).strip()


def write_item(d: seeds.Deployment, value: str) -> int:
    return int(seeds.http_json("POST", d.url("/api/items"), {"value": value})["id"])


def long_running(d: seeds.Deployment) -> list:
    return [c for c in d.containers() if (c.attrs["HostConfig"].get("RestartPolicy") or {}).get("Name") != "no"]


def wait_healthy(d: seeds.Deployment, what: str, timeout: float = 180) -> float:
    """Seconds until every long-running container runs (and is healthy where it has a check)."""
    t0 = time.monotonic()
    seeds.wait_until(what, lambda: not d.unhealthy() and len(long_running(d)) >= 10, timeout, interval=1)
    return round(time.monotonic() - t0, 1)


def state_containers(d: seeds.Deployment) -> dict[str, str]:
    return {r["outputs"]["name"]: r["id"] for r in d.pulumi.resources()
            if r["type"] == "docker:index/container:Container" and r.get("outputs")}


def assert_containers_are_the_states(d: seeds.Deployment) -> None:
    """No duplicates and no orphans: the stack's containers on the host are exactly the state's."""
    on_host = {c.name: c.id for c in d.containers()}
    assert on_host == state_containers(d), {"host only": sorted(set(on_host) - set(state_containers(d)))}


def descendants(pid: int) -> list[int]:
    """Processes started (directly or not) by ``pid``: the CLI's plugins and the language host."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def up_interrupted(p: Pulumi, sig: int, started: Callable[[], bool], timeout: float = 600) -> Result:
    """``pulumi up`` as the user runs it, sent ``sig`` once ``started()`` says the update is under way.
    After SIGKILL the CLI's plugins are orphans: they are ended by PID (they were started by this test)."""
    argv = [p.binary, "up", "--yes", "--skip-preview", "--color", "never", "--suppress-progress",
            "--non-interactive", "--stack", p.stack]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=p.project_dir, env=p.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        seeds.wait_until("the update under way", lambda: started() or proc.poll() is not None, timeout, 0.2)
        assert proc.poll() is None, f"pulumi up ended before the interruption:\n{proc.communicate()[0][-3000:]}"
        kids = descendants(proc.pid)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
        if sig == signal.SIGKILL:
            time.sleep(2)
            for pid in kids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res = Result(argv[1:], proc.returncode, out, err, time.monotonic() - t0)
    p.history.append(res)
    log(f"pulumi up interrupted by {signal.Signals(sig).name} -> {res.returncode} after {res.seconds:.1f}s")
    return res


def recover(p: Pulumi, sig: int) -> list[Result]:
    """README, "Recovering an interrupted `pulumi up`": after one Ctrl-C, `pulumi up`; after a killed
    CLI, `berth recover`, then `pulumi up`."""
    if sig == signal.SIGINT:
        return [p.up()]
    done = []
    res = subprocess.run([str(ROOT / ".venv" / "bin" / "berth"), "recover", "-s", p.stack],
                         cwd=p.project_dir, env=p.env(), capture_output=True, text=True, timeout=600)
    done.append(Result(["berth", "recover"], res.returncode, res.stdout, res.stderr, 0))
    assert res.returncode == 0, f"berth recover exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    log(res.stdout[-2000:])
    done.append(p.up())
    return done


# ---------------------------------------------------------------- a: up, traffic, read-back


def test_a_up_every_container_healthy_without_a_health_check_loop(dep):
    dep.timed("pulumi up", dep.pulumi.up)
    assert not dep.unhealthy(), dep.unhealthy()
    with_checks = [c.name for c in long_running(dep) if c.attrs["Config"].get("Healthcheck")]
    assert len(with_checks) >= 7, with_checks  # dockerd ran them: pulumi-docker waited for each to be healthy
    version = dep.client.version()
    assert "Podman" not in json.dumps(version.get("Components", [])), version
    log(f"docker engine {version['Version']} (API {version['ApiVersion']})")


def test_a_https_app_postgres_redis_redirect_and_worker(dep):
    seeds.wait_http(dep.url("/health"))
    value = f"dockerd-{uuid.uuid4().hex[:8]}"
    item = seeds.http_json("POST", dep.url("/api/items"), {"value": value})
    got = seeds.http_json("GET", dep.url(f"/api/items/{item['id']}"))
    assert got["value"] == value and got["cached"] == value
    assert psql(dep, f"SELECT value FROM items WHERE id = {int(item['id'])}") == value
    status, _ = seeds.http("GET", dep.url("/api/items/1").replace("https://", "http://").replace(
        str(dep.config["berth:proxy"]["https_port"]), str(dep.config["berth:proxy"]["http_port"])))
    assert status in (301, 302, 307, 308), status
    job = seeds.http_json("POST", dep.url("/api/jobs"), {"task": "dockerd"})
    seeds.wait_until("a worker ran the job", lambda: seeds.http_json("GET", dep.url(f"/api/jobs/{job['id']}"))["done"], 60)


def read_back(p: Pulumi) -> dict[str, Any]:
    """What the engine read back, beside what was declared, for the fields Berth ignores after creation
    (components/targets/docker.py: CREATE_ONLY, NETWORK_READ_BACK)."""
    out: dict[str, Any] = {}
    for r in p.resources():
        if r["type"] == "docker:index/container:Container" and r.get("outputs"):
            for f in ("tmpfs", "logOpts"):
                # None and {} are both "none declared" / "none read back"
                out[f"{r['outputs']['name']} {f}"] = ((r.get("inputs") or {}).get(f) or None, r["outputs"].get(f) or None)
        elif r["type"] == "docker:index/network:Network" and r.get("outputs"):
            out[f"{r['outputs']['name']} ipamDriver"] = ("default", r["outputs"].get("ipamDriver"))
    return out


def test_a_preview_no_changes_after_up_and_after_refresh(dep):
    dep.no_changes_after_up_and_refresh()
    # Docker Engine reads back as declared what Podman does not (test_docker_dev.py shows Podman's).
    differ = {k: v for k, v in read_back(dep.pulumi).items() if v[0] != v[1]}
    assert not differ, differ


def test_a_docker_bench_security_finds_nothing_new(dep):
    """Docker's own CIS checker (docker-bench-security, section 5: container runtime) over the stack's
    running containers on Docker Engine: every finding is fixed, or accepted with its reason in
    tests/checkers/accepted-findings.yaml; a new one fails, and so does an accepted one that is gone."""
    TIMES["docker-bench-security section 5"] = seeds.docker_bench_finds_nothing_new(dep, stale_fails=True)


# ---------------------------------------------------------------- b: backup volume full


def prometheus_alerts(d: seeds.Deployment) -> list[dict]:
    out = d.exec("prometheus", ["wget", "-q", "-O", "-", "http://127.0.0.1:9090/api/v1/alerts"])
    return json.loads(out)["data"]["alerts"]


def test_b_backup_volume_full_fails_loudly_alerts_and_the_database_serves(dep):
    tier = dep.config["berth:backups"]["db"]["tiers"][0]["name"]
    # By hand, the script its schedule runs: non-zero, and it says why.
    code, out = dep.container("db-backup").exec_run(["bash", "/berth/backup.sh", tier, "3"])
    text = out.decode(errors="replace")
    assert code != 0 and "No space left on device" in text, (code, text[-2000:])
    # The scheduled runs failed too (supercronic logs each failed job).
    seeds.wait_until("a scheduled dump failed", lambda: "exit status" in dep.container("db-backup").logs(
        tail=200).decode(errors="replace"), 90, 3)
    t0 = time.monotonic()
    firing = seeds.wait_until(
        "BackupMissing firing in Prometheus",
        lambda: [a for a in prometheus_alerts(dep) if a["labels"].get("alertname") == "BackupMissing"
                 and a["labels"].get("database") == "db" and a["state"] == "firing"], 240, 5)
    TIMES["backup full: BackupMissing firing after (s, from the check)"] = round(time.monotonic() - t0, 1)
    log(f"[b] firing: {firing[0]['labels']} since {firing[0].get('activeAt')}")
    # The database keeps serving (a write and its read).
    item_id = write_item(dep, "after-backup-full")
    assert psql(dep, f"SELECT value FROM items WHERE id = {item_id}") == "after-backup-full"


# ---------------------------------------------------------------- c: interrupted up


def app_image(d: seeds.Deployment, tag: str) -> None:
    cfg = json.loads(json.dumps(d.config))
    for svc in cfg["berth:services"].values():
        svc["image"] = f"localhost/berth-testapp:{tag}"
    d.write(cfg)


def replacing(d: seeds.Deployment, before: dict[str, str]) -> Callable[[], bool]:
    """True once an app container was removed or replaced: the update is in the middle of its work."""
    def check() -> bool:
        now = {c.name: c.id for c in d.containers()}
        return any(now.get(f"{PREFIX}-{a}") != before[f"{PREFIX}-{a}"] for a in APPS)
    return check


@pytest.mark.parametrize("sig,tag", [(signal.SIGINT, "2"), (signal.SIGKILL, "1")], ids=["SIGINT", "SIGKILL"])
def test_c_interrupted_up_recovers_to_no_changes_keeping_rows(dep, sig, tag):
    rows = [write_item(dep, f"before-{signal.Signals(sig).name}-{i}") for i in range(3)]
    before = {c.name: c.id for c in dep.containers()}
    app_image(dep, tag)
    res = up_interrupted(dep.pulumi, sig, replacing(dep, before))
    assert res.returncode != 0, res
    t0 = time.monotonic()
    recover(dep.pulumi, sig)
    wait_healthy(dep, "healthy after the recovery")
    TIMES[f"pulumi up interrupted by {signal.Signals(sig).name}: recovery"] = round(time.monotonic() - t0, 1)
    dep.pulumi.expect_no_changes()
    assert_containers_are_the_states(dep)
    seeds.wait_http(dep.url("/health"))
    assert seeds.http_json("GET", dep.url("/api/version"))["version"] == tag
    for r in rows:
        assert psql(dep, f"SELECT value FROM items WHERE id = {r}").startswith("before-"), r


# ---------------------------------------------------------------- d: each container crashes


def crash(c) -> None:
    """The container's main process killed, as a crash or the OOM killer would (not `docker kill`,
    which counts as stopped by hand and is not restarted)."""
    c.reload()
    os.kill(c.attrs["State"]["Pid"], signal.SIGKILL)


def container_state(c) -> str:
    """A container's state for a failure message: status, health, restarts, its last health check."""
    c.reload()
    st = c.attrs["State"]
    health = st.get("Health") or {}
    last = (health.get("Log") or [{}])[-1]
    return (f"{c.name}: {st.get('Status')} (exit {st.get('ExitCode')}, restarts {c.attrs['RestartCount']}, "
            f"started {st.get('StartedAt')}), health {health.get('Status')}, last check exit {last.get('ExitCode')}: "
            f"{(last.get('Output') or '').strip()[-200:]}; error {st.get('Error') or '-'}\n  log: "
            + c.logs(tail=12).decode(errors="replace").strip().replace("\n", "\n  log: "))


def test_d_each_container_crashes_and_comes_back_by_its_restart_policy(dep):
    """Every long-running container's process killed at once (one after the other would wait out
    each health check's interval in turn: minutes); each comes back by its own restart policy."""
    item_id = write_item(dep, "before-crashes")
    victims = sorted(long_running(dep), key=lambda c: c.name)
    restarts = {c.name: c.attrs["RestartCount"] for c in victims}
    t0 = time.monotonic()
    for c in victims:
        crash(c)
    times: dict[str, float] = {}

    def all_back() -> bool:
        for c in victims:
            if c.name in times:
                continue
            c.reload()
            health = (c.attrs["State"].get("Health") or {}).get("Status")
            if (c.attrs["RestartCount"] > restarts[c.name] and c.status == "running"
                    and (not c.attrs["Config"].get("Healthcheck") or health == "healthy")):
                times[c.name] = round(time.monotonic() - t0, 1)
        return len(times) == len(victims)

    try:
        seeds.wait_until("every container restarted and healthy", all_back, 180, 0.5)
    except AssertionError as e:
        behind = [container_state(c) for c in victims if c.name not in times]
        raise AssertionError(f"{e}\nback (s): {times}\nnot back:\n" + "\n".join(behind)) from None
    TIMES["every container crashed: all back and healthy"] = max(times.values())
    log(f"[d] back and healthy after a crash (s): {json.dumps({k.removeprefix(PREFIX + '-'): v for k, v in times.items()})}")
    # The tmpfs the test image lacks (/var/run/postgresql) is postgres' after the restart.
    assert dep.exec("db", ["stat", "-c", "%U", "/var/run/postgresql"]).strip() == "postgres"
    seeds.wait_http(dep.url("/health"))
    assert psql(dep, f"SELECT value FROM items WHERE id = {item_id}") == "before-crashes"
    assert seeds.http_json("GET", dep.url(f"/api/items/{item_id}"))["value"] == "before-crashes"
    dep.pulumi.expect_no_changes()


# ---------------------------------------------------------------- e: database killed under traffic


class Traffic:
    """POSTs through the proxy for at most ``seconds`` (and ``limit`` requests): the ids of every
    acknowledged write (200 with an id), and what failed while the database was away."""

    def __init__(self, d: seeds.Deployment, seconds: float = 60, limit: int = 3000):
        self.d, self.seconds, self.limit = d, seconds, limit
        self.acked: dict[int, str] = {}
        self.failed: list[Any] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        for i in range(self.limit):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            value = f"traffic-{i}"
            try:
                status, raw = seeds.http("POST", self.d.url("/api/items"), {"value": value}, timeout=10)
                if status == 200:
                    self.acked[int(json.loads(raw)["id"])] = value
                else:
                    self.failed.append(status)
            except OSError as e:
                self.failed.append(repr(e))
            time.sleep(0.05)

    def __enter__(self) -> "Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_e_database_killed_under_traffic_comes_back_without_losing_an_acknowledged_write(dep):
    with Traffic(dep) as traffic:
        seeds.wait_until("traffic flowing", lambda: len(traffic.acked) >= 20, 30, 0.2)
        db = dep.container("db")
        restarts, api_restarts = db.attrs["RestartCount"], dep.container("api").attrs["RestartCount"]
        t0, killed_at = time.monotonic(), time.time()
        crash(db)
        acked_at_kill = len(traffic.acked)
        # The app recovers by itself: writes are acknowledged again, nobody restarted it.
        try:
            seeds.wait_until("writes acknowledged again", lambda: len(traffic.acked) >= acked_at_kill + 20, 120, 0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{container_state(db)}\n{container_state(dep.container('api'))}\n"
                                 f"last failures: {traffic.failed[-5:]}\napi log:\n"
                                 + dep.container("api").logs(tail=30).decode(errors="replace")) from None
        TIMES["database killed under traffic: writes acknowledged again"] = round(time.monotonic() - t0, 1)
    db.reload()
    assert db.attrs["RestartCount"] == restarts + 1
    # Nobody restarted the app: it reconnected by itself.
    assert dep.container("api").attrs["RestartCount"] == api_restarts
    ids = ",".join(str(i) for i in traffic.acked)
    stored = dict(tuple(line.split("|", 1)) for line in psql(dep, f"SELECT id, value FROM items WHERE id IN ({ids})")
                  .splitlines())
    lost = {i: v for i, v in traffic.acked.items() if stored.get(str(i)) != v}
    log(f"[e] {len(traffic.acked)} writes acknowledged, {len(traffic.failed)} refused while the database was away")
    assert not lost, f"acknowledged writes lost: {lost}"
    # The server itself started again after the kill (requests may all have succeeded meanwhile:
    # the app retries a query once on a new connection).
    started = float(psql(dep, "SELECT extract(epoch FROM pg_postmaster_start_time())"))
    assert started > killed_at, (started, killed_at)


# ---------------------------------------------------------------- f: dockerd restarted


def test_f_dockerd_restarted_everything_comes_back_healthy_and_previews_clean(dep):
    item_id = write_item(dep, "before-daemon-restart")
    before = {c.name: c.id for c in long_running(dep)}
    t0 = time.monotonic()
    subprocess.run(["bash", str(ROOT / ".ci" / "dockerd.sh"), "restart"], check=True, timeout=300)
    seconds = wait_healthy(dep, "every container back and healthy after dockerd restarted", 240)
    TIMES["dockerd restarted: every container back and healthy"] = round(time.monotonic() - t0, 1)
    log(f"[f] healthy {seconds}s after dockerd answered again")
    assert {c.name: c.id for c in long_running(dep)} == before  # the same containers, restarted
    assert dep.exec("db", ["stat", "-c", "%U", "/var/run/postgresql"]).strip() == "postgres"
    seeds.wait_http(dep.url("/health"))
    assert psql(dep, f"SELECT value FROM items WHERE id = {item_id}") == "before-daemon-restart"
    assert seeds.http_json("GET", dep.url(f"/api/items/{item_id}"))["cached"] in ("before-daemon-restart", None)
    dep.pulumi.preview("--refresh", "--expect-no-changes", "--diff")


# ---------------------------------------------------------------- g: destroy


def test_g_destroy_leaves_nothing_anonymous_volumes_included(dep):
    anonymous = {m["Name"] for c in dep.containers() for m in c.attrs.get("Mounts", [])
                 if m.get("Type") == "volume" and not m["Name"].startswith(PREFIX)}
    # The test's full filesystem (else the volume is busy); dockerd unmounted it when it restarted.
    subprocess.run(["umount", FULL["mount"]], check=False, capture_output=True)
    dep.timed("pulumi destroy", dep.pulumi.destroy)
    left = seeds.leftovers(dep.client, PREFIX)
    assert not any(left.values()), left
    still = sorted(v.name for v in dep.client.volumes.list() if v.name in anonymous)
    assert not still, f"anonymous volumes left behind: {still}"


def test_z_report(dep):
    """The recovery times, printed and kept in $BERTH_CACHE/logs/dockerd-faults.json (a passing run's
    output is not shown)."""
    log("docker engine fault recovery (s): " + json.dumps(TIMES))
    logs = Path(os.environ.get("BERTH_CACHE", "/var/cache/berth")) / "logs"
    if logs.is_dir():
        (logs / "dockerd-faults.json").write_text(json.dumps(TIMES, indent=1) + "\n")
