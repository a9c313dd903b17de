"""The policy pack through the real CLI: ``pulumi preview --policy-pack policies``.

The engine (v3.274) starts the pack through the language host's RunPlugin, which runs
``python -m pulumi.policy <engine> <pack dir>``; the pack analyzes what the providers would get and
the CLI exits non-zero on a mandatory violation. The violations are only in the event log
(``--event-log``; ../shared/PREVIEW-JSON.md), which is where this test reads them.

Two kinds of program:
* Berth stacks with a realistic insecure config (the compliant ones, every stack file, pass in the
  preview workflow run by tests/workflows/test_preview_workflow.py);
* a hand-written program with raw pulumi_docker / pulumi_kubernetes resources and no Berth component
  (``tests/policies/raw_program``): a pack is applied to every program of an organisation. Each
  variant must trigger exactly its rules (``variants.py``, shared with the in-process tests).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from berth.record import ROOT
from tests.real import kube
from tests.real.pulumi_cli import (
    VENV,
    EngineMissing,
    Pulumi,
    mandatory_violations,
    write_project,
    write_stack_config,
)

sys.path.insert(0, str(ROOT / "tests" / "policies" / "raw_program"))
import variants as raw_variants  # noqa: E402

pytestmark = [pytest.mark.real_docker, pytest.mark.real_k8s]

POLICY_PACK = ROOT / "policies"
RAW = ROOT / "tests" / "policies" / "raw_program"


def targets_or_fail() -> None:
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("DOCKER_HOST is not set: start Podman's Docker API (bash .ci/podman.sh start)", pytrace=False)
    try:
        kube.check_cluster()
    except kube.ClusterMissing as e:
        pytest.fail(str(e), pytrace=False)


def preview_with_pack(project: Path, stack: str, state: Path) -> tuple[int, dict[str, list[str]], str]:
    try:
        p = Pulumi(project, stack, state, env_extra=kube.kube_env())
    except EngineMissing as e:
        pytest.fail(str(e), pytrace=False)
    p.init()
    events = state / "events.ndjson"
    res = p.run("preview", "--policy-pack", str(POLICY_PACK), "--event-log", str(events), "--color", "never",
                check=False)
    # str(res): the output's error lines first, then its tails (the cause can sit far above the end)
    return res.returncode, mandatory_violations(events), str(res)


def stack_rule_names() -> set[str]:
    from pulumi_policy import StackValidationPolicy

    from berth.policies.rules import all_policies

    return {p.name for p in all_policies() if isinstance(p, StackValidationPolicy)}


# ------------------------------------------------------------------------------------------------
# The hand-written program


def raw_project(dest: Path, variant: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    project = yaml.safe_load((RAW / "Pulumi.yaml").read_text())
    project["runtime"]["options"]["virtualenv"] = str(VENV)
    (dest / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    shutil.copy(RAW / "__main__.py", dest / "__main__.py")
    shutil.copy(RAW / "variants.py", dest / "variants.py")
    write_stack_config(dest, raw_variants.STACK, {raw_variants.CONFIG_KEY: variant})
    return dest


@pytest.mark.parametrize("variant", list(raw_variants.VARIANTS))
def test_raw_program_variant_through_the_cli(variant, tmp_path):
    targets_or_fail()
    project = raw_project(tmp_path / "project", variant)
    code, violations, output = preview_with_pack(project, raw_variants.STACK, tmp_path / "state")
    expected = raw_variants.VARIANTS[variant]
    if not expected:
        assert code == 0 and not violations, f"the compliant program was blocked: {violations}\n{output}"
        return
    assert code != 0, f"variant {variant} was not blocked:\n{output}"
    if variant == raw_variants.ALL:
        # Found with the real engine: it runs the stack policies (AnalyzeStack) only when no resource
        # policy failed, so a program with resource-level violations reports those alone. Each
        # stack-level rule is shown by its own variant above.
        expected = frozenset(r for r in expected if r not in stack_rule_names())
    assert set(violations) == set(expected), (
        f"variant {variant}: expected exactly {sorted(expected)}, got {sorted(violations)}\n{output}")


# ------------------------------------------------------------------------------------------------
# Berth stacks with insecure config


def berth_variant(tmp_path: Path, stack_file: Path, mutate) -> tuple[Path, str]:
    stack = stack_file.name[len("Pulumi."):-len(".yaml")]
    project = write_project(tmp_path / "project", "berth")
    config = yaml.safe_load(stack_file.read_text())["config"]
    mutate(config)
    write_stack_config(project, stack, config)
    return project, stack


def test_berth_prod_without_backups_is_blocked(tmp_path):
    targets_or_fail()
    project, stack = berth_variant(tmp_path, ROOT / "Pulumi.prod.yaml", lambda c: c.pop("berth:backups"))
    code, violations, output = preview_with_pack(project, stack, tmp_path / "state")
    assert code != 0 and "stack-database-has-backup" in violations, output


def test_berth_dev_with_a_plaintext_token_is_blocked(tmp_path):
    targets_or_fail()

    def plaintext_token(c):
        c["berth:services"]["api"].setdefault("env", {})["PAYMENT_API_TOKEN"] = "tok_live_123"

    project, stack = berth_variant(tmp_path, ROOT / "Pulumi.dev.yaml", plaintext_token)
    code, violations, output = preview_with_pack(project, stack, tmp_path / "state")
    # Berth refuses it first, naming the key (before any resource, so the pack sees nothing); the pack
    # blocks the same env in a program that does not go through Berth's checks (the raw programs above).
    assert code != 0 and violations == {} and "berth:services.api.env.PAYMENT_API_TOKEN" in output, (violations, output)
