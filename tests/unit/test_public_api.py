"""Berth's public API for hand-written programs (berth/api.py), and the README program that uses it.

The components of ``berth.Platform`` declare what ``berth.main()`` declares for the same stack in
config (same types, names, inputs and options), so the two can be mixed or swapped without a replace.
The README's "Use Berth from your own program" program is taken from README.md itself and evaluated
under the recording mocks, so README and test cannot drift.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, Callable

import pytest

import berth
from berth.record import ROOT, Recording, record
from tests.unit.support import CONTAINER, NETPOL, env_map, named

README = ROOT / "README.md"
README_SECTION = "## Use Berth from your own program"


def project(tmp_path: Path, name: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(f"name: {name}\nruntime: python\n")
    return tmp_path


def run(tmp_path: Path, program: Callable[[], None], project_name: str = "shop") -> Recording:
    return record("dev", project_dir=project(tmp_path, project_name), config={}, program=program)


def comparable(rec: Recording) -> list[tuple]:
    """Every declared resource with what the engine would compare (URN, inputs, options)."""
    return sorted(
        (r.urn, r.custom, repr(r.inputs), r.protect, r.retain_on_delete, r.delete_before_replace,
         tuple(sorted(r.depends_on)), tuple(r.ignore_changes), tuple(r.replace_on_changes), r.parent)
        for r in rec.resources
    )


# ---------------------------------------------------------------- the same stack, two ways

STACK_CONFIG: dict[str, Any] = {
    "berth:name": "shop",
    "berth:databases": {"db": {"storage": "1Gi", "replica": True}},
    "berth:caches": {"cache": {"maxmemory": "64mb"}},
    "berth:services": {
        "api": {"image": "ghcr.io/acme/api:1.4.2", "port": 8000, "uses": ["db", "cache"],
                "secret_env": {"API_TOKEN": "token", "SESSION_KEY": {"generate": True}}},
        "worker": {"image": "ghcr.io/acme/api:1.4.2", "command": ["worker"], "uses": ["db"], "depends_on": ["api"]},
    },
    "berth:proxy": {"routes": [{"path": "/", "service": "api"}]},
    "berth:secrets": {"token": "s3cret"},
}


def api_program(target: str, backup: "berth.BackupSpec | None" = None) -> Callable[[], None]:
    def program() -> None:
        platform = berth.Platform("shop", target=target)
        db = berth.Database("db", berth.DatabaseSpec(storage="1Gi", replica=True), platform, clients=["api", "worker"],
                            backup=backup)
        assert (db.backup is not None) == (backup is not None)
        berth.Cache("cache", berth.CacheSpec(maxmemory="64mb"), platform, clients=["api"])
        berth.AppService(
            "api",
            berth.ServiceSpec(image="ghcr.io/acme/api:1.4.2", port=8000, uses=["db", "cache"],
                              secret_env={"API_TOKEN": "token", "SESSION_KEY": berth.GeneratedSecret()}),
            platform, secrets={"token": "<<berth:config:token>>"}, clients=["proxy", "worker"],
        )
        berth.AppService("worker", berth.ServiceSpec(image="ghcr.io/acme/api:1.4.2", command=["worker"], uses=["db"],
                                                     depends_on=["api"]), platform)
        berth.Proxy("proxy", berth.ProxySpec(routes=[berth.Route(path="/", service="api")]), platform)

    return program


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_the_api_declares_what_the_stack_config_declares(tmp_path, target):
    from_config = record("dev", project_dir=project(tmp_path, "shop"), config={"berth:target": target, **STACK_CONFIG})
    from_api = run(tmp_path, api_program(target))
    assert len(from_api.resources) > 15
    assert comparable(from_api) == comparable(from_config)
    if target == "kubernetes":  # the primary admits its clients and the replica, declared after it
        policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in from_api.by_type(NETPOL)}
        sources = [s["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                   for s in policies["db"]["ingress"][0]["from"]]
        assert sources == ["api", "db-replica", "worker"]
        replica = [s["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                   for s in policies["db-replica"]["ingress"][0]["from"]]
        assert replica == ["api", "worker"]


BACKUP_TIERS = [{"name": "daily", "schedule": "0 2 * * *", "keep": 7}, {"name": "weekly", "schedule": "0 3 * * 0", "keep": 4}]


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_a_database_with_backups_declares_what_berth_backups_declares(tmp_path, target):
    config = {"berth:target": target, **STACK_CONFIG,
              "berth:backups": {"db": {"tiers": BACKUP_TIERS, "storage": "2Gi", "restore_from": "latest"}}}
    from_config = record("dev", project_dir=project(tmp_path, "shop"), config=config)

    backup = berth.BackupSpec(tiers=[berth.BackupTier(**t) for t in BACKUP_TIERS], storage="2Gi", restore_from="latest")
    from_api = run(tmp_path, api_program(target, backup))
    assert comparable(from_api) == comparable(from_config)
    names = {r.name for r in from_api.resources}
    assert "db-backup-password" in names  # the dumps' own role
    if target == "kubernetes":
        assert {"db-backup-daily", "db-backup-weekly", "db-restore"} <= {
            r.inputs["metadata"]["name"] for r in from_api.resources if "metadata" in r.inputs}


def monitored_program(target: str, backup: "berth.BackupSpec") -> Callable[[], None]:
    def program() -> None:
        platform = berth.Platform("shop", target=target, monitoring=berth.MonitoringSpec(retention="7d"))
        berth.Database("db", berth.DatabaseSpec(storage="1Gi", replica=True), platform, clients=["api", "worker"],
                       backup=backup)
        berth.Cache("cache", berth.CacheSpec(maxmemory="64mb"), platform, clients=["api"])
        berth.AppService(
            "api",
            berth.ServiceSpec(image="ghcr.io/acme/api:1.4.2", port=8000, uses=["db", "cache"],
                              secret_env={"API_TOKEN": "token", "SESSION_KEY": berth.GeneratedSecret()},
                              metrics=berth.Metrics(path="/metrics")),
            platform, secrets={"token": "<<berth:config:token>>"}, clients=["proxy", "worker"],
        )
        berth.AppService("worker", berth.ServiceSpec(image="ghcr.io/acme/api:1.4.2", command=["worker"], uses=["db"],
                                                     depends_on=["api"]), platform)
        mon = berth.Monitoring("monitoring", platform, domain="localhost")
        assert mon.grafana_url == "https://localhost/grafana/"
        berth.Proxy("proxy", berth.ProxySpec(routes=[berth.Route(path="/", service="api")]), platform)

    return program


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_monitoring_declares_what_berth_monitoring_declares(tmp_path, target):
    """Exporters with their own database role, Prometheus scraping the app, the Pushgateway the
    backups report to, Grafana routed through the proxy: the same resources both ways."""
    services = {**STACK_CONFIG["berth:services"]}
    services["api"] = {**services["api"], "metrics": {"path": "/metrics"}}
    config = {"berth:target": target, **STACK_CONFIG, "berth:services": services,
              "berth:monitoring": {"retention": "7d"},
              "berth:backups": {"db": {"tiers": BACKUP_TIERS, "storage": "2Gi"}}}
    from_config = record("dev", project_dir=project(tmp_path, "shop"), config=config)
    backup = berth.BackupSpec(tiers=[berth.BackupTier(**t) for t in BACKUP_TIERS], storage="2Gi")
    from_api = run(tmp_path, monitored_program(target, backup))
    names = {r.name for r in from_api.resources}
    assert {"db-monitor-password", "grafana-admin-password"} <= names
    assert any("prometheus" in n for n in names) and any("cache-exporter" in n for n in names), sorted(names)
    assert comparable(from_api) == comparable(from_config)


def test_monitoring_needs_the_platform_to_know_it_first(tmp_path):
    def without() -> None:
        platform = berth.Platform("shop")
        berth.Cache("cache", berth.CacheSpec(), platform)
        berth.Monitoring("monitoring", platform)

    assert "monitoring=berth.MonitoringSpec()" in fails(tmp_path, without)

    def after_proxy() -> None:
        platform = berth.Platform("shop", monitoring=berth.MonitoringSpec())
        berth.AppService("api", berth.ServiceSpec(image="a:1", port=80), platform, clients=["proxy"])
        berth.Proxy("proxy", berth.ProxySpec(routes=[berth.Route(path="/", service="api")]), platform)
        berth.Monitoring("monitoring", platform, domain="localhost")

    assert "before the Proxy" in fails(tmp_path, after_proxy)

    def other_domain() -> None:
        platform = berth.Platform("shop", monitoring=berth.MonitoringSpec())
        berth.AppService("api", berth.ServiceSpec(image="a:1", port=80), platform, clients=["proxy"])
        berth.Monitoring("monitoring", platform, domain="shop.example.com")
        berth.Proxy("proxy", berth.ProxySpec(routes=[berth.Route(path="/", service="api")]), platform,
                    domain="www.example.com")

    assert "Grafana is served at https://shop.example.com/grafana/" in fails(tmp_path, other_domain)

    def store_after() -> None:
        platform = berth.Platform("shop", monitoring=berth.MonitoringSpec())
        berth.Monitoring("monitoring", platform)
        berth.Cache("cache", berth.CacheSpec(), platform)

    assert "cache 'cache' is created after the platform's monitoring" in fails(tmp_path, store_after)

    def taken() -> None:
        platform = berth.Platform("shop", monitoring=berth.MonitoringSpec())
        berth.AppService("grafana", berth.ServiceSpec(image="a:1", port=80), platform)

    assert "'grafana' is already used" in fails(tmp_path, taken)


def test_backups_of_a_hand_written_database_are_checked_and_named(tmp_path):
    def backup_of(**kw):
        def program():
            platform = berth.Platform("shop")
            berth.Database("db", berth.DatabaseSpec(), platform,
                           backup=berth.BackupSpec(tiers=[berth.BackupTier(**BACKUP_TIERS[0])], **kw))
        return program

    assert "backup.pre_deploy" in fails(tmp_path, backup_of(pre_deploy=True))
    err = fails(tmp_path, backup_of(restore_from="lastest"))
    assert "database 'db': backup.restore_from" in err, err
    s3 = {"endpoint": "https://s3.example.com", "bucket": "dumps", "access_key_secret": "s3-id",
          "secret_key_secret": "s3-key"}
    err = fails(tmp_path, backup_of(s3=berth.S3Spec(**s3)))
    assert "backup.s3 takes secrets ['s3-id', 's3-key']" in err, err


def test_a_hand_written_program_keeps_the_program_s_garbage_collector(tmp_path):
    import gc

    seen = []
    run(tmp_path, lambda: (berth.Platform("shop"), seen.append(gc.isenabled())))
    assert seen == [gc.isenabled()]


# ---------------------------------------------------------------- checks that name the argument


def fails(tmp_path: Path, program: Callable[[], None]) -> str:
    with pytest.raises(Exception) as err:
        run(tmp_path, program)
    return str(err.value)


def test_a_service_using_a_store_not_created_before_it_is_refused(tmp_path):
    def program():
        p = berth.Platform("shop")
        berth.AppService("api", berth.ServiceSpec(image="a/api:1", port=80, uses=["db"]), p)

    msg = fails(tmp_path, program)
    assert "'api' uses 'db'" in msg and "create it first" in msg


def test_a_service_its_store_does_not_admit_is_refused(tmp_path):
    def program():
        p = berth.Platform("shop", target="kubernetes")
        berth.Database("db", berth.DatabaseSpec(), p, clients=["web"])
        berth.AppService("api", berth.ServiceSpec(image="a/api:1", port=80, uses=["db"]), p)

    msg = fails(tmp_path, program)
    assert "admits only ['web']" in msg and "add 'api' to the clients of 'db'" in msg


def test_settings_of_the_other_target_are_refused(tmp_path):
    msg = fails(tmp_path, lambda: berth.Platform("shop", target="docker", namespace="shop"))
    assert "namespace set for target docker" in msg

    def program():
        p = berth.Platform("shop", target="kubernetes")
        berth.AppService("api", berth.ServiceSpec(image="a/api:1", port=80, run_as_root=True), p)

    msg = fails(tmp_path, program)
    assert msg.startswith("service 'api': run_as_root: set for target kubernetes"), msg


def test_names_and_secrets_are_checked(tmp_path):
    def duplicate():
        p = berth.Platform("shop")
        berth.Cache("db", berth.CacheSpec(), p)
        berth.Database("db", berth.DatabaseSpec(), p)

    assert "name 'db' is already used" in fails(tmp_path, duplicate)

    def replica_name():
        p = berth.Platform("shop")
        berth.Database("db", berth.DatabaseSpec(replica=True), p)
        berth.Cache("db-replica", berth.CacheSpec(), p)

    assert "name 'db-replica' is already used" in fails(tmp_path, replica_name)

    def no_replica():  # without a replica the name is free
        p = berth.Platform("shop")
        berth.Database("db", berth.DatabaseSpec(), p)
        berth.Cache("db-replica", berth.CacheSpec(), p)

    assert "db-replica" in named(run(tmp_path, no_replica), CONTAINER)
    assert "must be lowercase" in fails(tmp_path, lambda: berth.Database("Orders", berth.DatabaseSpec(),
                                                                          berth.Platform("shop")))

    def missing_secret():
        p = berth.Platform("shop")
        berth.AppService("api", berth.ServiceSpec(image="a/api:1", secret_env={"TOKEN": "stripe"}), p)

    assert "takes secret 'stripe', which is not in secrets=" in fails(tmp_path, missing_secret)


def test_a_proxy_route_needs_a_service_that_admits_the_proxy(tmp_path):
    def program():
        p = berth.Platform("shop")
        berth.AppService("api", berth.ServiceSpec(image="a/api:1", port=80), p)
        berth.Proxy("proxy", berth.ProxySpec(routes=[berth.Route(path="/", service="api")]), p)

    assert "does not admit the proxy" in fails(tmp_path, program)


def test_the_proxy_s_name_is_proxy(tmp_path):
    def program():
        p = berth.Platform("shop")
        berth.AppService("api", berth.ServiceSpec(image="a/api:1", port=80), p, clients=["proxy"])
        berth.Proxy("edge", berth.ProxySpec(routes=[berth.Route(path="/", service="api")]), p)

    assert "proxy name 'edge'" in (msg := fails(tmp_path, program)) and "pass 'proxy'" in msg, msg


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_the_0_3_0_proxy_call_without_a_name_warns_and_declares_the_same(tmp_path, target):
    """``berth.Proxy(spec, platform)`` (Berth 0.3.0) keeps working, with a DeprecationWarning, and
    declares what ``berth.Proxy("proxy", spec, platform)`` does: same URNs, nothing replaced."""
    def program(old: bool) -> Callable[[], None]:
        def run_it() -> None:
            p = berth.Platform("shop", target=target)
            berth.AppService("api", berth.ServiceSpec(image="a/api:1", port=80), p, clients=["proxy"])
            spec = berth.ProxySpec(routes=[berth.Route(path="/", service="api")])
            args = (spec, p) if old else ("proxy", spec, p)
            berth.Proxy(*args, domain="shop.example.com")

        return run_it

    new = run(tmp_path, program(old=False))
    with pytest.warns(DeprecationWarning, match='berth.Proxy\\("proxy", spec, platform\\)'):
        old = run(tmp_path, program(old=True))
    assert comparable(old) == comparable(new)
    assert any(r.type == "berth:index:Proxy" and r.name == "proxy" for r in new.resources)


def test_spec_models_refuse_bad_values_when_built():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="pin the image"):
        berth.ServiceSpec(image="acme/api:latest")
    with pytest.raises(ValidationError, match="512Mi"):
        berth.DatabaseSpec(storage="512MB")


# ---------------------------------------------------------------- the public surface


def test_every_public_name_resolves_and_main_is_unchanged():
    from berth.components.program import main

    assert berth.main is main
    for name in berth.__all__:
        assert getattr(berth, name) is not None, name
    with pytest.raises(AttributeError):
        berth.NoSuchThing  # noqa: B018


@pytest.mark.parametrize("name", ["Platform", "Database", "Cache", "Broker", "GraphDatabase", "AppService", "Proxy"])
def test_components_have_typed_documented_arguments(name):
    cls = getattr(berth, name)
    assert cls.__doc__ and len(cls.__doc__) > 100, name
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert all(p.annotation is not inspect.Parameter.empty for p in params), (name, params)
    if name != "Platform":
        assert [p.name for p in params[:3]] == ["name", "spec", "platform"]


@pytest.mark.parametrize("model", ["DatabaseSpec", "CacheSpec", "BrokerSpec", "GraphDatabaseSpec", "ServiceSpec",
                                   "ProxySpec", "Route", "TlsSpec", "Resources", "Health", "Autoscale"])
def test_spec_models_document_every_field(model):
    cls = getattr(berth, model)
    assert cls.__doc__
    undocumented = [f for f, info in cls.model_fields.items() if not info.description]
    assert not undocumented, (model, undocumented)


# ---------------------------------------------------------------- the README program


def readme_program() -> str:
    """The first ```python block of the README section "Use Berth from your own program"."""
    text = README.read_text()
    assert README_SECTION in text, f"README.md has no section {README_SECTION!r}"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "the section has no ```python block"
    return m.group(1)


