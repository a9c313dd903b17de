"""Render every stack file of the repository with the ``berth`` CLI, for byte-identical before/after
comparisons of ``berth render`` (a performance change must not change a single byte):

    .venv/bin/python bench/render_all.py /tmp/render-before      # on the old commit
    .venv/bin/python bench/render_all.py /tmp/render-after       # on the new one
    diff -r /tmp/render-before /tmp/render-after

Other engineers edit the same checkout meanwhile, so a before/after pair is best made from one
private snapshot of the tree (``--snapshot DIR`` copies it; ``--tree DIR`` renders it, running its
own code as ``python -m berth``). Use the same DIR for both: a Docker build context is written
relative to the project directory, so the snapshot's path shows in the output.

    .venv/bin/python bench/render_all.py --snapshot /tmp/snap
    # put the old versions of the changed files in /tmp/snap/berth/..., then
    .venv/bin/python bench/render_all.py /tmp/render-before --tree /tmp/snap
    # put the new versions back, then
    .venv/bin/python bench/render_all.py /tmp/render-after --tree /tmp/snap

Writes OUT/<project>/<stack>/ (the render), OUT/<project>/<stack>.rc and .stderr (exit code and
message: a stack that cannot render here is compared by its error). Stacks whose proxy reads TLS
files from the deploy host (certbot paths) are rendered a second time as ``<stack>+tls`` from a copy
of the project at a fixed path, with the paths pointed at stand-in files, so their resources are
compared too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BERTH = ROOT / ".venv" / "bin" / "berth"
#: Fixed, so the before and after renders see the same paths.
SCRATCH = Path("/tmp/berth-render-all")


#: What a snapshot copies: the program, its packages (laid out as installed) and every stack file.
_PACKAGES = {"berth": "berth", "components": "berth/components", "policies": "berth/policies"}


def snapshot(dest: Path, head: bool = False, extra: list[str] = ()) -> None:
    """Copy the tree's code and stack files to ``dest``: its importable ``berth`` package is
    ``dest/berth`` laid out as pyproject.toml installs it (``PYTHONPATH=dest``), and ``berth.record``
    finds the root project's stack files beside it, in ``dest``. The working tree as it is, or with
    ``head`` the last commit (others' edits in progress left out) plus the working-tree files ``extra``."""
    shutil.rmtree(dest, ignore_errors=True)
    src_root = ROOT
    if head:
        src_root = Path(tempfile.mkdtemp(prefix="berth-head-"))
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src_root)], input=archive, check=True)
        for rel in extra:
            shutil.copy2(ROOT / rel, src_root / rel)
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.pyc")
    for f in [*src_root.glob("Pulumi*.yaml"), src_root / "__main__.py"]:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest / f.name)
    shutil.copytree(src_root / "examples", dest / "examples", ignore=ignore)
    for src, rel in _PACKAGES.items():
        shutil.copytree(src_root / src, dest / rel, ignore=ignore)
    if head:
        shutil.rmtree(src_root)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if head:
        changed = list(extra)
    else:
        status = subprocess.run(["git", "status", "--short", "--", *_PACKAGES, "examples", "Pulumi*.yaml"], cwd=ROOT,
                                capture_output=True, text=True).stdout.splitlines()
        changed = [line[3:] for line in status if line]
    note = f"{commit}" + (f" + working-tree {', '.join(changed)}" if changed else "")
    (dest / "SNAPSHOT.txt").write_text(note + "\n")


def stacks(root: Path = ROOT) -> list[tuple[str, Path, str]]:
    """(project label, project dir, stack name) for every ``Pulumi.<stack>.yaml`` in the repo."""
    out = []
    for d in [root, *sorted(p for p in (root / "examples").iterdir() if p.is_dir())]:
        label = "root" if d == root else d.name
        for f in sorted(d.glob("Pulumi.*.yaml")):
            out.append((label, d, f.name[len("Pulumi."):-len(".yaml")]))
    return out


def render(out: Path, label: str, project_dir: Path, stack: str, tree: Path | None = None) -> int:
    dest = out / label / stack
    dest.parent.mkdir(parents=True, exist_ok=True)
    args = ["render", "-s", stack, "--project-dir", str(project_dir), "-o", str(dest), "-q"]
    if tree is None:
        cmd, env, cwd = [str(BERTH), *args], None, ROOT
    else:  # the snapshot's own code: found on PYTHONPATH before the editable install's finder
        cmd, env, cwd = [sys.executable, "-m", "berth", *args], {**os.environ, "PYTHONPATH": str(tree)}, tree
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    (out / label / f"{stack}.rc").write_text(f"{proc.returncode}\n")
    (out / label / f"{stack}.stderr").write_text(proc.stderr)
    return proc.returncode


def tls_variant(project_dir: Path, label: str, stack: str) -> tuple[Path, str] | None:
    """A copy of the project whose stack reads stand-in TLS files, or None if it reads none."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    tls = ((doc.get("config") or {}).get("berth:proxy") or {}).get("tls") or {}
    if tls.get("mode") != "files":
        return None
    pem = SCRATCH / "tls"
    pem.mkdir(parents=True, exist_ok=True)
    (pem / "fullchain.pem").write_text("-----BEGIN CERTIFICATE-----\nexample\n-----END CERTIFICATE-----\n")
    (pem / "privkey.pem").write_text("-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n")
    tls["cert_file"], tls["key_file"] = str(pem / "fullchain.pem"), str(pem / "privkey.pem")
    copy = SCRATCH / "projects" / label
    if not copy.exists():
        shutil.copytree(project_dir, copy, ignore=shutil.ignore_patterns("Pulumi.*.yaml", "__pycache__", "build"))
    name = f"{stack}+tls"
    (copy / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy, name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, nargs="?", help="output directory (replaced)")
    ap.add_argument("--tree", type=Path, help="render this snapshot (made with --snapshot) with its own code")
    ap.add_argument("--snapshot", type=Path, help="copy the working tree to this directory and stop")
    ap.add_argument("--head", action="store_true", help="with --snapshot: the last commit, not the working tree")
    ap.add_argument("--with", dest="extra", nargs="*", default=[], metavar="PATH",
                    help="with --head: these working-tree files over the commit")
    args = ap.parse_args()
    if args.snapshot:
        snapshot(args.snapshot, args.head, args.extra)
        print(f"snapshot of {(args.snapshot / 'SNAPSHOT.txt').read_text().strip()} in {args.snapshot}")
        return
    if args.out is None:
        ap.error("an output directory is needed")
    out, tree = args.out, args.tree
    root = tree.resolve() if tree else ROOT
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(SCRATCH, ignore_errors=True)
    rendered = failed = 0
    for label, project_dir, stack in stacks(root):
        rc = render(out, label, project_dir, stack, tree and root)
        rendered, failed = rendered + (rc == 0), failed + (rc != 0)
        variant = tls_variant(project_dir, label, stack) if label != "root" else None
        if variant:
            rc = render(out, label, *variant, tree and root)
            rendered, failed = rendered + (rc == 0), failed + (rc != 0)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"{rendered} stack(s) rendered, {failed} failed (exit code and message kept), {files} files in {out}")


if __name__ == "__main__":
    main()
