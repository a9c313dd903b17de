"""Kubernetes pods must not mount hostPath volumes."""

from ._common import as_list, get
from ._k8s import applies, workload
from ._policy import Severity, resource_rule


def check(r, config):
    kind, name, pod, _containers = workload(r)
    for v in as_list(pod.get("volumes")):
        if isinstance(v, dict) and "hostPath" in v:
            yield f"{kind} '{name}' volume '{v.get('name')}' mounts hostPath '{get(v, 'hostPath', 'path')}'"


policy = resource_rule(
    name="k8s-workload-no-host-path",
    description="Kubernetes workloads must not use hostPath volumes.",
    remediation="use a PersistentVolumeClaim (volumeClaimTemplates for databases), a ConfigMap/Secret or an emptyDir",
    check=check, applies_to=applies, severity=Severity.CRITICAL,
)
