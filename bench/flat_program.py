"""The *flat* program: the resources Berth declares for a stack, registered directly with the
provider SDK classes (``pulumi_docker.Container``, ``pulumi_kubernetes.apps.v1.Deployment``, ...)
with no components, no spec, no renderers: what a team would write by hand, resource by resource.

It is built from a recording of Berth's own program (``berth.record``), so it declares exactly the
same custom resources with the same inputs and options (checked by ``check_same``). Values that flow
from one resource into another stay Outputs, as a hand-written program must have them: generated
passwords/keys (the recording's ``<<berth:password:NAME>>`` placeholders) become
``Output.concat`` of the generating resource's output, and a container's ``image`` is its
RemoteImage's ``image_id``. Everything else is a plain value, and the program makes no Output of
its own. The per-resource cost of the Pulumi SDK is all that is left: the floor Berth is compared to.
It runs with the interpreter's default GC settings (whatever Berth's entry point changes is Berth's).
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

from berth.record import PLACEHOLDER_RE, Recording

#: Placeholder kind -> the generating resource's output attribute.
_OUTPUT_OF = {
    "password": "result",
    "bcrypt": "bcrypt_hash",
    "random": "result",
    "tls-key": "private_key_pem",
    "tls-public": "public_key_pem",
    "tls-cert": "cert_pem",
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def resource_class(type_: str) -> type:
    if type_.startswith("pulumi:providers:"):
        return importlib.import_module(f"pulumi_{type_.split(':')[2]}").Provider
    pkg, mod, name = type_.split(":")
    if pkg == "kubernetes":
        group, version = mod.rsplit("/", 1)
        module = importlib.import_module(f"pulumi_kubernetes.{group.split('.')[0]}.{version}")
        return getattr(module, name)
    return getattr(importlib.import_module(f"pulumi_{pkg}"), name)


def resource_specs(rec: Recording) -> list[dict[str, Any]]:
    """The custom resources of a recording as plain data (JSON-able), dependencies first."""
    custom = [r for r in rec.resources if r.custom]
    by_urn = {r.urn: r for r in custom}
    generator = {r.name: r.urn for r in custom if r.type.startswith(("random:", "tls:"))}
    image_of = {r.inputs.get("name"): r.urn for r in custom if r.type == "docker:index/remoteImage:RemoteImage"}
    provider_urn = {r.urn for r in custom if r.type.startswith("pulumi:providers:")}

    def needs(r) -> list[str]:
        out = [d for d in r.depends_on if d in by_urn]
        out += [generator[m.group(2)] for m in PLACEHOLDER_RE.finditer(repr(r.inputs)) if m.group(2) in generator]
        if r.type == "docker:index/container:Container" and r.inputs.get("image") in image_of:
            out.append(image_of[r.inputs["image"]])
        if r.provider:
            out += [u for u in provider_urn if r.provider.startswith(u + "::")]
        return out

    ordered: list[str] = []
    seen: set[str] = set()

    def visit(urn: str) -> None:
        if urn in seen:
            return
        seen.add(urn)
        for d in needs(by_urn[urn]):
            visit(d)
        ordered.append(urn)

    for r in custom:
        visit(r.urn)
    specs = []
    for urn in ordered:
        r = by_urn[urn]
        specs.append({
            "urn": r.urn, "type": r.type, "name": r.name, "inputs": r.inputs,
            "provider": next((u for u in provider_urn if r.provider.startswith(u + "::")), None),
            "protect": r.protect, "retain_on_delete": r.retain_on_delete,
            "delete_before_replace": r.delete_before_replace, "depends_on": [d for d in r.depends_on if d in by_urn],
            "ignore_changes": r.ignore_changes, "replace_on_changes": r.replace_on_changes,
            "image_from": image_of.get(r.inputs.get("image")) if r.type == "docker:index/container:Container" else None,
        })
    return specs


def flat_program(specs: list[dict[str, Any]]) -> Callable[[], None]:
    """A Pulumi program (a function, as ``berth.record.record`` takes it) declaring ``specs``."""

    def program() -> None:
        import pulumi

        created: dict[str, Any] = {}
        by_name: dict[str, Any] = {}

        def value(v: Any) -> Any:
            if isinstance(v, str):
                if "<<berth:" not in v:
                    return v
                parts: list[Any] = []
                pos = 0
                for m in PLACEHOLDER_RE.finditer(v):
                    res = by_name.get(m.group(2))
                    if res is None or m.group(1) not in _OUTPUT_OF:
                        continue  # config secrets stay as recorded
                    parts += [v[pos:m.start()], getattr(res, _OUTPUT_OF[m.group(1)])]
                    pos = m.end()
                if not parts:
                    return v
                parts.append(v[pos:])
                return pulumi.Output.concat(*[p for p in parts if p != ""])
            if isinstance(v, dict):
                return {k: value(x) for k, x in v.items()}
            if isinstance(v, list):
                return [value(x) for x in v]
            return v

        for s in specs:
            cls = resource_class(s["type"])
            kwargs = {snake(k): value(v) for k, v in s["inputs"].items()
                      if not (s["type"].startswith("kubernetes:") and k in ("apiVersion", "kind"))}
            if s["image_from"]:
                kwargs["image"] = created[s["image_from"]].image_id
            opts = pulumi.ResourceOptions(
                provider=created[s["provider"]] if s["provider"] else None,
                depends_on=[created[d] for d in s["depends_on"]] or None,
                protect=s["protect"] or None,
                retain_on_delete=s["retain_on_delete"] or None,
                delete_before_replace=s["delete_before_replace"] or None,
                ignore_changes=s["ignore_changes"] or None,
                replace_on_changes=s["replace_on_changes"] or None,
            )
            res = cls(s["name"], opts=opts, **kwargs)
            created[s["urn"]] = res
            by_name[s["name"]] = res

    return program


def check_same(berth: Recording, flat: Recording) -> list[str]:
    """Differences between the custom resources of two recordings (type, name, inputs, options)."""

    def key(rec: Recording) -> dict[tuple[str, str], Any]:
        urn_name = {r.urn: (r.type, r.name) for r in rec.resources}
        return {
            (r.type, r.name): (r.inputs, r.protect, r.retain_on_delete, r.delete_before_replace,
                               sorted(urn_name.get(d, d) for d in r.depends_on), sorted(r.ignore_changes),
                               sorted(r.replace_on_changes))
            for r in rec.resources if r.custom
        }

    a, b = key(berth), key(flat)
    problems = [f"only in Berth: {k}" for k in a.keys() - b.keys()] + [f"only in flat: {k}" for k in b.keys() - a.keys()]
    for k in sorted(a.keys() & b.keys()):
        if a[k] != b[k]:
            problems.append(f"differs: {k}: berth={a[k]!r:.400} flat={b[k]!r:.400}")
    return problems
