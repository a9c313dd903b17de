"""Database component: PostgreSQL (optionally with a streaming-replication read replica) or MongoDB.

``database_workloads`` is pure (spec → workloads) and ``plan_database`` plans them with the passwords
to come; ``Database`` generates the passwords with pulumi-random and hands the workloads to the target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi

from .ir import DataVolume, File, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .spec import DB_PORT, DEFAULT_DB_VERSION, DatabaseEngine, DatabaseSpec
from .spec.database import RESERVED_USERS, default_user

POSTGRES_UID = 999  # the official postgres and mongo images' user
PGDATA_DIR = "/var/lib/postgresql/data"
PGDATA = f"{PGDATA_DIR}/pgdata"  # a subdirectory: a fresh volume's lost+found must not block initdb

#: The roles of a PostgreSQL database (besides the one its services log in as, the spec's ``user``).
ADMIN_USER = "postgres"  # the superuser: logs in only over the container's own socket
MONITOR_USER = "berth_monitor"  # the exporter: pg_monitor
BACKUP_USER = "berth_backup"  # the dumps: reads everything, changes nothing
REPLICATION_USER = "replicator"  # the read replica: streaming replication only

# Prints the SQL that gives the roles what the stack says, and applies it: `start` before the server
# accepts connections (single-user mode: no network, no other session), `init` on the first start
# (the image runs it from /docker-entrypoint-initdb.d while its temporary server listens on its socket
# only). Every password comes from the environment: none is on a command line, and a failing
# statement is not logged (log_min_error_statement=panic), so no password reaches a log either.
POSTGRES_ROLES = r"""#!/bin/bash
# Created by Berth: the roles of this database, as the stack says, on every start.
#   the services' role (BERTH_OWNER): logs in, owns its database and schema; not a superuser, cannot
#     create roles or databases, cannot replicate or bypass row security
#   the superuser (POSTGRES_USER): only over the container's own socket (refused over the network)
#   berth_monitor (the exporter): pg_monitor;  berth_backup (the dumps): reads all data
#   replicator (the read replica): replication only
# A role the stack no longer needs keeps what it owns but cannot log in.
set -euo pipefail
lit() { local q="'"; printf "'%s'" "${1//$q/$q$q}"; }
ident() { local q='"'; printf '"%s"' "${1//$q/$q$q}"; }
say() { printf '%s\n\n' "$*"; }  # a statement, then the empty line that ends it for postgres --single -j
ensure() { say "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $(lit "$1")) THEN CREATE ROLE $(ident "$1"); END IF; END\$\$;"; }
login() { # ROLE PASSWORD [ATTRIBUTES]: logs in with PASSWORD, may do nothing more than ATTRIBUTES say
  ensure "$1"
  say "ALTER ROLE $(ident "$1") WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT ${3:-NOREPLICATION NOBYPASSRLS} PASSWORD $(lit "$2");"
}
retire() { say "DO \$\$BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = $(lit "$1")) THEN ALTER ROLE $(ident "$1") NOLOGIN; END IF; END\$\$;"; }
system="n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"
not_extension() { printf "NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = '%s'::regclass AND d.objid = %s AND d.deptype IN (%s))" "$@"; }

