"""preview.yml run for real under act, for pull requests, against the real targets.

1. A pull request on a copy of this repository: every stack file previewed by the real CLI (Docker
   stacks on the runner's engine or, for ``ssh://`` hosts, through SSH to the SSH Docker host that
   SSH_CONFIG maps their names to; Kubernetes stacks on the test cluster through the KUBECONFIG
   secret), the outputs through act's artifact server, and exactly one PR comment posted to the
   GitHub REST stand-in, holding every stack's counts and changed resources.
2. A team's repository (the project with its dev and prod stacks) and one pull request pushed three
   times: the comment is created once and then updated; a commit that breaks a mandatory policy
   gets the violation in the comment and a failed check after the comment was posted; a stack whose
   preview fails is shown failed in the comment with the CLI's error, not lost.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from berth.preview import load_stack
from tests.workflows.act import Act, TeamRepo
from tests.workflows.github_api import GitHubStandIn
from tests.workflows.support import artifacts, init_stacks, require_targets, secrets, stack_files

pytestmark = [pytest.mark.workflows, pytest.mark.real_docker, pytest.mark.real_k8s]

MARKER = "<!-- berth-preview -->"
TIMES: dict[str, float] = {}


def stack_names(repo: TeamRepo) -> list[str]:
    return [s if d == repo.path else f"{d.name}-{s}" for d, s in stack_files(repo.path)]


def previews(run_artifacts: dict[str, dict[str, bytes]], name: str, tmp: Path):
    """The uploaded outputs of one stack's preview job, read back as the renderer reads them."""
    files = run_artifacts[f"preview-{name}"]
    d = tmp / "artifacts" / name
    d.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():  # each artifact holds <name>/... (preview.yml says why)
        folder, _, file = rel.partition("/")
        assert folder == name, rel
        (d / file).write_bytes(content)
    code = int((d / "exit-code").read_text().strip())
    return load_stack(name, str(d / "preview.json"), str(d / "events.ndjson"), code, str(d / "stderr.txt"))


# --------------------------------------------------------------------------- 1. every stack file


@pytest.fixture(scope="module")
def checkout_pr(tmp_path_factory):
    require_targets()
    tmp = tmp_path_factory.mktemp("wf-preview-all")
    repo = TeamRepo.copy_of_checkout(tmp / "repo", exclude=("tests", "bench"))
    state = tmp / "state"
    init_stacks(repo, state)
    head = repo.commit("Stacks initialised in the state backend")
    with GitHubStandIn(repo.owner, repo.name) as gh:
        act = Act(repo, tmp / "act")
        run = act.run("pull_request", "preview.yml", repo.pull_request_event(7, head),
                      secrets(state, repo.path, gh.token), api_url=gh.url)
    TIMES["every stack"] = round(run.seconds)
    print(f"preview.yml, {len(stack_names(repo))} stacks: {run.seconds:.0f}s; REST calls: {gh.calls()}")
    return SimpleNamespace(repo=repo, head=head, run=run, gh=gh, tmp=tmp, files=artifacts(act.artifacts))


def test_every_stack_previews_without_error_or_mandatory_violation(checkout_pr):
    names = stack_names(checkout_pr.repo)
    assert len(names) == 14
    jobs = checkout_pr.run.jobs()
    assert {f"preview ({n})" for n in names} <= set(jobs), str(checkout_pr.run)
    assert all(result == "success" for result in jobs.values()), str(checkout_pr.run)
    for name in names:
        r = previews(checkout_pr.files, name, checkout_pr.tmp)
        assert r.exit_code == 0 and not r.errors and not r.mandatory and not r.problems, (
            f"{name}: exit {r.exit_code}, errors {r.errors[:3]}, violations {[v.message for v in r.mandatory][:3]}, "
            f"problems {r.problems}\n{r.cli_output}")
        assert r.counts.get("create", 0) > 5, f"{name}: a fresh stack creates its resources: {r.counts}"
        assert r.stack and r.project, name


def test_exactly_one_comment_with_every_stack(checkout_pr):
    gh = checkout_pr.gh
    assert gh.unexpected == [], gh.unexpected
    assert all(r.token == gh.token for r in gh.requests)
    assert gh.calls() == ["GET issues/7/comments", "POST issues/7/comments"]
    (comment,) = gh.comments.values()
    body = comment["body"]
    assert body.startswith(MARKER) and f"Pulumi preview for {checkout_pr.head[:7]}" in body
    assert len(body.encode()) < 65536
    for name in stack_names(checkout_pr.repo):
        r = previews(checkout_pr.files, name, checkout_pr.tmp)
        section = body.split(f"### {name} —", 1)[1].split("\n### ", 1)[0]
        # Its counts table holds the preview's own numbers.
        assert re.search(rf"\|\s*{r.counts['create']}\s*\|", section), (name, r.counts, section[:600])
        # ... and the resources it would change are named (each in the details or, past the size
        # budget, counted in a note).
        created = [c.urn.name for c in r.changes if c.op == "create" and c.urn.type.startswith(("docker:", "kubernetes:"))]
        shown = [n for n in created if n in section]
        assert shown or "omitted" in section, (name, created[:5])
    dev = body.split("### dev —", 1)[1].split("\n### ", 1)[0]
    assert "proxy" in dev and "db" in dev


