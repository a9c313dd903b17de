"""The five seed architectures (``examples/``) as ready stacks: each evaluates under the recording
mocks with the same program as ``pulumi up``, passes the policy pack, renders valid Kubernetes
manifests, and has what its seed needs (see each example's README)."""

from __future__ import annotations

import functools
import pathlib
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from berth.record import ROOT, Recording, record
from tests.unit.support import docker_files

EXAMPLES = ROOT / "examples"
# The policy pack's `rules` package and its in-process harness (tests/policies/policy_harness.py).
for _p in (ROOT / "policies", ROOT / "tests" / "policies"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

STACKS = sorted(
    (p.parent.name, p.name[len("Pulumi."):-len(".yaml")])
    for p in EXAMPLES.glob("*/Pulumi.*.yaml")
)
EXPECTED = {
    "flow-masters": {"dev", "prod", "prod-app", "prod-mcp"},
    "easy-flow": {"prod", "prod-docker"},
    "crm-staging-prod": {"staging", "production"},
    "microservices": {"prod", "dev"},
    "wishlins": {"prod", "k8s"},
}
#: Per-stack policy configuration a team would ship with the stack: staging shares the host with
#: production, so its proxy publishes 8080/8443 (see examples/crm-staging-prod/README.md).
PACK_CONFIG = {
    ("crm-staging-prod", "staging"): {"docker-container-host-ports-proxy-only": {"allowedHostPorts": [8080, 8443]}},
}


def stack_file(example: str, stack: str) -> dict:
    return yaml.safe_load((EXAMPLES / example / f"Pulumi.{stack}.yaml").read_text())["config"]


@functools.lru_cache(maxsize=None)
def _tls_dir() -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="berth-examples-tls-"))
    (d / "fullchain.pem").write_text("-----BEGIN CERTIFICATE-----\nexample\n-----END CERTIFICATE-----\n")
    (d / "privkey.pem").write_text("-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n")
    return d


@functools.lru_cache(maxsize=None)
def recorded(example: str, stack: str) -> Recording:
    """The example's stack as the program declares it. TLS ``files`` (certbot paths on the deploy
    machine) are pointed at stand-in files: the proxy reads them while the program runs."""
    config = stack_file(example, stack)
    tls = (config.get("berth:proxy") or {}).get("tls") or {}
    if tls.get("mode") == "files":
        tls["cert_file"] = str(_tls_dir() / "fullchain.pem")
        tls["key_file"] = str(_tls_dir() / "privkey.pem")
    return record(stack, project_dir=EXAMPLES / example, config=config)


def containers(rec: Recording) -> dict[str, dict]:
    return {r.inputs["name"]: r.inputs for r in rec.by_type("docker:index/container:Container")}


def container(rec: Recording, workload: str) -> dict:
    for c in containers(rec).values():
        labels = {l["label"]: l["value"] for l in c.get("labels", [])}
        if labels.get("berth.workload") == workload:
            return c
    raise KeyError(f"no container for workload {workload}; have {sorted(containers(rec))}")


def env_names(c: dict) -> set[str]:
    return {e.split("=", 1)[0] for e in c.get("envs", [])}


def k8s(rec: Recording, kind: str) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in rec.resources
            if r.custom and r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}")}


