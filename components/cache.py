"""Cache component: Redis with generated passwords (one login for the apps, one for the exporter),
AOF persistence and a health check, internal only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi

from .ir import DataVolume, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .spec import CacheSpec

REDIS_PORT = 6379
REDIS_UID = 999  # the official redis image's user

# Who logs in, with what (Redis ACL users, written on every start: a redeploy over kept data works).
# The apps log in as Redis's `default` user, so `redis://:password@host` URLs and clients without
# usernames keep working; it has every key, channel and command but the @admin ones (CONFIG SET
# dir/dbfilename writes files where Redis runs, REPLICAOF sends the data elsewhere, ACL makes users;
# SHUTDOWN, MONITOR, CLIENT KILL, SAVE and CONFIG GET go too; MODULE and DEBUG, which Redis 7 also
# disables by its own config).
APP_RULES = "reset on ~* &* +@all -@admin"
# The operator's login (ACL LOG shows what an app was refused): its password is only in the Redis
# container's environment, as the database's admin role's is.
ADMIN_USER = "berth_admin"
ADMIN_RULES = "reset on ~* &* +@all"
MONITOR_USER = "berth_monitor"
# The exporter: the reads redis_exporter makes (INFO, CONFIG GET, SLOWLOG, LATENCY, CLIENT LIST and
# SETNAME, CLUSTER INFO) and no key or channel pattern, so no command can touch the data.
MONITOR_RULES = ("reset on +ping +info +config|get +slowlog|get +slowlog|len +latency|latest "
                 "+client|setname +client|list +cluster|info")


def redis_users(monitored: bool) -> list[tuple[str, str, str]]:
    """(user, ACL rules, the variable holding its password) for each login. ``monitored``: the
    exporter's too."""
    users = [("default", APP_RULES, "REDIS_PASSWORD"), (ADMIN_USER, ADMIN_RULES, "REDIS_ADMIN_PASSWORD")]
    return users + ([(MONITOR_USER, MONITOR_RULES, "REDIS_MONITOR_PASSWORD")] if monitored else [])


def redis_command(spec: CacheSpec, monitored: bool = False) -> tuple[str, ...]:
    """Through a shell so the passwords come from the environment: they go into a config file on the
    container's private tmpfs (mode 600), never into the inputs or onto redis-server's command line
    (which every process on the host can read)."""
    flags = "--appendonly yes --appendfsync everysec --dir /data --protected-mode yes"
    if spec.maxmemory:
        flags += f" --maxmemory {spec.maxmemory} --maxmemory-policy allkeys-lru"
    # ${VAR:?}: an empty or missing password stops the start (`>` with nothing would be a password of "").
    users = " && ".join(f"printf 'user {user} {rules} >%s\\n' \"${{{var}:?is not set}}\""
                        for user, rules, var in redis_users(monitored))
    script = f"umask 077 && {{ {users}; }} > /tmp/redis-auth.conf && exec redis-server /tmp/redis-auth.conf {flags}"
    return ("sh", "-c", script)


def cache_workloads(name: str, spec: CacheSpec, password: pulumi.Input[str], admin_password: pulumi.Input[str],
                    allow_from: Sequence[str] = (), monitor_password: Optional[pulumi.Input[str]] = None
                    ) -> list[Workload]:
    """The Redis workload (pure): ``password`` is the apps', ``monitor_password`` the exporter's
    (with monitoring), ``admin_password`` the operator's."""
    monitored = monitor_password is not None
    given = {"REDIS_PASSWORD": password, "REDIS_ADMIN_PASSWORD": admin_password, "REDIS_MONITOR_PASSWORD": monitor_password}
    secret_env = {var: SecretValue(f"{name}-env", var, given[var]) for _, _, var in redis_users(monitored)}
    return [
        Workload(
            name=name,
            role=Role.CACHE,
            image=spec.image or f"redis:{spec.version}",
            kind=Kind.STATEFUL,
            command=redis_command(spec, monitored),
            secret_env=secret_env,
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
    """A cache's share of the plan: its workload and the passwords it is waiting for (the apps',
    the operator's, and the exporter's with monitoring)."""

    workloads: tuple[Workload, ...]
    password: Later
    admin: Later
    monitor: Optional[Later] = None

    def laters(self) -> list[Later]:
        return [p for p in (self.password, self.admin, self.monitor) if p is not None]


def monitor_password(name: str) -> Later:
    """The exporter's password of cache ``name``, to come: planned before the cache (the exporter is
    among the clients the cache admits), so the stack's plan and the component name it alike."""
    return Later(f"{name}-monitor-password")


def plan_cache(name: str, spec: CacheSpec, password: Later, allow_from: Sequence[str] = (),
               monitor: Optional[Later] = None) -> CachePlan:
    """The workload, with the passwords to come (pure). The apps' and the exporter's are planned
    apart (services pass the one through in their URLs, the exporter the other); the operator's here."""
    admin = Later(f"{name}-admin-password")
    workloads = cache_workloads(name, spec, password.output, admin.output, allow_from,
                                monitor.output if monitor else None)
    return CachePlan(tuple(workloads), password, admin, monitor)


class Cache(pulumi.ComponentResource):
    """A Redis cache. Outputs: ``host``, ``port``, ``url`` (secret). ``monitored``: an exporter
    watches it (it logs in as ``berth_monitor`` with ``monitor_password``); a ``plan`` says it itself."""

    def __init__(self, name: str, spec: CacheSpec, target, allow_from: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None, plan: Optional[CachePlan] = None,
                 monitored: bool = False):
        super().__init__("berth:index:Cache", name, None, opts)
        import pulumi_random as random

        plan = plan or plan_cache(name, spec, Later(f"{name}-password"), allow_from,
                                  monitor_password(name) if monitored else None)
        for later in plan.laters():
            later.resolve(random.RandomPassword(later.name, length=32, special=False,
                                                opts=pulumi.ResourceOptions(parent=self)).result)
        self.password = plan.password.output
        self.monitor_password = plan.monitor.output if plan.monitor else None
        self.workloads = list(plan.workloads)
        self.ready = target.deploy(self.workloads[0], parent=self, depends_on=[])
        self.host = pulumi.Output.from_input(name)
        self.port = pulumi.Output.from_input(REDIS_PORT)
        self.url = redis_url(name, self.password)
        self.register_outputs({"host": self.host, "port": self.port, "url": self.url})
