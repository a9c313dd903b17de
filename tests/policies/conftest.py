"""Make the policy pack's `rules` package (as the CLI runs the pack: its folder on sys.path) and the policy test helpers importable."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
for path in (ROOT / "policies", pathlib.Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
