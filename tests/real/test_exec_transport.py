"""The tests' container exec (tests/real/conftest.py) loses no output on Podman's Docker API.

Podman 4.3 starts an exec'd process before its output is attached, so a short command's output
could come back empty with exit code 0; every test that reads what a command printed in a
container depends on the exec waiting for the attach. This checks that it does, and that it still
behaves as docker-py's exec_run: exit codes, both streams, demux, environment, user, stdin closed.
"""

from __future__ import annotations

import os
import uuid

import docker
import pytest

pytestmark = pytest.mark.real_docker

IMAGE = "localhost/berth-postgres:15"


@pytest.fixture(scope="module")
def container():
    host = os.environ.get("DOCKER_HOST")
    if not host:
        pytest.fail("DOCKER_HOST is not set: run through .ci/run (CONTRIBUTING.md)", pytrace=False)
    client = docker.DockerClient(base_url=host)
    c = client.containers.run(IMAGE, entrypoint=["sleep"], command=["600"], name=f"berth-t-exec-{uuid.uuid4().hex[:8]}",
                              network_mode="none", detach=True)
    yield c
    c.remove(force=True)


def test_short_commands_never_lose_their_output(container):
    # 150 commands that print at once and exit: ungated, 7-26 of 200 came back empty under load.
    got = [container.exec_run(["stat", "-c", "%a", "/tmp"]) for _ in range(150)]
    lost = [i for i, r in enumerate(got) if r.exit_code != 0 or r.output != b"1777\n"]
    assert not lost, f"{len(lost)} of 150 execs lost or changed their output: {[got[i] for i in lost[:3]]}"


def test_exec_run_contract_is_kept(container):
    assert container.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"]) == (3, b"out\nerr\n")
    assert container.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True) == (0, (b"out\n", b"err\n"))
    assert container.exec_run("sh -c 'echo \"$X\"'", environment={"X": "from-env"}) == (0, b"from-env\n")
    assert container.exec_run(["id", "-u"], user="999") == (0, b"999\n")
    assert container.exec_run(["pwd"], workdir="/tmp") == (0, b"/tmp\n")
    # The command's stdin is closed, as with a plain exec_run: a reader gets end of file, not a hang.
    assert container.exec_run(["cat"]) == (0, b"")
    code, out = container.exec_run(["no-such-command"])
    assert code == 127 and b"not found" in out, (code, out)
