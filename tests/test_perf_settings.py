"""Performance settings of Berth's entry points (issue "Berth faster than a flat Pulumi program"):
they change how fast a stack is evaluated and rendered, never what comes out.

- ``berth.components.program.main`` switches the cyclic garbage collector off for the evaluation
  (``BERTH_GC=default`` keeps it); ``berth.record`` gives it back after each recording.
- ``berth render`` run as a command ends without the interpreter's teardown, after every file is
  written and its message flushed.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from berth.components.program import GC_ENV
from berth.components.program import main as berth_main
from berth.record import ROOT, record
from berth.render import render


def files_of(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def collector_during_evaluation(stack: str) -> bool:
    seen: list[bool] = []

    def program() -> None:
        berth_main()
        seen.append(gc.isenabled())

    record(stack, program=program)
    return seen[0]


def test_evaluation_runs_without_the_collector_and_record_gives_it_back(monkeypatch):
    monkeypatch.delenv(GC_ENV, raising=False)
    assert gc.isenabled()
    assert collector_during_evaluation("dev") is False
    assert gc.isenabled(), "record must restore the collector for the rest of the process"


def test_gc_default_keeps_the_collector(monkeypatch):
    monkeypatch.setenv(GC_ENV, "default")
    assert collector_during_evaluation("dev") is True
    assert gc.isenabled()


def test_record_leaves_a_disabled_collector_disabled(monkeypatch):
    monkeypatch.delenv(GC_ENV, raising=False)
    gc.disable()
    try:
        record("dev")
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("stack", ["dev", "prod"])  # Docker and Kubernetes
def test_collector_setting_does_not_change_render_output(tmp_path, monkeypatch, stack):
    monkeypatch.setenv(GC_ENV, "default")
    render(stack, tmp_path / "with-gc")
    monkeypatch.delenv(GC_ENV)
    render(stack, tmp_path / "without-gc")
    a, b = files_of(tmp_path / "with-gc"), files_of(tmp_path / "without-gc")
    assert a.keys() == b.keys() and len(a) > 3
    assert [name for name in a if a[name] != b[name]] == []


# A command-line run of `berth render` with an exit hook: the hook runs only if the interpreter
# tears down as usual.
# Every collection the cyclic garbage collector starts is a "gc:" line on stderr.
_CLI = """
import atexit, gc, sys
atexit.register(lambda: print("teardown ran", file=sys.stderr))
from berth.cli import main
gc.callbacks.append(lambda phase, info: phase == "start" and print("gc:", info["generation"], file=sys.stderr))
sys.argv = ["berth", *sys.argv[1:]]
main()
print("main returned", file=sys.stderr)
"""


def run_command(*args: str, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", _CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def collections(r: subprocess.CompletedProcess) -> int:
    return sum(1 for line in r.stderr.splitlines() if line.startswith("gc:"))


def test_render_command_runs_without_the_collector_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(GC_ENV, raising=False)
    off = run_command("render", "-s", "prod", "-o", str(tmp_path / "a"), "-q")
    on = run_command("render", "-s", "prod", "-o", str(tmp_path / "b"), "-q", **{GC_ENV: "default"})
    assert off.returncode == 0 and on.returncode == 0, off.stderr + on.stderr
    # Building the argument parser may fill the youngest generation a few times before the command
    # switches the collector off; the collector on runs hundreds of collections.
    assert collections(off) <= 3, off.stderr
    assert collections(on) > 20, on.stderr
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")


def test_render_command_skips_teardown_after_writing_everything(tmp_path):
    out = tmp_path / "out"
    r = run_command("render", "-s", "prod", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "teardown ran" not in r.stderr and "main returned" not in r.stderr
    assert "rendered berth/prod" in r.stdout  # flushed before the process ended
    reference = tmp_path / "reference"
    render("prod", reference)
    assert files_of(out) == files_of(reference)


def test_render_command_error_exit_code_and_message_survive_the_fast_exit(tmp_path):
    r = run_command("render", "-s", "nosuchstack", "-o", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "no stack config Pulumi.nosuchstack.yaml" in r.stderr
    assert "teardown ran" not in r.stderr


def test_render_called_from_python_returns():
    from berth.cli import main

    # An explicit argv is a call from Python (a test, a script): it returns its code, no exit.
    assert main(["render", "-s", "nosuchstack", "-o", "/nonexistent/berth-out"]) == 2


# ---------------------------------------------------------------- Outputs Berth makes of its own


def test_docker_secret_env_entry_is_one_output_secret_and_complete(monkeypatch):
    """A container's secret env entry ``NAME=value`` is one ``apply`` on the value (Output.concat
    made about ten Outputs each), and stays a secret with the full value."""
    import pulumi

    from berth.components.ir import Role, SecretValue, Workload
    from berth.components.targets.docker import DockerContext, container_args

    made: list[int] = []
    from_data = pulumi.Output._from_data.__func__

    def counting(cls, data):
        made.append(1)
        return from_data(cls, data)

    def program() -> None:
        password = pulumi.Output.secret("s3cret")
        w = Workload(name="app", role=Role.APP, image="app:1",
                     secret_env={"DB_PASSWORD": SecretValue("app-env", "DB_PASSWORD", password),
                                 "PLAIN": SecretValue("app-env", "PLAIN", "given")})
        monkeypatch.setattr(pulumi.Output, "_from_data", classmethod(counting))
        envs = container_args(DockerContext("p", "p-internal", "p-edge"), w)["envs"]
        monkeypatch.undo()
        assert len(made) <= 1, f"{len(made)} Outputs for one secret env entry"
        entry = envs[0]
        pulumi.export("entry", entry)
        pulumi.export("entry_is_secret", pulumi.Output.from_input(entry.is_secret()))
        pulumi.export("plain", envs[1])

    rec = record("dev", program=program)
    assert rec.outputs == {"entry": "DB_PASSWORD=s3cret", "entry_is_secret": True, "plain": "PLAIN=given"}
