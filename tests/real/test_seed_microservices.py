"""Philosophical concepts (seed D), ``examples/microservices/Pulumi.dev.yaml``, through the real
``pulumi`` CLI on Podman: the API gateway, four services and the frontend with PostgreSQL, MongoDB
(FerretDB), Redis, RabbitMQ and Neo4j (its own server in a stand-in of the official image,
tests/images/neo4j).

The project is a user's (Pulumi.yaml + the example's ``__main__.py``); the stack file is the
example's, changed only where this machine differs (``tests/real/stacks/seeds.py``): the local test
images (every service is the test app; the frontend's Next.js server is the test app on the same
port 3000; concept-service runs the test app's queue consumer, ``consumer``, the service that
consumes what another publishes), free loopback host ports for nginx, and the local Podman.

The CI variant turns off what cannot be obtained or run here (examples/microservices/README.md):
- ``berth:logging`` (Elasticsearch, Logstash, Kibana): no image of them here (not in Debian, no
  registry).
- ``berth:monitoring``: Prometheus and Grafana run in test_docker_dev, but this stack's MongoDB needs
  a mongodb_exporter, and no test image of it exists (tests/images/README.md).
Nothing is compressed.

Scenarios on one deployment: up → every container healthy (each datastore's health check passes
before its users start: RabbitMQ's is check_port_connectivity); HTTPS → frontend and gateway; the
gateway reaches the four services by name; each service is ready against every store it uses; a
message published by user-service is consumed by concept-service (recorded in its MongoDB);
graph-service's Neo4j answers with the password in its environment (the test app has no Neo4j
client: its readiness does not cover it); preview --expect-no-changes; destroy leaves nothing.
"""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import pytest

from tests.real.pulumi_cli import EngineMissing
from tests.real.stacks import seeds

pytestmark = pytest.mark.real_docker

EXAMPLE, STACK = "microservices", "dev"
COMMANDS = {"frontend": ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "3000"],
            "concept-service": ["consumer"]}
SERVICES = {"user-service": 4001, "concept-service": 4002, "graph-service": 4003, "thesis-service": 4004}


def ci_variant(cfg: dict) -> dict:
    """ELK and monitoring off (see the module docstring)."""
    cfg["berth:logging"] = {"enabled": False}
    cfg["berth:monitoring"] = {"enabled": False}
    return cfg


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    host = seeds.docker_host_or_fail()
    client = seeds.docker_client(host)
    raw = seeds.example_config(EXAMPLE, STACK)
    assert raw["berth:logging"]["enabled"] and raw["berth:monitoring"]["enabled"]  # what the variant turns off
    cfg = seeds.seed_config_from(ci_variant(raw), EXAMPLE, STACK, docker_host=host, commands=COMMANDS)
    try:
        d = seeds.Deployment.create(tmp_path_factory.mktemp("seed-micro"), EXAMPLE, STACK, cfg, client)
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    yield d
    d.destroy_all()
    seeds.log(f"microservices timings (s): {json.dumps(d.timings)}")
    left = seeds.leftovers(client, d.prefix)
    assert not any(left.values()), f"left behind: {left}"


GET = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
POST = ("import json, sys, urllib.request; print(urllib.request.urlopen(urllib.request.Request(sys.argv[1], "
        "data=json.dumps({'body': sys.argv[2]}).encode(), headers={'Content-Type': 'application/json'}), "
        "timeout=10).read().decode())")


# The body whatever the status (a 503 from /ready says which check failed and why).
GET_ANY = ("import sys, urllib.request, urllib.error\ntry:\n    r = urllib.request.urlopen(sys.argv[1], timeout=10)\n"
           "except urllib.error.HTTPError as e:\n    r = e\nprint(r.read().decode())")


def get_in(d: seeds.Deployment, workload: str, url: str) -> dict:
    return json.loads(d.exec(workload, ["python3", "-c", GET, url]))


def ready_in(d: seeds.Deployment, workload: str, url: str) -> dict:
    """/ready's answer when it is ok; otherwise an error carrying it (wait_until reports the last)."""
    r = json.loads(d.exec(workload, ["python3", "-c", GET_ANY, url]))
    if r.get("status") != "ok":
        raise AssertionError(r)
    return r


def test_up_every_container_healthy(dep):
    dep.timed("pulumi up", dep.pulumi.up)
    assert not dep.unhealthy(), dep.unhealthy()
    names = {c.name for c in dep.containers()}
    expected = ["postgres", "mongo", "redis", "rabbitmq", "neo4j", "frontend", "api-gateway", *SERVICES, "proxy"]
    assert {dep.name(n) for n in expected} <= names, sorted(names)
    # RabbitMQ too runs with a read-only root: it writes its data volume and its log tmpfs only.
    # (but the one-shot writers of secret files, which have exited: uploads need a writable root)
    writable = [c.name for c in dep.containers() if not c.attrs["HostConfig"].get("ReadonlyRootfs")
                and "berth.uploads" not in c.labels]
    assert writable == [], writable
    probe = 'touch /berth-root-probe 2>/dev/null && echo writable; touch /var/log/rabbitmq/probe && echo logs-ok'
    assert dep.exec("rabbitmq", ["sh", "-c", probe]).split() == ["logs-ok"]


