"""Static checks of .github/workflows and .github/actions: actionlint (zero findings) plus the rules
that matter for previews and deploys. The workflows also run for real under act
(tests/workflows/test_*_workflow.py); these checks say why a rule holds where act cannot tell (e.g.
what a job may do on GitHub that act lets it do here)."""

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
ACTIONS = ROOT / ".github" / "actions"
SHA_PIN = re.compile(r"^\s*(?:-\s*)?uses:\s*([^@\s]+)@([0-9a-f]{40})\s+#\s*v\d+(?:\.\d+)*\s*$")
LOCAL_ACTION = re.compile(r"^\s*(?:-\s*)?uses:\s*\./\.github/actions/[\w-]+\s*$")
#: The CLI version CI builds and tests (.ci/engine.sh, ../shared/engine/build.sh)
TESTED_CLI = "3.274.1"


def load(path):
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def workflow(name):
    return load(WORKFLOWS / name)


def run_scripts(job):
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def action_files():
    return sorted(ACTIONS.glob("*/action.yml"))


def actionlint_binary():
    for candidate in (pathlib.Path(sys.executable).parent / "actionlint", shutil.which("actionlint")):
        if candidate and pathlib.Path(candidate).is_file():
            return str(candidate)
    pytest.fail("actionlint not found: `GOBIN=$PWD/.venv/bin go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.7` "
                "(.ci/run does it; it also needs shellcheck: `bash .ci/system-packages.sh`)")


def test_actionlint_reports_nothing():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert {pathlib.Path(f).name for f in files} == {"preview.yml", "deploy.yml", "ci.yml", "drift.yml"}
    out = subprocess.run([actionlint_binary(), "-format", "{{json .}}", *files],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    findings = json.loads(out.stdout or "[]")
    assert findings == [], "\n".join(f"{f['filepath']}:{f['line']}: {f['message']}" for f in findings)
    assert out.returncode == 0, out.stderr


def test_shell_scripts_of_the_actions_pass_shellcheck():
    scripts = sorted(str(p) for p in ACTIONS.glob("*/*.sh"))
    assert scripts
    out = subprocess.run(["shellcheck", "-S", "style", *scripts], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_action_is_pinned_to_a_full_sha_with_a_version_comment():
    uses_lines = []
    for path in [*WORKFLOWS.glob("*.yml"), *action_files()]:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(?:-\s*)?uses:", line):
                uses_lines.append((path.name, line))
                assert SHA_PIN.match(line) or LOCAL_ACTION.match(line), \
                    f"{path}: not pinned to a commit SHA: {line.strip()}"
    assert len(uses_lines) >= 12


def test_the_cli_version_is_the_one_tested():
    pins = {}
    for path in WORKFLOWS.glob("*.yml"):
        pins.update({path.name: v for v in re.findall(r'PULUMI_VERSION:\s*"([^"]+)"', path.read_text())})
    assert set(pins) == {"preview.yml", "deploy.yml", "drift.yml"}
    assert set(pins.values()) == {TESTED_CLI}, pins
    build = (ROOT.parent / "shared" / "engine" / "build.sh")
    if build.exists():  # beside this checkout on the test machines; the pin above names it otherwise
        assert f"PULUMI_VERSION:-v{TESTED_CLI}" in build.read_text()


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "ci.yml", "drift.yml"])
def test_permissions_are_minimal(name):
    doc = workflow(name)
    assert doc["permissions"] == {"contents": "read"}
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions", {"contents": "read"})
        assert isinstance(perms, dict), f"{name}:{job_id} uses a permission shorthand"
        assert perms.get("contents") == "read"
        extra = {k: v for k, v in perms.items() if k != "contents"}
        expected = {("preview.yml", "comment"): {"pull-requests": "write"},
                    ("drift.yml", "report"): {"issues": "write"}}.get((name, job_id), {})
        assert extra == expected, f"{name}:{job_id} asks for {extra}"


def test_each_job_installs_what_it_runs():
    """Each job starts on a fresh runner: a job that runs `berth` or `pulumi` installs it itself
    (the comment job once called `berth` with nothing installed)."""
    for path in WORKFLOWS.glob("*.yml"):
        for job_id, job in load(path)["jobs"].items():
            script = run_scripts(job)
            uses = [s.get("uses", "") for s in job.get("steps", [])]
            sets_up = "./.github/actions/setup" in uses
            if re.search(r"(^|\s)pulumi\s", script):
                assert sets_up, f"{path.name}:{job_id} runs pulumi without ./.github/actions/setup"
            if re.search(r"(^|\s)berth\s", script):
                assert sets_up or "pip install" in script, f"{path.name}:{job_id} runs berth without installing it"
            if any(u.startswith("./") for u in uses):
                first = next(i for i, u in enumerate(uses) if u.startswith("./"))
                assert any("actions/checkout" in u for u in uses[:first]), \
                    f"{path.name}:{job_id} uses a local action before checking out the repository"


def test_setup_installs_credentials_without_trusting_unknown_hosts():
    setup = load(ACTIONS / "setup" / "action.yml")
    assert set(setup["inputs"]) == {"pulumi-version", "ssh-private-key", "ssh-known-hosts", "ssh-config", "kubeconfig"}
    script = (ACTIONS / "setup" / "access.sh").read_text()
    assert "StrictHostKeyChecking yes" in script and "StrictHostKeyChecking no" not in script
    assert "accept-new" not in script and "ssh-keyscan" not in script.split("::error")[0]
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "StrictHostKeyChecking" not in text, path.name
        for job_id, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                if step.get("uses") == "./.github/actions/setup":
                    w = step["with"]
                    assert w["pulumi-version"] == "${{ env.PULUMI_VERSION }}"
                    assert w["ssh-private-key"] == "${{ secrets.SSH_PRIVATE_KEY }}"
                    assert w["ssh-known-hosts"] == "${{ secrets.SSH_KNOWN_HOSTS }}"
                    assert w["kubeconfig"] == "${{ secrets.KUBECONFIG }}"


