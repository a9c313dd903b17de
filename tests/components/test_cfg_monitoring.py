"""Monitoring: scrape jobs, exporters, alert rules, Grafana provisioning and its secret password,
Grafana behind the proxy. Pure renderers in tables, then the real program under recording mocks."""

from __future__ import annotations

import json

import pytest
import yaml

from cfgtools import (CONFIGMAP, CONTAINER, SECRET, env_of, k8s_resources, parse_nginx, record_with, servers,
                      stack_raw, upload)
from berth.components.monitoring import MetricsApp, Watched, exporter_workload, monitoring_workloads, scrape_targets
from berth.components.renderers.monitoring import render_alert_rules, render_prometheus_config
from berth.components.spec import MonitoringSpec

SPEC = MonitoringSpec()
PW = "<<grafana-pw>>"


def jobs(apps=(), watched=()):
    cfg = yaml.safe_load(render_prometheus_config(scrape_targets(list(apps), list(watched)), "s"))
    return {j["job_name"]: j for j in cfg["scrape_configs"]}


def rules(targets, backups=()):
    return {r["alert"]: r for r in yaml.safe_load(render_alert_rules(targets, backups))["groups"][0]["rules"]}


@pytest.mark.parametrize(
    "apps,expected",
    [
        ([], {}),
        ([MetricsApp("api", 8000)], {"api": ("api:8000", "/metrics")}),
        ([MetricsApp("api", 8000), MetricsApp("web", 3000, "/internal/metrics")],
         {"api": ("api:8000", "/metrics"), "web": ("web:3000", "/internal/metrics")}),
    ],
    ids=["none", "api", "two-apps-custom-path"],
)
def test_scrape_jobs_for_apps_with_metrics(apps, expected):
    js = jobs(apps)
    apps_jobs = {n: (j["static_configs"][0]["targets"][0], j["metrics_path"]) for n, j in js.items()
                 if j["static_configs"][0]["labels"]["kind"] == "app"}
    assert apps_jobs == expected
    assert js["prometheus"]["static_configs"][0]["targets"] == ["localhost:9090"]


@pytest.mark.parametrize(
    "kind,name,port",
    [("postgres", "db", 9187), ("redis", "redis", 9121), ("mongodb", "docs", 9216)],
)
def test_exporter_scrape_job_and_workload(kind, name, port):
    w = Watched(name, kind, "<<url>>")
    j = jobs(watched=[w])[f"{name}-exporter"]
    assert j["static_configs"] == [{"targets": [f"{name}-exporter:{port}"], "labels": {"kind": kind}}]
    wl = exporter_workload(SPEC, w)
    assert [p.port for p in wl.ports] == [port]
    assert wl.allow_from == ("prometheus",)
    assert "<<url>>" not in json.dumps(wl.env)  # credentials only as secret env
    assert wl.secret_env


def test_dev_stack_scrape_jobs(recorded):
    cfg = yaml.safe_load(upload(recorded("dev"), "prometheus", "/etc/prometheus/prometheus.yml"))
    got = {j["job_name"]: j["static_configs"][0]["targets"] for j in cfg["scrape_configs"]}
    # worker and beat expose no metrics: not scraped
    assert got == {"api": ["api:8000"], "db-exporter": ["db-exporter:9187"],
                   "redis-exporter": ["redis-exporter:9121"], "prometheus": ["localhost:9090"],
                   "pushgateway": ["pushgateway:9091"]}  # backup jobs push their success time
    assert cfg["rule_files"] == ["/etc/prometheus/alerts.yml"]  # the path the alerts file is mounted at


