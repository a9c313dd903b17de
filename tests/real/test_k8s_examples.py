"""The seed examples that target Kubernetes, deployed to the real test cluster by the real CLI.

Examples with ``berth:target: kubernetes``:
  * ``examples/easy-flow/Pulumi.prod.yaml`` — the same config as the repo's ``Pulumi.prod.yaml``
    (checked below), which ``test_k8s_prod.py`` deploys end to end;
  * ``examples/wishlins/Pulumi.k8s.yaml`` — deployed here with ``pulumi up`` (its images mapped to
    local test images, see ``WISHLINS_IMAGES``; storage 1Gi and CPU requests 100m: the node has 2 cores);
  * ``examples/microservices/Pulumi.prod.yaml`` — deployed in part (``microservices_broker_config``):
    its broker, with user-service on it and on PostgreSQL and Redis, and its Neo4j (the stand-in image
    of tests/images/neo4j), to show RabbitMQ's one user per vhost and Neo4j's read-only root on the
    cluster. The whole stack needs Elasticsearch, which cannot be had on these machines (its Docker dev
    stack runs on Podman, without it, in test_seed_microservices.py).

The cluster must be up with the test images loaded (CI: ``.ci/k8s/up.sh`` and
``.ci/k8s/load-images.sh``) and the engine on PATH; nothing here starts or skips anything.
"""

from __future__ import annotations

import base64
import copy
import contextlib
import json
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from berth.record import ROOT, record
from tests.real import kube
from tests.real.kube import kubectl, kubectl_json
from tests.real.stacks.seeds import APP_IMAGE, IMAGES
from tests.real.pulumi_cli import VENV, EngineMissing, Pulumi, write_stack_config

pytestmark = pytest.mark.real_k8s

EXAMPLES = ROOT / "examples"

#: The wishlins images -> local test images. The app images are the vendor's and not obtainable here:
#: the frontend (nginx serving a static build on 8080 as a non-root user) maps to berth-nginx:1 (the
#: same kind of server, port and user), the backend (a uvicorn app with /api/health) to
#: berth-testapp:1. The bot has no stand-in that runs `python -m bot`: it maps to berth-testapp:1 with
#: its command replaced by the test app's server (BOT_COMMAND, which also touches /tmp/bot-alive as
#: the bot does for its health check), so what is shown for the bot is that its pod (security context,
#: env, secrets, network policy, probes) is admitted and runs, not the bot itself.
WISHLINS_IMAGES = {
    "frontend": "localhost/berth-nginx:1",
    "backend": "localhost/berth-testapp:1",
    "bot": "localhost/berth-testapp:1",
}
BOT_COMMAND = ["sh", "-c", "(while :; do touch /tmp/bot-alive; sleep 5; done) & "
               "exec uvicorn app.main:app --host 0.0.0.0 --port 8000"]


def _stack_config(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["config"]


def _containers(manifest: dict) -> list[dict]:
    spec = manifest.get("spec") or {}
    spec = ((spec.get("jobTemplate") or {}).get("spec") or spec)
    pod = (spec.get("template") or {}).get("spec") or {}
    return (pod.get("containers") or []) + (pod.get("initContainers") or [])


def _k8s_examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*/Pulumi.*.yaml")
                  if _stack_config(p).get("berth:target") == "kubernetes")


def test_the_kubernetes_examples_are_the_known_ones():
    """A new Kubernetes example must be added here (applied, or listed as not obtainable)."""
    names = {str(p.relative_to(EXAMPLES)) for p in _k8s_examples()}
    assert names == {"easy-flow/Pulumi.prod.yaml", "wishlins/Pulumi.k8s.yaml", "microservices/Pulumi.prod.yaml"}, names


def test_easy_flow_prod_is_the_e2e_stack():
    """easy-flow's prod stack is the repo's prod stack, deployed by test_k8s_prod.py."""
    assert _stack_config(EXAMPLES / "easy-flow" / "Pulumi.prod.yaml") == _stack_config(ROOT / "Pulumi.prod.yaml")


def wishlins_config() -> dict:
    cfg = copy.deepcopy(_stack_config(EXAMPLES / "wishlins" / "Pulumi.k8s.yaml"))
    for name, svc in cfg["berth:services"].items():
        svc["image"] = WISHLINS_IMAGES[name]
        if "resources" in svc:
            svc["resources"]["cpu"] = "100m"
    cfg["berth:services"]["bot"]["command"] = BOT_COMMAND
    # A namespace of this test's own: previews of the stack file dry-run into "wishlins" meanwhile.
    cfg["berth:kubernetes"]["namespace"] = "berth-t-wishlins"
    for db in cfg["berth:databases"].values():
        db["image"] = "localhost/berth-postgres:15"
        db["storage"] = "1Gi"
        if "resources" in db:
            db["resources"]["cpu"] = "100m"
    for b in cfg.get("berth:backups", {}).values():
        b["image"] = "localhost/berth-backup:1"
        b["storage"] = "1Gi"
    return cfg


