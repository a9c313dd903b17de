"""What a deployed process runs, read from resource inputs alone (no Berth labels or components).

A ``Run`` is one container: a Docker ``Container`` or one container of a Kubernetes workload's pod
template. It carries everything the inputs say about what that container executes:

- ``argv``: entrypoint + command (Docker) / command + args (Kubernetes); empty = the image's default;
- ``env``: env values known at analysis time (literals, ConfigMap keys it reads);
- ``files``: path → content of files handed to it (Docker ``uploads``, ConfigMap/Secret volume mounts);
- ``blobs``: other texts that may *write* its files: init and sibling containers of the pod, Docker
  containers sharing a volume with it (a one-shot init container), ConfigMaps/Secrets it depends on
  whose mount path is not known.

``reachable_text(run)`` starts at the command line, expands ``$VARS`` from the env and follows every
path-looking word into the files and blobs that hold it (a crontab names a script, a script is in a
ConfigMap or written by an init container), so a rule can ask "does this container end up running
pg_dump against host X" whichever way the script reached the container.

New ways of delivering files go into ``DOCKER_EVIDENCE``/``K8S_EVIDENCE`` (one function per source): each gets the run and the
stack index and adds to ``files``/``blobs``/``env``.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from ._common import (
    DOCKER_CONTAINER,
    as_dict,
    as_list,
    docker_envs,
    get,
    k8s_kind,
    k8s_name,
    k8s_namespace,
    pod_spec,
)

SHELL_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:]?[-=?+][^}]*)?\}|\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$([A-Za-z_][A-Za-z0-9_]*)")
PATH_WORD = re.compile(r"[A-Za-z0-9_.~/+-]+")


@dataclass
class Run:
    res: object  # _policy.Res
    platform: str  # "docker" | "kubernetes"
    kind: str  # "Container" (Docker) or the k8s kind
    name: str  # the workload's name (Docker container name, k8s metadata.name)
    namespace: str
    container: dict  # Docker props, or the k8s container
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    blobs: list[str] = field(default_factory=list)
    init: bool = False  # a k8s init container

    @property
    def image(self) -> str:
        image = self.container.get("image")
        return image if isinstance(image, str) else ""

    def describe(self) -> str:
        if self.platform == "docker":
            return f"container '{self.name}'"
        return f"{self.kind} '{self.name}'"


def _strings(values) -> list[str]:
    return [v for v in as_list(values) if isinstance(v, str)]


def _decode_b64(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


class StackIndex:
    """Lookups over the stack's resources that the evidence functions share."""

    def __init__(self, resources):
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources}
        self.configs: dict[tuple[str, str, str], dict[str, str]] = {}  # (kind, namespace, name) → key → text
        for r in self.resources:
            kind = k8s_kind(r.type)
            if kind not in ("ConfigMap", "Secret"):
                continue
            data = {k: v for k, v in as_dict(r.props.get("data")).items() if isinstance(v, str)}
            if kind == "Secret":
                data = {k: _decode_b64(v) for k, v in data.items()}
            data.update({k: v for k, v in as_dict(r.props.get("stringData")).items() if isinstance(v, str)})
            if kind == "ConfigMap":
                data.update({k: _decode_b64(v) for k, v in as_dict(r.props.get("binaryData")).items()
                             if isinstance(v, str)})
            self.configs[(kind, k8s_namespace(r.props), k8s_name(r.props, r.name))] = data

    def config(self, kind: str, namespace: str, name) -> Optional[dict[str, str]]:
        if not isinstance(name, str):
            return None
        found = self.configs.get((kind, namespace, name))
        if found is None and not namespace:
            found = next((d for (k, _ns, n), d in self.configs.items() if k == kind and n == name), None)
        return found


# ---------------------------------------------------------------- evidence sources

def _docker_uploads(run: Run, index: StackIndex) -> None:
    for u in as_list(run.container.get("uploads")):
        u = as_dict(u)
        path = u.get("file")
        content = u.get("content")
        if not isinstance(content, str) and isinstance(u.get("contentBase64"), str):
            content = _decode_b64(u["contentBase64"])
        if isinstance(path, str) and isinstance(content, str):
            run.files[path] = content


