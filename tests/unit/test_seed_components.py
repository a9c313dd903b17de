"""Component changes found by deploying the seed systems for real (tests/real/test_seed_*.py)."""

from __future__ import annotations

from berth.components.broker import broker_workloads
from berth.components.spec import BrokerSpec


def test_rabbitmq_is_healthy_only_once_its_listeners_accept_connections():
    # `rabbitmq-diagnostics ping` passes before the AMQP port is open (seen on the real image), so a
    # service created right after "healthy" failed to connect.
    (w,) = broker_workloads("mq", BrokerSpec(), "pw")
    assert w.health.command == ("CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity")
