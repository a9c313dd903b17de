"""Faults of a Kubernetes deployment, on the test cluster through the real ``pulumi`` CLI: the prod stack
(``Pulumi.prod.yaml`` as ``test_k8s_prod.ci_config`` makes it deployable here) in a namespace of its
own, ``berth-t-faults``.

What this module changes besides the namespace, and why: no read replica and no monitoring (fewer
pods and claims beside the other cluster tests on a 2-core node with 24 static volumes); the
faults need neither.

Scenarios, in file order, on one deployment (each recovery time is printed and reported):
a `up` → every pod ready; rows written through the app
b an update (app image 1 → 2) whose `pulumi up` is interrupted by SIGINT, then (2 → 1) by SIGKILL of
  the CLI, while the pre-deploy dump and the rollout run: README's recovery (`berth recover`,
  `pulumi up`) reaches no changes; every object of the namespace is in the state (no duplicate
  Job, ReplicaSet owner or object), the rows are there
c the database pod killed under app traffic: it comes back on its claim, the app recovers by
  itself, every acknowledged write is there
d a pre-deploy dump that fails (its backup volume full) stops the app update: `pulumi up` fails
  naming the job, the app keeps its image and serves; the volume freed, `pulumi up` completes
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.real import kube
from tests.real.kube import eventually, kubectl, kubectl_json, pod_ready, pods, port_forward
from tests.real.pulumi_cli import EngineMissing, Pulumi, write_project, write_stack_config
from tests.real.test_dockerd_dev import up_interrupted
from tests.real.test_k8s_prod import IMAGES, ci_config

pytestmark = pytest.mark.real_k8s

ROOT = Path(__file__).resolve().parents[2]
STACK = "prod"
NAMESPACE = "berth-t-faults"
TIMES: dict[str, float] = {}
#: Kinds whose objects the stack declares by name: on the cluster, each must be one the state knows.
KINDS = {"Deployment": "deployments.apps", "StatefulSet": "statefulsets.apps", "Job": "jobs.batch",
         "CronJob": "cronjobs.batch", "Service": "services", "ConfigMap": "configmaps", "Secret": "secrets",
         "Ingress": "ingresses.networking.k8s.io", "NetworkPolicy": "networkpolicies.networking.k8s.io"}


def log(msg: str) -> None:
    print(msg, flush=True)


def faults_config(app_image: str = IMAGES["app1"]) -> dict[str, Any]:
    cfg = ci_config(app_image)
    cfg["berth:kubernetes"]["namespace"] = NAMESPACE
    cfg["berth:databases"]["db"]["replica"] = False
    cfg["berth:monitoring"] = {"enabled": False}
    return cfg


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    try:
        kube.check_cluster()
        tmp = tmp_path_factory.mktemp("k8s-faults")
        project = write_project(tmp / "project", "berth")
        write_stack_config(project, STACK, faults_config())
        p = Pulumi(project, STACK, tmp / "state", env_extra=kube.kube_env(), log=log)
    except (kube.ClusterMissing, EngineMissing) as e:
        pytest.fail(str(e), pytrace=False)
    kube.forget_namespace(NAMESPACE)
    p.init()
    try:
        with kube.ingress_status_standin():
            yield p
    finally:
        subprocess.run(["umount", FULL.get("mount", "/nonexistent")], check=False, capture_output=True)
        p.run("state", "unprotect", "--all", "--yes", check=False)
        p.destroy(check=False)
        kube.forget_namespace(NAMESPACE)
        log("k8s fault recovery (s): " + json.dumps(TIMES))


FULL: dict[str, str] = {}
_BASELINE: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _stop_after_failure(request):
    base = _BASELINE.setdefault("failed", request.session.testsfailed)
    if request.session.testsfailed > base and not request.node.name.startswith("test_z"):
        pytest.fail("an earlier scenario of this module failed; see it first")


def http(port: int, method: str, path: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    from tests.real.test_k8s_prod import http as get

    return get(port, method, path, body, timeout)


def psql(sql: str) -> str:
    return kubectl("-n", NAMESPACE, "exec", "db-0", "--", "psql", "-X", "-q", "-t", "-A", "-U", "easyflow",
                   "-d", "easyflow", "-c", sql).stdout.strip()


def write_rows(prefix: str, n: int = 3) -> list[int]:
    def post():
        with port_forward(NAMESPACE, "svc/api", 8000) as port:
            out = []
            for i in range(n):
                status, body = http(port, "POST", "/api/items", {"value": f"{prefix}-{i}"})
                assert status == 200, (status, body)
                out.append(int(body["id"]))
            return out

    return eventually(post, timeout=120, interval=2, what="POST /api/items")


def api_version() -> str:
    def get():
        with port_forward(NAMESPACE, "svc/api", 8000) as port:
            status, body = http(port, "GET", "/api/version")
            assert status == 200, (status, body)
            return body["version"]

    return eventually(get, timeout=120, interval=2, what="GET /api/version")


def all_ready(timeout: float = 300) -> None:
    def ready():
        ps = [p for p in pods(NAMESPACE) if not p["metadata"].get("ownerReferences", [{}])[0].get("kind") == "Job"]
        return ps and all(pod_ready(p) for p in ps) and \
            all((d["status"].get("updatedReplicas") == d["status"].get("replicas") == d["status"].get("readyReplicas"))
                for d in kubectl_json("-n", NAMESPACE, "get", "deployments")["items"])

    eventually(ready, timeout=timeout, interval=3, what="every pod ready and every rollout done")


def state_names(p: Pulumi) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in p.resources():
        kind = r["type"].rsplit(":", 1)[-1]
        if r["type"].startswith("kubernetes:") and kind in KINDS and r.get("outputs"):
            out.setdefault(kind, set()).add(r["outputs"]["metadata"]["name"])
    return out


def assert_cluster_objects_are_the_states(p: Pulumi) -> None:
    """No duplicates and no orphans: each object of the namespace (of the kinds the stack declares)
    is one the state knows; Jobs made by CronJobs and the namespace's own defaults aside."""
    declared = state_names(p)
    extra = {}
    for kind, resource in KINDS.items():
        items = kubectl_json("-n", NAMESPACE, "get", resource)["items"]
        names = {i["metadata"]["name"] for i in items
                 if not (i["metadata"].get("ownerReferences") or [])  # made by a controller (CronJob's Jobs)
                 and i["metadata"]["name"] not in ("kube-root-ca.crt", "default")
                 and not (kind == "Secret" and i.get("type", "").startswith("kubernetes.io/service-account"))}
        if names - declared.get(kind, set()):
            extra[kind] = sorted(names - declared.get(kind, set()))
    assert not extra, f"objects on the cluster the state does not know: {extra}"


