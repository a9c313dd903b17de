"""The ``prod`` stack made deployable on the Kubernetes test cluster: the repository's
``Pulumi.prod.yaml`` with only images (the local test images: no registry is reachable), storage
(1Gi, the cluster's static volumes), CPU requests (20m: the node has 2 cores; limits unchanged) and
the namespace (each test its own) changed (tests/real/test_k8s_prod.py, the workflow tests).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]

IMAGES = {
    "postgres": "localhost/berth-postgres:15",
    "redis": "localhost/berth-redis:7",
    "app1": "localhost/berth-testapp:1",
    "app2": "localhost/berth-testapp:2",
    "backup": "localhost/berth-backup:1",
    "prometheus": "localhost/berth-prometheus:2",
    "grafana": "localhost/berth-grafana-standin:1",
    "postgres_exporter": "localhost/berth-postgres-exporter:1",
    "redis_exporter": "localhost/berth-redis-exporter:1",
    "pushgateway": "localhost/berth-pushgateway:1",
}


#: CPU *requests* of the databases, caches and services (limits unchanged). Up to three copies of the
#: prod stack run at once on the 2-core test node (the prod, faults and deploy-workflow tests): at 100m
#: a third API pod stayed Pending ("Unschedulable"). Berth's own monitoring and backup jobs keep theirs.
CPU_REQUEST = "20m"


def ci_config(namespace: str, app_image: str = IMAGES["app1"]) -> dict[str, Any]:
    """``Pulumi.prod.yaml``'s config with only images, storage sizes, CPU requests, the autoscalers' max (= min) and the namespace changed."""
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"])
    cfg["berth:kubernetes"]["namespace"] = namespace
    for db in cfg.get("berth:databases", {}).values():
        db["image"] = IMAGES["postgres"]
        db["storage"] = "1Gi"
        if "resources" in db:
            db["resources"]["cpu"] = CPU_REQUEST
    for cache in cfg.get("berth:caches", {}).values():
        cache["image"] = IMAGES["redis"]
        cache["storage"] = "1Gi"
        cache.setdefault("resources", {})["cpu"] = CPU_REQUEST
    for svc in cfg.get("berth:services", {}).values():
        svc["image"] = app_image
        if "resources" in svc:
            svc["resources"]["cpu"] = CPU_REQUEST
        if "autoscale" in svc:  # small requests make any start-up look like load: the HPA would go to max
            svc["autoscale"]["max"] = svc["autoscale"]["min"]  # and the 2-core node shared by tests can't hold 10
    for b in cfg.get("berth:backups", {}).values():
        b["image"] = IMAGES["backup"]
        b["storage"] = "1Gi"
    mon = cfg.setdefault("berth:monitoring", {})
    mon.update({
        "prometheus_image": IMAGES["prometheus"],
        "grafana_image": IMAGES["grafana"],
        "postgres_exporter_image": IMAGES["postgres_exporter"],
        "redis_exporter_image": IMAGES["redis_exporter"],
        "pushgateway_image": IMAGES["pushgateway"],
        "storage": "1Gi",
    })
    return cfg


