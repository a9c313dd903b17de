"""Kubernetes containers must not run privileged."""

from ._common import get
from ._k8s import applies, where, workload
from ._policy import Severity, resource_rule


def check(r, config):
    kind, name, _pod, containers = workload(r)
    for c in containers:
        if get(c, "securityContext", "privileged") is True:
            yield f"{where(kind, name, c)} sets securityContext.privileged=true"


policy = resource_rule(
    name="k8s-workload-no-privileged",
    description="Kubernetes workloads (Pods, Deployments, StatefulSets, DaemonSets, Jobs, CronJobs) must not run privileged containers.",
    remediation="remove securityContext.privileged; add a single allow-listed capability if needed",
    check=check, applies_to=applies, severity=Severity.CRITICAL,
)
