"""Small helpers shared by the unit tests: build raw configs and read recordings."""

from __future__ import annotations

from typing import Any

from berth.record import Recording, Resource, record

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
PASSWORD = "random:index/randomPassword:RandomPassword"
K8S_SECRET = "kubernetes:core/v1:Secret"
K8S_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
K8S_SERVICE = "kubernetes:core/v1:Service"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
K8S_NAMESPACE = "kubernetes:core/v1:Namespace"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

#: The stack name used for config-driven recordings; the resource prefix is then ``berth-t``.
STACK = "t"
PREFIX = f"berth-{STACK}"


def config(target: str = "docker", **sections: Any) -> dict[str, Any]:
    """A raw stack config: ``config("kubernetes", databases={...})`` → ``{"berth:target": ..., ...}``."""
    return {"berth:target": target, **{f"berth:{k}": v for k, v in sections.items()}}


def rec(target: str = "docker", **sections: Any) -> Recording:
    return record(STACK, config=config(target, **sections))


def named(recording: Recording, type_: str) -> dict[str, Resource]:
    return {r.name: r for r in recording.by_type(type_)}


def env_map(container: Resource) -> dict[str, str]:
    """A docker Container's ``envs`` list as a dict."""
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def api_version_kind(type_token: str) -> tuple[str, str]:
    """``kubernetes:apps/v1:Deployment`` → (``apps/v1``, ``Deployment``); ``core/v1`` → ``v1``."""
    _, group_version, kind = type_token.split(":")
    group, version = group_version.split("/")
    return (version if group == "core" else group_version), kind


def manifest(r: Resource) -> dict[str, Any]:
    """A recorded Kubernetes resource as the manifest the provider would apply."""
    api_version, kind = api_version_kind(r.type)
    return {**r.inputs, "apiVersion": api_version, "kind": kind}


def k8s_objects(recording: Recording) -> list[Resource]:
    return [r for r in recording.resources if r.type.startswith("kubernetes:") and r.custom]


def pod_templates(recording: Recording) -> list[tuple[str, dict[str, Any]]]:
    """(resource name, pod template) of every workload object."""
    out = []
    for r in k8s_objects(recording):
        spec = r.inputs.get("spec", {})
        if r.type.endswith(":CronJob"):
            out.append((r.name, spec["jobTemplate"]["spec"]["template"]))
        elif "template" in spec:
            out.append((r.name, spec["template"]))
    return out


def docker_files(recording: Recording, container: str) -> dict[str, str]:
    """The generated files a Docker container reads (path → content): what its one-shot files
    container ``<container>-files`` writes into the volumes it mounts (``berth.file.N`` labels name
    the path of variable ``BERTH_FILE_N``, split as ``BERTH_FILE_N_1``... when long)."""
    try:
        writer = recording.find(CONTAINER, f"{container}-files")
    except KeyError:
        return {}
    env = env_map(writer)
    labels = {x["label"]: x["value"] for x in writer.inputs["labels"]}
    out = {}
    for key, path in labels.items():
        if key.startswith("berth.file."):
            n = key.rsplit(".", 1)[1]
            parts = [env[f"BERTH_FILE_{n}"]]
            while f"BERTH_FILE_{n}_{len(parts)}" in env:
                parts.append(env[f"BERTH_FILE_{n}_{len(parts)}"])
            out[path] = "".join(parts)
    return out
