"""A Pulumi YAML program under ``berth render``: what it would create, with no engine and no cloud.

``berth render`` records a Python program under mocks (``berth.record``). A YAML program is run by
the YAML language host, which is not here; this module evaluates the part of the YAML language a
program that uses Berth needs, in-process, and constructs the same components the provider would
(``components.py``, with the properties mapped by the provider's own code), so the render shows
the Berth components' resources exactly as ``pulumi up`` would declare them.

What it evaluates: ``config`` (with ``type`` and ``default``; values from ``Pulumi.<stack>.yaml``,
``<project>:<name>``), ``variables``, ``resources`` (Berth's components, and raw resources of the
packages Berth uses, with the options ``dependsOn``, ``parent``, ``protect``, ``provider``,
``retainOnDelete``, ``ignoreChanges``, ``deleteBeforeReplace``), ``outputs``, and the expressions
``${name}``, ``${name.property}``, ``${name.list[0]}``, ``${name["key"]}``, ``${pulumi.stack}``,
``${pulumi.project}``, interpolation in strings and ``fn::secret``. Anything else (``fn::invoke``,
``get``, other ``fn::`` functions) fails with a message naming it: the real CLI (``pulumi preview``)
evaluates the whole language.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import yaml

_OPTIONS = {"dependsOn", "parent", "protect", "provider", "retainOnDelete", "ignoreChanges", "deleteBeforeReplace"}
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_ACCESS = re.compile(rf"\.({_NAME})|\[(\d+)\]|\[\"([^\"]*)\"\]")
_INTERP = re.compile(r"\$\$\{|\$\{([^}]*)\}")


class YamlProgramError(Exception):
    """The program uses what ``berth render`` does not evaluate, or refers to what does not exist."""


def runtime_of(project_dir: Path) -> str:
    doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    runtime = doc.get("runtime")
    return (runtime.get("name") if isinstance(runtime, dict) else runtime) or ""


def template(project_dir: Path) -> dict[str, Any]:
    """The program: ``Pulumi.yaml`` itself, or ``Main.yaml`` in the folder its ``main`` names."""
    doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    main = doc.get("main")
    if main:
        path = project_dir / main
        path = path / "Main.yaml" if path.is_dir() else path
        return {**doc, **(yaml.safe_load(path.read_text()) or {})}
    return doc


def _references(value: Any) -> set[str]:
    """The root names an expression tree refers to (``${db.url}`` → ``db``)."""
    found: set[str] = set()
    if isinstance(value, str):
        for m in _INTERP.finditer(value):
            if m.group(1):
                root = re.match(_NAME, m.group(1).strip())
                if root:
                    found.add(root.group(0))
    elif isinstance(value, dict):
        for v in value.values():
            found |= _references(v)
    elif isinstance(value, list):
        for v in value:
            found |= _references(v)
    return found


def _accessed(value: Any, name: str) -> set[str]:
    """Properties read from ``name`` anywhere in ``value`` (``${res.prop}`` → ``prop``)."""
    out: set[str] = set()
    for text in re.findall(r"\$\{([^}]*)\}", json.dumps(value)):
        m = re.match(rf"\s*{re.escape(name)}\.({_NAME})", text)
        if m:
            out.add(m.group(1))
    return out


class Program:
    """One evaluation of a YAML program (inside ``berth.record``'s mocks)."""

    def __init__(self, doc: dict[str, Any], project: str, stack: str):
        self.doc, self.project, self.stack = doc, project, stack
        self.values: dict[str, Any] = {}

    # ------------------------------------------------------------------ expressions

    def _lookup(self, expr: str) -> Any:
        expr = expr.strip()
        root = re.match(_NAME, expr)
        if not root:
            raise YamlProgramError(f"${{{expr}}}: berth render evaluates names and property accesses only")
        name, rest = root.group(0), expr[root.end():]
        if name == "pulumi":
            value: Any = {"stack": self.stack, "project": self.project, "organization": "organization"}
        elif name in self.values:
            value = self.values[name]
        else:
            raise YamlProgramError(f"${{{expr}}}: nothing named {name!r} in config, variables or resources")
        pos = 0
        while pos < len(rest):
            m = _ACCESS.match(rest, pos)
            if not m:
                raise YamlProgramError(f"${{{expr}}}: cannot read {rest[pos:]!r} (berth render reads .name, [0], "
                                       "[\"key\"])")
            key: Any = m.group(1) if m.group(1) is not None else (int(m.group(2)) if m.group(2) else m.group(3))
            value = self._get(value, key, expr)
            pos = m.end()
        return value

    def _get(self, value: Any, key: Any, expr: str) -> Any:
        import pulumi

        if isinstance(value, pulumi.Resource):
            # A component's outputs are its snake_case attributes; a raw resource's, the names as given.
            snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), str(key))
            for attr in (snake, str(key)):
                if hasattr(value, attr):
                    return getattr(value, attr)
            raise YamlProgramError(f"${{{expr}}}: {getattr(value, '_type', 'the resource')} has no output {key!r}")
        if isinstance(value, pulumi.Output):
            return value.apply(lambda v: v[key] if v is not None else None)
        try:
            return value[key]
        except (KeyError, IndexError, TypeError):
            raise YamlProgramError(f"${{{expr}}}: no {key!r} there") from None

    def eval(self, value: Any) -> Any:
        import pulumi

        if isinstance(value, str):
            matches = list(_INTERP.finditer(value))
            if len(matches) == 1 and matches[0].group(1) is not None and matches[0].span() == (0, len(value)):
                return self._lookup(matches[0].group(1))
            parts: list[Any] = []
            pos = 0
            for m in matches:
                parts.append(value[pos:m.start()])
                parts.append("${" if m.group(1) is None else self._lookup(m.group(1)))
                pos = m.end()
            parts.append(value[pos:])
            if any(isinstance(p, pulumi.Output) for p in parts):
                return pulumi.Output.concat(*[p if isinstance(p, pulumi.Output) else str(p) for p in parts])
            return "".join(str(p) for p in parts) if matches else value
        if isinstance(value, dict):
            fns = [k for k in value if isinstance(k, str) and k.startswith("fn::")]
            if fns:
                if fns == ["fn::secret"] and len(value) == 1:
                    return pulumi.Output.secret(self.eval(value["fn::secret"]))
                raise YamlProgramError(f"{fns[0]}: berth render does not evaluate this function (only fn::secret); "
                                       "`pulumi preview` shows what the program creates")
            return {k: self.eval(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.eval(v) for v in value]
        return value

    # ------------------------------------------------------------------ the program

    def _config(self) -> None:
        from pulumi.runtime.config import get_config

        for name, decl in (self.doc.get("config") or {}).items():
            decl = decl if isinstance(decl, dict) else {"default": decl}
            key = name if ":" in name else f"{self.project}:{name}"
            raw = get_config(key)
            if raw is None:
                if "default" not in decl:
                    raise YamlProgramError(f"config {name!r} has no value in Pulumi.{self.stack}.yaml and no default: "
                                           f"pulumi config set {name} VALUE")
                self.values[name] = decl["default"]
                continue
            kind = str(decl.get("type", "string")).lower()
            try:
                self.values[name] = (int(raw) if kind == "integer" else raw.lower() == "true" if kind == "boolean"
                                     else json.loads(raw) if kind.startswith("list") or kind == "object" else raw)
            except ValueError:
                raise YamlProgramError(f"config {name!r} = {raw!r} is not a {kind}") from None

    def _order(self, nodes: dict[str, Any]) -> list[str]:
        deps = {n: {r for r in _references(v) if r in nodes and r != n} for n, v in nodes.items()}
        done: list[str] = []
        visiting: set[str] = set()

        def visit(n: str) -> None:
            if n in done:
                return
            if n in visiting:
                raise YamlProgramError(f"{n}: its references form a cycle")
            visiting.add(n)
            for d in sorted(deps[n]):
                visit(d)
            visiting.discard(n)
            done.append(n)

        for n in nodes:
            visit(n)
        return done

    def _options(self, name: str, options: dict[str, Any]) -> Any:
        import pulumi

        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise YamlProgramError(f"{name}: berth render does not evaluate the options {unknown}")
        o = self.eval(options)
        return pulumi.ResourceOptions(
            depends_on=o.get("dependsOn"), parent=o.get("parent"), protect=o.get("protect"),
            provider=o.get("provider"), retain_on_delete=o.get("retainOnDelete"),
            ignore_changes=o.get("ignoreChanges"), delete_before_replace=o.get("deleteBeforeReplace"))

    def _resource(self, name: str, decl: dict[str, Any], provider: Any) -> Any:
        import pulumi
        from pulumi.errors import InputPropertyError

        from .convert import PropertyError

        if not isinstance(decl, dict) or "type" not in decl:
            raise YamlProgramError(f"{name}: a resource needs a type")
        if "get" in decl:
            raise YamlProgramError(f"{name}: berth render does not read existing resources (get)")
        typ = str(decl["type"])
        opts = self._options(name, decl.get("options") or {})
        props = self.eval(decl.get("properties") or {})
        parts = typ.split(":")
        if parts[0] == "berth":
            kind = parts[-1]
            defs = provider._component_defs
            if kind not in defs or len(parts) not in (2, 3):
                raise YamlProgramError(f"{name}: berth has no component {typ!r} (have: {', '.join(sorted(defs))})")
            try:
                mapped = provider.map_inputs(props, defs[kind])
            except InputPropertyError as e:
                raise PropertyError(f"berth:{kind}", name, [(e.property_path, "(missing)", e.reason)]) from None
            return provider._components[kind](name, mapped, opts)
        if typ.startswith("pulumi:providers:"):
            return pulumi.ProviderResource(typ.split(":")[-1], name, props, opts)
        read = {p: None for p in _accessed(self.doc, name) if p not in props}
        return pulumi.CustomResource(typ if len(parts) == 3 else f"{parts[0]}:index:{parts[1]}", name,
                                     {**props, **read}, opts)

    def run(self) -> None:
        import pulumi

        from .provider import BerthProvider

        provider = BerthProvider()
        self._config()
        variables = self.doc.get("variables") or {}
        resources = self.doc.get("resources") or {}
        taken = set(self.values) & (set(variables) | set(resources)) | set(variables) & set(resources)
        if taken:
            raise YamlProgramError(f"names used twice (config, variables, resources): {sorted(taken)}")
        nodes = {**variables, **resources}
        for n in self._order(nodes):
            if n in variables:
                self.values[n] = self.eval(variables[n])
            else:
                self.values[n] = self._resource(n, resources[n], provider)
        for key, value in (self.doc.get("outputs") or {}).items():
            pulumi.export(key, self.eval(value))


def program(project_dir: Path, stack: str) -> Callable[[], None]:
    """The YAML program of ``project_dir`` as a function for ``berth.record``."""
    doc = template(project_dir)

    def run() -> None:
        Program(doc, str(doc.get("name")), stack).run()

    return run


def is_yaml(project_dir: Path) -> bool:
    try:
        return runtime_of(project_dir) == "yaml"
    except (OSError, yaml.YAMLError):
        return False

