"""The spec rejects every kind of bad input with a message that names the config key and shows the
bad value, and it does so before any resource is registered."""

from __future__ import annotations

import pulumi
import pytest

from berth.record import record
from berth.components.program import main
from berth.components.spec import ConfigError, parse_spec

from .support import STACK, config

APP = {"image": "ghcr.io/acme/app:1.0.0"}


def base(**sections):
    return {"target": "docker", **sections}


# (case id, raw spec without the berth: prefix, config key that must be named, bad value that must be shown)
BAD = [
    ("unknown-top-level-key", base(servics={"api": APP}), "berth:servics", "servics"),
    ("unknown-nested-key", base(services={"api": {**APP, "prot": 8080}}), "berth:services.api.prot", "8080"),
    ("wrong-type", base(services={"api": {**APP, "port": "eighty"}}), "berth:services.api.port", '"eighty"'),
    ("port-out-of-range", base(services={"api": {**APP, "port": 70000}}), "berth:services.api.port", "70000"),
    ("port-zero", base(services={"api": {**APP, "port": 0}}), "berth:services.api.port", "= 0"),
    ("uses-unknown-database", base(services={"api": {**APP, "uses": ["maindb"]}}), "berth:services.api.uses", "maindb"),
    ("replicas-below-one", base(services={"api": {**APP, "replicas": 0}}), "berth:services.api.replicas", "= 0"),
    ("unknown-target", {"target": "nomad"}, "berth:target", "nomad"),
    (
        "missing-secret",
        base(secrets={"other": "x"}, services={"bot": {**APP, "secret_env": {"BOT_TOKEN": "telegram-token"}}}),
        "berth:services.bot.secret_env.BOT_TOKEN",
        "telegram-token",
    ),
    ("image-latest", base(services={"api": {"image": "ghcr.io/acme/app:latest"}}), "berth:services.api.image", "ghcr.io/acme/app:latest"),
    ("image-no-tag", base(services={"api": {"image": "ghcr.io/acme/app"}}), "berth:services.api.image", "ghcr.io/acme/app"),
    (
        "image-registry-port-no-tag",
        base(services={"api": {"image": "localhost:5000/app"}}),
        "berth:services.api.image",
        "localhost:5000/app",
    ),
    (
        "autoscale-min-above-max",
        base(services={"api": {**APP, "port": 80, "autoscale": {"min": 5, "max": 2}}}),
        "berth:services.api.autoscale",
        '"min": 5',
    ),
    (
        "replica-on-mongodb",
        base(databases={"docs": {"engine": "mongodb", "replica": True}}),
        "berth:databases.docs",
        '"replica": true',
    ),
    (
        "route-to-service-without-port",
        base(services={"worker": APP}, proxy={"routes": [{"path": "/", "service": "worker"}]}),
        "berth:proxy.routes[0].service",
        "worker",
    ),
    (
        "dependency-cycle",
        base(services={"a": {**APP, "depends_on": ["b"]}, "b": {**APP, "depends_on": ["c"]}, "c": {**APP, "depends_on": ["a"]}}),
        "depends_on",
        "a -> b -> c -> a",
    ),
    ("invalid-cpu", base(services={"api": {**APP, "resources": {"cpu": "lots"}}}), "berth:services.api.resources.cpu", "lots"),
    (
        "invalid-memory",
        base(services={"api": {**APP, "resources": {"memory": "512MB"}}}),
        "berth:services.api.resources.memory",
        "write 512Mi",
    ),
    (
        "invalid-storage",
        base(databases={"db": {"storage": "10GB"}}),
        "berth:databases.db.storage",
        "write 10Gi",
    ),
    (
        "cpu-limit-below-request",
        base(services={"api": {**APP, "resources": {"cpu": "500m", "cpu_limit": "250m"}}}),
        "berth:services.api.resources",
        "250m",
    ),
    (
        "memory-limit-below-request",
        base(services={"api": {**APP, "resources": {"memory": "1Gi", "memory_limit": "512Mi"}}}),
        "berth:services.api.resources",
        "512Mi",
    ),
    ("duplicate-name-across-sections", base(databases={"store": {}}, caches={"store": {}}), "berth:caches.store", "store"),
    (
        "duplicate-name-service-and-database",
        base(databases={"api": {}}, services={"api": APP}),
        "berth:services.api",
        "api",
    ),
]


