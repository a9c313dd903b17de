"""Shared test fixtures: recordings of the real program per stack, evaluated once per session."""

from __future__ import annotations

import pytest

from berth.record import Recording, record


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_docker: needs a real Docker engine (tests/real)")
    config.addinivalue_line("markers", "real_k8s: needs the real cluster started by .ci/k8s/up.sh (tests/real)")
    config.addinivalue_line("markers", "workflows: runs a GitHub workflow with act (.ci/act.sh; tests/workflows)")


#: The longest modules, longest first. pytest.ini hands whole files to two workers (--dist loadfile) in
#: collection order (--no-loadscope-reorder; xdist would start with the files that hold the most tests),
#: so a long module collected last would run alone at the end of the run; these
#: go first, everything else after them in its usual order (their own tests keep their order).
LONGEST_FIRST = (
    "tests/workflows/test_preview_workflow.py",
    "tests/workflows/test_deploy_and_drift_workflows.py",
    "tests/real/test_dockerd_dev.py",
    "tests/real/test_faults_k8s.py",
    "tests/real/test_k8s_prod.py",
    "tests/real/test_docker_dev.py",
    "tests/workflows/test_ci_workflow.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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
