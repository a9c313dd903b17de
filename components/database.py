"""Database component: PostgreSQL (optionally with a streaming-replication read replica) or MongoDB.

``database_workloads`` is pure (spec → workloads) and ``plan_database`` plans them with the passwords
to come; ``Database`` generates the passwords with pulumi-random and hands the workloads to the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi

from .ir import DataVolume, File, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .spec import DB_PORT, DEFAULT_DB_VERSION, DatabaseEngine, DatabaseSpec

POSTGRES_UID = 999  # the official postgres and mongo images' user
PGDATA_DIR = "/var/lib/postgresql/data"
PGDATA = f"{PGDATA_DIR}/pgdata"  # a subdirectory: a fresh volume's lost+found must not block initdb
REPLICATION_USER = "replicator"

# Runs once on the primary's first start (official image's /docker-entrypoint-initdb.d contract).
PRIMARY_REPLICATION_INIT = """#!/bin/bash
# Created by Berth: a replication role for the read replica, allowed from the stack network only.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE {user} WITH REPLICATION LOGIN PASSWORD '${{REPLICATION_PASSWORD}}';
SQL
echo "host replication {user} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
"""

# The replica's entrypoint: clone the primary once, then run as a hot standby. The connection to the
# primary is given on every start, not kept from the clone (`pg_basebackup -R` would write it, with
# the password, into the data directory): a redeployed stack has new secrets, and the password
# belongs in a private file on the container's tmpfs, never in the data volume or on a command line.
REPLICA_ENTRYPOINT = r"""#!/bin/bash
# Created by Berth: start a PostgreSQL hot standby that streams from the primary.
set -euo pipefail
export PGPASSFILE=/tmp/berth-replication.pgpass
(umask 077; printf '*:*:*:%s:%s\n' @REPLICATION_USER@ "${REPLICATION_PASSWORD//:/\\:}" > "$PGPASSFILE")
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  until pg_isready -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -q; do
    echo "waiting for primary $PRIMARY_HOST:$PRIMARY_PORT"; sleep 2
  done
  pg_basebackup -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U @REPLICATION_USER@ -D "$PGDATA" -X stream
fi
touch "$PGDATA/standby.signal"
# A clone made by an earlier version kept the connection (and password) here: drop it.
if [ -f "$PGDATA/postgresql.auto.conf" ]; then sed -i '/^primary_conninfo/d' "$PGDATA/postgresql.auto.conf"; fi
exec postgres -c hot_standby=on \
  -c "primary_conninfo=host=$PRIMARY_HOST port=$PRIMARY_PORT user=@REPLICATION_USER@ passfile=$PGPASSFILE application_name=${HOSTNAME:-replica}"
""".replace("@REPLICATION_USER@", REPLICATION_USER)


# The primary's entrypoint: the roles' passwords follow the stack on every start, then the image's
# own entrypoint runs. A data volume that outlived its stack (prod volumes are retained on destroy)
# holds the passwords of the stack that created it; a redeploy generates new ones. Rather than lose
# the data or pin a password forever, the passwords in the volume are set to the stack's before the
# server accepts connections: in single-user mode (no network, no other session), reading them from
# the environment, so no password is ever on a command line.
PRIMARY_ENTRYPOINT = r"""#!/bin/bash
# Created by Berth: align the roles' passwords with this stack's, then start PostgreSQL as usual.
set -euo pipefail
sql_literal() { local q="'"; printf "'%s'" "${1//$q/$q$q}"; }
if [ -s "$PGDATA/PG_VERSION" ]; then
  {
    printf 'ALTER ROLE "%s" WITH PASSWORD %s;\n' "$POSTGRES_USER" "$(sql_literal "$POSTGRES_PASSWORD")"
    if [ -n "${REPLICATION_PASSWORD:-}" ]; then
      # A replica added to an existing database: its role and access were never initialised.
      # shellcheck disable=SC2016 # $$ is SQL's dollar quoting, not the shell's
      printf 'DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE @REPLICATION_USER@ WITH REPLICATION LOGIN; END IF; END$$;\n' "'@REPLICATION_USER@'"
      printf 'ALTER ROLE @REPLICATION_USER@ WITH PASSWORD %s;\n' "$(sql_literal "$REPLICATION_PASSWORD")"
      grep -q '^host replication @REPLICATION_USER@ ' "$PGDATA/pg_hba.conf" ||
        echo "host replication @REPLICATION_USER@ all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    fi
  } | postgres --single -c log_min_error_statement=panic -D "$PGDATA" postgres >/dev/null
  echo "berth: role passwords set from the stack secrets"
