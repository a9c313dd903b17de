"""The forms people write are accepted and converted to what the running software reads: durations
→ seconds, Kubernetes sizes → Redis and JVM units, retention words → Prometheus durations, numbers
where a string is expected → the string as written. Each row failed before these conversions."""

from __future__ import annotations

import pytest

from berth.components.spec import parse_spec
from berth.components.cache import redis_command
from berth.record import record

from .support import CONTAINER, STACK, config

APP = {"image": "ghcr.io/acme/app:1.0.0"}
WEB = {**APP, "port": 8000}


def base(**sections):
    return {"target": "docker", **sections}


def health(**h):
    return base(services={"api": {**WEB, "health": {"path": "/health", **h}}})


def tier(schedule):
    return base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "t", "schedule": schedule, "keep": 3}]}})


# (case id, raw spec, function reading the converted value, expected value)
FORMS = [
    # durations → whole seconds (Docker healthcheck and Kubernetes probe fields)
    ("interval-15s", health(interval="15s"), lambda s: s.services["api"].health.interval, 15),
    ("interval-1m", health(interval="1m"), lambda s: s.services["api"].health.interval, 60),
    ("interval-90-string", health(interval="90"), lambda s: s.services["api"].health.interval, 90),
    ("interval-90", health(interval=90), lambda s: s.services["api"].health.interval, 90),
    ("start-period-1m30s", health(start_period="1m30s"), lambda s: s.services["api"].health.start_period, 90),
    ("timeout-5s", health(timeout="5s"), lambda s: s.services["api"].health.timeout, 5),
    # Redis maxmemory: Kubernetes units become Redis's (Redis reads 512m as 512*10^6 bytes)
    ("maxmemory-512Mi", base(caches={"c": {"maxmemory": "512Mi"}}), lambda s: s.caches["c"].maxmemory, "512mb"),
    ("maxmemory-1Gi", base(caches={"c": {"maxmemory": "1Gi"}}), lambda s: s.caches["c"].maxmemory, "1gb"),
    ("maxmemory-256MB", base(caches={"c": {"maxmemory": "256MB"}}), lambda s: s.caches["c"].maxmemory, "256mb"),
    ("maxmemory-1gb", base(caches={"c": {"maxmemory": "1gb"}}), lambda s: s.caches["c"].maxmemory, "1gb"),
    ("maxmemory-bytes", base(caches={"c": {"maxmemory": 268435456}}), lambda s: s.caches["c"].maxmemory, "268435456"),
    # ... and the cache's default memory limit leaves Redis room above it
    ("maxmemory-raises-default-limit", base(caches={"c": {"maxmemory": "1gb"}}),
     lambda s: s.caches["c"].resources.memory_limit, "1408Mi"),
    ("maxmemory-keeps-small-default-limit", base(caches={"c": {"maxmemory": "256mb"}}),
     lambda s: s.caches["c"].resources.memory_limit, "512Mi"),
    # JVM sizes (Neo4j memory settings, Elasticsearch -Xmx)
    ("heap-1Gi", base(graphs={"g": {"heap": "1Gi", "resources": {"memory_limit": "2Gi"}}}), lambda s: s.graphs["g"].heap, "1g"),
    ("heap-512M", base(graphs={"g": {"heap": "512M"}}), lambda s: s.graphs["g"].heap, "512m"),
    ("heap-768MB", base(graphs={"g": {"heap": "768MB"}}), lambda s: s.graphs["g"].heap, "768m"),
    ("heap-1.5g", base(logging={"heap": "1.5g", "resources": {"memory_limit": "4Gi"}}), lambda s: s.logging.heap, "1536m"),
    ("page-cache-256Mi", base(graphs={"g": {"page_cache": "256Mi"}}), lambda s: s.graphs["g"].page_cache, "256m"),
    # Prometheus retention
    ("retention-15d", base(monitoring={"retention": "15d"}), lambda s: s.monitoring.retention, "15d"),
    ("retention-15-days", base(monitoring={"retention": "15 days"}), lambda s: s.monitoring.retention, "15d"),
    ("retention-1-year", base(monitoring={"retention": "1 year"}), lambda s: s.monitoring.retention, "1y"),
    ("retention-1y2w", base(monitoring={"retention": "1y2w"}), lambda s: s.monitoring.retention, "1y2w"),
    # cron: what both Kubernetes and supercronic read
    ("cron-daily", tier("@daily"), lambda s: s.backups["db"].tiers[0].schedule, "@daily"),
    ("cron-midnight", tier("@midnight"), lambda s: s.backups["db"].tiers[0].schedule, "@daily"),
    ("cron-steps", tier("*/15 * * * *"), lambda s: s.backups["db"].tiers[0].schedule, "*/15 * * * *"),
    ("cron-names", tier("0 3 1 jan SUN"), lambda s: s.backups["db"].tiers[0].schedule, "0 3 1 jan SUN"),
    ("cron-spaces", tier("  0  2 * * 1-5 "), lambda s: s.backups["db"].tiers[0].schedule, "0 2 * * 1-5"),
    # percentages and rates
    ("percent-sign", base(services={"api": {**WEB, "autoscale": {"min": 1, "max": 3, "cpu": "70%"}}}),
     lambda s: s.services["api"].autoscale.cpu, 70),
    ("rate-r-per-s", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api", "rate_limit": {"rate": "10r/s"}}]}),
     lambda s: s.proxy.routes[0].rate_limit.rate, 10),
    ("rate-r-per-m", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api", "rate_limit": {"rate": "600r/m"}}]}),
     lambda s: s.proxy.routes[0].rate_limit.rate, 10),
    # numbers where a string is expected, as YAML gives them
    ("version-int", base(databases={"db": {"version": 15}}), lambda s: s.databases["db"].version, "15"),
    ("version-float-7.0", base(databases={"db": {"engine": "mongodb", "version": 7.0}}), lambda s: s.databases["db"].version, "7.0"),
    ("cache-version-float", base(caches={"c": {"version": 7.2}}), lambda s: s.caches["c"].version, "7.2"),
    ("broker-version-float", base(brokers={"b": {"version": 3.13}}), lambda s: s.brokers["b"].version, "3.13"),
    ("env-int", base(services={"api": {**APP, "env": {"WORKERS": 4}}}), lambda s: s.services["api"].env["WORKERS"], "4"),
    ("env-bool", base(services={"api": {**APP, "env": {"DEBUG": True}}}), lambda s: s.services["api"].env["DEBUG"], "true"),
    ("command-int", base(services={"api": {**APP, "command": ["celery", "--concurrency", 4]}}),
     lambda s: s.services["api"].command, ["celery", "--concurrency", "4"]),
    ("settings-int", base(databases={"db": {"settings": {"max_connections": 200, "fsync": False}}}),
     lambda s: s.databases["db"].settings, {"max_connections": "200", "fsync": "false"}),
    ("secret-number", base(secrets={"pin": 1234}), lambda s: s.secrets["pin"], "1234"),
    ("database-name-number", base(databases={"db": {"engine": "mongodb", "database": 2024}}), lambda s: s.databases["db"].database, "2024"),
    ("cpu-number", base(services={"api": {**APP, "resources": {"cpu": 0.5, "cpu_limit": 2}}}),
     lambda s: (s.services["api"].resources.cpu, s.services["api"].resources.cpu_limit), ("0.5", "2")),
    # sizes: a fraction of a binary unit becomes whole Mi
    ("storage-1.5Gi", base(databases={"db": {"storage": "1.5Gi"}}), lambda s: s.databases["db"].storage, "1536Mi"),
    # names: DNS is case-insensitive; Ingress hosts must be lowercase
    ("domain-uppercase", base(domain="Shop.Example.COM"), lambda s: s.domain, "shop.example.com"),
    # a partly given `resources` keeps the component's own defaults, as the reference says
    ("partial-resources-keep-component-defaults", base(databases={"db": {"resources": {"cpu": "500m"}}}),
     lambda s: s.databases["db"].resources.memory_limit, "1Gi"),
]


@pytest.mark.parametrize("raw,read,expected", [c[1:] for c in FORMS], ids=[c[0] for c in FORMS])
def test_common_forms_are_converted(raw, read, expected):
    assert read(parse_spec(raw)) == expected


def test_converted_values_reach_the_running_software():
    """The converted values are what the containers get, not the forms written."""
    spec = parse_spec(base(caches={"c": {"maxmemory": "512Mi"}}))
    assert "--maxmemory 512mb" in redis_command(spec.caches["c"])[-1]
    r = record(STACK, config=config("docker", services={"api": {**WEB, "health": {"path": "/h", "interval": "1m", "timeout": "5s"}}}))
    hc = r.find(CONTAINER, "api").inputs["healthcheck"]
    assert (hc["interval"], hc["timeout"]) == ("1m0s", "5s")  # Go durations, as Docker reports them
