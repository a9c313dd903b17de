"""Published ports bind to a specific address, except the proxy's."""

from ._common import DOCKER_CONTAINER, as_dict, as_list, config_list, docker_role, docker_workload
from ._policy import is_type, resource_rule

WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


def check(r, config):
    roles = config_list(config, "wildcardRoles", ["proxy"])
    role = docker_role(r.props) or "unlabelled"
    if role in roles:
        return
    for p in as_list(r.props.get("ports")):
        p = as_dict(p)
        ip = p.get("ip")
        ip = "" if ip is None else ip
        if isinstance(ip, str) and ip in WILDCARDS:
            yield (f"{role} container '{docker_workload(r.props, r.name)}' publishes port {p.get('internal')} on "
                   f"all interfaces ({ip or 'ip unset = 0.0.0.0'})")


policy = resource_rule(
    name="docker-container-no-wildcard-bind",
    description="Ports published by any container other than the proxy must bind to a specific address such as 127.0.0.1, never 0.0.0.0.",
    remediation="set `ip: 127.0.0.1` on the port (reach it over an SSH tunnel), or serve it through the proxy",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    config={
        "wildcardRoles": {
            "type": "array", "items": {"type": "string"}, "default": ["proxy"],
            "description": "berth.role values allowed to bind published ports on all interfaces.",
        }
    },
)
