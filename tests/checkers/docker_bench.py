"""Docker's own CIS benchmark checker (docker-bench-security, ../shared/vendor), section 5 (container
runtime), over the containers of one stack deployed on Docker Engine.

The script asks the daemon with the ``docker`` CLI (``DOCKER_HOST`` names the daemon) and writes a
JSON log; every check it WARNs about is a finding for each container it names (``5.29`` for
``shop-api``). Only the stack's containers are checked (``-t berth.stack=<prefix>``); INFO and NOTE
lines (manual checks) are not findings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from berth.record import ROOT

from .findings import Finding

COMMIT = "ff26d67f25be"  # vendor/SOURCES.md
CACHE = Path(os.environ.get("BERTH_CACHE", "/var/cache/berth"))


def tarball() -> Path:
    shared = Path(os.environ.get("BERTH_SHARED") or ROOT.parent / "shared")
    path = shared / "vendor" / "docker-bench-security.tar.gz"
    if not path.exists():
        pytest.fail(f"{path} not found: docker-bench-security comes from ../shared/vendor beside the checkout "
                    "(or BERTH_SHARED)", pytrace=False)
    return path


def script() -> Path:
    """The checker, unpacked once into $BERTH_CACHE."""
    home = CACHE / f"docker-bench-security-{COMMIT}"
    found = sorted(home.glob("*/docker-bench-security.sh"))
    if not found:
        home.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball()) as tar:
            tar.extractall(home, filter="data")
        found = sorted(home.glob("*/docker-bench-security.sh"))
    assert found, f"no docker-bench-security.sh in {tarball()}"
    return found[0]


def run(host: str, prefix: str, stack: str, client) -> list[Finding]:
    """docker-bench-security -c container_runtime over the containers labelled ``berth.stack=prefix``
    on ``host``; ``client`` (the docker SDK's) gives each container's ``berth.role`` label."""
    if not shutil.which("docker"):
        pytest.fail("the docker CLI is not on PATH (docker-bench-security runs it): apt-get install docker.io",
                    pytrace=False)
    sh = script()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"docker-bench-{prefix}-{os.getpid()}.log"
    env = {**os.environ, "DOCKER_HOST": host}
    proc = subprocess.run(["sh", sh.name, "-b", "-c", "container_runtime", "-t", f"berth.stack={prefix}",
                           "-l", str(log)], cwd=sh.parent, env=env, capture_output=True, text=True, timeout=900)
    report = Path(f"{log}.json")
    if proc.returncode != 0 or not report.exists():
        raise AssertionError(f"docker-bench-security failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-2000:]}")
    doc = json.loads(report.read_text())
    roles = {c.name: c.labels.get("berth.role", "") for c in
             client.containers.list(all=True, filters={"label": f"berth.stack={prefix}"})}
    assert roles, f"no container labelled berth.stack={prefix} on {host}"
    findings = []
    for section in doc["tests"]:
        for result in section["results"]:
            if result["result"] != "WARN":
                continue
            items = result.get("items") or [""]
            for item in items:
                name = item.split(":", 1)[0]
                findings.append(Finding("docker-bench", result["id"], stack, "Container",
                                        name.removeprefix(f"{prefix}-"), roles.get(name, ""),
                                        f"{result['desc']}: {item}"))
    log.unlink(missing_ok=True)
    report.unlink(missing_ok=True)
    return findings
