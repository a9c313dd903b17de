"""The test cluster from the tests' side: kubectl, port-forwards, and what the cluster lacks.

Only the ``kubectl`` built by ``.ci/k8s/build.sh`` is used, through the admin kubeconfig of
``.ci/k8s/up.sh``; it talks to the API server on 127.0.0.1.

``ingress_status_standin`` stands in for the one thing of an ingress controller that
``pulumi up`` observes: pulumi-kubernetes awaits an Ingress until a controller publishes an
address in ``status.loadBalancer`` (about 10 minutes, then the update fails). The test cluster has
no ingress controller (README: Ingresses are accepted, not served), so while a deployment runs a
thread writes ``127.0.0.1`` there, as ingress-nginx would write its Service's address. It is a
property of the test machine, like Podman's health-check loop; the product waits as it would in
production.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

K8S_VERSION = "v1.31.0"
CACHE = Path(os.environ.get("BERTH_CACHE", "/var/cache/berth"))
KUBECTL = CACHE / "k8s" / K8S_VERSION / "bin" / "kubectl"
STATE = Path(os.environ.get("BERTH_K8S_STATE", "/tmp/berth-k8s"))
KUBECONFIG = Path(os.environ.get("KUBECONFIG") or STATE / "kubeconfig")


class ClusterMissing(RuntimeError):
    """The test cluster is not running (no kubectl or no kubeconfig)."""


class KubectlError(RuntimeError):
    """kubectl failed."""


def check_cluster() -> None:
    if not KUBECTL.exists():
        raise ClusterMissing(f"{KUBECTL} not found: CI must run .ci/k8s/build.sh and .ci/k8s/up.sh before pytest")
    if not KUBECONFIG.exists():
        raise ClusterMissing(
            f"kubeconfig {KUBECONFIG} not found: the real cluster is not running. CI must run "
            ".ci/k8s/up.sh and .ci/k8s/load-images.sh before pytest (or set KUBECONFIG / BERTH_K8S_STATE)."
        )


def kubectl(*args: str, input: Optional[str] = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    check_cluster()
    proc = subprocess.run([str(KUBECTL), f"--kubeconfig={KUBECONFIG}", *args],
                          input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def kubectl_json(*args: str, timeout: float = 60) -> Any:
    return json.loads(kubectl(*args, "-o", "json", timeout=timeout).stdout)


def kube_env() -> dict[str, str]:
    """Environment for the kubernetes provider: the test cluster's kubeconfig."""
    return {"KUBECONFIG": str(KUBECONFIG)}


def pods(ns: str, selector: Optional[str] = None) -> list[dict]:
    args = ["-n", ns, "get", "pods"] + (["-l", selector] if selector else [])
    return kubectl_json(*args)["items"]


def pod_ready(p: dict) -> bool:
    """Running with every container ready, and not on its way out (a terminating pod stays Ready
    through its grace period)."""
    if p["metadata"].get("deletionTimestamp"):
        return False
    return p["status"].get("phase") == "Running" and all(
        c.get("ready") for c in p["status"].get("containerStatuses") or [{}]
    )


def eventually(fn, timeout: float = 60, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            result = fn()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - report the last failure
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last error: {last!r}")
        time.sleep(interval)


@contextlib.contextmanager
def port_forward(ns: str, target: str, port: int) -> Iterator[int]:
    """``kubectl port-forward`` on 127.0.0.1 to ``target`` (e.g. ``svc/api``); yields the local port."""
    check_cluster()
    proc = subprocess.Popen(
        [str(KUBECTL), f"--kubeconfig={KUBECONFIG}", "-n", ns, "port-forward", "--address", "127.0.0.1",
         target, f":{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+) -> ", line)
        if not m:
            proc.kill()
            raise AssertionError(f"port-forward to {target} failed: {line!r} {proc.stderr.read()}")
        yield int(m.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def forget_namespace(ns: str) -> None:
    """Remove what an earlier (failed) run left in ``ns``, retained claims included."""
    if kubectl("get", "namespace", ns, check=False).returncode == 0:
        kubectl("delete", "namespace", ns, "--wait=true", "--timeout=240s", timeout=260)


@contextlib.contextmanager
def ingress_status_standin(address: str = "127.0.0.1", interval: float = 2.0) -> Iterator[list[str]]:
    """While active, give every Ingress without a load-balancer address ``address`` (see module doc).
    Yields the list of ``namespace/name`` it published an address for."""
    stop = threading.Event()
    done: list[str] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                items = kubectl_json("get", "ingresses", "--all-namespaces", timeout=30)["items"]
                for ing in items:
                    if (ing.get("status") or {}).get("loadBalancer", {}).get("ingress"):
                        continue
                    md = ing["metadata"]
                    patch = json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": address}]}}})
                    kubectl("-n", md["namespace"], "patch", "ingress", md["name"], "--subresource=status",
                            "--type=merge", "-p", patch, check=False, timeout=30)
                    done.append(f"{md['namespace']}/{md['name']}")
            except Exception:  # noqa: BLE001 - the API server may be busy; try again next round
                pass
            stop.wait(interval)

    t = threading.Thread(target=loop, name="ingress-status-standin", daemon=True)
    t.start()
    try:
        yield done
    finally:
        stop.set()
        t.join(timeout=30)