def test_preview_job_runs_preview_with_policy_pack_and_event_log():
    doc = workflow("preview.yml")
    assert set(doc["on"]) == {"pull_request"}
    job = doc["jobs"]["preview"]
    script = run_scripts(job)
    command = " ".join(script.replace("\\\n", " ").split())
    assert "pulumi preview" in command
    # absolute path ($GITHUB_WORKSPACE/policies) because --cwd moves into examples/<name>
    assert re.search(r'--policy-pack "?[^\s"]*/policies"?(?:\s|$)', command)
    assert re.search(r"--event-log \S+", command)
    # The CLI (v3.274) only accepts --event-log with its debug commands enabled (checked with the
    # real CLI: "unknown flag: --event-log" otherwise), and the violations are only in that log.
    step = next(s for s in job["steps"] if "--event-log" in s.get("run", ""))
    assert str({**job.get("env", {}), **step.get("env", {})}.get("PULUMI_DEBUG_COMMANDS")).lower() == "true"
    # A stack's own pack config beside its stack file.
    assert 'Pulumi.$STACK.policy.json' in step["run"] and "--policy-pack-config" in step["run"]
    assert "--json" in command and "--diff" in command and '--stack "$STACK"' in command
    # the preview may fail without failing the job before the comment is posted
    assert "set +e" in script and "exit-code" in script and "stderr.txt" in script
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.matrix) }}"
    for var in ("PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"):
        assert job["env"][var] == "${{ secrets.%s }}" % var
    assert any("upload-artifact" in step.get("uses", "") and step.get("if") == "always()" for step in job["steps"])


def test_comment_job_posts_one_sticky_comment_then_fails_on_problems():
    doc = workflow("preview.yml")
    job = doc["jobs"]["comment"]
    assert set(job["needs"]) == {"stacks", "preview"}
    assert job["if"].startswith("always()")
    steps = job["steps"]
    script = run_scripts(job)
    assert "berth preview-comment" in script and "--stderr" in script
    assert job["env"]["STACKS"] == "${{ needs.stacks.outputs.names }}"
    post = next(i for i, s in enumerate(steps) if "github-script" in s.get("uses", ""))
    assert "<!-- berth-preview -->" in steps[post]["with"]["script"]
    assert "updateComment" in steps[post]["with"]["script"]
    last = steps[-1]
    assert post < len(steps) - 1 and "exit \"$status\"" in last["run"]
    assert "mandatory" in last["run"]


def test_the_stacks_are_every_stack_file():
    """The matrix is computed from the files: every Pulumi.<stack>.yaml beside a Pulumi.yaml."""
    out = subprocess.run([sys.executable, str(ACTIONS / "stacks" / "stacks.py")], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines())
    listed = {(e["dir"], e["stack"]) for e in json.loads(values["matrix"])["include"]}
    files = {(".", p.name[len("Pulumi."):-len(".yaml")]) for p in ROOT.glob("Pulumi.*.yaml")}
    files |= {(f"examples/{p.parent.name}", p.name[len("Pulumi."):-len(".yaml")])
              for p in ROOT.glob("examples/*/Pulumi.*.yaml")}
    assert listed == files
    assert values["names"].split()[:2] == ["dev", "prod"] and "wishlins-prod" in values["names"].split()


def test_deploy_is_guarded_serialised_and_checked():
    doc = workflow("deploy.yml")
    assert set(doc["on"]) == {"push", "workflow_dispatch"} and doc["on"]["push"] == {"branches": ["main"]}
    (job,) = doc["jobs"].values()
    env = job["environment"]
    assert (env if isinstance(env, str) else env["name"]) == "production"
    conc = job["concurrency"]
    assert isinstance(conc, dict) and conc["group"] and conc["cancel-in-progress"] is False
    script = run_scripts(job)
    assert 'pulumi up --stack "$STACK" --yes --policy-pack policies' in script
    assert "--expect-no-changes" in script.split("pulumi up", 1)[1]


def test_drift_runs_on_a_schedule_and_by_hand():
    doc = workflow("drift.yml")
    assert set(doc["on"]) == {"schedule", "workflow_dispatch"}
    check = doc["jobs"]["check"]
    assert "--refresh" in run_scripts(check)
    assert check["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.matrix) }}"
    report = doc["jobs"]["report"]
    assert "berth drift-report" in run_scripts(report)
    assert doc["concurrency"]["cancel-in-progress"] is False


def test_ci_needs_nothing_but_a_hosted_runner():
    """ci.yml runs on a GitHub-hosted runner: nothing from ../shared, no real target, no root
    beyond what sudo gives (the script asks for it)."""
    doc = workflow("ci.yml")
    assert {"pull_request", "push"} <= set(doc["on"])
    script = run_scripts(doc["jobs"]["test"])
    assert ".ci/run" not in script and "../shared" not in script and "/var/cache" not in script
    assert '-m "not real_docker and not real_k8s and not workflows"' in script
    assert "actionlint" in script and "berth render" in script
