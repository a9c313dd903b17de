"""The README's YAML program, deployed through Berth's component package by the real CLI on Podman.

A team's YAML project outside the repository, as "Use Berth from YAML" describes it: Berth installed
in the project's ``.venv`` from a copy of this checkout (the path form, not editable), the link
``berth-package`` to the folder ``berth package`` prints, and ``Pulumi.yaml`` = the README's program
(examples/yaml-shop/Pulumi.yaml) where only what cannot be had here is changed, as for the dev stack
(tests/real/stacks/realdev.py): the images (local test images), the proxy's host ports (free loopback
ports) and its resolver (the test image's nginx 1.22 lacks ``resolve``).

The official YAML language host runs the program (``.ci/yaml-host.sh``: CI puts it on PATH). The
engine starts the package's ``pulumi-resource-berth`` itself: no Python language host is involved in
running the provider (the stand-in here only runs the policy pack), which the language host's log
shows. One deployment:

a `pulumi up` → the app answers HTTPS through the proxy and reaches Postgres and Redis
b `pulumi preview --expect-no-changes`
c the policy pack (installed with Berth) passes the program and blocks a variant whose app runs as root
e monitoring added (README's form): exporters with their own roles, Prometheus scraping, Grafana
  through the proxy, no changes after
d `pulumi destroy` leaves nothing of the stack

CI provides the engine, Podman's Docker API with its health-check loop, the images and the YAML host.
Nothing here starts or skips anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.record import ROOT
from tests.real.pulumi_cli import EngineMissing, Pulumi, mandatory_violations
from tests.real.stacks.seeds import force_cleanup
from tests.real.stacks.seeds import leftovers as stack_leftovers
from tests.real.test_docker_dev import exec_in, http, http_json, wait_http
from tests.real.test_outside_project import checkout_copy

sys.path.insert(0, str(Path(__file__).resolve().parent / "stacks"))
import realdev  # noqa: E402

pytestmark = pytest.mark.real_docker

EXAMPLE = ROOT / "examples" / "yaml-shop" / "Pulumi.yaml"
STACK = "yamlci"
PREFIX = f"shop-{STACK}"  # the program's platform name: ${pulumi.project}-${pulumi.stack}
TIMINGS: dict[str, float] = {}


def log(msg: str) -> None:
    print(msg, flush=True)


def with_test_images(doc: dict[str, Any], http_port: int, https_port: int) -> dict[str, Any]:
    """The program with the test images, free loopback ports, the resolver off and Podman named as the
    Docker engine (nothing else)."""
    res = doc["resources"]
    res["platform"]["properties"]["dockerEngine"] = "podman"  # what serves the test Docker API
    res["db"]["properties"]["image"] = realdev.IMAGES["postgres"]
    res["cache"]["properties"]["image"] = realdev.IMAGES["redis"]
    res["api"]["properties"]["image"] = realdev.APP_IMAGE
    proxy = res["proxy"]["properties"]
    proxy.update(image=realdev.IMAGES["nginx"], httpPort=http_port, httpsPort=https_port, resolver="")
    return doc


@dataclass
class YamlEnv:
    base: Path
    project: Path
    venv: Path
    pulumi: Pulumi
    client: Any
    program: dict[str, Any]
    ports: tuple[int, int]
    facts: dict[str, Any] = field(default_factory=dict)

    def write(self, doc: dict[str, Any]) -> None:
        (self.project / "Pulumi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.ports[1]}{path}"

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _fail(msg: str) -> None:
    pytest.fail(msg, pytrace=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if not os.environ.get("DOCKER_HOST"):
        _fail("DOCKER_HOST is not set: start Podman's Docker API (bash .ci/podman.sh start)")
    if not shutil.which("pulumi-language-yaml"):
        _fail("the Pulumi YAML language host is not on PATH: run `bash .ci/yaml-host.sh build` and "
              "`eval \"$(bash .ci/yaml-host.sh env)\"` (.ci/run does both)")
    import docker

    client = docker.from_env(timeout=300)
    client.ping()
    force_cleanup(client, PREFIX)  # an earlier interrupted run
    base = tmp_path_factory.mktemp("yaml-program")
    assert ROOT not in base.parents, f"{base} must be outside the repository {ROOT}"

    # Berth installed in the project's virtualenv from a copy of this checkout (README: install).
    project = base / "shop"
    project.mkdir()
    t0 = time.monotonic()
    src = checkout_copy(base / "berth-checkout")
    (project / "requirements.txt").write_text(f"berth @ {src.as_uri()}\n")
    venv = project / ".venv"
    pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True,
                   capture_output=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "-r",
                          "requirements.txt"], cwd=project, env=pip_env, capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, f"pip install failed:\n{pip.stdout[-3000:]}\n{pip.stderr[-5000:]}"
    TIMINGS["install Berth in the project's .venv"] = time.monotonic() - t0

    # README: `ln -sfn "$(.venv/bin/berth package)" berth-package`
    folder = subprocess.run([str(venv / "bin" / "berth"), "package"], capture_output=True, text=True, check=True)
    (project / "berth-package").symlink_to(Path(folder.stdout.strip()), target_is_directory=True)

    ports = (realdev.free_port(), realdev.free_port())
    program = with_test_images(yaml.safe_load(EXAMPLE.read_text()), *ports)
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))
    try:
        p = Pulumi(project, STACK, base / "state", log=log, env_extra={
            # python3 for the policy pack: the project's venv (pulumi-policy is a dependency of Berth)
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "PULUMI_LH_LOG": str(base / "language-host.log"),
        })
    except EngineMissing as e:
        _fail(str(e))
    p.init()
    e = YamlEnv(base, project, venv, p, client, program, ports)
    yield e
    try:
        e.write(program)
        p.destroy(check=False)
    finally:
        force_cleanup(client, PREFIX)
        left = stack_leftovers(client, PREFIX)
        print("yaml-program timings (s): " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))
        assert not any(left.values()), f"left behind: {left}"


_BASELINE: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _stop_after_failure(request, env):
    """Scenarios build on each other: after one fails, the later ones fail fast and say so."""
    base = _BASELINE.setdefault("failed", request.session.testsfailed)
    if request.session.testsfailed > base and not request.node.name.startswith("test_zz"):
        pytest.fail("an earlier scenario of this module failed; see it first")


def timed(label: str, fn, *a, **kw):
    t0 = time.monotonic()
    try:
        return fn(*a, **kw)
    finally:
        TIMINGS[label] = time.monotonic() - t0
        log(f"[yaml program] {label}: {TIMINGS[label]:.1f}s")


# ---------------------------------------------------------------- a: up → traffic


def test_a_up_deploys_the_program_through_the_package(env):
    assert (env.project / "berth-package" / "pulumi-resource-berth").resolve().is_relative_to(env.venv.resolve())
    assert os.access(env.project / "berth-package" / "pulumi-resource-berth", os.X_OK), "installed without its x bit"
    res = timed("pulumi up (first)", env.pulumi.up)
    assert "warning: using pulumi-language-yaml from $PATH" in res.output  # the official YAML host ran it
    types = {r["type"] for r in env.pulumi.resources()}
    assert {"berth:index:Platform", "berth:index:Database", "berth:index:Cache", "berth:index:AppService",
            "berth:index:Proxy", "docker:index/container:Container"} <= types, types
    names = {c.name for c in env.client.containers.list(all=True, filters={"label": f"berth.stack={PREFIX}"})}
    assert {f"{PREFIX}-db", f"{PREFIX}-cache", f"{PREFIX}-api", f"{PREFIX}-proxy"} <= names, names
    # The engine ran the package's executable itself: the Python language host never ran a provider.
    lh = env.base / "language-host.log"
    started = [line for line in (lh.read_text().splitlines() if lh.exists() else []) if "RunPlugin kind=resource" in line]
    assert not started, started


def test_a_https_reaches_the_app_which_reaches_postgres_and_redis(env):
    outputs = env.pulumi.outputs()
    assert outputs["url"] == f"https://localhost:{env.ports[1]}/", outputs
    assert outputs["databaseUrl"].startswith("postgresql://db:") and outputs["databaseUrl"].endswith("@db:5432/db")
    wait_http(env.url("/health"))
    value = f"berth-yaml-{uuid.uuid4().hex[:8]}"
    item = http_json("POST", env.url("/api/items"), {"value": value})
    env.facts["item"] = item
    got = http_json("GET", env.url(f"/api/items/{item['id']}"))
    assert got["value"] == value and got["cached"] == value, got
    row = exec_in(env, f"{PREFIX}-db", ["psql", "-U", "db", "-d", "db", "-h", "/var/run/postgresql", "-tAc",
                                        f"SELECT value FROM items WHERE id = {int(item['id'])}"]).strip()
    assert row == value
    status, _, _ = http("GET", f"http://127.0.0.1:{env.ports[0]}/")  # (/health answers on HTTP too)
    assert status in (301, 302, 307, 308), status  # HTTP is redirected to HTTPS


# ---------------------------------------------------------------- b: no changes


def test_b_preview_expects_no_changes_after_up(env):
    timed("pulumi preview --expect-no-changes", env.pulumi.expect_no_changes)


# ---------------------------------------------------------------- c: the policy pack


def _pack(env: YamlEnv) -> tuple[Path, Path]:
    pack = Path(subprocess.run([env.bin("berth"), "policy-pack"], capture_output=True, text=True, check=True)
                .stdout.strip())
    config = env.base / "policy-config.json"  # the proxy publishes the free test ports instead of 80/443
    config.write_text(json.dumps({"docker-container-host-ports-proxy-only": {"allowedHostPorts": list(env.ports)}}))
    return pack, config


def test_c_the_policy_pack_passes_the_program(env):
    pack, config = _pack(env)
    events = env.base / "pack.events.ndjson"
    res = timed("pulumi preview --policy-pack", env.pulumi.preview, "--policy-pack", str(pack),
                "--policy-pack-config", str(config), "--event-log", str(events), check=False)
    found = mandatory_violations(events)
    assert res.returncode == 0 and not found, f"{found}\n{res}"


def test_c_the_policy_pack_blocks_an_insecure_variant(env):
    """The same program with the app running as root: the pack, unchanged, refuses it."""
    pack, config = _pack(env)
    variant = yaml.safe_load(yaml.safe_dump(env.program))
    variant["resources"]["api"]["properties"]["runAsRoot"] = True
    env.write(variant)
    events = env.base / "variant.events.ndjson"
    try:
        res = timed("pulumi preview --policy-pack (insecure variant)", env.pulumi.preview, "--policy-pack", str(pack),
                    "--policy-pack-config", str(config), "--event-log", str(events), check=False)
    finally:
        env.write(env.program)
    found = mandatory_violations(events)
    assert res.returncode != 0, res
    assert "docker-container-non-root-user" in found, f"{found}\n{res}"
    assert any(f"{PREFIX}-api" in m or "api" in m for m in found["docker-container-non-root-user"]), found


# ---------------------------------------------------------------- e: monitoring added


def with_monitoring(doc: dict[str, Any], https_port: int) -> dict[str, Any]:
    """The program with monitoring (README, "Use Berth from YAML": the platform's monitoring property,
    a berth:Monitoring, the proxy after it), on the test images."""
    doc = yaml.safe_load(yaml.safe_dump(doc))
    res = doc["resources"]
    res["platform"]["properties"]["monitoring"] = {
        "prometheusImage": realdev.IMAGES["prometheus"], "grafanaImage": realdev.IMAGES["grafana"],
        "postgresExporterImage": realdev.IMAGES["postgres_exporter"], "redisExporterImage": realdev.IMAGES["redis_exporter"],
        "storage": "1Gi", "retention": "1d"}
    res["api"]["properties"]["metrics"] = {"path": "/metrics"}
    proxy = res.pop("proxy")
    res["monitoring"] = {"type": "berth:Monitoring",
                         "properties": {"platform": "${platform}", "watch": ["${db}", "${cache}", "${api}"],
                                        "domain": "localhost", "httpsPort": https_port}}
    res["proxy"] = {**proxy, "options": {"dependsOn": ["${monitoring}"]}}
    doc.setdefault("outputs", {})["grafanaPassword"] = "${monitoring.grafanaAdminPassword}"
    return doc


def test_e_monitoring_added_watches_the_stores_and_serves_grafana_through_the_proxy(env):
    """Monitoring added to the deployed program: the database gets its exporter's role (the row
    written before stays), Prometheus scrapes the app and both exporters, and the proxy serves
    Grafana at /grafana/."""
    doc = with_monitoring(env.program, env.ports[1])
    env.write(doc)
    env.program = doc  # what the module's teardown destroys
    timed("pulumi up (monitoring added)", env.pulumi.up)
    names = {c.name for c in env.client.containers.list(all=True, filters={"label": f"berth.stack={PREFIX}"})}
    assert {f"{PREFIX}-prometheus", f"{PREFIX}-grafana", f"{PREFIX}-db-exporter", f"{PREFIX}-cache-exporter"} <= names
    assert env.pulumi.outputs()["grafanaPassword"], "no Grafana password in the outputs"
    prom = f"{PREFIX}-prometheus"
    metrics = exec_in(env, prom, ["wget", "-q", "-O", "-", "http://db-exporter:9187/metrics"])
    assert "pg_up 1" in metrics.splitlines(), [l for l in metrics.splitlines() if l.startswith("pg_up")]
    deadline = time.monotonic() + 90
    while True:
        targets = json.loads(exec_in(env, prom, ["wget", "-q", "-O", "-", "http://127.0.0.1:9090/api/v1/targets"]))
        health = {t["labels"].get("job"): t["health"] for t in targets["data"]["activeTargets"]}
        if {"api", "db-exporter", "cache-exporter"} <= set(health) and all(h == "up" for h in health.values()):
            break
        assert time.monotonic() < deadline, health
        time.sleep(3)
    wait_http(env.url("/grafana/api/health"))
    assert http_json("GET", env.url("/grafana/api/health"))["database"] == "ok"
    item = env.facts.get("item")
    if item:
        row = exec_in(env, f"{PREFIX}-db", ["psql", "-U", "db", "-d", "db", "-h", "/var/run/postgresql", "-tAc",
                                            f"SELECT value FROM items WHERE id = {int(item['id'])}"]).strip()
        assert row == item["value"]
    timed("pulumi preview --expect-no-changes (monitoring)", env.pulumi.expect_no_changes)


# ---------------------------------------------------------------- d: destroy


def test_d_destroy_leaves_nothing(env):
    timed("pulumi destroy", env.pulumi.destroy)
    left = stack_leftovers(env.client, PREFIX)
    assert not any(left.values()), left
    assert not env.pulumi.resources()


def test_zz_report(env):
    print("yaml-program timings (s): " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))
