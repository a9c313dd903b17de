"""Snapshots of every config file the dev (Docker) and prod (Kubernetes) stacks generate, taken from
the real program under recording mocks. A change shows up as a reviewed diff of tests/snapshots/."""

from __future__ import annotations

import pytest

from cfgtools import (CONFIGMAP, CRONJOB, INGRESS, SNAPSHOTS, assert_snapshot, configmap_file, k8s_manifest,
                      to_yaml, upload)

# snapshot name → (container, file path uploaded into it)
DEV_FILES = {
    "dev/nginx.conf": ("proxy", "/etc/nginx/berth/nginx.conf"),
    "dev/prometheus.yml": ("prometheus", "/etc/prometheus/prometheus.yml"),
    "dev/alerts.yml": ("prometheus", "/etc/prometheus/alerts.yml"),
    "dev/grafana-datasource.yml": ("grafana", "/etc/grafana/provisioning/datasources/prometheus.yml"),
    "dev/grafana-dashboard-provider.yml": ("grafana", "/etc/grafana/provisioning/dashboards/berth.yml"),
    "dev/grafana-dashboard.json": ("grafana", "/etc/grafana/dashboards/berth.json"),
    "dev/backup.sh": ("db-backup", "/berth/backup.sh"),
    "dev/restore.sh": ("db-backup", "/berth/restore.sh"),
    "dev/crontab": ("db-backup", "/berth/crontab"),
}

# snapshot name → (ConfigMap resource, file path mounted from it)
PROD_FILES = {
    "prod/prometheus.yml": ("prometheus-files", "/etc/prometheus/prometheus.yml"),
    "prod/alerts.yml": ("prometheus-files", "/etc/prometheus/alerts.yml"),
    "prod/grafana-datasource.yml": ("grafana-files", "/etc/grafana/provisioning/datasources/prometheus.yml"),
    "prod/grafana-dashboard-provider.yml": ("grafana-files", "/etc/grafana/provisioning/dashboards/berth.yml"),
    "prod/grafana-dashboard.json": ("grafana-files", "/etc/grafana/dashboards/berth.json"),
    "prod/backup.sh": ("db-backup-daily-files", "/berth/backup.sh"),
    "prod/restore.sh": ("db-backup-daily-files", "/berth/restore.sh"),
}

# snapshot name → (resource type, resource name): whole manifests as the provider would apply them
PROD_MANIFESTS = {
    "prod/ingress-web.yaml": (INGRESS, "web-ingress"),
    "prod/ingress-web-rl-10-20.yaml": (INGRESS, "web-rl-10-20-ingress"),
    "prod/ingress-web-rl-10-100.yaml": (INGRESS, "web-rl-10-100-ingress"),
    "prod/cronjob-db-backup-daily.yaml": (CRONJOB, "db-backup-daily-cronjob"),
}


@pytest.mark.parametrize("name", sorted(DEV_FILES))
def test_dev_config_snapshot(recorded, name):
    container, path = DEV_FILES[name]
    assert_snapshot(name, upload(recorded("dev"), container, path))


@pytest.mark.parametrize("name", sorted(PROD_FILES))
def test_prod_config_snapshot(recorded, name):
    configmap, path = PROD_FILES[name]
    assert_snapshot(name, configmap_file(recorded("prod"), configmap, path))


@pytest.mark.parametrize("name", sorted(PROD_MANIFESTS))
def test_prod_manifest_snapshot(recorded, name):
    type_, res = PROD_MANIFESTS[name]
    assert_snapshot(name, to_yaml(k8s_manifest(recorded("prod").find(type_, res))))


def test_prod_ingresses_are_all_snapshotted(recorded):
    """A new Ingress (e.g. a new rate-limit group) needs its own snapshot."""
    names = {r.name for r in recorded("prod").by_type(INGRESS)}
    assert names == {res for t, res in PROD_MANIFESTS.values() if t == INGRESS}


def test_generated_files_are_the_same_on_both_targets(recorded):
    """Issue 3: generated files are pure functions of the spec, identical on both targets (only the
    stack name differs)."""
    dev, prod = recorded("dev"), recorded("prod")
    for name, (container, path) in DEV_FILES.items():
        prod_name = name.replace("dev/", "prod/")
        if prod_name not in PROD_FILES:
            continue  # nginx.conf (Ingress on Kubernetes), crontab (CronJobs on Kubernetes)
        a = upload(dev, container, path).replace("berth-dev", "STACK")
        b = configmap_file(prod, PROD_FILES[prod_name][0], path).replace("berth-prod", "STACK")
        assert a == b, f"{path} differs between the targets"


def test_predeploy_job_mounts_the_same_scripts(recorded):
    prod = recorded("prod")
    pre = [r for r in prod.by_type(CONFIGMAP) if r.name.startswith("db-predeploy-backup-")]
    assert len(pre) == 1
    assert pre[0].inputs["data"] == prod.find(CONFIGMAP, "db-backup-daily-files").inputs["data"]


def test_no_orphan_snapshots():
    """Every file under tests/snapshots/ belongs to a case above (a renamed case leaves none behind)."""
    on_disk = {str(p.relative_to(SNAPSHOTS)) for p in SNAPSHOTS.rglob("*") if p.is_file()}
    assert on_disk == set(DEV_FILES) | set(PROD_FILES) | set(PROD_MANIFESTS)