WEB = {**APP, "port": 8000}

# Values whose units the running software reads: refused with the unit to use.
BAD += [
    ("duration-word", base(services={"api": {**WEB, "health": {"path": "/h", "interval": "fast"}}}),
     "berth:services.api.health.interval", "15s, 1m"),
    ("duration-fraction", base(services={"api": {**WEB, "health": {"path": "/h", "timeout": "1.5s"}}}),
     "berth:services.api.health.timeout", "1.5s"),
    ("duration-too-long", base(services={"api": {**WEB, "health": {"path": "/h", "interval": "2h"}}}),
     "berth:services.api.health.interval", "= 7200"),
    ("redis-maxmemory-no-unit", base(caches={"c": {"maxmemory": 512}}), "berth:caches.c.maxmemory", "512mb"),
    ("redis-maxmemory-percent", base(caches={"c": {"maxmemory": "50%"}}), "berth:caches.c.maxmemory", "256mb"),
    ("jvm-heap-kilobytes", base(graphs={"g": {"heap": "512k"}}), "berth:graphs.g.heap", "512m, 2g"),
    ("jvm-heap-no-unit", base(logging={"heap": 512}), "berth:logging.heap", "512m"),
    ("retention-no-unit", base(monitoring={"retention": 15}), "berth:monitoring.retention", "15d"),
    ("retention-bad-unit", base(monitoring={"retention": "15x"}), "berth:monitoring.retention", "15d, 2w"),
    ("cron-four-fields", base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "d", "schedule": "0 2 * *", "keep": 1}]}}),
     "berth:backups.db.tiers[0].schedule", "5-field"),
    ("cron-seconds-field", base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "d", "schedule": "0 0 2 * * *", "keep": 1}]}}),
     "berth:backups.db.tiers[0].schedule", "drop the seconds"),
    ("cron-hour-24", base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "d", "schedule": "0 24 * * *", "keep": 1}]}}),
     "berth:backups.db.tiers[0].schedule", "0-23"),
    ("cron-sunday-7", base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "d", "schedule": "0 2 * * 7", "keep": 1}]}}),
     "berth:backups.db.tiers[0].schedule", "write 0 for Sunday"),
    ("cron-words", base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "d", "schedule": "daily", "keep": 1}]}}),
     "berth:backups.db.tiers[0].schedule", "@daily"),
    ("cron-quartz-L", base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "d", "schedule": "0 2 L * *", "keep": 1}]}}),
     "berth:backups.db.tiers[0].schedule", "'L' is not a number"),
    ("percent-over-100", base(services={"api": {**WEB, "autoscale": {"min": 1, "max": 2, "cpu": "150%"}}}),
     "berth:services.api.autoscale.cpu", "150"),
    ("rate-per-minute-not-whole", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api", "rate_limit": {"rate": "90r/m"}}]}),
     "berth:proxy.routes[0].rate_limit.rate", "1r/s"),
    ("memory-no-unit", base(services={"api": {**APP, "resources": {"memory_limit": 512}}}),
     "berth:services.api.resources.memory_limit", "512Mi"),
]

