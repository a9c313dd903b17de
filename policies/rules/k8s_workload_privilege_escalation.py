"""Kubernetes containers set allowPrivilegeEscalation: false."""

from ._common import get
from ._k8s import applies, where, workload
from ._policy import resource_rule


def check(r, config):
    kind, name, _pod, containers = workload(r)
    for c in containers:
        if get(c, "securityContext", "allowPrivilegeEscalation") is not False:
            yield f"{where(kind, name, c)} does not set securityContext.allowPrivilegeEscalation=false"


policy = resource_rule(
    name="k8s-workload-no-privilege-escalation",
    description="Every container of a Kubernetes workload must set securityContext.allowPrivilegeEscalation to false.",
    remediation="set `allowPrivilegeEscalation: false` in each container's securityContext",
    check=check, applies_to=applies,
)