def test_the_readme_program_mixes_berth_components_with_raw_resources(tmp_path):
    code = readme_program()
    assert "berth.main()" not in code

    rec = run(tmp_path, lambda: exec(compile(code, "README.md", "exec"), {"__name__": "__main__"}))
    kinds = {r.type for r in rec.resources}
    assert {"berth:index:Platform", "berth:index:Database", "berth:index:AppService"} <= kinds
    containers = named(rec, CONTAINER)
    # Berth's containers, and the raw one the program declares itself (not a child of any component).
    assert {"db", "api", "report"} <= set(containers)
    raw = next(r for r in rec.resources if r.type == CONTAINER and r.name == "report")
    assert raw.parent.endswith("::shop-dev"), raw.parent
    url = "postgresql://db:<<berth:password:db-password>>@db:5432/db"
    assert env_map(raw)["DATABASE_URL"] == url
    assert env_map(containers["api"])["DATABASE_URL"] == url
    # The raw container is on the platform's internal network, next to the database.
    assert [n["name"] for n in raw.inputs["networksAdvanced"]] == ["shop-internal"]
    assert "shop-internal" in [n["name"] for n in containers["db"].inputs["networksAdvanced"]]
    assert rec.outputs["database_url"] == url


# ---------------------------------------------------------------- Berth is reached as an installed package


def test_no_test_or_example_reaches_berth_by_path():
    """Examples and tests import Berth as installed (editable here, a wheel in a team's project);
    ``sys.path`` may name test helper folders and the policy pack's folder (as the CLI runs the pack),
    never the repository root, and no subprocess gets the root on ``PYTHONPATH``."""
    forbidden = [
        re.compile(r"sys\.path\.(insert|append)\([^)]*\bstr\(ROOT\)\s*\)"),
        re.compile(r"""["']PYTHONPATH["']\s*:\s*str\(ROOT\)"""),
        re.compile(r"for \w+ in \(ROOT,"),
    ]
    found = []
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]:
        text = path.read_text()
        if path.is_relative_to(ROOT / "examples") and "sys.path" in text:
            found.append(f"{path.relative_to(ROOT)}: sys.path")
        found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for rx in forbidden for m in rx.finditer(text)]
    assert not found, found
