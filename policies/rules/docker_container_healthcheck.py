"""Long-running Docker containers have a health check."""

from ._common import DOCKER_CONTAINER, as_list, config_list, docker_one_shot, docker_workload, known
from ._policy import Severity, is_type, resource_rule


def check(r, config):
    if docker_one_shot(r.props):
        return  # they exit by design
    if docker_workload(r.props, r.name) in config_list(config, "allowWorkloads", []):
        return
    health = r.props.get("healthcheck")
    if not known(health):
        return  # unknown in preview: judged at up
    tests = health.get("tests") if isinstance(health, dict) else None
    if not known(tests):
        return
    tests = as_list(tests)
    if not tests or str(tests[0]).upper() == "NONE":
        yield (f"container '{docker_workload(r.props, r.name)}' has no health check: if it hangs, it is never "
               "restarted nor reported, and what depends on it starts before it is ready")


policy = resource_rule(
    name="docker-container-healthcheck",
    description="Long-running Docker containers must have a health check (`healthcheck.tests`, not NONE).",
    remediation="give the service `health` (an HTTP path on its port, or `health: {command: [...]}` for a worker); "
                "a raw program sets `healthcheck`; one-shot containers set `mustRun: false`; an image whose own "
                "HEALTHCHECK is enough can be listed in `allowWorkloads`",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.MEDIUM,
    config={"allowWorkloads": {"type": "array", "items": {"type": "string"}, "default": [],
                               "description": "Workloads (berth.workload label or container name) that rely on "
                                              "their image's own HEALTHCHECK."}},
)
