"""Only the proxy publishes host ports, and only the allowed ones (80/443)."""

from ._common import DOCKER_CONTAINER, as_dict, as_list, config_list, docker_role, docker_workload
from ._policy import Severity, is_type, resource_rule


def check(r, config):
    ports = [as_dict(p) for p in as_list(r.props.get("ports"))]
    if not ports:
        return
    role = docker_role(r.props) or "unlabelled"
    who = docker_workload(r.props, r.name)
    roles = config_list(config, "publishingRoles", ["proxy"])
    allowed = {int(p) for p in config_list(config, "allowedHostPorts", [80, 443])}
    for p in ports:
        external = p.get("external")
        internal = p.get("internal")
        if role not in roles:
            yield (f"{role} container '{who}' publishes container port {internal} on host port "
                   f"{external if external is not None else '(random)'}; only {', '.join(roles)} may publish")
        elif isinstance(external, (int, float)) and int(external) not in allowed:
            yield f"{role} container '{who}' publishes host port {int(external)}, allowed: {sorted(allowed)}"
        elif external is None:
            yield f"{role} container '{who}' publishes container port {internal} on a random host port"


policy = resource_rule(
    name="docker-container-host-ports-proxy-only",
    description="Only the proxy container may publish ports on the Docker host, and only the allowed host ports (80 and 443 by default).",
    remediation="remove `ports` from the database/cache/app/exporter container and route traffic through the "
    "proxy; to publish another proxy port add it to `allowedHostPorts`",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.CRITICAL,
    config={
        "publishingRoles": {
            "type": "array", "items": {"type": "string"}, "default": ["proxy"],
            "description": "berth.role values that may publish host ports.",
        },
        "allowedHostPorts": {
            "type": "array", "items": {"type": "integer"}, "default": [80, 443],
            "description": "Host ports a publishing role may use.",
        },
    },
)
