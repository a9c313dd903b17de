"""kube-score v1.20.0 over the Kubernetes objects of every Kubernetes stack file (this repository's and
its examples'), as ``berth render`` writes them: each finding is fixed or accepted, with its reason,
in tests/checkers/accepted-findings.yaml; a new one fails here, and so does an accepted one that no
longer occurs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from berth.record import ROOT
from berth.render import render

from . import kube_score
from .findings import accepted, judge, report


def kubernetes_stacks() -> list[tuple[Path, str]]:
    out = []
    for path in sorted([*ROOT.glob("Pulumi.*.yaml"), *ROOT.glob("examples/*/Pulumi.*.yaml")]):
        stack = path.name[len("Pulumi."):-len(".yaml")]
        if stack.endswith(".policy") or stack.startswith("policy"):
            continue
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        if config.get("berth:target") == "kubernetes":
            out.append((path.parent, stack))
    return out


def test_every_kubernetes_stack_file_is_scored():
    names = {f"{p.relative_to(ROOT)}/{s}" for p, s in kubernetes_stacks()}
    assert {"./prod", "examples/easy-flow/prod", "examples/microservices/prod", "examples/wishlins/k8s"} <= names


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    found = []
    for project, stack in kubernetes_stacks():
        out = tmp_path_factory.mktemp("render") / "out"
        render(stack, out, project_dir=project)
        manifests = sorted((out / "kubernetes").glob("*.yaml"))
        assert manifests, f"{project}/{stack}: nothing rendered"
        found += kube_score.score(f"{project.relative_to(ROOT)}/{stack}", manifests)
    return found


def test_kube_score_finds_nothing_new(findings):
    new, stale = judge(findings, accepted("kube-score"))
    assert not new and not stale, report(new, stale)


def test_the_findings_issue_21_reported_are_gone(findings):
    """No identical liveness and readiness probes, no multi-replica Deployment without anti-affinity, no
    pod without an ephemeral-storage limit: what kube-score reported on Berth before."""
    checks = {f.check for f in findings}
    assert not checks & {"pod-probes-identical", "pod-probes", "deployment-has-host-podantiaffinity",
                         "statefulset-has-host-podantiaffinity", "container-ephemeral-storage-request-and-limit"}


def test_a_finding_not_accepted_fails(tmp_path):
    """The judge is not vacuous: a privileged container in a rendered object is a new finding."""
    from .findings import Finding

    stray = Finding("kube-score", "container-security-context-privileged", "x/y", "Deployment", "api", "app")
    new, _ = judge([stray], accepted("kube-score"))
    assert new == [stray]
