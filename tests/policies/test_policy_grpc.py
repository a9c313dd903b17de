"""The policy pack spoken to over its real gRPC protocol, started the way the Pulumi CLI starts it.

The engine (Pulumi CLI v3.274) starts a Python policy pack through the language host's ``RunPlugin``
RPC (kind ``analyzer``): ``pulumi-language-python`` runs ``python -u -m pulumi.policy <engine address>
<pack dir>`` with the pack directory as working directory, using the ``virtualenv`` runtime option of
PulumiPolicy.yaml if set, else ``python3`` from PATH. Its policy proxy learns the stack from the engine
and passes PULUMI_CONFIG (the stack config as JSON), PULUMI_PROJECT, PULUMI_STACK, PULUMI_DRY_RUN (and
PULUMI_ORGANIZATION) in the environment.
``pulumi.policy`` runs ``__main__.py`` with runpy; ``PolicyPack(...)`` serves the
``pulumirpc.Analyzer`` service on 127.0.0.1:<free port>, writes ``<port>\\n`` to stdout and blocks.
The engine address must be given; the Python SDK does not dial it (logging goes to stderr when no
engine is configured), but a fake Engine service listens there anyway and records any Log calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import subprocess
import sys
from concurrent import futures

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from berth.record import record
from rules import all_policies

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACK = ROOT / "policies"
PLACEHOLDER = re.compile(r"<<berth:[a-z-]+:[^<>]+>>")


class FakeEngine(engine_pb2_grpc.EngineServicer):
    def __init__(self):
        self.logs = []

    def Log(self, request, context):
        self.logs.append((request.severity, request.message))
        return empty_pb2.Empty()


@pytest.fixture(scope="module")
def engine():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    fake = FakeEngine()
    engine_pb2_grpc.add_EngineServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, f"127.0.0.1:{port}"
    server.stop(0)


def _start(address, stack, config):
    env = {**os.environ, "PULUMI_PROJECT": "berth", "PULUMI_STACK": stack, "PULUMI_DRY_RUN": "true",
           "PULUMI_CONFIG": json.dumps(config)}
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", address, str(PACK)], cwd=PACK, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        proc.kill()
        raise AssertionError(f"policy pack did not print its port: {line!r}\n{proc.stderr.read().decode()}")
    channel = grpc.insecure_channel(f"127.0.0.1:{line}")
    grpc.channel_ready_future(channel).result(timeout=20)
    return proc, channel


@contextlib.contextmanager
def _analyzer(engine, stack, config):
    _fake, address = engine
    proc, channel = _start(address, stack, config)
    try:
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        channel.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def analyzer(engine):
    with _analyzer(engine, "prod", {"berth:environment": "prod", "berth:target": "kubernetes"}) as stub:
        yield stub


@pytest.fixture(scope="module")
def dev_analyzer(engine):
    """The pack as started for the dev stack (the CLI passes that stack's config)."""
    with _analyzer(engine, "dev", {"berth:environment": "dev", "berth:target": "docker"}) as stub:
        yield stub


def struct(props, preview=True):
    text = json.dumps(props)
    if preview:  # a generated secret is unknown in preview: the whole string built from it is unknown
        text = json.dumps(_collapse(json.loads(PLACEHOLDER.sub(UNKNOWN_STRING_VALUE, text))))
    s = struct_pb2.Struct()
    s.update(json.loads(text))
    return s


def _collapse(v):
    if isinstance(v, str):
        return UNKNOWN_STRING_VALUE if UNKNOWN_STRING_VALUE in v else v
    if isinstance(v, dict):
        return {k: _collapse(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_collapse(x) for x in v]
    return v


def container(**over):
    props = {"name": "berth-prod-api", "image": "ghcr.io/easy-flow/api:1.4.0", "user": "10001:10001",
             "restart": "unless-stopped", "memory": 512, "capabilities": {"drops": ["ALL"]},
             "healthcheck": {"tests": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8000/health"]},
             "labels": [{"label": "berth.role", "value": "app"}, {"label": "berth.workload", "value": "api"}]}
    props.update(over)
    return props


def analyze(stub, props, name="api"):
    urn = f"urn:pulumi:prod::berth::berth:index:AppService$docker:index/container:Container::{name}"
    return stub.Analyze(analyzer_pb2.AnalyzeRequest(
        type="docker:index/container:Container", urn=urn, name=name, properties=struct(props),
        options=analyzer_pb2.AnalyzerResourceOptions()))


def stack_request(resources):
    return analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(
            type=r["type"], urn=r["urn"], name=r["name"], properties=struct(r["inputs"]),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r["protect"], parent=r["parent"]),
            parent=r["parent"], dependencies=r["dependsOn"])
        for r in resources])


def test_get_analyzer_info_lists_every_rule(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "berth-security" and info.supportsConfig
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in all_policies())
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels["docker-container-no-privileged"] == analyzer_pb2.MANDATORY
    assert levels["k8s-workload-read-only-root-filesystem"] == analyzer_pb2.ADVISORY
    by_name = {p.name: p for p in info.policies}
    assert "allowedHostPorts" in by_name["docker-container-host-ports-proxy-only"].configSchema.properties
    assert all(p.remediation_steps for p in info.policies)


def test_analyze_reports_a_violating_resource(analyzer):
    response = analyze(analyzer, container(privileged=True, networkMode="host", image="nginx:latest"))
    by_policy = {d.policyName: d for d in response.diagnostics}
    assert set(by_policy) == {"docker-container-no-privileged", "docker-container-no-host-namespaces",
                              "docker-image-no-latest-tag"}
    d = by_policy["docker-container-no-privileged"]
    assert d.enforcementLevel == analyzer_pb2.MANDATORY
    assert d.policyPackName == "berth-security"
    assert d.message.startswith("Docker containers must not run in privileged mode.\n")
    assert "container 'api' sets privileged=true" in d.message and "Fix: remove `privileged`" in d.message


