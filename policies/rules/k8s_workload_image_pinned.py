"""Kubernetes images are pinned: a version tag or a digest."""

from ._common import IMAGE_SCHEMA, config_list, image_problem
from ._k8s import applies, where, workload
from ._policy import resource_rule


def check(r, config):
    bad = config_list(config, "disallowedTags", ["latest"])
    kind, name, _pod, containers = workload(r)
    for c in containers:
        if "image" in c and not c.get("image"):
            yield f"{where(kind, name, c)} has an empty image"
        problem = image_problem(c.get("image"), bad)
        if problem:
            yield f"{where(kind, name, c)}: {problem}"


policy = resource_rule(
    name="k8s-workload-no-latest-tag",
    description="Kubernetes workload images must be pinned to a version tag or a digest, not ':latest' or untagged.",
    remediation="pin the image in the stack spec to a release tag or a digest (name@sha256:...)",
    check=check, applies_to=applies, config=dict(IMAGE_SCHEMA),
)
