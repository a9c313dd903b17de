"""A Docker Compose file equivalent to a deployed Docker stack (bench/bench_real.py, dev on dockerd).

It is made from the stack's state (``pulumi stack export --show-secrets``): the same containers with
the same images, commands, environment (secret values included), users, read-only roots, tmpfs,
limits, capabilities, networks and aliases, named volumes, published ports, health checks and
uploaded files (secret files, as configs with inline content, which Compose copies in the same way), and
the same order: each container waits for what its Pulumi resource depends on, as
``service_completed_successfully`` for one-shot containers (files writers, jobs), ``service_healthy``
for containers with a health check that Pulumi waits for, ``service_started`` otherwise. So
``docker compose up --wait`` does the work ``pulumi up`` does, on the same engine, without Pulumi.
"""

from __future__ import annotations

import json
from typing import Any

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"


def _plain(value: Any) -> Any:
    if isinstance(value, dict) and "plaintext" in value:
        return json.loads(value["plaintext"])
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _literal(value: Any) -> Any:
    """Compose interpolates ``$VAR`` in every string; Docker receives these as written (``$$`` is ``$``)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


def compose_from_state(deployment: dict[str, Any], project: str) -> dict[str, Any]:
    resources = [r for r in deployment.get("resources") or [] if r.get("custom")]
    by_urn = {r["urn"]: r for r in resources}
    networks: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    services: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    for r in resources:
        inputs = _plain(r.get("inputs") or {})
        if r["type"] == NETWORK:
            networks[inputs["name"]] = {"name": inputs["name"], "internal": bool(inputs.get("internal"))}
        elif r["type"] == VOLUME:
            volumes[inputs["name"]] = {"name": inputs["name"]}
    waits_healthy = {r["urn"] for r in resources if r["type"] == CONTAINER and _plain(r["inputs"]).get("wait")}
    one_shot = {r["urn"] for r in resources if r["type"] == CONTAINER and _plain(r["inputs"]).get("mustRun") is False}
    for r in resources:
        if r["type"] != CONTAINER:
            continue
        i = _plain(r["inputs"])
        name = i["name"]
        svc: dict[str, Any] = {
            "container_name": name,
            "image": i["image"] if not i["image"].startswith("sha256:") else _image_ref(by_urn, r),
            "pull_policy": "never",
            "hostname": i.get("hostname"),
            "environment": list(i.get("envs") or []),
            "labels": {x["label"]: x["value"] for x in i.get("labels") or []},
            "read_only": bool(i.get("readOnly")),
            "restart": i.get("restart", "no"),
            "mem_limit": f"{i['memory']}m" if i.get("memory") else None,
            "memswap_limit": f"{i['memorySwap']}m" if i.get("memorySwap") else None,
            "cpus": float(i["cpus"]) if i.get("cpus") else None,
            "cap_drop": (i.get("capabilities") or {}).get("drops"),
            "cap_add": (i.get("capabilities") or {}).get("adds"),
            "security_opt": i.get("securityOpts"),
            "user": i.get("user"),
            "entrypoint": i.get("entrypoints"),
            "command": i.get("command"),
            "logging": {"driver": i.get("logDriver", "json-file"), "options": i.get("logOpts") or {}},
            "stop_grace_period": f"{i['destroyGraceSeconds']}s" if i.get("destroyGraceSeconds") else None,
        }
        if i.get("tmpfs"):
            svc["tmpfs"] = [f"{path}:{opts}" for path, opts in sorted(i["tmpfs"].items())]
        if i.get("networkMode") == "none":
            svc["network_mode"] = "none"
        elif i.get("networksAdvanced"):
            svc["networks"] = {n["name"]: {"aliases": n.get("aliases") or []} for n in i["networksAdvanced"]}
        if i.get("volumes"):
            # Compose creates every container before it starts the first, and Docker fills an empty
            # volume with the image's files at the mount point when a container is created: the
            # generated-files volumes (mounted read-only) would get the image's /etc/prometheus before
            # their writer ran. Pulumi creates the workload only after the writer, so nothing is
            # copied there; nocopy does the same here. Data volumes keep the copy (and its owner).
            svc["volumes"] = [{"type": "volume", "source": v["volumeName"], "target": v["containerPath"],
                               "read_only": bool(v.get("readOnly")),
                               **({"volume": {"nocopy": True}} if v.get("readOnly") else {})} for v in i["volumes"]]
        if i.get("ports"):
            svc["ports"] = [{"target": p["internal"], "published": str(p["external"]), "host_ip": p.get("ip"),
                             "protocol": p.get("protocol", "tcp")} for p in i["ports"]]
        if i.get("healthcheck"):
            h = i["healthcheck"]
            svc["healthcheck"] = {"test": h["tests"], "interval": h["interval"], "timeout": h["timeout"],
                                  "start_period": h["startPeriod"], "retries": h["retries"]}
        if i.get("uploads"):
            # Pulumi uploads these into the container when it is created (before it starts); Compose
            # copies a config's inline content the same way (CopyToContainer), at the same path.
            svc["configs"] = []
            for k, u in enumerate(i["uploads"]):
                source = f"{name}-upload-{k}"
                configs[source] = {"content": u["content"]}
                svc["configs"].append({"source": source, "target": u["file"],
                                       "mode": int(u.get("permissions") or "0444", 8)})
        depends = {}
        for dep in r.get("dependencies") or []:
            d = by_urn.get(dep)
            if not d or d["type"] != CONTAINER:
                continue
            other = _plain(d["inputs"])["name"]
            depends[other] = {"condition": "service_completed_successfully" if dep in one_shot else
                              "service_healthy" if dep in waits_healthy else "service_started"}
        if depends:
            svc["depends_on"] = depends
        services[name] = _literal({k: v for k, v in svc.items() if v not in (None, [], {})})
    out = {"name": project, "services": services, "networks": networks, "volumes": volumes}
    if configs:
        out["configs"] = _literal(configs)
    return out


def _image_ref(by_urn: dict[str, Any], container: dict[str, Any]) -> str:
    """The image reference of a container whose input is the image's ID (a RemoteImage output)."""
    for dep in container.get("dependencies") or []:
        d = by_urn.get(dep)
        if d and d["type"] == "docker:index/remoteImage:RemoteImage":
            return _plain(d["inputs"])["name"]
    return _plain(container["inputs"])["image"]
