"""Long-running Docker containers have a restart policy."""

from ._common import DOCKER_CONTAINER, config_list, docker_workload
from ._policy import Severity, is_type, resource_rule


def check(r, config):
    if r.props.get("mustRun") is False:
        return  # one-shot containers (migrations, restores) must not restart
    restart = r.props.get("restart")
    if not isinstance(restart, str) and restart is not None:
        return
    allowed = config_list(config, "allowedPolicies", ["unless-stopped", "always", "on-failure"])
    if restart not in allowed:
        yield (f"container '{docker_workload(r.props, r.name)}' has restart policy "
               f"'{restart or 'unset (no)'}' and will stay down after a crash or host reboot")


policy = resource_rule(
    name="docker-container-restart-policy",
    description="Long-running Docker containers must have a restart policy (unless-stopped, always or on-failure).",
    remediation="set `restart: unless-stopped`; one-shot containers set `mustRun: false` instead",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.MEDIUM,
    config={
        "allowedPolicies": {
            "type": "array", "items": {"type": "string"},
            "default": ["unless-stopped", "always", "on-failure"],
            "description": "Restart policies accepted for long-running containers.",
        }
    },
)
