"""`pulumi preview --json --event-log --policy-pack` of every stack file, by the real CLI, against the
real targets — what the PR-preview workflow runs — and the PR comment rendered from those outputs.

Each stack file (the project's ``Pulumi.dev.yaml``/``Pulumi.prod.yaml`` and every
``examples/*/Pulumi.*.yaml``) is previewed in a copy of its project with one CI override: a Docker
stack that deploys to an ``ssh://`` host previews against this machine's Podman API instead (the
docker provider connects already in ``Configure``), a Kubernetes stack against the test cluster, and a
stack that reads another stack's outputs (a StackReference) against a stand-in of that stack holding
only those outputs. Nothing else of the stack changes; no certificate or key file is on this runner.

A preview must succeed with no error diagnostic and no mandatory policy violation: that also catches
what mocks hide (output-only fields read at preview time, provider-side validation, SSA dry runs).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from berth.record import ROOT
from tests.real import kube
from tests.real.pulumi_cli import VENV, EngineMissing, Pulumi, mandatory_violations

pytestmark = [pytest.mark.real_docker, pytest.mark.real_k8s]

POLICY_PACK = ROOT / "policies"


def stack_files() -> list[tuple[str, Path]]:
    out = [(f"berth/{p.name[len('Pulumi.'):-len('.yaml')]}", p) for p in sorted(ROOT.glob("Pulumi.*.yaml"))]
    for p in sorted((ROOT / "examples").glob("*/Pulumi.*.yaml")):
        out.append((f"{p.parent.name}/{p.name[len('Pulumi.'):-len('.yaml')]}", p))
    return out


STACKS = stack_files()


def ci_copy(stack_file: Path, dest: Path) -> tuple[Path, str, dict]:
    """The stack's project in ``dest`` with the CI overrides; returns (project dir, stack, config)."""
    src = stack_file.parent
    stack = stack_file.name[len("Pulumi."):-len(".yaml")]
    dest.mkdir(parents=True, exist_ok=True)
    project = yaml.safe_load((src / "Pulumi.yaml").read_text())
    project.setdefault("runtime", {}).setdefault("options", {})["virtualenv"] = str(VENV)
    (dest / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    shutil.copy(src / "__main__.py", dest / "__main__.py")
    doc = yaml.safe_load(stack_file.read_text()) or {}
    config = doc.get("config") or {}
    docker = config.get("berth:docker")
    if isinstance(docker, dict) and str(docker.get("host", "")).startswith("ssh://"):
        docker.pop("host")  # CI override: this machine's Podman API (DOCKER_HOST) stands in for the host
        if not docker:
            config.pop("berth:docker")
    kubernetes = config.get("berth:kubernetes")
    if isinstance(kubernetes, dict):
        kubernetes.pop("context", None)  # CI override: the test cluster (KUBECONFIG)
    (dest / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=True))
    return dest, stack, config


def stand_in_referenced_stacks(p: Pulumi, config: dict) -> None:
    """CI override for a stack that reads another stack's outputs (``secret_env: {VAR: {from_stack,
    output}}``, a StackReference): the referenced stack is created in the same state backend with
    only those outputs (``pulumi stack import``), as if it had been deployed first."""
    from berth.record import referenced_outputs

    for ref, outputs in referenced_outputs(config).items():
        _org, project, stack = ref.split("/")
        p.run("stack", "init", ref, "--secrets-provider", "passphrase", stack=False)
        deployment = {"version": 3, "deployment": {
            "manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""},
            "resources": [{"urn": f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}",
                           "custom": False, "type": "pulumi:pulumi:Stack",
                           "outputs": {o: f"stand-in-{o}" for o in sorted(outputs)}}]}}
        path = p.state_dir / f"{stack}.deployment.json"
        path.write_text(json.dumps(deployment))
        p.run("stack", "import", "--stack", ref, "--file", str(path), stack=False)


@pytest.fixture(scope="module")
def outputs_dir(tmp_path_factory) -> Path:
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("DOCKER_HOST is not set: start Podman's Docker API (bash .ci/podman.sh start)", pytrace=False)
    try:
        kube.check_cluster()
    except kube.ClusterMissing as e:
        pytest.fail(str(e), pytrace=False)
    return tmp_path_factory.mktemp("previews")


RESULTS: dict[str, dict] = {}


@pytest.mark.parametrize(("label", "stack_file"), STACKS, ids=[s[0] for s in STACKS])
def test_stack_previews_with_the_policy_pack(label, stack_file, outputs_dir, tmp_path):
    project, stack, config = ci_copy(stack_file, tmp_path / "project")
    try:
        p = Pulumi(project, stack, tmp_path / "state", env_extra=kube.kube_env())
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    stand_in_referenced_stacks(p, config)
    p.init()
    safe = label.replace("/", "__")
    events = outputs_dir / f"{safe}.events.ndjson"
    pack_config = stack_file.with_name(f"Pulumi.{stack}.policy.json")  # as the preview workflow does
    extra = ["--policy-pack-config", str(pack_config)] if pack_config.exists() else []
    res, doc = p.preview_json("--policy-pack", str(POLICY_PACK), *extra, event_log=events)
    (outputs_dir / f"{safe}.preview.json").write_text(res.stdout)
    RESULTS[label] = {"exit": res.returncode, "preview": outputs_dir / f"{safe}.preview.json", "events": events,
                      "seconds": round(res.seconds, 1)}
    errors = [d["message"] for d in doc.get("diagnostics") or [] if d.get("severity") == "error"]
    violations = [f"{rule}: {m[:300]}" for rule, ms in mandatory_violations(events).items() for m in ms]
    assert res.returncode == 0 and not errors and not violations, (
        f"{label}: preview exited {res.returncode}\nerrors: {errors}\nmandatory violations: {violations}\n{res}")
    creates = (doc.get("changeSummary") or {}).get("create", 0)
    assert creates > 5, f"{label}: a fresh stack should create its resources: {doc.get('changeSummary')}"


def test_the_pr_comment_from_every_real_preview(outputs_dir):
    from berth.preview import load_stack, render_comment

    assert len(RESULTS) == len(STACKS), f"only {sorted(RESULTS)} previewed"
    results = [load_stack(label, str(r["preview"]), str(r["events"]), r["exit"]) for label, r in sorted(RESULTS.items())]
    comment = render_comment(results)
    assert len(comment.encode()) < 65536
    for label in RESULTS:
        assert label in comment, label
    assert "error" not in comment.lower().split("<details>")[0] or "0 errors" in comment.lower(), comment[:2000]
    print("preview seconds per stack: " + json.dumps({k: v["seconds"] for k, v in sorted(RESULTS.items())}))
