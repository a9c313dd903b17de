"""Test harness: apply a recorded stack's Kubernetes objects to a real cluster the way the provider would.

Not a deploy tool. It takes a ``berth.record.Recording`` (the real program evaluated under the
recording mocks), replaces the generated-value placeholders (``<<berth:password:NAME>>``, ...) with
real values kept in a JSON state file in a directory the caller owns (a tmp dir, never the repo),
and then behaves like pulumi-kubernetes v4 in server-side-apply mode:

* every object is applied with ``kubectl apply --server-side --field-manager=berth`` (one field
  manager, no ``--force-conflicts``: a conflict with another manager, e.g. an HPA owning
  ``spec.replicas``, fails the apply as it would fail ``pulumi up``);
* an object is applied only when everything it depends on (``dependsOn``, with a component
  dependency meaning all of the component's Kubernetes children) has been applied *and is ready*,
  and the Namespace comes first;
* "ready" is what the provider awaits: Deployments available with all replicas updated,
  StatefulSets ready on their update revision, Services with at least one ready endpoint (when they
  select pods), Jobs complete (a failed Job is an error). Other kinds are ready when the API server
  accepted them. Ingresses are not awaited (no ingress controller here: the provider would wait for a
  load-balancer address that never comes; the test only shows that the API server accepts them).
  Every wait is bounded.

``delete()`` removes the stack's objects in reverse order, foreground, except those recorded with
``retain_on_delete`` (as ``pulumi destroy`` leaves them).

Only ``kubectl`` (the one built by ``.ci/k8s/build.sh``) is used; it talks to the API server on
127.0.0.1 through the admin kubeconfig.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from berth.record import PLACEHOLDER_RE, Recording, Resource

K8S_VERSION = "v1.31.0"
CACHE = Path(os.environ.get("BERTH_CACHE", "/var/cache/berth"))
KUBECTL = CACHE / "k8s" / K8S_VERSION / "bin" / "kubectl"
STATE = Path(os.environ.get("BERTH_K8S_STATE", "/tmp/berth-k8s"))
KUBECONFIG = Path(os.environ.get("KUBECONFIG") or STATE / "kubeconfig")
FIELD_MANAGER = "berth"

#: Kinds whose readiness the provider awaits (others are done once accepted).
AWAITED = ("Deployment", "StatefulSet", "Service", "Job")
#: Plural resource names for `kubectl get` (namespaced kinds the stack uses).
_RESOURCE_NAME = {
    "Namespace": "namespaces",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Deployment": "deployments.apps",
    "StatefulSet": "statefulsets.apps",
    "DaemonSet": "daemonsets.apps",
    "Job": "jobs.batch",
    "CronJob": "cronjobs.batch",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers.autoscaling",
    "PodDisruptionBudget": "poddisruptionbudgets.policy",
    "NetworkPolicy": "networkpolicies.networking.k8s.io",
    "Ingress": "ingresses.networking.k8s.io",
    "Role": "roles.rbac.authorization.k8s.io",
    "RoleBinding": "rolebindings.rbac.authorization.k8s.io",
}


class ClusterMissing(RuntimeError):
    """The test cluster is not running (no kubectl or no kubeconfig)."""


class ApplyError(RuntimeError):
    """kubectl refused an apply/delete, or an object did not become ready in time."""


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
    proc = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={KUBECONFIG}", *args],
        input=input, capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise ApplyError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def kubectl_json(*args: str, timeout: float = 60) -> Any:
    return json.loads(kubectl(*args, "-o", "json", timeout=timeout).stdout)


# ------------------------------------------------------------------------------------------------
# Generated values


class Secrets:
    """Real values for the recording's placeholders, kept in ``state_dir/values.json`` (mode 0600).

    The same state dir gives the same values on a later run (like the Pulumi state keeps a
    RandomPassword's result).
    """

    def __init__(self, recording: Recording, state_dir: Path):
        self.recording = recording
        self.path = Path(state_dir) / "values.json"
        self.values: dict[str, str] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.values, f, indent=1, sort_keys=True)

    def _inputs(self, type_suffix: str, name: str) -> dict[str, Any]:
        for r in self.recording.resources:
            if r.type.endswith(type_suffix) and r.name == name:
                return r.inputs
        return {}

    def _generate(self, kind: str, name: str) -> str:
        if kind in ("password", "random"):
            inputs = self._inputs(":RandomPassword" if kind == "password" else ":RandomString", name)
            alphabet = string.ascii_letters + string.digits
            if inputs.get("special"):
                alphabet += inputs.get("overrideSpecial") or "!#$%&*()-_=+[]{}<>:?"
            return "".join(secrets.choice(alphabet) for _ in range(int(inputs.get("length") or 32)))
        if kind == "config":
            return "cfg-" + secrets.token_hex(16)
        if kind == "tls-key":
            return subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, text=True, check=True).stdout
        if kind == "tls-cert":
            inputs = self._inputs(":SelfSignedCert", name)
            key = self.resolve(inputs.get("privateKeyPem") or "") if inputs.get("privateKeyPem") else self._generate("tls-key", name)
            cn = ((inputs.get("subject") or {}).get("commonName")) or name
            with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
                f.write(key)
                f.flush()
                return subprocess.run(
                    ["openssl", "req", "-x509", "-new", "-key", f.name, "-subj", f"/CN={cn}", "-days", "30"],
                    capture_output=True, text=True, check=True,
                ).stdout
        raise NotImplementedError(f"no generator for placeholder kind {kind!r} ({name})")

    def value(self, kind: str, name: str) -> str:
        key = f"{kind}:{name}"
        if key not in self.values:
            self.values[key] = self._generate(kind, name)
            self._save()
        return self.values[key]

    def resolve(self, text: str) -> str:
        return PLACEHOLDER_RE.sub(lambda m: self.value(m.group(1), m.group(2)), text)

    def substitute(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.resolve(obj)
        if isinstance(obj, dict):
            return {k: self.substitute(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.substitute(v) for v in obj]
        return obj


# ------------------------------------------------------------------------------------------------
# Objects and order


@dataclass
class Obj:
    resource: Resource
    manifest: dict[str, Any]  # placeholders substituted
    deps: set[str]  # URNs of Kubernetes objects that must be applied and ready first

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def name(self) -> str:
        return self.manifest["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.manifest["metadata"].get("namespace", "")

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def get_args(self) -> list[str]:
        rn = _RESOURCE_NAME.get(self.kind, self.kind.lower())
        return ([f"--namespace={self.namespace}"] if self.namespace else []) + [rn, self.name]


def is_kubernetes(r: Resource) -> bool:
    return r.custom and r.type.startswith("kubernetes:")


def manifest_of(r: Resource) -> dict[str, Any]:
    m = json.loads(json.dumps(r.inputs))
    if "apiVersion" not in m or "kind" not in m:
        _, mod, kind = r.type.split(":")
        group, version = mod.rsplit("/", 1)
        m.setdefault("apiVersion", version if group == "core" else f"{group}/{version}")
        m.setdefault("kind", kind)
    return m


class Applier:
    def __init__(self, recording: Recording, state_dir: Path, timeout: float = 300, log=print):
        check_cluster()
        self.recording = recording
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.secrets = Secrets(recording, self.state_dir)
        self.timeout = timeout
        self.log = log
        self.timings: dict[str, float] = {}
        self.objects = self._objects()

    # -- dependency graph (component dependencies expand to the component's Kubernetes children)
    def _objects(self) -> list[Obj]:
        res = self.recording.resources
        children: dict[str, list[Resource]] = {}
        for r in res:
            if r.parent:
                children.setdefault(r.parent, []).append(r)

        def k8s_under(urn: str) -> set[str]:
            out: set[str] = set()
            stack = [urn]
            while stack:
                u = stack.pop()
                for c in children.get(u, []):
                    if is_kubernetes(c):
                        out.add(c.urn)
                    stack.append(c.urn)
            return out

        by_urn = {r.urn: r for r in res}
        objs = []
        for r in res:
            if not is_kubernetes(r):
                continue
            deps: set[str] = set()
            for d in r.depends_on:
                if d in by_urn and is_kubernetes(by_urn[d]):
                    deps.add(d)
                else:
                    deps |= k8s_under(d)
            deps.discard(r.urn)
            objs.append(Obj(r, self.secrets.substitute(manifest_of(r)), deps))
        ns = [o for o in objs if o.kind == "Namespace"]
        for o in objs:  # Namespace first, whatever was declared
            if o.kind != "Namespace":
                o.deps |= {n.resource.urn for n in ns}
        return objs

    @property
    def namespace(self) -> str:
        return next(o.name for o in self.objects if o.kind == "Namespace")

    def order(self) -> list[Obj]:
        """A topological order of the objects (the order ``apply`` may use, sequentialised)."""
        done: set[str] = set()
        out: list[Obj] = []
        pending = list(self.objects)
        while pending:
            ready = [o for o in pending if o.deps <= done]
            if not ready:
                raise ApplyError(f"dependency cycle among {[o.ref for o in pending]}")
            for o in ready:
                out.append(o)
                done.add(o.resource.urn)
            pending = [o for o in pending if o.resource.urn not in done]
        return out

    def find(self, kind: str, name: str) -> Obj:
        for o in self.objects:
            if o.kind == kind and o.name == name:
                return o
        raise KeyError(f"{kind}/{name}")

    # -- apply
    def _apply_batch(self, objs: list[Obj]) -> None:
        doc = {"apiVersion": "v1", "kind": "List", "items": [o.manifest for o in objs]}
        kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-",
                input=json.dumps(doc), timeout=180)

    def apply(self, wait: bool = True, previous: Optional["Applier"] = None) -> dict[str, float]:
        """Apply everything in waves: an object goes when its dependencies are applied and ready.

        ``previous``: the applier of the previous deployment of this stack; its objects that this
        recording no longer declares (by URN) are deleted afterwards, as ``pulumi up`` does.
        Returns seconds from the start of the apply until each object was ready (``kind/name``).
        """
        t0 = time.monotonic()
        applied: set[str] = set()
        ready: set[str] = set()
        ready_at: dict[str, float] = {}
        pending = list(self.objects)
        deadline = t0 + self.timeout
        while pending or (wait and applied - ready):
            wave = [o for o in pending if o.deps <= ready]
            if wave:
                self._apply_batch(wave)
                for o in wave:
                    applied.add(o.resource.urn)
                    if not wait or o.kind not in AWAITED:
                        ready.add(o.resource.urn)
                        ready_at[o.ref] = time.monotonic() - t0
                pending = [o for o in pending if o.resource.urn not in applied]
                self.log(f"[apply {time.monotonic() - t0:5.1f}s] applied {', '.join(o.ref for o in wave)}")
                continue
            waiting = [o for o in self.objects if o.resource.urn in applied - ready]
            if not waiting:
                raise ApplyError(f"nothing to wait for, but not applied: {[o.ref for o in pending]}")
            if time.monotonic() > deadline:
                raise ApplyError(
                    f"not ready after {self.timeout:.0f}s: {[o.ref for o in waiting]}; "
                    f"still to apply: {[o.ref for o in pending]}\n{self.diagnose()}"
                )
            status = self._status(waiting)
            newly = [o for o in waiting if status[o.resource.urn]]
            for o in newly:
                ready.add(o.resource.urn)
                ready_at[o.ref] = time.monotonic() - t0
            if newly:
                self.log(f"[apply {time.monotonic() - t0:5.1f}s] ready {', '.join(o.ref for o in newly)}")
            else:
                time.sleep(1.0)
        if previous is not None:
            mine = {o.resource.urn for o in self.objects}
            gone = [o for o in reversed(previous.order()) if o.resource.urn not in mine]
            for o in gone:
                self._delete(o, 180)
            if gone:
                self.log(f"[apply {time.monotonic() - t0:5.1f}s] deleted {', '.join(o.ref for o in gone)}")
        self.timings["apply"] = time.monotonic() - t0
        return ready_at

    def wait_ready(self, objs: Iterable[Obj], timeout: Optional[float] = None) -> float:
        """Wait until every object is ready as the provider defines it; seconds taken."""
        t0 = time.monotonic()
        objs = list(objs)
        deadline = t0 + (timeout or self.timeout)
        while True:
            status = self._status(objs)
            if all(status.values()):
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise ApplyError(
                    f"not ready after {timeout or self.timeout:.0f}s: "
                    f"{[o.ref for o in objs if not status[o.resource.urn]]}\n{self.diagnose()}"
                )
            time.sleep(1.0)

    def _status(self, objs: list[Obj]) -> dict[str, bool]:
        kinds = sorted({_RESOURCE_NAME[o.kind] for o in objs if o.kind in AWAITED})
        live: dict[tuple[str, str], dict] = {}
        endpoints: dict[str, dict] = {}
        if kinds:
            items = kubectl_json("-n", self.namespace, "get", ",".join(kinds + ["endpoints"]))["items"]
            for it in items:
                if it["kind"] == "Endpoints":
                    endpoints[it["metadata"]["name"]] = it
                else:
                    live[(it["kind"], it["metadata"]["name"])] = it
        out = {}
        for o in objs:
            if o.kind not in AWAITED:
                out[o.resource.urn] = True
                continue
            obj = live.get((o.kind, o.name))
            out[o.resource.urn] = obj is not None and _ready(obj, endpoints.get(o.name))
        return out

    def resource_versions(self) -> dict[str, str]:
        """``kind/name`` → live resourceVersion of every object of the stack."""
        out = {}
        for o in self.objects:
            live = kubectl_json("get", *o.get_args())
            out[o.ref] = live["metadata"]["resourceVersion"]
        return out

    def diagnose(self) -> str:
        ns = self.namespace
        parts = []
        for args in (["get", "pods", "-o", "wide"], ["get", "events", "--sort-by=.lastTimestamp"]):
            p = kubectl("-n", ns, *args, check=False)
            parts.append(f"$ kubectl -n {ns} {' '.join(args)}\n{p.stdout[-6000:]}{p.stderr[-2000:]}")
        return "\n".join(parts)

    # -- delete
    def delete(self, timeout: float = 180) -> list[str]:
        """Delete the stack's objects (reverse order, foreground) except retained ones; returns the kept."""
        t0 = time.monotonic()
        kept = []
        for o in reversed(self.order()):
            if o.resource.retain_on_delete:
                kept.append(o.ref)
                continue
            self._delete(o, timeout)
        self.timings["delete"] = time.monotonic() - t0
        return kept

    @staticmethod
    def _delete(o: Obj, timeout: float) -> None:
        kubectl("delete", *o.get_args(), "--ignore-not-found", "--cascade=foreground", "--wait=true",
                f"--timeout={int(timeout)}s", timeout=timeout + 30)


def _cond(obj: dict, type_: str) -> Optional[str]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status")
    return None


def _ready(obj: dict, endpoints: Optional[dict]) -> bool:
    kind = obj["kind"]
    spec, status, md = obj.get("spec") or {}, obj.get("status") or {}, obj["metadata"]
    if kind in ("Deployment", "StatefulSet") and status.get("observedGeneration", 0) < md.get("generation", 0):
        return False
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        return (
            _cond(obj, "Available") == "True"
            and status.get("updatedReplicas", 0) >= want
            and status.get("availableReplicas", 0) >= want
            and status.get("replicas", 0) == status.get("updatedReplicas", 0)  # old pods gone
        )
    if kind == "StatefulSet":
        want = spec.get("replicas", 1)
        return (
            status.get("readyReplicas", 0) >= want
            and status.get("updatedReplicas", 0) >= want
            and status.get("currentRevision") == status.get("updateRevision")
        )
    if kind == "Job":
        if _cond(obj, "Failed") == "True":
            raise ApplyError(f"Job {md['name']} failed: {status}")
        return _cond(obj, "Complete") == "True"
    if kind == "Service":
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            return True
        subsets = (endpoints or {}).get("subsets") or []
        return any(s.get("addresses") for s in subsets)
    return True