@contextlib.contextmanager
def deployed(tmp_path: Path, example: str, stack: str, cfg: dict):
    """The example's own program with ``cfg`` as its stack, up (every await passed) and then no
    changes on a second preview; destroyed afterwards, protected resources too."""
    try:
        kube.check_cluster()
    except kube.ClusterMissing as e:
        pytest.fail(str(e), pytrace=False)
    rec = record("k8s", project_dir=EXAMPLES / example, config=cfg)
    foreign = sorted({c["image"] for r in rec.resources for c in _containers(r.inputs)
                      if not c["image"].startswith("localhost/berth-")})
    assert not foreign, foreign
    project = tmp_path / "project"
    project.mkdir()
    meta = yaml.safe_load((EXAMPLES / example / "Pulumi.yaml").read_text())
    meta["runtime"]["options"]["virtualenv"] = str(VENV)
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    shutil.copy(EXAMPLES / example / "__main__.py", project / "__main__.py")
    write_stack_config(project, stack, cfg)
    try:
        p = Pulumi(project, stack, tmp_path / "state", env_extra=kube.kube_env(), log=print)
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    ns = cfg["berth:kubernetes"]["namespace"]
    kube.forget_namespace(ns)
    p.init()
    t0 = time.monotonic()
    try:
        with kube.ingress_status_standin():
            p.up()
        print(f"\n{example}: pulumi up (every await passed) in {time.monotonic() - t0:.1f}s", flush=True)
        p.expect_no_changes()
        yield ns
    finally:
        p.run("state", "unprotect", "--all", "--yes", check=False)
        p.destroy(check=False)
        kube.forget_namespace(ns)


def test_wishlins_k8s_deployed_and_every_pod_ready(tmp_path):
    cfg = wishlins_config()
    with deployed(tmp_path, "wishlins", "k8s", cfg) as ns:
        labels = kubectl_json("get", "namespace", ns)["metadata"]["labels"]
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", labels

        def backend_scaled():
            d = kubectl_json("-n", ns, "get", "deployment", "backend")
            return d["spec"].get("replicas") == 2 and d["status"].get("availableReplicas") == 2

        deadline = time.monotonic() + 120
        while not backend_scaled():
            assert time.monotonic() < deadline, "HPA did not scale backend to minReplicas=2"
            time.sleep(2)
        items = kubectl_json("-n", ns, "get", "pods")["items"]
        by_app: dict[str, list[dict]] = {}
        for pod in items:
            by_app.setdefault(pod["metadata"]["labels"].get("app.kubernetes.io/name", "?"), []).append(pod)
        for pod in items:
            st = pod["status"]
            ok = st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses") or [{}])
            assert ok or st.get("phase") == "Succeeded", (pod["metadata"]["name"], st)
            assert pod["spec"]["securityContext"].get("runAsNonRoot") is True
        for name, n in {"frontend": 1, "backend": 2, "bot": 1, "db": 1, "db-replica": 1}.items():
            assert len(by_app.get(name, [])) == n, (name, sorted(by_app))
        # The primary streams to the replica. The replica is ready once it accepts reads as a hot
        # standby; its WAL receiver connects and catches up after that (state `startup`, then
        # `catchup`, then `streaming`), so `up` can return before the stream runs: wait for it, bounded.
        def streaming() -> bool:
            out = kubectl("-n", ns, "exec", "db-0", "--", "psql", "-X", "-t", "-A", "-U", "postgres", "-d", "wishlins",
                          "-c", "SELECT string_agg(state, ',') FROM pg_stat_replication").stdout.strip()
            assert out == "streaming", f"replication state: {out!r}"
            return True
        kube.eventually(streaming, timeout=60, interval=2, what="the primary streaming to the replica")


#: What the broker part of microservices' prod stack leaves out: every service but user-service (the
#: others use MongoDB, or route to them), MongoDB, ELK, monitoring and the proxy. Neo4j stays, smaller.
MICRO_SERVICE = "user-service"


def microservices_broker_config() -> dict:
    cfg = copy.deepcopy(_stack_config(EXAMPLES / "microservices" / "Pulumi.prod.yaml"))
    for key in ("berth:proxy", "berth:domain"):
        cfg.pop(key)
    cfg["berth:graphs"]["neo4j"].update(image=IMAGES["neo4j"], storage="1Gi", heap="256m", page_cache="64m", resources={
        "cpu": "100m", "memory": "768Mi", "cpu_limit": "1", "memory_limit": "1Gi"})
    cfg["berth:monitoring"] = {"enabled": False}
    cfg["berth:logging"] = {"enabled": False}
    cfg["berth:kubernetes"]["namespace"] = "berth-t-micro"
    cfg["berth:kubernetes"].pop("capacity", None)
    svc = cfg["berth:services"][MICRO_SERVICE]
    cfg["berth:services"] = {MICRO_SERVICE: {**svc, "image": APP_IMAGE,
                                              "resources": {**svc["resources"], "cpu": "50m"}}}
    cfg["berth:databases"] = {"postgres": {**cfg["berth:databases"]["postgres"], "image": IMAGES["postgres"],
                                           "storage": "1Gi"}}
    cfg["berth:backups"] = {"postgres": {**cfg["berth:backups"]["postgres"], "image": IMAGES["backup-postgres"],
                                         "storage": "1Gi"}}
    cfg["berth:caches"]["redis"]["image"] = IMAGES["redis"]
    cfg["berth:brokers"]["rabbitmq"]["image"] = IMAGES["rabbitmq"]
    return cfg


