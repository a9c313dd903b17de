"""The seed examples' stack files made deployable on this machine (tests/real/test_seed_*.py).

``seed_config`` reads ``examples/<example>/Pulumi.<stack>.yaml`` and changes only what cannot be the
same here: images (the local test images of tests/images/, and where a seed's command belongs to
the team's image, the test image's equivalent), host ports (free loopback ports), ``berth:docker.host``
(ssh:// → this machine's Podman) and, per test module, what a CI run must compress (each module's
docstring says which). Everything else (names, networks, volumes, health checks, dependencies,
retention, secrets) is the example's.

``Deployment`` is one stack of a temporary user-shaped project (Pulumi.yaml + the example's
``__main__.py``) driven by the real CLI (tests/real/pulumi_cli.py), with the Docker SDK on the same
Docker API for the checks.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from tests.real.pulumi_cli import Pulumi, write_project, write_stack_config

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"

APP_IMAGE = "localhost/berth-testapp:1"
IMAGES = {
    "postgres": "localhost/berth-postgres:15",
    "mongodb": "localhost/berth-mongo:7",
    "redis": "localhost/berth-redis:7",
    "rabbitmq": "localhost/berth-rabbitmq:3",
    "neo4j": "localhost/berth-neo4j:4",
    "nginx": "localhost/berth-nginx:1",
    "backup-postgres": "localhost/berth-backup:1",
    "backup-mongodb": "localhost/berth-backup-mongo:1",
    "prometheus": "localhost/berth-prometheus:2",
    "grafana": "localhost/berth-grafana-standin:1",
    "postgres_exporter": "localhost/berth-postgres-exporter:1",
    "redis_exporter": "localhost/berth-redis-exporter:1",
    "pushgateway": "localhost/berth-pushgateway:1",
}
PODMAN_SOCK = "unix:///run/berth-podman/podman.sock"


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example_config(example: str, stack: str) -> dict[str, Any]:
    """The ``config:`` mapping of an example's stack file, as committed."""
    return (yaml.safe_load((EXAMPLES / example / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}


def seed_config(example: str, stack: str, *, docker_host: str, bind_address: str = "127.0.0.1",
                commands: Optional[dict[str, list[str]]] = None, app_image: str = APP_IMAGE,
                engine: str = "podman") -> dict[str, Any]:
    """The example's stack config with the local test images, free host ports on ``bind_address``,
    ``berth:docker.host`` = ``docker_host`` and ``berth:docker.engine`` = ``engine`` (what serves that
    API: Podman, or Docker Engine). ``commands`` replaces a service's command where the seed's
    command is the team's image's own (``npx prisma ...``, ``python -m bot``)."""
    return seed_config_from(example_config(example, stack), example, stack, docker_host=docker_host,
                            bind_address=bind_address, commands=commands, app_image=app_image, engine=engine)


def seed_config_from(raw: dict[str, Any], example: str, stack: str, *, docker_host: str,
                     bind_address: str = "127.0.0.1", commands: Optional[dict[str, list[str]]] = None,
                     app_image: str = APP_IMAGE, engine: str = "podman") -> dict[str, Any]:
    """``seed_config`` of a stack config already read (and changed by the test, e.g. a CI variant)."""
    cfg = copy.deepcopy(raw)
    if cfg.get("berth:target") != "docker":
        raise ValueError(f"{example}/{stack}: not a Docker stack")
    cfg.setdefault("berth:docker", {})["host"] = docker_host
    cfg["berth:docker"]["engine"] = engine
    for name, db in (cfg.get("berth:databases") or {}).items():
        db["image"] = IMAGES[db.get("engine", "postgres")]
    for cache in (cfg.get("berth:caches") or {}).values():
        cache["image"] = IMAGES["redis"]
    for broker in (cfg.get("berth:brokers") or {}).values():
        broker["image"] = IMAGES["rabbitmq"]
    for graph in (cfg.get("berth:graphs") or {}).values():
        graph["image"] = IMAGES["neo4j"]
    for name, svc in (cfg.get("berth:services") or {}).items():
        svc["image"] = app_image
        if commands and name in commands:
            svc["command"] = commands[name]
    proxy = cfg.get("berth:proxy")
    if proxy is not None:
        proxy["image"] = IMAGES["nginx"]
        proxy["http_port"], proxy["https_port"] = free_port(), free_port()
        proxy["bind_address"] = bind_address
        # The test image's nginx is Debian's 1.22: the `resolve` upstream parameter of the default
        # resolver needs nginx >= 1.27.3 (an image-version setting, like the image).
        proxy["resolver"] = None
    dbs = cfg.get("berth:databases") or {}
    for db, backup in (cfg.get("berth:backups") or {}).items():
        backup["image"] = IMAGES[f"backup-{dbs[db].get('engine', 'postgres')}"]
    mon = cfg.get("berth:monitoring")
    if isinstance(mon, dict) and mon.get("enabled", True):
        mon["prometheus_image"] = IMAGES["prometheus"]
        mon["grafana_image"] = IMAGES["grafana"]
        mon["postgres_exporter_image"] = IMAGES["postgres_exporter"]
        mon["redis_exporter_image"] = IMAGES["redis_exporter"]
        mon["pushgateway_image"] = IMAGES["pushgateway"]
    return cfg


#: The Docker APIs the tests deploy to (``berth:docker.engine`` → where CI serves it).
ENGINES = ("podman", "docker")


def docker_host_or_fail(engine: str = "podman") -> str:
    """The API of ``engine``: Podman's (``DOCKER_HOST``) or Docker Engine's (``BERTH_DOCKERD_HOST``),
    or a failure that says what starts it."""
    import pytest

    if engine == "docker":
        host = os.environ.get("BERTH_DOCKERD_HOST")
        if not host:
            pytest.fail(
                "BERTH_DOCKERD_HOST is not set: start Docker Engine first (after the test images are built):\n"
                "  bash .ci/dockerd.sh install && eval \"$(bash .ci/dockerd.sh start)\" && export BERTH_DOCKERD_HOST\n"
                "  bash .ci/dockerd.sh load $(podman images --format '{{.Repository}}:{{.Tag}}' | grep ^localhost/berth-)",
                pytrace=False)
        return host
    host = os.environ.get("DOCKER_HOST")
    if not host:
        pytest.fail(
            "DOCKER_HOST is not set: start Podman's Docker API first:\n"
            "  bash .ci/podman.sh install && eval \"$(bash .ci/podman.sh start)\" && export DOCKER_HOST\n"
            "  bash .ci/podman.sh healthd start && bash tests/images/build.sh", pytrace=False)
    return host


def module_engine(request: Any) -> str:
    """The engine a test module deploys to: its ``ENGINE`` (the Docker Engine variants of the seed
    modules import the Podman module's tests and fixtures and set ``ENGINE = "docker"``)."""
    engine = getattr(request.module, "ENGINE", "podman")
    assert engine in ENGINES, engine
    return engine


def docker_client(host: str):
    import docker

    client = docker.DockerClient(base_url=host, timeout=300)
    client.ping()
    return client


# ---------------------------------------------------------------- one deployed stack


@dataclass
class Deployment:
    """One stack of a temporary project, its Pulumi CLI and a Docker client on its host."""

    client: Any
    pulumi: Pulumi
    project: Path
    stack: str
    config: dict[str, Any]
    prefix: str
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, tmp: Path, example: str, stack: str, config: dict[str, Any], client: Any,
               state_dir: Optional[Path] = None) -> "Deployment":
        project_dir = tmp / "project"
        if not (project_dir / "Pulumi.yaml").exists():
            main = (EXAMPLES / example / "__main__.py").read_text()
            write_project(project_dir, example, main=main, description=f"{example} (real seed test)")
        write_stack_config(project_dir, stack, config)
        p = Pulumi(project_dir, stack, state_dir or tmp / "state", log=log)
        p.init()
        prefix = config.get("berth:name") or f"{example}-{stack}"
        d = cls(client, p, project_dir, stack, config, prefix)
        force_cleanup(client, prefix)  # an earlier interrupted run
        return d

    def write(self, config: dict[str, Any]) -> None:
        """A new stack file (keeping the passphrase salt that `pulumi stack init` added)."""
        path = self.project / f"Pulumi.{self.stack}.yaml"
        salt = [line for line in path.read_text().splitlines() if line.startswith("encryptionsalt:")]
        write_stack_config(self.project, self.stack, config)
        if salt:
            path.write_text(salt[0] + "\n" + path.read_text())
        self.config = config

    def timed(self, label: str, fn: Callable, *a, **kw):
        t0 = time.monotonic()
        try:
            return fn(*a, **kw)
        finally:
            self.timings[label] = round(time.monotonic() - t0, 1)
            log(f"[{self.prefix}] {label}: {self.timings[label]}s")

    # -- containers
    def name(self, workload: str) -> str:
        return f"{self.prefix}-{workload}"

    def container(self, workload: str):
        return self.client.containers.get(self.name(workload))

    def containers(self) -> list:
        return self.client.containers.list(all=True, filters={"label": f"berth.stack={self.prefix}"})

    def exec(self, workload: str, cmd: list[str], check: bool = True) -> str:
        code, out = self.container(workload).exec_run(cmd)
        text = out.decode(errors="replace")
        if check:
            assert code == 0, f"{self.name(workload)}: {cmd} exited {code}: {text}"
        return text

    def unhealthy(self) -> list[str]:
        """Long-running containers that are not running, or not healthy when they have a check."""
        problems = []
        for c in self.containers():
            if (c.attrs["HostConfig"].get("RestartPolicy") or {}).get("Name") == "no":
                continue  # a one-shot job (files, pre-deploy backup, restore)
            health = (c.attrs["State"].get("Health") or {}).get("Status")
            if c.status != "running":
                problems.append(f"{c.name}: {c.status}")
            elif c.attrs["Config"].get("Healthcheck") and health != "healthy":
                problems.append(f"{c.name}: health {health}")
        return problems

    def no_changes_after_up_and_refresh(self) -> None:
        """``preview --expect-no-changes`` right after ``up``, then ``refresh`` (which writes what the
        engine reads back into the state) and the same preview again: a field the engine reads back
        unlike what was declared would show here as a diff, or a replacement, on the next ``up``."""
        self.timed("pulumi preview --expect-no-changes", self.pulumi.expect_no_changes)
        self.timed("pulumi refresh", self.pulumi.refresh)
        self.timed("pulumi preview --expect-no-changes (after refresh)", self.pulumi.expect_no_changes)

    def url(self, path: str) -> str:
        proxy = self.config["berth:proxy"]
        return f"https://{proxy['bind_address']}:{proxy['https_port']}{path}"

    def destroy_all(self) -> None:
        """Teardown: unprotect (prod stacks), destroy, then remove whatever is left."""
        try:
            self.pulumi.run("state", "unprotect", "--all", "--yes", check=False)
            self.pulumi.destroy(check=False)
        finally:
            force_cleanup(self.client, self.prefix)


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how `pulumi stack export --show-secrets` marks a secret


def plain(value: Any) -> Any:
    """A value of ``pulumi stack export --show-secrets`` with its secrets unwrapped."""
    if isinstance(value, dict) and SECRET_SIG in value and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


def leftovers(client, prefix: str) -> dict[str, list[str]]:
    f = {"label": f"berth.stack={prefix}"}
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters=f)),
        "networks": sorted(n.name for n in client.networks.list(filters=f)),
        "volumes": sorted(v.name for v in client.volumes.list(filters=f)),
    }


