"""From a component's properties (as another Pulumi language gives them) to Berth's spec models,
with every problem named by its property (pure: no resource is created here).

The properties arrive with Python names (the host maps ``memoryLimit`` to ``memory_limit``); the
spec models check them exactly as they check the ``berth:`` config keys and ``berth.api``'s specs.
A problem is reported with the property path a YAML program writes (``resources.memoryLimit``,
``routes[0].path``), the value and the fix, and every problem of a component is reported at once,
before any of its resources exists (``PropertyError``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping, Optional, get_args, get_origin

import pulumi
from pydantic import BaseModel, ValidationError
from pulumi.provider.experimental.util import camel_case

from berth.components.spec import ConfigError
from berth.components.spec.parse import _BRANCHES, _FIXES
from berth.components.spec.reference import _is_model, _strip


class PropertyError(ConfigError):
    """Bad properties of one component: each problem is ``(path, shown value, reason)`` with the
    property path in the schema's (camelCase) names. Subclasses ``ConfigError`` (a
    ``pulumi.RunError``): the CLI and ``berth render`` print it without a traceback."""

    def __init__(self, kind: str, name: str, problems: list[tuple[str, str, str]]):
        self.kind, self.name, self.property_problems = kind, name, problems
        self.problems = [line(name, *p) for p in problems]
        text = "\n".join(f"  - {p}" for p in self.problems)
        pulumi.RunError.__init__(self, f"invalid properties of {kind} {name!r} ({len(problems)} problem(s)):\n{text}")


def line(resource: str, path: str, shown: str, reason: str) -> str:
    """``db.storage = "512MB": must be a size ...`` (the resource's name, then the property)."""
    key = f"{resource}.{path}" if path else resource
    return f"{key} = {shown}: {reason}" if shown else f"{key}: {reason}"


def show(value: Any) -> str:
    text = "(missing)" if value is _MISSING else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


_MISSING = object()


def schema_path(parts: Iterable[Any]) -> str:
    """``("resources", "memory_limit")`` → ``resources.memoryLimit``; ``("routes", 0, "path")`` →
    ``routes[0].path``. Strings are property names (camelCased) unless ``MapKey`` (kept)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, MapKey):
            out += f"[{json.dumps(str(part))}]" if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part) else f".{part}"
        else:
            out += ("." if out else "") + camel_case(str(part))
    return out


class MapKey(str):
    """A key of a map property (an env variable, a setting): written as given, never camelCased."""


def words(text: str, names: Iterable[str]) -> str:
    """A message of the spec or of ``berth.api`` in the schema's names: ``raise memory_limit`` →
    ``raise memoryLimit`` for each snake_case property name in ``names``."""
    for n in sorted({n for n in names if "_" in n}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w:.-]){re.escape(n)}(?![\w-])", camel_case(n), text)
    return text


def model_field_names(model: type[BaseModel]) -> set[str]:
    """Every field name of ``model`` and of the models inside it."""
    names: set[str] = set()
    todo, seen = [model], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for name, info in m.model_fields.items():
            names.add(name)
            tp = _strip(info.annotation)
            stack = [tp]
            while stack:
                t = _strip(stack.pop())
                if _is_model(t):
                    todo.append(t)
                else:
                    stack.extend(get_args(t))
    return names


def outputs_in(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths of the ``Output`` values inside ``value`` (values only another resource knows)."""
    if isinstance(value, pulumi.Output):
        return [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in outputs_in(v, (*path, MapKey(k)))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in outputs_in(v, (*path, i))]
    return []


def _loc_path(model: type[BaseModel], loc: tuple, prefix: tuple) -> tuple:
    """A pydantic error location as property parts: field names, list indexes, map keys (union
    branch names dropped)."""
    parts: list[Any] = list(prefix)
    tp: Any = model
    for raw in loc:
        if str(raw) in _BRANCHES:
            continue
        t = _strip(tp)
        if _is_model(t):
            info = t.model_fields.get(str(raw))
            parts.append(str(raw))
            tp = info.annotation if info else None
        elif get_origin(t) is dict:
            parts.append(MapKey(str(raw)))
            tp = get_args(t)[1]
        elif get_origin(t) is list:
            parts.append(int(raw) if isinstance(raw, int) or str(raw).isdigit() else raw)
            tp = get_args(t)[0]
        else:
            parts.append(raw if isinstance(raw, int) else str(raw))
            tp = None
    return tuple(parts)


class Props:
    """The properties of one component being constructed, and the problems found in them."""

    def __init__(self, kind: str, name: str, args: Optional[Mapping[str, Any]]):
        self.kind, self.name = kind, name
        self.args: dict[str, Any] = dict(args or {})
        self.problems: list[tuple[str, str, str]] = []

    def problem(self, parts: Iterable[Any], reason: str, value: Any = None, shown: Optional[str] = None) -> None:
        if shown is None:
            shown = "" if value is None else show(value)
        self.problems.append((schema_path(parts), shown, reason))

    def check(self) -> None:
        """Raise every problem found so far (before any resource of the component exists)."""
        if self.problems:
            raise PropertyError(self.kind, self.name, self.problems)

    def plain(self, keys: Iterable[str]) -> dict[str, Any]:
        """``keys`` that were given, each a value known now: what decides what is built cannot wait
        for another resource (a secret or another resource's output goes in ``secretEnv``)."""
        out: dict[str, Any] = {}
        for key in keys:
            if key not in self.args or self.args[key] is None:
                continue
            found = outputs_in(self.args[key], (key,))
            for path in found:
                self.problem(path, "must be a value known before deployment (a literal or a plain config value), "
                             "not a secret or another resource's output; pass such values in secretEnv")
            if not found:
                out[key] = self.args[key]
        return out

    def model(self, model: type[BaseModel], values: Mapping[str, Any], prefix: tuple = (),
              extra_names: Iterable[str] = ()) -> Optional[BaseModel]:
        """``model`` checked from ``values`` (Python names); its errors become problems at ``prefix``."""
        try:
            return model.model_validate(dict(values))
        except ValidationError as exc:
            names = model_field_names(model) | set(extra_names)
            seen: set[str] = set()
            for err in exc.errors():
                parts = _loc_path(model, tuple(err["loc"]), prefix)
                value = _MISSING if err["type"] == "missing" else err.get("input")
                if isinstance(value, Mapping):
                    value = None  # a whole object: the message says which of its properties is wrong
                msg = words(err["msg"].removeprefix("Value error, "), names)
                fix = _FIXES.get(err["type"], "")
                reason = msg + (f"; {fix}" if fix and fix not in msg else "")
                shown = show(value) if value is not None else ""
                key = f"{schema_path(parts)}|{reason}"
                if key not in seen:
                    seen.add(key)
                    self.problems.append((schema_path(parts), shown, reason))
            return None

    def refused(self, exc: Exception, names: Iterable[str]) -> PropertyError:
        """A check of ``berth.api`` (names, clients, target settings) as a problem of this component,
        in the schema's names."""
        names = set(names)
        text = re.sub(rf"^[a-z ]+ {re.escape(repr(self.name))}: ", "", str(exc))
        m = re.match(r"^([a-z_]+(?:\.[a-z_]+|\[\d+\])*)(?: = (.*?))?: (.*)$", text, re.S)
        if m and re.split(r"[.\[]", m.group(1))[0] in names:
            # one property's problem: `run_as_root: set for target kubernetes, ...`, `backup.restore_from = ...`
            path = ".".join(x if x.endswith("]") else camel_case(x) for x in m.group(1).split("."))
            problem = (path, m.group(2) or "", words(m.group(3), names))
        else:
            problem = ("", "", words(text, names))
        return PropertyError(self.kind, self.name, [*self.problems, problem])

    def stack_problem(self, text: str, key: str, names: Iterable[str]) -> None:
        """A problem the stack's checks report for ``berth:<section>.<name>`` (``key``), as this
        component's: ``berth:services.api.replicas = 2: autoscale ...`` → ``replicas``, ``2``, ``autoscale ...``."""
        rest = text[len(key):] if text.startswith(key) else text
        m = re.match(r"^\.?([\w.\[\]]*)(?: = (.*?))?: (.*)$", rest, re.S)
        if not m:
            self.problems.append(("", "", words(rest, names)))
            return
        path = ".".join(camel_case(x) if not x.endswith("]") else x for x in m.group(1).split(".")) if m.group(1) else ""
        self.problems.append((path, m.group(2) or "", words(m.group(3), names)))
