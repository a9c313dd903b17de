"""Berth's component package (berth/package): the schema, the served components, their errors.

* The checked-in ``schema.json`` is what the code generates (``python -m berth.package.schema
  --write`` after a change), every property is described, every field of a mirrored spec model is
  served or says why not, and the schema has no unions.
* The YAML program of ``examples/yaml-shop`` (the README's) declares under ``berth render`` exactly
  what the same components declare from Python (``berth.api``): same URNs, inputs and options, so a
  program moves between the languages without a replacement.
* A bad property fails with its YAML property path, value and fix (the spec's own wording), from
  ``berth render`` as a ``PropertyError`` and from the provider as the ``InputPropertiesError`` the
  engine prints per property.
* The plugin folder's executable starts the provider with the Python Berth is installed in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

import berth
from berth.package import PLUGIN_DIR
from berth.package import args as package_args
from berth.package.convert import PropertyError
from berth.package.provider import BerthProvider, schema_text
from berth.record import ROOT, Recording, record
from berth.render import render
from tests.unit.test_public_api import comparable

EXAMPLE = ROOT / "examples" / "yaml-shop"


# ---------------------------------------------------------------- the schema


def test_schema_json_is_what_the_code_generates():
    assert (PLUGIN_DIR / "schema.json").read_text() == schema_text(), (
        "berth/package/plugin/schema.json differs from the code: run `.venv/bin/python -m berth.package.schema --write`")


def schema() -> dict[str, Any]:
    return json.loads((PLUGIN_DIR / "schema.json").read_text())


def properties(doc: dict[str, Any]):
    for token, res in doc["resources"].items():
        for where in ("inputProperties", "properties"):
            for name, spec in res.get(where, {}).items():
                yield f"{token}.{where}.{name}", spec
    for token, typ in doc["types"].items():
        for name, spec in typ.get("properties", {}).items():
            yield f"{token}.{name}", spec


def test_every_property_and_type_is_described():
    doc = schema()
    undescribed = [key for key, spec in properties(doc) if not spec.get("description")]
    undescribed += [t for t, spec in {**doc["resources"], **doc["types"]}.items() if not spec.get("description")
                    and "enum" not in spec]
    assert not undescribed, undescribed


def test_no_unions_and_enums_for_the_closed_choices():
    text = (PLUGIN_DIR / "schema.json").read_text()
    assert "oneOf" not in text and "anyOf" not in text
    enums = {t.rsplit(":", 1)[-1]: [e["value"] for e in spec["enum"]] for t, spec in schema()["types"].items()
             if "enum" in spec}
    assert enums == {"DatabaseEngine": ["postgres", "mongodb"], "Environment": ["dev", "staging", "prod"],
                     "Target": ["docker", "kubernetes"], "TlsMode": ["self-signed", "files", "secret", "acme"]}


def test_the_components_and_their_references():
    doc = schema()
    assert sorted(doc["resources"]) == [f"berth:index:{k}" for k in
                                        ("AppService", "Broker", "Cache", "Database", "GraphDatabase", "Monitoring", "Platform",
                                                                          "Proxy")]
    for token, res in doc["resources"].items():
        assert res["isComponent"] is True, token
        if not token.endswith("Platform"):
            assert res["inputProperties"]["platform"]["$ref"] == "#/resources/berth:index:Platform", token
            assert "platform" in res["requiredInputs"], token
    assert doc["types"]["berth:index:Route"]["properties"]["service"]["$ref"] == "#/resources/berth:index:AppService"
    # camelCase names of the berth: keys; what a default does is said where it is not obvious
    db = doc["resources"]["berth:index:Database"]["inputProperties"]
    assert db["storage"]["description"].endswith("Unit: Mi/Gi. Default: `10Gi`.")
    assert "memoryLimit" in doc["types"]["berth:index:Resources"]["properties"]
    assert doc["resources"]["berth:index:Database"]["properties"]["connectionUrl"]["type"] == "string"
    assert doc["name"] == "berth" and doc["version"] == berth.__version__


@pytest.mark.parametrize("typed", list(package_args.MIRRORS), ids=lambda t: t.__name__)
def test_every_field_of_the_spec_is_served_or_says_why(typed):
    model = package_args.MIRRORS[typed]
    missing = [f for f in model.model_fields if f not in typed.__annotations__
               and (model, f) not in package_args.NOT_SERVED]
    assert not missing, f"{typed.__name__} serves no {missing} of {model.__name__}: add them or say why in NOT_SERVED"
    # A field served in another shape under the same name is described as served, not as the spec has it.
    token = f"berth:index:{typed.__name__.removesuffix('Args')}"
    doc = schema()
    served = (doc["resources"].get(token) or {}).get("inputProperties") or doc["types"].get(token, {}).get("properties")
    for (m, f) in package_args.NOT_SERVED:
        if m is model and f in typed.__annotations__:
            camel = re.sub(r"_([a-z])", lambda x: x.group(1).upper(), f)
            assert served[camel]["description"] != model.model_fields[f].description, (typed.__name__, f)


def test_schema_size_is_reported():
    doc = schema()
    count = sum(1 for _ in properties(doc))
    size = len((PLUGIN_DIR / "schema.json").read_bytes())
    print(f"schema: {len(doc['resources'])} components, {len(doc['types'])} types, {count} properties, {size} bytes")
    assert 20_000 < size < 80_000


# ---------------------------------------------------------------- the example program = the Python API


def python_program(prefix: str = "shop-dev", backup: "berth.BackupSpec | None" = None) -> Callable[[], None]:
    """The YAML example written with berth.api."""

    def program() -> None:
        import pulumi

        platform = berth.Platform("platform", target="docker", prefix=prefix)
        db = berth.Database("db", berth.DatabaseSpec(storage="1Gi"), platform, clients=["api"], backup=backup)
        berth.Cache("cache", berth.CacheSpec(), platform, clients=["api"])
        berth.AppService("api", berth.ServiceSpec(image="ghcr.io/acme/shop-api:1.4.2", port=8000, uses=["db", "cache"],
                                                  env={"LOG_LEVEL": "info"}), platform, clients=["proxy"])
        proxy = berth.Proxy("proxy", berth.ProxySpec(bind_address="127.0.0.1", routes=[berth.Route(path="/", service="api")]),
                            platform)
        pulumi.export("url", proxy.url)
        pulumi.export("databaseUrl", db.connection_url)

    return program


def yaml_project(tmp_path: Path, doc: dict[str, Any] | None = None) -> Path:
    d = tmp_path / "shop"
    d.mkdir(exist_ok=True)
    text = (EXAMPLE / "Pulumi.yaml").read_text() if doc is None else yaml.safe_dump(doc, sort_keys=False)
    (d / "Pulumi.yaml").write_text(text)
    return d


def test_the_yaml_example_declares_what_the_python_api_declares(tmp_path):
    from_yaml = record("dev", project_dir=yaml_project(tmp_path), config={})
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    from_python = record("dev", project_dir=tmp_path / "py", config={}, program=python_program())
    assert comparable(from_yaml) == comparable(from_python)
    assert from_yaml.outputs == from_python.outputs
    assert from_yaml.outputs["databaseUrl"] == "postgresql://db:<<berth:password:db-password>>@db:5432/db"
    names = {r.inputs.get("name") for r in from_yaml.by_type("docker:index/container:Container")}
    assert {"shop-dev-db", "shop-dev-cache", "shop-dev-api", "shop-dev-proxy"} <= names


def test_a_yaml_database_with_backups_declares_what_the_python_api_declares(tmp_path):
    doc = example()
    props(doc, "db")["backup"] = {"tiers": [{"name": "daily", "schedule": "0 2 * * *", "keep": 7}],
                                  "storage": "2Gi", "restoreFrom": "latest", "alertAfter": "2h"}
    from_yaml = record("dev", project_dir=yaml_project(tmp_path, doc), config={})
    backup = berth.BackupSpec(tiers=[berth.BackupTier(name="daily", schedule="0 2 * * *", keep=7)], storage="2Gi",
                              restore_from="latest", alert_after="2h")
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    from_python = record("dev", project_dir=tmp_path / "py", config={}, program=python_program(backup=backup))
    assert comparable(from_yaml) == comparable(from_python)
    names = {r.inputs.get("name") for r in from_yaml.by_type("docker:index/container:Container")}
    assert {"shop-dev-db-backup", "shop-dev-db-restore"} <= names, names
    tier = {"name": "daily", "schedule": "0 2 * * *", "keep": 7}
    text = str(failure(tmp_path, lambda d: props(d, "db").update(backup={"tiers": [{**tier, "keep": 0}]})))
    assert "db.backup.tiers[0].keep = 0" in text, text
    text = str(failure(tmp_path, lambda d: props(d, "db").update(backup={"tiers": [tier], "restoreFrom": "lastest"})))
    assert "restoreFrom" in text and "did you mean latest" in text and "restore_from" not in text, text


def test_a_yaml_backup_without_tiers_gets_the_default_tier_as_from_python(tmp_path):
    doc = example()
    props(doc, "db")["backup"] = {"storage": "2Gi"}
    from_yaml = record("dev", project_dir=yaml_project(tmp_path, doc), config={})
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    from_python = record("dev", project_dir=tmp_path / "py", config={},
                         program=python_program(backup=berth.BackupSpec(storage="2Gi")))
    assert comparable(from_yaml) == comparable(from_python)
    cron = [r for r in from_yaml.resources if "0 2 * * *" in json.dumps(r.inputs, default=str)]
    assert cron, "the default tier (daily at 02:00) is not in what the YAML program declares"


def monitored_python_program() -> Callable[[], None]:
    """The YAML example with monitoring, written with berth.api."""

    def program() -> None:
        import pulumi

        platform = berth.Platform("platform", target="docker", prefix="shop-dev",
                                  monitoring=berth.MonitoringSpec(retention="7d"))
        berth.Database("db", berth.DatabaseSpec(storage="1Gi"), platform, clients=["api"])
        berth.Cache("cache", berth.CacheSpec(), platform, clients=["api"])
        berth.AppService("api", berth.ServiceSpec(image="ghcr.io/acme/shop-api:1.4.2", port=8000, uses=["db", "cache"],
                                                  env={"LOG_LEVEL": "info"}, metrics=berth.Metrics(path="/metrics")),
                         platform, clients=["proxy"])
        mon = berth.Monitoring("monitoring", platform, domain="localhost")
        berth.Proxy("proxy", berth.ProxySpec(bind_address="127.0.0.1", routes=[berth.Route(path="/", service="api")]),
                    platform, opts=pulumi.ResourceOptions(depends_on=[mon]))
        pulumi.export("grafanaPassword", mon.grafana_admin_password)

    return program


def with_monitoring(doc: dict[str, Any]) -> dict[str, Any]:
    props(doc, "platform")["monitoring"] = {"retention": "7d"}
    props(doc, "api")["metrics"] = {"path": "/metrics"}
    resources = doc["resources"]
    proxy = resources.pop("proxy")
    # httpsPort as the engine sends every number: a float
    resources["monitoring"] = {"type": "berth:Monitoring",
                               "properties": {"platform": "${platform}", "watch": ["${db}", "${cache}", "${api}"],
                                              "domain": "localhost", "httpsPort": 443.0}}
    resources["proxy"] = {**proxy, "options": {"dependsOn": ["${monitoring}"]}}  # Grafana's route: after it
    doc["outputs"] = {"grafanaPassword": "${monitoring.grafanaAdminPassword}"}
    return doc


def test_yaml_monitoring_declares_what_the_python_api_declares(tmp_path):
    from_yaml = record("dev", project_dir=yaml_project(tmp_path, with_monitoring(example())), config={})
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    from_python = record("dev", project_dir=tmp_path / "py", config={}, program=monitored_python_program())
    assert comparable(from_yaml) == comparable(from_python)
    names = {r.inputs.get("name") for r in from_yaml.by_type("docker:index/container:Container")}
    assert {"shop-dev-prometheus", "shop-dev-grafana", "shop-dev-db-exporter", "shop-dev-cache-exporter"} <= names, names
    # Grafana behind the proxy's /grafana/ (the spec's default grafana_path)
    assert "/grafana/" in json.dumps([r.inputs for r in from_yaml.resources], default=str)
    text = str(failure(tmp_path, lambda d: props(with_monitoring(d), "platform")["monitoring"].update(retention="soon")))
    assert "platform.monitoring.retention" in text, text
    text = str(failure(tmp_path, lambda d: props(with_monitoring(d), "platform").pop("monitoring")))
    assert "has no monitoring" in text and "monitoring=berth.MonitoringSpec()" not in text, text


def test_berth_render_writes_the_yaml_program(tmp_path):
    idx = render("dev", tmp_path / "out", project_dir=yaml_project(tmp_path))
    assert idx["project"] == "shop" and idx["counts"]["other"] == 24, idx["counts"]
    assert json.loads((tmp_path / "out" / "outputs.json").read_text())["url"] == "https://localhost/"


def example() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())


def failure(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> PropertyError:
    doc = example()
    change(doc)
    with pytest.raises(PropertyError) as info:
        record("dev", project_dir=yaml_project(tmp_path, doc), config={})
    return info.value


def props(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["resources"][name]["properties"]


BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("size unit", lambda d: props(d, "db").update(storage="512MB"),
     'db.storage = "512MB": must be a size in Kubernetes binary units: write 512Mi (Mi, Gi or Ti)'),
    ("limit below request", lambda d: props(d, "db").update(resources={"memory": "512Mi", "memoryLimit": "256Mi"}),
     "db.resources: memoryLimit 256Mi is below the request 512Mi; raise memoryLimit"),
    ("latest image", lambda d: props(d, "api").update(image="ghcr.io/acme/shop-api:latest"),
     'api.image = "ghcr.io/acme/shop-api:latest": pin the image to a tag or digest'),
    ("no replicas", lambda d: props(d, "api").update(replicas=0),
     "api.replicas = 0: Input should be greater than or equal to 1; raise it"),
    ("replicas and autoscale", lambda d: props(d, "api").update(replicas=2, autoscale={"min": 2, "max": 4}),
     "replicas"),
    ("bad env name", lambda d: props(d, "api").update(env={"1BAD": "x"}), "env name '1BAD' is not a valid variable name"),
    ("a store that does not admit it", lambda d: props(d, "db").update(clients=["worker"]),
     "api: service 'api' connects to 'db', which admits only ['worker']: add 'api' to the clients of 'db'"),
    ("not a store", lambda d: props(d, "api").update(uses=["${db}", "${platform}"]),
     "api.uses[1] = <berth:index:Platform platform>: must be a berth:Database / berth:Cache / berth:Broker / "
     "berth:GraphDatabase (a resource reference)"),
    ("route to a service without the proxy", lambda d: props(d, "api").update(clients=[]),
     "proxy.routes[0].service: service 'api' does not admit the proxy: add proxy to its clients"),
    ("the proxy's name", lambda d: d["resources"].update(edge=d["resources"].pop("proxy")) or d.update(
        outputs={"url": "${edge.url}"}),
     "edge: a platform's proxy is named 'proxy'"),
    ("a Kubernetes setting on Docker", lambda d: props(d, "platform").update(namespace="shop"),
     "platform: namespace set for target docker, where it does nothing; remove it"),
    ("root on Kubernetes", lambda d: (props(d, "platform").update(target="kubernetes"),
                                      props(d, "api").update(runAsRoot=True)),
     "api.runAsRoot: set for target kubernetes, where it does nothing"),
    ("a prefix that is not a label", lambda d: props(d, "platform").update(name="Shop_Dev"),
     'platform.name = "Shop_Dev"'),
    ("a missing required property", lambda d: props(d, "api").pop("image"),
     "api.image = (missing): Missing required input 'image' on 'AppService'"),
    ("tls secret without the values", lambda d: props(d, "proxy").update(tls={"mode": "secret"}),
     "proxy.tlsCertificate = (missing): is required with tls.mode secret"),
    ("a spec check in its own words", lambda d: props(d, "db").update(engine="mongodb", replica=True),
     "db: `replica: true` is supported for engine postgres only; remove it"),
]


@pytest.mark.parametrize(("case", "change", "expected"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_property_is_named_with_its_value_and_fix(tmp_path, case, change, expected):
    err = failure(tmp_path, change)
    text = str(err)
    assert expected in text, text
    assert "Traceback" not in text and "berth:databases" not in text and "berth:services" not in text
    # Named as a YAML program writes it: camelCase, never the Python name of a property.
    assert not re.search(r"\b(memory_limit|run_as_root|https_port|secret_env)\b", text), text


def test_the_provider_reports_each_property_to_the_engine(tmp_path):
    """What the engine prints ("property storage with value "512MB" has a problem: ..."): the
    provider's InputPropertiesError, with the schema's path of each property."""
    from pulumi.errors import InputPropertiesError

    seen: dict[str, Any] = {}

    def program() -> None:
        provider = BerthProvider()
        platform = provider.construct("platform", "berth:index:Platform", {"target": "docker"})
        from berth.package.components import LIVE

        inputs = {"platform": LIVE[("berth:index:Platform", "platform")], "storage": "512MB",
                  "resources": {"memoryLimit": "1Mi"}}
        try:
            provider.construct("db", "berth:index:Database", inputs)
        except InputPropertiesError as e:
            seen["message"], seen["errors"] = e.message, e.errors
        seen["platform"] = platform

    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    record("dev", project_dir=tmp_path, config={}, program=program)
    assert seen["message"] == "invalid properties of berth:Database 'db'"
    paths = {e["property_path"]: e["reason"] for e in seen["errors"]}
    assert paths["storage"].startswith("must be a size in Kubernetes binary units: write 512Mi"), paths
    assert "resources" in paths and "memoryLimit" in paths["resources"], paths


def test_a_component_with_bad_properties_creates_nothing(tmp_path):
    doc = example()
    props(doc, "api").update(replicas=0)
    created: list[Recording] = []
    with pytest.raises(PropertyError):
        created.append(record("dev", project_dir=yaml_project(tmp_path, doc), config={}))
    assert not created


# ---------------------------------------------------------------- the plugin folder


def test_berth_package_prints_the_plugin_folder():
    from berth.cli import main

    assert (PLUGIN_DIR / "PulumiPlugin.yaml").is_file() and os.access(PLUGIN_DIR / "pulumi-resource-berth", os.X_OK)
    res = subprocess.run([str(ROOT / ".venv" / "bin" / "berth"), "package"], capture_output=True, text=True)
    assert res.returncode == 0 and Path(res.stdout.strip()) == PLUGIN_DIR, res
    assert main(["package"]) == 0
    plugin = yaml.safe_load((PLUGIN_DIR / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"]["name"] == "python"


def launch(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The executable as the engine starts it; ``--help`` makes the provider print its usage and exit."""
    return subprocess.run([str(folder / "pulumi-resource-berth"), "--help"], capture_output=True, text=True,
                          env={k: v for k, v in {**os.environ, **env}.items() if k != "BERTH_PYTHON" or v},
                          cwd="/", timeout=120)


