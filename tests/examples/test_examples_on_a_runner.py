"""Every example stack evaluates where CI previews it: from its stack file exactly as committed, with
no certificate or other file on disk and no secret set, and `berth render` writes it."""

from __future__ import annotations

import pytest

from berth.record import ROOT, record, stack_config
from berth.render import render

EXAMPLES = ROOT / "examples"
STACKS = sorted((p.parent.name, p.name[len("Pulumi."):-len(".yaml")]) for p in EXAMPLES.glob("*/Pulumi.*.yaml"))


def test_the_example_stacks_are_found():
    assert len(STACKS) >= 12  # five projects (tests/examples/test_examples.py lists them)


@pytest.mark.parametrize(("example", "stack"), STACKS)
def test_example_stack_evaluates_from_its_file_alone(example, stack, tmp_path):
    _, cfg = stack_config(stack, EXAMPLES / example)
    tls = ((cfg.get("berth:proxy") or {}).get("tls") or {})
    # `files` is read where Pulumi runs: a runner has no certificate.
    assert tls.get("mode") != "files", f"{example}/{stack}"
    # Secrets in a stack file are `secure:` ciphertexts only a stack's own key opens: examples carry none.
    assert "berth:secrets" not in cfg, f"{example}/{stack}"
    rec = record(stack, project_dir=EXAMPLES / example)  # the file as committed, nothing rewritten
    assert rec.resources
    out = tmp_path / "out"
    idx = render(stack, out, project_dir=EXAMPLES / example)
    assert idx["counts"]["other"] + idx["counts"]["kubernetes"] > 0
