"""Every system package a test asks for is installed by the one documented command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "system-packages.sh"
#: Essential packages every Debian machine has.
ESSENTIAL = {"util-linux", "coreutils"}


def installed_by_script() -> set[str]:
    m = re.search(r"^pkgs=\(([^)]*)\)", SCRIPT.read_text(), re.M)
    assert m, "no pkgs=(...) list in .ci/system-packages.sh"
    return set(m.group(1).split())


def test_every_tool_the_tests_need_is_installed_by_the_one_command():
    asked = set()
    for path in (ROOT / "tests").rglob("*.py"):
        asked |= set(re.findall(r'\btool\("[^"]+", "([^"]+)"\)', path.read_text()))
    assert asked, "no tool() calls found: the pattern is stale"
    missing = asked - installed_by_script() - ESSENTIAL
    assert not missing, f"tests need {sorted(missing)}: add them to .ci/system-packages.sh"


def test_ci_and_contributing_use_the_one_command():
    assert "bash .ci/system-packages.sh" in (ROOT / ".ci" / "run").read_text()
    assert ".ci/system-packages.sh" in (ROOT / "CONTRIBUTING.md").read_text()
