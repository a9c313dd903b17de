"""Kubernetes containers drop ALL capabilities and add only allow-listed ones."""

from ._common import as_list, config_list, get
from ._k8s import applies, where, workload
from ._policy import resource_rule

DEFAULT_ALLOWED = ["NET_BIND_SERVICE"]


def check(r, config):
    allowed = {c.upper() for c in config_list(config, "allowedCapabilities", DEFAULT_ALLOWED)}
    kind, name, _pod, containers = workload(r)
    for c in containers:
        drops = {str(d).upper() for d in as_list(get(c, "securityContext", "capabilities", "drop", default=[]))}
        adds = {str(a).upper() for a in as_list(get(c, "securityContext", "capabilities", "add", default=[]))}
        if "ALL" not in drops:
            yield f"{where(kind, name, c)} does not drop ALL capabilities"
        extra = sorted(adds - allowed)
        if extra:
            yield f"{where(kind, name, c)} adds capabilities {', '.join(extra)} beyond the allow-list ({', '.join(sorted(allowed))})"


policy = resource_rule(
    name="k8s-workload-capabilities-drop-all",
    description="Kubernetes containers must drop ALL capabilities and add back only allow-listed ones (NET_BIND_SERVICE by default).",
    remediation="set `capabilities: {drop: [ALL]}` and remove added capabilities, or allow-list one in `allowedCapabilities`",
    check=check, applies_to=applies,
    config={"allowedCapabilities": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_ALLOWED,
                                    "description": "Capabilities a container may add."}},
)
