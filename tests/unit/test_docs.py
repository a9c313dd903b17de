"""The README's configuration reference is the one generated from the spec's models."""

from __future__ import annotations

from berth.docs import README, main, readme_section, reference_markdown, updated_readme
from berth.components.spec import StackSpec, reference_rows


def test_readme_reference_is_the_generated_one():
    section = readme_section(README.read_text())
    assert section is not None, "README.md has lost its config-reference markers"
    assert section == reference_markdown(), "README is out of date: run `python -m berth.docs --write`"


def test_check_fails_on_a_stale_readme(tmp_path):
    good = tmp_path / "README.md"
    good.write_text(updated_readme(README.read_text()))
    assert main(["--check", "--readme", str(good)]) == 0
    stale = tmp_path / "STALE.md"
    stale.write_text(good.read_text().replace("| `berth:target` |", "| `berth:targets` |"))
    assert main(["--check", "--readme", str(stale)]) == 1
    assert main(["--write", "--readme", str(stale)]) == 0 and stale.read_text() == good.read_text()


def test_every_key_is_documented_with_type_default_and_targets():
    rows = {r["key"]: r for r in reference_rows()}
    assert set(StackSpec.model_fields) <= {k.split(":", 1)[1] for k in rows if "." not in k}
    for key, r in rows.items():
        assert r["description"], f"{key} has no description"
        assert r["type"] and r["targets"] in ("both", "docker", "kubernetes"), key


def test_units_defaults_and_per_component_resources():
    rows = {r["key"]: r for r in reference_rows()}
    assert rows["berth:services.NAME.health.interval"]["unit"].startswith("seconds")
    assert rows["berth:services.NAME.health.interval"]["default"] == "`10`"
    assert rows["berth:caches.NAME.maxmemory"]["unit"].startswith("Redis size")
    assert rows["berth:monitoring.retention"]["default"] == "`15d`"
    # each component's own resources defaults, not the generic ones
    assert rows["berth:databases.NAME.resources.memory_limit"]["default"] == "`1Gi`"
    assert rows["berth:caches.NAME.resources.memory_limit"]["default"] == "`512Mi`"
    assert rows["berth:services.NAME.resources.memory_limit"]["default"] == "`256Mi`"
    assert rows["berth:proxy.resources.cpu_limit"]["default"] == "`500m`"
    assert rows["berth:proxy.bind_address"]["targets"] == "docker"
    assert rows["berth:proxy.ingress_class"]["targets"] == "kubernetes"
    assert rows["berth:kubernetes.namespace"]["targets"] == "kubernetes"
    assert rows["berth:backups.DB.tiers[].schedule"]["unit"].startswith("cron")