def test_analyze_accepts_a_compliant_resource(analyzer):
    assert list(analyze(analyzer, container()).diagnostics) == []


def test_analyze_skips_unknown_secret_env_in_preview(analyzer):
    props = container(envs=["LOG_LEVEL=info", "DATABASE_URL=postgresql://u:<<berth:password:db>>@db/app"])
    props["labels"].append({"label": "berth.secret-envs", "value": "DATABASE_URL"})
    assert list(analyze(analyzer, props).diagnostics) == []


def test_analyze_stack_recorded_prod_has_no_mandatory_violation(analyzer):
    response = analyzer.AnalyzeStack(stack_request([r.to_json() for r in record("prod").resources]))
    mandatory = [d for d in response.diagnostics if d.enforcementLevel == analyzer_pb2.MANDATORY]
    assert mandatory == [], [d.message for d in mandatory]


def test_analyze_stack_blocks_an_insecure_prod_variant(analyzer):
    resources = [r.to_json() for r in record("prod").resources]
    for r in resources:
        if r["name"] == "db-service":
            r["inputs"]["spec"]["type"] = "LoadBalancer"
        if r["name"] == "db-statefulset":
            r["protect"] = False
    response = analyzer.AnalyzeStack(stack_request(resources))
    blocked = {d.policyName for d in response.diagnostics if d.enforcementLevel == analyzer_pb2.MANDATORY}
    assert {"k8s-service-no-public-datastore", "stack-database-storage-protected"} <= blocked
    urns = {d.urn for d in response.diagnostics if d.policyName == "k8s-service-no-public-datastore"}
    assert any(u.endswith("::db-service") for u in urns)


def test_configure_changes_config_and_enforcement(analyzer):
    """What `--policy-pack-config` becomes on the wire: ConfigureAnalyzerRequest."""
    proxy = container(ports=[{"internal": 9000, "external": 8081, "ip": "127.0.0.1"}])
    proxy["labels"][0]["value"] = "proxy"
    assert [d.policyName for d in analyze(analyzer, proxy).diagnostics] == ["docker-container-host-ports-proxy-only"]
    props = struct_pb2.Struct()
    props.update({"allowedHostPorts": [80, 443, 8081]})
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
        "docker-container-host-ports-proxy-only": analyzer_pb2.PolicyConfig(
            enforcementLevel=analyzer_pb2.MANDATORY, properties=props),
        "docker-container-no-privileged": analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.ADVISORY),
    }))
    try:
        assert list(analyze(analyzer, proxy).diagnostics) == []
        diags = analyze(analyzer, container(privileged=True)).diagnostics
        assert [(d.policyName, d.enforcementLevel) for d in diags] == [
            ("docker-container-no-privileged", analyzer_pb2.ADVISORY)]
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={}))


def test_the_pack_did_not_need_the_engine(engine):
    fake, _ = engine
    assert [m for sev, m in fake.logs if "error" in m.lower()] == []


# ---------------------------------------------------------------- as the engine does, for whole stacks


def _engine_pass(stub, resources):
    """What the engine does during a preview: Analyze each resource as it is registered, then
    AnalyzeStack once. Returns every mandatory diagnostic as (policy, urn)."""
    found = []
    for r in resources:
        response = stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=r["type"], urn=r["urn"], name=r["name"], properties=struct(r["inputs"]),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r["protect"], parent=r["parent"])))
        found += [(d.policyName, d.urn or r["urn"], d.message) for d in response.diagnostics
                  if d.enforcementLevel == analyzer_pb2.MANDATORY]
    response = stub.AnalyzeStack(stack_request(resources))
    found += [(d.policyName, d.urn, d.message) for d in response.diagnostics
              if d.enforcementLevel == analyzer_pb2.MANDATORY]
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_own_stack_passes_every_analyze_call(analyzer, dev_analyzer, stack):
    resources = [r.to_json() for r in record(stack).resources]
    assert len(resources) > 30
    assert _engine_pass(dev_analyzer if stack == "dev" else analyzer, resources) == []


def test_every_insecure_variant_is_blocked_over_grpc(analyzer, dev_analyzer):
    """The same insecure variants as tests/policies/test_policy_stacks.py, through the protocol:
    each one gets its rule's mandatory diagnostic, with a message that says how to fix it."""
    import copy

    from test_policy_stacks import VARIANTS

    base = {s: [r.to_json() for r in record(s).resources] for s in ("dev", "prod")}
    missed = []
    for (stack, what), (mutate, policy) in VARIANTS.items():
        rs = copy.deepcopy(base[stack])
        mutate(rs)
        stub = dev_analyzer if stack == "dev" else analyzer
        hits = [m for p, _u, m in _engine_pass(stub, rs) if p == policy]
        if not hits or "Fix:" not in hits[0]:
            missed.append(f"{stack}: {what} -> {policy}")
    assert missed == [], missed
    assert len(VARIANTS) >= 30


@pytest.mark.parametrize("variant", ["compliant", "all-insecure"])
def test_raw_program_over_grpc(analyzer, variant):
    """A program with no Berth code (tests/policies/raw_program) through the protocol, as the engine does."""
    from raw_program.variants import CONFIG_KEY, STACK, VARIANTS

    resources = [r.to_json() for r in record(STACK, project_dir=PACK.parent / "tests" / "policies" / "raw_program",
                                             config={CONFIG_KEY: variant}).resources]
    assert {p for p, _u, _m in _engine_pass(analyzer, resources)} == VARIANTS[variant]
