"""Kubernetes containers run as non-root (runAsNonRoot: true, no UID 0)."""

from ._k8s import applies, container_security, where, workload
from ._policy import resource_rule


def check(r, config):
    kind, name, pod, containers = workload(r)
    for c in containers:
        if container_security(pod, c, "runAsNonRoot") is not True:
            yield f"{where(kind, name, c)} does not set runAsNonRoot=true (pod or container securityContext)"
        elif container_security(pod, c, "runAsUser") == 0:
            yield f"{where(kind, name, c)} sets runAsUser=0 (root)"


policy = resource_rule(
    name="k8s-workload-run-as-non-root",
    description="Kubernetes workloads must set runAsNonRoot to true and must not run as UID 0.",
    remediation="set `runAsNonRoot: true` and a non-zero `runAsUser` in the pod securityContext (Berth's run_as_user)",
    check=check, applies_to=applies,
)
