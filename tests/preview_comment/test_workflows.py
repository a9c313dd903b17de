"""Static checks of .github/workflows: actionlint (zero findings) plus the rules that
matter for previews and deploys."""

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"^\s*(?:-\s*)?uses:\s*([^@\s]+)@([0-9a-f]{40})\s+#\s*v\d+(?:\.\d+)*\s*$")
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
#: matrix name of each example stack → its folder
EXAMPLE_DIRS = {f"{p.parent.name}-{p.name[len('Pulumi.'):-len('.yaml')]}": f"examples/{p.parent.name}"
                for p in ROOT.glob("examples/*/Pulumi.*.yaml")}
EXAMPLES = set(EXAMPLE_DIRS)


def load(name):
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def run_scripts(job):
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def actionlint_binary():
    for candidate in (pathlib.Path(sys.executable).parent / "actionlint", shutil.which("actionlint")):
        if candidate and pathlib.Path(candidate).is_file():
            return str(candidate)
    pytest.fail("actionlint not found: `GOBIN=$PWD/.venv/bin go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.7` "
                "(.ci/run does it; it also needs shellcheck: `bash .ci/system-packages.sh`)")


def test_actionlint_reports_nothing():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert {pathlib.Path(f).name for f in files} >= {"preview.yml", "deploy.yml", "ci.yml"}
    out = subprocess.run([actionlint_binary(), "-format", "{{json .}}", *files],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    findings = json.loads(out.stdout or "[]")
    assert findings == [], "\n".join(f"{f['filepath']}:{f['line']}: {f['message']}" for f in findings)
    assert out.returncode == 0, out.stderr


def test_every_action_is_pinned_to_a_full_sha_with_a_version_comment():
    uses_lines = []
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(?:-\s*)?uses:", line):
                uses_lines.append((path.name, line))
                assert SHA_PIN.match(line), f"{path.name}: not pinned to a commit SHA: {line.strip()}"
    assert len(uses_lines) >= 8


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "ci.yml"])
def test_permissions_are_minimal(name):
    doc = load(name)
    assert doc["permissions"] == {"contents": "read"}
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions", {"contents": "read"})
        assert isinstance(perms, dict), f"{name}:{job_id} uses a permission shorthand"
        assert perms.get("contents") == "read"
        extra = {k: v for k, v in perms.items() if k != "contents"}
        if name == "preview.yml" and job_id == "comment":
            assert extra == {"pull-requests": "write"}
        else:
            assert extra == {}, f"{name}:{job_id} asks for {extra}"


def test_preview_job_runs_preview_with_policy_pack_and_event_log():
    doc = load("preview.yml")
    assert set(doc["on"]) == {"pull_request"}
    job = doc["jobs"]["preview"]
    script = run_scripts(job)
    command = " ".join(script.replace("\\\n", " ").split())
    assert "pulumi preview" in command
    assert "pip install -r requirements.txt -r policies/requirements.txt" in command
    # absolute path ($GITHUB_WORKSPACE/policies) because --cwd moves into examples/<name>
    assert re.search(r'--policy-pack "?[^\s"]*/policies"?(?:\s|$)', command)
    assert re.search(r"--event-log \S+", command)
    # The CLI (v3.274) only accepts --event-log with its debug commands enabled (checked with the
    # real CLI: "unknown flag: --event-log" otherwise), and the violations are only in that log.
    step = next(s for s in job["steps"] if "--event-log" in s.get("run", ""))
    assert str({**job.get("env", {}), **step.get("env", {})}.get("PULUMI_DEBUG_COMMANDS")).lower() == "true"
    # A stack's own pack config beside its stack file (tests/real/test_previews.py does the same).
    assert 'Pulumi.$STACK.policy.json' in step["run"] and "--policy-pack-config" in step["run"]
    assert "--json" in command and "--diff" in command and '--stack "$STACK"' in command
    # the preview may fail without failing the job before the comment is posted
    assert "set +e" in script and "exit-code" in script
    assert job["strategy"]["fail-fast"] is False
    names = {entry["name"] for entry in job["strategy"]["matrix"]["include"]}
    assert names == {"dev", "prod"} | EXAMPLES
    dirs = {entry["name"]: entry["dir"] for entry in job["strategy"]["matrix"]["include"]}
    assert all(dirs[e] == EXAMPLE_DIRS[e] for e in EXAMPLES)
    for var in ("PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"):
        assert job["env"][var] == "${{ secrets.%s }}" % var
    assert any("upload-artifact" in step.get("uses", "") and step.get("if") == "always()" for step in job["steps"])


def test_comment_job_posts_one_sticky_comment_then_fails_on_problems():
    doc = load("preview.yml")
    job = doc["jobs"]["comment"]
    assert job["needs"] == "preview"
    assert job["if"].startswith("always()")
    steps = job["steps"]
    script = run_scripts(job)
    assert "berth preview-comment" in script
    assert set(job["env"]["STACKS"].split()) == {"dev", "prod"} | EXAMPLES
    post = next(i for i, s in enumerate(steps) if "github-script" in s.get("uses", ""))
    assert "<!-- berth-preview -->" in steps[post]["with"]["script"]
    assert "updateComment" in steps[post]["with"]["script"]
    last = steps[-1]
    assert post < len(steps) - 1 and "exit \"$status\"" in last["run"]
    assert "mandatory" in last["run"]


def test_deploy_is_guarded_and_serialised():
    doc = load("deploy.yml")
    assert doc["on"] == {"push": {"branches": ["main"]}}
    (job,) = doc["jobs"].values()
    env = job["environment"]
    assert (env if isinstance(env, str) else env["name"]) == "production"
    conc = job["concurrency"]
    assert isinstance(conc, dict) and conc["group"] and conc["cancel-in-progress"] is False
    assert "pulumi up -s prod --yes --policy-pack policies" in run_scripts(job)


def test_ci_runs_the_ci_script_on_pull_requests_and_pushes():
    doc = load("ci.yml")
    assert {"pull_request", "push"} <= set(doc["on"])
    assert any(step.get("run", "").strip() == "bash .ci/run" for job in doc["jobs"].values() for step in job["steps"])


def test_preview_matrix_lists_every_stack_file():
    """Every Pulumi.<stack>.yaml of the project and its examples is previewed, and nothing else."""
    from pathlib import Path

    import yaml as _yaml

    root = Path(__file__).resolve().parents[2]
    wf = _yaml.safe_load((root / ".github/workflows/preview.yml").read_text())
    listed = {(e["dir"], e["stack"]) for e in wf["jobs"]["preview"]["strategy"]["matrix"]["include"]}
    files = {(".", p.name[len("Pulumi."):-len(".yaml")]) for p in root.glob("Pulumi.*.yaml")}
    files |= {(f"examples/{p.parent.name}", p.name[len("Pulumi."):-len(".yaml")])
              for p in root.glob("examples/*/Pulumi.*.yaml")}
    assert listed == files
