"""The ``realdev`` stack: the repo's ``Pulumi.dev.yaml`` with ONLY image settings pointed at the local
test images (tests/images/), the proxy's host ports moved to free loopback ports and the proxy's
resolver off (the test image's nginx 1.22 lacks the `resolve` upstream parameter).
``tests/real/test_docker_dev.py`` writes it into a temporary project; nothing is hand-copied, so the
test follows the real dev stack.
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
STACK = "realdev"

APP_IMAGE = "localhost/berth-testapp:1"
IMAGES = {
    "postgres": "localhost/berth-postgres:15",
    "redis": "localhost/berth-redis:7",
    "nginx": "localhost/berth-nginx:1",
    "backup": "localhost/berth-backup:1",
    "prometheus": "localhost/berth-prometheus:2",
    "grafana": "localhost/berth-grafana-standin:1",
    "postgres_exporter": "localhost/berth-postgres-exporter:1",
    "redis_exporter": "localhost/berth-redis-exporter:1",
    "pushgateway": "localhost/berth-pushgateway:1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def realdev_config(dev: dict[str, Any], http_port: int, https_port: int, app_image: str = APP_IMAGE,
                   engine: str = "podman") -> dict[str, Any]:
    """``dev`` (the ``config:`` mapping of Pulumi.dev.yaml) with test images and free proxy ports, for
    the Docker API ``engine`` serves (``berth:docker.engine``: Podman's unless told ``docker``)."""
    cfg = copy.deepcopy(dev)
    cfg.setdefault("berth:docker", {})["engine"] = engine
    for name, db in (cfg.get("berth:databases") or {}).items():
        if db.get("engine", "postgres") != "postgres":
            raise ValueError(f"database {name}: only postgres has a test image")
        db["image"] = IMAGES["postgres"]
    for cache in (cfg.get("berth:caches") or {}).values():
        cache["image"] = IMAGES["redis"]
    for svc in (cfg.get("berth:services") or {}).values():
        svc["image"] = app_image
    proxy = cfg.get("berth:proxy")
    if proxy is not None:
        proxy["image"] = IMAGES["nginx"]
        proxy["http_port"] = http_port
        proxy["https_port"] = https_port
        proxy["bind_address"] = "127.0.0.1"
        # The test image's nginx is Debian's 1.22: the `resolve` upstream parameter that the default
        # resolver uses needs nginx >= 1.27.3, so names are resolved once at start (an image-version
        # setting, like the image itself).
        proxy["resolver"] = None
    for backup in (cfg.get("berth:backups") or {}).values():
        backup["image"] = IMAGES["backup"]
    mon = cfg.get("berth:monitoring")
    if isinstance(mon, dict) and mon.get("enabled", True):
        mon["prometheus_image"] = IMAGES["prometheus"]
        mon["grafana_image"] = IMAGES["grafana"]
        mon["postgres_exporter_image"] = IMAGES["postgres_exporter"]
        mon["redis_exporter_image"] = IMAGES["redis_exporter"]
        mon["pushgateway_image"] = IMAGES["pushgateway"]
    return cfg


def load_dev_config(source: Path = ROOT / "Pulumi.dev.yaml") -> dict[str, Any]:
    """The ``config:`` mapping of the repository's dev stack."""
    return (yaml.safe_load(source.read_text()) or {}).get("config") or {}
