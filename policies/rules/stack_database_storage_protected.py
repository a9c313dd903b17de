"""Production database storage is protected from deletion (stack-level).

Database storage is found two ways, and both are judged: resources of the configured component types
(Berth's ``Database``), and what the deployed databases use whatever program declared them
(``_databases.databases``): a database StatefulSet, the PersistentVolumeClaims its pods claim, and the
docker Volumes a database container mounts.
"""

from ._common import (
    DOCKER_VOLUME,
    ENVIRONMENT_SCHEMA,
    as_dict,
    as_list,
    berth_component,
    config_list,
    environment_is_prod,
    get,
    k8s_kind,
    k8s_name,
    k8s_namespace,
    pod_spec,
)
from ._databases import databases
from ._policy import Severity, stack_rule
from ._stack import describe, stack_urn


def check(resources, config):
    if not resources or not environment_is_prod(config, stack_urn(resources)):
        return
    for r, owner in _database_storage(resources, config):
        kind = k8s_kind(r.type)
        if r.type == DOCKER_VOLUME:
            what = f"docker Volume '{get(r.props, 'name', default=r.name)}'"
        else:
            what = describe(r)
        if not r.protect:
            yield f"{what} of {owner} is not protected (protect=True) in prod", r.urn
        if kind == "StatefulSet" and get(r.props, "spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted") == "Delete":
            yield (f"{what} deletes its PVCs when deleted (persistentVolumeClaimRetentionPolicy.whenDeleted=Delete)", r.urn)


def _database_storage(resources, config):
    """(storage resource, owner description), each resource once."""
    seen = set()
    components = set(config_list(config, "components", ["berth:index:Database"]))
    for r in resources:
        if berth_component(r.urn) not in components:
            continue
        if r.type == DOCKER_VOLUME and _is_config_volume(r):
            continue  # generated config files (re-uploaded on each deploy), not data
        if r.type == DOCKER_VOLUME or k8s_kind(r.type) in ("PersistentVolumeClaim", "StatefulSet"):
            seen.add(r.urn)
            yield r, f"{berth_component(r.urn).split(':')[-1]} '{r.urn.rsplit('::', 1)[-1]}'"
    volumes = {get(r.props, "name"): r for r in resources if r.type == DOCKER_VOLUME}
    claims = {(k8s_namespace(r.props), k8s_name(r.props, r.name)): r
              for r in resources if k8s_kind(r.type) == "PersistentVolumeClaim"}
    for db in databases(resources, config):
        owner = db.describe()
        found = []
        if db.run.platform == "docker":
            # read-only mounts and berth.config volumes hold generated files, not data
            for v in as_list(db.res.props.get("volumes")):
                v = as_dict(v)
                if not v.get("readOnly"):
                    found.append(volumes.get(v.get("volumeName")))
            for m in as_list(db.res.props.get("mounts")):
                m = as_dict(m)
                if m.get("type", "volume") == "volume" and not m.get("readOnly"):
                    found.append(volumes.get(m.get("source")))
            found = [v for v in found if v is None or not _is_config_volume(v)]
        else:
            if db.run.kind == "StatefulSet":
                found.append(db.res)
            for v in as_list(pod_spec(db.run.kind, db.res.props).get("volumes")):
                claim = get(as_dict(v), "persistentVolumeClaim", "claimName")
                found.append(claims.get((db.run.namespace, claim)))
        for r in found:
            if r is not None and r.urn not in seen:
                seen.add(r.urn)
                yield r, owner


def _is_config_volume(r) -> bool:
    labels = get(r.props, "labels", default=[]) or []
    return any(l.get("label") == "berth.config" and l.get("value") == "true" for l in labels if isinstance(l, dict))


policy = stack_rule(
    name="stack-database-storage-protected",
    description="In production, database data (docker Volumes, PersistentVolumeClaims and StatefulSets of Database components or of any container running a database server) must be protected against deletion.",
    remediation="create database volumes/StatefulSets/PVCs with `protect=True` and `retain_on_delete=True` in prod "
    "(retain_on_delete is not visible to policies, so keep it next to protect) and keep the PVC retention policy at Retain",
    check=check, severity=Severity.CRITICAL,
    config={**ENVIRONMENT_SCHEMA,
            "components": {"type": "array", "items": {"type": "string"}, "default": ["berth:index:Database"],
                           "description": "Component types whose storage must be protected (add berth:index:Cache to include caches)."}},
)
