"""AppService component: web apps, workers, schedulers and bots from one spec.

A service with ``port`` is reachable inside the stack (and through the Proxy when routed); one
without is a worker/bot. Connections to databases and caches arrive as secret env values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi

from .ir import Kind, Later, Port, Probe, Role, Scaling, SecretValue, Workload
from .spec import NAMESPACE, ConfigError, GeneratedSecret, ServiceSpec, StackSecret

DEFAULT_URL_VAR = {"postgres": "DATABASE_URL", "mongodb": "MONGODB_URI", "redis": "REDIS_URL",
                   "rabbitmq": "AMQP_URL", "neo4j": "NEO4J_URI"}


@dataclass(frozen=True)
class Connection:
    """What a service needs to reach one database or cache."""

    kind: str  # postgres | mongodb | redis | rabbitmq | neo4j
    url: pulumi.Input[str]
    replica_url: Optional[pulumi.Input[str]] = None
    #: More variables next to the URL, as (suffix, value): Neo4j drivers take the credentials apart
    #: from the URI, so ``NEO4J_URI`` comes with ``NEO4J_USER`` and ``NEO4J_PASSWORD``.
    extra: tuple[tuple[str, pulumi.Input[str]], ...] = ()


def extra_var(var: str, suffix: str) -> str:
    """``NEO4J_URI`` + ``PASSWORD`` → ``NEO4J_PASSWORD`` (the URL variable's prefix, then the suffix)."""
    for end in ("_URI", "_URL"):
        if var.endswith(end):
            return f"{var[: -len(end)]}_{suffix}"
    return f"{var}_{suffix}"


def replica_var(var: str) -> str:
    return var[: -len("_URL")] + "_REPLICA_URL" if var.endswith("_URL") else f"{var}_REPLICA"


def connection_env(spec: ServiceSpec, connections: Mapping[str, Connection]) -> dict[str, tuple[str, pulumi.Input[str]]]:
    """env var → (store, url) for every store the service uses."""
    pairs = spec.uses.items() if isinstance(spec.uses, dict) else [(u, None) for u in spec.uses]
    out: dict[str, tuple[str, pulumi.Input[str]]] = {}
    for store, var in pairs:
        conn = connections[store]
        var = var or DEFAULT_URL_VAR[conn.kind]
        out[var] = (store, conn.url)
        if conn.replica_url is not None:
            out[replica_var(var)] = (store, conn.replica_url)
        for suffix, value in conn.extra:
            out[extra_var(var, suffix)] = (store, value)
    return out


def service_probe(spec: ServiceSpec) -> Optional[Probe]:
    h = spec.health
    if h is None:
        return Probe(path="/health", port=spec.port) if spec.port else None
    if h.command:
        return Probe(command=tuple(h.command), interval=h.interval, timeout=h.timeout, retries=h.retries,
                     start_period=h.start_period)
    return Probe(path=h.path, port=spec.port, interval=h.interval, timeout=h.timeout, retries=h.retries,
                 start_period=h.start_period)


def service_workload(
    name: str,
    spec: ServiceSpec,
    connections: Mapping[str, Connection],
    secret_values: Mapping[str, pulumi.Input[str]],
    allow_from: Sequence[str] = (),
) -> Workload:
    """The workload of one service (pure). ``secret_values`` maps each secret_env var to its value."""
    secret_env: dict[str, SecretValue] = {}
    for var, (_store, url) in connection_env(spec, connections).items():
        secret_env[var] = SecretValue(f"{name}-env", var, url)
    for var in spec.secret_env:
        secret_env[var] = SecretValue(f"{name}-env", var, secret_values[var])
    health = service_probe(spec)
    readiness = None
    if spec.health and spec.health.ready_path:
        readiness = Probe(path=spec.health.ready_path, port=spec.port, interval=spec.health.interval,
                          timeout=spec.health.timeout, retries=spec.health.retries, start_period=spec.health.start_period)
    scaling = None
    if spec.autoscale:
        a = spec.autoscale
        scaling = Scaling(min=a.min, max=a.max, cpu=a.cpu, memory=a.memory, scale_down_after=a.scale_down_after)
    labels = {}
    if spec.metrics:
        labels["berth.dev/metrics-path"] = spec.metrics.path.strip("/").replace("/", "_") or "root"
    return Workload(
        name=name,
        role=Role.APP,
        image=spec.image,
        kind=Kind.SERVICE,
        entrypoint=tuple(spec.entrypoint) if spec.entrypoint else None,
        command=tuple(spec.command) if spec.command else None,
        env=dict(spec.env),
        secret_env=secret_env,
        ports=(Port("http", spec.port),) if spec.port else (),
        tmpfs=tuple(spec.writable_paths),
        health=health,
        readiness=readiness,
        resources=spec.resources,
        replicas=spec.autoscale.min if spec.autoscale and spec.replicas == 1 else spec.replicas,
        scaling=scaling,
        user=None if spec.run_as_root else spec.run_as_user,
        read_only_root=spec.read_only_root,
        depends_on=tuple(spec.depends_on),
        allow_from=tuple(sorted(allow_from)),
        egress=spec.egress,
        singleton=spec.singleton,
    )


def stack_output_value(outputs: Mapping[str, object], key: str, ref: StackSecret) -> str:
    """The referenced stack's output ``ref.output``, or a ConfigError naming ``key`` (pure)."""
    value = outputs.get(ref.output)
    if value is None:
        have = ", ".join(sorted(outputs)) or "none"
        raise ConfigError([
            f"{key} = {{from_stack: {ref.from_stack}, output: {ref.output}}}: stack {ref.from_stack!r} has no output "
            f"{ref.output!r} (its outputs: {have}); export it there (secret_env: {{VAR: {{generate: true, export: "
            f"{ref.output}}}}}) and `pulumi up` that stack first, or fix the name"])
    if not isinstance(value, str):
        raise ConfigError([f"{key}: output {ref.output!r} of stack {ref.from_stack!r} is not a string; "
                           "reference a string output"])
    return value


@dataclass(frozen=True)
class ServicePlan:
    """A service's share of the plan: its workload and, by env var, the secret values it is waiting
    for (generated ones, and other stacks' outputs)."""

    workload: Workload
    secrets: Mapping[str, Later]


def plan_service(name: str, spec: ServiceSpec, connections: Mapping[str, Connection],
                 config_secrets: Mapping[str, pulumi.Input[str]], allow_from: Sequence[str] = ()) -> ServicePlan:
    """The service's workload (pure): secrets from config as they are, the others to come."""
    later: dict[str, Later] = {}
    values: dict[str, pulumi.Input[str]] = {}
    for var, ref in sorted(spec.secret_env.items()):
        if isinstance(ref, (GeneratedSecret, StackSecret)):
            later[var] = Later(f"{name}-env-{var}")
            values[var] = later[var].output
        else:
            values[var] = pulumi.Output.secret(config_secrets[ref])
    return ServicePlan(service_workload(name, spec, connections, values, allow_from), later)


class AppService(pulumi.ComponentResource):
    """An application: a web app, worker, scheduler or bot. Output: ``host`` and ``url`` when it has a port;
    ``exports``: the secret values its ``secret_env`` exports (stack output name → secret value)."""

    def __init__(
        self,
        name: str,
        spec: ServiceSpec,
        target,
        connections: Mapping[str, Connection],
        config_secrets: Mapping[str, str],
        depends_on: Sequence[pulumi.Resource] = (),
        allow_from: Sequence[str] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
        plan: Optional[ServicePlan] = None,
    ):
        super().__init__("berth:index:AppService", name, None, opts)
        import pulumi_random as random

        plan = plan or plan_service(name, spec, connections, config_secrets, allow_from)
        self.exports: dict[str, pulumi.Output[str]] = {}
        for var, ref in sorted(spec.secret_env.items()):
            if isinstance(ref, GeneratedSecret):
                value = random.RandomPassword(
                    # Env names have no '-': "<service>-env-<VAR>" cannot collide across services.
                    f"{name}-env-{var}", length=ref.length, special=False,
                    opts=pulumi.ResourceOptions(parent=self),
                ).result
                plan.secrets[var].resolve(value)
                if ref.export:
                    self.exports[ref.export] = pulumi.Output.secret(value)
            elif isinstance(ref, StackSecret):
                # Read from the other stack's state at every preview and up: a new value there
                # reaches this stack on its next `pulumi up`.
                stack = pulumi.StackReference(f"{name}-env-{var}", stack_name=ref.from_stack,
                                              opts=pulumi.ResourceOptions(parent=self))
                key = f"{NAMESPACE}:services.{name}.secret_env.{var}"
                plan.secrets[var].resolve(pulumi.Output.secret(
                    stack.outputs.apply(lambda outs, key=key, ref=ref: stack_output_value(outs or {}, key, ref))))
        self.workload = plan.workload
        self.ready = target.deploy(self.workload, parent=self, depends_on=list(depends_on))
        self.host = pulumi.Output.from_input(name)
        outputs: dict[str, object] = {"host": self.host}
        if spec.port:
            self.url = pulumi.Output.from_input(f"http://{name}:{spec.port}")
            outputs["url"] = self.url
        self.register_outputs(outputs)
