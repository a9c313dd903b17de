"""Berth's components for every Pulumi language: a multi-language component package.

The components of ``berth.api`` (Platform, Database, Cache, Broker, GraphDatabase, AppService,
Proxy) served by a component provider, so a YAML program (``packages: {berth: ...}`` in its
``Pulumi.yaml``), or a TypeScript, Go or C# program with an SDK generated from the schema, declares
them as resources ``berth:Database`` and so on. The same checks, defaults and resources as from
Python; the properties are the camelCase names of the ``berth:`` keys.

``args``
    the properties (typed dicts: the schema's source)
``components``
    the served components: ``berth.api``'s, taking those properties
``convert``
    properties → spec models, problems named by their property (pure)
``provider``
    the provider process and the completed schema
``yaml_program``
    a YAML program's Berth resources under ``berth render`` (no engine)
``plugin/``
    the folder a project points ``packages:`` at: ``PulumiPlugin.yaml``, the executable
    ``pulumi-resource-berth`` the engine starts, and ``schema.json`` (generated, checked in:
    ``python -m berth.package.schema --write``)
"""

from __future__ import annotations

from pathlib import Path

#: The folder a project's ``packages:`` entry (or ``pulumi package add``) names.
PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
