"""The database model (``berth:databases.NAME``): PostgreSQL or MongoDB."""

from __future__ import annotations

import re
from enum import Enum
from typing import Optional

from pydantic import model_validator

from .fields import TextMap, _field, _Model
from .names import _MONGO_NAME_RE, _PG_IDENT_RE, Image
from .shared import Resources
from .units import Size


class DatabaseEngine(str, Enum):
    POSTGRES = "postgres"
    MONGODB = "mongodb"


DEFAULT_DB_VERSION = {DatabaseEngine.POSTGRES: "15", DatabaseEngine.MONGODB: "7.0"}

#: Roles Berth makes in every database of an engine besides the one the services log in as (the
#: ``user``): the superuser and the roles of its replica, exporter, backups and restore. The
#: services' role may not take one of these names.
RESERVED_USERS = {
    DatabaseEngine.POSTGRES: ("postgres", "berth_monitor", "berth_backup", "replicator"),
    DatabaseEngine.MONGODB: ("root", "berth_monitor", "berth_backup", "berth_restore"),
}


def default_user(name: str) -> str:
    """The services' role when ``user`` is not set: the config key with - as _."""
    return name.replace("-", "_")


def reserved_user_problem(key: str, name: str, spec: "DatabaseSpec") -> Optional[str]:
    """The error for a ``user`` that names one of Berth's own roles (``key``: the database's config
    key), or None."""
    user = spec.user or default_user(name)
    if user not in RESERVED_USERS[spec.engine] and not (spec.engine == DatabaseEngine.POSTGRES and user.startswith("pg_")):
        return None
    given = "is" if spec.user else f"defaults to the database's name, {user!r}, which is"
    what = ("reserved by PostgreSQL (pg_...)" if user.startswith("pg_") else
            f"the name of a role Berth makes itself ({', '.join(RESERVED_USERS[spec.engine])}): the superuser "
            "or the role of the replica, exporter, backups or restore")
    return (f"{key}.user {given} {what}; set `user:` to the name your services log in as "
            f"(e.g. {(user.removeprefix('pg_') + '_app')!r})")
DB_PORT = {DatabaseEngine.POSTGRES: 5432, DatabaseEngine.MONGODB: 27017}


class DatabaseSpec(_Model):
    """A database. Defaults: PostgreSQL 15, 10Gi volume, database and user named after the key."""

    engine: DatabaseEngine = _field(DatabaseEngine.POSTGRES, "postgres or mongodb.")
    version: Optional[str] = _field(None, "Engine version (image tag); defaults to 15 (postgres) / 7.0 (mongodb).")
    image: Optional[Image] = _field(None, "Image override; defaults to the official image for the version.")
    database: Optional[str] = _field(None, "Database name; defaults to the config key with - as _.")
    user: Optional[str] = _field(None, "Owner role; defaults to the config key with - as _.")
    storage: Size = _field("10Gi", "Volume size (Kubernetes PVC request).", unit="Mi/Gi")
    replica: bool = _field(False, "Postgres only: add a streaming-replication read replica.")
    resources: Resources = _field(Resources(cpu="250m", memory="256Mi", cpu_limit="1", memory_limit="1Gi"),
                                  "CPU/memory of the database (and its replica).")
    settings: TextMap = _field(default_factory=dict, description="Postgres only: `-c key=value` server settings.")

    @model_validator(mode="after")
    def _engine_specific(self) -> "DatabaseSpec":
        if self.replica and self.engine != DatabaseEngine.POSTGRES:
            raise ValueError("`replica: true` is supported for engine postgres only; remove it")
        if self.settings and self.engine != DatabaseEngine.POSTGRES:
            raise ValueError("`settings` are postgres server settings; remove them for engine mongodb")
        ident = _PG_IDENT_RE if self.engine == DatabaseEngine.POSTGRES else _MONGO_NAME_RE
        for field in ("database", "user"):
            value = getattr(self, field)
            if value is not None and not ident.match(value):
                rule = ("lowercase letters, digits and _, starting with a letter or _, at most 63 characters "
                        "(Postgres folds unquoted names to lowercase)" if self.engine == DatabaseEngine.POSTGRES
                        else "letters, digits, _ and -, at most 63 characters")
                raise ValueError(f"{field} {value!r} must be {rule}; e.g. {re.sub(r'[^a-z0-9_]', '_', value.lower())!r}")
        for key in self.settings:
            if not re.match(r"^[a-z_][a-z0-9_.]*$", key):
                raise ValueError(f"settings key {key!r} is not a Postgres setting name (e.g. shared_buffers)")
        return self
