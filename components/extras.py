"""Proxy, BackupJob and Monitoring wiring (filled in by their components)."""

from __future__ import annotations

from typing import Any

from .spec import StackSpec


def extras_allow(spec: StackSpec) -> dict[str, set[str]]:
    return {}


def planned_names(spec: StackSpec) -> list[str]:
    return []


def build_extras(spec: StackSpec, prefix: str, target, dbs, caches, services) -> dict[str, Any]:
    return {}
