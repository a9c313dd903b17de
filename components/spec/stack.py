"""The whole stack's model: the top-level ``berth:`` keys."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, BeforeValidator

from .backup import BackupSpec
from .broker import BrokerSpec
from .cache import CacheSpec
from .database import DatabaseSpec
from .fields import DOCKER_ONLY, KUBERNETES_ONLY, Environment, Target, _field, _Model
from .graph import GraphDatabaseSpec
from .logs import LoggingSpec
from .monitoring import MonitoringSpec
from .names import _host, _prefix
from .platform import DockerSpec, KubernetesSpec
from .proxy import ProxySpec
from .service import ServiceSpec


class StackSpec(_Model):
    """A whole stack. Its keys are the top-level ``berth:`` config keys."""

    target: Target = _field(..., "docker or kubernetes.")
    environment: Environment = _field(Environment.DEV, "dev, staging or prod; prod protects and retains data "
                                      "volumes/PVCs/StatefulSets/namespace.")
    name: Optional[Annotated[str, AfterValidator(_prefix)]] = _field(None, "Resource name prefix (an RFC 1123 label); defaults to <project>-<stack>. "
                                 "Two stacks on one Docker host must differ.")
    domain: Annotated[str, BeforeValidator(_host)] = _field(
        "localhost", "Public host name of the proxy / Ingress (no scheme, no path).")
    docker: DockerSpec = _field(DockerSpec(), "Docker target settings.", targets=DOCKER_ONLY)
    kubernetes: KubernetesSpec = _field(KubernetesSpec(), "Kubernetes target settings.", targets=KUBERNETES_ONLY)
    databases: dict[str, DatabaseSpec] = _field(default_factory=dict, description="Databases by name.")
    caches: dict[str, CacheSpec] = _field(default_factory=dict, description="Redis caches by name.")
    brokers: dict[str, BrokerSpec] = _field(default_factory=dict, description="Message brokers (RabbitMQ) by name.")
    graphs: dict[str, GraphDatabaseSpec] = _field(default_factory=dict, description="Graph databases (Neo4j) by name.")
    services: dict[str, ServiceSpec] = _field(default_factory=dict, description="Application containers by name.")
    proxy: Optional[ProxySpec] = _field(None, "The HTTPS edge; none: nothing is published.")
    backups: dict[str, BackupSpec] = _field(default_factory=dict, description="Backups by database name.")
    monitoring: Optional[MonitoringSpec] = _field(None, "Prometheus and Grafana; none: no monitoring.")
    logging: Optional[LoggingSpec] = _field(None, "Central logs (Elasticsearch, Logstash, Kibana).")
    secrets: dict[str, str] = _field(default_factory=dict, description="Secret values by name, each set with "
                                     "`pulumi config set --secret --path 'berth:secrets.NAME'`.")

    @property
    def protect(self) -> bool:
        return self.environment == Environment.PROD
