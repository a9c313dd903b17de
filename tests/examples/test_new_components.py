"""Pure tests of the components the seeds needed: Broker (RabbitMQ), GraphDatabase (Neo4j), Logging
(ELK), their connections through ``uses`` and their config checks."""

from __future__ import annotations

import pytest

from berth.components.app_service import Connection, connection_env
from berth.components.broker import broker_workloads
from berth.components.graph import graph_workloads
from berth.components.ir import Kind, Role
from berth.components.logs import LoggingPasswords, logging_workloads, render_logstash_pipeline
from berth.components.spec import BrokerSpec, ConfigError, GraphDatabaseSpec, LoggingSpec, ServiceSpec, parse_spec


def test_broker_is_stateful_internal_and_health_checked():
    (w,) = broker_workloads("mq", BrokerSpec(), "pw", allow_from=["api"])
    assert (w.role, w.kind, w.image) == (Role.BROKER, Kind.STATEFUL, "rabbitmq:3.13-management")
    assert w.stateful_data and not w.publish and not w.egress and w.allow_from == ("api",)
    assert w.volumes[0].path == "/var/lib/rabbitmq" and w.user == 999
    assert "RABBITMQ_DEFAULT_PASS" in w.secret_env and "RABBITMQ_DEFAULT_PASS" not in w.env
    assert w.health.command[:2] == ("CMD", "rabbitmq-diagnostics")


def test_graph_database_keeps_the_password_secret():
    (w,) = graph_workloads("graph", GraphDatabaseSpec(), "pw")
    assert w.image == "neo4j:4.4" and {p.port for p in w.ports} == {7474, 7687}
    assert "NEO4J_AUTH" in w.secret_env and w.env["NEO4J_dbms_memory_heap_max__size"] == "512m"
    assert w.stateful_data and not w.publish


def test_graph_database_starts_through_berths_script_that_sets_the_password_over_kept_data():
    """The image's own entrypoint, run by tini, after Berth's start script (the password over a kept
    volume); authentication is written on at every start, since the script's own start turns it off."""
    (w,) = graph_workloads("graph", GraphDatabaseSpec(), "pw")
    (script,) = w.files
    assert w.entrypoint == ("tini", "-g", "--", "bash", script.path) and w.command == ("neo4j",)
    assert script.mode == 0o555 and "pw" not in script.content
    assert 'exec /startup/docker-entrypoint.sh "$@"' in script.content
    assert "NEO4J_dbms_default__listen__address=127.0.0.1" in script.content
    assert "ALTER USER neo4j SET PASSWORD $password" in script.content
    assert w.env["NEO4J_dbms_security_auth__enabled"] == "true"
    assert w.read_only_root and set(w.tmpfs) == {"/tmp", "/logs", "/run"} and w.seeded == ("/var/lib/neo4j/conf",)


def test_neo4j_connection_brings_user_and_password():
    conn = {"graph": Connection("neo4j", "bolt://graph:7687", extra=(("USER", "neo4j"), ("PASSWORD", "pw")))}
    env = connection_env(ServiceSpec(image="a:1", uses=["graph"]), conn)
    assert {k: v for k, (_, v) in env.items()} == {"NEO4J_URI": "bolt://graph:7687", "NEO4J_USER": "neo4j",
                                                    "NEO4J_PASSWORD": "pw"}
    env = connection_env(ServiceSpec(image="a:1", uses={"graph": "GRAPH_URI"}), conn)
    assert set(env) == {"GRAPH_URI", "GRAPH_USER", "GRAPH_PASSWORD"}


PASSWORDS = LoggingPasswords("elastic-pw", "kibana-pw", "logstash-pw")


