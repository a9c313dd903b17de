"""The tests of ``test_seed_flow_masters.py`` on Docker Engine (dockerd 20.10, ``.ci/dockerd.sh``) instead of
Podman: the same stacks, checks and teardown, with ``berth:docker.engine: docker``. dockerd runs the
containers' health checks itself (no health-check loop on this engine). A module of its own, so that
pytest-xdist runs it beside the Podman one. Docker's CIS checker runs over each deployed stack here.
"""

from tests.real.stacks import seeds
from tests.real.test_seed_flow_masters import *  # noqa: F401,F403 - the tests and fixtures, collected here too

ENGINE = "docker"


def test_dev_docker_bench_security_finds_nothing_new(dev):
    seeds.docker_bench_finds_nothing_new(dev)


seeds.run_last(globals(), "test_dev_preview_no_changes_then_destroy", "test_prod_up_and_mcp_calls_the_app",
               "test_prod_mongo_backup_drop_restore_keeps_the_document")


def test_prod_docker_bench_security_finds_nothing_new(prod):
    seeds.docker_bench_finds_nothing_new(prod)


seeds.run_last(globals(), "test_prod_preview_no_changes_then_destroy_keeps_protected_volumes")
