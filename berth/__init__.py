"""Berth: a small team's application stack on a Docker host or a Kubernetes cluster, from one typed
stack definition in Pulumi stack config.

A project's whole program is::

    import berth
    berth.main()

The components (``berth.Database``, ``berth.AppService``, ...) and the spec types can also be used
from a hand-written Pulumi program. Names are imported on first use, so ``import berth`` (and
``berth --version``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.3.0"

#: Public name -> module that defines it (imported lazily, PEP 562).
_EXPORTS = {
    "main": "berth.components.program",
    "ConfigError": "berth.components.spec",
    "StackSpec": "berth.components.spec",
    "Target": "berth.components.spec",
    "load_spec": "berth.components.spec",
    "parse_spec": "berth.components.spec",
    "Database": "berth.components.database",
    "Cache": "berth.components.cache",
    "AppService": "berth.components.app_service",
    "Proxy": "berth.components.proxy",
    "BackupJob": "berth.components.backup",
    "Monitoring": "berth.components.monitoring",
    "Platform": "berth.components.stack",
    "build": "berth.components.stack",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'berth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
