"""Smoke test of the real single-node Kubernetes cluster that the `real_k8s` tests run against.

CI runs `.ci/k8s/build.sh` and `.ci/k8s/up.sh` before pytest; this module does not start or skip
anything: when the cluster is not there, every test fails and says how to start it. It talks to
the cluster only through `kubectl` (the one built by .ci/k8s/build.sh) with the admin kubeconfig
(`$KUBECONFIG` if set, else `${BERTH_K8S_STATE:-/tmp/berth-k8s}/kubeconfig`), and reaches pods
only through 127.0.0.1 (`kubectl port-forward`). Everything it creates lives in one namespace,
deleted at the end.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

K8S_VERSION = "v1.31.0"
BUSYBOX = "localhost/berth-busybox:1"
CACHE = Path(os.environ.get("BERTH_CACHE", "/var/cache/berth"))
KUBECTL = CACHE / "k8s" / K8S_VERSION / "bin" / "kubectl"
STATE = Path(os.environ.get("BERTH_K8S_STATE", "/tmp/berth-k8s"))
KUBECONFIG = Path(os.environ.get("KUBECONFIG") or STATE / "kubeconfig")

# Register the marker in tests/conftest.py:
#   config.addinivalue_line("markers", "real_k8s: needs the real cluster started by .ci/k8s/up.sh")
pytestmark = pytest.mark.real_k8s


# A pod spec that the `restricted` Pod Security level admits.
RESTRICTED_POD_SC = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SC = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 60):
    if not KUBECTL.exists():
        pytest.fail(f"{KUBECTL} not found: CI must run .ci/k8s/build.sh and .ci/k8s/up.sh before pytest")
    if not KUBECONFIG.exists():
        pytest.fail(
            f"kubeconfig {KUBECONFIG} not found: the real cluster is not running. "
            "CI must run .ci/k8s/up.sh before pytest (or set KUBECONFIG)."
        )
    proc = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={KUBECONFIG}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def apply(ns: str, obj: dict, check: bool = True):
    return kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(obj), check=check)


def restricted_pod(name: str, command: list[str], labels: dict | None = None, **spec) -> dict:
    container = {
        "name": "main",
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": RESTRICTED_CONTAINER_SC,
    }
    container.update(spec.pop("container_extra", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "securityContext": RESTRICTED_POD_SC,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            **spec,
        },
    }


def wait_ready(ns: str, what: str, timeout: int = 120):
    kubectl("-n", ns, "wait", "--for=condition=Ready", what, f"--timeout={timeout}s", timeout=timeout + 10)


WEB_CMD = ["/bin/sh", "-c", "mkdir -p /tmp/www && echo berth-smoke-ok > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]


@pytest.fixture(scope="module")
def ns():
    name = f"berth-smoke-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        kubectl(
            "label", "namespace", name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        )
        # Pods can only be created once the namespace's default ServiceAccount exists.
        deadline = time.monotonic() + 60
        while kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode != 0:
            assert time.monotonic() < deadline, f"no default ServiceAccount in {name} after 60 s"
            time.sleep(0.5)
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=true", "--timeout=90s", check=False, timeout=120)


@pytest.fixture(scope="module")
def web(ns):
    """A restricted-compliant pod serving HTTP on 8080, and a Service `smoke-web` in front of it."""
    apply(ns, restricted_pod("web", WEB_CMD, container_extra={"ports": [{"containerPort": 8080}]}))
    apply(ns, {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "smoke-web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
    wait_ready(ns, "pod/web")
    return "web"


def test_restricted_namespace_admits_compliant_pod(ns, web):
    phase = kubectl("-n", ns, "get", "pod", web, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Running"
    uid = kubectl("-n", ns, "exec", web, "--", "id", "-u").stdout.strip()
    assert uid == "65534"


def test_restricted_namespace_rejects_privileged_pod(ns):
    pod = restricted_pod("bad-privileged", ["sleep", "60"])
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    proc = apply(ns, pod, check=False)
    assert proc.returncode != 0, "a privileged pod was admitted"
    # The API server runs with --allow-privileged=false, so validation rejects it before Pod
    # Security admission sees it; either way the message names the field.
    assert "privileged" in proc.stderr, proc.stderr
    assert kubectl("-n", ns, "get", "pod", "bad-privileged", check=False).returncode != 0

    # A pod that is merely non-compliant (root, no seccomp, capabilities kept) reaches Pod
    # Security admission, whose message lists each violation.
    plain = restricted_pod("bad-plain", ["sleep", "60"])
    plain["spec"].pop("securityContext")
    plain["spec"]["containers"][0].pop("securityContext")
    proc = apply(ns, plain, check=False)
    assert proc.returncode != 0, "a non-compliant pod was admitted in a restricted namespace"
    assert 'violates PodSecurity "restricted:latest"' in proc.stderr, proc.stderr
    for violation in ("allowPrivilegeEscalation", "unrestricted capabilities", "runAsNonRoot", "seccompProfile"):
        assert violation in proc.stderr, (violation, proc.stderr)


def test_service_name_resolves_and_routes_from_pod(ns, web):
    cluster_ip = kubectl("-n", ns, "get", "service", "smoke-web", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", cluster_ip), cluster_ip
    # busybox nslookup applies the search path only to names without a dot, and exits 1 when any
    # search candidate is NXDOMAIN, so judge by the answer, not the exit code.
    for name in ("smoke-web", f"smoke-web.{ns}.svc.cluster.local"):
        out = kubectl("-n", ns, "exec", web, "--", "nslookup", name, check=False).stdout
        assert re.search(rf"Name:\s+smoke-web\.{ns}\.svc\.cluster\.local\s+Address:\s+{re.escape(cluster_ip)}\b", out), (name, out)
    # Through the Service's ClusterIP (kube-proxy's iptables rules), by name; wget resolves with
    # the resolver's search path and ndots like an application would. (The URL names the port:
    # Debian's static busybox wget crashes (SIGSEGV) without a port in the URL, or with -T.)
    for name in ("smoke-web", f"smoke-web.{ns}"):
        deadline = time.monotonic() + 30
        while True:
            proc = kubectl("-n", ns, "exec", web, "--", "timeout", "5", "wget", "-q", "-O", "-", f"http://{name}:80/", check=False)
            if proc.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert proc.stdout.strip() == "berth-smoke-ok", (name, proc.stderr)


def test_pvc_binds_and_pod_writes(ns):
    apply(ns, {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "smoke-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    pod = restricted_pod(
        "writer",
        ["/bin/sh", "-c", "echo written-by-$(id -u) > /data/hello && exec sleep 3600"],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "smoke-data"}}],
        container_extra={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
    )
    apply(ns, pod)
    kubectl("-n", ns, "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/smoke-data", "--timeout=60s", timeout=70)
    wait_ready(ns, "pod/writer")
    assert kubectl("-n", ns, "exec", "writer", "--", "cat", "/data/hello").stdout.strip() == "written-by-65534"

    # A StatefulSet's volumeClaimTemplate (10Gi, no storage class) binds too.
    apply(ns, {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "smoke-sts"},
        "spec": {
            "serviceName": "smoke-sts",
            "replicas": 1,
            "selector": {"matchLabels": {"app": "smoke-sts"}},
            "template": {
                "metadata": {"labels": {"app": "smoke-sts"}},
                "spec": restricted_pod(
                    "x",
                    ["/bin/sh", "-c", "touch /data/ok && exec sleep 3600"],
                    container_extra={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                )["spec"],
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
            }],
        },
    })
    kubectl("-n", ns, "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/data-smoke-sts-0", "--timeout=60s", timeout=70)
    deadline = time.monotonic() + 60
    while kubectl("-n", ns, "get", "pod", "smoke-sts-0", check=False).returncode != 0:
        assert time.monotonic() < deadline, "StatefulSet pod smoke-sts-0 was not created"
        time.sleep(0.5)
    wait_ready(ns, "pod/smoke-sts-0")
    kubectl("-n", ns, "exec", "smoke-sts-0", "--", "test", "-f", "/data/ok")


def test_port_forward_on_loopback(ns, web):
    proc = subprocess.Popen(
        [str(KUBECTL), f"--kubeconfig={KUBECONFIG}", "-n", ns, "port-forward", "--address", "127.0.0.1",
         f"pod/{web}", ":8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "kubectl port-forward printed nothing in 30 s"
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:NNNNN -> 8080"
        m = re.search(r"127\.0\.0\.1:(\d+) -> 8080", line)
        assert m, f"unexpected port-forward output: {line!r}"
        port = int(m.group(1))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        with opener.open(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.read().decode().strip() == "berth-smoke-ok"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
