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
    container ``<container>-files`` writes into the volumes it mounts. Its script is run for real
    (``sh``, with its environment) into a temporary directory standing for those volumes, so the
    content is byte for byte what the container would write."""
    import os
    import subprocess
    import tempfile

    from berth.components.targets.docker import FILES_MOUNT, UPLOAD_DIR

    try:
        writer = recording.find(CONTAINER, f"{container}-files")
    except KeyError:
        return {}
    workload = recording.find(CONTAINER, container)
    at = {v["volumeName"]: v["containerPath"] for v in workload.inputs.get("volumes", [])}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for v in writer.inputs["volumes"]:
            local = os.path.join(tmp, v["containerPath"].rsplit("/", 1)[1])
            os.makedirs(local)
            dirs[local] = at[v["volumeName"]]
        # What the provider uploads before the container starts, then the script (its chown stubbed:
        # the owners are the workload's users, which may not exist here).
        for u in writer.inputs.get("uploads", []):
            staged = u["file"].replace(f"{UPLOAD_DIR}/", f"{tmp}/upload/")
            os.makedirs(os.path.dirname(staged), exist_ok=True)
            with open(staged, "w", encoding="utf-8") as f:
                f.write(u["content"])
        script = "chown() { :; }\n" + writer.inputs["command"][0].replace(f"{FILES_MOUNT}/", f"{tmp}/").replace(
            f"{UPLOAD_DIR}/", f"{tmp}/upload/")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env_map(writer)}
        subprocess.run(["sh", "-c", script], env=env, check=True)
        out = {}
        for local, path in dirs.items():
            for name in os.listdir(local):
                with open(os.path.join(local, name), encoding="utf-8") as f:
                    out[f"{path}/{name}"] = f.read()
    return out