sql() {
  local db owner
  db="$(ident "$POSTGRES_DB")" owner="$(ident "$BERTH_OWNER")"
  case "$1" in
  cluster) # in the postgres database
    say "ALTER ROLE $(ident "$POSTGRES_USER") WITH PASSWORD $(lit "$POSTGRES_PASSWORD");"
    login "$BERTH_OWNER" "$BERTH_OWNER_PASSWORD"
    say "ALTER DATABASE $db OWNER TO $owner;"
    say "REVOKE ALL ON DATABASE $db FROM PUBLIC;"
    local other
    for other in postgres template1; do
      [ "$other" = "$POSTGRES_DB" ] || say "REVOKE CONNECT, TEMPORARY ON DATABASE $other FROM PUBLIC;"
    done
    if [ -n "${BERTH_MONITOR_PASSWORD:-}" ]; then
      login @MONITOR_USER@ "$BERTH_MONITOR_PASSWORD"
      say "GRANT pg_monitor TO @MONITOR_USER@;"
      say "GRANT CONNECT ON DATABASE $db TO @MONITOR_USER@;"
    else
      retire @MONITOR_USER@
    fi
    if [ -n "${BERTH_BACKUP_PASSWORD:-}" ]; then
      # BYPASSRLS: a dump refuses a table whose row security would hide rows from it.
      login @BACKUP_USER@ "$BERTH_BACKUP_PASSWORD" "NOREPLICATION BYPASSRLS"
      say "GRANT CONNECT ON DATABASE $db TO @BACKUP_USER@;"
      say "DO \$\$BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'pg_read_all_data') THEN GRANT pg_read_all_data TO @BACKUP_USER@; END IF; END\$\$;"
    else
      retire @BACKUP_USER@
    fi
    if [ -n "${REPLICATION_PASSWORD:-}" ]; then
      login @REPLICATION_USER@ "$REPLICATION_PASSWORD" "REPLICATION NOBYPASSRLS"
    fi
    ;;
  database) # in the stack's database
    say "ALTER SCHEMA public OWNER TO $owner;"
    say "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
    if [ -n "${BERTH_BACKUP_PASSWORD:-}" ]; then
      # Before PostgreSQL 14 there is no pg_read_all_data: the owner's tables, now and to come.
      say "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pg_read_all_data') THEN GRANT USAGE ON SCHEMA public TO @BACKUP_USER@; GRANT SELECT ON ALL TABLES IN SCHEMA public TO @BACKUP_USER@; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO @BACKUP_USER@; ALTER DEFAULT PRIVILEGES FOR ROLE $owner IN SCHEMA public GRANT SELECT ON TABLES TO @BACKUP_USER@; ALTER DEFAULT PRIVILEGES FOR ROLE $owner IN SCHEMA public GRANT SELECT ON SEQUENCES TO @BACKUP_USER@; END IF; END\$\$;"
    fi
    ;;
  adopt) # in the stack's database: what the superuser owns in its schemas goes to the services' role
    say "DO \$\$DECLARE r record; BEGIN
FOR r IN SELECT n.nspname AS obj FROM pg_namespace n WHERE n.nspowner = 10 AND $system AND $(not_extension pg_namespace n.oid "'e'") LOOP EXECUTE format('ALTER SCHEMA %I OWNER TO %s', r.obj, $(lit "$owner")); END LOOP;
FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relowner = 10 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') AND $system AND $(not_extension pg_class c.oid "'e', 'a', 'i'") LOOP EXECUTE format('ALTER %s %s OWNER TO %s', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END, r.obj, $(lit "$owner")); END LOOP;
FOR r IN SELECT p.oid::regprocedure AS obj FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proowner = 10 AND $system AND $(not_extension pg_proc p.oid "'e'") LOOP EXECUTE format('ALTER ROUTINE %s OWNER TO %s', r.obj, $(lit "$owner")); END LOOP;
FOR r IN SELECT t.oid::regtype AS obj, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typowner = 10 AND t.typtype IN ('e', 'd', 'r') AND $system AND $(not_extension pg_type t.oid "'e'") LOOP EXECUTE format('ALTER %s %s OWNER TO %s', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.obj, $(lit "$owner")); END LOOP;
FOR r IN SELECT l.oid AS obj FROM pg_largeobject_metadata l WHERE l.lomowner = 10 LOOP EXECUTE format('ALTER LARGE OBJECT %s OWNER TO %s', r.obj, $(lit "$owner")); END LOOP;
END\$\$;"
    ;;
  esac
}