# --------------------------------------------------------------------------- 2. one PR, three pushes


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def edit_stack(repo: TeamRepo, stack: str, change) -> None:
    path = repo.path / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc["config"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    require_targets()
    tmp = tmp_path_factory.mktemp("wf-preview-shop")
    repo = TeamRepo.copy_of_checkout(tmp / "repo", exclude=("tests", "bench", "examples"))
    state = tmp / "state"
    init_stacks(repo, state)
    repo.commit("Stacks initialised in the state backend")
    repo.git("checkout", "-q", "-b", "feature")
    gh = GitHubStandIn(repo.owner, repo.name).__enter__()
    ns = SimpleNamespace(repo=repo, state=state, gh=gh, tmp=tmp, runs=[], down_port=closed_port())

    def push(message: str):
        head = repo.commit(message)
        act = Act(repo, tmp / f"act-{len(ns.runs)}")
        sec = secrets(state, repo.path, gh.token)
        sec["SSH_CONFIG"] += f"Host offline.example.com\n  HostName 127.0.0.1\n  Port {ns.down_port}\n"
        before = len(gh.requests)
        run = act.run("pull_request", "preview.yml", repo.pull_request_event(8, head), sec, api_url=gh.url)
        TIMES[message] = round(run.seconds)
        print(f"preview.yml ({message}): {run.seconds:.0f}s, jobs {run.jobs()}, REST {gh.calls()[before:]}")
        ns.runs.append(SimpleNamespace(head=head, run=run, calls=gh.calls()[before:], files=artifacts(act.artifacts)))
        return ns.runs[-1]

    ns.push = push
    yield ns
    gh.__exit__(None, None, None)
    print(f"preview.yml run times (s): {json.dumps(TIMES)}")


def comment_body(gh: GitHubStandIn) -> str:
    mine = [c for c in gh.comments.values() if c["body"].startswith(MARKER)]
    assert len(mine) == 1, f"{len(mine)} comments with the marker"
    return mine[0]["body"]


def test_first_push_creates_the_comment(shop):
    run = shop.push("Add the shop's stacks")
    assert run.run.jobs() == {"stacks": "success", "preview (dev)": "success", "preview (prod)": "success",
                              "PR comment": "success"}, str(run.run)
    assert run.calls == ["GET issues/8/comments", "POST issues/8/comments"]
    body = comment_body(shop.gh)
    assert f"Pulumi preview for {run.head[:7]}" in body and "### dev —" in body and "### prod —" in body


def test_a_mandatory_violation_is_in_the_comment_and_fails_the_check_after_it(shop):
    edit_stack(shop.repo, "dev", lambda c: c["berth:services"]["beat"].update({"run_as_root": True}))
    run = shop.push("Run beat as root")
    jobs = run.run.jobs()
    assert jobs["preview (dev)"] == "success" and jobs["PR comment"] == "failure", str(run.run)
    # Updated, not added: the comment of the first push is found by its marker and rewritten.
    assert run.calls == ["GET issues/8/comments", "PATCH issues/comments/%d" % next(iter(shop.gh.comments))]
    body = comment_body(shop.gh)
    assert f"Pulumi preview for {run.head[:7]}" in body
    assert "mandatory policy violation" in body and "beat" in body
    log = run.run.log("PR comment")
    posted = log.find("Create or update the PR comment")
    failed = log.find("::error::mandatory policy violation in dev")
    assert 0 <= posted < failed or (posted >= 0 and "mandatory policy violation in dev" in log), log[-3000:]


def test_a_failing_preview_is_shown_failed_not_lost(shop):
    """A stack whose preview fails (a mistyped restore_from: Berth refuses it, naming the key) is in the
    comment with the CLI's error, and fails the check after the comment. (A Docker host or cluster the
    runner cannot reach does not fail a preview: the providers plan creates without them.)"""
    edit_stack(shop.repo, "dev", lambda c: c["berth:services"]["beat"].pop("run_as_root"))
    staging = yaml.safe_load((shop.repo.path / "Pulumi.prod.yaml").read_text())
    staging["config"]["berth:kubernetes"] = {**staging["config"].get("berth:kubernetes", {}), "namespace": "shop-staging"}
    staging["config"]["berth:backups"]["db"]["restore_from"] = "lastest"
    (shop.repo.path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(staging, sort_keys=False))
    init_stacks(shop.repo, shop.state, only=["staging"])
    run = shop.push("Add a staging stack with a typo")
    jobs = run.run.jobs()
    assert jobs["preview (staging)"] == "success" and jobs["PR comment"] == "failure", str(run.run)
    assert [c.split()[0] for c in run.calls] == ["GET", "PATCH"]
    body = comment_body(shop.gh)
    assert "Preview failed for staging" in body
    staging_section = body.split("### staging —", 1)[1].split("\n### ", 1)[0]
    assert "restore_from" in staging_section and "did you mean latest" in staging_section, staging_section
    assert "### dev —" in body and "mandatory" not in body.split("### dev —", 1)[1].split("\n### ", 1)[0]
