"""Run the real ``pulumi`` CLI on a project, the way a user does (test harness, not product code).

CI puts the engine on PATH (``eval "$(bash .ci/engine.sh env)"``): the CLI and the kubernetes,
random, tls and docker plugins built from ../shared/engine, and the stand-in language host. Each
``Pulumi`` object keeps its state in a local file backend under a directory the test owns
(``PULUMI_BACKEND_URL=file://...``, a passphrase secrets provider), so nothing outside the test's
temporary directories is touched and nothing is sent anywhere.

Nothing here starts or skips anything: without the engine a test fails and says how to build it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
PASSPHRASE = "berth-test-passphrase"


class EngineMissing(RuntimeError):
    """The real engine is not on PATH."""


def engine_or_fail() -> str:
    """The ``pulumi`` binary on PATH, or a failure that says how CI provides it."""
    path = shutil.which("pulumi")
    if not path or not shutil.which("pulumi-language-python") or not shutil.which("pulumi-resource-kubernetes"):
        raise EngineMissing(
            "the real Pulumi engine is not on PATH: run `bash .ci/engine.sh build` and "
            "`eval \"$(bash .ci/engine.sh env)\"` first (.ci/run does both)"
        )
    return path


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def errors(self) -> list[str]:
        """Every ``error:`` line of the output with the resource line it belongs to: the cause of a
        failed update can sit far above a long tail (the language host's traceback when the engine
        cancels the program)."""
        found, lines = [], self.output.splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("error:"):
                before = lines[i - 1].strip() if i and lines[i - 1].strip().endswith("):") else ""
                found.append(f"{before} {line.strip()}".strip())
        return found

    def __str__(self) -> str:
        errors = "\n".join(self.errors()[:40])
        return (f"`pulumi {' '.join(self.args)}` exited {self.returncode} after {self.seconds:.1f}s\n"
                f"--- errors\n{errors}\n"
                f"--- stdout (tail)\n{self.stdout[-6000:]}\n--- stderr (tail)\n{self.stderr[-4000:]}")


class PulumiError(AssertionError):
    def __init__(self, result: Result):
        super().__init__(str(result))
        self.result = result


def write_project(directory: Path, name: str, main: str = "import berth\n\nberth.main()\n",
                  description: str = "Berth test project") -> Path:
    """A Pulumi project in ``directory`` running under the repository's virtualenv (Berth installed)."""
    directory.mkdir(parents=True, exist_ok=True)
    project = {
        "name": name,
        "description": description,
        "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(VENV)}},
    }
    (directory / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    (directory / "__main__.py").write_text(main)
    return directory


def write_stack_config(directory: Path, stack: str, config: dict[str, Any], header: str = "") -> Path:
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(header + yaml.safe_dump({"config": config}, sort_keys=True))
    return path


# ------------------------------------------------------------------ one test stack per place
# Berth refuses a *different* stack on a namespace or Docker prefix another stack owns, but two tests
# that deploy the same project and stack name (e.g. "prod") into the same place would share it
# silently. Every successful `up` therefore claims the place it landed on for its stack (one claim file
# per place, for the whole pytest run, across xdist workers); a second test stack that deploys there
# while the claim stands fails the test that did it. A destroy gives the place back.

_RUN = uuid.uuid4().hex  # this process's run, when xdist does not name one shared by its workers


def claims_dir() -> Path:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or _RUN
    return Path(os.environ.get("BERTH_TEST_CLAIMS", tempfile.gettempdir())) / f"berth-test-claims-{run}"


def landing(config: dict[str, Any], project: str, stack: str, docker_host: Optional[str]) -> Optional[str]:
    """Where a Berth stack's objects land: its Kubernetes namespace, or its Docker host and prefix (the
    default namespace and prefix is ``<project>-<stack>``); None for a program without berth:target."""
    target = config.get("berth:target")
    if target is None:
        return None
    prefix = config.get("berth:name") or f"{project}-{stack}"
    if target == "kubernetes":
        return f"kubernetes namespace {(config.get('berth:kubernetes') or {}).get('namespace') or prefix}"
    host = (config.get("berth:docker") or {}).get("host") or docker_host or "unix:///var/run/docker.sock"
    return f"docker host {host} prefix {prefix}"


def _claim_file(place: str) -> Path:
    return claims_dir() / hashlib.sha256(place.encode()).hexdigest()[:24]


def _holder(f: Path) -> str:
    return f.read_text().split("\n", 1)[0]


class SharedPlace(AssertionError):
    """Two test stacks deployed into one namespace or Docker prefix."""


def claim(place: str, owner: str) -> None:
    """Record that ``owner`` (a state directory and stack) deployed into ``place``; fail when another
    owner's claim stands."""
    f = _claim_file(place)
    f.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        held = _holder(f)
        if held != owner:
            raise SharedPlace(f"two test stacks deployed into {place}: {held} and {owner}; give each test "
                              "stack its own namespace or berth:name") from None
        return
    with os.fdopen(fd, "w") as out:
        out.write(f"{owner}\n{place}\n")


def release(place: str, owner: str) -> None:
    f = _claim_file(place)
    if f.exists() and _holder(f) == owner:
        f.unlink()


@dataclass
class Pulumi:
    """The CLI bound to one project directory, one stack and one private state directory."""

    project_dir: Path
    stack: str
    state_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    log: Optional[Any] = None
    history: list[Result] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.binary = engine_or_fail()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "backend").mkdir(exist_ok=True)
        (self.state_dir / "home").mkdir(exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PULUMI_HOME": str(self.state_dir / "home"),
            "PULUMI_BACKEND_URL": f"file://{self.state_dir / 'backend'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "PULUMI_LH_PYTHON": str(VENV / "bin" / "python"),
            # `--event-log` (where policy violations are written) is a debug command of the CLI.
            "PULUMI_DEBUG_COMMANDS": "true",
            "NO_COLOR": "1",
        })
        env.setdefault("PULUMI_LH_LOG", str(self.state_dir / "language-host.log"))
        env.update(self.env_extra)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 1200, input: Optional[str] = None,
            stack: bool = True, cwd: Optional[Path] = None) -> Result:
        """``pulumi ARGS`` (plus ``--stack`` unless ``stack=False``) in the project directory."""
        argv = [*args, "--non-interactive"] + (["--stack", self.stack] if stack else [])
        t0 = time.monotonic()
        proc = subprocess.run([self.binary, *argv], cwd=cwd or self.project_dir, env=self.env(), input=input,
                              capture_output=True, text=True, timeout=timeout)
        res = Result(list(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
        self.history.append(res)
        if args and args[0] in ("up", "destroy") and res.returncode == 0 and "--preview-only" not in args:
            place, owner = self.place(), f"{self.state_dir}::{self.stack}"
            if place and args[0] == "up":
                claim(place, owner)
            elif place:
                release(place, owner)
        if self.log:
            self.log(f"pulumi {' '.join(argv)} -> {res.returncode} in {res.seconds:.1f}s")
        if check and res.returncode != 0:
            raise PulumiError(res)
        return res

    def place(self) -> Optional[str]:
        """Where this stack lands (``landing``), from its stack file as the test wrote it."""
        path = self.project_dir / f"Pulumi.{self.stack}.yaml"
        project_file = self.project_dir / "Pulumi.yaml"
        if not path.exists() or not project_file.exists():
            return None
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        project = (yaml.safe_load(project_file.read_text()) or {}).get("name", "")
        return landing(config, project, self.stack, self.env().get("DOCKER_HOST"))

    # ------------------------------------------------------------------ stack lifecycle

    def init(self) -> Result:
        """Create the stack (passphrase secrets) or select it if it exists."""
        res = self.run("stack", "init", self.stack, "--secrets-provider", "passphrase", check=False, stack=False)
        if res.returncode != 0 and "already exists" not in res.output:
            raise PulumiError(res)
        return res

    def up(self, *extra: str, check: bool = True, timeout: float = 1500) -> Result:
        return self.run("up", "--yes", "--skip-preview", "--color", "never", "--suppress-progress", *extra,
                        check=check, timeout=timeout)

    def preview(self, *extra: str, check: bool = True, timeout: float = 900) -> Result:
        return self.run("preview", "--color", "never", "--suppress-progress", *extra, check=check, timeout=timeout)

    def preview_json(self, *extra: str, event_log: Optional[Path] = None, check: bool = False,
                     timeout: float = 900) -> tuple[Result, dict[str, Any]]:
        args = ["preview", "--json", *extra]
        if event_log is not None:
            args += ["--event-log", str(event_log)]
        res = self.run(*args, check=check, timeout=timeout)
        try:
            doc = json.loads(res.stdout) if res.stdout.strip() else {}
        except json.JSONDecodeError as e:
            raise AssertionError(f"preview --json printed no JSON document ({e}):\n{res}") from None
        return res, doc

    def expect_no_changes(self, *extra: str, timeout: float = 900) -> Result:
        """``pulumi preview --expect-no-changes`` (with the diff shown when it fails)."""
        return self.preview("--expect-no-changes", "--diff", *extra, timeout=timeout)

    def refresh(self, *extra: str, check: bool = True, timeout: float = 900) -> Result:
        return self.run("refresh", "--yes", "--skip-preview", "--color", "never", "--suppress-progress", *extra,
                        check=check, timeout=timeout)

    def destroy(self, *extra: str, check: bool = True, timeout: float = 1200) -> Result:
        return self.run("destroy", "--yes", "--skip-preview", "--color", "never", "--suppress-progress", *extra,
                        check=check, timeout=timeout)

    def outputs(self, show_secrets: bool = True) -> dict[str, Any]:
        args = ["stack", "output", "--json"] + (["--show-secrets"] if show_secrets else [])
        return self.run(*args).json()

    def export(self) -> dict[str, Any]:
        """The stack's state (``pulumi stack export --show-secrets``)."""
        return self.run("stack", "export", "--show-secrets").json()

    def resources(self) -> list[dict[str, Any]]:
        return self.export()["deployment"].get("resources") or []

    def config_set_all(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.run("config", "set", "--path", key, value if isinstance(value, str) else json.dumps(value))

    def stand_in_referenced_stacks(self, config: dict[str, Any]) -> None:
        """For a stack that reads another stack's outputs (``secret_env: {VAR: {from_stack, output}}``,
        a StackReference): the referenced stack is created in the same state backend with only those
        outputs (``pulumi stack import``), as if it had been deployed first."""
        from berth.record import referenced_outputs

        for ref, outputs in referenced_outputs(config).items():
            _org, project, stack = ref.split("/")
            made = self.run("stack", "init", ref, "--secrets-provider", "passphrase", stack=False, check=False)
            if made.returncode != 0 and "already exists" not in made.output:
                raise PulumiError(made)
            deployment = {"version": 3, "deployment": {
                "manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""},
                "resources": [{"urn": f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}",
                               "custom": False, "type": "pulumi:pulumi:Stack",
                               "outputs": {o: f"stand-in-{o}" for o in sorted(outputs)}}]}}
            path = self.state_dir / f"{stack}.deployment.json"
            path.write_text(json.dumps(deployment))
            self.run("stack", "import", "--stack", ref, "--file", str(path), stack=False)

    def rm_stack(self) -> None:
        self.run("stack", "rm", "--yes", "--force", self.stack, check=False, stack=False)


def changes(doc: dict[str, Any]) -> dict[str, list[str]]:
    """``{op: [urn-name, ...]}`` of a ``preview --json`` document, without the unchanged ones."""
    out: dict[str, list[str]] = {}
    for step in doc.get("steps") or []:
        op = step.get("op")
        if op in (None, "same"):
            continue
        out.setdefault(op, []).append(step.get("urn", "").rsplit("::", 1)[-1])
    return {k: sorted(v) for k, v in out.items()}


def mandatory_violations(events: Path) -> dict[str, list[str]]:
    """``{rule: [message, ...]}`` of the mandatory policy events in an engine event log (the only
    place the CLI writes policy violations; ../shared/PREVIEW-JSON.md)."""
    out: dict[str, list[str]] = {}
    for line in events.read_text().splitlines():
        ev = json.loads(line).get("policyEvent")
        if ev and ev.get("enforcementLevel") == "mandatory":
            out.setdefault(ev["policyName"], []).append(ev.get("message", ""))
    return out


def by_type(resources: Sequence[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in resources if r.get("type") == type_]
