"""Smoke tests of the images the seed systems need (tests/images/): MongoDB (a FerretDB stand-in), its
backup image, RabbitMQ, and the test app's MongoDB / AMQP parts, on Podman's Docker-compatible API.

The database, broker and backup containers run as a stack runs them: their settings come from Berth's
own components (``database_workloads``, ``broker_workloads``, ``backup_workloads``) mapped by the Docker
target's ``container_args`` (read-only root where declared, tmpfs /tmp, the component's uid, all
capabilities dropped, no-new-privileges, memory/CPU limits, the component's health check and named
volumes), with only the image set to the local one. The test app runs read-only as uid 10001.

Prerequisites as for test_images_smoke.py (CI's .ci/run): Podman's API in DOCKER_HOST and
`bash tests/images/build.sh` (or `build.sh mongo backup-mongo rabbitmq testapp`). Never skips.
Podman runs no health checks by itself here: they are driven with `podman healthcheck run NAME`.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import tarfile
import time

import docker
import pytest

from berth.components.broker import broker_workloads
from berth.components.database import Credentials
from berth.components.ir import Workload
from berth.components.spec import BrokerSpec
from berth.components.targets.docker import DockerContext, container_args, files_init_args
from tests.real.test_images_smoke import Env, exec_ok, wait_for

pytestmark = pytest.mark.real_docker

IMAGES = {
    "postgres": "localhost/berth-postgres:15",
    "mongo": "localhost/berth-mongo:7",
    "backup_mongo": "localhost/berth-backup-mongo:1",
    "rabbitmq": "localhost/berth-rabbitmq:3",
    "testapp1": "localhost/berth-testapp:1",
    "testapp2": "localhost/berth-testapp:2",
}
LABEL = {"berth.test": "images-seed-smoke"}
DB, DB_NAME, DB_USER = "shop-db", "shop", "shop"
MONGO_PASSWORD = "mongo-secret-1"  # the services' user (readWrite on shop)
MONGO_CREDENTIALS = Credentials(MONGO_PASSWORD, "root-secret-1", monitor="monitor-secret-1", backup="backup-secret-1",
                                restore="restore-secret-1")
BROKER, BROKER_PASSWORD = "jobs", "amqp-secret-1"
APP_TMPFS = {"/tmp": "rw,noexec,nosuid,size=64m,mode=1777"}
APP_SECURITY = dict(user="10001:10001", read_only=True, tmpfs=APP_TMPFS, cap_drop=["ALL"],
                    security_opt=["no-new-privileges:true"])
SECONDS = 1_000_000_000


# --------------------------------------------------------------------------- running like a stack
class SeedEnv(Env):
    """test_images_smoke's Env + named volumes (removed at the end) and containers run from workloads."""

    def __init__(self, client):
        super().__init__(client)
        self.volumes = []

    def volume(self, name: str) -> str:
        full = f"seed-smoke-{self.suffix}-{name}"
        if full not in [v.name for v in self.volumes]:
            self.volumes.append(self.client.volumes.create(full, labels=LABEL))
        return full

    def write_files(self, ctx: DockerContext, w: Workload) -> None:
        """Run the one-shot container that writes ``w``'s generated files into their volumes, as the
        Docker target declares it (files_init_args), and wait for it to succeed."""
        args = files_init_args(ctx, w)
        c = self.client.containers.create(
            w.image, name=self.name(f"{w.name}-files"), entrypoint=args["entrypoints"], command=args["command"],
            environment=list(args["envs"]), user=args["user"], network_mode="none", read_only=args["read_only"],
            cap_drop=args["capabilities"]["drops"], cap_add=args["capabilities"].get("adds"),
            security_opt=args["security_opts"], labels=LABEL,
            volumes={self.volume(v["volume_name"]): {"bind": v["container_path"], "mode": "rw"} for v in args["volumes"]})
        self.containers.append(c)
        if args.get("uploads"):  # secret files, as the provider uploads them when it creates the writer
            assert c.put_archive("/", uploads_tar(args["uploads"])), "upload failed"
        c.start()
        result = c.wait(timeout=120)
        assert result["StatusCode"] == 0, c.logs().decode(errors="replace")

    def run_workload(self, w: Workload, publish: tuple[int, ...] = (), start: bool = True):
        """Create (and start) the container Berth's Docker target declares for ``w``, after its
        generated files were written into their volumes."""
        ctx = DockerContext("seedsmoke", self.network.name, self.network.name, engine="podman")
        if w.files:
            self.write_files(ctx, w)
        args = container_args(ctx, w)
        caps = args["capabilities"]
        kw = dict(
            hostname=args["hostname"],
            environment=list(args["envs"]),  # secrets were given as plain strings: no Outputs here
            read_only=args["read_only"],
            tmpfs=args.get("tmpfs"),
            user=args.get("user"),
            cap_drop=caps["drops"],
            cap_add=caps.get("adds"),
            security_opt=args["security_opts"],
            labels=LABEL,
            networking_config={self.network.name: self.client.api.create_endpoint_config(aliases=[w.name])},
            volumes={self.volume(v["volume_name"]): {"bind": v["container_path"],
                                                     "mode": "ro" if v.get("read_only") else "rw"}
                     for v in args.get("volumes", [])},
        )
        if args.get("memory"):
            kw.update(mem_limit=f"{args['memory']}m", memswap_limit=f"{args['memory_swap']}m")
        if args.get("cpus"):
            kw["nano_cpus"] = int(float(args["cpus"]) * SECONDS)
        if args.get("entrypoints"):
            kw["entrypoint"] = args["entrypoints"]
        if args.get("command"):
            kw["command"] = args["command"]
        if w.health and w.health.command:
            kw["healthcheck"] = {"test": list(w.health.command), "interval": w.health.interval * SECONDS,
                                 "timeout": w.health.timeout * SECONDS, "retries": w.health.retries,
                                 "start_period": w.health.start_period * SECONDS}
        if publish:
            kw["ports"] = {f"{p}/tcp": ("127.0.0.1",) for p in publish}
        files = {"/": uploads_tar(args["uploads"])} if args.get("uploads") else None
        c = self.client.containers.create(w.image, name=self.name(w.name), network=self.network.name, **kw)
        self.containers.append(c)
        for path, archive in (files or {}).items():
            assert c.put_archive(path, archive), f"upload to {path} failed"
        if start:
            c.start()
        return c

    def replace_workload(self, w: Workload, **kw):
        """What a redeploy does to a workload: its container (and writer) replaced, its volumes kept."""
        for c in [x for x in self.containers if x.name in (self.name(w.name), self.name(f"{w.name}-files"))]:
            c.remove(force=True)
            self.containers.remove(c)
        return self.run_workload(w, **kw)

    def close(self):
        super().close()
        for v in self.volumes:
            try:
                v.remove(force=True)
            except Exception:  # noqa: BLE001
                pass


