"""Production database storage is protected from deletion (stack-level)."""

from ._common import (
    DOCKER_VOLUME,
    ENVIRONMENT_SCHEMA,
    berth_component,
    config_list,
    environment_is_prod,
    get,
    k8s_kind,
)
from ._policy import Severity, stack_rule
from ._stack import describe, stack_urn


def check(resources, config):
    if not resources or not environment_is_prod(config, stack_urn(resources)):
        return
    components = set(config_list(config, "components", ["berth:index:Database"]))
    for r in resources:
        if berth_component(r.urn) not in components:
            continue
        kind = k8s_kind(r.type)
        if r.type == DOCKER_VOLUME and _is_config_volume(r):
            continue  # generated config files (re-uploaded on each deploy), not data
        if r.type == DOCKER_VOLUME:
            what = f"docker Volume '{get(r.props, 'name', default=r.name)}'"
        elif kind in ("PersistentVolumeClaim", "StatefulSet"):
            what = describe(r)
        else:
            continue
        if not r.protect:
            yield (f"{what} of {berth_component(r.urn).split(':')[-1]} '{r.urn.rsplit('::', 1)[-1]}' is not protected "
                   "(protect=True) in prod", r.urn)
        if kind == "StatefulSet" and get(r.props, "spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted") == "Delete":
            yield (f"{what} deletes its PVCs when deleted (persistentVolumeClaimRetentionPolicy.whenDeleted=Delete)", r.urn)


def _is_config_volume(r) -> bool:
    labels = get(r.props, "labels", default=[]) or []
    return any(l.get("label") == "berth.config" and l.get("value") == "true" for l in labels if isinstance(l, dict))


policy = stack_rule(
    name="stack-database-storage-protected",
    description="In production, database data (docker Volumes, PersistentVolumeClaims and StatefulSets of Database components) must be protected against deletion.",
    remediation="create database volumes/StatefulSets/PVCs with `protect=True` and `retain_on_delete=True` in prod "
    "(retain_on_delete is not visible to policies, so keep it next to protect) and keep the PVC retention policy at Retain",
    check=check, severity=Severity.CRITICAL,
    config={**ENVIRONMENT_SCHEMA,
            "components": {"type": "array", "items": {"type": "string"}, "default": ["berth:index:Database"],
                           "description": "Component types whose storage must be protected (add berth:index:Cache to include caches)."}},
)
