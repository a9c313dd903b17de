"""Configuration shared by the real-target tests (tests/real)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in tests/conftest.py; registering twice is harmless and keeps
    # `pytest tests/real` working on its own.
    config.addinivalue_line("markers", "real_docker: needs a real Docker engine (Podman's API; tests/real)")
