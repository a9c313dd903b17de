"""punto-infissi CRM (seed C): staging and production side by side on ONE Podman host, through the
real ``pulumi`` CLI (``examples/crm-staging-prod``).

Two stacks of one temporary user-shaped project (Pulumi.yaml + the example's ``__main__.py``), each
with the example's stack file changed only where this machine differs (``tests/real/stacks/seeds.py``):
the local test images (the web app's ``npx prisma migrate deploy && exec node server.js`` is the
team's image's; the test app runs its own server on the same PORT 3000), free loopback host ports
instead of 80/443 and 8080/8443, and ``berth:docker.host`` = this machine's Podman instead of
``ssh://deploy@crm.omoxsoft.com.ua`` (both stacks on the same host, as in the seed).
Nothing is compressed: the daily dumps are not waited for; production's pre-deploy dump runs on
every real deploy anyway.

Scenarios on one pair of deployments: both up with no collision (names, networks, volumes, ports,
data); production's app updated (image 1 → 2): its pre-deploy dump runs and holds production's rows, and the
new app container starts only after the dump finished (the dump is attached, and the app's label
from its exit code makes a failed dump stop the rollout); preview --expect-no-changes on both, after
up and after refresh; destroying staging leaves production untouched; production is destroyed last
(unprotected by the test). The same tests run on Docker Engine (``test_dockerd_seed_crm.py``).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

import pytest

from tests.real.pulumi_cli import EngineMissing
from tests.real.stacks import seeds

pytestmark = pytest.mark.real_docker

EXAMPLE = "crm-staging-prod"
COMMANDS = {"web": ["uvicorn", "app.main:app", "--host", "0.0.0.0"]}


@pytest.fixture(scope="module")
def stacks(tmp_path_factory, request):
    engine = seeds.module_engine(request)
    host = seeds.docker_host_or_fail(engine)
    client = seeds.docker_client(host)
    tmp = tmp_path_factory.mktemp("seed-crm")
    deps = {}
    try:
        for stack in ("staging", "production"):
            cfg = seeds.seed_config(EXAMPLE, stack, docker_host=host, commands=COMMANDS, engine=engine)
            # One project, two stacks, one state backend (as a team has them).
            deps[stack] = seeds.Deployment.create(tmp, EXAMPLE, stack, cfg, client, state_dir=tmp / "state")
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    yield deps
    for d in deps.values():
        d.destroy_all()
        seeds.log(f"crm {d.stack} timings (s): {json.dumps(d.timings)}")
    for d in deps.values():
        left = seeds.leftovers(client, d.prefix)
        assert not any(left.values()), f"left behind: {left}"


def psql(d: seeds.Deployment, sql: str) -> str:
    db = d.config["berth:databases"]["db"]
    return d.exec("db", ["psql", "-U", db["user"], "-d", db["database"], "-h", "/var/run/postgresql",
                         "-tAc", sql]).strip()


SLOW_DUMP = 8
ORDER: dict[str, datetime] = {}


def unpause_when_dumping(d: seeds.Deployment, db, jobs_before: set[str]) -> None:
    """Unpause the database SLOW_DUMP seconds after the new dump job appeared (at most 90 s + that)."""
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if [c for c in predeploy_jobs(d) if c.name not in jobs_before]:
                    break
            except Exception:  # noqa: BLE001 - a container removed while listed (the update replaces some)
                pass
            time.sleep(0.5)
        time.sleep(SLOW_DUMP)
    finally:
        db.unpause()


def predeploy_jobs(d: seeds.Deployment) -> list:
    return [c for c in d.containers() if c.labels.get("berth.dev/job") == "predeploy-backup"]


def started(c) -> datetime:
    return datetime.fromisoformat(c.attrs["State"]["StartedAt"][:26].rstrip("Z"))


def finished(c) -> datetime:
    return datetime.fromisoformat(c.attrs["State"]["FinishedAt"][:26].rstrip("Z"))


def test_both_up_side_by_side_without_collisions(stacks):
    staging, prod = stacks["staging"], stacks["production"]
    staging.timed("pulumi up", staging.pulumi.up)
    prod.timed("pulumi up", prod.pulumi.up)
    for d in (staging, prod):
        assert not d.unhealthy(), d.unhealthy()
    s, p = (seeds.leftovers(d.client, d.prefix) for d in (staging, prod))
    for kind in ("containers", "networks", "volumes"):
        assert s[kind] and p[kind] and not set(s[kind]) & set(p[kind]), (kind, s[kind], p[kind])
    ports = [d.config["berth:proxy"][k] for d in (staging, prod) for k in ("http_port", "https_port")]
    assert len(set(ports)) == 4, ports
    for d in (staging, prod):
        seeds.wait_http(d.url("/api/health"))
        assert seeds.http_json("GET", d.url("/api/health"))["checks"] == {"database": "ok"}
    # Separate databases: a row in production is not in staging.
    for d in (staging, prod):
        psql(d, "CREATE TABLE IF NOT EXISTS leads (id serial PRIMARY KEY, name text)")
    psql(prod, "INSERT INTO leads (name) VALUES ('production-only')")
    assert psql(prod, "SELECT name FROM leads") == "production-only"
    assert psql(staging, "SELECT count(*) FROM leads") == "0"


def test_production_update_waits_for_its_predeploy_dump(stacks):
    ORDER.clear()  # the Docker Engine variant shares this module's globals (test_dockerd_seed_crm.py)
    prod = stacks["production"]
    web_before = prod.container("web").id
    jobs_before = {c.name for c in predeploy_jobs(prod)}
    cfg = json.loads(json.dumps(prod.config))
    cfg["berth:services"]["web"]["image"] = "localhost/berth-testapp:2"
    prod.write(cfg)
    # A dump that takes a while, as a real database's does (this one is a few rows): the database is
    # paused from the update's start until the new dump job has run for SLOW_DUMP seconds. An app
    # that waits for the dump starts only after it; one that does not starts while it hangs.
    db = prod.container("db")
    db.pause()
    pauser = threading.Thread(target=unpause_when_dumping, args=(prod, db, jobs_before), daemon=True)
    pauser.start()
    try:
        prod.timed("pulumi up (web image 1 -> 2)", prod.pulumi.up)
    finally:
        pauser.join(timeout=120)
        db.reload()
        if db.status == "paused":
            db.unpause()
    web = prod.container("web")
    assert web.id != web_before
    jobs = [c for c in predeploy_jobs(prod) if c.name not in jobs_before]
    assert len(jobs) == 1, [c.name for c in prod.containers()]
    job = jobs[0]
    job.wait(timeout=120)
    job.reload()
    assert job.attrs["State"]["Status"] == "exited" and job.attrs["State"]["ExitCode"] == 0, job.logs()[-2000:]
    assert "backup written: /backups/predeploy/" in job.logs().decode(errors="replace")
    assert (finished(job) - started(job)).total_seconds() >= SLOW_DUMP - 1, job.attrs["State"]
    ORDER.update(dump_finished=finished(job), app_started=started(web))
    # The dump holds production's data (the row written before the update).
    listing = prod.exec("db-backup", ["sh", "-c", "ls -1t /backups/predeploy/"]).split()
    prod.exec("db-backup", ["sh", "-c", f"pg_restore --data-only --table=leads -f - /backups/predeploy/{listing[0]}"
                                        " | grep -q production-only"])
    seeds.wait_http(prod.url("/api/health"))
    assert seeds.http_json("GET", prod.url("/api/version"))["version"] == "2"


def test_production_app_starts_only_after_its_predeploy_dump_finished(stacks):
    assert ORDER, "the update scenario did not run"
    assert ORDER["dump_finished"] <= ORDER["app_started"], ORDER


def test_preview_expects_no_changes_on_both(stacks):
    for d in stacks.values():
        d.no_changes_after_up_and_refresh()


def test_destroying_staging_leaves_production_untouched(stacks):
    staging, prod = stacks["staging"], stacks["production"]
    before = {c.name: (c.id, c.status) for c in prod.containers()}
    volumes = seeds.leftovers(prod.client, prod.prefix)["volumes"]
    staging.timed("pulumi destroy", staging.pulumi.destroy)
    assert not any(seeds.leftovers(staging.client, staging.prefix).values())
    assert {c.name: (c.id, c.status) for c in prod.containers()} == before
    assert seeds.leftovers(prod.client, prod.prefix)["volumes"] == volumes
    assert seeds.http_json("GET", prod.url("/api/health"))["checks"] == {"database": "ok"}
    assert psql(prod, "SELECT name FROM leads") == "production-only"


def test_production_destroy_after_unprotect(stacks):
    prod = stacks["production"]
    prod.pulumi.run("state", "unprotect", "--all", "--yes")
    prod.timed("pulumi destroy", prod.pulumi.destroy)
    left = seeds.leftovers(prod.client, prod.prefix)
    assert left["containers"] == [] and left["networks"] == [], left
