"""ci.yml run for real under act: what a GitHub-hosted runner checks on every change, on a runner
that has nothing of this machine's (no ../shared, no real target, no Pulumi engine on PATH)."""

from __future__ import annotations

import re

import pytest

from tests.workflows.act import Act, TeamRepo
from tests.workflows.support import require_act, stack_files

pytestmark = [pytest.mark.workflows]


def test_ci_workflow_runs_the_offline_tests_lint_and_renders(tmp_path):
    require_act()
    repo = TeamRepo.copy_of_checkout(tmp_path / "repo")
    # A runner without this machine's tools: no engine, no DOCKER_HOST, no kubeconfig; the Go and pip
    # caches are warm (as setup-python's and setup-go's caches make them on GitHub).
    # The offline tests run in this same CI run already: under act the workflow's pytest step runs two of
    # their folders (PYTEST_ADDOPTS names them; the step's own options and markers stay as written).
    act = Act(repo, tmp_path / "act", runner="hosted",
              env_extra={"PYTEST_ADDOPTS": "tests/policies tests/preview_comment"})
    run = act.run("push", "ci.yml", {"ref": "refs/heads/main", "repository": {"full_name": repo.full_name}}, {})
    print(f"ci.yml under act: {run.seconds:.0f}s, jobs {run.jobs()}")
    assert run.jobs() == {"tests, lint, render": "success"}, str(run)
    log = run.log()
    m = re.search(r"(\d+) passed(?:, (\d+) deselected)?", log)
    assert m and int(m.group(1)) > 250, log[-3000:]
    assert not re.search(r"\b\d+ (failed|error)", log), log[-3000:]
    rendered = set(re.findall(r"rendered (\S+) (\S+)$", log, re.M))
    expected = {(str(d.relative_to(repo.path)) if d != repo.path else ".", s) for d, s in stack_files(repo.path)}
    assert rendered == expected, sorted(expected - rendered)