def _secret_from(ns: str, kind: str, name: str, var: str) -> str:
    """The value of ``var`` in the container ``name`` of the workload, from the Secret it refers to."""
    d = kubectl_json("-n", ns, "get", kind, name)
    (c,) = [c for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    (ref,) = [e["valueFrom"]["secretKeyRef"] for e in c.get("env") or [] if e["name"] == var]
    secret = kubectl_json("-n", ns, "get", "secret", ref["name"])
    return base64.b64decode(secret["data"][ref["key"]]).decode()


def test_microservices_broker_and_graph_on_k8s(tmp_path):
    """RabbitMQ on the cluster, as on Podman (test_seed_microservices.py): its only user is the one in
    the services' AMQP_URL (no tags: no management UI, not an administrator), allowed on the stack's
    vhost only; no guest; the service is ready on it; the broker's root is read-only. Neo4j runs with a
    read-only root (its conf directory a copy an init container fills) and takes the stack's password."""
    cfg = microservices_broker_config()
    with deployed(tmp_path, "microservices", "prod", cfg) as ns:
        url = urlsplit(_secret_from(ns, "deployment", MICRO_SERVICE, "AMQP_URL"))
        user, vhost = unquote(url.username or ""), unquote(url.path.lstrip("/"))
        assert vhost == "philos" and user and url.hostname == "rabbitmq", url._replace(netloc=url.hostname or "").geturl()

        def ctl(*args: str, check: bool = True) -> str:
            r = kubectl("-n", ns, "exec", "rabbitmq-0", "-c", "rabbitmq", "--", "rabbitmqctl", *args, check=check)
            return r.stdout + (r.stderr if not check else "")

        assert ctl("list_users", "-q", "--no-table-headers").split() == [user, "[]"]
        assert ctl("list_user_permissions", user, "-q", "--no-table-headers").split() == [vhost, ".*", ".*", ".*"]
        assert ctl("list_vhosts", "-q", "--no-table-headers").split() == [vhost]
        out = ctl("authenticate_user", "guest", "guest", check=False)
        assert "invalid credentials" in out or "not found" in out, out
        pod = kubectl_json("-n", ns, "get", "pod", "rabbitmq-0")
        (broker,) = [c for c in pod["spec"]["containers"] if c["name"] == "rabbitmq"]
        assert broker["securityContext"].get("readOnlyRootFilesystem") is True, broker["securityContext"]
        # Neo4j: read-only root, the seeded conf directory, and the stack's password.
        pod = kubectl_json("-n", ns, "get", "pod", "neo4j-0")
        (graph,) = [c for c in pod["spec"]["containers"] if c["name"] == "neo4j"]
        assert graph["securityContext"].get("readOnlyRootFilesystem") is True, graph["securityContext"]
        auth = _secret_from(ns, "statefulset", "neo4j", "NEO4J_AUTH").replace("/", ":", 1)  # neo4j/<password>
        body = '{"statements":[{"statement":"RETURN 41 + 1"}]}'
        out = kubectl("-n", ns, "exec", "neo4j-0", "-c", "neo4j", "--", "wget", "-q", "-O", "-",
                      "--header=Content-Type: application/json",
                      "--header=Authorization: Basic " + base64.b64encode(auth.encode()).decode(),
                      f"--post-data={body}", "http://127.0.0.1:7474/db/neo4j/tx/commit").stdout
        assert json.loads(out)["results"][0]["data"][0]["row"] == [42], out
        probe = "for d in / /var/lib/neo4j /var/lib/neo4j/conf /data /logs; do touch $d/.p 2>/dev/null && echo $d; done"
        assert kubectl("-n", ns, "exec", "neo4j-0", "-c", "neo4j", "--", "sh", "-c", probe).stdout.split() == [
            "/var/lib/neo4j/conf", "/data", "/logs"]
        ready = kubectl("-n", ns, "exec", f"deploy/{MICRO_SERVICE}", "--", "python3", "-c",
                        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:4001/ready', "
                        "timeout=10).read().decode())").stdout
        assert set(json.loads(ready)["checks"]) == {"database", "redis", "amqp"}, ready
