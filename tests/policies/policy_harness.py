"""Run the Berth policy pack in-process over hand-made or recorded resources.

Recorded resources (``berth.record.record(stack)``) are converted into the SDK's own argument
objects, the way ``_PolicyAnalyzerServicer`` builds them from a gRPC request: properties go through
``deserialize_properties`` and ``unknown_checking_proxy``; stack resources become ``PolicyResource``s
linked to their parent and dependencies. ``preview=True`` turns every generated-secret placeholder
into the engine's unknown-string sentinel, which is what a policy sees during ``pulumi preview``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from rules import all_policies

PLACEHOLDER = re.compile(r"<<berth:[a-z-]+:[^<>]+>>")


@dataclass
class Violation:
    policy: str
    level: EnforcementLevel
    message: str
    urn: Optional[str]

    def __str__(self) -> str:
        return f"[{self.level.value}] {self.policy} ({self.urn}): {self.message}"


def _opts(protect: bool = False, parent: Optional[str] = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def _props(inputs: Mapping[str, Any], preview: bool) -> Any:
    data = copy.deepcopy(dict(inputs))
    if preview:
        data = json.loads(PLACEHOLDER.sub(UNKNOWN_STRING_VALUE, json.dumps(data)))
        data = _collapse_unknown_strings(data)
    return unknown_checking_proxy(deserialize_properties(data))


def _collapse_unknown_strings(value: Any) -> Any:
    """A string built from an unknown output is itself wholly unknown (Output.concat)."""
    if isinstance(value, str) and UNKNOWN_STRING_VALUE in value:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: _collapse_unknown_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_collapse_unknown_strings(v) for v in value]
    return value


def resource_args(
    type_: str,
    props: Mapping[str, Any],
    *,
    urn: Optional[str] = None,
    name: str = "res",
    protect: bool = False,
    parent: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    preview: bool = False,
) -> ResourceValidationArgs:
    urn = urn or f"urn:pulumi:dev::berth::{type_}::{name}"
    return ResourceValidationArgs(type_, _props(props, preview), urn, name, _opts(protect, parent), None, config or {})


def stack_resources(recorded: Iterable[Any], preview: bool = False) -> list[PolicyResource]:
    """``berth.record.Resource``-like objects (or their to_json dicts) → linked ``PolicyResource``s."""
    items = [r.to_json() if hasattr(r, "to_json") else r for r in recorded]
    out: dict[str, PolicyResource] = {}
    for r in items:
        out[r["urn"]] = PolicyResource(
            r["type"], _props(r.get("inputs", {}), preview), r["urn"], r["name"],
            _opts(bool(r.get("protect")), r.get("parent") or None), None, None, [], {},
        )
    for r in items:
        res = out[r["urn"]]
        if r.get("parent") in out:
            res.parent = out[r["parent"]]
        res.dependencies = [out[d] for d in r.get("dependsOn", []) if d in out]
    return list(out.values())


def _level(policy, config: Mapping[str, Any]) -> EnforcementLevel:
    level = (config or {}).get("enforcementLevel")
    return EnforcementLevel(level) if level else (policy.enforcement_level or EnforcementLevel.ADVISORY)


def run_policy(policy, args) -> list[str]:
    """Messages one policy reports for one args object (full message = description + detail)."""
    messages: list[str] = []
    policy.validate(args, lambda message, urn=None: messages.append(message))
    return messages


def run_pack(
    recorded: Iterable[Any],
    pack_config: Optional[Mapping[str, Mapping[str, Any]]] = None,
    preview: bool = False,
) -> list[Violation]:
    """Every policy over every resource (Analyze) and over the stack (AnalyzeStack)."""
    pack_config = pack_config or {}
    items = [r.to_json() if hasattr(r, "to_json") else r for r in recorded]
    violations: list[Violation] = []
    # Props are read-only to the rules: convert each resource once, share across policies.
    props = {r["urn"]: _props(r.get("inputs", {}), preview) for r in items}
    stack = stack_resources(items, preview)
    for policy in all_policies():
        cfg = dict(pack_config.get(policy.name, {}))
        level = _level(policy, cfg)
        cfg.pop("enforcementLevel", None)
        if level == EnforcementLevel.DISABLED:
            continue

        def report(message, urn=None, _p=policy, _l=level, _u=None):
            violations.append(Violation(_p.name, _l, message, urn or _u))

        if isinstance(policy, ResourceValidationPolicy):
            for r in items:
                if not r.get("custom", True):
                    continue  # the engine analyzes custom resources one by one, components only in the stack
                args = ResourceValidationArgs(r["type"], props[r["urn"]], r["urn"], r["name"],
                                              _opts(bool(r.get("protect")), r.get("parent") or None), None, cfg)
                policy.validate(args, lambda m, u=None, _r=r, _p=policy, _l=level: violations.append(
                    Violation(_p.name, _l, m, _r["urn"])))
        elif isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(stack, cfg), report)
    return violations


def mandatory(violations: Iterable[Violation]) -> list[Violation]:
    return [v for v in violations if v.level in (EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE)]