def test_logging_workloads():
    ws = {w.name: w for w in logging_workloads(LoggingSpec(), "s", PASSWORDS, shippers=["api"], kibana_from=["proxy"])}
    assert set(ws) == {"elasticsearch", "elasticsearch-users", "logstash", "kibana"}
    assert ws["elasticsearch"].stateful_data
    assert ws["elasticsearch"].allow_from == ("elasticsearch-users", "kibana", "logstash")
    assert ws["logstash"].allow_from == ("api",) and ws["kibana"].allow_from == ("proxy",)
    assert ws["kibana"].env["SERVER_BASEPATH"] == "/kibana"
    assert all(not w.publish and w.user == (10001 if w.name == "elasticsearch-users" else 1000) for w in ws.values())
    assert {w.name for w in logging_workloads(LoggingSpec(kibana=False), "s", PASSWORDS)} == {
        "elasticsearch", "elasticsearch-users", "logstash"}
    conf = render_logstash_pipeline()
    assert 'user => "berth_logstash"' in conf and "${LOGSTASH_PASSWORD}" in conf and "json_lines" in conf


def test_each_logging_client_holds_only_its_own_password():
    """The superuser's password is Elasticsearch's and the one-shot users job's, nobody else's:
    Kibana logs in as kibana_system, Logstash as berth_logstash (its health checks need none)."""
    ws = {w.name: w for w in logging_workloads(LoggingSpec(), "s", PASSWORDS)}
    held = {n: {k: v.value for k, v in w.secret_env.items()} for n, w in ws.items()}
    assert held == {
        "elasticsearch": {"ELASTIC_PASSWORD": "elastic-pw"},
        "elasticsearch-users": {"ELASTIC_PASSWORD": "elastic-pw", "KIBANA_PASSWORD": "kibana-pw",
                                "LOGSTASH_PASSWORD": "logstash-pw"},
        "logstash": {"LOGSTASH_PASSWORD": "logstash-pw"},
        "kibana": {"ELASTICSEARCH_PASSWORD": "kibana-pw"},
    }
    assert ws["kibana"].env["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert ws["elasticsearch-users"].one_shot and ws["elasticsearch-users"].depends_on == ("elasticsearch",)
    assert ws["logstash"].depends_on == ws["kibana"].depends_on == ("elasticsearch-users",)
    for w in ws.values():
        checks = " ".join(w.health.command or ()) if w.health else ""
        assert "PASSWORD" not in checks and "-u" not in checks.split(), (w.name, checks)


BASE = {"target": "docker", "services": {"api": {"image": "a:1", "port": 8000}}}


@pytest.mark.parametrize(("raw", "needle"), [
    ({"brokers": {"mq": {"storage": "lots"}}}, "berth:brokers.mq.storage"),
    ({"graphs": {"g": {"heap": "512"}}}, "berth:graphs.g.heap"),
    ({"logging": {"kibana_path": "kibana/"}}, "berth:logging.kibana_path"),
    ({"services": {"api": {"image": "a:1", "uses": ["nope"]}}}, "brokers / graphs"),
    ({"logging": {}, "services": {"logstash": {"image": "a:1"}}}, "berth:services.logstash: the name is taken"),
    ({"logging": {}, "services": {"elasticsearch-users": {"image": "a:1"}}},
     "berth:services.elasticsearch-users: the name is taken"),
    ({"logging": {}, "proxy": {"routes": [{"path": "/kibana/", "service": "api"}]}}, "berth:logging.kibana_path"),
    ({"brokers": {"mq": {}}, "caches": {"mq": {}}}, "berth:brokers.mq: name 'mq' is also used in berth:caches"),
])
def test_config_errors_name_the_key(raw, needle):
    with pytest.raises(ConfigError) as exc:
        parse_spec({**BASE, **raw})
    assert needle in str(exc.value)


def test_uses_accepts_brokers_and_graphs():
    spec = parse_spec({**BASE, "brokers": {"mq": {}}, "graphs": {"g": {}},
                       "services": {"api": {"image": "a:1", "uses": ["mq", "g"]}}})
    assert spec.services["api"].uses == ["mq", "g"]