# No DiskFillingUp: it needs node-exporter with host mounts, which the policy pack forbids (not generated).
REQUIRED_ALERTS = ["TargetDown", "PostgresDown", "RedisDown", "HighErrorRate", "HighLatencyP95", "BackupTooOld",
                   "BackupMissing"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("alert", REQUIRED_ALERTS)
def test_stack_alert_rules_present(recorded, stack, alert):
    rec = recorded(stack)
    text = (upload(rec, "prometheus", "/etc/prometheus/alerts.yml") if stack == "dev"
            else rec.find(CONFIGMAP, "prometheus-files").inputs["data"]["etc_prometheus_alerts.yml"])
    found = rules_in(text)
    assert alert in found
    assert found[alert]["labels"]["severity"] in ("critical", "warning")
    assert found[alert]["annotations"]["summary"]


def rules_in(text):
    return {r["alert"]: r for r in yaml.safe_load(text)["groups"][0]["rules"]}


@pytest.mark.parametrize(
    "kinds,present,absent",
    [
        ({"app"}, {"TargetDown", "HighErrorRate", "HighLatencyP95"},
         {"PostgresDown", "RedisDown", "MongoDown"}),
        ({"postgres"}, {"PostgresDown", "PostgresTooManyConnections"}, {"RedisDown", "HighErrorRate"}),
        ({"redis"}, {"RedisDown"}, {"PostgresDown", "HighLatencyP95"}),
        ({"mongodb"}, {"MongoDown"}, {"PostgresDown"}),
    ],
)
def test_alert_rules_follow_what_is_watched(kinds, present, absent):
    from berth.components.renderers.monitoring import ScrapeTarget

    got = rules([ScrapeTarget(k, (f"{k}:1",), kind=k) for k in kinds])
    assert present <= set(got) and not (absent & set(got))


@pytest.mark.parametrize("db,max_age", [("db", 90000), ("orders", 7 * 86400 + 3600)])
def test_backup_too_old_threshold(db, max_age):
    got = rules([], [(db, max_age)])
    assert got["BackupTooOld"]["expr"] == \
        f'time() - berth_backup_last_success_timestamp_seconds{{database="{db}"}} > {max_age}'
    assert got["BackupTooOld"]["labels"]["database"] == db


def test_dev_backup_alert_allows_a_day_plus_an_hour(recorded):
    found = rules_in(upload(recorded("dev"), "prometheus", "/etc/prometheus/alerts.yml"))
    assert found["BackupTooOld"]["expr"].endswith("> 90000")  # daily at 02:00 + 1h slack


# metric name prefix → the scrape-job kind that exposes it
METRIC_SOURCE = {"pg_": "postgres", "redis_": "redis", "mongodb_": "mongodb", "http_": "app",
                 "node_": "node", "berth_backup_": "backup"}


@pytest.mark.parametrize("alert", ["PostgresDown", "RedisDown", "HighErrorRate", "HighLatencyP95",
                                   "BackupTooOld", "BackupMissing"])
def test_alert_metric_is_scraped_in_dev(recorded, alert):
    """An alert whose metric no scrape job collects can never fire (or, with absent(), always fires)."""
    dev = recorded("dev")
    kinds = {j["static_configs"][0]["labels"]["kind"]
             for j in yaml.safe_load(upload(dev, "prometheus", "/etc/prometheus/prometheus.yml"))["scrape_configs"]}
    expr = rules_in(upload(dev, "prometheus", "/etc/prometheus/alerts.yml"))[alert]["expr"]
    needed = {kind for prefix, kind in METRIC_SOURCE.items() if f"{prefix}" in expr.replace("(", " ").replace("{", " ")}
    assert needed, f"no known metric in {expr}"
    assert needed <= kinds, f"{alert} needs a scrape job of kind {needed - kinds}; scraped kinds: {sorted(kinds)}"


# ---------------------------------------------------------------- Grafana


def test_grafana_password_is_secret_env_pure():
    ws = {w.name: w for w in monitoring_workloads(SPEC, "s", [], [], PW)}
    g = ws["grafana"]
    assert g.secret_env["GF_SECURITY_ADMIN_PASSWORD"].value == PW
    assert "GF_SECURITY_ADMIN_PASSWORD" not in g.env
    for w in ws.values():
        assert PW not in json.dumps(w.env) and all(PW not in str(f.content) for f in w.files)


def test_prod_grafana_password_by_secret_ref_only(recorded):
    prod = recorded("prod")
    placeholder = "<<berth:password:grafana-admin-password>>"
    assert prod.find(SECRET, "grafana-env").inputs["stringData"] == {"GF_SECURITY_ADMIN_PASSWORD": placeholder}
    sts = prod.find("kubernetes:apps/v1:StatefulSet", "grafana-statefulset")
    env = sts.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "GF_SECURITY_ADMIN_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "grafana-env", "key": "GF_SECURITY_ADMIN_PASSWORD"}}} in env
    for r in k8s_resources(prod):
        if r.type != SECRET:
            assert placeholder not in json.dumps(r.inputs), f"the Grafana password appears in {r.type} {r.name}"


def test_dev_grafana_password_never_in_files(recorded):
    dev = recorded("dev")
    placeholder = "<<berth:password:grafana-admin-password>>"
    assert env_of(dev.find(CONTAINER, "grafana"))["GF_SECURITY_ADMIN_PASSWORD"] == placeholder
    for c in dev.by_type(CONTAINER):
        assert placeholder not in json.dumps(c.inputs.get("uploads", [])), c.name
        if c.name != "grafana":
            assert placeholder not in json.dumps(c.inputs.get("envs", [])), c.name


def test_grafana_provisioning_is_consistent(recorded):
    dev = recorded("dev")
    ds = yaml.safe_load(upload(dev, "grafana", "/etc/grafana/provisioning/datasources/prometheus.yml"))
    prov = yaml.safe_load(upload(dev, "grafana", "/etc/grafana/provisioning/dashboards/berth.yml"))
    dash = json.loads(upload(dev, "grafana", "/etc/grafana/dashboards/berth.json"))
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["isDefault"]
    assert prov["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    assert {p["title"] for p in dash["panels"]} >= {"p95 latency", "Request rate", "Error rate (5xx share)"}
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == source["uid"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in p["targets"])
    assert len(dash["uid"]) <= 40


def _grafana_variant(**monitoring):
    raw = stack_raw("dev")
    raw["berth:monitoring"].update(monitoring)
    rec = record_with("dev", raw)
    conf = parse_nginx(upload(rec, "proxy", "/etc/nginx/berth/nginx.conf"))
    grafana = [c for c in rec.by_type(CONTAINER) if c.name == "grafana"]
    return conf, (env_of(grafana[0]) if grafana else None)


def test_dev_grafana_routed_at_grafana_path(recorded):
    dev = recorded("dev")
    conf = parse_nginx(upload(dev, "proxy", "/etc/nginx/berth/nginx.conf"))
    _, tls = servers(conf)
    assert tls.location("/grafana/").one("proxy_pass") == ["http://grafana"]
    ups = {u.args[0]: u for u in conf.children("http")[0].children("upstream")}
    assert ups["grafana"].one("server")[0] == "grafana:3000"
    env = env_of(dev.find(CONTAINER, "grafana"))
    assert env["GF_SERVER_ROOT_URL"] == "https://easyflow.localhost/grafana/"
    assert env["GF_SERVER_SERVE_FROM_SUB_PATH"] == "true"


@pytest.mark.parametrize("monitoring", [{"grafana_path": None}, {"grafana": False}, {"enabled": False}],
                         ids=["no-path", "no-grafana", "monitoring-off"])
def test_dev_grafana_not_routed_when_disabled(monitoring):
    conf, env = _grafana_variant(**monitoring)
    _, tls = servers(conf)
    assert ("/grafana/",) not in {tuple(b.args) for b in tls.children("location")}
    assert "grafana" not in {u.args[0] for u in conf.children("http")[0].children("upstream")}
    if env is not None:
        assert "GF_SERVER_ROOT_URL" not in env


def test_dev_grafana_at_another_path():
    conf, env = _grafana_variant(grafana_path="/dash/")
    _, tls = servers(conf)
    assert tls.location("/dash/").one("proxy_pass") == ["http://grafana"]
    assert env["GF_SERVER_ROOT_URL"] == "https://easyflow.localhost/dash/"


def test_backup_alert_after_sets_how_late_a_dump_may_be():
    """`alert_after` replaces the hour of slack: every minute with 30 s → BackupTooOld past 90 s, and
    BackupMissing after 90 s without any success."""
    from berth.record import record

    cfg = {"berth:target": "docker", "berth:databases": {"db": {"storage": "1Gi"}},
           "berth:backups": {"db": {"alert_after": "30s",
                                    "tiers": [{"name": "minutely", "schedule": "* * * * *", "keep": 2}]}},
           "berth:monitoring": {"enabled": True}}
    found = rules_in(upload(record("t", config=cfg), "prometheus", "/etc/prometheus/alerts.yml"))
    assert found["BackupTooOld"]["expr"].endswith("> 90")
    assert found["BackupMissing"]["for"] == "90s"
