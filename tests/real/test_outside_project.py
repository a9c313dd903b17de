"""A team's own project, outside this repository, with Berth installed as a package (not editable).

The project is what the README's "Install Berth in your own project" describes: ``Pulumi.yaml``
(``virtualenv: venv`` here), ``Pulumi.dev.yaml``, the two-line ``__main__.py`` and one requirements
line, ``berth @ file:///...`` (the README's path form; tests/docs/test_readme.py installs its commit
form and runs its blocks without the engine). The file is a copy of this checkout's files as git sees them (tracked, and
new files not ignored: what a commit would carry; no ``.venv``, no ``*.egg-info``, no ``build/``),
so the install proves the package is complete from the repository alone (the backup image's
Dockerfile, ``py.typed``, the policy pack's files) and nothing is written into the checkout.

In that project, with a fresh ``python3 -m venv`` and ``pip install -r requirements.txt`` (Berth's
pinned dependencies come from the package index, quickly from pip's cache): ``berth --version``,
``berth render -s dev``, no top-level ``components`` / ``policies`` / ``rules`` package, ``berth
policy-pack`` inside the venv's site-packages, then the real engine: ``pulumi preview`` of a small
Docker stack (local test images, the proxy on free loopback ports with ``resolver: null``), the
same with ``--policy-pack "$(berth policy-pack)"``, and a preview of the README's hand-written
program (Berth components next to a raw pulumi-docker container) with the pack.

CI provides the engine (``eval "$(bash .ci/engine.sh env)"``), Podman's Docker API (``DOCKER_HOST``)
and the images (tests/images/build.sh). Nothing here starts or skips anything.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import berth
from berth.record import ROOT
from tests.real.pulumi_cli import EngineMissing, Pulumi, changes
from tests.unit.test_public_api import readme_program

pytestmark = pytest.mark.real_docker

STACK = "dev"
IMAGES = {"postgres": "localhost/berth-postgres:15", "app": "localhost/berth-testapp:1", "nginx": "localhost/berth-nginx:1"}
TIMINGS: dict[str, float] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Outside:
    base: Path
    project: Path
    venv: Path
    site_packages: Path
    env: dict[str, str]
    ports: tuple[int, int]
    facts: dict[str, Any] = field(default_factory=dict)

    def run(self, *argv: str, cwd: Path | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(argv), cwd=cwd or self.project, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def pulumi(self, project: Path, state: str) -> Pulumi:
        try:
            return Pulumi(project, STACK, self.base / state, env_extra={
                "PATH": self.env["PATH"],  # python3 for the policy pack: the project's venv
                "PULUMI_LH_LOG": str(self.base / f"{state}-language-host.log"),
                "PULUMI_DEBUG_COMMANDS": "1",  # the CLI (v3.274) accepts --event-log only with it
            })
        except EngineMissing as e:
            pytest.fail(str(e), pytrace=False)


def checkout_copy(dest: Path) -> Path:
    """This checkout's files as git sees them (tracked + new not ignored), copied to ``dest``."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the work tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def stack_config(http_port: int, https_port: int) -> dict[str, Any]:
    return {
        "berth:target": "docker",
        "berth:name": "outside",
        "berth:databases": {"db": {"image": IMAGES["postgres"], "storage": "1Gi"}},
        "berth:services": {"api": {"image": IMAGES["app"], "port": 8000, "uses": ["db"]}},
        "berth:proxy": {
            "image": IMAGES["nginx"],
            "resolver": None,  # the test image's nginx is 1.22 (see tests/real/stacks/realdev.py)
            "bind_address": "127.0.0.1",
            "http_port": http_port,
            "https_port": https_port,
            "routes": [{"path": "/", "service": "api"}],
        },
    }


