"""What every model of the spec is made of: the ``berth:`` namespace, the targets a key applies to,
``ConfigError``, the documented ``_field`` and the strict ``_Model`` base, and the text forms YAML
gives env values and arguments in.

The description, unit and targets given to ``_field`` are both the reference's source (``reference.py``)
and what ``checks.py`` reads to refuse a key set for the other target.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import pulumi
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

NAMESPACE = "berth"

#: Targets: a field without ``targets`` applies to both.
BOTH = ("docker", "kubernetes")
DOCKER_ONLY = ("docker",)
KUBERNETES_ONLY = ("kubernetes",)


class ConfigError(pulumi.RunError):
    """A user mistake in stack config. Each problem names its key, its value and the fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        text = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{text}")


def _field(default: Any = ..., description: str = "", *, unit: Optional[str] = None,
           targets: tuple[str, ...] = BOTH, wrong_target: str = "error", why: Optional[str] = None,
           **kw: Any) -> Any:
    """A documented field: its description, unit and targets feed the generated reference.
    ``wrong_target``: ``error`` refuses the key when set for another target, ``warn`` only warns
    (it is ignored there); ``why`` replaces the generic reason in that message."""
    extra: dict[str, Any] = {}
    if unit:
        extra["unit"] = unit
    if targets != BOTH:
        extra["targets"] = list(targets)
        extra["wrong_target"] = wrong_target
    if why:
        extra["why"] = why
    return Field(default, description=description, json_schema_extra=extra or None, **kw)


class Target(str, Enum):
    """Where the stack is deployed."""

    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class Environment(str, Enum):
    """``prod`` protects stateful resources (protect + retain on delete); ``dev`` does not."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


def _extra(info: Any) -> dict[str, Any]:
    """What ``_field`` put in a field's ``json_schema_extra`` (unit, targets, why)."""
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _scalar_text(v: object) -> object:
    """Env values, settings and arguments as YAML writes them: ``true`` → "true", ``8000`` → "8000"."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return v


def _text_map(v: object) -> object:
    return {k: _scalar_text(x) for k, x in v.items()} if isinstance(v, dict) else v


def _text_list(v: object) -> object:
    return [_scalar_text(x) for x in v] if isinstance(v, list) else v


TextMap = Annotated[dict[str, str], BeforeValidator(_text_map)]
Args = Annotated[list[str], BeforeValidator(_text_list)]


class _Model(BaseModel):
    # Unknown keys are errors: a typo must never be silently ignored. Numbers where a string is
    # expected are taken as written (`version: 15` → "15", `version: 7.0` → "7.0").
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _keep_component_defaults(cls, data: Any) -> Any:
        """An object given in part keeps its component's own defaults for the keys not given
        (``resources: {cpu: 1}`` on a database keeps the database's memory limit, not a generic one),
        so the defaults in the reference are the ones that apply."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, info in cls.model_fields.items():
            default, given = info.default, data.get(name)
            if isinstance(default, BaseModel) and default.model_fields_set and isinstance(given, dict):
                out[name] = {**default.model_dump(mode="json", exclude_unset=True), **given}
        return out
