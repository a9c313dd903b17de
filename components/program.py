"""The Pulumi program: read and validate config, build the stack, export its outputs."""

from __future__ import annotations

import pulumi

from .spec import load_spec
from .stack import build


def stack_prefix(name: str | None) -> str:
    return name or f"{pulumi.get_project()}-{pulumi.get_stack()}"


def main() -> None:
    spec = load_spec()  # raises ConfigError (a clean message, no traceback) before any resource exists
    outputs = build(spec, stack_prefix(spec.name))
    for key, value in outputs.items():
        pulumi.export(key, value)
