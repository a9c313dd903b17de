"""Docker containers must not run privileged."""

from ._common import DOCKER_CONTAINER, docker_workload
from ._policy import Severity, is_type, resource_rule


def check(r, config):
    if r.props.get("privileged") is True:
        yield f"container '{docker_workload(r.props, r.name)}' sets privileged=true, which gives it every capability and all host devices"


policy = resource_rule(
    name="docker-container-no-privileged",
    description="Docker containers must not run in privileged mode.",
    remediation="remove `privileged` (Berth never needs it); add the one capability the image needs instead",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.CRITICAL,
)
