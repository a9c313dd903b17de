"""`berth drift-report`: the drift workflow's issue body per stack, from real and hand-made outputs.

The real fixture (fixtures/drift/podman_stopped.*) is a Berth stack on Podman after `docker stop` of
its web container, previewed with `pulumi preview --refresh --json --event-log` by the real CLI and
read by `berth status`. It also shows Podman's read-back of `capabilities` and `securityOpts`,
which differ from what was declared (the provider then reports them as changed outside Pulumi).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from berth.preview.drift import Drift, load_drift, main, marker, refresh_changes, render_drift
from berth.preview.model import StackResult, parse_urn
from berth.preview.read import read_event_log

FIX = Path(__file__).parent / "fixtures" / "drift"
ROOT_URN = "urn:pulumi:prod::shop::pulumi:pulumi:Stack::shop-prod"


def unzip(name: str, tmp: Path) -> str:
    out = tmp / name.removesuffix(".gz")
    out.write_bytes(gzip.decompress((FIX / name).read_bytes()))
    return str(out)


@pytest.fixture
def podman(tmp_path) -> Drift:
    return load_drift("dev", unzip("podman_stopped.preview.json.gz", tmp_path),
                      unzip("podman_stopped.events.ndjson.gz", tmp_path), 0, None,
                      str(FIX / "podman_stopped.status.json"))


def test_real_refresh_names_each_drifted_resource_and_field(podman):
    assert podman.state == "drifted" and podman.report
    assert sorted(c.urn.name for c in podman.drifted) == ["redis", "web", "worker-1", "worker-2"]
    web = next(c for c in podman.drifted if c.urn.name == "web")
    assert {"mustRun", "capabilities", "securityOpts"} <= set(web.step["diffReasons"])
    body = render_drift(podman, "2026-12-06 05:17 UTC")
    assert body.startswith(marker("dev") + "\n")
    assert "- `mustRun` *update*: `true` → `false`" in body
    assert "checked 2026-12-06 05:17 UTC" in body
    assert podman.title == "Drift: dev (4 resources changed outside Pulumi, 3 workloads not running well)"


def test_real_report_masks_secrets_and_lists_workloads_not_running(podman):
    body = render_drift(podman)
    assert "ciphertext" not in body and "4dabf18193072939515e22adb298388d" not in body
    assert "| driftexp-web | container | exited (exit 137) |" in body
    assert "pulumi up --refresh -s dev" in body
    # What up would do now: the preview's replacements of the drifted containers.
    assert "What `pulumi up --refresh` would do" in body and "replace" in body
    assert len(body.encode()) < 65536


def _doc(root_op: str, *steps: dict) -> dict:
    return {"steps": [{"op": root_op, "urn": ROOT_URN}, *steps], "changeSummary": {root_op: 1}, "diagnostics": []}


def _write(tmp: Path, doc: dict, events: list[dict] = (), status: dict | None = None) -> tuple[str, str, str]:
    (tmp / "p.json").write_text(json.dumps(doc))
    (tmp / "e.ndjson").write_text("\n".join(json.dumps(e) for e in events))
    if status is not None:
        (tmp / "s.json").write_text(json.dumps(status))
    return str(tmp / "p.json"), str(tmp / "e.ndjson"), str(tmp / "s.json")


OK_STATUS = {"stack": "prod", "target": "kubernetes", "ok": True,
             "workloads": [{"name": "api", "kind": "Deployment", "state": "ready", "ok": True, "detail": "3/3 ready",
                            "last_error": ""}]}


def test_a_stack_never_deployed_is_not_reported(tmp_path):
    p, e, s = _write(tmp_path, _doc("create"), status={"ok": False, "workloads": [{"name": "api", "ok": False}]})
    d = load_drift("prod", p, e, 0, None, s)
    assert d.state == "not-deployed" and not d.report


def test_a_clean_stack_closes_its_issue_with_a_body_that_says_so(tmp_path):
    p, e, s = _write(tmp_path, _doc("same"), status=OK_STATUS)
    d = load_drift("prod", p, e, 0, None, s)
    assert d.state == "clean" and not d.report
    assert "The stack is as deployed" in render_drift(d)


def test_replicas_and_env_changed_on_the_cluster(tmp_path):
    urn = "urn:pulumi:prod::shop::berth:index:AppService$kubernetes:apps/v1:Deployment::worker-deployment"
    old = {"outputs": {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"env": [
        {"name": "LOG_LEVEL", "value": "info"}]}]}}}}}
    new = {"outputs": {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"env": [
        {"name": "LOG_LEVEL", "value": "debug"}]}]}}}}}
    events = [{"resOutputsEvent": {"metadata": {
        "op": "refresh", "urn": urn, "type": "kubernetes:apps/v1:Deployment", "old": old, "new": new,
        "diffs": ["spec"], "detailedDiff": {
            "spec.replicas": {"diffKind": "update", "inputDiff": False},
            "spec.template.spec.containers[0].env[0].value": {"diffKind": "update", "inputDiff": False}}}}}]
    p, e, s = _write(tmp_path, _doc("same"), events, OK_STATUS)
    d = load_drift("prod", p, e, 0, None, s)
    assert d.state == "drifted"
    body = render_drift(d)
    assert "- `spec.replicas` *update*: `2` → `1`" in body
    assert '`"info"` → `"debug"`' in body


def test_a_resource_deleted_outside_pulumi(tmp_path):
    urn = "urn:pulumi:dev::shop::berth:index:AppService$docker:index/container:Container::beat"
    events = [{"resOutputsEvent": {"metadata": {"op": "delete", "urn": urn, "type": "docker:index/container:Container",
                                                "old": {"outputs": {"name": "shop-beat"}}, "new": None}}}]
    (c,) = refresh_changes(events)
    assert c.op == "delete" and c.urn.name == "beat"


def test_a_failed_check_is_reported_with_the_cli_error(tmp_path):
    (tmp_path / "stderr.txt").write_text("error: cannot connect to the Docker daemon at ssh://deploy@app.example.com\n")
    p, e, s = _write(tmp_path, {}, status=None)
    d = load_drift("dev", p, e, 255, str(tmp_path / "stderr.txt"), s)
    assert d.state == "failed" and d.report and d.title == "Drift check failed: dev"
    body = render_drift(d)
    assert "ssh://deploy@app.example.com" in body and "exited 255" in body


def test_status_that_could_not_read_the_target_fails_the_check(tmp_path):
    p, e, s = _write(tmp_path, _doc("same"))
    (tmp_path / "s.json").write_text("")
    (tmp_path / "status-stderr.txt").write_text("error: the Kubernetes cluster (context current) cannot be reached")
    d = load_drift("prod", p, e, 0, None, s)
    assert d.state == "failed" and "cannot be reached" in render_drift(d)


def test_command_writes_one_report_per_stack_and_a_summary(tmp_path, podman):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pa, ea, sa = _write(a, _doc("same"), status=OK_STATUS)
    pb, eb, _ = _write(b, _doc("create"))
    out = tmp_path / "drift"
    assert main(["--stack", f"prod={pa}:{ea}", "--status", f"prod={sa}", "--exit-code", "prod=0",
                 "--stack", f"examples-x={pb}:{eb}", "--out-dir", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {
        "examples-x": {"file": "examples-x.md", "report": False, "state": "not-deployed",
                       "title": "No drift: examples-x"},
        "prod": {"file": "prod.md", "report": False, "state": "clean", "title": "No drift: prod"},
    }
    assert (out / "prod.md").read_text().startswith(marker("prod"))
    assert "| prod | clean |" in (out / "summary.md").read_text()


def test_refresh_events_of_the_real_log_are_only_the_changed_ones(tmp_path):
    events, bad = read_event_log(gzip.decompress((FIX / "podman_stopped.events.ndjson.gz").read_bytes()).decode())
    assert bad == 0
    assert {c.urn.name for c in refresh_changes(events)} == {"redis", "web", "worker-1", "worker-2"}
    assert parse_urn(ROOT_URN).type == "pulumi:pulumi:Stack"
    assert StackResult(label="x").failed is False