def _docker_volume_keys(props) -> set[str]:
    keys = set()
    for v in as_list(props.get("volumes")):
        v = as_dict(v)
        for k in ("volumeName", "fromContainer"):
            if isinstance(v.get(k), str):
                keys.add(v[k])
    for m in as_list(props.get("mounts")):
        m = as_dict(m)
        if m.get("type", "volume") == "volume" and isinstance(m.get("source"), str):
            keys.add(m["source"])
    return keys


def _docker_writers(run: Run, index: StackIndex) -> None:
    """Containers sharing a volume with this one may write its files (e.g. a one-shot init container)."""
    mine = _docker_volume_keys(run.container)
    if not mine:
        return
    for r in index.resources:
        if r.type != DOCKER_CONTAINER or r is run.res or not (_docker_volume_keys(r.props) & mine):
            continue
        other = docker_run(r, index, evidence=(_docker_uploads,))
        run.blobs.append(expand(" ".join(other.argv), other.env))
        # a file's blob starts with its path: a copy keeps the name the reader refers to
        run.blobs.extend(f"{path}\n{expand(c, other.env)}" for path, c in other.files.items())
        run.blobs.extend(v for v in other.env.values())


def _k8s_env(run: Run, index: StackIndex) -> None:
    ns = run.namespace
    for ref in as_list(run.container.get("envFrom")):
        ref = as_dict(ref)
        name = get(ref, "configMapRef", "name")
        data = index.config("ConfigMap", ns, name) or {}
        prefix = ref.get("prefix") if isinstance(ref.get("prefix"), str) else ""
        for k, v in data.items():
            run.env.setdefault(prefix + k, v)
    for e in as_list(run.container.get("env")):
        e = as_dict(e)
        name = e.get("name")
        if not isinstance(name, str):
            continue
        if isinstance(e.get("value"), str):
            run.env[name] = e["value"]
            continue
        cm = get(e, "valueFrom", "configMapKeyRef")
        if isinstance(cm, dict):
            value = (index.config("ConfigMap", ns, cm.get("name")) or {}).get(cm.get("key"))
            if isinstance(value, str):
                run.env[name] = value


def _volume_sources(volume: dict) -> list[tuple[str, dict]]:
    """(kind, source) pairs of a ConfigMap/Secret/projected volume."""
    out = []
    if isinstance(volume.get("configMap"), dict):
        out.append(("ConfigMap", volume["configMap"]))
    if isinstance(volume.get("secret"), dict):
        out.append(("Secret", dict(volume["secret"], name=volume["secret"].get("secretName"))))
    for src in as_list(get(volume, "projected", "sources", default=[])):
        src = as_dict(src)
        if isinstance(src.get("configMap"), dict):
            out.append(("ConfigMap", src["configMap"]))
        if isinstance(src.get("secret"), dict):
            out.append(("Secret", src["secret"]))
    return out


def _k8s_volume_files(run: Run, index: StackIndex) -> None:
    """Files of ConfigMap/Secret volumes at the paths this container mounts them."""
    spec = pod_spec(run.kind, run.res.props)
    volumes = {v.get("name"): v for v in (as_dict(v) for v in as_list(spec.get("volumes")))}
    for m in as_list(run.container.get("volumeMounts")):
        m = as_dict(m)
        volume = volumes.get(m.get("name"))
        mount = m.get("mountPath")
        if volume is None or not isinstance(mount, str):
            continue
        for kind, src in _volume_sources(volume):
            data = index.config(kind, run.namespace, src.get("name"))
            if data is None:
                continue
            # key → path inside the volume (items remap keys; without items every key is a file)
            items = [as_dict(i) for i in as_list(src.get("items"))]
            paths = {i.get("key"): i.get("path") for i in items} if items else {k: k for k in data}
            sub = m.get("subPath")
            for key, rel in paths.items():
                if key not in data or not isinstance(rel, str):
                    continue
                if isinstance(sub, str) and sub:
                    if rel == sub:
                        run.files[mount] = data[key]
                else:
                    run.files[posixpath.join(mount, rel)] = data[key]


def _k8s_pod_siblings(run: Run, index: StackIndex) -> None:
    """Init and other containers of the same pod may write this one's files into a shared volume."""
    spec = pod_spec(run.kind, run.res.props)
    for key in ("initContainers", "containers"):
        for c in as_list(spec.get(key)):
            if not isinstance(c, dict) or c is run.container:
                continue
            other = Run(run.res, run.platform, run.kind, run.name, run.namespace, c, argv=_k8s_argv(c))
            _k8s_env(other, index)
            run.blobs.append(expand(" ".join(other.argv), other.env))
            run.blobs.extend(other.env.values())


