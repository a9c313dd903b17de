"""The tests of ``test_seed_flow_masters.py`` on Docker Engine (dockerd 20.10, ``.ci/dockerd.sh``) instead of
Podman: the same stacks, checks and teardown, with ``berth:docker.engine: docker``. dockerd runs the
containers' health checks itself (no health-check loop on this engine). A module of its own, so that
pytest-xdist runs it beside the Podman one.
"""

from tests.real.test_seed_flow_masters import *  # noqa: F401,F403 - the tests and fixtures, collected here too

ENGINE = "docker"
