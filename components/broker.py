"""Broker component: a RabbitMQ message broker with a generated password, a persistent volume and
the management plugin, internal only.

``broker_workloads`` is pure (spec → workloads); ``Broker`` generates the password with
pulumi-random and hands the workload to the target. Services that ``use`` the broker get
``AMQP_URL`` (a secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence
from urllib.parse import quote

import pulumi

from .ir import DataVolume, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .spec import BrokerSpec

AMQP_PORT = 5672
MANAGEMENT_PORT = 15672
RABBITMQ_UID = 999  # the official (Debian-based) rabbitmq image's user


def default_image(spec: BrokerSpec) -> str:
    return spec.image or f"rabbitmq:{spec.version}-management"


def broker_user(name: str, spec: BrokerSpec) -> str:
    return spec.user or name.replace("-", "_")


def broker_vhost(name: str, spec: BrokerSpec) -> str:
    return spec.vhost or name


def broker_workloads(name: str, spec: BrokerSpec, password: pulumi.Input[str],
                     allow_from: Sequence[str] = ()) -> list[Workload]:
    """The RabbitMQ workload (pure)."""
    return [
        Workload(
            name=name,
            role=Role.BROKER,
            image=default_image(spec),
            kind=Kind.STATEFUL,
            env={
                "RABBITMQ_DEFAULT_USER": broker_user(name, spec),
                "RABBITMQ_DEFAULT_VHOST": broker_vhost(name, spec),
                # Fixed node name: the data directory is named after it and must survive a new container.
                "RABBITMQ_NODENAME": "rabbit@localhost",
            },
            secret_env={"RABBITMQ_DEFAULT_PASS": SecretValue(f"{name}-env", "RABBITMQ_DEFAULT_PASS", password)},
            ports=(Port("amqp", AMQP_PORT), Port("management", MANAGEMENT_PORT)),
            volumes=(DataVolume(f"{name}-data", "/var/lib/rabbitmq", spec.storage),),
            # RabbitMQ writes its data, Erlang cookie and expanded plugins under /var/lib/rabbitmq (the
            # volume) and its log files under /var/log/rabbitmq; the image's entrypoint writes nothing.
            tmpfs=("/tmp", "/var/log/rabbitmq"),
            # `ping` answers as soon as the Erlang node runs, before the AMQP listener is open: a
            # dependent created then fails to connect. check_port_connectivity passes only once every
            # listener (AMQP, management) accepts connections.
            health=Probe(command=("CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"),
                         interval=15, timeout=10, retries=10, start_period=30),
            resources=spec.resources,
            user=RABBITMQ_UID,
            group=RABBITMQ_UID,
            allow_from=tuple(sorted(allow_from)),
            stateful_data=True,
            stop_grace_seconds=60,
        )
    ]


def amqp_url(name: str, spec: BrokerSpec, password: pulumi.Input[str]) -> pulumi.Output[str]:
    vhost = quote(broker_vhost(name, spec), safe="")
    return pulumi.Output.secret(
        pulumi.Output.concat("amqp://", broker_user(name, spec), ":", password, "@", name, ":", str(AMQP_PORT), "/", vhost)
    )


@dataclass(frozen=True)
class BrokerPlan:
    """A broker's share of the plan: its workload and the password it is waiting for."""

    workloads: tuple[Workload, ...]
    password: Later


def plan_broker(name: str, spec: BrokerSpec, password: Later, allow_from: Sequence[str] = ()) -> BrokerPlan:
    """The workload, with the password to come (pure). The password is planned apart: services
    that use it pass it through in their URLs."""
    return BrokerPlan(tuple(broker_workloads(name, spec, password.output, allow_from)), password)


class Broker(pulumi.ComponentResource):
    """A RabbitMQ broker. Outputs: ``host``, ``port``, ``url`` (secret AMQP URL)."""

    def __init__(self, name: str, spec: BrokerSpec, target, allow_from: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None, plan: Optional[BrokerPlan] = None):
        super().__init__("berth:index:Broker", name, None, opts)
        import pulumi_random as random

        plan = plan or plan_broker(name, spec, Later(f"{name}-password"), allow_from)
        self.password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        ).result
        plan.password.resolve(self.password)
        self.workloads = list(plan.workloads)
        self.ready = target.deploy(self.workloads[0], parent=self, depends_on=[])
        self.host = pulumi.Output.from_input(name)
        self.port = pulumi.Output.from_input(AMQP_PORT)
        self.url = amqp_url(name, spec, self.password)
        self.register_outputs({"host": self.host, "port": self.port, "url": self.url})
