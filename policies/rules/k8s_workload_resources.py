"""Kubernetes containers declare resource requests and limits."""

from ._common import as_dict, config_value, get
from ._k8s import applies, where, workload
from ._policy import Severity, resource_rule


def check(r, config):
    need_cpu_limit = bool(config_value(config, "requireCpuLimit", True))
    kind, name, _pod, containers = workload(r)
    for c in containers:
        requests = as_dict(get(c, "resources", "requests", default={}))
        limits = as_dict(get(c, "resources", "limits", default={}))
        missing = [f"requests.{k}" for k in ("cpu", "memory") if not requests.get(k)]
        missing += [f"limits.{k}" for k in (("cpu", "memory") if need_cpu_limit else ("memory",)) if not limits.get(k)]
        if missing:
            yield f"{where(kind, name, c)} is missing resources {', '.join(missing)}"


policy = resource_rule(
    name="k8s-workload-resource-limits",
    description="Every container of a Kubernetes workload must declare CPU and memory requests and limits.",
    remediation="set `resources: {cpu, memory, cpu_limit, memory_limit}` on the service in the stack spec",
    check=check, applies_to=applies, severity=Severity.MEDIUM,
    config={"requireCpuLimit": {"type": "boolean", "default": True,
                                "description": "Also require limits.cpu (memory limit and both requests are always required)."}},
)
