"""Docker containers run as a non-root user unless the workload opted in."""

from ._common import DOCKER_CONTAINER, config_list, docker_labels, docker_workload
from ._policy import is_type, resource_rule

OPT_IN_LABEL = "berth.run-as-root"


def _is_root(user) -> bool:
    if not isinstance(user, str) or not user.strip():
        return True  # no user: the image's default, root for most images
    uid = user.split(":", 1)[0].strip()
    return uid in ("0", "root")


def check(r, config):
    user = r.props.get("user")
    if not isinstance(user, str) and user is not None:
        return  # unknown during preview
    labels = docker_labels(r.props)
    who = docker_workload(r.props, r.name)
    if not _is_root(user):
        return
    if labels.get(OPT_IN_LABEL) == "true" or who in config_list(config, "allowRootWorkloads", []):
        return
    yield f"container '{who}' runs as root ({'user unset' if not user else 'user ' + repr(user)})"


policy = resource_rule(
    name="docker-container-non-root-user",
    description="Docker containers must run as a non-root user unless the workload spec opted in to root.",
    remediation="set the service's `run_as_user` (default 10001) or fix the image to run unprivileged; if root is "
    "unavoidable set `run_as_root: true` (label berth.run-as-root=true) or list the workload in `allowRootWorkloads`",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    config={
        "allowRootWorkloads": {
            "type": "array", "items": {"type": "string"}, "default": [],
            "description": "berth.workload names allowed to run as root.",
        }
    },
)
