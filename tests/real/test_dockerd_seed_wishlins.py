"""The tests of ``test_seed_wishlins.py`` on Docker Engine (dockerd 20.10, ``.ci/dockerd.sh``) instead of
Podman: the same stacks, checks and teardown, with ``berth:docker.engine: docker``. dockerd runs the
containers' health checks itself (no health-check loop on this engine). A module of its own, so that
pytest-xdist runs it beside the Podman one. Docker's CIS checker runs over the deployed stack here.
"""

from tests.real.stacks import seeds
from tests.real.test_seed_wishlins import *  # noqa: F401,F403 - the tests and fixtures, collected here too

ENGINE = "docker"


def test_docker_bench_security_finds_nothing_new(dep):
    seeds.docker_bench_finds_nothing_new(dep)


seeds.run_last(globals(), "test_destroy_stops_at_protected_volumes_then_keeps_them")
