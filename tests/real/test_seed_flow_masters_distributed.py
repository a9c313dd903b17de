"""Flow Masters (seed A), topology 3 "distributed": ``examples/flow-masters/Pulumi.prod-app.yaml`` on
one Docker API and ``Pulumi.prod-mcp.yaml`` on another, through the real ``pulumi`` CLI.

Two hosts on one machine: Podman's first service (``DOCKER_HOST``) and a second one with its own
storage (``.ci/podman.sh start2`` → ``BERTH_DOCKER_HOST2``; containers, volumes and images of one are
not seen by the other). They reach each other like two servers on a LAN through
``BERTH_XHOST_ADDR``, an address on a bridge of this machine: host 1's nginx publishes there, and
host 2's containers connect to it through their network's gateway. No traffic leaves the machine.

The project is a user's (Pulumi.yaml + the example's ``__main__.py``, project ``flow-masters``, one
state backend for both stacks, so ``organization/flow-masters/prod-app`` names host 1's stack). The
stack files are the examples', changed only where this machine differs (``tests/real/stacks/seeds.py``):
the local test images, host ports, ``berth:docker.host`` (``ssh://deploy@flow-masters.ru`` → the first
service, ``ssh://deploy@mcp.example.com`` → the second), host 1's nginx published on
``BERTH_XHOST_ADDR`` instead of the public address, and so the MCP server's ``API_URL``
``https://flow-masters.ru`` → ``https://BERTH_XHOST_ADDR:PORT`` (the name does not resolve here).
Nothing is compressed.

The API key is the one host 1's stack generates and exports (``mcp_api_key``, a secret output); the
MCP stack reads it through a StackReference (``secret_env: {API_KEY: {from_stack: ..., output: ...}}``).

Scenarios on one deployment of each: both up on their own host; the MCP server calls the app's API
over HTTPS through host 1's nginx with the shared key; a missing output is a named-key error;
preview --expect-no-changes on both; destroy (MCP first, then the app after unprotect).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.real.pulumi_cli import EngineMissing
from tests.real.stacks import seeds

pytestmark = pytest.mark.real_docker

EXAMPLE = "flow-masters"

#: From inside the MCP container: GET $API_URL/api/health with its API_KEY, as the MCP server calls the
#: app (the stand-in app does not check keys). Prints the status, the key, the server and the answer.
MCP_CALL = r"""
import json, os, ssl, urllib.parse, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
key = os.environ["API_KEY"]
req = urllib.request.Request(os.environ["API_URL"].rstrip("/") + "/api/health",
                             headers={"Authorization": "Bearer " + key, "X-API-Key": key})
with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
    out = {"status": r.status, "key": key, "server": r.headers.get("Server"), "body": json.load(r)}
