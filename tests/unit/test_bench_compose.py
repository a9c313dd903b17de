"""bench/compose.py: the Compose baseline carries what the Pulumi containers get, uploads included."""

from __future__ import annotations

from bench.compose import compose_from_state

WRITER = "urn:pulumi:dev::berth::docker:index/container:Container::proxy-files"
PROXY = "urn:pulumi:dev::berth::docker:index/container:Container::proxy"


def _state() -> dict:
    return {"resources": [
        {"urn": WRITER, "custom": True, "type": "docker:index/container:Container", "inputs": {
            "name": "berth-dev-proxy-files", "image": "nginx:1", "mustRun": False, "readOnly": False,
            "command": ["sh", "-c", "test -f /berth-upload/0/tls.key"],
            "uploads": [{"file": "/berth-upload/0/tls.key", "content": {"plaintext": '"KEY $HOME"'},
                         "permissions": "0400"}]}},
        {"urn": PROXY, "custom": True, "type": "docker:index/container:Container", "dependencies": [WRITER],
         "inputs": {"name": "berth-dev-proxy", "image": "nginx:1", "readOnly": True, "wait": True}},
    ]}


def test_uploads_become_inline_configs_at_the_same_path_and_mode():
    out = compose_from_state(_state(), "p")
    writer = out["services"]["berth-dev-proxy-files"]
    assert writer["configs"] == [{"source": "berth-dev-proxy-files-upload-0", "target": "/berth-upload/0/tls.key",
                                  "mode": 0o400}]
    # The secret value is literal: Compose must not interpolate `$HOME` in it.
    assert out["configs"] == {"berth-dev-proxy-files-upload-0": {"content": "KEY $$HOME"}}


def test_the_workload_waits_for_its_writer_to_complete():
    out = compose_from_state(_state(), "p")
    assert out["services"]["berth-dev-proxy"]["depends_on"] == {
        "berth-dev-proxy-files": {"condition": "service_completed_successfully"}}
    assert "configs" not in out["services"]["berth-dev-proxy"]
