"""Wishlins (seed E), ``examples/wishlins/Pulumi.prod.yaml``, through the real ``pulumi`` CLI on Podman.

The project is a user's (Pulumi.yaml + the example's ``__main__.py``); its stack file is the
example's, changed only where this machine differs (``tests/real/stacks/seeds.py``): the local test
images, free loopback host ports for nginx, ``berth:docker.host`` = this machine's Podman instead of
``ssh://deploy@wishlins.example.com``, and where a seed command belongs to the team's image, the test
image's equivalent: the frontend (an nginx-unprivileged image on :8080) is the test app on 8080, the
bot (``python -m bot``, aiogram) is a loop that calls the backend by its service name.

What CI compresses, and why: the three backup tiers' schedules (daily 02:00, weekly Sunday 03:00,
monthly on the 1st 04:00) become every minute, or a run would wait days; nothing else changes, so
each tier still runs its own dump with its own retention (``keep`` 7 / 4 / 6). Each tier's folder
is seeded with more old dated dumps than it keeps; the scheduled run must add a new one and prune
the tier to its own ``keep``.

One deployment for the module: up → checks → preview --expect-no-changes (after up and after refresh)
→ destroy (a prod stack: destroy stops at the protected volumes; after unprotect they are retained,
and removed by the test). The same tests run on Docker Engine (``test_dockerd_seed_wishlins.py``).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.real.pulumi_cli import EngineMissing
from tests.real.stacks import seeds

pytestmark = pytest.mark.real_docker

EXAMPLE, STACK = "wishlins", "prod"
#: The bot stand-in: reaches the backend by name, as the aiogram bot does through API_URL.
BOT = ["sh", "-c", 'while :; do if healthcheck "$API_URL/api/health"; then echo "backend reachable"; '
                   'else echo "backend unreachable"; fi; touch /tmp/bot-alive; sleep 5; done']
COMMANDS = {"frontend": ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8080"], "bot": BOT}
EVERY_MINUTE = "* * * * *"


@pytest.fixture(scope="module")
def dep(tmp_path_factory, request):
    engine = seeds.module_engine(request)
    host = seeds.docker_host_or_fail(engine)
    client = seeds.docker_client(host)
    cfg = seeds.seed_config(EXAMPLE, STACK, docker_host=host, commands=COMMANDS, engine=engine)
    for tier in cfg["berth:backups"]["db"]["tiers"]:
        tier["schedule"] = EVERY_MINUTE
    try:
        d = seeds.Deployment.create(tmp_path_factory.mktemp("seed-wishlins"), EXAMPLE, STACK, cfg, client)
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    yield d
    d.destroy_all()
    seeds.log(f"wishlins timings (s): {json.dumps(d.timings)}")
    left = seeds.leftovers(client, d.prefix)
    assert not any(left.values()), f"left behind: {left}"


def test_up_every_container_healthy(dep):
    dep.timed("pulumi up", dep.pulumi.up)
    assert not dep.unhealthy(), dep.unhealthy()
    names = {c.name for c in dep.containers()}
    assert {dep.name(n) for n in ("frontend", "backend", "bot", "db", "db-backup", "proxy")} <= names, names


def test_proxy_serves_frontend_and_api(dep):
    seeds.wait_http(dep.url("/api/health"))
    front = seeds.http_json("GET", dep.url("/"))
    assert front["host"] == "frontend", front
    api = seeds.http_json("GET", dep.url("/api/health"))
    # The backend answers /api/ and reaches its database; the frontend has none.
    assert api["checks"] == {"database": "ok"}, api
    # A row for the backups to carry (the stand-in backend's item endpoints also need Redis).
    db = dep.config["berth:databases"]["db"]
    dep.exec("db", ["psql", "-U", db["user"], "-d", db["database"], "-h", "/var/run/postgresql", "-c",
                    "CREATE TABLE wishes (id serial PRIMARY KEY, title text); INSERT INTO wishes (title) VALUES ('bike')"])


def test_bot_is_up_and_reaches_the_backend_by_name(dep):
    bot = dep.container("bot")
    published = {p: b for p, b in (bot.attrs["NetworkSettings"].get("Ports") or {}).items() if b}
    assert bot.status == "running" and not published, published
    seeds.wait_until("the bot reached the backend",
                     lambda: "backend reachable" in bot.logs(tail=20).decode(errors="replace"), 30)


def test_all_three_backup_tiers_run_each_with_its_own_retention(dep):
    tiers = {t["name"]: int(t["keep"]) for t in dep.config["berth:backups"]["db"]["tiers"]}
    assert tiers == {"daily": 7, "weekly": 4, "monthly": 6}
    db_name = dep.config["berth:databases"]["db"]["database"]
    # More old dated dumps than each tier keeps (ten, dated January 2026).
    seed = " ; ".join(
        f"mkdir -p /backups/{t} && for d in 01 02 03 04 05 06 07 08 09 10; do "
        f"f=/backups/{t}/{db_name}-202601${{d}}T020000Z.dump; echo old > $f; touch -d 2026-01-$d $f; done"
        for t in tiers)
    dep.exec("db-backup", ["sh", "-c", seed])
    t0 = time.monotonic()

    def listing() -> dict[str, list[str]]:
        out = {}
        for t in tiers:
            out[t] = dep.exec("db-backup", ["sh", "-c", f"ls -1t /backups/{t}/"]).split()
        return out

    def done():
        files = listing()
        new = {t: [f for f in fs if "202601" not in f and not f.endswith(".partial")] for t, fs in files.items()}
        return files if all(new.values()) and all(len(files[t]) == keep for t, keep in tiers.items()) else None

    files = seeds.wait_until("every tier dumped and pruned by its scheduled run", done, 150, interval=3)
    dep.timings["scheduled backups (3 tiers)"] = round(time.monotonic() - t0, 1)
    for t, keep in tiers.items():
        assert len(files[t]) == keep, files
        assert files[t][0].startswith(db_name) and "202601" not in files[t][0], files
        # The oldest old dumps went: each tier kept its newest `keep`.
        kept_old = sorted(f for f in files[t] if "202601" in f)
        all_old = [f"{db_name}-202601{d:02d}T020000Z.dump" for d in range(1, 11)]
        assert kept_old and kept_old == all_old[len(all_old) - len(kept_old):], files
    stamps = dep.exec("db-backup", ["sh", "-c", "cat /backups/last-success-*.prom"])
    assert all(f'tier="{t}"' in stamps for t in tiers), stamps
    # The dump is a real one of the database.
    newest = files["daily"][0]
    dep.exec("db-backup", ["sh", "-c", f"pg_restore --list /backups/daily/{newest} | grep -q 'TABLE DATA public wishes'"])


def test_preview_expects_no_changes(dep):
    dep.no_changes_after_up_and_refresh()


def test_destroy_stops_at_protected_volumes_then_keeps_them(dep):
    protected = sorted(r["outputs"]["name"] for r in dep.pulumi.resources()
                       if r["type"] == "docker:index/volume:Volume" and r.get("protect"))
    assert {dep.name("db-data"), dep.name("db-backups")} <= set(protected), protected
    refused = dep.pulumi.destroy(check=False)
    assert refused.returncode != 0 and "protected" in refused.output, refused
    dep.pulumi.run("state", "unprotect", "--all", "--yes")
    dep.timed("pulumi destroy", dep.pulumi.destroy)
    left = seeds.leftovers(dep.client, dep.prefix)
    assert left["containers"] == [] and left["networks"] == [], left
    assert left["volumes"] == protected, left
