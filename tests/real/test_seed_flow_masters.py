"""Flow Masters (seed A), ``examples/flow-masters``: the dev stack and the single-host prod stack
through the real ``pulumi`` CLI on Podman.

The project is a user's (Pulumi.yaml + the example's ``__main__.py``); each stack file is the
example's, changed only where this machine differs (``tests/real/stacks/seeds.py``): the local test
images (the app and the MCP server are both the test app; MongoDB is FerretDB behind the official
mongo image's contract, ``localhost/berth-mongo:7``; the Mongo backups use ``localhost/berth-backup-mongo:1``),
free loopback host ports for nginx, and ``berth:docker.host`` = this machine's Podman (prod names
``ssh://deploy@flow-masters.ru``). Nothing is compressed: the daily dump is run by hand in the
backup container (the same script its schedule runs), not waited for.

Scenarios, in file order:
dev  up → healthy; HTTPS → app → MongoDB; the MCP server calls the app's API by its URL with its
     API_KEY (a request from inside the MCP container); /mcp/ routed to it; preview
     --expect-no-changes, after up and after refresh; destroy leaves nothing
prod up → healthy; a document written through HTTPS; a real dump (mongodump) → the collection
     dropped → `restore_from` that dump (`pulumi up`, the restore job runs mongorestore) → the
     document is back; preview --expect-no-changes (after up and after refresh); destroy after
     unprotect keeps the protected volumes

The same tests run on Docker Engine (``test_dockerd_seed_flow_masters.py`` sets ``ENGINE``).
"""

from __future__ import annotations

import json

import pytest

from tests.real.pulumi_cli import EngineMissing
from tests.real.stacks import seeds

pytestmark = pytest.mark.real_docker

EXAMPLE = "flow-masters"

#: From inside the MCP container: GET $API_URL/api/health with its API_KEY, as the MCP server calls the
#: app's API (the stand-in app does not check keys; the request shows the URL, the network path and the
#: key are there). Prints the status, the key's length and the app's answer.
MCP_CALL = r"""
import json, os, ssl, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
key = os.environ["API_KEY"]
req = urllib.request.Request(os.environ["API_URL"].rstrip("/") + "/api/health",
                             headers={"Authorization": "Bearer " + key, "X-API-Key": key})
with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
    print(json.dumps({"status": r.status, "key_length": len(key), "body": json.load(r)}))
"""


