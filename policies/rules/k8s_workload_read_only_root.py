"""Kubernetes containers use a read-only root filesystem (advisory)."""

from ._common import get
from ._k8s import applies, where, workload
from ._policy import ADVISORY, Severity, resource_rule


def check(r, config):
    kind, name, _pod, containers = workload(r)
    for c in containers:
        if get(c, "securityContext", "readOnlyRootFilesystem") is not True:
            yield f"{where(kind, name, c)} has a writable root filesystem"


policy = resource_rule(
    name="k8s-workload-read-only-root-filesystem",
    description="Kubernetes containers should set readOnlyRootFilesystem to true.",
    remediation="keep `read_only_root: true` and list writable paths in `tmpfs` (rendered as emptyDir mounts)",
    check=check, applies_to=applies, enforcement=ADVISORY, severity=Severity.LOW,
)