single() { # DATABASE: run the SQL on stdin in single-user mode; fail on the first error
  local out
  if ! out="$(postgres --single -j -c log_min_error_statement=panic -D "$PGDATA" "$1" 2>&1 >/dev/null)" ||
     grep -q 'ERROR:' <<<"$out"; then
    grep -E 'ERROR:|FATAL:' <<<"$out" >&2 || echo "$out" >&2
    echo "berth: setting the roles of $PGDATA failed" >&2
    return 1
  fi
}
value() { # SQL: the one value the query returns (single-user mode, in the postgres database)
  local out err=/tmp/berth-roles.err
  if ! out="$(printf '%s\n\n' "$1" | postgres --single -j -c log_min_error_statement=panic -D "$PGDATA" postgres 2>"$err")"; then
    grep -E 'ERROR:|FATAL:|HINT:' "$err" >&2 || cat "$err" >&2
    rm -f "$err"
    echo "berth: reading the roles of $PGDATA failed" >&2
    return 1
  fi
  rm -f "$err"
  sed -n 's/^[[:space:]]*1: [a-z_]* = "\(.*\)"[[:space:]].*/\1/p' <<<"$out" | head -n 1
}
stale_lock() { # the lock file of a server that did not shut down (killed, out of memory, power lost)
  # It names the PID that server had in its container: 1, which is this container's entrypoint now,
  # before the server starts. PostgreSQL would take it for a live server and never start; no server
  # runs here yet, and no other container has this volume (a database container is replaced only
  # after the old one is gone), so a lock whose PID is not a running postgres is stale.
  local lock="$PGDATA/postmaster.pid" pid
  [ -f "$lock" ] || return 0
  pid="$(head -n 1 "$lock")"
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]; then
    echo "berth: removing the lock file of a server that did not shut down (PID $pid)"
    rm -f "$lock"
  fi
}
role_exists() { [ "$(value "SELECT count(*) FROM pg_roles WHERE rolname = $(lit "$1");")" != 0 ]; }

hba() { # the superuser only over the socket; the replica's line when there is one
  local f="$PGDATA/pg_hba.conf"
  grep -q "^host all $POSTGRES_USER all reject" "$f" || sed -i "1i host all $POSTGRES_USER all reject" "$f"
  if [ -n "${REPLICATION_PASSWORD:-}" ]; then
    grep -q '^host replication @REPLICATION_USER@ ' "$f" || echo "host replication @REPLICATION_USER@ all scram-sha-256" >> "$f"
  fi
}

case "${1:?usage: postgres-roles.sh start|init|sql PHASE}" in
start) # an existing data directory, before the server starts
  stale_lock
  bootstrap="$(value 'SELECT rolname FROM pg_roles WHERE oid = 10;')"
  [ -n "$bootstrap" ] || { echo "berth: cannot read the roles of $PGDATA" >&2; exit 1; }
  adopt=
  if ! role_exists "$BERTH_OWNER" || [ "$bootstrap" = "$BERTH_OWNER" ]; then adopt=1; fi
  if [ "$bootstrap" != "$POSTGRES_USER" ]; then
    # A database from before Berth gave its services a role of their own: they logged in as the
    # superuser, which is renamed; the services' role is made, and given what they made.
    if role_exists "$POSTGRES_USER"; then
      echo "berth: the superuser of $PGDATA is $bootstrap, and another role is named $POSTGRES_USER;" \
           "rename or drop that role (docker exec / kubectl exec ... psql -U $bootstrap)" >&2
      exit 1
    fi
    single postgres <<SQL
CREATE ROLE berth_rename SUPERUSER;

SET SESSION AUTHORIZATION berth_rename;

ALTER ROLE $(ident "$bootstrap") RENAME TO $(ident "$POSTGRES_USER");

SQL
    single postgres <<<"DROP ROLE berth_rename;"
    echo "berth: the superuser $bootstrap is now $POSTGRES_USER"
  fi
  sql cluster | single postgres
  sql database | single "$POSTGRES_DB"
  if [ -n "$adopt" ]; then
    sql adopt | single "$POSTGRES_DB"
    echo "berth: $BERTH_OWNER now owns what the superuser owned in $POSTGRES_DB"
  fi
  hba
  echo "berth: roles set from the stack's secrets"
  ;;
init) # the first start: the image's temporary server listens on its socket only
  export PGOPTIONS='-c log_min_error_statement=panic'
  sql cluster | psql -v ON_ERROR_STOP=1 -X -q --no-password --username "$POSTGRES_USER" --dbname postgres
  sql database | psql -v ON_ERROR_STOP=1 -X -q --no-password --username "$POSTGRES_USER" --dbname "$POSTGRES_DB"
  hba
  echo "berth: roles created from the stack's secrets"
  ;;
