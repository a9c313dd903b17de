"""The monitoring model (``berth:monitoring``): Prometheus, exporters, Pushgateway and Grafana."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import BeforeValidator, field_validator, model_validator

from .fields import _field, _Model
from .names import Cidr, HttpPath, Image
from .units import Size, _prometheus_duration


class MonitoringSpec(_Model):
    """Prometheus, exporters, Pushgateway (backup results) and Grafana."""

    enabled: bool = _field(True, "Run monitoring.")
    prometheus_image: Image = _field("prom/prometheus:v2.53.2", "Prometheus image.")
    grafana_image: Image = _field("grafana/grafana:11.2.2", "Grafana image.")
    postgres_exporter_image: Image = _field("quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
                                            "postgres-exporter image (with wget for the Docker health check, as "
                                            "this busybox-based one).")
    redis_exporter_image: Image = _field("oliver006/redis_exporter:v1.62.0-alpine", "redis_exporter image (with wget "
                                         "for the Docker health check: the -alpine variant).")
    mongodb_exporter_image: Image = _field("percona/mongodb_exporter:0.40.0", "mongodb_exporter image (with wget for "
                                           "the Docker health check, as this busybox-based one).")
    pushgateway_image: Image = _field("prom/pushgateway:v1.9.0", "Pushgateway image.")
    grafana: bool = _field(True, "Run Grafana.")
    grafana_path: Optional[HttpPath] = _field("/grafana/", "Route Grafana through the proxy here (null: no route).")
    retention: Annotated[str, BeforeValidator(_prometheus_duration)] = _field(
        "15d", "How long Prometheus keeps samples.", unit="duration (15d, 2w, 1y; '15 days' → 15d)")
    storage: Size = _field("10Gi", "Prometheus volume size.", unit="Mi/Gi")
    grafana_allow_from: list[Cidr] = _field(
        default_factory=list, description="Client addresses that may reach Grafana through the proxy (nginx allow/deny; "
        "Kubernetes: its own Ingress with whitelist-source-range); empty: anyone (Grafana's login still applies).",
        unit="CIDRs (10.0.0.0/8, 203.0.113.7/32)")

    @field_validator("grafana_path")
    @classmethod
    def _trailing_slash(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.endswith("/"):
            raise ValueError(f"must end with / (Grafana serves from a sub path): {v + '/'!r}")
        return v

    @model_validator(mode="after")
    def _grafana(self) -> "MonitoringSpec":
        if not self.grafana and "grafana_path" in self.model_fields_set and self.grafana_path:
            raise ValueError("grafana_path is set but grafana is false; remove grafana_path or enable grafana")
        if self.grafana_allow_from and not (self.grafana and self.grafana_path):
            raise ValueError("grafana_allow_from is set but Grafana has no route through the proxy; set grafana_path "
                             "or remove grafana_allow_from")
        return self
