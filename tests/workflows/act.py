"""Run Berth's GitHub workflows for real with ``act`` on this machine (test harness, not product code).

``.ci/act.sh build`` provides act, the pinned actions (snapshots, their bundles built) and a tool
cache for actions/setup-python; ``eval "$(bash .ci/act.sh env)"`` names them. A workflow runs here as
on a GitHub-hosted runner as far as a job can tell:
- the repository under test is a git repository of its own (``TeamRepo``: the files of this checkout,
  or a team's project), with an ``origin`` on github.com, so ``github.repository`` is what a team's is;
- every job gets a fresh workspace and ``RUNNER_TEMP`` (act's host mode copies the repository into a
  new folder when a job runs actions/checkout), and only the environment a runner has: PATH with the
  system tools, the Pulumi CLI and its plugins (what pulumi/actions finds instead of downloading), a
  ``HOME`` of its own, a local Docker engine (``DOCKER_HOST``, as the runner's own). No kubeconfig,
  no SSH key, no Pulumi secret: those come from the workflow's secrets, as on GitHub;
- each ``uses: owner/repo@sha`` resolves to the vendored snapshot of exactly that commit; a pin with
  no snapshot fails the test (what runs here is what the workflow pins);
- artifacts go through act's artifact server, the REST API to ``tests/workflows/github_api.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


class ActMissing(RuntimeError):
    pass


def _env_or_fail(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ActMissing(f"{name} is not set: run `bash .ci/act.sh build` and `eval \"$(bash .ci/act.sh env)\"` "
                         "(.ci/run does both)")
    return value


def pinned_actions(workflow: Path) -> list[tuple[str, str]]:
    """``(owner/repo, sha)`` of every ``uses:`` in a workflow file (local ``./`` actions excluded)."""
    found = re.findall(r"^\s*(?:-\s*)?uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})\b", workflow.read_text(), re.M)
    return sorted(set(found))


def local_repositories(files: list[Path]) -> list[str]:
    """``--local-repository`` arguments mapping each action pinned in ``files`` (workflows and local
    composite actions) to its snapshot of that commit."""
    table = [line.split("\t") for line in Path(_env_or_fail("BERTH_ACTIONS")).read_text().splitlines() if line]
    mapping: dict[str, str] = {}
    for f in files:
        for repo, sha in pinned_actions(f):
            match = [d for r, prefix, d in table if r == repo and sha.startswith(prefix)]
            if not match:
                have = [f"{r}@{p}" for r, p, _ in table if r == repo] or ["none"]
                raise AssertionError(f"{f.name} pins {repo}@{sha}, but the snapshot tested here is {have}: "
                                     "pin the commit that is tested")
            mapping[f"{repo}@{sha}"] = match[0]
    return [arg for ref, d in sorted(mapping.items()) for arg in ("--local-repository", f"{ref}={d}")]


def _go_env(name: str) -> str:
    go = shutil.which("go")
    return subprocess.run([go, "env", name], capture_output=True, text=True).stdout.strip() if go else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TeamRepo:
    """A git repository holding a copy of this checkout's files (as a team's repository would)."""

    path: Path
    owner: str = "acme"
    name: str = "shop"

    @classmethod
    def copy_of_checkout(cls, path: Path, exclude: tuple[str, ...] = ()) -> "TeamRepo":
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
        for rel in filter(None, files):
            src = REPO / rel
            if not src.is_file() or any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude):
                continue
            dst = path / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        repo = cls(path)
        repo.git("init", "-q", "-b", "main")
        repo.git("remote", "add", "origin", f"https://github.com/{repo.owner}/{repo.name}.git")
        repo.commit("Initial import")
        return repo

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
               "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
        return subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def pull_request_event(self, number: int, head_sha: str, branch: str = "feature") -> dict[str, Any]:
        repo = {"full_name": self.full_name, "name": self.name, "owner": {"login": self.owner}}
        return {
            "action": "synchronize",
            "number": number,
            "pull_request": {"number": number, "head": {"sha": head_sha, "ref": branch, "repo": repo},
                             "base": {"ref": "main", "repo": repo}},
            "repository": repo,
        }


@dataclass
class ActRun:
    argv: list[str]
    returncode: int
    lines: list[dict[str, Any]]
    seconds: float
    raw: str = ""

    def jobs(self) -> dict[str, str]:
        """``{job name: success|failure|skipped}`` as act reports each job's end."""
        out: dict[str, str] = {}
        for line in self.lines:
            if line.get("jobResult"):
                out[self._job(line)] = line["jobResult"]
        return out

    @staticmethod
    def _job(line: dict[str, Any]) -> str:
        # act names a job "<workflow name>/<job name>" in its JSON log, a matrix job "preview (dev)-1"
        # (its index in the matrix), and pads the names of a run to one width.
        name = str(line.get("job", "?")).split("/", 1)[-1].strip()
        return re.sub(r"\)-\d+$", ")", name)

    def log(self, job: Optional[str] = None) -> str:
        """The output of one job (all jobs when ``job`` is None), as act printed it."""
        return "\n".join(str(line.get("msg", "")).rstrip() for line in self.lines
                         if job is None or self._job(line) == job)

    def __str__(self) -> str:
        return (f"act exited {self.returncode} after {self.seconds:.0f}s; jobs: {self.jobs()}\n"
                f"--- log (tail)\n{self.log()[-12000:]}")


