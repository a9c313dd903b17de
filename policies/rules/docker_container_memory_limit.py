"""Docker containers have a memory limit."""

from ._common import DOCKER_CONTAINER, docker_workload
from ._policy import Severity, is_type, resource_rule


def check(r, config):
    memory = r.props.get("memory")
    if memory is not None and not isinstance(memory, (int, float)):
        return  # unknown during preview
    if not memory or memory <= 0:
        yield f"container '{docker_workload(r.props, r.name)}' has no memory limit and can starve the whole host"
    max_mb = config.get("maxMemoryMb") if config else None
    if memory and max_mb and memory > max_mb:
        yield f"container '{docker_workload(r.props, r.name)}' memory limit {int(memory)} MB exceeds {int(max_mb)} MB"


policy = resource_rule(
    name="docker-container-memory-limit",
    description="Docker containers must set a memory limit.",
    remediation="set `resources.memory_limit` on the workload (Berth maps it to `memory` and `memorySwap`)",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.MEDIUM,
    config={
        "maxMemoryMb": {"type": "integer", "description": "Optional upper bound on any container's memory limit (MB)."},
    },
)