def recover(p: Pulumi, sig: int) -> None:
    """README, "Recovering an interrupted `pulumi up`": after one Ctrl-C, `pulumi up`; after a killed
    CLI, `berth recover`, then `pulumi up`."""
    if sig == signal.SIGINT:
        p.up()
        return
    res = subprocess.run([str(ROOT / ".venv" / "bin" / "berth"), "recover", "-s", p.stack],
                         cwd=p.project_dir, env=p.env(), capture_output=True, text=True, timeout=600)
    log(res.stdout[-2000:])
    assert res.returncode == 0, f"berth recover exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    p.up()


# ---------------------------------------------------------------- a: up


def test_a_up_every_pod_ready_and_rows_written(prod):
    t0 = time.monotonic()
    prod.up()
    TIMES["pulumi up (first)"] = round(time.monotonic() - t0, 1)
    all_ready()
    FACTS["rows"] = write_rows("before-interrupts")


FACTS: dict[str, Any] = {}


# ---------------------------------------------------------------- b: interrupted up


def set_app_image(p: Pulumi, image: str) -> None:
    path = p.project_dir / f"Pulumi.{STACK}.yaml"
    salt = [line for line in path.read_text().splitlines() if line.startswith("encryptionsalt:")]
    write_stack_config(p.project_dir, STACK, faults_config(image))
    if salt:
        path.write_text(salt[0] + "\n" + path.read_text())


def rollout_started(before: set[str]) -> Callable[[], bool]:
    """True once the update is doing something on the cluster: a new pre-deploy Job exists."""
    def check() -> bool:
        jobs = {j["metadata"]["name"] for j in kubectl_json("-n", NAMESPACE, "get", "jobs")["items"]}
        return bool(jobs - before)
    return check


@pytest.mark.parametrize("sig,image,version", [(signal.SIGINT, IMAGES["app2"], "2"),
                                               (signal.SIGKILL, IMAGES["app1"], "1")], ids=["SIGINT", "SIGKILL"])
def test_b_interrupted_up_recovers_to_no_changes(prod, sig, image, version):
    jobs = {j["metadata"]["name"] for j in kubectl_json("-n", NAMESPACE, "get", "jobs")["items"]}
    set_app_image(prod, image)
    with kube.ingress_status_standin():
        res = up_interrupted(prod, sig, rollout_started(jobs))
    assert res.returncode != 0, res
    t0 = time.monotonic()
    with kube.ingress_status_standin():
        recover(prod, sig)
    all_ready()
    TIMES[f"pulumi up interrupted by {signal.Signals(sig).name}: recovery"] = round(time.monotonic() - t0, 1)
    prod.expect_no_changes()
    assert_cluster_objects_are_the_states(prod)
    assert api_version() == version
    got = psql(f"SELECT count(*) FROM items WHERE id IN ({','.join(map(str, FACTS['rows']))})")
    assert got == str(len(FACTS["rows"])), got


