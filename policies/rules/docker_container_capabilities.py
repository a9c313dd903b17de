"""Docker containers may add only a short allow-list of Linux capabilities."""

from ._common import DOCKER_CONTAINER, as_dict, as_list, config_list, docker_workload
from ._policy import is_type, resource_rule

DEFAULT_ALLOWED = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "NET_BIND_SERVICE"]


def _norm(cap: str) -> str:
    cap = cap.strip().upper()
    return cap[4:] if cap.startswith("CAP_") else cap


def check(r, config):
    allowed = {_norm(c) for c in config_list(config, "allowedCapabilities", DEFAULT_ALLOWED)}
    adds = [c for c in as_list(as_dict(r.props.get("capabilities")).get("adds")) if isinstance(c, str)]
    extra = sorted({_norm(c) for c in adds} - allowed)
    if extra:
        yield (f"container '{docker_workload(r.props, r.name)}' adds capabilities {', '.join(extra)} "
               f"beyond the allow-list ({', '.join(sorted(allowed))})")


policy = resource_rule(
    name="docker-container-capabilities-allow-list",
    description="Docker containers must drop ALL capabilities and add back only allow-listed ones.",
    remediation="drop the capability from the workload spec, or, if the image truly needs it, add it to this "
    "policy's `allowedCapabilities` config with a reason in the review",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    config={
        "allowedCapabilities": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_ALLOWED,
            "description": "Capabilities a container may add (with or without the CAP_ prefix).",
        }
    },
)
