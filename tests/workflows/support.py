"""What the workflow tests share: the targets a runner reaches, a team's repository with its stacks
initialised in a state backend, and the workflow secrets a team would set (README, "Set up the
workflows in your repository")."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable, Optional

import pytest
import yaml

from tests.real import kube
from tests.real.pulumi_cli import PASSPHRASE, EngineMissing, Pulumi
from tests.workflows.act import TeamRepo


def require_act() -> None:
    missing = [f"{n} (eval \"$(bash .ci/act.sh env)\")" for n in ("BERTH_ACT", "BERTH_ACTIONS", "BERTH_ACT_TOOLCACHE")
               if not os.environ.get(n)]
    if missing:
        pytest.fail("the workflow tests need: " + "; ".join(missing), pytrace=False)


def require_targets() -> None:
    """Fail (never skip) unless every target a workflow reaches is up, saying what starts it."""
    missing = []
    if not os.environ.get("DOCKER_HOST"):
        missing.append("DOCKER_HOST (bash .ci/podman.sh start)")
    if not (os.environ.get("BERTH_SSH_KEY") and os.environ.get("BERTH_SSHD_PORT")):
        missing.append("the SSH Docker host (eval \"$(bash .ci/sshd.sh start \"$DOCKER_HOST\")\")")
    require_act()
    try:
        kube.check_cluster()
    except kube.ClusterMissing as e:
        missing.append(str(e))
    if missing:
        pytest.fail("the workflow tests need: " + "; ".join(missing), pytrace=False)


def stack_files(repo: Path) -> list[tuple[Path, str]]:
    """``(project dir, stack)`` of every ``Pulumi.<stack>.yaml`` beside a ``Pulumi.yaml``."""
    out = []
    for f in sorted(repo.glob("**/Pulumi.*.yaml")):
        if any(p.startswith(".") for p in f.relative_to(repo).parts) or not (f.parent / "Pulumi.yaml").exists():
            continue
        out.append((f.parent, f.name[len("Pulumi."):-len(".yaml")]))
    return out


def stack_config(project_dir: Path, stack: str) -> dict[str, Any]:
    return (yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}


def ssh_hosts(repo: Path) -> list[str]:
    """Host names of the stacks' ``ssh://`` Docker hosts."""
    hosts = set()
    for d, stack in stack_files(repo):
        host = str((stack_config(d, stack).get("berth:docker") or {}).get("host") or "")
        m = re.match(r"ssh://(?:[^@/]+@)?([^:/]+)", host)
        if m:
            hosts.add(m.group(1))
    return sorted(hosts)


def init_stacks(repo: TeamRepo, state: Path, only: Optional[Iterable[str]] = None) -> dict[str, Pulumi]:
    """``pulumi stack init`` of each stack in the backend the workflows use (what a team does once;
    it writes each stack's encryption salt into its stack file, which the team commits). A stack that
    reads another stack's outputs gets a stand-in of that stack (it would have been deployed first)."""
    out = {}
    try:
        for d, stack in stack_files(repo.path):
            name = stack if d == repo.path else f"{d.name}-{stack}"
            if only is not None and name not in only:
                continue
            p = Pulumi(d, stack, state, env_extra=kube.kube_env())
            p.init()
            out[name] = p
        # Then the outputs other stacks read (a referenced stack may be one of the repository's).
        for name, p in out.items():
            p.stand_in_referenced_stacks(stack_config(p.project_dir, p.stack))
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    return out


def secrets(state: Path, repo: Path, token: str) -> dict[str, str]:
    """The repository secrets of README's "Set up the workflows in your repository", for this machine:
    the state backend, the SSH deploy key and host key of the SSH Docker host (.ci/sshd.sh, on
    127.0.0.1, which SSH_CONFIG maps the stacks' host names to), the test cluster's kubeconfig."""
    port = os.environ["BERTH_SSHD_PORT"]
    hosts = ssh_hosts(repo)
    ssh_config = f"Host {' '.join(hosts)}\n  HostName 127.0.0.1\n  Port {port}\n" if hosts else ""
    return {
        "PULUMI_BACKEND_URL": f"file://{state / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "SSH_PRIVATE_KEY": Path(os.environ["BERTH_SSH_KEY"]).read_text(),
        "SSH_KNOWN_HOSTS": Path(os.environ["BERTH_SSH_KNOWN_HOSTS"]).read_text(),
        "SSH_CONFIG": ssh_config,
        "KUBECONFIG": Path(kube.kube_env()["KUBECONFIG"]).read_text(),
        "GITHUB_TOKEN": token,
    }


def artifacts(server_path: Path) -> dict[str, dict[str, bytes]]:
    """``{artifact name: {file: content}}`` of everything uploaded to act's artifact server."""
    out: dict[str, dict[str, bytes]] = {}
    for z in sorted(server_path.rglob("*.zip")):
        with zipfile.ZipFile(io.BytesIO(z.read_bytes())) as f:
            out[z.stem] = {n: f.read(n) for n in f.namelist() if not n.endswith("/")}
    return out
