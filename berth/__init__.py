"""Berth: a small team's application stack on a Docker host or a Kubernetes cluster, from one typed
stack definition in Pulumi stack config.

A project's whole program is::

    import berth
    berth.main()

The components can also be used from a hand-written Pulumi program, next to raw provider resources:
``berth.Platform`` (the Docker host or Kubernetes namespace), then ``berth.Database``,
``berth.Cache``, ``berth.AppService``, ``berth.Proxy``, ... each with its spec model
(``berth.DatabaseSpec``, ``berth.ServiceSpec``, ...: the same typed, documented models as the
``berth:`` config keys). See berth/api.py and the README ("Use Berth from your own program").
Names are imported on first use, so ``import berth`` (and ``berth --version``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.3.0"

#: Public name -> module that defines it (imported lazily, PEP 562).
_EXPORTS = {
    "main": "berth.components.program",
    "build": "berth.components.stack",
    "ConfigError": "berth.components.spec",
    "StackSpec": "berth.components.spec",
    "load_spec": "berth.components.spec",
    "parse_spec": "berth.components.spec",
    # Components for a hand-written program (berth/api.py): name, spec model, platform.
    "Platform": "berth.api",
    "Database": "berth.api",
    "Cache": "berth.api",
    "Broker": "berth.api",
    "GraphDatabase": "berth.api",
    "AppService": "berth.api",
    "Proxy": "berth.api",
    "PROXY": "berth.api",
    "Monitoring": "berth.api",
    # Their spec models: the same as the berth: config keys (berth:databases.NAME is a DatabaseSpec).
    "Target": "berth.components.spec",
    "Environment": "berth.components.spec",
    "DatabaseSpec": "berth.components.spec",
    "DatabaseEngine": "berth.components.spec",
    "CacheSpec": "berth.components.spec",
    "BrokerSpec": "berth.components.spec",
    "GraphDatabaseSpec": "berth.components.spec",
    "ServiceSpec": "berth.components.spec",
    "Resources": "berth.components.spec",
    "Health": "berth.components.spec",
    "Autoscale": "berth.components.spec",
    "Metrics": "berth.components.spec",
    "GeneratedSecret": "berth.components.spec",
    "ProxySpec": "berth.components.spec",
    "Route": "berth.components.spec",
    "RateLimit": "berth.components.spec",
    "TlsSpec": "berth.components.spec",
    "TlsMode": "berth.components.spec",
    "BackupSpec": "berth.components.spec",
    "BackupTier": "berth.components.spec",
    "S3Spec": "berth.components.spec",
    "MonitoringSpec": "berth.components.spec",
    # Low-level (they take ``platform.target``); stack config drives them in berth.build, and
    # ``berth.Database(..., backup=BackupSpec(...))`` makes the database's BackupJob.
    "BackupJob": "berth.components.backup",
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
