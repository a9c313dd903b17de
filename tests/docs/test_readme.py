"""The README as a team meets it: each shell block runs here, or says why it cannot.

Every fenced block of README.md is read with the HTML comment on the line just above it:

    <!-- readme-test: file DIR/NAME -->          the block is the file NAME of project DIR
    <!-- readme-test: run in DIR -->             the block runs with bash in project DIR
    <!-- readme-test: not run here: REASON -->   it needs what this machine does not have

A shell block (bash, sh, shell, console) without one of the last two fails here, so a new block is
either run or explicitly excluded, and the README cannot drift from what works.

The projects live in a temporary directory outside the repository:

* ``shop``: the files of "Install Berth in your own project". Its requirements line is the README's
  commit form, ``berth @ git+https://<your git server>/berth.git@<commit>``, pointed at a git
  repository made here from this checkout's files as git sees them (tracked, and new files not
  ignored), so what is installed is the work tree, from a real commit, by pip's own git clone.
  Its first block creates ``.venv`` and installs Berth and its pinned dependencies (from pip's cache).
* ``program``: the typed-API program of "Use Berth from your own program" as ``__main__.py`` of a
  project with shop's ``Pulumi.yaml`` and ``.venv``.
* ``yaml``: the YAML program of "Use Berth from YAML (and other Pulumi languages)", with shop's
  ``.venv``: its block links the installed component package and renders the program.

The run blocks run once per session, in README order. The path form ``berth @ file:///...`` that
the README gives in prose is installed as well (into a second virtualenv, without dependencies).
Measured on the 2-core machine with a warm pip cache: about 40 s, 25-40 s of it the one install.

The facts the README states about the code (which containers keep a writable root, which resources
prod protects) are checked against the declared resources, and the version against CHANGELOG.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

import berth
from berth.record import ROOT, Recording, record, stack_config

README = ROOT / "README.md"
SHELLS = {"bash", "sh", "shell", "console"}
PROJECTS = {"shop", "program", "yaml"}
MARK = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->$")
FENCE = re.compile(r"^(`{3,})([\w+-]*)\s*$")
#: The README's commit form; the test points it at the repository it makes from this checkout.
COMMIT_FORM = "berth @ git+https://<your git server>/berth.git@<commit>"
#: A placeholder left in a file or a command after the substitutions (``<commit>``, ``<your ...>``).
PLACEHOLDER = re.compile(r"<[a-z][^<>\n]*>")


# ---------------------------------------------------------------- reading the README


@dataclass(frozen=True)
class Block:
    line: int  # the opening fence's line (1-based)
    lang: str
    text: str
    mark: Optional[str]  # what follows "readme-test:" in the comment above, if any
    section: str  # the "## " heading the block is under

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.section})"

    @property
    def kind(self) -> Optional[str]:
        if self.mark is None:
            return None
        return self.mark.split()[0] if self.mark.split() else ""

    @property
    def where(self) -> str:
        """``run in DIR`` → DIR; ``file DIR/NAME`` → DIR."""
        if self.kind == "run":
            return self.mark.split()[2]
        return self.mark.split()[1].split("/", 1)[0]


def read_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    out: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        m = FENCE.match(line)
        if not m:
            i += 1
            continue
        fence, lang = m.groups()
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        assert j < len(lines), f"README.md:{i + 1}: a fenced block is not closed"
        above = MARK.match(lines[i - 1].strip()) if i else None
        out.append(Block(i + 1, lang, "\n".join(lines[i + 1:j]) + "\n", above.group(1) if above else None, section))
        i = j + 1
    return out


BLOCKS = read_blocks(README.read_text())
RUN = [b for b in BLOCKS if b.kind == "run"]
FILES = [b for b in BLOCKS if b.kind == "file"]


def test_every_shell_block_is_run_or_says_why_not():
    problems = []
    for b in BLOCKS:
        if not b.lang:  # a block without a language could hide a shell block from this test
            problems.append(f"{b}: give the block a language (```text for a diagram or a listing)")
        if b.mark is None:
            if b.lang in SHELLS:
                problems.append(f"{b}: a ```{b.lang} block without <!-- readme-test: run in DIR --> or "
                                "<!-- readme-test: not run here: REASON --> on the line above")
            continue
        words = b.mark.split()
        if b.kind == "run":
            if len(words) != 3 or words[1] != "in" or words[2] not in PROJECTS or b.lang not in SHELLS:
                problems.append(f"{b}: 'readme-test: {b.mark}' must be 'run in <{'|'.join(sorted(PROJECTS))}>' "
                                "on a shell block")
        elif b.kind == "file":
            if len(words) != 2 or "/" not in words[1] or b.where not in PROJECTS:
                problems.append(f"{b}: 'readme-test: {b.mark}' must be 'file <project>/<name>'")
        elif b.mark.startswith("not run here:"):
            if not b.mark.split(":", 1)[1].strip():
                problems.append(f"{b}: say why it is not run here")
        else:
            problems.append(f"{b}: unknown 'readme-test: {b.mark}'")
    # A marker must sit right above a block: one that does not would exclude nothing.
    lines = README.read_text().splitlines()
    for n, line in enumerate(lines):
        if MARK.match(line.strip()) and not (n + 1 < len(lines) and FENCE.match(lines[n + 1])):
            problems.append(f"README.md:{n + 1}: a readme-test comment that is not right above a fenced block")
    assert not problems, "\n".join(problems)
    assert RUN and FILES, "the README's install, render and program blocks are gone"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_the_links_inside_the_readme_lead_somewhere():
    text = README.read_text()
    headings = {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}
    anchors = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert anchors - headings == set(), f"links to missing headings: {sorted(anchors - headings)}"
    files = set(re.findall(r"\]\(((?!https?:|#)[^)#]+)(?:#[^)]*)?\)", text))
    assert not [f for f in files if not (ROOT / f).exists()], f"links to missing files: {sorted(files)}"


# ---------------------------------------------------------------- the projects, and running the blocks


def checkout_copy(dest: Path) -> Path:
    """This checkout's files as git sees them (tracked, and new files not ignored), copied to ``dest``."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the work tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def commit_all(repo: Path) -> str:
    """``repo`` as a git repository with one commit of everything in it; returns the commit id."""
    git = ["git", "-C", str(repo), "-c", "user.name=README test", "-c", "user.email=readme@test.invalid",
           "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "Berth as the README test installs it"]):
        subprocess.run([*git, *args], check=True, capture_output=True, env=env)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV") and not k.startswith("GIT_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@dataclass
class Projects:
    base: Path
    source: Path  # the committed copy of this checkout
    commit: str
    dirs: dict[str, Path]
    results: dict[int, subprocess.CompletedProcess]
    timings: dict[str, float]

    def run_until(self, block: Block) -> subprocess.CompletedProcess:
        """Run every run block up to ``block`` that has not run yet, in README order (each needs the
        ones before it: the first creates the virtualenv)."""
        for b in RUN:
            if b.line not in self.results:
                script = self.substitute(b.text)
                t0 = time.monotonic()
                self.results[b.line] = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", script], cwd=self.dirs[b.where], env=clean_env(),
                    capture_output=True, text=True, timeout=900)
                self.timings[str(b)] = time.monotonic() - t0
            if b == block:
                break
        return self.results[block.line]

    def substitute(self, text: str) -> str:
        text = text.replace(COMMIT_FORM, f"berth @ git+file://localhost{self.source}@{self.commit}")
        left = PLACEHOLDER.findall(text)
        assert not left, f"placeholders this test does not know how to fill: {left}"
        return text


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> Projects:
    base = tmp_path_factory.mktemp("readme")
    assert ROOT not in base.parents, f"{base} must be outside the repository {ROOT}"
    t0 = time.monotonic()
    source = checkout_copy(base / "berth")
    commit = commit_all(source)
    timings = {"copy and commit the checkout": time.monotonic() - t0}
    dirs = {name: base / name for name in PROJECTS}
    for d in dirs.values():
        d.mkdir()
    p = Projects(base, source, commit, dirs, {}, timings)
    assert COMMIT_FORM in "".join(b.text for b in FILES), f"the README's requirements line is no longer {COMMIT_FORM!r}"
    for b in FILES:
        path = base / b.mark.split()[1]
        path.write_text(p.substitute(b.text))
    # The program runs in the shop project's setup: its Pulumi.yaml and its virtualenv.
    shutil.copy(dirs["shop"] / "Pulumi.yaml", dirs["program"] / "Pulumi.yaml")
    (dirs["program"] / ".venv").symlink_to(dirs["shop"] / ".venv", target_is_directory=True)
    # The YAML project has Berth installed as shop has it.
    (dirs["yaml"] / ".venv").symlink_to(dirs["shop"] / ".venv", target_is_directory=True)
    yield p
    print("README blocks (s): " + json.dumps({k: round(v, 1) for k, v in p.timings.items()}))


