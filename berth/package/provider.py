"""Berth's component provider: the process the Pulumi engine starts for the ``berth`` package.

It is Pulumi's Python component provider (``pulumi.provider.experimental``: the schema inferred from
the components' typed ``args`` and ``Output`` attributes, ``Construct`` mapping the properties to
Python names), with three things of Berth's own:

* the schema is completed (``package_schema``): descriptions, units and defaults of the mirrored
  spec fields, the resource references the inference cannot name, ``Args`` dropped from type names;
* a component's bad properties fail as ``InputPropertiesError`` (the engine prints each property
  with its value and the fix) instead of a Python traceback;
* a reference to a Berth component in a property resolves to the component this process
  constructed (``LiveComponents``), which holds what later components need (the target, the names
  of the platform's workloads and stores).

``python -m berth.package`` runs it (the plugin folder's ``pulumi-resource-berth`` does that).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import pulumi
from pulumi.errors import InputPropertiesError
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.util import camel_case
from pulumi.provider.provider import ConstructResult
from pulumi.provider.server import ComponentInitError
from pulumi.runtime.rpc import ResourceModule

from berth import __version__
from berth.components.spec.reference import _default_text, _extra

from . import args as _args
from .components import COMPONENTS, LIVE
from .convert import PropertyError, words

NAME = "berth"


def _described(info: Any) -> str:
    """A spec field's description with its unit and default, as the configuration reference gives them."""
    text = (info.description or "").strip()
    unit = _extra(info).get("unit")
    if unit:
        text += f" Unit: {unit}."
    if not info.is_required():
        default = info.get_default(call_default_factory=True)
        shown = _default_text(default)
        if shown and shown not in ("none", "`[]`", "`{}`") and "default" not in text.lower():
            text += f" Default: {shown}."
    return text


def _descriptions() -> dict[str, dict[str, str]]:
    """Schema type name → camelCase property → description, for the fields that mirror a spec model."""
    out: dict[str, dict[str, str]] = {}
    for typed, model in _args.MIRRORS.items():
        out[typed.__name__] = {camel_case(n): _described(info) for n, info in model.model_fields.items()
                               if n in typed.__annotations__}
    return out


#: The configuration reference's words for what a YAML program calls otherwise.
_WORDING = {
    "the config key": "the component's name",
    "secret (from berth:secrets)": "secret (tlsCertificate and tlsPrivateKey)",
    "Mode secret: name in berth:secrets holding": "Mode secret:",
}


def _tidy(value: Any, names: set[str], key: str = "") -> Any:
    """No nulls; one-line descriptions in the schema's property names; an item's or a map value's
    description only on the property itself."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is None or (k == "description" and key in ("items", "additionalProperties")):
                continue
            out[k] = _tidy(v, names, k)
        return out
    if isinstance(value, list):
        return [_tidy(v, names, key) for v in value]
    if key == "description" and isinstance(value, str):
        text = " ".join(value.split())
        for old, new in _WORDING.items():
            text = text.replace(old, new)
        return words(text, names)
    return value


def package_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The inferred schema, completed (see the module docstring). Pure: the same input gives the
    same schema; ``schema.json`` is this with sorted keys."""
    described = _descriptions()
    names = {f for t in _args.MIRRORS for f in t.__annotations__} | set(_args.PlatformArgs.__annotations__)
    names |= {f for m in _args.MIRRORS.values() for f in m.model_fields}
    refs = {(t.__name__, camel_case(f)): kind for (t, f), kind in _args.REFERENCES.items()}

    def complete(owner: str, props: dict[str, Any]) -> None:
        for prop, spec in props.items():
            if not spec.get("description") and prop in described.get(owner, {}):
                spec["description"] = described[owner][prop]
            if (owner, prop) in refs:
                keep = {k: v for k, v in spec.items() if k == "description"}
                spec.clear()
                spec.update(keep, **{"$ref": f"#/resources/{NAME}:index:{refs[(owner, prop)]}"})

    for token, resource in schema.get("resources", {}).items():
        complete(f"{token.rsplit(':', 1)[-1]}Args", resource.get("inputProperties", {}))
    for token, typ in schema.get("types", {}).items():
        complete(token.rsplit(":", 1)[-1], typ.get("properties", {}))

    # ``berth:index:ResourcesArgs`` → ``berth:index:Resources``: each language's SDK adds its own
    # suffix to an input type (Python ``ResourcesArgs``, not ``ResourcesArgsArgs``).
    text = json.dumps(schema)
    for token in list(schema.get("types", {})):
        if token.endswith("Args"):
            text = text.replace(f'"{token}"', f'"{token[:-4]}"').replace(f'/{token}"', f'/{token[:-4]}"')
    out = _tidy(json.loads(text), names)
    out["description"] = ("Berth's components (a platform on a Docker host or a Kubernetes namespace, databases, "
                          "caches, brokers, graph databases, application services and the HTTPS proxy) for every "
                          "Pulumi language.")
    out["keywords"] = ["category/infrastructure", "kind/component", "docker", "kubernetes"]
    return out


class LiveComponents(ResourceModule):
    """Resolves a reference to a Berth component (``platform: ${platform}``) to the component this
    process constructed. Every component of a deployment is constructed by one provider process, in
    the order their references give; a reference to one it did not construct (another provider
    instance) fails with a message saying so."""

    def version(self) -> None:
        return None

    def construct(self, name: str, typ: str, urn: str) -> pulumi.Resource:
        found = LIVE.get((typ, name))
        if found is None:
            raise ValueError(f"{typ} {name!r} ({urn}) was not constructed by this berth provider: a component refers "
                             "only to Berth components created by the same provider (no explicit provider of its own)")
        return found


class BerthProvider(ComponentProvider):
    """Pulumi's component provider for Berth's components, with Berth's schema and errors."""

    def __init__(self) -> None:
        super().__init__(COMPONENTS, NAME, None, __version__)
        self.schema = json.dumps(package_schema(json.loads(self.schema)), sort_keys=True)

    def construct(self, name: str, resource_type: str, inputs: Any,
                  options: Optional[pulumi.ResourceOptions] = None) -> ConstructResult:
        try:
            return super().construct(name, resource_type, inputs, options)
        except ComponentInitError as exc:
            if isinstance(exc.inner, PropertyError):
                e = exc.inner
                # A problem of the whole component (its name, its place) goes in the message; each
                # property's goes in the details, which the engine prints with the property's value.
                whole = [reason for path, _, reason in e.property_problems if not path]
                raise InputPropertiesError(
                    f"invalid properties of {e.kind} {e.name!r}" + "".join(f"; {w}" for w in whole),
                    [{"property_path": path, "reason": reason} for path, _, reason in e.property_problems if path],
                ) from None
            raise


def schema_text() -> str:
    """The package schema as ``schema.json`` holds it."""
    return json.dumps(json.loads(BerthProvider().schema), indent=2, sort_keys=True) + "\n"


def main(argv: Optional[list[str]] = None) -> None:
    """Serve the provider (the engine's address is the first argument), as
    ``component_provider_host`` does, with Berth's provider."""
    from pulumi.provider import main as serve
    from pulumi.runtime.rpc import register_resource_module

    register_resource_module(NAME, "index", LiveComponents())
    serve(BerthProvider(), list(sys.argv[1:] if argv is None else argv))