def main_container(obj: dict) -> dict:
    spec = obj["spec"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"] if "jobTemplate" in spec else spec["template"]["spec"]
    return pod["containers"][0]


# ---------------------------------------------------------------- every example


def test_every_seed_has_its_stacks():
    found: dict[str, set[str]] = {}
    for ex, st in STACKS:
        found.setdefault(ex, set()).add(st)
    assert found == EXPECTED


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_is_a_runnable_project(example):
    d = EXAMPLES / example
    project = yaml.safe_load((d / "Pulumi.yaml").read_text())
    assert project["name"] == example and project["runtime"]["name"] == "python"
    main = (d / "__main__.py").read_text()
    # Berth used as an installed package: no path tricks, nothing but the package's entry point.
    assert main.split() == ["import", "berth", "berth.main()"], main
    assert "sys.path" not in main
    assert (d / "README.md").read_text().count("Not covered") == 1


@pytest.mark.parametrize(("example", "stack"), STACKS)
def test_example_stack_evaluates(example, stack):
    rec = recorded(example, stack)
    assert rec.project == example
    types = Counter(r.type for r in rec.resources)
    assert types["berth:index:Platform"] == 1
    assert types["berth:index:AppService"] >= 1
    target = stack_file(example, stack)["berth:target"]
    assert rec.outputs["target"] == target
    if target == "docker":
        assert types["docker:index/container:Container"] >= 2
    else:
        assert types["kubernetes:core/v1:Namespace"] == 1


@pytest.mark.parametrize(("example", "stack"), STACKS)
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_example_stack_passes_the_policy_pack(example, stack, preview):
    from policy_harness import mandatory, run_pack

    items = [r.to_json() for r in recorded(example, stack).resources]
    bad = mandatory(run_pack(items, PACK_CONFIG.get((example, stack)), preview=preview))
    assert bad == [], "\n".join(map(str, bad))


def test_staging_needs_its_port_config_for_the_pack():
    """Without the staging policy config the pack blocks 8080/8443: the config above is load-bearing."""
    from policy_harness import mandatory, run_pack

    items = [r.to_json() for r in recorded("crm-staging-prod", "staging").resources]
    assert {v.policy for v in mandatory(run_pack(items))} == {"docker-container-host-ports-proxy-only"}


K8S_STACKS = [(e, s) for e, s in STACKS if stack_file(e, s)["berth:target"] == "kubernetes"]


@pytest.mark.parametrize(("example", "stack"), K8S_STACKS)
def test_example_kubernetes_manifests_validate(example, stack):
    import kubernetes_validate

    from berth.render import is_kubernetes, manifest

    docs = [manifest(r) for r in recorded(example, stack).resources if is_kubernetes(r)]
    assert len(docs) > 10
    for m in docs:
        try:
            kubernetes_validate.validate(m, "1.31", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{m['kind']}/{m['metadata'].get('name')}: {exc}")


@pytest.mark.parametrize(("example", "stack"), [(e, s) for e, s in STACKS if (e, s) not in K8S_STACKS])
def test_example_docker_publishes_only_the_proxy(example, stack):
    rec = recorded(example, stack)
    published = {name for name, c in containers(rec).items() if c.get("ports")}
    assert len(published) == 1 and all(n.endswith("-proxy") for n in published)
    internal = [r.inputs for r in rec.by_type("docker:index/network:Network") if r.inputs.get("internal")]
    assert len(internal) == 1


# ---------------------------------------------------------------- A: Flow Masters


def test_flow_masters_mcp_calls_the_app_by_name_after_it_is_healthy():
    for stack in ("dev", "prod"):
        rec = recorded("flow-masters", stack)
        mcp = container(rec, "mcp")
        assert "API_URL=http://app:3000" in mcp["envs"]
        assert "API_KEY" in env_names(mcp)
        app = rec.find("docker:index/container:Container", "app")
        mcp_res = rec.find("docker:index/container:Container", "mcp")
        assert app.urn in mcp_res.depends_on
        assert "/mcp/health" in " ".join(mcp["healthcheck"]["tests"])
        assert "/api/health" in " ".join(container(rec, "app")["healthcheck"]["tests"])


def test_flow_masters_api_key_differs_per_environment():
    keys = {s: [r.urn for r in recorded("flow-masters", s).by_type("random:index/randomPassword:RandomPassword")
                if "api-key" in r.name.lower().replace("_", "-")] for s in ("dev", "prod", "prod-app", "prod-mcp")}
    # One generated key per stack (stack-scoped state); the distributed pair shares prod-app's key:
    # prod-mcp reads it through a StackReference and generates none.
    assert {s: len(v) for s, v in keys.items()} == {"dev": 1, "prod": 1, "prod-app": 1, "prod-mcp": 0}, keys


def test_flow_masters_distributed_topology():
    app = recorded("flow-masters", "prod-app")
    mcp = recorded("flow-masters", "prod-mcp")
    assert {"app", "mongo"} <= {c["hostname"] for c in containers(app).values()}
    assert "mcp" not in {c["hostname"] for c in containers(app).values()}
    hosts = {c["hostname"] for c in containers(mcp).values()}
    assert hosts == {"mcp", "proxy", "proxy-files"}  # no database on host 2 (proxy-files: nginx.conf's writer)
    m = container(mcp, "mcp")
    assert "API_URL=https://flow-masters.ru" in m["envs"]
    assert len(m["networksAdvanced"]) == 2  # egress: it calls host 1 over HTTPS
    providers = {r.inputs.get("host") for r in [*app.resources, *mcp.resources] if r.type == "pulumi:providers:docker"}
    assert providers == {"ssh://deploy@flow-masters.ru", "ssh://deploy@mcp.example.com"}


# ---------------------------------------------------------------- B: Easy Flow


def test_easy_flow_docker_and_kubernetes_run_the_same_services():
    docker = recorded("easy-flow", "prod-docker")
    kube = recorded("easy-flow", "prod")
    assert sum(1 for c in containers(docker).values() if c["hostname"] == "api") == 3
    assert sum(1 for c in containers(docker).values() if c["hostname"] == "worker") == 2
    hpa = k8s(kube, "HorizontalPodAutoscaler")["api"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert {"db", "db-replica", "redis"} <= set(k8s(kube, "StatefulSet"))
    assert {"db", "db-replica", "redis"} <= {c["hostname"] for c in containers(docker).values()}


# ---------------------------------------------------------------- C: CRM staging + production


def test_crm_staging_and_production_do_not_collide_on_one_host():
    st, pr = recorded("crm-staging-prod", "staging"), recorded("crm-staging-prod", "production")
    hosts = {stack_file("crm-staging-prod", s)["berth:docker"]["host"] for s in ("staging", "production")}
    assert len(hosts) == 1  # the same Docker host: that is what makes collisions possible

    def names(rec, typ):
        return {r.inputs["name"] for r in rec.by_type(typ)}

    for typ in ("docker:index/container:Container", "docker:index/volume:Volume", "docker:index/network:Network"):
        a, b = names(st, typ), names(pr, typ)
        assert a and b and not (a & b), (typ, a & b)
    built = lambda rec: {r.inputs["imageName"] for r in rec.by_type("docker:index/image:Image")}  # noqa: E731
    assert not (built(st) & built(pr))

    def ports(rec):
        return {(p.get("ip", "0.0.0.0"), p["external"]) for c in containers(rec).values() for p in c.get("ports", [])}

    ps, pp = ports(st), ports(pr)
    assert {p for _, p in ps} == {8080, 8443} and {p for _, p in pp} == {80, 443}
    assert not ({p for _, p in ps} & {p for _, p in pp})


def test_crm_production_backs_up_before_deploying():
    pr = recorded("crm-staging-prod", "production")
    dump = [c for c in containers(pr).values() if "predeploy-backup" in c["name"] and not c["name"].endswith("-files")]
    assert len(dump) == 1 and dump[0]["mustRun"] is False
    web = pr.find("docker:index/container:Container", "web")
    dump_res = next(r for r in pr.by_type("docker:index/container:Container")
                    if "predeploy-backup" in r.name and not r.name.endswith("-files"))
    assert dump_res.urn in web.depends_on
    assert "/api/health" in " ".join(container(pr, "web")["healthcheck"]["tests"])
    st = recorded("crm-staging-prod", "staging")
    assert not [c for c in containers(st).values() if "predeploy-backup" in c["name"]]


# ---------------------------------------------------------------- D: microservices


def test_microservices_kubernetes():
    rec = recorded("microservices", "prod")
    deployments, statefulsets = k8s(rec, "Deployment"), k8s(rec, "StatefulSet")
    for name, port in (("api-gateway", 4000), ("user-service", 4001), ("concept-service", 4002),
                       ("graph-service", 4003), ("thesis-service", 4004)):
        c = main_container(deployments[name])
        assert c["ports"][0]["containerPort"] == port
        assert c["livenessProbe"]["httpGet"]["path"] == "/health"
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {"frontend", "api-gateway"} <= set(k8s(rec, "HorizontalPodAutoscaler"))
    images = {n: main_container(s)["image"] for n, s in statefulsets.items()}
    assert images["postgres"] == "postgres:14" and images["mongo"] == "mongo:5.0"
    assert images["neo4j"] == "neo4j:4.4" and images["rabbitmq"].startswith("rabbitmq:3.13-management")
    assert {"redis", "elasticsearch", "prometheus", "grafana"} <= set(statefulsets)
    assert {"logstash", "kibana"} <= set(deployments)
    claim = statefulsets["postgres"]["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert claim == "10Gi"
    policies = k8s(rec, "NetworkPolicy")
    assert "default-deny" in policies

    def sources(name):
        rules = policies[name]["spec"]["ingress"]
        return {f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                for r in rules for f in r["from"] if "podSelector" in f}

    assert {"user-service", "thesis-service"} <= sources("postgres") and "frontend" not in sources("postgres")
    assert sources("neo4j") == {"graph-service"}
    assert {"user-service", "concept-service", "graph-service", "thesis-service"} == sources("rabbitmq")
    assert "api-gateway" in sources("user-service")
    assert set(sources("logstash")) >= {"api-gateway", "frontend"}
    assert "JWT_SECRET" in {e["name"] for e in main_container(deployments["api-gateway"])["env"]}
    graph_env = {e["name"]: e for e in main_container(deployments["graph-service"])["env"]}
    for var in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "AMQP_URL"):
        assert "secretKeyRef" in graph_env[var]["valueFrom"]
    assert graph_env["LOGSTASH_HOST"]["value"] == "logstash"
    ingress = [i for i in k8s(rec, "Ingress").values()]
    assert ingress and all(i["spec"]["tls"] for i in ingress)


def test_microservices_docker_dev_waits_for_healthy_dependencies():
    rec = recorded("microservices", "dev")
    gw = rec.find("docker:index/container:Container", "api-gateway")
    for dep in ("user-service", "concept-service", "graph-service", "thesis-service", "redis"):
        dep_res = rec.find("docker:index/container:Container", dep)
        assert dep_res.urn in gw.depends_on
        assert dep_res.inputs["wait"] is True and dep_res.inputs["healthcheck"]["tests"]
    graph = rec.find("docker:index/container:Container", "graph-service")
    assert rec.find("docker:index/container:Container", "neo4j").urn in graph.depends_on
    for store in ("postgres", "mongo", "neo4j", "redis", "rabbitmq", "elasticsearch"):
        c = container(rec, store)
        assert c["wait"] is True and "ports" not in c


# ---------------------------------------------------------------- E: Wishlins


def test_wishlins_bot_has_no_ports_and_the_database_is_not_published():
    rec = recorded("wishlins", "prod")
    bot = container(rec, "bot")
    assert "ports" not in bot
    # No HTTP check without a port: the bot's own heartbeat file instead.
    assert "/tmp/bot-alive" in bot["healthcheck"]["tests"][-1]
    assert len(bot["networksAdvanced"]) == 2  # egress to the Telegram API
    assert "BOT_TOKEN" in env_names(bot) and "API_URL=http://backend:8000" in bot["envs"]
    db = container(rec, "db")
    assert "ports" not in db and [n["name"] for n in db["networksAdvanced"]] == ["wishlins-internal"]
    proxy = container(rec, "proxy")
    assert sorted(p["external"] for p in proxy["ports"]) == [80, 443]
    conf = docker_files(rec, "proxy")["/etc/nginx/berth/nginx.conf"]
    assert "location /api/" in conf and "location / " in conf
    kube = recorded("wishlins", "k8s")
    bot_pod = main_container(k8s(kube, "Deployment")["bot"])
    assert "ports" not in bot_pod
    assert k8s(kube, "Service").keys() >= {"frontend", "backend", "db"} and "bot" not in k8s(kube, "Service")


TIERS = {"daily": ("0 2 * * *", 7), "weekly": ("0 3 * * 0", 4), "monthly": ("0 4 1 * *", 6)}


def test_wishlins_backup_tiers():
    kube = recorded("wishlins", "k8s")
    crons = k8s(kube, "CronJob")
    for tier, (schedule, keep) in TIERS.items():
        job = crons[f"db-backup-{tier}"]
        assert job["spec"]["schedule"] == schedule
        assert main_container(job)["args"][-2:] == [tier, str(keep)]
    docker = recorded("wishlins", "prod")
    crontab = docker_files(docker, "db-backup")["/berth/crontab"]
    for tier, (schedule, keep) in TIERS.items():
        line = next(l for l in crontab.splitlines() if l.startswith(schedule))
        assert tier in line and str(keep) in line.split()