def mcp_calls_app(d: seeds.Deployment) -> dict:
    return json.loads(d.exec("mcp", ["python3", "-c", MCP_CALL]).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def host_client(request):
    engine = seeds.module_engine(request)
    host = seeds.docker_host_or_fail(engine)
    return host, seeds.docker_client(host), engine


def deployment(tmp_path_factory, host_client, stack: str) -> seeds.Deployment:
    host, client, engine = host_client
    cfg = seeds.seed_config(EXAMPLE, stack, docker_host=host, engine=engine)
    try:
        return seeds.Deployment.create(tmp_path_factory.mktemp(f"seed-fm-{stack}"), EXAMPLE, stack, cfg, client)
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def dev(tmp_path_factory, host_client):
    d = deployment(tmp_path_factory, host_client, "dev")
    yield d
    d.destroy_all()
    seeds.log(f"flow-masters dev timings (s): {json.dumps(d.timings)}")


@pytest.fixture(scope="module")
def prod(tmp_path_factory, host_client):
    d = deployment(tmp_path_factory, host_client, "prod")
    yield d
    d.destroy_all()
    seeds.log(f"flow-masters prod timings (s): {json.dumps(d.timings)}")
    left = seeds.leftovers(d.client, d.prefix)
    assert not any(left.values()), f"left behind: {left}"


# ---------------------------------------------------------------- dev


def test_dev_up_app_mongo_and_mcp(dev):
    dev.timed("pulumi up", dev.pulumi.up)
    assert not dev.unhealthy(), dev.unhealthy()
    seeds.wait_http(dev.url("/api/health"))
    health = seeds.http_json("GET", dev.url("/api/health"))
    assert health["checks"] == {"mongodb": "ok"}, health
    doc = seeds.http_json("POST", dev.url("/api/mongo/items"), {"value": "dev-page"})
    assert seeds.http_json("GET", dev.url(f"/api/mongo/items/{doc['id']}"))["value"] == "dev-page"
    # /mcp/ is the MCP server's (its own health endpoint, through nginx).
    assert seeds.http_json("GET", dev.url("/mcp/health"))["status"] == "ok"


def test_dev_mcp_calls_the_app_by_url_with_its_key(dev):
    got = mcp_calls_app(dev)
    assert dev.exec("mcp", ["printenv", "API_URL"]).strip() == "http://app:3000"
    assert got["status"] == 200 and got["key_length"] == 32 and got["body"]["checks"] == {"mongodb": "ok"}, got


def test_dev_preview_no_changes_then_destroy(dev):
    dev.no_changes_after_up_and_refresh()
    dev.timed("pulumi destroy", dev.pulumi.destroy)
    left = seeds.leftovers(dev.client, dev.prefix)
    assert not any(left.values()), left


# ---------------------------------------------------------------- prod (one server)


def test_prod_up_and_mcp_calls_the_app(prod):
    prod.timed("pulumi up", prod.pulumi.up)
    assert not prod.unhealthy(), prod.unhealthy()
    seeds.wait_http(prod.url("/api/health"))
    got = mcp_calls_app(prod)
    assert got["status"] == 200 and got["body"]["checks"] == {"mongodb": "ok"}, got
    # Each stack generates its own key.
    keys = [seeds.plain(r["outputs"]["result"]) for r in prod.pulumi.resources() if r["type"] == "random:index/randomPassword:RandomPassword"
            and "API_KEY" in r["urn"]]
    assert keys == [prod.exec("mcp", ["printenv", "API_KEY"]).strip()], keys


def test_prod_mongo_backup_drop_restore_keeps_the_document(prod):
    doc = seeds.http_json("POST", prod.url("/api/mongo/items"), {"value": "survives-restore"})
    out = prod.exec("mongo-backup", ["bash", "/berth/backup.sh", "daily", "7"])
    assert "backup written: /backups/daily/" in out, out
    dump = out.split("backup written: ")[1].split()[0]
    # Lose the data: the collection dropped through the app's own connection. Under load Podman's DNS
    # (aardvark-dns) has failed to answer for a name ("Temporary failure in name resolution"): the
    # app's container resolves mongo first.
    seeds.wait_until("the app resolves mongo", lambda: prod.exec("app", ["getent", "hosts", "mongo"]), 30)
    prod.exec("app", ["python3", "-c", "import os, pymongo; c = pymongo.MongoClient(os.environ['DATABASE_URI']); "
                                       "c.get_default_database().drop_collection('items')"])
    status, _ = seeds.http("GET", prod.url(f"/api/mongo/items/{doc['id']}"))
    assert status == 404
    cfg = json.loads(json.dumps(prod.config))
    cfg["berth:backups"]["mongo"]["restore_from"] = dump.removeprefix("/backups/")
    prod.write(cfg)
    prod.timed("pulumi up (restore_from the dump)", prod.pulumi.up)
    restore = prod.container("mongo-restore")
    result = restore.wait(timeout=180)
    logs = restore.logs().decode(errors="replace")
    assert result["StatusCode"] == 0 and "restore done" in logs, logs[-2000:]
    assert seeds.http_json("GET", prod.url(f"/api/mongo/items/{doc['id']}"))["value"] == "survives-restore"


def test_prod_preview_no_changes_then_destroy_keeps_protected_volumes(prod):
    prod.no_changes_after_up_and_refresh()
    protected = sorted(r["outputs"]["name"] for r in prod.pulumi.resources()
                       if r["type"] == "docker:index/volume:Volume" and r.get("protect"))
    assert prod.name("mongo-data") in protected, protected
    prod.pulumi.run("state", "unprotect", "--all", "--yes")
    prod.timed("pulumi destroy", prod.pulumi.destroy)
    left = seeds.leftovers(prod.client, prod.prefix)
    assert left["containers"] == [] and left["networks"] == [] and left["volumes"] == protected, left
