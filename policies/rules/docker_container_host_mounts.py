"""Docker containers must not mount the Docker socket or sensitive host paths."""

import posixpath

from ._common import DOCKER_CONTAINER, as_dict, as_list, config_list, docker_workload
from ._policy import Severity, is_type, resource_rule

DEFAULT_FORBIDDEN = ["/", "/etc", "/var/run", "/run", "/proc", "/sys", "/dev", "/boot", "/root", "/var/lib/docker"]


def _sensitive(path: str, forbidden: list) -> bool:
    p = posixpath.normpath(path) if path else path
    if "docker.sock" in p:
        return True
    for f in forbidden:
        f = posixpath.normpath(f)
        if p == f or (f != "/" and p.startswith(f + "/")):
            return True
    return False


def check(r, config):
    forbidden = config_list(config, "forbiddenHostPaths", DEFAULT_FORBIDDEN)
    who = docker_workload(r.props, r.name)
    for v in as_list(r.props.get("volumes")):
        host = as_dict(v).get("hostPath")
        if isinstance(host, str) and _sensitive(host, forbidden):
            yield f"container '{who}' mounts host path '{host}' (volumes.hostPath) at '{as_dict(v).get('containerPath')}'"
    for m in as_list(r.props.get("mounts")):
        m = as_dict(m)
        src = m.get("source")
        if str(m.get("type", "")).lower() == "bind" and isinstance(src, str) and _sensitive(src, forbidden):
            yield f"container '{who}' bind-mounts host path '{src}' (mounts) at '{m.get('target')}'"


policy = resource_rule(
    name="docker-container-no-sensitive-host-mounts",
    description="Docker containers must not mount the Docker socket or sensitive host paths such as /, /etc, /proc, /sys or /var/run.",
    remediation="use a named docker.Volume (or generated files via uploads) instead of a host path; never mount "
    "the Docker socket, it is root on the host",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.CRITICAL,
    config={
        "forbiddenHostPaths": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_FORBIDDEN,
            "description": "Host paths that may not be mounted, nor anything below them ('/' only exactly). "
            "Any path containing docker.sock is always refused.",
        }
    },
)
