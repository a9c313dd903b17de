"""kube-score (github.com/zegl/kube-score v1.20.0) over what ``berth render`` writes for a stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .findings import Finding

VERSION = "v1.20.0"
INSTALL = (f"GOBIN=$PWD/.venv/bin go install github.com/zegl/kube-score/cmd/kube-score@{VERSION} "
           "(.ci/run installs it into $BERTH_CACHE/bin and links it there)")


def binary() -> str:
    for candidate in (Path(sys.executable).parent / "kube-score", shutil.which("kube-score")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.fail(f"kube-score not found: {INSTALL}", pytrace=False)


def score(stack: str, manifests: list[Path]) -> list[Finding]:
    """Every check kube-score grades below OK (and does not skip) for the manifests of ``stack``."""
    proc = subprocess.run([binary(), "score", "--output-format", "json", *map(str, manifests)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():  # 1: findings at CRITICAL
        raise AssertionError(f"kube-score failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = []
    for obj in json.loads(proc.stdout):
        labels = (obj.get("object_meta") or {}).get("labels") or {}
        for check in obj["checks"]:
            if check["skipped"] or check["grade"] >= 10:
                continue
            detail = "; ".join(sorted({c["summary"] for c in check.get("comments") or []}))
            out.append(Finding("kube-score", check["check"]["id"], stack, obj["type_meta"]["kind"],
                               obj["object_meta"]["name"], labels.get("app.kubernetes.io/component", ""), detail))
    return out
