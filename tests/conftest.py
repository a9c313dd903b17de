"""Shared test fixtures: recordings of the real program per stack, evaluated once per session."""

from __future__ import annotations

import pytest

from berth.record import Recording, record


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_docker: needs a real Docker engine (tests/real)")
    config.addinivalue_line("markers", "real_k8s: needs the real cluster started by .ci/k8s/up.sh (tests/real)")
    config.addinivalue_line("markers", "workflows: runs a GitHub workflow with act (.ci/act.sh; tests/workflows)")


@pytest.fixture(scope="session")
def recorded():
    """``recorded("dev")`` → the Recording of ``Pulumi.dev.yaml``; each stack is evaluated once.

    Recordings are shared: tests must not mutate them.
    """
    cache: dict[str, Recording] = {}

    def get(stack: str) -> Recording:
        if stack not in cache:
            cache[stack] = record(stack)
        return cache[stack]

    return get