sql) sql "${2:?}" ;;
esac
""".replace("@MONITOR_USER@", MONITOR_USER).replace("@BACKUP_USER@", BACKUP_USER).replace(
    "@REPLICATION_USER@", REPLICATION_USER)

#: Run by the image on the first start only (its /docker-entrypoint-initdb.d contract).
POSTGRES_INIT = """#!/bin/bash
# Created by Berth: the roles of a new database (postgres-roles.sh).
exec bash /berth/postgres-roles.sh init
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


# The primary's entrypoint: the roles follow the stack on every start, then the image's own
# entrypoint runs. A data volume that outlived its stack (prod volumes are retained on destroy)
# holds the passwords of the stack that created it; a redeploy generates new ones. Rather than lose
# the data or pin a password forever, the roles in the volume are set to the stack's before the
# server accepts connections (postgres-roles.sh start).
PRIMARY_ENTRYPOINT = r"""#!/bin/bash
# Created by Berth: give the roles what this stack says, then start PostgreSQL as usual.
set -euo pipefail
if [ -s "$PGDATA/PG_VERSION" ]; then bash /berth/postgres-roles.sh start; fi
exec docker-entrypoint.sh "$@"
"""


def default_image(spec: DatabaseSpec) -> str:
    version = spec.version or DEFAULT_DB_VERSION[spec.engine]
    return spec.image or (f"postgres:{version}" if spec.engine == DatabaseEngine.POSTGRES else f"mongo:{version}")


def db_name(name: str, spec: DatabaseSpec) -> str:
    return spec.database or name.replace("-", "_")


def db_user(name: str, spec: DatabaseSpec) -> str:
    """The role the services log in as: the owner of the database, not a superuser."""
    return spec.user or default_user(name)


def login_url(name: str, spec: DatabaseSpec, user: str, password: pulumi.Input[str], host: Optional[str] = None,
              database: Optional[str] = None) -> pulumi.Output[str]:
    """A secret connection URL for ``user`` (MongoDB users all live in ``admin``)."""
    host = host or name
    port = DB_PORT[spec.engine]
    scheme = "postgresql" if spec.engine == DatabaseEngine.POSTGRES else "mongodb"
    tail = "" if spec.engine == DatabaseEngine.POSTGRES else "?authSource=admin"
    return pulumi.Output.secret(pulumi.Output.concat(
        scheme, "://", user, ":", password, "@", host, ":", str(port), "/", database or db_name(name, spec), tail))


def connection_url(
    name: str, spec: DatabaseSpec, password: pulumi.Input[str], host: Optional[str] = None
) -> pulumi.Output[str]:
    """What the services get: the URL of the database's owner role (not a superuser)."""
    return login_url(name, spec, db_user(name, spec), password, host)


@dataclass(frozen=True)
class Credentials:
    """The passwords a database's roles log in with. ``owner`` is the role the services use (the
    spec's ``user``); the others exist only when something needs them: ``replication`` with a
    replica, ``monitor`` with monitoring (its exporter), ``backup`` with backups (the dumps) and, on
    MongoDB, ``restore`` with backups too (PostgreSQL restores as the owner: see BackupJob)."""

    owner: pulumi.Input[str]
    admin: pulumi.Input[str]
    replication: Optional[pulumi.Input[str]] = None
    monitor: Optional[pulumi.Input[str]] = None
    backup: Optional[pulumi.Input[str]] = None
    restore: Optional[pulumi.Input[str]] = None


def monitor_url(name: str, spec: DatabaseSpec, password: pulumi.Input[str]) -> pulumi.Output[str]:
    """The exporter's URL: its own role, which may read statistics and nothing of the data."""
    if spec.engine == DatabaseEngine.POSTGRES:
        return login_url(name, spec, MONITOR_USER, password)
    return login_url(name, spec, MONGO_MONITOR_USER, password, database="admin")


