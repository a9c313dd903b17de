"""Kubernetes pods must not use host namespaces or host ports."""

from ._common import as_list
from ._k8s import applies, where, workload
from ._policy import Severity, resource_rule


def check(r, config):
    kind, name, pod, containers = workload(r)
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field) is True:
            yield f"{kind} '{name}' sets {field}=true"
    for c in containers:
        for p in as_list(c.get("ports")):
            if isinstance(p, dict) and p.get("hostPort"):
                yield f"{where(kind, name, c)} binds hostPort {p.get('hostPort')}"


policy = resource_rule(
    name="k8s-workload-no-host-namespaces",
    description="Kubernetes workloads must not set hostNetwork, hostPID or hostIPC, nor bind hostPorts.",
    remediation="remove hostNetwork/hostPID/hostIPC/hostPort; expose the pod through a ClusterIP Service and the Ingress",
    check=check, applies_to=applies, severity=Severity.CRITICAL,
)
