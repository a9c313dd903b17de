"""The seed examples that target Kubernetes, applied to the real test cluster (issue 9, part 4).

Examples with ``berth:target: kubernetes``:
  * ``examples/easy-flow/Pulumi.prod.yaml`` — the same config as the repo's ``Pulumi.prod.yaml``
    (checked below), which ``test_k8s_e2e.py`` deploys end to end;
  * ``examples/wishlins/Pulumi.k8s.yaml`` — applied here with its images mapped to local test images
    (see ``WISHLINS_IMAGES``), storage 1Gi and CPU requests 100m (the node has 2 cores);
  * ``examples/microservices/Pulumi.prod.yaml`` — NOT applied: it needs MongoDB, Neo4j, RabbitMQ and
    the ELK logging stack, none of which has a local test image on these machines.

The cluster must be up with the test images loaded (CI: ``.ci/k8s/up.sh`` and
``.ci/k8s/load-images.sh``); nothing here starts or skips anything.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from berth.record import ROOT, record
from tests.real import k8s_applier as ka
from tests.real.k8s_applier import Applier, kubectl, kubectl_json

pytestmark = pytest.mark.real_k8s

EXAMPLES = ROOT / "examples"

#: The wishlins images -> local test images. The app images are the vendor's and not obtainable here:
#: the frontend (nginx serving a static build on 8080 as a non-root user) maps to berth-nginx:1 (the
#: same kind of server, port and user), the backend (a uvicorn app with /api/health) to
#: berth-testapp:1. The bot has no stand-in that runs `python -m bot`: it maps to berth-testapp:1 with
#: its command replaced by the test app's server (BOT_COMMAND), so what is shown for the bot is that
#: its pod (security context, env, secrets, network policy) is admitted and runs, not the bot itself.
WISHLINS_IMAGES = {
    "frontend": "localhost/berth-nginx:1",
    "backend": "localhost/berth-testapp:1",
    "bot": "localhost/berth-testapp:1",
}
BOT_COMMAND = ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]


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
    """easy-flow's prod stack is the repo's prod stack, deployed by test_k8s_e2e.py."""
    assert _stack_config(EXAMPLES / "easy-flow" / "Pulumi.prod.yaml") == _stack_config(ROOT / "Pulumi.prod.yaml")


def wishlins_config() -> dict:
    cfg = copy.deepcopy(_stack_config(EXAMPLES / "wishlins" / "Pulumi.k8s.yaml"))
    for name, svc in cfg["berth:services"].items():
        svc["image"] = WISHLINS_IMAGES[name]
        if "resources" in svc:
            svc["resources"]["cpu"] = "100m"
    cfg["berth:services"]["bot"]["command"] = BOT_COMMAND
    for db in cfg["berth:databases"].values():
        db["image"] = "localhost/berth-postgres:15"
        db["storage"] = "1Gi"
        if "resources" in db:
            db["resources"]["cpu"] = "100m"
    for b in cfg.get("berth:backups", {}).values():
        b["image"] = "localhost/berth-backup:1"
        b["storage"] = "1Gi"
    return cfg


def test_wishlins_k8s_applied_and_every_pod_ready(tmp_path):
    try:
        ka.check_cluster()
    except ka.ClusterMissing as e:
        pytest.fail(str(e), pytrace=False)
    rec = record("k8s", project_dir=EXAMPLES / "wishlins", config=wishlins_config())
    foreign = sorted({c["image"] for r in rec.resources for c in _containers(r.inputs)
                      if not c["image"].startswith("localhost/berth-")})
    assert not foreign, foreign
    app = Applier(rec, tmp_path / "state", timeout=300, log=lambda m: print(m, flush=True))
    ns = app.namespace
    if kubectl("get", "namespace", ns, check=False).returncode == 0:
        kubectl("delete", "namespace", ns, "--wait=true", "--timeout=180s", timeout=200)
    t0 = time.monotonic()
    try:
        app.apply()
        print(f"\nwishlins: all objects ready in {time.monotonic() - t0:.1f}s", flush=True)
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
        for p in items:
            by_app.setdefault(p["metadata"]["labels"].get("app.kubernetes.io/name", "?"), []).append(p)
        for p in items:
            st = p["status"]
            ok = st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses") or [{}])
            assert ok or st.get("phase") == "Succeeded", (p["metadata"]["name"], st)
            assert p["spec"]["securityContext"].get("runAsNonRoot") is True
        for name, n in {"frontend": 1, "backend": 2, "bot": 1, "db": 1, "db-replica": 1}.items():
            assert len(by_app.get(name, [])) == n, (name, sorted(by_app))
        # The primary streams to the replica.
        out = kubectl("-n", ns, "exec", "db-0", "--", "psql", "-X", "-t", "-A", "-U", "wishlins", "-d", "wishlins",
                      "-c", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").stdout.strip()
        assert out == "1", out
    finally:
        kubectl("delete", "namespace", ns, "--wait=true", "--timeout=180s", check=False, timeout=200)
