"""Cache component: Redis with a generated password, AOF persistence and a health check, internal only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi

from .ir import DataVolume, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .spec import CacheSpec

REDIS_PORT = 6379
REDIS_UID = 999  # the official redis image's user


def redis_command(spec: CacheSpec) -> tuple[str, ...]:
    """Through a shell so the password comes from the environment: it goes into a config file on the
    container's private tmpfs (mode 600), never into the inputs or onto redis-server's command line
    (which every process on the host can read)."""
    flags = "--appendonly yes --appendfsync everysec --dir /data --protected-mode yes"
    if spec.maxmemory:
        flags += f" --maxmemory {spec.maxmemory} --maxmemory-policy allkeys-lru"
    script = (
        "umask 077 && printf 'requirepass \"%s\"\\n' \"$REDIS_PASSWORD\" > /tmp/redis-auth.conf && "
        f"exec redis-server /tmp/redis-auth.conf {flags}"
    )
    return ("sh", "-c", script)


def cache_workloads(name: str, spec: CacheSpec, password: pulumi.Input[str], allow_from: Sequence[str] = ()) -> list[Workload]:
    """The Redis workload (pure)."""
    return [
        Workload(
            name=name,
            role=Role.CACHE,
            image=spec.image or f"redis:{spec.version}",
            kind=Kind.STATEFUL,
            command=redis_command(spec),
            secret_env={"REDIS_PASSWORD": SecretValue(f"{name}-env", "REDIS_PASSWORD", password)},
            ports=(Port("redis", REDIS_PORT),),
            volumes=(DataVolume(f"{name}-data", "/data", spec.storage),),
            tmpfs=("/tmp",),
            health=Probe(
                # REDISCLI_AUTH: the password reaches redis-cli through its environment, not its argv.
                command=("CMD-SHELL", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG'),
                interval=10, timeout=5, retries=5, start_period=10,
            ),
            resources=spec.resources,
            user=REDIS_UID,
            group=REDIS_UID,
            allow_from=tuple(sorted(allow_from)),
            stateful_data=True,
            stop_grace_seconds=30,
        )
    ]


def redis_url(name: str, password: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(pulumi.Output.concat("redis://:", password, "@", name, ":", str(REDIS_PORT), "/0"))


@dataclass(frozen=True)
class CachePlan:
    """A cache's share of the plan: its workload and the password it is waiting for."""

    workloads: tuple[Workload, ...]
    password: Later


def plan_cache(name: str, spec: CacheSpec, password: Later, allow_from: Sequence[str] = ()) -> CachePlan:
    """The workload, with the password to come (pure). The password is planned apart: services
    that use it pass it through in their URLs."""
    return CachePlan(tuple(cache_workloads(name, spec, password.output, allow_from)), password)


class Cache(pulumi.ComponentResource):
    """A Redis cache. Outputs: ``host``, ``port``, ``url`` (secret)."""

    def __init__(self, name: str, spec: CacheSpec, target, allow_from: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None, plan: Optional[CachePlan] = None):
        super().__init__("berth:index:Cache", name, None, opts)
        import pulumi_random as random

        plan = plan or plan_cache(name, spec, Later(f"{name}-password"), allow_from)
        self.password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        ).result
        plan.password.resolve(self.password)
        self.workloads = list(plan.workloads)
        self.ready = target.deploy(self.workloads[0], parent=self, depends_on=[])
        self.host = pulumi.Output.from_input(name)
        self.port = pulumi.Output.from_input(REDIS_PORT)
        self.url = redis_url(name, self.password)
        self.register_outputs({"host": self.host, "port": self.port, "url": self.url})
