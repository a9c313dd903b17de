"""Component changes found by deploying the seed systems for real (tests/real/test_seed_*.py)."""

from __future__ import annotations

from berth.components.broker import broker_workloads
from berth.components.spec import BrokerSpec


def test_rabbitmq_is_healthy_only_once_its_listeners_accept_connections():
    # `rabbitmq-diagnostics ping` passes before the AMQP port is open (seen on the real image), so a
    # service created right after "healthy" failed to connect.
    (w,) = broker_workloads("mq", BrokerSpec(), "pw")
    assert w.health.command == ("CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity")


# ---------------------------------------------------------------- a secret shared through a StackReference

import pytest  # noqa: E402

from berth.components.app_service import stack_output_value  # noqa: E402
from berth.components.spec import ConfigError, StackSecret, parse_spec  # noqa: E402
from berth.record import record  # noqa: E402
from berth.record import ROOT  # noqa: E402

FM = ROOT / "examples" / "flow-masters"
BASE = {"target": "docker", "services": {"mcp": {"image": "mcp:1", "port": 3030}}}


def with_secret_env(**secret_env) -> dict:
    return {**BASE, "services": {"mcp": {**BASE["services"]["mcp"], "secret_env": secret_env}}}


def test_secret_env_from_another_stack_parses():
    spec = parse_spec(with_secret_env(API_KEY={"from_stack": "organization/flow-masters/prod-app",
                                               "output": "mcp_api_key"}))
    ref = spec.services["mcp"].secret_env["API_KEY"]
    assert ref == StackSecret(from_stack="organization/flow-masters/prod-app", output="mcp_api_key")


@pytest.mark.parametrize("secret_env, expected", [
    ({"API_KEY": {"from_stack": "prod-app", "output": "mcp_api_key"}},
     "berth:services.mcp.secret_env.API_KEY.from_stack = \"prod-app\": must name a stack as <organization>/<project>/<stack>"),
    ({"API_KEY": {"from_stack": "o/p/s", "output": "mcp-api-key"}},
     "berth:services.mcp.secret_env.API_KEY.output = \"mcp-api-key\": must be a stack output name"),
    ({"API_KEY": {"generate": True, "export": "url"}},
     "berth:services.mcp.secret_env.API_KEY.export = 'url': Berth exports 'url' itself"),
    ({"A": {"generate": True, "export": "key"}, "B": {"generate": True, "export": "key"}},
     "berth:services.mcp.secret_env.B.export = 'key': also exported by berth:services.mcp.secret_env.A"),
])
def test_bad_stack_secret_names_the_key(secret_env, expected):
    with pytest.raises(ConfigError) as e:
        parse_spec(with_secret_env(**secret_env))
    assert expected in str(e.value), str(e.value)


def test_a_missing_referenced_output_names_the_key_and_the_outputs_there():
    ref = StackSecret(from_stack="organization/flow-masters/prod-app", output="mcp_api_key")
    with pytest.raises(ConfigError) as e:
        stack_output_value({"url": "https://x", "services": {}}, "berth:services.mcp.secret_env.API_KEY", ref)
    text = str(e.value)
    assert "berth:services.mcp.secret_env.API_KEY = {from_stack: organization/flow-masters/prod-app" in text
    assert "has no output 'mcp_api_key' (its outputs: services, url)" in text
    assert "export: mcp_api_key" in text
    assert stack_output_value({"mcp_api_key": "k"}, "k", ref) == "k"


def test_the_distributed_stacks_share_one_api_key_through_a_stack_reference():
    app = record("prod-app", FM)
    mcp = record("prod-mcp", FM)
    # prod-app generates the key, gives it to its app and exports it (a secret output).
    (gen,) = [r for r in app.by_type("random:index/randomPassword:RandomPassword") if r.name == "app-env-MCP_API_KEY"]
    assert app.outputs["mcp_api_key"] == "<<berth:password:app-env-MCP_API_KEY>>"
    # prod-mcp generates none: it reads prod-app's output through a StackReference.
    assert not [r for r in mcp.by_type("random:index/randomPassword:RandomPassword") if "API_KEY" in r.name]
    # (A StackReference is read, not registered: the recording has no resource for it.)
    envs = mcp.find("docker:index/container:Container", "mcp").inputs["envs"]
    assert "API_KEY=<<berth:stack-output:organization/flow-masters/prod-app:mcp_api_key>>" in envs
