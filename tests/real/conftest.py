"""Configuration shared by the real-target tests (tests/real)."""

from __future__ import annotations

import shlex
from socket import SHUT_WR

import pytest
from docker.models.containers import Container, ExecResult
from docker.utils.socket import STDERR, STDOUT, frames_iter


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in tests/conftest.py; registering twice is harmless and keeps
    # `pytest tests/real` working on its own.
    config.addinivalue_line("markers", "real_docker: needs a real Docker engine (Podman's API; tests/real)")


# ---------------------------------------------------------------------------------------------------
# Container exec without lost output.
#
# Podman 4.3's Docker-compatible API starts an exec'd process before it has attached the HTTP stream
# to the process's output: what a short command prints before the attach is done is lost, and the
# exec still reports exit code 0 with no output. Measured here under CPU load (three busy loops):
# `stat -c %a /tmp` through docker-py's `exec_run` came back empty in 7-26 of 200-300 runs; with a
# 0.1 s sleep before the command, 0 of 200; with a sleep after it, 12 of 200 (the output is lost at
# the start, not at the end). So every exec here waits for a line on its stdin, which is sent once
# the attach has been made (the hijacked connection is up), and only then runs the command:
# 0 of 300 lost under the same load. `exec_run`'s other modes (detach, stream, socket, tty, stdin)
# are left as they are; the tests use the plain one.

_EXEC_RUN = Container.exec_run
_GATE = 'IFS= read -r _ || :; exec "$@"'


def _exec_run_after_attach(self, cmd, stdout=True, stderr=True, stdin=False, tty=False, privileged=False, user="",
                           detach=False, stream=False, socket=False, environment=None, workdir=None, demux=False):
    if stdin or tty or detach or stream or socket:
        return _EXEC_RUN(self, cmd, stdout=stdout, stderr=stderr, stdin=stdin, tty=tty, privileged=privileged,
                         user=user, detach=detach, stream=stream, socket=socket, environment=environment,
                         workdir=workdir, demux=demux)
    api = self.client.api
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    exec_id = api.exec_create(self.id, ["sh", "-c", _GATE, "exec-after-attach", *argv], stdout=stdout,
                              stderr=stderr, stdin=True, privileged=privileged, user=user,
                              environment=environment, workdir=workdir)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)
    try:
        raw.sendall(b"\n")
        raw.shutdown(SHUT_WR)  # the command's own stdin ends here, as with exec_run
        frames = list(frames_iter(sock, tty=False))
    finally:
        sock.close()
    code = api.exec_inspect(exec_id)["ExitCode"]
    if demux:
        out = b"".join(d for s, d in frames if s == STDOUT) or None
        err = b"".join(d for s, d in frames if s == STDERR) or None
        return ExecResult(code, (out if stdout else None, err if stderr else None))
    return ExecResult(code, b"".join(d for _, d in frames))  # both streams, in the order they came


Container.exec_run = _exec_run_after_attach