def backup_login(name: str, spec: DatabaseSpec, credentials: Credentials, restore: bool = False
                 ) -> tuple[str, pulumi.Input[str]]:
    """(user, password) of the backup jobs, or of the restore job. PostgreSQL restores as the owner:
    `pg_restore --clean` drops and recreates the database's objects, which only their owner (or a
    superuser) may, and what it recreates must stay the owner's, which the services migrate later.
    MongoDB has a role for just that (``restore``)."""
    if spec.engine == DatabaseEngine.POSTGRES:
        if restore:
            return db_user(name, spec), credentials.owner
        assert credentials.backup is not None
        return BACKUP_USER, credentials.backup
    password = credentials.restore if restore else credentials.backup
    assert password is not None
    return (MONGO_RESTORE_USER if restore else MONGO_BACKUP_USER), password


#: MongoDB's users (all in ``admin``), besides the services' (the spec's ``user``: readWrite on its
#: database only).
MONGO_ROOT_USER = "root"  # root: only Berth's start, over the container's loopback, uses it
MONGO_MONITOR_USER = "berth_monitor"  # the exporter: clusterMonitor, and read on local
MONGO_BACKUP_USER = "berth_backup"  # the dumps: backup
MONGO_RESTORE_USER = "berth_restore"  # the restore job: restore

assert RESERVED_USERS == {  # the spec refuses these names for the services' role
    DatabaseEngine.POSTGRES: (ADMIN_USER, MONITOR_USER, BACKUP_USER, REPLICATION_USER),
    DatabaseEngine.MONGODB: (MONGO_ROOT_USER, MONGO_MONITOR_USER, MONGO_BACKUP_USER, MONGO_RESTORE_USER),
}


def mongo_users(name: str, spec: DatabaseSpec, credentials: Credentials) -> list[dict]:
    """The users MongoDB gets, with the variable each password comes from (never the password)."""
    database = db_name(name, spec)
    users = [
        {"user": MONGO_ROOT_USER, "passwordFrom": "BERTH_ROOT_PASSWORD", "roles": [{"role": "root", "db": "admin"}]},
        {"user": db_user(name, spec), "passwordFrom": "BERTH_OWNER_PASSWORD",
         "roles": [{"role": "readWrite", "db": database}]},
    ]
    if credentials.monitor is not None:
        users.append({"user": MONGO_MONITOR_USER, "passwordFrom": "BERTH_MONITOR_PASSWORD",
                      "roles": [{"role": "clusterMonitor", "db": "admin"}, {"role": "read", "db": "local"}]})
    if credentials.backup is not None:
        users.append({"user": MONGO_BACKUP_USER, "passwordFrom": "BERTH_BACKUP_PASSWORD",
                      "roles": [{"role": "backup", "db": "admin"}]})
    if credentials.restore is not None:
        users.append({"user": MONGO_RESTORE_USER, "passwordFrom": "BERTH_RESTORE_PASSWORD",
                      "roles": [{"role": "restore", "db": "admin"}]})
    return users


def render_mongo_users(users: Sequence[dict]) -> str:
    """The script that gives MongoDB's users what the stack says (pure; run by mongosh at every
    start). Users the stack no longer needs are dropped (they own nothing)."""
    listed = {u["user"] for u in users}
    retired = sorted(set(RESERVED_USERS[DatabaseEngine.MONGODB]) - listed)
    return MONGO_USERS_JS.replace("@USERS@", json.dumps(list(users), sort_keys=True)).replace(
        "@RETIRED@", json.dumps(retired))


MONGO_USERS_JS = """// Created by Berth: the users of this database, as the stack says, set at every start.
// Each password comes from the environment variable named beside its user: none is in this file.
const users = @USERS@;
const retired = @RETIRED@;
const admin = db.getSiblingDB("admin");
for (const u of users) {
  const pwd = process.env[u.passwordFrom];
  if (!pwd) throw new Error("berth: " + u.passwordFrom + " is not set");
  if (admin.getUser(u.user) === null) {
    admin.createUser({user: u.user, pwd: pwd, roles: u.roles});
  } else {
    admin.updateUser(u.user, {pwd: pwd, roles: u.roles});
  }
}
for (const name of retired) {
  if (admin.getUser(name) !== null) admin.dropUser(name);
}
print("berth: users set from the stack's secrets: " + users.map((u) => u.user).join(", "));
"""

