"""Kubernetes containers run with the RuntimeDefault or a Localhost seccomp profile."""

from ._k8s import applies, container_security, where, workload
from ._policy import Severity, resource_rule

OK = ("RuntimeDefault", "Localhost")


def check(r, config):
    kind, name, pod, containers = workload(r)
    for c in containers:
        profile = container_security(pod, c, "seccompProfile")
        typ = profile.get("type") if isinstance(profile, dict) else None
        if typ not in OK:
            yield f"{where(kind, name, c)} has seccompProfile type '{typ or 'unset'}'"


policy = resource_rule(
    name="k8s-workload-seccomp-profile",
    description="Kubernetes workloads must run with the RuntimeDefault or a Localhost seccomp profile.",
    remediation="set `seccompProfile: {type: RuntimeDefault}` in the pod securityContext",
    check=check, applies_to=applies, severity=Severity.MEDIUM,
)
