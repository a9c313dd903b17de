"""The tests of ``test_seed_crm.py`` on Docker Engine (dockerd 20.10, ``.ci/dockerd.sh``) instead of
Podman: the same stacks, checks and teardown, with ``berth:docker.engine: docker``. dockerd runs the
containers' health checks itself (no health-check loop on this engine). A module of its own, so that
pytest-xdist runs it beside the Podman one. Docker's CIS checker runs over both deployed stacks here.
"""

from tests.real.stacks import seeds
from tests.real.test_seed_crm import *  # noqa: F401,F403 - the tests and fixtures, collected here too

ENGINE = "docker"


def test_docker_bench_security_finds_nothing_new_on_both(stacks):
    for d in stacks.values():
        seeds.docker_bench_finds_nothing_new(d)


seeds.run_last(globals(), "test_destroying_staging_leaves_production_untouched", "test_production_destroy_after_unprotect")
