"""berth.docker_client: the Docker SDK's client reaches an ssh:// host as the docker CLI does."""

from berth.docker_client import docker_client


def test_an_ssh_host_without_a_port_leaves_the_port_to_the_ssh_config():
    # The SDK would run `ssh -p 22`, overriding the Port of the host's entry in ~/.ssh/config.
    assert docker_client("ssh://deploy@shop.example.com").api._custom_adapter.ssh_host == "deploy@shop.example.com"


def test_a_port_in_the_url_is_kept():
    assert docker_client("ssh://deploy@shop.example.com:2200").api._custom_adapter.ssh_host == \
        "deploy@shop.example.com:2200"


def test_other_hosts_are_the_sdk_s():
    client = docker_client("unix:///run/example/docker.sock")
    assert client.api.base_url == "http+docker://localhost"
