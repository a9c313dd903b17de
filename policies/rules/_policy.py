"""Small builders so each rule module holds only its check: a pure function of plain values.

``resource_rule`` and ``stack_rule`` wrap a check in the SDK's ``ResourceValidationPolicy`` /
``StackValidationPolicy``. The wrapper converts the analyzer's proxied props to plain data once
(unknown preview values become ``UNKNOWN``), filters by resource type, and reports each problem the
check yields with the rule's remediation appended, so every violation message says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Tuple, Union

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._common import plain

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY


@dataclass
class Res:
    """One resource as a rule sees it: plain props, URN, parent chain and the visible options."""

    type: str
    name: str
    urn: str
    props: dict
    protect: bool = False
    parent: Optional[str] = None
    dependencies: list = field(default_factory=list)
    property_dependencies: dict = field(default_factory=dict)


def _from_resource_args(args: ResourceValidationArgs) -> Res:
    return Res(
        type=args.resource_type,
        name=args.name,
        urn=args.urn,
        props=plain(args.props) or {},
        protect=bool(getattr(args.opts, "protect", False)),
        parent=getattr(args.opts, "parent", None),
    )


def _from_policy_resource(r: Any) -> Res:
    parent = getattr(r, "parent", None)
    return Res(
        type=r.resource_type,
        name=r.name,
        urn=r.urn,
        props=plain(r.props) or {},
        protect=bool(getattr(r.opts, "protect", False)),
        parent=getattr(parent, "urn", None) or getattr(r.opts, "parent", None),
        dependencies=[d.urn for d in (getattr(r, "dependencies", None) or [])],
        property_dependencies={
            k: [d.urn for d in v] for k, v in (getattr(r, "property_dependencies", None) or {}).items()
        },
    )


ResourceCheck = Callable[[Res, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[Sequence[Res], Mapping[str, Any]], Iterable[Union[str, Tuple[str, Optional[str]]]]]


def _message(problem: str, remediation: str) -> str:
    return f"{problem}. Fix: {remediation}"


def resource_rule(
    *,
    name: str,
    description: str,
    remediation: str,
    check: ResourceCheck,
    applies_to: Callable[[str], bool],
    enforcement: EnforcementLevel = MANDATORY,
    severity: Severity = Severity.HIGH,
    config: Optional[dict] = None,
    tags: Optional[list] = None,
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not applies_to(args.resource_type):
            return
        res = _from_resource_args(args)
        for problem in check(res, args.get_config() or {}):
            report_violation(_message(problem, remediation), None)

    return ResourceValidationPolicy(**_policy_fields(name, description, remediation, validate, enforcement, severity,
                                                     config, tags))


def _policy_fields(name, description, remediation, validate, enforcement, severity, config, tags) -> dict:
    """What resource and stack rules share: the SDK policy's fields."""
    return dict(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement,
        config_schema=PolicyConfigSchema(properties=config) if config else None,
        severity=severity,
        remediation_steps=remediation,
        tags=tags,
    )


def stack_rule(
    *,
    name: str,
    description: str,
    remediation: str,
    check: StackCheck,
    enforcement: EnforcementLevel = MANDATORY,
    severity: Severity = Severity.HIGH,
    config: Optional[dict] = None,
    tags: Optional[list] = None,
) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [_from_policy_resource(r) for r in args.resources]
        for item in check(resources, args.get_config() or {}):
            problem, urn = item if isinstance(item, tuple) else (item, None)
            report_violation(_message(problem, remediation), urn)

    return StackValidationPolicy(**_policy_fields(name, description, remediation, validate, enforcement, severity,
                                                  config, tags))


def is_type(*types: str) -> Callable[[str], bool]:
    wanted = set(types)
    return lambda t: t in wanted
