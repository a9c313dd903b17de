"""``berth render``: an offline view of what a stack would create (like ``helm template``).

Evaluates the real program for a stack under the recording mocks (``berth.record``: same
``components.program.main``, same ``Pulumi.<stack>.yaml``, no engine, no cloud) and writes:

``OUT/kubernetes/NNN-<kind>-<name>.yaml``
    every Kubernetes object as a manifest, one per file, in apply order: Namespaces and CRDs, then
    Secrets/ConfigMaps/PVCs/ServiceAccounts/RBAC, then workloads, Services, and last
    HPA/PDB/NetworkPolicy/Ingress (``dependsOn`` is honoured inside that order). The directory can be
    reviewed, diffed, or validated (``kubectl apply --dry-run=server -f OUT/kubernetes``).
``OUT/resources/NNN-<type>-<name>.json``
    every other resource (Docker networks, volumes, images, containers; random passwords; TLS keys
    and certificates; explicit providers) with its inputs and options (protect, retainOnDelete,
    dependsOn, replaceOnChanges, ...), in dependency order.
``OUT/index.json``
    the project, stack, and every resource (components included) with its file, URN and options.
``OUT/outputs.json``
    the stack outputs.

Secret values never appear: generated values (passwords, keys, certificates) and secret config come
out as named placeholders ``<<berth:KIND:NAME>>``. The output is deterministic: the same program
and config give byte-identical files (sorted keys, stable order, no timestamps).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import re
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

from . import record as _record_module
from .record import PLACEHOLDER_RE, ROOT, Recording, Resource, record

#: Apply groups for Kubernetes kinds (lower first). Unknown kinds (custom resources) go last.
KIND_GROUPS: list[list[str]] = [
    ["Namespace", "CustomResourceDefinition", "PriorityClass", "StorageClass"],
    [
        "ServiceAccount", "Secret", "ConfigMap", "PersistentVolume", "PersistentVolumeClaim",
        "ResourceQuota", "LimitRange", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding",
    ],
    ["StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob"],
    ["Service"],
    ["HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Ingress"],
]
_KIND_RANK = {kind: (g, i) for g, kinds in enumerate(KIND_GROUPS) for i, kind in enumerate(kinds)}
_OTHER_GROUP = len(KIND_GROUPS)

#: Order of non-Kubernetes resources when dependencies don't decide it.
_TYPE_RANK = {
    "pulumi:providers:": 0,
    "random:": 1,
    "tls:index/privateKey": 2,
    "tls:": 3,
    "docker:index/network": 4,
    "docker:index/volume": 5,
    "docker:index/remoteImage": 6,
    "docker:index/image": 6,
    "docker:": 7,
}

#: Everything this command writes inside the output directory (removed before a new render).
OWNED = ("kubernetes", "resources", "index.json", "outputs.json")


class RenderError(Exception):
    """A problem with the request (no such stack file, output path unusable): exit code 2."""


def is_kubernetes(r: Resource) -> bool:
    return r.custom and r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:providers:")


def manifest(r: Resource) -> dict[str, Any]:
    """The Kubernetes manifest a resource's inputs describe (apiVersion, kind, metadata, ...)."""
    m = dict(r.inputs)
    if "apiVersion" not in m or "kind" not in m:
        # The SDK always sends them; derive from the type token if a resource didn't.
        _, mod, kind = r.type.split(":")
        group, version = mod.rsplit("/", 1)
        m.setdefault("apiVersion", version if group == "core" else f"{group}/{version}")
        m.setdefault("kind", kind)
    m.setdefault("metadata", {})
    return m


def _k8s_key(r: Resource) -> tuple:
    m = manifest(r)
    group, idx = _KIND_RANK.get(m["kind"], (_OTHER_GROUP, 0))
    md = m.get("metadata") or {}
    return (group, idx, m["kind"], md.get("namespace") or "", md.get("name") or r.name, r.urn)


def _other_key(r: Resource) -> tuple:
    rank = next((v for k, v in _TYPE_RANK.items() if r.type.startswith(k)), 8)
    return (rank, r.type, r.name, r.urn)


def apply_order(resources: list[Resource], key) -> list[Resource]:
    """Topological order by ``dependsOn`` (and parents), ties broken by ``key``: stable and deterministic."""
    by_urn = {r.urn: r for r in resources}
    deps: dict[str, set[str]] = {r.urn: {d for d in r.depends_on if d in by_urn and d != r.urn} for r in resources}
    users: dict[str, set[str]] = {u: set() for u in by_urn}
    for u, ds in deps.items():
        for d in ds:
            users[d].add(u)
    heap = [(key(by_urn[u]), u) for u, ds in deps.items() if not ds]
    heapq.heapify(heap)
    out: list[Resource] = []
    remaining = {u: len(ds) for u, ds in deps.items()}
    while heap:
        _, u = heapq.heappop(heap)
        out.append(by_urn[u])
        for v in users[u]:
            remaining[v] -= 1
            if remaining[v] == 0:
                heapq.heappush(heap, (key(by_urn[v]), v))
    if len(out) != len(resources):  # a cycle cannot come from Pulumi; keep everything anyway
        done = {r.urn for r in out}
        out += sorted((r for r in resources if r.urn not in done), key=key)
    return out