def test_https_reaches_frontend_and_gateway(dep):
    seeds.wait_http(dep.url("/api/health"))
    assert seeds.http_json("GET", dep.url("/"))["host"] == "frontend"
    assert seeds.http_json("GET", dep.url("/api/health"))["checks"] == {"redis": "ok"}


def test_gateway_reaches_services_and_each_is_ready_on_its_stores(dep):
    for name, port in SERVICES.items():
        assert get_in(dep, "api-gateway", f"http://{name}:{port}/health")["status"] == "ok"
    expected = {"user-service": {"database", "redis", "amqp"}, "concept-service": {"mongodb", "amqp"},
                "graph-service": {"amqp"}, "thesis-service": {"database", "mongodb", "amqp"}}
    for name, port in SERVICES.items():
        ready = seeds.wait_until(f"{name} ready", lambda: ready_in(dep, name, f"http://127.0.0.1:{port}/ready"), 30)
        assert set(ready["checks"]) == expected[name], (name, ready)


def test_message_published_by_one_service_is_consumed_by_another(dep):
    sent = json.loads(dep.exec("user-service", ["python3", "-c", POST, "http://127.0.0.1:4001/api/messages",
                                                "thesis-created"]))
    assert sent["status"] == "published", sent
    got = seeds.wait_until("concept-service consumed the message",
                           lambda: get_in(dep, "concept-service", f"http://127.0.0.1:4002/api/messages/{sent['id']}"),
                           30)
    assert got["body"] == "thesis-created", got
    # Recorded in concept-service's MongoDB: any instance with that store answers.
    listing = get_in(dep, "concept-service", "http://127.0.0.1:4002/api/messages")
    assert listing["store"] == "mongodb", listing


def test_the_services_log_in_to_rabbitmq_as_its_one_user_on_its_vhost_only(dep):
    """In the deployed stack, as in the component's image test (test_images_seed_smoke.py): the
    broker's only user is the one in the services' AMQP_URL, with no tags (no management UI, not an
    administrator), allowed on the stack's vhost only; no guest."""
    env = dict(e.split("=", 1) for e in dep.container("user-service").attrs["Config"]["Env"])
    url = urlsplit(env["AMQP_URL"])
    user, vhost = unquote(url.username or ""), unquote(url.path.lstrip("/"))
    assert vhost == "philos" and user, url._replace(netloc=url.hostname or "").geturl()
    assert dep.exec("rabbitmq", ["rabbitmqctl", "list_users", "-q", "--no-table-headers"]).split() == [user, "[]"]
    assert dep.exec("rabbitmq", ["rabbitmqctl", "list_user_permissions", user, "-q", "--no-table-headers"]
                    ).split() == [vhost, ".*", ".*", ".*"]
    assert dep.exec("rabbitmq", ["rabbitmqctl", "list_vhosts", "-q", "--no-table-headers"]).split() == [vhost]
    out = dep.exec("rabbitmq", ["rabbitmqctl", "authenticate_user", "guest", "guest"], check=False)
    assert "invalid credentials" in out or "not found" in out, out


def test_graph_service_logs_in_to_neo4j_with_its_password(dep):
    """Neo4j (read-only root, like every container above) takes graph-service's NEO4J_PASSWORD."""
    env = dict(e.split("=", 1) for e in dep.container("graph-service").attrs["Config"]["Env"])
    assert env["NEO4J_URI"] == "bolt://neo4j:7687" and env["NEO4J_USER"] == "neo4j", env.get("NEO4J_URI")
    code = ("import base64, json, sys, urllib.request\n"
            "auth = base64.b64encode(('neo4j:' + sys.argv[1]).encode()).decode()\n"
            "req = urllib.request.Request('http://neo4j:7474/db/neo4j/tx/commit', method='POST', "
            "data=json.dumps({'statements': [{'statement': 'RETURN 41 + 1'}]}).encode(), "
            "headers={'Content-Type': 'application/json', 'Authorization': 'Basic ' + auth})\n"
            "print(urllib.request.urlopen(req, timeout=10).read().decode())")
    out = json.loads(dep.exec("graph-service", ["python3", "-c", code, env["NEO4J_PASSWORD"]]))
    assert out["errors"] == [] and out["results"][0]["data"][0]["row"] == [42], out


def test_preview_no_changes_then_destroy(dep):
    dep.timed("pulumi preview --expect-no-changes", dep.pulumi.expect_no_changes)
    dep.timed("pulumi destroy", dep.pulumi.destroy)
    left = seeds.leftovers(dep.client, dep.prefix)
    assert not any(left.values()), left
