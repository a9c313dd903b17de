"""The pack over a program that uses no Berth code (``raw_program/``): raw docker/kubernetes resources.

Each variant of ``raw_program/variants.py`` is run under Pulumi mocks (``berth.record.record`` runs the
folder's ``__main__.py`` as the language host would) and the whole pack is evaluated over what it
declared: the compliant program gets no mandatory violation, every other variant exactly its rules.
Once as ``pulumi up`` sees the inputs, once as ``pulumi preview`` does (a container's ``image`` is the
RemoteImage's id, unknown until the image is pulled).
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import pathlib

import pytest
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from berth.record import record
from policy_harness import mandatory, run_pack
from raw_program.variants import ALL, CONFIG_KEY, DEFAULT, STACK, VARIANTS
from rules import all_policies

RAW = pathlib.Path(__file__).resolve().parent / "raw_program"


@functools.lru_cache(maxsize=None)
def _recorded(variant):
    return tuple(r.to_json() for r in record(STACK, project_dir=RAW, config={CONFIG_KEY: variant}).resources)


def recorded(variant, preview=False):
    rs = copy.deepcopy(list(_recorded(variant)))
    if preview:
        for r in rs:
            if r["type"] == "docker:index/container:Container":
                r["inputs"]["image"] = UNKNOWN_STRING_VALUE
    return rs


def fired(variant, preview=False):
    violations = run_pack(recorded(variant, preview))
    return violations, {v.policy for v in mandatory(violations)}


def test_the_program_uses_no_berth_code_or_names():
    tree = ast.parse((RAW / "__main__.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "os", "sys", "pulumi", "pulumi_docker", "pulumi_kubernetes", "variants"}, imported
    rs = recorded(DEFAULT)
    assert {r["type"].split(":")[0] for r in rs} <= {"docker", "kubernetes"}
    text = json.dumps([r["inputs"] for r in rs])
    assert "berth" not in text and "app.kubernetes.io/component" not in text


def test_every_mandatory_rule_is_triggered_by_some_variant():
    wanted = {p.name for p in all_policies() if p.enforcement_level == EnforcementLevel.MANDATORY}
    assert set().union(*VARIANTS.values()) == wanted
    assert VARIANTS[ALL] == wanted


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_compliant_program_passes(preview):
    violations, rules = fired(DEFAULT, preview)
    assert rules == set(), "\n".join(map(str, mandatory(violations)))
    assert violations == [], "\n".join(map(str, violations))  # not even an advisory
    kinds = {r["type"].rsplit(":", 1)[-1] for r in recorded(DEFAULT)}
    # the rules that need them had something to judge
    assert {"Container", "Deployment", "StatefulSet", "CronJob", "Ingress", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != DEFAULT])
def test_variant_triggers_exactly_its_rules(variant, preview):
    violations, rules = fired(variant, preview)
    assert rules == VARIANTS[variant], "\n".join(map(str, mandatory(violations)))
    assert all("Fix: " in v.message for v in violations)


def test_backup_rule_names_what_it_looked_for():
    violations, _ = fired("prod-backup-wrong-host")
    messages = sorted(v.message for v in violations if v.policy == "stack-database-has-backup")
    assert len(messages) == 2, messages
    assert messages[0].startswith("StatefulSet 'pg' (postgres) has no backup schedule")
    assert "CronJob 'pg-backup' runs pg_dump against pg.other" in messages[0]
    assert messages[1].startswith("container 'raw-db' (postgres) has no backup schedule")
    assert "container 'raw-db-backup' runs pg_dump against old-db" in messages[1]
