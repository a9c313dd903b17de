"""Docker containers must not share the host's network, PID, IPC or user namespaces."""

from ._common import DOCKER_CONTAINER, docker_workload
from ._policy import Severity, is_type, resource_rule

FIELDS = {"networkMode": "network", "pidMode": "PID", "ipcMode": "IPC", "usernsMode": "user"}


def check(r, config):
    for field, what in FIELDS.items():
        if str(r.props.get(field) or "").lower() == "host":
            yield f"container '{docker_workload(r.props, r.name)}' sets {field}=host and shares the host's {what} namespace"


policy = resource_rule(
    name="docker-container-no-host-namespaces",
    description="Docker containers must not use the host network, PID, IPC or user namespace.",
    remediation="remove networkMode/pidMode/ipcMode/usernsMode 'host'; attach the container to the stack's "
    "networks and publish through the proxy",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.CRITICAL,
)
