"""Walking the models: the reference of every config key (``berth/docs.py`` writes it into the
README), and, for an unknown key, the model it was written in and where such a setting lives."""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel

from .fields import BOTH, NAMESPACE, _extra
from .stack import StackSpec


def _strip(tp: Any) -> Any:
    """``Optional[Annotated[X, ...]]`` → ``X`` (a Union of several types stays a Union)."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union and sum(a is not type(None) for a in get_args(tp)) == 1:
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _descend(tp: Any, part: Any) -> Any:
    """The type found at ``part`` (a field name, map key, list index or union branch) inside ``tp``."""
    tp = _strip(tp)
    if _is_model(tp):
        info = tp.model_fields.get(str(part))
        return info.annotation if info else None
    origin = get_origin(tp)
    if origin is dict:
        return get_args(tp)[1]
    if origin is list:
        return get_args(tp)[0]
    if origin is Union:
        for arg in get_args(tp):
            if getattr(_strip(arg), "__name__", None) == part:
                return arg
        for arg in get_args(tp):
            found = _descend(arg, part)
            if found is not None:
                return found
    return None


def _model_at(loc: tuple) -> Optional[type[BaseModel]]:
    tp: Any = StackSpec
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return None
    tp = _strip(tp)
    return tp if _is_model(tp) else None


#: Placeholder for the keys of a map, by field name.
_MAP_KEY = {"backups": "DB", "secret_env": "VAR", "env": "VAR", "settings": "SETTING", "uses": "STORE"}


def _type_text(tp: Any) -> str:
    tp = _strip(tp)
    if tp is type(None):
        return "null"
    if _is_model(tp):
        return "object"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return " \\| ".join(f"`{m.value}`" for m in tp)
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f"`{str(a).lower() if isinstance(a, bool) else a}`" for a in get_args(tp))
    if origin is list:
        return f"list of {_type_text(get_args(tp)[0])}"
    if origin is dict:
        return f"map of {_type_text(get_args(tp)[1])}"
    if origin is Union:
        return " or ".join(_type_text(a) for a in get_args(tp) if a is not type(None))
    return {str: "string", int: "integer", bool: "boolean", float: "number"}.get(tp, getattr(tp, "__name__", str(tp)))


def _default_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, (list, dict)):
        if not value:
            return "`[]`" if isinstance(value, list) else "`{}`"
        dumped = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value] \
            if isinstance(value, list) else value
        return f"`{json.dumps(dumped)}`"
    return f"`{value}`"


def reference_rows() -> list[dict[str, str]]:
    """Every config key with its type, unit, default, targets and description, generated from the
    models (``berth/docs.py`` writes them into the README). Map keys are NAME (or DB, VAR, ...);
    list items ``[]``. A key's default inside a component's own default object (e.g. each
    component's ``resources``) is that component's default."""
    rows: list[dict[str, str]] = []

    def visit(model: type[BaseModel], prefix: str, defaults: Optional[BaseModel], targets: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}{name}" if prefix.endswith(":") else f"{prefix}.{name}"
            extra = _extra(info)
            where = tuple(extra.get("targets", targets))
            if defaults is not None:
                default: Any = getattr(defaults, name)
            elif info.is_required():
                default = ...
            else:
                default = info.get_default(call_default_factory=True)
            rows.append({
                "key": key,
                "type": _type_text(info.annotation),
                "unit": extra.get("unit", ""),
                "default": "required" if default is ... else _default_text(default),
                "targets": "both" if set(where) == set(BOTH) else where[0],
                "description": info.description or "",
            })
            tp = _strip(info.annotation)
            suffix, item = "", tp
            if get_origin(tp) is dict:
                suffix, item = f".{_MAP_KEY.get(name, 'NAME')}", _strip(get_args(tp)[1])
            elif get_origin(tp) is list:
                suffix, item = "[]", _strip(get_args(tp)[0])
            branches = get_args(item) if get_origin(item) is Union else (item,)
            for sub in [_strip(b) for b in branches if _is_model(_strip(b))]:
                visit(sub, key + suffix, default if isinstance(default, sub) else None, where)

    visit(StackSpec, f"{NAMESPACE}:", None, BOTH)
    return rows


def _field_homes() -> dict[str, list[str]]:
    """Field name → the keys where it is a setting (for "`egress` belongs to berth:services.NAME")."""
    homes: dict[str, list[str]] = {}
    for row in reference_rows():
        leaf = re.split(r"[.:]", row["key"].replace("[]", ""))[-1]
        parent = row["key"][: -len(leaf) - 1]
        homes.setdefault(leaf, []).append(parent)
    return homes
