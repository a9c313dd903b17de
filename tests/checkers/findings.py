"""The findings of the independent checkers (kube-score, docker-bench-security) and the one file that
lists those Berth accepts (``accepted-findings.yaml``), each with its reason.

A finding is (checker, check, stack, kind, name, component, detail); an accepted entry names the
checker and check and, to narrow it, the kinds, names (globs) and components it covers. A finding
that no entry covers is new: its test fails. An entry that covers no finding of any stack is stale:
that fails too, so the file says what is true today.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

HERE = Path(__file__).resolve().parent
ACCEPTED = HERE / "accepted-findings.yaml"


@dataclass(frozen=True)
class Finding:
    checker: str
    check: str
    stack: str  # project/stack, e.g. examples/wishlins/k8s
    kind: str  # Kubernetes kind, or "Container"
    name: str  # object or container name
    component: str = ""  # app.kubernetes.io/component, or the berth.role label
    detail: str = ""

    def __str__(self) -> str:
        comp = f" ({self.component})" if self.component else ""
        return f"{self.checker} {self.check}: {self.stack} {self.kind}/{self.name}{comp}: {self.detail}"


@dataclass
class Entry:
    checker: str
    check: str
    reason: str
    kinds: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)

    def covers(self, f: Finding) -> bool:
        return (f.checker == self.checker and f.check == self.check
                and (not self.kinds or f.kind in self.kinds)
                and (not self.names or any(fnmatch.fnmatchcase(f.name, n) for n in self.names))
                and (not self.components or f.component in self.components))


def accepted(checker: Optional[str] = None, path: Path = ACCEPTED) -> list[Entry]:
    doc = yaml.safe_load(path.read_text()) or {}
    out = []
    for name, entries in doc.items():
        for e in entries or []:
            assert set(e) <= {"check", "reason", "kinds", "names", "components"}, e
            assert e.get("reason", "").strip(), f"{name} {e.get('check')}: every accepted finding says why"
            out.append(Entry(name, e["check"], e["reason"], e.get("kinds", []), e.get("names", []),
                             e.get("components", [])))
    return [e for e in out if checker is None or e.checker == checker]


def judge(findings: Iterable[Finding], entries: list[Entry]) -> tuple[list[Finding], list[Entry]]:
    """(new findings no entry covers, entries that cover no finding)."""
    findings = list(findings)
    new = [f for f in findings if not any(e.covers(f) for e in entries)]
    stale = [e for e in entries if not any(e.covers(f) for f in findings)]
    return new, stale


def report(new: list[Finding], stale: list[Entry]) -> str:
    lines = []
    if new:
        lines.append(f"{len(new)} finding(s) not in {ACCEPTED.relative_to(HERE.parents[1])} (fix them, or accept "
                     "each there with its reason):")
        lines += [f"  {f}" for f in sorted(new, key=str)]
    if stale:
        lines.append("accepted findings that no longer occur (remove them):")
        lines += [f"  {e.checker} {e.check} {e.kinds or ''} {e.names or ''} {e.components or ''}" for e in stale]
    return "\n".join(lines)


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
