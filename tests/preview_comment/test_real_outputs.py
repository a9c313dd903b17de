"""The PR comment from what the real CLI (v3.274.1) wrote: `pulumi preview --json --event-log` of
Berth's stacks deployed on the real targets (fixtures/real_*.gz, written by
fixtures/capture_real.py; the CI run renders fresh ones as well, tests/workflows/test_preview_workflow.py)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from berth.preview import load_stack, render_comment

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def real(name: str, tmp_path: Path) -> tuple[str, str]:
    """The preview document and event log of capture ``name``, unpacked into ``tmp_path``."""
    out = []
    for suffix in (".json", ".events.ndjson"):
        src = FIXTURES / f"real_{name}{suffix}.gz"
        dst = tmp_path / f"{name}{suffix}"
        dst.write_bytes(gzip.decompress(src.read_bytes()))
        out.append(str(dst))
    return out[0], out[1]


def comment_for(tmp_path: Path, **stacks: str) -> str:
    return render_comment([load_stack(label, *real(name, tmp_path)) for label, name in stacks.items()])


def test_the_captures_are_real_cli_documents(tmp_path):
    preview, events = real("dev_image_bump", tmp_path)
    doc = json.loads(Path(preview).read_text())
    assert set(doc) >= {"steps", "changeSummary", "duration", "config"}
    kinds = {next(iter(k for k in json.loads(line) if k not in ("sequence", "timestamp")))
             for line in Path(events).read_text().splitlines()}
    assert {"preludeEvent", "resourcePreEvent", "summaryEvent"} <= kinds, kinds


def test_an_image_and_env_change_shows_the_plain_values_and_no_secret(tmp_path):
    text = comment_for(tmp_path, dev=("dev_image_bump"))
    assert "ok" in text.split("\n### dev")[1].split("\n")[0]
    assert "stateful resources will be replaced" not in text, "an image bump flags no data"
    for name in ("api", "worker-1", "worker-2", "beat"):
        assert re.search(rf"replace <code>docker:index/container:Container</code> <b>{name}</b>", text), name
    # The plain env change and the image tag are visible (plain labels), the secret values are not.
    assert '"LOG_LEVEL=info"` → `"LOG_LEVEL=debug"' in text
    assert '"localhost/berth-testapp:1"` → `"localhost/berth-testapp:2"' in text
    assert "postgresql://" not in text and "redis://" not in text


def test_renaming_the_stack_flags_the_database_volume_replacement(tmp_path):
    text = comment_for(tmp_path, dev=("dev_rename_replaces_volumes"))
    head = text.split("\n### ")[0]
    assert "stateful resources will be replaced or deleted" in head
    assert re.search(r"\*\*REPLACE\*\* `docker:index/volume:Volume` `db-data`", head), head
    assert re.search(r"\*\*REPLACE\*\* `docker:index/container:Container` `db`", head), head


def test_a_fresh_stack_creates_everything_and_the_pack_passes(tmp_path):
    results = [load_stack("dev", *real("dev_fresh", tmp_path))]
    r = results[0]
    assert not [v for v in r.violations if v.level == "mandatory"]
    text = render_comment(results)
    assert "| 46 |" in text or "46" in text.split("| Create")[1].split("\n")[2], text[:2000]


@pytest.mark.parametrize("name", ["prod_image_bump", "raw_all_insecure"])
def test_other_captures_when_present(name, tmp_path):
    """Captures that need the Kubernetes cluster or the raw program (capture_real.py kubernetes policy)."""
    if not (FIXTURES / f"real_{name}.json.gz").exists():
        pytest.fail(f"fixtures/real_{name}.json.gz is missing: run capture_real.py on a machine with the engine")
    text = comment_for(tmp_path, stack=name)
    if name == "prod_image_bump":
        for d in ("api-deployment", "worker-deployment", "beat-deployment"):
            assert re.search(rf"update <code>kubernetes:apps/v1:Deployment</code> <b>{d}</b>", text), d
        assert "image" in text and "localhost/berth-testapp:2" in text
        assert "stateful resources will be replaced" not in text
    else:
        assert "mandatory" in text.lower() and "docker-container-no-privileged" in text