@dataclass
class Act:
    """act on a repository, with a runner environment and an artifact server of its own."""

    repo: TeamRepo
    work: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    concurrent_jobs: int = 2
    #: "deploy": a runner with the Pulumi CLI and a Docker engine of its own (what the preview, deploy
    #: and drift jobs reach); "hosted": a bare GitHub-hosted runner (ci.yml).
    runner: str = "deploy"

    def __post_init__(self) -> None:
        self.binary = _env_or_fail("BERTH_ACT")
        self.toolcache = Path(_env_or_fail("BERTH_ACT_TOOLCACHE"))
        self.home = self.work / "home"
        self.cache = self.work / "act-cache"
        self.artifacts = self.work / "artifacts"
        for d in (self.home, self.cache, self.artifacts):
            d.mkdir(parents=True, exist_ok=True)
        # act's host mode takes RUNNER_TOOL_CACHE from its action cache folder.
        if not (self.cache / "tool_cache").exists():
            (self.cache / "tool_cache").symlink_to(self.toolcache)

    def runner_env(self) -> dict[str, str]:
        """What a runner's processes see before any step: no credentials of any kind."""
        system = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        env = {
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "USER": os.environ.get("USER", "runner"),
            # Warm caches, as setup-python's `cache: pip` and a runner's Go module cache give on GitHub.
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "GOMODCACHE": _go_env("GOMODCACHE"),
            "GOCACHE": _go_env("GOCACHE"),
        }
        if self.runner == "hosted":
            env["PATH"] = ":".join(system)
        else:
            engine = os.environ.get("BERTH_ENGINE_BIN", "")
            host = next((p for p in os.environ.get("PATH", "").split(":")
                         if (Path(p) / "pulumi-language-python").exists()), "")
            env.update({
                "PATH": ":".join(p for p in (engine, host, *system) if p),
                # The runner's own Docker engine (a GitHub-hosted runner has one at the default socket).
                "DOCKER_HOST": os.environ.get("DOCKER_HOST", ""),
                # The engine built on this machine: its plugins cannot be downloaded here, and the Python
                # language host is a stand-in that runs on this interpreter (users' CLI ships the real one).
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_LH_PYTHON": str(REPO / ".venv" / "bin" / "python"),
            })
        env.update(self.env_extra)
        return {k: v for k, v in env.items() if v}

    def run(self, event_name: str, workflow: str, event: dict[str, Any], secrets: dict[str, str],
            *extra: str, api_url: Optional[str] = None, timeout: float = 1800) -> ActRun:
        wf = WORKFLOWS / workflow
        event_file = self.work / f"event-{event_name}.json"
        event_file.write_text(json.dumps(event))
        argv = [
            self.binary, event_name,
            "-W", f".github/workflows/{workflow}",
            "-P", "ubuntu-latest=-self-hosted",
            "-e", str(event_file),
            "--json",
            "--action-offline-mode",
            "--action-cache-path", str(self.cache),
            "--artifact-server-path", str(self.artifacts),
            "--artifact-server-addr", "127.0.0.1",
            "--artifact-server-port", str(free_port()),
            "--cache-server-addr", "127.0.0.1",
            "--cache-server-path", str(self.work / "cache-server"),
            "--concurrent-jobs", str(self.concurrent_jobs),
            *local_repositories([self.repo.path / ".github" / "workflows" / workflow,
                                 *sorted((self.repo.path / ".github" / "actions").glob("*/action.yml"))]),
        ]
        if api_url:
            argv += ["--env", f"GITHUB_API_URL={api_url}"]
        for name, value in secrets.items():
            argv += ["-s", f"{name}={value}"]
        argv += list(extra)
        assert wf.exists() or (self.repo.path / ".github/workflows" / workflow).exists(), workflow
        t0 = time.monotonic()
        proc = subprocess.run(argv, cwd=self.repo.path, env=self.runner_env(), capture_output=True, text=True,
                              timeout=timeout)
        lines = []
        for raw in proc.stdout.splitlines() + proc.stderr.splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"msg": raw})
        shown = [a if not a.startswith(tuple(f"{k}=" for k in secrets)) else a.split("=", 1)[0] + "=***"
                 for a in argv]
        return ActRun(shown, proc.returncode, lines, time.monotonic() - t0, proc.stdout[-2000:] + proc.stderr[-2000:])