def force_cleanup(client, prefix: str) -> None:
    """Test teardown only: remove every container, network and volume of a stack."""
    from docker.errors import APIError, NotFound

    f = {"label": f"berth.stack={prefix}"}
    for c in client.containers.list(all=True, filters=f):
        try:
            c.remove(force=True, v=True)
        except NotFound:
            pass
    for n in client.networks.list(filters=f):
        try:
            n.remove()
        except (NotFound, APIError):
            pass
    for v in client.volumes.list(filters=f):
        try:
            v.remove(force=True)
        except (NotFound, APIError):
            pass


def wait_until(what: str, fn: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """``fn()`` until it returns something truthy, within ``timeout`` seconds (then fails with ``what``
    and the last value or error)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s (last: {last!r})")
        time.sleep(interval)


# ---------------------------------------------------------------- HTTP (test traffic on loopback)

_CTX = ssl.create_default_context()
_CTX.check_hostname = False
_CTX.verify_mode = ssl.CERT_NONE  # the stacks' self-signed certificates


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


_OPENER = urllib.request.build_opener(urllib.request.HTTPSHandler(context=_CTX), _NoRedirect,
                                      urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: Optional[dict] = None, timeout: float = 10) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_json(method: str, url: str, body: Optional[dict] = None) -> dict:
    status, raw = http(method, url, body)
    assert status == 200, f"{method} {url} → {status}: {raw[:500]!r}"
    return json.loads(raw)


def wait_http(url: str, timeout: float = 60) -> None:
    def ok() -> bool:
        status, raw = http("GET", url, timeout=5)
        assert status == 200, (status, raw[:200])
        return True

    wait_until(f"GET {url} → 200", ok, timeout)


def docker_bench_finds_nothing_new(d: Deployment, *, stale_fails: bool = False) -> float:
    """Docker's own CIS checker (docker-bench-security, section 5: container runtime) over the
    deployment's running containers on Docker Engine: every finding is one that
    tests/checkers/accepted-findings.yaml accepts with its reason; a new one fails. With
    ``stale_fails``, so does an accepted entry that covers none of this stack's findings (judged
    once, over the dev stack, test_dockerd_dev.py, which has every accepted finding). Returns the
    seconds the checker took."""
    from tests.checkers import docker_bench
    from tests.checkers.findings import accepted, judge, report

    t0 = time.monotonic()
    found = docker_bench.run(docker_host_or_fail("docker"), d.prefix, f"{d.prefix} ({d.stack})", d.client)
    seconds = d.timings["docker-bench-security section 5"] = round(time.monotonic() - t0, 1)
    log(f"[{d.prefix}] docker-bench-security: {len(found)} finding(s): "
        + "; ".join(sorted({str(f) for f in found}))[:3000])
    new, stale = judge(found, accepted("docker-bench"))
    stale = stale if stale_fails else []
    assert not new and not stale, report(new, stale)
    return seconds


def run_last(namespace: dict, *names: str) -> None:
    """Moves the named tests to the end of a module's namespace, in that order: pytest runs a module's
    tests in the order they were bound (so a test a module adds can run before the ones it imports
    that destroy the stack)."""
    for name in names:
        namespace[name] = namespace.pop(name)
