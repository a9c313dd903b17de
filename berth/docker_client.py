"""The Docker SDK's client for a stack's Docker host, reached as the docker CLI and the provider reach it
(``berth status``, ``berth recover``)."""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlparse

#: The API version asked for: Docker Engine 20.10 and Podman 4 serve it, and newer engines too. Given,
#: the SDK does not ask the host first (before the ssh:// fix below could apply).
API_VERSION = "1.41"


def docker_client(host: Optional[str]) -> Any:
    """``host``: ``ssh://user@host[:port]``, ``unix://...``, ``tcp://...``, or none (``DOCKER_HOST``, then
    the local socket). ssh:// runs the ssh client (the user's ~/.ssh/config, agent and known hosts)."""
    import docker

    if not host:
        return docker.from_env()
    if not host.startswith("ssh://"):
        return docker.DockerClient(base_url=host, version=API_VERSION)
    client = docker.DockerClient(base_url=host, use_ssh_client=True, version=API_VERSION)
    if urlparse(host).port is None:
        # The SDK adds the default port to the URL and runs `ssh -p 22`, which overrides the Port that
        # ~/.ssh/config gives the host; the docker CLI and the provider leave the port to the ssh client.
        adapter = client.api._custom_adapter
        if adapter.ssh_host.endswith(":22"):
            adapter.ssh_host = adapter.ssh_host[: -len(":22")]
    return client
