"""deploy.yml and drift.yml run for real under act, on a team's repository whose stacks are deployed.

The repository holds the project with two stacks made deployable here (tests/real/stacks): ``prod`` on
the Kubernetes test cluster (its own namespace) and ``dev`` on a Docker host reached over SSH
(``ssh://deploy@shop-dev.example.com``, which SSH_CONFIG maps to .ci/sshd.sh's host; the deploy
user's docker CLI talks to the local engine). The story, in file order:
1. deploy.yml on a push to main: ``pulumi up -s prod`` with the policy pack through the KUBECONFIG
   secret, then a preview with no changes; a second run changes nothing;
2. the dev stack deployed through real SSH by the CLI (as a developer would, with the same key);
3. drift.yml with nothing changed: no issue;
4. changes made outside Pulumi: a container stopped and another renamed on the
   Docker host, a Deployment's replicas on the cluster: one issue per stack,
   naming each resource and field (secrets masked), and the stopped container as down;
5. the drift undone by ``pulumi up``: the issues are closed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.real import kube
from tests.real.kube import kubectl
from tests.real.stacks import realdev, realprod
from tests.workflows.act import Act, TeamRepo
from tests.workflows.github_api import GitHubStandIn
from tests.workflows.support import init_stacks, require_targets, secrets

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.workflows, pytest.mark.real_docker, pytest.mark.real_k8s]

NAMESPACE = "berth-t-wfprod"
DEV_NAME = "shopdev"
DEV_HOST = "shop-dev.example.com"
TIMES: dict[str, float] = {}


def ssh_home(tmp: Path, port: str) -> tuple[Path, Path]:
    """A home whose ssh client reaches DEV_HOST as the workflows' access.sh sets it up, and a bin
    directory whose ``ssh`` reads that home's config. OpenSSH takes ``~/.ssh`` from the passwd entry,
    not from $HOME: a developer's own ~/.ssh/config is what ``-F`` gives here."""
    home = tmp / "dev-home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    key = ssh / "id_deploy"
    key.write_text(Path(os.environ["BERTH_SSH_KEY"]).read_text())
    key.chmod(0o600)
    (ssh / "known_hosts").write_text(Path(os.environ["BERTH_SSH_KNOWN_HOSTS"]).read_text())
    (ssh / "config").write_text(f"Host {DEV_HOST}\n  HostName 127.0.0.1\n  Port {port}\n"
                                f"Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
                                f"  UserKnownHostsFile {ssh / 'known_hosts'}\n  StrictHostKeyChecking yes\n")
    bin_dir = tmp / "dev-bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('ssh')} -F {ssh / 'config'} \"$@\"\n")
    wrapper.chmod(0o755)
    return home, bin_dir


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    require_targets()
    tmp = tmp_path_factory.mktemp("wf-deploy-drift")
    repo = TeamRepo.copy_of_checkout(tmp / "repo", exclude=("tests", "bench", "examples"))
    dev = realdev.realdev_config(realdev.load_dev_config(repo.path / "Pulumi.dev.yaml"),
                                 realdev.free_port(), realdev.free_port())
    dev["berth:name"] = DEV_NAME
    dev["berth:docker"] = {**dev.get("berth:docker", {}), "host": f"ssh://deploy@{DEV_HOST}"}
    (repo.path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": dev}, sort_keys=True))
    (repo.path / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": realprod.ci_config(NAMESPACE)},
                                                               sort_keys=True))
    state = tmp / "state"
    stacks = init_stacks(repo, state)
    home, bin_dir = ssh_home(tmp, os.environ["BERTH_SSHD_PORT"])
    stacks["dev"].env_extra.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    repo.commit("The shop's stacks, initialised")
    kube.forget_namespace(NAMESPACE)
    gh = GitHubStandIn(repo.owner, repo.name).__enter__()
    ns = SimpleNamespace(repo=repo, state=state, stacks=stacks, gh=gh, tmp=tmp, n=0)

    def act(event: str, workflow: str, payload: dict) -> object:
        ns.n += 1
        a = Act(repo, tmp / f"act-{ns.n}")
        with kube.ingress_status_standin():
            run = a.run(event, workflow, payload, secrets(state, repo.path, gh.token), api_url=gh.url)
        TIMES[f"{ns.n}: {workflow}"] = round(run.seconds)
        print(f"{workflow} ({event}): {run.seconds:.0f}s, jobs {run.jobs()}")
        return run

    ns.act = act
    yield ns
    gh.__exit__(None, None, None)
    print(f"workflow run times (s): {json.dumps(TIMES)}")
    with developer_venv(repo):
        for p in stacks.values():  # the documented teardown (README): protected resources first
            p.run("state", "unprotect", "--all", "--yes", check=False)
            p.destroy(check=False)
    kube.forget_namespace(NAMESPACE)


@contextmanager
def developer_venv(repo: TeamRepo):
    """The project's .venv (Pulumi.yaml's `virtualenv`) while a developer runs the CLI in the
    repository: this checkout's, for that time only (the workflows make their own)."""
    venv = repo.path / ".venv"
    venv.symlink_to(REPO_ROOT / ".venv")
    try:
        yield
    finally:
        venv.unlink()


def push_event(repo: TeamRepo) -> dict:
    return {"ref": "refs/heads/main", "after": repo.git("rev-parse", "HEAD"),
            "repository": {"full_name": repo.full_name, "name": repo.name, "owner": {"login": repo.owner}}}


def dispatch_event(repo: TeamRepo) -> dict:
    return {"ref": "refs/heads/main", "repository": {"full_name": repo.full_name}}


# --------------------------------------------------------------------------- deploy.yml


