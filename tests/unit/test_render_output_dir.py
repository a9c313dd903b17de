"""`berth render -o DIR` replaces its own previous output and never deletes anything else."""

from __future__ import annotations

import pytest

from berth.render import RenderError, render


def test_a_directory_that_is_not_a_render_is_refused_not_emptied(tmp_path):
    """`-o .` in a project with its own resources/ must not delete it."""
    out = tmp_path / "site"
    (out / "resources").mkdir(parents=True)
    logo = out / "resources" / "logo.png"
    logo.write_bytes(b"\x89PNG")
    (out / "kubernetes").mkdir()
    mine = out / "kubernetes" / "kustomization.yaml"
    mine.write_text("resources: []\n")
    with pytest.raises(RenderError) as info:
        render("dev", out)
    assert str(out) in str(info.value) and "not a previous `berth render`" in str(info.value)
    assert logo.read_bytes() == b"\x89PNG" and mine.exists()


def test_rerender_removes_only_files_it_wrote(tmp_path):
    out = tmp_path / "out"
    render("prod", out)
    stale = out / "kubernetes" / "999-deployment-gone.yaml"
    stale.write_text("kind: Deployment\n")
    note = out / "kubernetes" / "README.md"
    note.write_text("reviewed by ops\n")
    render("prod", out)
    assert not stale.exists()
    assert note.read_text() == "reviewed by ops\n"
    assert any(p.name.endswith("-ingress-web.yaml") for p in (out / "kubernetes").iterdir())


def test_rendering_another_target_into_the_same_directory_drops_the_old_kind(tmp_path):
    out = tmp_path / "out"
    render("prod", out)
    render("dev", out)
    assert not (out / "kubernetes").exists()
    assert any((out / "resources").iterdir())


def test_an_empty_or_unrelated_directory_is_fine(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "NOTES.md").write_text("mine\n")
    render("dev", out)
    assert (out / "NOTES.md").read_text() == "mine\n" and (out / "index.json").exists()