def kubernetes_order(resources: list[Resource]) -> list[Resource]:
    """Apply order: kind groups strictly first (Namespaces/CRDs → config → workloads → Services →
    policies/ingress → custom resources), then ``dependsOn`` inside each group, ties by kind,
    namespace and name."""
    groups: dict[int, list[Resource]] = {}
    for r in resources:
        groups.setdefault(_k8s_key(r)[0], []).append(r)
    out: list[Resource] = []
    for g in sorted(groups):
        out += apply_order(sorted(groups[g], key=_k8s_key), _k8s_key)
    return out


_SAFE = re.compile(r"[^a-z0-9.-]+")


def _slug(text: str) -> str:
    return _SAFE.sub("-", text.lower()).strip("-") or "x"


def _type_slug(type_: str) -> str:
    """``docker:index/container:Container`` → ``docker-container``; ``random:index/randomPassword:...`` → ``random-randompassword``."""
    if type_.startswith("pulumi:providers:"):
        return "provider-" + _slug(type_.split(":")[-1])
    pkg, mod, _ = type_.split(":")
    leaf = mod.split("/")[-1]
    return f"{pkg}-{_slug(leaf)}"


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as ``|`` literals (nginx.conf, scripts stay readable)."""


def _str_representer(dumper: yaml.SafeDumper, data: str):
    style = "|" if "\n" in data and not any(c in data for c in "\r\t") and data == data.rstrip(" ") else None
    if style and any(line != line.rstrip(" ") for line in data.split("\n")):
        style = None  # trailing spaces can't round-trip in a literal block
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=100000)


def to_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _resource_json(r: Resource) -> dict[str, Any]:
    out = r.to_json()
    out["aliases"] = sorted(r.aliases)
    if r.provider:  # an explicit provider: its URN and (mock) id
        out["provider"] = r.provider
    return out


def plan(rec: Recording) -> list[tuple[str, Resource, str]]:
    """(relative file path, resource, file text) for every custom resource, in write order."""
    k8s = [r for r in rec.resources if is_kubernetes(r)]
    other = [r for r in rec.resources if r.custom and not is_kubernetes(r)]
    files: list[tuple[str, Resource, str]] = []
    width = max(3, len(str(max(len(k8s), len(other), 1))))
    used: set[str] = set()
    for i, r in enumerate(kubernetes_order(k8s), start=1):
        m = manifest(r)
        md = m.get("metadata") or {}
        base = f"{i:0{width}d}-{_slug(m['kind'])}-{_slug(md.get('name') or r.name)}"
        path = f"kubernetes/{base}.yaml"
        if path in used:  # same kind and name in another namespace
            path = f"kubernetes/{base}-{_slug(md.get('namespace') or r.name)}.yaml"
        used.add(path)
        files.append((path, r, to_yaml(m)))
    for i, r in enumerate(apply_order(sorted(other, key=_other_key), _other_key), start=1):
        path = f"resources/{i:0{width}d}-{_type_slug(r.type)}-{_slug(r.name)}.json"
        used.add(path)
        files.append((path, r, to_json(_resource_json(r))))
    return files


def index(rec: Recording, files: list[tuple[str, Resource, str]]) -> dict[str, Any]:
    file_of = {r.urn: path for path, r, _ in files}
    entries = []
    for r in sorted(rec.resources, key=lambda r: r.urn):
        e = {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "custom": r.custom,
            "parent": r.parent,
            "file": file_of.get(r.urn),
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "deleteBeforeReplace": r.delete_before_replace,
            "dependsOn": sorted(r.depends_on),
        }
        if is_kubernetes(r):
            m = manifest(r)
            e["kind"] = m["kind"]
            e["apiVersion"] = m["apiVersion"]
            e["namespace"] = (m.get("metadata") or {}).get("namespace")
        entries.append(e)
    return {
        "project": rec.project,
        "stack": rec.stack,
        "applyOrder": [path for path, _, _ in files],
        "resources": entries,
        "counts": {
            "kubernetes": sum(1 for _, r, _ in files if is_kubernetes(r)),
            "other": sum(1 for _, r, _ in files if not is_kubernetes(r)),
            "components": sum(1 for r in rec.resources if not r.custom),
        },
    }


def render_recording(rec: Recording, out_dir: Path) -> dict[str, Any]:
    """Write ``rec`` into ``out_dir`` (our own files there are replaced). Returns the index."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RenderError(f"output path {out_dir} exists and is not a directory")
    files = plan(rec)
    idx = index(rec, files)
    _clean(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, _, text in files:
        target = out_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (out_dir / "index.json").write_text(to_json(idx), encoding="utf-8")
    (out_dir / "outputs.json").write_text(to_json(rec.outputs), encoding="utf-8")
    return idx


#: The files this command writes inside ``kubernetes/`` and ``resources/``.
_OUR_FILE = re.compile(r"^\d{3,}-[a-z0-9.-]+\.(yaml|json)$")


def _is_previous_render(out_dir: Path) -> bool:
    try:
        idx = json.loads((out_dir / "index.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(idx, dict) and {"project", "stack", "applyOrder", "resources"} <= set(idx)


def _clean(out_dir: Path) -> None:
    """Remove what a previous render wrote, and nothing else. ``-o`` may point at a directory that
    holds other things (``-o .`` in a project with its own ``resources/``): a directory that is not
    a previous render is refused rather than emptied, and inside ``kubernetes/`` and ``resources/``
    only files named like ours are removed."""
    present = [name for name in OWNED if (out_dir / name).exists()]
    if not present:
        return
    if not _is_previous_render(out_dir):
        raise RenderError(
            f"output directory {out_dir} has {', '.join(present)} but is not a previous `berth render` "
            "(no index.json of one): choose another directory (-o) or remove them"
        )
    for name in ("index.json", "outputs.json"):
        (out_dir / name).unlink(missing_ok=True)
    for name in ("kubernetes", "resources"):
        d = out_dir / name
        if not d.is_dir():
            continue
        for f in d.iterdir():
            if f.is_file() and _OUR_FILE.match(f.name):
                f.unlink()
        if not any(d.iterdir()):
            d.rmdir()


_REDACTED = "<<berth:secret:@"


@contextlib.contextmanager
def redacting_secrets() -> Iterator[None]:
    """While recording, replace every secret value that is not built from a placeholder.

    The recording mocks unwrap secrets: a generated password is already a placeholder, but a
    secret read from disk at program time (``tls.mode: files`` reads the private key) would be its
    real value. Inside a secret, a string without a placeholder becomes ``<<berth:secret:@PATH>>``;
    ``_name_redactions`` then names it after its resource: ``<<berth:secret:RESOURCE.PATH>>``.
    """
    from pulumi.runtime import rpc

    original = _record_module._plain

    def plain(value: Any, path: str = "", in_secret: bool = False) -> Any:
        if rpc.is_rpc_secret(value):
            return plain(rpc.unwrap_rpc_secret(value), path, True)
        if isinstance(value, dict):
            return {k: plain(v, f"{path}.{k}" if path else k, in_secret) for k, v in value.items() if not k.startswith("__")}
        if isinstance(value, (list, tuple)):
            return [plain(v, f"{path}[{i}]", in_secret) for i, v in enumerate(value)]
        leaf = original(value)
        if in_secret and isinstance(leaf, str) and not PLACEHOLDER_RE.search(leaf):
            return f"{_REDACTED}{path or 'value'}>>"
        return leaf

    _record_module._plain = plain
    try:
        yield
    finally:
        _record_module._plain = original


def _name_redactions(value: Any, owner: str) -> Any:
    if isinstance(value, dict):
        return {k: _name_redactions(v, owner) for k, v in value.items()}
    if isinstance(value, list):
        return [_name_redactions(v, owner) for v in value]
    if isinstance(value, str) and _REDACTED in value:
        return value.replace(_REDACTED, f"<<berth:secret:{owner}.")
    return value


def record_redacted(stack: str, project_dir: Path = ROOT, config: Optional[dict[str, Any]] = None) -> Recording:
    """``record`` with every secret value a named placeholder (see ``redacting_secrets``)."""
    with redacting_secrets():
        rec = record(stack, project_dir=project_dir, config=config)
    for r in rec.resources:
        r.inputs = _name_redactions(r.inputs, r.name)
    rec.outputs = _name_redactions(rec.outputs, "outputs")
    return rec


def _is_yaml(project_dir: Path) -> bool:
    from berth.package.yaml_program import is_yaml

    return is_yaml(project_dir)


def render(
    stack: str,
    out_dir: Path,
    project_dir: Path = ROOT,
    config: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Record ``stack`` of the project in ``project_dir`` and write it to ``out_dir``.

    Raises ``components.spec.ConfigError`` for a bad stack config and ``RenderError`` for a missing
    stack or project file.
    """
    project_dir = Path(project_dir)
    if not (project_dir / "Pulumi.yaml").exists():
        raise RenderError(f"no Pulumi.yaml in {project_dir}: pass the project directory with --project-dir")
    if config is None and not (project_dir / f"Pulumi.{stack}.yaml").exists() and _is_yaml(project_dir):
        config = {}  # a YAML program declares its config with defaults; a stack may have no file yet
    if config is None and not (project_dir / f"Pulumi.{stack}.yaml").exists():
        have = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise RenderError(f"no stack config Pulumi.{stack}.yaml in {project_dir} (stacks there: {', '.join(have) or 'none'})")
    rec = record_redacted(stack, project_dir=project_dir, config=config)
    return render_recording(rec, out_dir)