def test_the_executable_starts_the_provider_with_the_checkout_s_python(tmp_path):
    res = launch(PLUGIN_DIR, {"BERTH_PYTHON": ""})
    assert res.returncode == 0 and "Pulumi provider plugin" in res.stdout, res
    # Named through a link, as a project names it (`packages: {berth: ./berth-package}`).
    (tmp_path / "berth-package").symlink_to(PLUGIN_DIR, target_is_directory=True)
    res = launch(tmp_path / "berth-package", {"BERTH_PYTHON": ""})
    assert res.returncode == 0 and "Pulumi provider plugin" in res.stdout, res


def test_the_executable_says_which_python_it_looked_for(tmp_path):
    copy = tmp_path / "elsewhere" / "plugin"
    shutil.copytree(PLUGIN_DIR, copy)
    res = launch(copy, {"BERTH_PYTHON": ""})
    assert res.returncode == 1 and "no Python with Berth found" in res.stderr and "BERTH_PYTHON" in res.stderr, res
    res = launch(copy, {"BERTH_PYTHON": str(ROOT / ".venv" / "bin" / "python")})
    assert res.returncode == 0 and "Pulumi provider plugin" in res.stdout, res


def test_the_example_names_the_package_through_a_link():
    link = EXAMPLE / "berth-package"
    assert link.is_symlink() and link.resolve() == PLUGIN_DIR
    assert example()["packages"] == {"berth": "./berth-package"}


def test_the_readme_shows_the_example_program():
    """The README's "Use Berth from YAML" program is examples/yaml-shop/Pulumi.yaml, verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use Berth from YAML (and other Pulumi languages)", 1)[1].split("\n## ", 1)[0]
    block = section.split("<!-- readme-test: file yaml/Pulumi.yaml -->\n```yaml\n", 1)[1].split("```\n", 1)[0]
    assert block == (EXAMPLE / "Pulumi.yaml").read_text()