fi
exec docker-entrypoint.sh "$@"
""".replace("@REPLICATION_USER@", REPLICATION_USER)


def default_image(spec: DatabaseSpec) -> str:
    version = spec.version or DEFAULT_DB_VERSION[spec.engine]
    return spec.image or (f"postgres:{version}" if spec.engine == DatabaseEngine.POSTGRES else f"mongo:{version}")


def db_name(name: str, spec: DatabaseSpec) -> str:
    return spec.database or name.replace("-", "_")


def db_user(name: str, spec: DatabaseSpec) -> str:
    return spec.user or name.replace("-", "_")


def connection_url(
    name: str, spec: DatabaseSpec, password: pulumi.Input[str], host: Optional[str] = None
) -> pulumi.Output[str]:
    host = host or name
    port = DB_PORT[spec.engine]
    if spec.engine == DatabaseEngine.POSTGRES:
        return pulumi.Output.secret(
            pulumi.Output.concat(
                "postgresql://", db_user(name, spec), ":", password, "@", host, ":", str(port), "/", db_name(name, spec)
            )
        )
    return pulumi.Output.secret(
        pulumi.Output.concat(
            "mongodb://", db_user(name, spec), ":", password, "@", host, ":", str(port), "/", db_name(name, spec),
            "?authSource=admin",
        )
    )


def database_workloads(
    name: str,
    spec: DatabaseSpec,
    password: pulumi.Input[str],
    replication_password: Optional[pulumi.Input[str]] = None,
    allow_from: Sequence[str] = (),
    replica_allow_from: Optional[Sequence[str]] = None,
) -> list[Workload]:
    """The primary (and replica) workloads of one database (pure). The replica admits
    ``replica_allow_from`` (default: the primary's clients)."""
    port = DB_PORT[spec.engine]
    image = default_image(spec)
    common = dict(
        role=Role.DATABASE,
        image=image,
        kind=Kind.STATEFUL,
        ports=(Port("db", port),),
        resources=spec.resources,
        user=POSTGRES_UID,
        group=POSTGRES_UID,
        allow_from=tuple(sorted(allow_from)),
        stateful_data=True,
        stop_grace_seconds=60,
    )
    if spec.engine == DatabaseEngine.MONGODB:
        return [
            Workload(
                name=name,
                env={"MONGO_INITDB_ROOT_USERNAME": db_user(name, spec), "MONGO_INITDB_DATABASE": db_name(name, spec)},
                secret_env={"MONGO_INITDB_ROOT_PASSWORD": SecretValue(f"{name}-env", "MONGO_INITDB_ROOT_PASSWORD", password)},
                volumes=(DataVolume(f"{name}-data", "/data/db", spec.storage),),
                tmpfs=("/tmp",),
                health=Probe(
                    command=("CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"),
                    interval=10, timeout=5, retries=10, start_period=30,
                ),
                **common,
            )
        ]
    user, database = db_user(name, spec), db_name(name, spec)
    env = {"POSTGRES_USER": user, "POSTGRES_DB": database, "PGDATA": PGDATA}
    secret_env = {"POSTGRES_PASSWORD": SecretValue(f"{name}-env", "POSTGRES_PASSWORD", password)}
    files: tuple[File, ...] = (
        File("primary-entrypoint", "/berth/primary-entrypoint.sh", PRIMARY_ENTRYPOINT, mode=0o555),
    )
    command = ("postgres", *(part for k, v in sorted(spec.settings.items()) for part in ("-c", f"{k}={v}")))
    if spec.replica:
        assert replication_password is not None
        secret_env["REPLICATION_PASSWORD"] = SecretValue(f"{name}-env", "REPLICATION_PASSWORD", replication_password)
        files += (
            File("replication-init", "/docker-entrypoint-initdb.d/10-replication.sh",
                 PRIMARY_REPLICATION_INIT.format(user=REPLICATION_USER), mode=0o555),
        )
    health = Probe(
        command=("CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", user, "-d", database),
        interval=10, timeout=5, retries=10, start_period=30,
    )
    primary = Workload(
        name=name,
        entrypoint=("bash", "/berth/primary-entrypoint.sh"),
        command=command,
        env=env,
        secret_env=secret_env,
        volumes=(DataVolume(f"{name}-data", PGDATA_DIR, spec.storage),),
        files=files,
        tmpfs=("/tmp", "/var/run/postgresql"),
        health=health,
        **common,
    )
    out = [primary]
    if spec.replica:
        replica_common = {**common, "allow_from": tuple(sorted(
            allow_from if replica_allow_from is None else replica_allow_from))}
        out.append(
            Workload(
                name=f"{name}-replica",
                entrypoint=("bash", "/berth/replica-entrypoint.sh"),
                env={"PGDATA": PGDATA, "PRIMARY_HOST": name, "PRIMARY_PORT": str(port)},
                secret_env={
                    "REPLICATION_PASSWORD": SecretValue(f"{name}-replica-env", "REPLICATION_PASSWORD", replication_password)
                },
                volumes=(DataVolume(f"{name}-replica-data", PGDATA_DIR, spec.storage),),
                files=(File("replica-entrypoint", "/berth/replica-entrypoint.sh", REPLICA_ENTRYPOINT, mode=0o555),),
                tmpfs=("/tmp", "/var/run/postgresql"),
                health=health,
                depends_on=(name,),
                **replica_common,
            )
        )
    return out


@dataclass(frozen=True)
class DatabasePlan:
    """A database's share of the plan: its workloads and the passwords they are waiting for."""

    workloads: tuple[Workload, ...]
    password: Later
    replication_password: Optional[Later] = None


def database_passwords(name: str, spec: DatabaseSpec) -> tuple[Later, Optional[Later]]:
    """The password (and the replica's) this database will generate. Planned apart from its
    workloads: backups and exporters pass it through, and they decide who the database admits."""
    return Later(f"{name}-password"), Later(f"{name}-replication-password") if spec.replica else None


def plan_database(name: str, spec: DatabaseSpec, passwords: tuple[Later, Optional[Later]],
                  allow_from: Sequence[str] = (), replica_allow_from: Optional[Sequence[str]] = None) -> DatabasePlan:
    """The database's workloads, with its passwords to come (pure)."""
    password, replication = passwords
    workloads = database_workloads(name, spec, password.output, replication.output if replication else None,
                                   allow_from, replica_allow_from)
    return DatabasePlan(tuple(workloads), password, replication)


class Database(pulumi.ComponentResource):
    """A PostgreSQL or MongoDB database with a generated password and a protected volume.

    Outputs: ``host``, ``port``, ``database``, ``user``, ``password`` (secret), ``connection_url``
    (secret) and, with a replica, ``replica_host`` / ``replica_url`` (secret).
    """

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    connection_url: pulumi.Output[str]

    def __init__(self, name: str, spec: DatabaseSpec, target, allow_from: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None, replica_allow_from: Optional[Sequence[str]] = None,
                 plan: Optional[DatabasePlan] = None):
        """``plan``: its share of the stack's plan (``allow_from`` went into it); without one, the
        database plans itself."""
        super().__init__("berth:index:Database", name, None, opts)
        import pulumi_random as random

        plan = plan or plan_database(name, spec, database_passwords(name, spec), allow_from, replica_allow_from)
        child = pulumi.ResourceOptions(parent=self)
        self.spec = spec
        self.password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child).result
        plan.password.resolve(self.password)
        if plan.replication_password:
            plan.replication_password.resolve(random.RandomPassword(
                f"{name}-replication-password", length=32, special=False, opts=child).result)
        self.workloads = list(plan.workloads)
        self.ready: list[pulumi.Resource] = []
        deployed: dict[str, list[pulumi.Resource]] = {}
        for w in self.workloads:
            deps = [r for d in w.depends_on for r in deployed.get(d, [])]
            deployed[w.name] = target.deploy(w, parent=self, depends_on=deps)
        self.ready = deployed[name]
        self.host = pulumi.Output.from_input(name)
        self.port = pulumi.Output.from_input(DB_PORT[spec.engine])
        self.database = pulumi.Output.from_input(db_name(name, spec))
        self.user = pulumi.Output.from_input(db_user(name, spec))
        self.connection_url = connection_url(name, spec, self.password)
        outputs = {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "user": self.user,
            "connection_url": self.connection_url,
        }
        if spec.replica:
            self.replica_host = pulumi.Output.from_input(f"{name}-replica")
            self.replica_url = connection_url(name, spec, self.password, host=f"{name}-replica")
            outputs.update(replica_host=self.replica_host, replica_url=self.replica_url)
        self.register_outputs(outputs)