@pytest.mark.parametrize("block", RUN, ids=str)
def test_readme_block_runs(projects, block):
    res = projects.run_until(block)
    assert res.returncode == 0, f"{block} exited {res.returncode}:\n{block.text}\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"


def venv_python(projects: Projects) -> str:
    return str(projects.dirs["shop"] / ".venv" / "bin" / "python")


def installed(python: str) -> dict:
    probe = ("import berth, json, importlib.metadata as md; d = md.distribution('berth'); "
             "print(json.dumps({'file': berth.__file__, 'version': d.version, "
             "'direct_url': json.loads(d.read_text('direct_url.json') or '{}')}))")
    return json.loads(subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True,
                                     env=clean_env(), cwd="/").stdout)


def test_berth_is_installed_from_the_commit_not_from_the_checkout(projects):
    projects.run_until(RUN[0])
    info = installed(venv_python(projects))
    assert info["version"] == berth.__version__
    assert info["direct_url"].get("vcs_info", {}).get("commit_id") == projects.commit, info
    assert Path(info["file"]).is_relative_to(projects.dirs["shop"] / ".venv"), info
    version = subprocess.run([str(projects.dirs["shop"] / ".venv" / "bin" / "berth"), "--version"],
                             capture_output=True, text=True, env=clean_env()).stdout.strip()
    assert version == f"berth {berth.__version__}"


