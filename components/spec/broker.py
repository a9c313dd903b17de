"""The message broker model (``berth:brokers.NAME``): RabbitMQ."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from .fields import _field, _Model
from .names import Image, _matching
from .shared import Resources
from .units import Size


class BrokerSpec(_Model):
    """A RabbitMQ message broker: generated password, persistent volume, management UI (internal only).

    Services that list it in ``uses`` get ``AMQP_URL`` (secret). Defaults: RabbitMQ 3.13 with the
    management plugin, user and vhost named after the config key, 2Gi volume.
    """

    engine: Literal["rabbitmq"] = _field("rabbitmq", "Always rabbitmq.")
    version: str = _field("3.13", "RabbitMQ version; the image is rabbitmq:<version>-management.")
    image: Optional[Image] = _field(None, "Image override (keep rabbitmq-diagnostics for the health check).")
    user: Optional[Annotated[str, _matching(r"^[A-Za-z0-9_.-]{1,64}$", "must be letters, digits, '_', '.' and "
                                            "'-' (it is part of AMQP_URL)")]] = _field(
        None, "Default user; defaults to the config key with - as _.")
    vhost: Optional[Annotated[str, _matching(r"^[A-Za-z0-9_./-]{1,64}$", "must be letters, digits, '_', '.', "
                                             "'/' and '-'")]] = _field(
        None, "Default virtual host; defaults to the config key.")
    storage: Size = _field("2Gi", "Volume size for /var/lib/rabbitmq (queues, Erlang cookie).", unit="Mi/Gi")
    resources: Resources = _field(Resources(cpu="100m", memory="256Mi", cpu_limit="1", memory_limit="512Mi"),
                                  "CPU/memory of RabbitMQ.")
