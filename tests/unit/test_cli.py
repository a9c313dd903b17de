"""The `berth` command itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from berth import __version__
from berth.cli import main


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"berth {__version__}"


def test_version_from_the_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "berth", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"berth {__version__}"
    assert __version__ and __version__[0].isdigit()