# Names the target must accept.
BAD += [
    ("namespace-not-a-label", base(kubernetes={"namespace": "Shop_Prod"}), "berth:kubernetes.namespace", "RFC 1123"),
    ("namespace-too-long", base(kubernetes={"namespace": "a" * 64}), "berth:kubernetes.namespace", "63"),
    ("name-prefix", base(name="My_App"), "berth:name", "'my-app'"),
    ("domain-as-url", base(domain="https://shop.example.com/"), "berth:domain", "'shop.example.com'"),
    ("domain-with-port", base(domain="shop.example.com:8443"), "berth:domain", "https_port"),
    ("domain-wildcard", base(domain="*.example.com"), "berth:domain", "no wildcard"),
    ("domain-underscore", base(domain="shop_1.example.com"), "berth:domain", "DNS name"),
    ("postgres-database-name", base(databases={"db": {"database": "Main-DB"}}), "berth:databases.db", "'main_db'"),
    ("postgres-user-name", base(databases={"db": {"user": "app user"}}), "berth:databases.db", "'app_user'"),
    ("mongodb-database-name", base(databases={"db": {"engine": "mongodb", "database": "a/b"}}), "berth:databases.db", "a/b"),
    ("env-var-name", base(services={"api": {**APP, "env": {"MY-VAR": "x"}}}), "berth:services.api.env", "MY-VAR"),
    ("uses-map-var-name", base(databases={"db": {}}, services={"api": {**APP, "uses": {"db": "database-url"}}}),
     "berth:services.api.uses", "database-url"),
    ("writable-path-relative", base(services={"api": {**APP, "writable_paths": ["tmp"]}}),
     "berth:services.api.writable_paths[0]", "absolute path"),
    ("health-path-relative", base(services={"api": {**WEB, "health": {"path": "health"}}}),
     "berth:services.api.health.path", "starting with /"),
    ("metrics-path-relative", base(services={"api": {**WEB, "metrics": {"path": "metrics"}}}),
     "berth:services.api.metrics.path", "starting with /"),
    ("grafana-path-no-slash", base(monitoring={"grafana_path": "/grafana"}), "berth:monitoring.grafana_path", "'/grafana/'"),
    ("image-uppercase", base(services={"api": {"image": "ghcr.io/Acme/App:1.0"}}), "berth:services.api.image",
     "'ghcr.io/acme/app:1.0'"),
    ("backup-image-uppercase", base(databases={"db": {}}, backups={"db": {"image": "Backup:1"}}), "berth:backups.db.image",
     "lowercase"),
    ("tier-name", base(databases={"db": {}}, backups={"db": {"tiers": [{"name": "Daily", "schedule": "@daily", "keep": 1}]}}),
     "berth:backups.db.tiers[0].name", "RFC 1123"),
    ("secret-name", base(secrets={"tls cert": "x"}), "berth:secrets.tls cert", "rename it"),
    ("s3-endpoint-without-scheme", base(databases={"db": {}}, secrets={"a": "1", "b": "2"},
     backups={"db": {"s3": {"endpoint": "s3.amazonaws.com", "bucket": "backups", "access_key_secret": "a", "secret_key_secret": "b"}}}),
     "berth:backups.db.s3.endpoint", "s3.amazonaws.com"),
    ("storage-class-not-a-subdomain", base(kubernetes={"storage_class": "Fast_SSD"}), "berth:kubernetes.storage_class", "RFC 1123"),
    ("docker-host-without-scheme", base(docker={"host": "deploy@host"}), "berth:docker.host", "deploy@host"),
    ("bind-address-not-an-ip", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api"}], "bind_address": "localhost"}),
     "berth:proxy.bind_address", "IP address"),
]

