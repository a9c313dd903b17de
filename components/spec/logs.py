"""The central logging model (``berth:logging``): Elasticsearch, Logstash and Kibana."""

from __future__ import annotations

import re
from typing import Optional

from pydantic import field_validator, model_validator

from .fields import _field, _Model
from .names import Cidr, Image
from .shared import Resources
from .units import JvmSize, Size, jvm_mib, memory_mib


class LoggingSpec(_Model):
    """Central logs (ELK): Elasticsearch (single node, security on, generated ``elastic`` password),
    Logstash receiving JSON lines on TCP 5000 and Beats on 5044, and Kibana. Internal only; Kibana is
    reachable through the Proxy when ``kibana_path`` is set. Every service gets ``LOGSTASH_HOST`` and
    ``LOGSTASH_PORT`` to ship its logs to (an app-level log transport: a host-level collector would
    need the host mounts the policy pack forbids)."""

    enabled: bool = _field(True, "Run the logging stack.")
    elasticsearch_image: Image = _field("docker.elastic.co/elasticsearch/elasticsearch:7.17.24",
                                        "Elasticsearch image (with curl: the users job runs it).")
    logstash_image: Image = _field("docker.elastic.co/logstash/logstash:7.17.24", "Logstash image.")
    kibana_image: Image = _field("docker.elastic.co/kibana/kibana:7.17.24", "Kibana image.")
    kibana: bool = _field(True, "Run Kibana.")
    kibana_path: Optional[str] = _field("/kibana", "Route Kibana through the proxy here (no trailing slash).")
    kibana_allow_from: list[Cidr] = _field(
        default_factory=list, description="Client addresses that may reach Kibana through the proxy (nginx allow/deny; "
        "Kubernetes: its own Ingress with whitelist-source-range); empty: anyone (Kibana's login still applies).",
        unit="CIDRs (10.0.0.0/8, 203.0.113.7/32)")
    heap: JvmSize = _field("512m", "Elasticsearch JVM heap (-Xms/-Xmx); at most half of memory_limit.",
                           unit="JVM size (512m, 1g; 1Gi → 1g)")
    storage: Size = _field("10Gi", "Elasticsearch volume size.", unit="Mi/Gi")
    resources: Resources = _field(Resources(cpu="250m", memory="1Gi", cpu_limit="1", memory_limit="2Gi"),
                                  "CPU/memory of Elasticsearch.")

    @field_validator("kibana_path")
    @classmethod
    def _path(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and (not v.startswith("/") or len(v) < 2 or v.endswith("/") or re.search(r"[\s?#]", v)):
            raise ValueError("must start with / and not end with / (e.g. /kibana)")
        return v

    @model_validator(mode="after")
    def _fits(self) -> "LoggingSpec":
        if not self.kibana and "kibana_path" in self.model_fields_set and self.kibana_path:
            raise ValueError("kibana_path is set but kibana is false; remove kibana_path or enable kibana")
        if self.kibana_allow_from and not (self.kibana and self.kibana_path):
            raise ValueError("kibana_allow_from is set but Kibana has no route through the proxy; set kibana_path or "
                             "remove kibana_allow_from")
        if 2 * jvm_mib(self.heap) > memory_mib(self.resources.memory_limit):
            raise ValueError(
                f"heap {self.heap} is more than half of resources.memory_limit {self.resources.memory_limit}; "
                "Elasticsearch needs the rest off-heap: lower heap or raise memory_limit"
            )
        return self