url = urllib.parse.urlsplit(os.environ["API_URL"])
out["cert"] = ssl.get_server_certificate((url.hostname, url.port or 443))
print(json.dumps(out))
"""


def second_host_or_fail() -> tuple[str, str]:
    host2, addr = os.environ.get("BERTH_DOCKER_HOST2"), os.environ.get("BERTH_XHOST_ADDR")
    if not host2 or not addr:
        pytest.fail("BERTH_DOCKER_HOST2 / BERTH_XHOST_ADDR are not set: start the second Docker API first:\n"
                    "  eval \"$(bash .ci/podman.sh start2)\" && export BERTH_DOCKER_HOST2 BERTH_XHOST_ADDR", pytrace=False)
    return host2, addr


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    host1 = seeds.docker_host_or_fail()
    host2, addr = second_host_or_fail()
    client1, client2 = seeds.docker_client(host1), seeds.docker_client(host2)
    tmp = tmp_path_factory.mktemp("seed-fm-distributed")
    app_cfg = seeds.seed_config(EXAMPLE, "prod-app", docker_host=host1, bind_address=addr)
    mcp_cfg = seeds.seed_config(EXAMPLE, "prod-mcp", docker_host=host2)
    mcp_cfg["berth:services"]["mcp"]["env"]["API_URL"] = f"https://{addr}:{app_cfg['berth:proxy']['https_port']}"
    assert mcp_cfg["berth:services"]["mcp"]["secret_env"]["API_KEY"] == {
        "from_stack": "organization/flow-masters/prod-app", "output": "mcp_api_key"}
    try:
        app = seeds.Deployment.create(tmp, EXAMPLE, "prod-app", app_cfg, client1, state_dir=tmp / "state")
        mcp = seeds.Deployment.create(tmp, EXAMPLE, "prod-mcp", mcp_cfg, client2, state_dir=tmp / "state")
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    yield {"app": app, "mcp": mcp}
    mcp.destroy_all()
    app.destroy_all()
    for d in (mcp, app):
        seeds.log(f"flow-masters {d.stack} timings (s): {json.dumps(d.timings)}")
        left = seeds.leftovers(d.client, d.prefix)
        assert not any(left.values()), f"left behind on {d.stack}'s host: {left}"


def test_each_stack_up_on_its_own_host(hosts):
    app, mcp = hosts["app"], hosts["mcp"]
    app.timed("pulumi up", app.pulumi.up)
    mcp.timed("pulumi up", mcp.pulumi.up)
    for d in (app, mcp):
        assert not d.unhealthy(), d.unhealthy()
    host1 = {c.name for c in app.client.containers.list(all=True)}
    host2 = {c.name for c in mcp.client.containers.list(all=True)}
    assert {app.name("app"), app.name("mongo"), app.name("proxy")} <= host1 and mcp.name("mcp") not in host1
    assert {mcp.name("mcp"), mcp.name("proxy")} <= host2 and app.name("app") not in host2
    # Host 2 publishes its own nginx; its MCP server answers there.
    seeds.wait_http(mcp.url("/mcp/health"))


def test_mcp_calls_the_app_over_https_through_host_1s_proxy_with_the_shared_key(hosts):
    app, mcp = hosts["app"], hosts["mcp"]
    key = app.pulumi.outputs()["mcp_api_key"]
    assert len(key) == 32
    # The key is a secret output of host 1's stack, and the app there has it.
    assert "[secret]" in app.pulumi.run("stack", "output", "mcp_api_key").stdout
    assert app.exec("app", ["printenv", "MCP_API_KEY"]).strip() == key
    # Host 2 generated no key of its own: its MCP server has host 1's.
    assert not [r for r in mcp.pulumi.resources() if r["type"] == "random:index/randomPassword:RandomPassword"]
    got = json.loads(mcp.exec("mcp", ["python3", "-c", MCP_CALL]).strip().splitlines()[-1])
    assert got["status"] == 200 and got["key"] == key, got
    assert got["body"]["checks"] == {"mongodb": "ok"}, got
    # Through host 1's nginx, with host 1's certificate.
    assert "nginx" in (got["server"] or ""), got
    certs = [seeds.plain(r["outputs"]["certPem"]) for r in app.pulumi.resources()
             if r["type"] == "tls:index/selfSignedCert:SelfSignedCert"]
    assert [c.strip() for c in certs] == [got["cert"].strip()]


def test_a_missing_referenced_output_is_a_named_key_error(hosts):
    mcp = hosts["mcp"]
    good = mcp.config
    bad = json.loads(json.dumps(good))
    bad["berth:services"]["mcp"]["secret_env"]["API_KEY"]["output"] = "mcp_api_token"
    mcp.write(bad)
    try:
        res = mcp.pulumi.preview(check=False)
    finally:
        mcp.write(good)
    assert res.returncode != 0
    assert ("berth:services.mcp.secret_env.API_KEY = {from_stack: organization/flow-masters/prod-app, output: "
            "mcp_api_token}: stack 'organization/flow-masters/prod-app' has no output 'mcp_api_token'") in res.output, res


def test_preview_expects_no_changes_on_both(hosts):
    for d in (hosts["app"], hosts["mcp"]):
        d.timed("pulumi preview --expect-no-changes", d.pulumi.expect_no_changes)


def test_destroy_mcp_then_app(hosts):
    app, mcp = hosts["app"], hosts["mcp"]
    mcp.pulumi.run("state", "unprotect", "--all", "--yes")
    mcp.timed("pulumi destroy", mcp.pulumi.destroy)
    assert not any(seeds.leftovers(mcp.client, mcp.prefix).values())
    assert not app.unhealthy()
    app.pulumi.run("state", "unprotect", "--all", "--yes")
    app.timed("pulumi destroy", app.pulumi.destroy)
    left = seeds.leftovers(app.client, app.prefix)
    assert left["containers"] == [] and left["networks"] == [], left