def _dependency_configs(run: Run, index: StackIndex) -> None:
    """ConfigMaps/Secrets the resource depends on whose contents are not already mapped to a path
    (e.g. a name that was computed, so the mount cannot be matched by name)."""
    known = set(run.files.values())
    urns = list(run.res.dependencies) + [u for us in run.res.property_dependencies.values() for u in us]
    for urn in urns:
        dep = index.by_urn.get(urn)
        if dep is None or k8s_kind(dep.type) not in ("ConfigMap", "Secret"):
            continue
        data = index.config(k8s_kind(dep.type), k8s_namespace(dep.props), k8s_name(dep.props, dep.name)) or {}
        run.blobs.extend(f"{k}\n{v}" for k, v in data.items() if v not in known)


EvidenceSource = Callable[[Run, StackIndex], None]
DOCKER_EVIDENCE: tuple[EvidenceSource, ...] = (_docker_uploads, _docker_writers)
K8S_EVIDENCE: tuple[EvidenceSource, ...] = (_k8s_env, _k8s_volume_files, _k8s_pod_siblings, _dependency_configs)


# ---------------------------------------------------------------- building runs

def _k8s_argv(container: dict) -> list[str]:
    return _strings(container.get("command")) + _strings(container.get("args"))


def docker_run(r, index: StackIndex, evidence=DOCKER_EVIDENCE) -> Run:
    props = r.props
    run = Run(r, "docker", "Container", props.get("name") if isinstance(props.get("name"), str) else r.name, "",
              props, argv=_strings(props.get("entrypoints")) + _strings(props.get("command")))
    run.env = {k: v for k, v in docker_envs(props) if isinstance(v, str)}
    # Berth mirrors each plain variable into a label `berth.env.NAME` = "NAME=value". At preview a
    # list with one generated secret in it is unknown as a whole (seen with the real engine), while
    # the labels are known: they stand in for the plain variables the env list would show.
    for item in as_list(props.get("labels")):
        if isinstance(item, dict) and str(item.get("label", "")).startswith("berth.env."):
            value = item.get("value")
            if isinstance(value, str) and "=" in value:
                k, v = value.split("=", 1)
                run.env.setdefault(k, v)
    for source in evidence:
        source(run, index)
    return run


def k8s_runs(r, index: StackIndex, include_init: bool = False) -> list[Run]:
    kind = k8s_kind(r.type)
    spec = pod_spec(kind, r.props)
    out = []
    keys = ("initContainers", "containers") if include_init else ("containers",)
    for key in keys:
        for c in as_list(spec.get(key)):
            if not isinstance(c, dict):
                continue
            run = Run(r, "kubernetes", kind, k8s_name(r.props, r.name), k8s_namespace(r.props), c,
                      argv=_k8s_argv(c), init=key == "initContainers")
            for source in K8S_EVIDENCE:
                source(run, index)
            out.append(run)
    return out


# ---------------------------------------------------------------- reading what runs

def expand(text: str, env: dict[str, str]) -> str:
    """``$X``, ``${X}``, ``${X:-d}`` and Kubernetes' ``$(X)`` replaced by known env values."""
    def sub(m):
        name = m.group(1) or m.group(2) or m.group(3)
        value = env.get(name)
        return value if isinstance(value, str) else m.group(0)

    return SHELL_VAR.sub(sub, text)


def reachable_text(run: Run, limit: int = 64) -> str:
    """The command line plus every known file or blob it leads to (transitively), env expanded."""
    texts: list[str] = []
    queue = [expand(" ".join(run.argv), run.env)] if run.argv else []
    seen_files: set[str] = set()
    seen_blobs: set[int] = set()
    while queue and len(texts) < limit:
        text = queue.pop(0)
        texts.append(text)
        words = {w for w in PATH_WORD.findall(text) if "/" in w or "." in w.strip(".")}
        bases = {posixpath.basename(w.rstrip("/")) for w in words} - {""}
        for path, content in run.files.items():
            if path not in seen_files and (path in words or posixpath.basename(path) in bases):
                seen_files.add(path)
                queue.append(expand(content, run.env))
        for i, blob in enumerate(run.blobs):
            if i not in seen_blobs and any(len(b) >= 4 and b in blob for b in bases):
                seen_blobs.add(i)
                queue.append(expand(blob, run.env))
    return "\n".join(texts)