def uploads_tar(uploads: list[dict]) -> bytes:
    """The provider's uploads as one archive extracted at "/" (directories created, root-owned)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({os.path.dirname(u["file"]).lstrip("/") for u in uploads})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
        for u in uploads:
            data = u["content"].encode()
            info = tarfile.TarInfo(u["file"].lstrip("/"))
            info.size, info.mode, info.mtime = len(data), int(u["permissions"], 8), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def podman_healthcheck(container) -> bool:
    """One run of the container's health check (Podman has no timers here); True once healthy."""
    podman = shutil.which("podman")
    assert podman, "podman CLI not on PATH"
    container.reload()
    if container.status != "running":
        raise AssertionError(f"{container.name} is {container.status}: {container.logs().decode()[-2000:]}")
    subprocess.run([podman, "healthcheck", "run", container.name], capture_output=True, timeout=60)
    container.reload()
    return container.attrs["State"]["Health"]["Status"] == "healthy"


def wait_healthy(container, timeout: float = 120):
    wait_for(f"{container.name} healthy (its own health check)", lambda: podman_healthcheck(container),
             timeout=timeout, interval=2)










# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client():
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("DOCKER_HOST is not set: run bash .ci/podman.sh install && eval \"$(bash .ci/podman.sh start)\" "
                    "&& bash tests/images/build.sh (CI's .ci/run does this).")
    c = docker.from_env(timeout=300)
    try:
        c.ping()
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer ({e}); run: bash .ci/podman.sh start")
    missing = []
    for ref in IMAGES.values():
        try:
            c.images.get(ref)
        except Exception:  # noqa: BLE001
            missing.append(ref)
    if missing:
        pytest.fail(f"images missing: {missing}; run: bash tests/images/build.sh mongo backup-mongo rabbitmq testapp")
    yield c
    c.close()


@pytest.fixture(scope="module")
def env(client):
    e = SeedEnv(client)
    yield e
    e.close()






# --------------------------------------------------------------------------- MongoDB (FerretDB)




def test_mongo_entrypoint_refuses_what_it_cannot_honour(env):
    code, out = env.run_once(IMAGES["mongo"], "mongo-no-password", None, timeout=60,
                             environment={"MONGO_INITDB_ROOT_USERNAME": "root"})
    assert code == 1 and "both must be specified" in out, out
    code, out = env.run_once(IMAGES["mongo"], "mongo-bad-option", ["mongod", "--config", "/etc/mongod.conf"],
                             timeout=60)
    assert code == 2 and "--config is not supported" in out, out
    code, out = env.run_once(IMAGES["mongo"], "mongosh-unsupported", ["mongosh", "--eval", "db.items.find()"],
                             timeout=60)
    assert code == 2 and "unsupported --eval" in out, out




# --------------------------------------------------------------------------- PostgreSQL from before roles


# --------------------------------------------------------------------------- RabbitMQ








def test_rabbitmq_also_runs_with_a_read_only_root(env):
    """Nothing outside /var/lib/rabbitmq and /tmp is written: the component could declare a read-only root."""
    w = broker_workloads("jobs-ro", BrokerSpec(image=IMAGES["rabbitmq"]), "ro-secret")[0]
    c = env.run_workload(dataclasses.replace(w, read_only_root=True))
    c.reload()
    assert c.attrs["HostConfig"]["ReadonlyRootfs"] is True
    wait_healthy(c, timeout=180)
    # Healthy (ping) comes before the rabbit app has booted: wait for it to serve the env's vhost.
    wait_for("vhost jobs-ro", lambda: "jobs-ro" in exec_ok(c, ["rabbitmqctl", "list_vhosts", "-q"]), timeout=60)
    exec_ok(c, ["rabbitmq-diagnostics", "-q", "check_port_connectivity"])


# --------------------------------------------------------------------------- the test app


