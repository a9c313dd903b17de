"""Helpers for the generated-config tests: snapshots, stack recordings with overrides, a tiny
nginx.conf parser, and real-tool lookup that fails (never skips) with the apt package to install."""

from __future__ import annotations

import copy
import difflib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import yaml

from berth.record import Recording, Resource, record, stack_config

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "tests" / "snapshots"

CONTAINER = "docker:index/container:Container"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CRONJOB = "kubernetes:batch/v1:CronJob"
JOB = "kubernetes:batch/v1:Job"


# ---------------------------------------------------------------- snapshots


def assert_snapshot(name: str, text: str) -> None:
    """Compare ``text`` with ``tests/snapshots/<name>``. ``UPDATE_SNAPSHOTS=1`` rewrites the file;
    a missing snapshot fails otherwise (a new snapshot must be generated and reviewed on purpose)."""
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"missing snapshot {path.relative_to(ROOT)}: run with UPDATE_SNAPSHOTS=1, then review the file")
    expected = path.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(True), text.splitlines(True), f"snapshot/{name}", f"rendered/{name}"))
        pytest.fail(f"{name} differs from its snapshot (UPDATE_SNAPSHOTS=1 rewrites it; review the diff):\n{diff}")


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True)


# ---------------------------------------------------------------- recordings


def stack_raw(stack: str) -> dict[str, Any]:
    """A deep copy of ``Pulumi.<stack>.yaml``'s config, to change one thing and record."""
    return copy.deepcopy(stack_config(stack)[1])


def record_with(stack: str, raw: dict[str, Any]) -> Recording:
    """Record the real program with ``raw`` config under the same stack name."""
    return record(stack, config=raw)


def docker_files(rec: Recording, container: str) -> dict[str, str]:
    """The generated files a Docker container reads, path → content (its files container's writes)."""
    from tests.unit.support import docker_files as files

    return files(rec, container)


def upload(rec: Recording, container: str, path: str) -> str:
    """The content of a generated file a Docker container reads (written into its files volumes)."""
    files = docker_files(rec, container)
    if path not in files:
        raise KeyError(f"{container} has no generated file {path}; has {sorted(files)}")
    return files[path]


def configmap_file(rec: Recording, configmap: str, path: str) -> str:
    """The content of a generated file mounted from a ConfigMap (key = path without the leading / and / → _)."""
    return rec.find(CONFIGMAP, configmap).inputs["data"][path.strip("/").replace("/", "_")]


def k8s_manifest(r: Resource) -> dict[str, Any]:
    """A recorded Kubernetes resource as the object the provider would apply."""
    _, group_version, kind = r.type.split(":")
    group, version = group_version.split("/")
    return {"apiVersion": version if group == "core" else group_version, "kind": kind, **r.inputs}


def k8s_resources(rec: Recording) -> list[Resource]:
    return [r for r in rec.resources if r.type.startswith("kubernetes:") and r.custom]


def env_of(container: Resource) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


# ---------------------------------------------------------------- real tools


def tool(name: str, apt_package: str) -> str:
    """The path of a real tool; fails (never skips) naming the Debian package that provides it."""
    path = shutil.which(name)
    if not path:
        pytest.fail(f"`{name}` is not installed: `sudo bash .ci/system-packages.sh` installs every system package "
                    f"the tests need ({apt_package} provides it)")
    return path


# ---------------------------------------------------------------- nginx.conf parsing


class Block:
    """One nginx block (``http``, ``server``, ``location = /health`` ...) with its directives."""

    def __init__(self, name: str, args: list[str]):
        self.name, self.args = name, args
        self.directives: list[tuple[str, list[str]]] = []
        self.blocks: list["Block"] = []

    def get(self, name: str) -> list[list[str]]:
        return [a for n, a in self.directives if n == name]

    def one(self, name: str) -> Optional[list[str]]:
        found = self.get(name)
        assert len(found) <= 1, f"{name} appears {len(found)} times in {self.name} {self.args}"
        return found[0] if found else None

    def children(self, name: str) -> list["Block"]:
        return [b for b in self.blocks if b.name == name]

    def location(self, *args: str) -> "Block":
        for b in self.children("location"):
            if b.args == list(args):
                return b
        raise KeyError(f"no location {' '.join(args)} in {self.name} {self.args}")

    def walk(self) -> Iterator["Block"]:
        yield self
        for b in self.blocks:
            yield from b.walk()


def _tokens(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            yield c
            i += 1
        elif c in "'\"":
            j = i + 1
            while text[j] != c:
                j += 2 if text[j] == "\\" else 1
            yield text[i + 1:j]
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                j += 1
            yield text[i:j]
            i = j


def parse_nginx(text: str) -> Block:
    """A small nginx.conf parser: enough to query directives per block in tests."""
    root = Block("main", [])
    stack, words = [root], []
    for tok in _tokens(text):
        if tok == ";":
            stack[-1].directives.append((words[0], words[1:]))
            words = []
        elif tok == "{":
            b = Block(words[0], words[1:])
            stack[-1].blocks.append(b)
            stack.append(b)
            words = []
        elif tok == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(tok)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


def servers(conf: Block) -> tuple[Block, Block]:
    """(plain HTTP server, HTTPS server) of a rendered conf."""
    http = conf.children("http")[0]
    plain = [s for s in http.children("server") if "ssl" not in s.one("listen")]
    tls = [s for s in http.children("server") if "ssl" in s.one("listen")]
    assert len(plain) == 1 and len(tls) == 1
    return plain[0], tls[0]