def test_the_path_form_installs_too(projects):
    """The README's other requirements line, ``berth @ file:///...``, for a checkout on the machine."""
    section = README.read_text().split("## Install Berth in your own project", 1)[1].split("\n## ", 1)[0]
    forms = re.findall(r"`(berth @ file:///[^`]+)`", section)
    assert len(forms) == 1, f"the install section should give one path form, found {forms}"
    line = re.sub(r"file:///\S+", projects.source.as_uri(), forms[0])
    venv = projects.base / "venv-path"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]  # the venv has no pip of its own
    res = subprocess.run([*pip, "install", "--no-deps", "-q", line], capture_output=True, text=True, env=clean_env(),
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    info = installed(str(venv / "bin" / "python"))
    assert info["direct_url"]["url"] == projects.source.as_uri() and info["version"] == berth.__version__, info


def test_render_wrote_the_readme_s_stacks(projects):
    for b in RUN:
        projects.run_until(b)
    shop = projects.dirs["shop"]
    dev = json.loads((shop / "build" / "dev" / "index.json").read_text())
    assert dev["counts"]["kubernetes"] == 0 and dev["counts"]["other"] >= 8, dev["counts"]
    prod = json.loads((shop / "build" / "prod" / "index.json").read_text())
    assert prod["counts"]["kubernetes"] >= 15, prod["counts"]
    program = json.loads((projects.dirs["program"] / "build" / "dev" / "outputs.json").read_text())
    assert program["database_url"].startswith("postgresql://"), program
    names = {p.name for p in (projects.dirs["program"] / "build" / "dev" / "resources").iterdir()}
    assert any(n.endswith("-container-report.json") for n in names), sorted(names)  # the raw container
    # The YAML program, through the installed component package's link.
    link = projects.dirs["yaml"] / "berth-package"
    assert link.is_symlink() and (link / "pulumi-resource-berth").is_file(), link
    assert link.resolve().is_relative_to((projects.dirs["shop"] / ".venv").resolve()), link.resolve()
    yaml_dev = json.loads((projects.dirs["yaml"] / "build" / "dev" / "outputs.json").read_text())
    assert yaml_dev["url"] == "https://localhost/" and yaml_dev["databaseUrl"].startswith("postgresql://"), yaml_dev
    yaml_names = {p.name for p in (projects.dirs["yaml"] / "build" / "dev" / "resources").iterdir()}
    assert any(n.endswith("-container-proxy.json") for n in yaml_names), sorted(yaml_names)


def test_the_readme_s_stacks_pass_the_policy_pack(projects):
    for path in (ROOT / "policies", ROOT / "tests" / "policies"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from policy_harness import mandatory, run_pack

    for stack in ("dev", "prod"):
        items = [r.to_json() for r in record(stack, project_dir=projects.dirs["shop"]).resources]
        for preview in (False, True):
            bad = mandatory(run_pack(items, preview=preview))
            assert bad == [], f"{stack}: " + "\n".join(map(str, bad))


# ---------------------------------------------------------------- what the README says about the code


def section(heading: str) -> str:
    text = README.read_text()
    assert f"\n{heading}\n" in text, f"README.md has no {heading!r}"
    body = text.split(f"\n{heading}\n", 1)[1]
    return re.split(r"\n#{2,3} ", body, maxsplit=1)[0]


def recorded(project: str, stack: str, **override) -> Recording:
    if not override:
        return record(stack, project_dir=ROOT / project)
    _, config = stack_config(stack, ROOT / project)
    return record(stack, project_dir=ROOT / project, config={**config, **override})


def component_of(urn: str) -> str:
    """The type of the component a resource belongs to (its parent's type, from the URN)."""
    return urn.split("::")[2].split("$")[-2].rsplit(":", 1)[-1]


#: Workloads whose configuration directory is a writable copy of their image's own (their entrypoint
#: rewrites it at start), as README's "Read-only roots and generated files" names them.
SEEDED = {"neo4j": "Neo4j", "elasticsearch": "Elasticsearch", "logstash": "Logstash"}


def test_every_container_has_a_read_only_root_and_the_readme_names_the_seeded_ones():
    """The microservices example runs every component Berth has, on both targets: no container keeps
    a writable root but the writers of secret files on Docker; the seeded directories are those of the
    images README names."""
    dev = recorded("examples/microservices", "dev")
    containers = dev.by_type("docker:index/container:Container")
    # The writers of secret files (uploaded: dockerd refuses uploads into a read-only root).
    uploaders = {r.name for r in containers if any(x["label"] == "berth.uploads" for x in r.inputs["labels"])}
    assert uploaders and all(n.endswith("-files") for n in uploaders), uploaders
    docker = {r.name for r in containers if not r.inputs.get("readOnly")} - uploaders
    docker_seeded = {next(x["value"] for x in r.inputs["labels"] if x["label"] == "berth.workload")
                     for r in dev.by_type("docker:index/volume:Volume") if "-seed-" in r.inputs["name"]}
    kubernetes, kubernetes_seeded = set(), set()
    for r in recorded("examples/microservices", "prod").resources:
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
            pod = r.inputs["spec"]["template"]["spec"]
            for c in pod["containers"]:
                if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
                    kubernetes.add(c["name"])
            if any(i["name"] == "seed" for i in pod.get("initContainers", [])):
                kubernetes_seeded.add(pod["containers"][0]["name"])
    fix = "update README's 'Read-only roots and generated files' and SEEDED"
    assert docker == kubernetes == set(), fix
    assert docker_seeded == kubernetes_seeded == set(SEEDED), fix
    text = " ".join(section("### Read-only roots and generated files").split())
    missing = [name for name in SEEDED.values() if name not in text]
    assert not missing and "read_only_root: false" in text and "writable copy of the image's own" in text \
        and "the one-shot writer of a secret file" in text, (missing, fix)


#: (kind, component) of what prod protects → the words README's "Protected data" uses for it.
PROTECTED = {
    ("Namespace", "Platform"): ["the Namespace"],
    ("StatefulSet", "Database"): ["databases", "read replicas"],
    ("StatefulSet", "Cache"): ["caches"],
    ("StatefulSet", "Broker"): ["brokers"],
    ("StatefulSet", "GraphDatabase"): ["graph databases"],
    ("StatefulSet", "Monitoring"): ["Prometheus", "Pushgateway", "Grafana"],
    ("StatefulSet", "Logging"): ["Elasticsearch"],
    ("PersistentVolumeClaim", "BackupJob"): ["backup claim"],
    ("Volume", "Database"): ["data volumes"],
    ("Volume", "Cache"): ["data volumes"],
    ("Volume", "Broker"): ["data volumes"],
    ("Volume", "GraphDatabase"): ["data volumes"],
    ("Volume", "Monitoring"): ["data volumes"],
    ("Volume", "Logging"): ["data volumes"],
    ("Volume", "BackupJob"): ["backup volume"],
}


def test_prod_protects_what_the_readme_lists():
    """Every component, on both targets, in prod: the microservices example (every store, logging,
    monitoring, backups) and the repository's own stacks (a read replica, Pushgateway)."""
    recordings = [
        recorded("examples/microservices", "prod"),
        recorded(".", "prod"),
        recorded("examples/microservices", "dev", **{"berth:environment": "prod"}),
        recorded(".", "dev", **{"berth:environment": "prod"}),
    ]
    protected = {}
    for rec in recordings:
        for r in rec.resources:
            if r.protect:
                assert r.retain_on_delete, f"{r.urn} is protected but not retained"
                kind = r.type.rsplit(":", 1)[-1]
                protected.setdefault((kind, component_of(r.urn)), set()).add(r.name)
    fix = "update README's 'Protected data, teardown, and bringing a retained prod back' and PROTECTED"
    assert set(protected) == set(PROTECTED), (sorted(set(protected) ^ set(PROTECTED)), fix)
    workloads = {n.removesuffix("-statefulset").removesuffix("-data")
                 for kind in ("StatefulSet", "Volume") for n in protected[(kind, "Monitoring")] | protected[(kind, "Logging")]}
    assert workloads == {"prometheus", "pushgateway", "grafana", "elasticsearch"}, (workloads, fix)
    assert any(n.endswith("-replica-statefulset") for n in protected[("StatefulSet", "Database")])
    text = " ".join(section("### Protected data, teardown, and bringing a retained prod back").split())
    missing = sorted({w for words in PROTECTED.values() for w in words if w not in text})
    assert not missing, (missing, fix)


def test_ci_runs_the_readme_s_test_command():
    block = next(b for b in BLOCKS if b.section == "Berth's own tests" and b.lang in SHELLS)
    commands = [c.strip() for c in block.text.replace("&&", "\n").splitlines() if c.strip()]
    assert commands == [".venv/bin/pip install -r requirements-dev.txt", ".venv/bin/python -m pytest"], commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ".venv/bin/python -m pytest" in [line.strip() for line in ci], ".ci/run must run the README's test command"
    assert any(line.startswith(".venv/bin/pip install") and "-r requirements-dev.txt" in line for line in ci)


def test_the_version_has_one_home_and_a_changelog_entry():
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"], "a second version in pyproject.toml: it reads berth.__version__"
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "berth.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(berth.__version__)}\]", changelog, re.M), \
        f"CHANGELOG.md has no section for {berth.__version__}"


def test_user_docs_cite_only_what_the_repository_has():
    """README, the examples' READMEs and the stack files cite no file outside the repository (the
    seeds' digest and the seeds themselves are summarised in examples/README.md)."""
    docs = [README, *ROOT.glob("Pulumi.*.yaml"), *(ROOT / "examples").rglob("README.md"),
            *(ROOT / "examples").glob("*/Pulumi.*.yaml")]
    found = [f"{p.relative_to(ROOT)}: {word}" for p in docs for word in ("ARCHITECTURES.md", "../shared", "seeds/")
             if word in p.read_text()]
    assert not found, found