# MongoDB's entrypoint: the users follow the stack on every start. A mongod of Berth's own sets them
# first, on the container's loopback only and without authentication (nothing outside the container
# can reach it), as the image's own first-start initialisation does; then the image's entrypoint
# starts mongod with authentication. The image gets no MONGO_INITDB_ROOT_* variables: Berth makes
# every user, so a volume kept from an earlier stack takes this stack's passwords.
MONGO_ENTRYPOINT = r"""#!/bin/bash
# Created by Berth: set the users (mongo-users.js), then start MongoDB with authentication.
set -euo pipefail
log=/tmp/berth-mongod-users.log
mongod --bind_ip 127.0.0.1 --port @SYNC_PORT@ --dbpath /data/db >"$log" 2>&1 &
pid=$!
ready=
for _ in $(seq 1 120); do
  if mongosh --quiet --norc --port @SYNC_PORT@ --eval "db.adminCommand('ping').ok" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
if [ -z "$ready" ]; then cat "$log" >&2; echo "berth: mongod did not start to set the users" >&2; exit 1; fi
mongosh --quiet --norc "mongodb://127.0.0.1:@SYNC_PORT@/admin" --file /berth/mongo-users.js
kill -TERM "$pid"
wait "$pid" || true
exec docker-entrypoint.sh "$@"
""".replace("@SYNC_PORT@", "27018")