def write_project(directory: Path, name: str, main: str, config: dict[str, Any], virtualenv: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": name,
        "description": "A team's project using Berth as a package",
        "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": virtualenv}},
    }, sort_keys=False))
    (directory / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=True))
    (directory / "__main__.py").write_text(main)


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Outside:
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("DOCKER_HOST is not set: start Podman's Docker API (bash .ci/podman.sh start)", pytrace=False)
    base = tmp_path_factory.mktemp("outside-project")
    assert ROOT not in base.parents, f"{base} must be outside the repository {ROOT}"
    t0 = time.monotonic()
    src = checkout_copy(base / "berth-checkout")
    TIMINGS["copy checkout"] = time.monotonic() - t0

    project = base / "shop"
    http_port, https_port = free_port(), free_port()
    write_project(project, "shop", "import berth\nberth.main()\n", stack_config(http_port, https_port), "venv")
    (project / "requirements.txt").write_text(f"berth @ {src.as_uri()}\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    venv = project / "venv"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    python3 = shutil.which("python3") or sys.executable
    t0 = time.monotonic()
    subprocess.run([python3, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    TIMINGS["python3 -m venv"] = time.monotonic() - t0
    t0 = time.monotonic()
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "-r",
                          "requirements.txt"], cwd=project, env=env, capture_output=True, text=True, timeout=900)
    TIMINGS["pip install -r requirements.txt"] = time.monotonic() - t0
    assert pip.returncode == 0, f"pip install failed:\n{pip.stdout[-3000:]}\n{pip.stderr[-5000:]}"

    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             env=env, capture_output=True, text=True, check=True).stdout.strip()
    out = Outside(base, project, venv, Path(purelib), env, (http_port, https_port))
    yield out
    print("outside-project timings (s): " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


# ---------------------------------------------------------------- the installed package


def test_berth_is_installed_from_the_checkout_not_editable(outside):
    probe = (
        "import berth, json, importlib.metadata as md\n"
        "d = md.distribution('berth')\n"
        "print(json.dumps({'file': berth.__file__, 'version': d.version,\n"
        "                  'direct_url': json.loads(d.read_text('direct_url.json') or '{}')}))\n"
    )
    info = json.loads(outside.run(outside.bin("python"), "-c", probe).stdout)
    assert Path(info["file"]).parent == outside.site_packages / "berth", info
    assert info["version"] == berth.__version__
    assert info["direct_url"]["url"].startswith("file://"), info
    assert not info["direct_url"].get("dir_info", {}).get("editable"), info


def test_package_data_is_complete(outside):
    """Every file of berth/, components/ and policies/ in the checkout is installed (code and data:
    a new data file missing from pyproject.toml's package-data fails here)."""
    pkg = outside.site_packages / "berth"
    where = {"berth": pkg, "components": pkg / "components", "policies": pkg / "policies"}
    checkout = outside.base / "berth-checkout"
    files = [p.relative_to(checkout) for top in where for p in (checkout / top).rglob("*") if p.is_file()]
    missing = [str(f) for f in files if not (where[f.parts[0]].joinpath(*f.parts[1:])).is_file()]
    assert len(files) > 60 and not missing, f"not installed: {missing}"
    for rel in ["py.typed", "components/images/backup/Dockerfile", "policies/PulumiPolicy.yaml", "api.py"]:
        assert (pkg / rel).is_file(), rel


def test_berth_version(outside):
    res = outside.run(outside.bin("berth"), "--version")
    assert res.stdout.strip() == f"berth {berth.__version__}"


@pytest.mark.parametrize("module", ["components", "policies", "rules"])
def test_no_top_level_package_but_berth(outside, module):
    res = outside.run(outside.bin("python"), "-c", f"import {module}", check=False)
    assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr, (module, res.stdout, res.stderr)
    assert not (outside.site_packages / module).exists()


def test_berth_render_in_the_project(outside):
    res = outside.run(outside.bin("berth"), "render", "-s", STACK)
    assert "rendered shop/dev" in res.stdout, res.stdout
    out = outside.project / "build" / STACK
    index = json.loads((out / "index.json").read_text())
    assert index["counts"]["other"] >= 8, index["counts"]
    names = {p.name for p in (out / "resources").iterdir()}
    assert any("container" in n and "db" in n for n in names), sorted(names)


def test_berth_policy_pack_is_in_the_venv(outside):
    res = outside.run(outside.bin("berth"), "policy-pack")
    pack = Path(res.stdout.strip())
    assert pack == outside.site_packages / "berth" / "policies", pack
    assert (pack / "PulumiPolicy.yaml").is_file()
    outside.facts["pack"] = pack


# ---------------------------------------------------------------- the real engine


def program_python(log: Path) -> list[str]:
    """The interpreters the language host ran the program with (its ``Run`` lines)."""
    return [line.split("Run ", 1)[1].split()[0] for line in log.read_text().splitlines() if "] Run /" in line]


def mandatory(events: Path) -> list[str]:
    out = []
    for line in events.read_text().splitlines():
        ev = json.loads(line).get("policyEvent")
        if ev and ev.get("enforcementLevel") == "mandatory":
            out.append(f"{ev['policyName']}: {ev['message'][:300]}")
    return out


def passed(events: Path, name: str) -> set[str]:
    """The rules the pack passed for resource ``name`` (its ``policyAnalyzeSummaryEvent``)."""
    out: set[str] = set()
    for line in events.read_text().splitlines():
        ev = json.loads(line).get("policyAnalyzeSummaryEvent")
        if ev and ev.get("resourceUrn", "").endswith(f"::{name}"):
            out.update(ev.get("passed") or [])
    return out


def policy_config(outside: Outside) -> Path:
    """The proxy publishes the free test ports instead of 80/443."""
    path = outside.base / "policy-config.json"
    path.write_text(json.dumps({"docker-container-host-ports-proxy-only": {"allowedHostPorts": list(outside.ports)}}))
    return path


def test_pulumi_preview_of_the_two_line_program(outside):
    p = outside.pulumi(outside.project, "state-shop")
    p.init()
    t0 = time.monotonic()
    res, doc = p.preview_json()
    TIMINGS["pulumi preview (stack config)"] = time.monotonic() - t0
    errors = [d["message"] for d in doc.get("diagnostics") or [] if d.get("severity") == "error"]
    assert res.returncode == 0 and not errors, f"{errors}\n{res}"
    created = changes(doc).get("create", [])
    for name in ["shop-dev", "db", "api", "proxy", "internal", "edge"]:
        assert name in created, (name, created)
    # The program ran under the project's virtualenv (Berth installed there), not the repository's.
    assert program_python(outside.base / "state-shop-language-host.log") == [str(outside.venv / "bin" / "python")]


def test_pulumi_preview_with_the_installed_policy_pack(outside):
    pack = outside.facts.get("pack") or Path(outside.run(outside.bin("berth"), "policy-pack").stdout.strip())
    p = outside.pulumi(outside.project, "state-shop")
    p.init()
    events = outside.base / "shop-policy.events.ndjson"
    t0 = time.monotonic()
    res, doc = p.preview_json("--policy-pack", str(pack), "--policy-pack-config", str(policy_config(outside)),
                              event_log=events)
    TIMINGS["pulumi preview --policy-pack (stack config)"] = time.monotonic() - t0
    assert res.returncode == 0 and not mandatory(events), f"{mandatory(events)}\n{res}"
    log = (outside.base / "state-shop-language-host.log").read_text()
    analyzer = [line for line in log.splitlines() if "RunPlugin kind=analyzer" in line]
    assert analyzer and f"{outside.venv / 'bin' / 'python3'} -u -m pulumi.policy" in analyzer[-1], analyzer
    assert f"cwd={pack}" in analyzer[-1], analyzer
    assert "create" in (doc.get("changeSummary") or {}), doc.get("changeSummary")
    # The pack judged the proxy with the given config (its free host ports are allowed there).
    assert {"docker-container-host-ports-proxy-only", "docker-container-non-root-user"} <= passed(events, "proxy")


def test_pulumi_preview_of_the_readme_program(outside):
    """The README's hand-written program (Berth components + a raw container), as a project of its own."""
    project = outside.base / "readme-program"
    write_project(project, "shop-readme", readme_program(), {
        "shop:postgres-image": IMAGES["postgres"], "shop:api-image": IMAGES["app"], "shop:report-image": IMAGES["app"],
    }, str(outside.venv))
    p = outside.pulumi(project, "state-readme")
    p.init()
    events = outside.base / "readme.events.ndjson"
    pack = Path(outside.run(outside.bin("berth"), "policy-pack").stdout.strip())
    t0 = time.monotonic()
    res, doc = p.preview_json("--policy-pack", str(pack), event_log=events)
    TIMINGS["pulumi preview --policy-pack (README program)"] = time.monotonic() - t0
    errors = [d["message"] for d in doc.get("diagnostics") or [] if d.get("severity") == "error"]
    assert res.returncode == 0 and not errors and not mandatory(events), f"{errors}\n{mandatory(events)}\n{res}"
    created = changes(doc).get("create", [])
    for name in ["db", "api", "report", "report-image", "internal"]:
        assert name in created, (name, created)
    assert program_python(outside.base / "state-readme-language-host.log") == [str(outside.venv / "bin" / "python")]
    # The raw container is judged like Berth's own: as written in the README it passes the rules.
    assert {"docker-container-non-root-user", "docker-container-no-plaintext-secret-env",
            "docker-container-memory-limit", "docker-container-capabilities-allow-list",
            "docker-container-healthcheck"} <= passed(events, "report")
