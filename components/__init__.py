"""Berth components: typed stack spec → Database, Cache, AppService, Proxy, BackupJob, Monitoring
on a Docker host or a Kubernetes cluster."""

from .app_service import AppService
from .cache import Cache
from .database import Database
from .spec import ConfigError, StackSpec, Target, load_spec, parse_spec

__all__ = ["AppService", "Cache", "ConfigError", "Database", "StackSpec", "Target", "load_spec", "parse_spec"]