def database_workloads(
    name: str,
    spec: DatabaseSpec,
    credentials: Credentials,
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
    user, database = db_user(name, spec), db_name(name, spec)

    def secrets(pairs: dict[str, Optional[pulumi.Input[str]]], secret: str = f"{name}-env") -> dict[str, SecretValue]:
        return {k: SecretValue(secret, k, v) for k, v in pairs.items() if v is not None}

    if spec.engine == DatabaseEngine.MONGODB:
        return [
            Workload(
                name=name,
                entrypoint=("bash", "/berth/mongo-entrypoint.sh"),
                # --auth explicitly: the image adds it only when it makes the root user itself.
                command=("mongod", "--auth", "--bind_ip_all"),
                env={"MONGO_INITDB_DATABASE": database},
                secret_env=secrets({
                    "BERTH_ROOT_PASSWORD": credentials.admin, "BERTH_OWNER_PASSWORD": credentials.owner,
                    "BERTH_MONITOR_PASSWORD": credentials.monitor, "BERTH_BACKUP_PASSWORD": credentials.backup,
                    "BERTH_RESTORE_PASSWORD": credentials.restore,
                }),
                volumes=(DataVolume(f"{name}-data", "/data/db", spec.storage),),
                files=(
                    File("mongo-entrypoint", "/berth/mongo-entrypoint.sh", MONGO_ENTRYPOINT, mode=0o555),
                    File("mongo-users", "/berth/mongo-users.js", render_mongo_users(mongo_users(name, spec, credentials))),
                ),
                tmpfs=("/tmp",),
                health=Probe(
                    command=("CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"),
                    interval=10, timeout=5, retries=10, start_period=30,
                ),
                **common,
            )
        ]
    env = {"POSTGRES_USER": ADMIN_USER, "POSTGRES_DB": database, "PGDATA": PGDATA, "BERTH_OWNER": user}
    secret_env = secrets({
        "POSTGRES_PASSWORD": credentials.admin, "BERTH_OWNER_PASSWORD": credentials.owner,
        "BERTH_MONITOR_PASSWORD": credentials.monitor, "BERTH_BACKUP_PASSWORD": credentials.backup,
        "REPLICATION_PASSWORD": credentials.replication if spec.replica else None,
    })
    files: tuple[File, ...] = (
        File("primary-entrypoint", "/berth/primary-entrypoint.sh", PRIMARY_ENTRYPOINT, mode=0o555),
        File("postgres-roles", "/berth/postgres-roles.sh", POSTGRES_ROLES, mode=0o555),
        File("roles-init", "/docker-entrypoint-initdb.d/20-berth-roles.sh", POSTGRES_INIT, mode=0o555),
    )
    command = ("postgres", *(part for k, v in sorted(spec.settings.items()) for part in ("-c", f"{k}={v}")))
    if spec.replica:
        assert credentials.replication is not None, "a replica needs its replication password"
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
                secret_env=secrets({"REPLICATION_PASSWORD": credentials.replication}, f"{name}-replica-env"),
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
class DatabasePasswords:
    """The passwords a database will generate (see ``Credentials``): planned apart from its
    workloads, since backups, exporters and services pass them through, and they decide who the
    database admits. ``owner`` keeps the resource name the only password had before the database had
    roles (``<db>-password``): what the services get does not change."""

    owner: Later
    admin: Later
    replication: Optional[Later] = None
    monitor: Optional[Later] = None
    backup: Optional[Later] = None
    restore: Optional[Later] = None

    def laters(self) -> list[Later]:
        return [p for p in (self.owner, self.admin, self.replication, self.monitor, self.backup, self.restore)
                if p is not None]

    def credentials(self) -> Credentials:
        out = lambda p: p.output if p is not None else None  # noqa: E731
        return Credentials(self.owner.output, self.admin.output, out(self.replication), out(self.monitor),
                           out(self.backup), out(self.restore))


def database_passwords(name: str, spec: DatabaseSpec, monitored: bool = False, backed_up: bool = False
                       ) -> DatabasePasswords:
    """The passwords this database will generate: one per role it has (``monitored``: an exporter
    watches it; ``backed_up``: it has backups)."""
    mongo = spec.engine == DatabaseEngine.MONGODB
    return DatabasePasswords(
        owner=Later(f"{name}-password"),
        admin=Later(f"{name}-admin-password"),
        replication=Later(f"{name}-replication-password") if spec.replica else None,
        monitor=Later(f"{name}-monitor-password") if monitored else None,
        backup=Later(f"{name}-backup-password") if backed_up else None,
        restore=Later(f"{name}-restore-password") if backed_up and mongo else None,
    )


@dataclass(frozen=True)
class DatabasePlan:
    """A database's share of the plan: its workloads and the passwords they are waiting for."""

    workloads: tuple[Workload, ...]
    passwords: DatabasePasswords


def plan_database(name: str, spec: DatabaseSpec, passwords: DatabasePasswords,
                  allow_from: Sequence[str] = (), replica_allow_from: Optional[Sequence[str]] = None) -> DatabasePlan:
    """The database's workloads, with its passwords to come (pure)."""
    workloads = database_workloads(name, spec, passwords.credentials(), allow_from, replica_allow_from)
    return DatabasePlan(tuple(workloads), passwords)


class Database(pulumi.ComponentResource):
    """A PostgreSQL or MongoDB database with generated passwords, a role per kind of client and a
    protected volume.

    Outputs: ``host``, ``port``, ``database``, ``user`` (the role the services log in as; not a
    superuser), ``password`` (secret), ``connection_url`` (secret) and, with a replica,
    ``replica_host`` / ``replica_url`` (secret).
    """

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    connection_url: pulumi.Output[str]

    def __init__(self, name: str, spec: DatabaseSpec, target, allow_from: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None, replica_allow_from: Optional[Sequence[str]] = None,
                 plan: Optional[DatabasePlan] = None):
        """``plan``: its share of the stack's plan (``allow_from`` went into it); without one, the
        database plans itself (its owner, superuser and replication roles only)."""
        super().__init__("berth:index:Database", name, None, opts)
        import pulumi_random as random

        plan = plan or plan_database(name, spec, database_passwords(name, spec), allow_from, replica_allow_from)
        child = pulumi.ResourceOptions(parent=self)
        self.spec = spec
        for later in plan.passwords.laters():
            # One generated password per role, each named after what it is for (`<db>-password` is
            # the owner's, as it was when it was the only one).
            later.resolve(random.RandomPassword(later.name, length=32, special=False, opts=child).result)
        self.password = plan.passwords.owner.output
        self.passwords = plan.passwords
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