def test_deploy_workflow_deploys_prod_with_the_policy_pack(shop):
    run = shop.act("push", "deploy.yml", push_event(shop.repo))
    assert run.jobs() == {"pulumi up (prod)": "success"}, str(run)
    log = run.log()
    assert re.search(r"Policies:.*berth-security", log, re.S) or "berth-security" in log, log[-3000:]
    assert re.search(r"\b(\d+) created\b", log), log[-3000:]
    # The step after `up`: a preview with --expect-no-changes passed.
    assert "No changes left after the deploy" in log
    pods = json.loads(kubectl("-n", NAMESPACE, "get", "pods", "-o", "json").stdout)["items"]
    # A Job's pod may have failed before a retry succeeded: the Jobs are judged by their own status.
    jobs = json.loads(kubectl("-n", NAMESPACE, "get", "jobs", "-o", "json").stdout)["items"]
    assert jobs and all(j["status"].get("succeeded") for j in jobs), [(j["metadata"]["name"], j["status"]) for j in jobs]
    running = [p for p in pods if not any(o["kind"] == "Job" for o in p["metadata"].get("ownerReferences", []))]
    assert running and all(p["status"]["phase"] == "Running" for p in running), \
        [(p["metadata"]["name"], p["status"]["phase"]) for p in running]


def test_a_second_deploy_changes_nothing(shop):
    run = shop.act("push", "deploy.yml", push_event(shop.repo))
    assert run.jobs() == {"pulumi up (prod)": "success"}, str(run)
    log = run.log()
    assert re.search(r"\b\d+ unchanged\b", log), log[-3000:]
    assert not re.search(r"\b\d+ (created|updated|replaced|deleted)\b", log), log[-3000:]


# --------------------------------------------------------------------------- the dev stack over SSH


def test_dev_deploys_through_ssh(shop):
    p = shop.stacks["dev"]
    with developer_venv(shop.repo):
        p.up()
        p.expect_no_changes()
    sshd_log = Path("/run/berth-sshd/sshd.log")
    if sshd_log.exists():  # the deploy user logged in with its key (the sshd's own record)
        assert "Accepted publickey for deploy" in sshd_log.read_text()
    # As the developer runs it: the stack's backend and passphrase, and the SSH config, from the env.
    out = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "berth"), "status", "-s", "dev", "--project-dir",
                          str(shop.repo.path), "--json", "-"], env=p.env(), capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip(), out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"], report


# --------------------------------------------------------------------------- drift.yml


def drift_issues(gh: GitHubStandIn) -> dict[str, dict]:
    out = {}
    for issue in gh.issues.values():
        m = re.match(r"<!-- berth-drift:(\S+) -->", issue["body"])
        assert m, issue["body"][:200]
        out[m.group(1)] = issue
    return out


def test_drift_with_nothing_changed_opens_no_issue(shop):
    run = shop.act("workflow_dispatch", "drift.yml", dispatch_event(shop.repo))
    assert all(v == "success" for v in run.jobs().values()), str(run)
    assert shop.gh.issues == {} and shop.gh.unexpected == []
    assert [c for c in shop.gh.calls() if not c.startswith("GET")] == []


def test_drift_outside_pulumi_is_one_issue_per_stack_naming_each_change(shop):
    docker = ["docker", "-H", os.environ["DOCKER_HOST"]]
    subprocess.run([*docker, "stop", f"{DEV_NAME}-worker-2"], check=True, capture_output=True)
    # Renamed by hand (Podman's Docker API has no `docker update`; a rename is a field change too).
    subprocess.run([*docker, "rename", f"{DEV_NAME}-beat", f"{DEV_NAME}-beat-by-hand"], check=True, capture_output=True)
    kubectl("-n", NAMESPACE, "scale", "deployment/worker", "--replicas=1")
    run = shop.act("workflow_dispatch", "drift.yml", dispatch_event(shop.repo))
    assert run.jobs()["drift issues"] == "success", str(run)
    issues = drift_issues(shop.gh)
    assert set(issues) == {"dev", "prod"}, issues.keys()
    dev, prod = issues["dev"]["body"], issues["prod"]["body"]
    assert all(i["state"] == "open" and i["labels"] == [{"name": "berth-drift"}] for i in issues.values())
    assert "worker-2" in dev and f"{DEV_NAME}-beat-by-hand" in dev, dev[:4000]
    assert re.search(r"worker-2.*(exited|missing|stopped)", dev, re.S), dev[:4000]
    # (A variable kubectl adds, `kubectl set env`, is kubectl's field alone: server-side apply reads
    # back Berth's fields, so it is not reported; CHANGELOG, Known issues.)
    assert re.search(r"worker.*replicas", prod, re.S), prod[:4000]
    secret_values = [str(v) for p in shop.stacks.values() for v in p.outputs(show_secrets=True).values()
                     if isinstance(v, str) and len(v) >= 12]
    for body in (dev, prod):
        assert not any(v in body for v in secret_values), "a secret output appears in a drift issue"


def test_drift_undone_closes_the_issues(shop):
    for p in shop.stacks.values():
        # README "Drift": fields kubectl changed are kubectl's until a forced apply takes them back.
        p.env_extra["PULUMI_K8S_ENABLE_PATCH_FORCE"] = "true"
        with kube.ingress_status_standin(), developer_venv(shop.repo):
            p.up("--refresh")  # README "Drift": the refresh reads the target first
    run = shop.act("workflow_dispatch", "drift.yml", dispatch_event(shop.repo))
    assert run.jobs()["drift issues"] == "success", str(run)
    assert {i["state"] for i in shop.gh.issues.values()} == {"closed"}, shop.gh.issues
    assert len(shop.gh.issues) == 2
