"""The typed stack spec: every ``berth:*`` config key, validated before any resource exists.

All stack config is read in one place (``load_spec``, ``config.py``). A bad value raises
``ConfigError``, which names the config key (``berth:services.api.port``), shows the bad value and
says the fix. It subclasses ``pulumi.RunError`` so the CLI prints the message without a Python
traceback.

The package by concern, each module importing only those before it in this list:

``fields``
    the namespace, targets, ``ConfigError``, the documented ``_field`` and the strict model base
``units``, ``names``
    values in the forms people write, converted to what the running software reads (``15s`` → 15
    seconds, ``512MB`` → ``512Mi``, ``1Gi`` → JVM ``1g``) or refused with the form to use
``shared``, ``database``, ``cache``, ``broker``, ``graph``, ``service``, ``proxy``, ``backup``,
``monitoring``, ``logs``, ``platform``, ``stack``
    the models, one module per component as in ``components/``; ``StackSpec`` holds them all
``reference``
    walking the models: every field carries its description, unit and targets
    (``json_schema_extra``), and the README's configuration reference is generated from them
    (``berth/docs.py``)
``checks``
    cross-field checks, including refusing a key set for the other target
``parse``
    ``parse_spec``: a dict of keys to a checked ``StackSpec``, errors as named-key messages
``config``
    ``load_spec``: the stack's config and stack file read, then parsed

Everything public is importable from here, as it was from the single module this package replaced.
"""

from .backup import BackupSpec, BackupTier, S3Spec
from .broker import BrokerSpec
from .cache import CacheSpec
from .checks import STACK_OUTPUTS, check_targets, service_order
from .config import (check_files, check_prefix, load_spec, namespace_problems, read_raw_config, read_stack_file,
                     stack_prefix)
from .database import DB_PORT, DEFAULT_DB_VERSION, DatabaseEngine, DatabaseSpec
from .fields import BOTH, DOCKER_ONLY, KUBERNETES_ONLY, NAMESPACE, Args, ConfigError, Environment, Target, TextMap
from .graph import GraphDatabaseSpec
from .logs import LoggingSpec
from .monitoring import MonitoringSpec
from .names import (DEFAULT_EGRESS_EXCEPT, OUTPUT_NAME, AbsPath, Cidr, DnsLabel, DnsSubdomain, EnvName, HttpPath,
                    Image)
from .parse import parse_spec
from .platform import DockerCapacity, DockerSpec, KubernetesCapacity, KubernetesSpec
from .proxy import ProxySpec, RateLimit, Route, TlsMode, TlsSpec
from .reference import reference_rows
from .service import ServiceSpec
from .shared import Autoscale, GeneratedSecret, Health, Metrics, Resources, StackSecret
from .stack import StackSpec
from .units import Cpu, JvmSize, Memory, Percent, Seconds, Size, cpu_millis, jvm_mib, memory_mib, redis_bytes

__all__ = [
    "Args", "AbsPath", "Autoscale", "BOTH", "BackupSpec", "BackupTier", "BrokerSpec", "CacheSpec", "Cidr",
    "ConfigError", "Cpu", "DB_PORT", "DEFAULT_DB_VERSION", "DEFAULT_EGRESS_EXCEPT", "DOCKER_ONLY", "DatabaseEngine",
    "DatabaseSpec", "DnsLabel", "DnsSubdomain", "DockerCapacity", "DockerSpec", "EnvName", "Environment",
    "GeneratedSecret", "GraphDatabaseSpec", "Health", "HttpPath", "Image", "JvmSize", "KUBERNETES_ONLY",
    "KubernetesCapacity", "KubernetesSpec", "LoggingSpec", "Memory", "Metrics", "MonitoringSpec", "NAMESPACE",
    "OUTPUT_NAME", "Percent", "ProxySpec", "RateLimit", "Resources", "Route", "S3Spec", "STACK_OUTPUTS", "Seconds",
    "ServiceSpec", "Size", "StackSecret", "StackSpec", "Target", "TextMap", "TlsMode", "TlsSpec", "check_files",
    "check_prefix", "check_targets", "cpu_millis", "jvm_mib", "load_spec", "memory_mib", "namespace_problems",
    "parse_spec", "read_raw_config", "read_stack_file", "redis_bytes", "reference_rows", "service_order",
    "stack_prefix",
]