# ---------------------------------------------------------------- c: database pod killed under traffic


def test_c_database_pod_killed_under_traffic_loses_no_acknowledged_write(prod):
    acked: dict[int, str] = {}
    failed: list[Any] = []
    stop = threading.Event()

    def traffic() -> None:  # bounded: 90 s, 3000 requests, through one port-forward at a time
        deadline, i = time.monotonic() + 90, 0
        while not stop.is_set() and time.monotonic() < deadline and i < 3000:
            try:
                with port_forward(NAMESPACE, "svc/api", 8000) as port:
                    while not stop.is_set() and time.monotonic() < deadline and i < 3000:
                        i += 1
                        status, body = http(port, "POST", "/api/items", {"value": f"traffic-{i}"}, timeout=10)
                        if status == 200:
                            acked[int(body["id"])] = f"traffic-{i}"
                        else:
                            failed.append(status)
                        time.sleep(0.05)
            except Exception as e:  # noqa: BLE001 - a broken port-forward: open another
                failed.append(repr(e)[:200])
                time.sleep(0.5)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        eventually(lambda: len(acked) >= 20, timeout=60, interval=0.2, what="traffic flowing")
        uid = kubectl_json("-n", NAMESPACE, "get", "pod", "db-0")["metadata"]["uid"]
        t0 = time.monotonic()
        kubectl("-n", NAMESPACE, "delete", "pod", "db-0", "--grace-period=0", "--force", "--wait=false")
        at_kill = len(acked)
        eventually(lambda: len(acked) >= at_kill + 20, timeout=180, interval=0.5, what="writes acknowledged again")
        TIMES["database pod killed under traffic: writes acknowledged again"] = round(time.monotonic() - t0, 1)
    finally:
        stop.set()
        t.join(timeout=30)
    assert kubectl_json("-n", NAMESPACE, "get", "pod", "db-0")["metadata"]["uid"] != uid
    ids = ",".join(map(str, acked))
    stored = dict(line.split("|", 1) for line in psql(f"SELECT id, value FROM items WHERE id IN ({ids})").splitlines())
    lost = {i: v for i, v in acked.items() if stored.get(str(i)) != v}
    log(f"[c] {len(acked)} writes acknowledged, {len(failed)} refused while the database was away")
    assert not lost, f"acknowledged writes lost: {lost}"
    restarts = {p["metadata"]["name"]: sum(s.get("restartCount", 0) for s in p["status"].get("containerStatuses", []))
                for p in pods(NAMESPACE, "app.kubernetes.io/name=api")}
    log(f"[c] api pod restarts: {restarts}")  # the app reconnects by itself; a liveness restart would show here


# ---------------------------------------------------------------- d: a failing pre-deploy dump


def test_d_failed_predeploy_dump_stops_the_app_update(prod):
    claim = kubectl_json("-n", NAMESPACE, "get", "pvc", "db-backups")
    path = kubectl_json("get", "pv", claim["spec"]["volumeName"])["spec"]["hostPath"]["path"]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "berth-full-backups", path], check=True)
    FULL["mount"] = path
    with open(f"{path}/filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    before = api_version()
    image = IMAGES["app2"] if before == "1" else IMAGES["app1"]
    set_app_image(prod, image)
    t0 = time.monotonic()
    with kube.ingress_status_standin():
        res = prod.up(check=False)
    TIMES["failed pre-deploy dump: pulumi up stopped after"] = round(time.monotonic() - t0, 1)
    assert res.returncode != 0, res
    assert "predeploy-backup" in res.output, res
    dep = kubectl_json("-n", NAMESPACE, "get", "deployment", "api")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] != image, "the app was updated after a failed dump"
    assert api_version() == before
    failed = [j for j in kubectl_json("-n", NAMESPACE, "get", "jobs")["items"]
              if "predeploy" in j["metadata"]["name"] and j["status"].get("failed")]
    assert failed, "no failed pre-deploy Job"
    # Its pod (restartPolicy OnFailure) is deleted when the Job gives up: the Job says why.
    reasons = [(c["type"], c.get("reason"), c.get("message")) for c in failed[0]["status"].get("conditions", [])]
    log(f"[d] the failed dump job: {reasons}")
    assert any(t == "Failed" for t, _, _ in reasons), reasons
    # The volume freed, the same `pulumi up` completes and the app is updated.
    subprocess.run(["umount", path], check=True)
    FULL.pop("mount")
    t0 = time.monotonic()
    with kube.ingress_status_standin():
        prod.up()
    all_ready()
    TIMES["failed pre-deploy dump: up after the volume was freed"] = round(time.monotonic() - t0, 1)
    assert api_version() == ("2" if image == IMAGES["app2"] else "1")
    prod.expect_no_changes()


def test_z_report(prod):
    log("k8s fault recovery (s): " + json.dumps(TIMES))
