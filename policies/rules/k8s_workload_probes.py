"""Deployments and StatefulSets that serve traffic have liveness and readiness probes."""

from ._common import config_value, k8s_kind
from ._k8s import where, workload
from ._policy import Severity, resource_rule


def check(r, config):
    all_containers = bool(config_value(config, "requireForContainersWithoutPorts", False))
    kind, name, pod, _ = workload(r)
    for c in pod.get("containers") or []:
        if not isinstance(c, dict) or (not c.get("ports") and not all_containers):
            continue  # a worker with no port has nothing to be ready for; see README
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
        if missing:
            yield f"{where(kind, name, c)} serves ports but has no {' or '.join(missing)}"


policy = resource_rule(
    name="k8s-workload-health-probes",
    description="Containers of Deployments and StatefulSets that declare ports must have liveness and readiness probes.",
    remediation="set `health: {path: ...}` on the service (or an exec probe for databases) so Berth renders both probes",
    check=check,
    applies_to=lambda t: k8s_kind(t) in ("Deployment", "StatefulSet"),
    severity=Severity.MEDIUM,
    config={"requireForContainersWithoutPorts": {"type": "boolean", "default": False,
                                                 "description": "Also require probes on containers without ports (workers)."}},
)