# Contradictions: refused with the key that contradicts.
BAD += [
    ("autoscale-with-replicas", base(services={"api": {**WEB, "replicas": 3, "autoscale": {"min": 2, "max": 4}}}),
     "berth:services.api.replicas", "remove replicas"),
    ("autoscale-with-replicas-1", base(services={"api": {**WEB, "replicas": 1, "autoscale": {"min": 2, "max": 4}}}),
     "berth:services.api.replicas", "remove replicas"),
    ("ready-path-without-port", base(services={"w": {**APP, "health": {"command": ["true"], "ready_path": "/ready"}}}),
     "berth:services.w.health.ready_path", "needs `port`"),
    ("tls-cert-file-with-self-signed", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api"}],
     "tls": {"mode": "self-signed", "cert_file": "/etc/cert.pem"}}), "berth:proxy.tls", "remove cert_file"),
    ("tls-cert-secret-with-files", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api"}],
     "tls": {"mode": "files", "cert_file": "/c", "key_file": "/k", "cert_secret": "c"}}), "berth:proxy.tls", "remove cert_secret"),
    ("tls-secret-missing", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api"}], "tls": {"mode": "secret"}},
     secrets={"tls-key": "k"}), "berth:proxy.tls.cert_secret", "berth:secrets.tls-cert' < fullchain.pem"),
    ("run-as-user-with-root", base(services={"api": {**APP, "run_as_root": True, "run_as_user": 1000}}),
     "berth:services.api.run_as_user", "remove one"),
    ("same-proxy-ports", base(services={"api": WEB}, proxy={"routes": [{"path": "/", "service": "api"}], "http_port": 8443, "https_port": 8443}),
     "berth:proxy", "different ports"),
    ("grafana-path-without-grafana", base(monitoring={"grafana": False, "grafana_path": "/g/"}), "berth:monitoring", "enable grafana"),
    ("kibana-path-without-kibana", base(logging={"kibana": False, "kibana_path": "/k"}), "berth:logging", "enable kibana"),
    ("redis-maxmemory-above-limit", base(caches={"c": {"maxmemory": "1gb", "resources": {"memory_limit": "1Gi"}}}),
     "berth:caches.c.maxmemory", "lower maxmemory"),
    ("neo4j-memory-above-limit", base(graphs={"g": {"heap": "1g", "page_cache": "1g"}}), "berth:graphs.g", "raise memory_limit"),
    ("elasticsearch-heap-above-half", base(logging={"heap": "1536m"}), "berth:logging", "lower heap"),
    ("settings-on-mongodb", base(databases={"db": {"engine": "mongodb", "settings": {"a": "b"}}}), "berth:databases.db", "postgres"),
    ("egress-on-a-database", base(databases={"db": {"egress": False}}), "berth:databases.db.egress",
     "is a setting of berth:services.NAME"),
]

# Unknown keys: the nearest valid key is suggested.
BAD += [
    ("unknown-key-suggests-nested", base(services={"api": {**APP, "replcias": 2}}), "berth:services.api.replcias",
     "did you mean berth:services.api.replicas?"),
    ("unknown-key-suggests-top-level", base(databses={"db": {}}), "berth:databses", "did you mean berth:databases?"),
    ("unknown-key-suggests-deep", base(services={"api": {**WEB, "health": {"path": "/h", "intervall": 5}}}),
     "berth:services.api.health.intervall", "did you mean berth:services.api.health.interval?"),
]

# Input that would deploy and then fail or misbehave (issue 21): refused with the key and the fix.
BAD += [
    # The value is never echoed (it may be the secret): the fix is what the message must show.
    ("secret-looking-env-literal", base(services={"api": {**APP, "env": {"DB_PASSWORD": "hunter2"}}}),
     "berth:services.api.env.DB_PASSWORD", "secret_env: {DB_PASSWORD: db-password}"),
    ("api-key-env-literal", base(services={"api": {**APP, "env": {"OPENAI_API_KEY": "sk-1"}}}),
     "berth:services.api.env.OPENAI_API_KEY", "pulumi config set --secret --path 'berth:secrets.openai-api-key'"),
    ("restore-from-typo", base(databases={"db": {}}, backups={"db": {"restore_from": "lastest"}}),
     "berth:backups.db.restore_from", "did you mean latest?"),
    ("restore-from-not-a-dump", base(databases={"db": {}}, backups={"db": {"restore_from": "daily/db.sql"}}),
     "berth:backups.db.restore_from", "<tier>/<database>-<YYYYmmddTHHMMSSZ>.dump"),
    ("restore-from-mongo-dump-on-postgres", base(databases={"db": {}}, backups={"db": {
        "restore_from": "daily/db-20260102T020000Z.archive.gz"}}), "berth:backups.db.restore_from", ".dump"),
    ("singleton-with-replicas", base(services={"beat": {**APP, "singleton": True, "replicas": 2}}),
     "berth:services.beat.replicas", "remove replicas, or singleton"),
    ("singleton-with-autoscale", base(services={"beat": {**APP, "port": 80, "singleton": True,
                                                         "autoscale": {"min": 1, "max": 3}}}),
     "berth:services.beat.autoscale", "remove autoscale, or singleton"),
    ("redis-too-old-for-acl-users", base(caches={"c": {"version": "6.0"}}), "berth:caches.c.version",
     "set version to 7.2 (the default) or 6.2"),
    ("flat-key-without-path", {"target": "docker", "services.web.image": "ghcr.io/acme/app:1.0.0"},
     "berth:services.web.image", "pulumi config set --path 'berth:services.web.image' <value>"),
]


