"""Docker images are pinned: a version tag or a digest, never ':latest' or untagged."""

from ._common import DOCKER_CONTAINER, DOCKER_REMOTE_IMAGE, IMAGE_SCHEMA, config_list, image_problem
from ._policy import is_type, resource_rule


def check(r, config):
    bad = config_list(config, "disallowedTags", ["latest"])
    # A Berth container's `image` is the RemoteImage's image id (a sha256 id once known, unknown in
    # preview), so the reference itself is judged on the RemoteImage's `name`.
    ref = r.props.get("name") if r.type == DOCKER_REMOTE_IMAGE else r.props.get("image")
    problem = image_problem(ref, bad)
    if problem:
        yield problem


policy = resource_rule(
    name="docker-image-no-latest-tag",
    description="Docker images (RemoteImage names and Container images) must be pinned to a version tag or a digest, not ':latest' or untagged.",
    remediation="pin the image in the stack spec to a release tag (postgres:15.6) or a digest (name@sha256:...)",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER, DOCKER_REMOTE_IMAGE, "docker:index/image:Image"),
    config=dict(IMAGE_SCHEMA),
)