def test_a_secret_looking_env_value_is_never_shown():
    with pytest.raises(ConfigError) as info:
        parse_spec(base(services={"api": {**APP, "env": {"DB_PASSWORD": "hunter2"}}}))
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("name,secret", [
    ("DB_PASSWORD", True), ("DB_PASS", True), ("OPENAI_API_KEY", True), ("SECRET_KEY_BASE", True),
    ("GITHUB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True), ("SMTP_CREDENTIALS", True),
    ("TOKEN_TTL", False), ("PASSWORD_FILE", False), ("CACHE_KEY_PREFIX", False), ("PASSWORD_MIN_LENGTH", False),
    ("KEYCLOAK_URL", False), ("LOG_LEVEL", False), ("PASS_THROUGH", False),
])
def test_secret_looking_names(name, secret):
    from berth.components.spec.checks import secret_looking

    assert secret_looking(name) is secret


def test_a_restore_from_latest_or_a_dump_of_a_tier_is_accepted():
    for value in ("latest", "daily/shop-20260102T020000Z.dump", "/backups/predeploy/shop-20260102T020000Z.dump"):
        parse_spec(base(databases={"db": {}}, backups={"db": {"restore_from": value}}))
    warnings: list[str] = []
    parse_spec(base(databases={"db": {}}, backups={"db": {"restore_from": "hourly/db-20260102T020000Z.dump"}}),
               warnings)
    assert warnings and "no tier of this stack writes to hourly/" in warnings[0], warnings


def test_the_backup_dir_the_spec_checks_is_the_one_the_scripts_use():
    from berth.components.renderers.backup import BACKUP_DIR
    from berth.components.spec.checks import BACKUP_DIR as CHECKED

    assert CHECKED == BACKUP_DIR


@pytest.mark.parametrize("burst,fix", [(15, "burst: 10 or 20"), (0, "set burst: 10,"), (5, "set burst: 10,")])
def test_a_burst_kubernetes_cannot_express_is_refused_there(burst, fix):
    """ingress-nginx's burst is the rate times a whole multiplier (at least 1): burst 15 at 10/s was
    20 on Kubernetes and 15 on Docker, burst 0 was 10 and 0."""
    raw = {"services": {"api": WEB}, "proxy": {"routes": [{"path": "/", "service": "api",
                                                           "rate_limit": {"rate": 10, "burst": burst}}]}}
    with pytest.raises(ConfigError) as info:
        parse_spec({"target": "kubernetes", **raw})
    assert info.value.problems[0].startswith(f"berth:proxy.routes[0].rate_limit.burst = {burst}: "), info.value.problems
    assert fix in info.value.problems[0]
    parse_spec({"target": "docker", **raw})  # nginx on Docker takes any burst
    for ok in (10, 20, None):
        raw["proxy"]["routes"][0]["rate_limit"]["burst"] = ok
        parse_spec({"target": "kubernetes", **raw})


def test_the_default_burst_is_the_rate_on_both_targets():
    from berth.components.proxy import ingress_manifests, nginx_conf, Backend
    from berth.components.spec import ProxySpec

    spec = ProxySpec(routes=[{"path": "/", "service": "api", "rate_limit": {"rate": 10}}])
    assert "limit_req zone=" in nginx_conf(spec, "x.example.com", {"api": Backend("api", 8000)})
    assert "burst=10 nodelay" in nginx_conf(spec, "x.example.com", {"api": Backend("api", 8000)})
    (ing,) = ingress_manifests("ns", "p", spec, "x.example.com", {"api": Backend("api", 8000)})
    notes = ing["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/limit-rps"] == "10"
    assert notes["nginx.ingress.kubernetes.io/limit-burst-multiplier"] == "1"


def test_celery_beat_without_singleton_and_a_worker_without_health_are_warned():
    warnings: list[str] = []
    parse_spec(base(services={"beat": {**APP, "command": ["celery", "-A", "app", "beat"]}}), warnings)
    assert any(w.startswith("berth:services.beat: runs Celery beat") and "singleton: true" in w for w in warnings)
    assert any(w.startswith("berth:services.beat: no health check") for w in warnings)
    warnings.clear()
    parse_spec(base(services={"beat": {**APP, "command": ["celery", "-A", "app", "beat"], "singleton": True,
                                       "health": {"command": ["true"]}}}), warnings)
    assert warnings == []


def test_a_prod_service_without_port_or_health_is_refused_with_the_fix():
    worker = {**APP, "command": ["celery", "-A", "app", "worker"]}
    warnings: list[str] = []
    parse_spec(base(environment="dev", services={"worker": worker}), warnings)
    assert any(w.startswith("berth:services.worker: no health check") and "a prod stack refuses it" in w
               for w in warnings), warnings
    with pytest.raises(ConfigError) as info:
        parse_spec(base(environment="prod", services={"worker": worker}))
    message = str(info.value)
    assert "berth:services.worker: no health check" in message and "health: {command:" in message, message
    assert "a prod stack refuses it" not in message
    parse_spec(base(environment="prod", services={"worker": {**worker, "health": {"command": ["true"]}}}))
    parse_spec(base(environment="prod", services={"web": {**APP, "port": 8000}}))


@pytest.mark.parametrize("raw,key,value", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_names_key_and_value(raw, key, value):
    with pytest.raises(ConfigError) as info:
        parse_spec(raw)
    message = str(info.value)
    assert key in message, message
    assert value in message, message
    # One problem per mistake: the message is not buried in noise from other union branches.
    assert len(info.value.problems) == 1, info.value.problems


def test_several_mistakes_are_reported_together():
    raw = base(services={"api": {**APP, "port": 70000, "replicas": 0}})
    with pytest.raises(ConfigError) as info:
        parse_spec(raw)
    assert len(info.value.problems) == 2
    assert "2 problem(s)" in str(info.value)


def test_derived_replica_name_may_not_collide_with_a_service():
    """A postgres replica is deployed as the workload ``<db>-replica``; a service of that name would
    give two Kubernetes objects / Docker containers the same name."""
    raw = base(databases={"db": {"replica": True}}, services={"db-replica": APP})
    with pytest.raises(ConfigError) as info:
        parse_spec(raw)
    assert "db-replica" in str(info.value)


def test_cpu_quantity_written_as_a_yaml_number_is_accepted():
    """``Resources.cpu`` documents ``1`` as a valid quantity; in YAML ``cpu_limit: 1`` is a number."""
    spec = parse_spec(base(services={"api": {**APP, "resources": {"cpu": "500m", "cpu_limit": 1}}}))
    assert spec.services["api"].resources.cpu_limit == "1"


def test_missing_target_names_the_key():
    with pytest.raises(ConfigError) as info:
        record(STACK, config={"berth:services": {"api": APP}})
    assert "berth:target" in str(info.value)


def test_config_error_is_a_run_error():
    """The CLI prints a RunError's message without a Python traceback."""
    assert issubclass(ConfigError, pulumi.RunError)
    with pytest.raises(pulumi.RunError):
        parse_spec({"target": "nomad"})


def test_unparseable_json_object_names_the_key():
    with pytest.raises(ConfigError) as info:
        record(STACK, config={"berth:target": "docker", "berth:services": "{not json"})
    assert "berth:services" in str(info.value)


@pytest.mark.parametrize("raw,key,value", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_record_raises_config_error_from_the_real_program(raw, key, value):
    cfg = {f"berth:{k}": v for k, v in raw.items()}
    with pytest.raises(ConfigError) as info:
        record(STACK, config=cfg)
    assert key in str(info.value)


def _capturing(errors: list):
    """The real entry point, with its ConfigError caught so the recording of what was registered survives."""

    def program():
        try:
            main()
        except ConfigError as exc:
            errors.append(exc)

    return program


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
@pytest.mark.parametrize("raw,key,value", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_no_resource_is_registered_before_the_error(raw, key, value, target):
    raw = {**raw, "target": target} if raw.get("target") != "nomad" else raw
    cfg = {f"berth:{k}": v for k, v in raw.items()}
    errors: list = []
    recording = record(STACK, config=cfg, program=_capturing(errors))
    assert errors, "expected a ConfigError"
    assert recording.resources == [], [f"{r.type}::{r.name}" for r in recording.resources]


def test_a_good_config_does_register_resources_through_the_same_wrapper():
    """The wrapper above is not vacuous: with a valid config it records resources."""
    errors: list = []
    recording = record(STACK, config=config("docker", services={"api": APP}), program=_capturing(errors))
    assert not errors
    assert any(r.type == "docker:index/container:Container" for r in recording.resources)


ROUTES = {"routes": [{"path": "/", "service": "api"}]}

# Keys of the other target would be silently ignored: refused, named (each target's own keys pass).
WRONG_TARGET = [
    ("kubernetes-section-on-docker", "docker", {"kubernetes": {"namespace": "shop"}}, "berth:kubernetes"),
    ("docker-section-on-kubernetes", "kubernetes", {"docker": {"host": "ssh://deploy@host"}}, "berth:docker"),
    ("bind-address-on-kubernetes", "kubernetes", {"proxy": {**ROUTES, "bind_address": "127.0.0.1"}}, "berth:proxy.bind_address"),
    ("https-port-on-kubernetes", "kubernetes", {"proxy": {**ROUTES, "https_port": 8443}}, "berth:proxy.https_port"),
    ("proxy-image-on-kubernetes", "kubernetes", {"proxy": {**ROUTES, "image": "nginx:1.27"}}, "berth:proxy.image"),
    ("ingress-class-on-docker", "docker", {"proxy": {**ROUTES, "ingress_class": "traefik"}}, "berth:proxy.ingress_class"),
    ("cluster-issuer-on-docker", "docker", {"proxy": {**ROUTES, "tls": {"mode": "acme", "cluster_issuer": "le"}}},
     "berth:proxy.tls.cluster_issuer"),
    ("run-as-root-on-kubernetes", "kubernetes", {"services": {"api": {**WEB, "run_as_root": True}}},
     "berth:services.api.run_as_root"),
    ("ip-domain-on-kubernetes", "kubernetes", {"domain": "10.0.0.5"}, "berth:domain"),
    ("acme-on-docker", "docker", {"proxy": {**ROUTES, "tls": {"mode": "acme"}}}, "berth:proxy.tls.mode"),
    ("cronjob-name-too-long-on-kubernetes", "kubernetes",
     {"databases": {"orders-database": {}}, "backups": {"orders-database": {"tiers": [
         {"name": "weekly-full-dump-kept-for-a-long-time", "schedule": "0 1 * * 0", "keep": 4}]}}},
     "berth:backups.orders-database.tiers[0].name"),
]


@pytest.mark.parametrize("target,sections,key", [c[1:] for c in WRONG_TARGET], ids=[c[0] for c in WRONG_TARGET])
def test_a_key_of_the_other_target_is_refused(target, sections, key):
    raw = {"target": target, "services": {"api": WEB}, **sections}
    if key.endswith("cluster_issuer"):
        raw["target"] = "docker"
    with pytest.raises(ConfigError) as info:
        parse_spec(raw)
    assert any(p.startswith(key) for p in info.value.problems), info.value.problems
    other = "docker" if target == "kubernetes" else "kubernetes"
    if not key.endswith(("tls.mode", "cluster_issuer", "tiers[0].name")):
        parse_spec({**raw, "target": other})  # the same keys are fine on their own target


def test_nginx_only_route_settings_on_kubernetes_warn():
    """`cache_static` / `access_log` do nothing on an Ingress: said, not silently dropped."""
    warnings: list[str] = []
    parse_spec({"target": "kubernetes", "services": {"api": WEB},
                "proxy": {"routes": [{"path": "/", "service": "api", "cache_static": True}]}}, warnings)
    assert warnings == ["berth:proxy.routes[0].cache_static: set for target kubernetes, where it does nothing: it "
                        "applies to target docker only; it is ignored"]
