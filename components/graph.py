"""GraphDatabase component: Neo4j (community edition) with a generated password and a persistent
volume, internal only.

``graph_workloads`` is pure (spec → workloads); ``GraphDatabase`` generates the password with
pulumi-random and hands the workload to the target. Services that ``use`` it get ``NEO4J_URI``,
``NEO4J_USER`` and ``NEO4J_PASSWORD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi

from .ir import DataVolume, File, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .spec import GraphDatabaseSpec

BOLT_PORT = 7687
HTTP_PORT = 7474
NEO4J_UID = 7474  # the official neo4j image's user
NEO4J_USER = "neo4j"  # community edition: the initial admin user is always neo4j
NEO4J_HOME = "/var/lib/neo4j"  # the official image's


START_SCRIPT = "/berth/neo4j-start.sh"
#: The official image's entrypoint (4.4 and 5), run by tini as the image's own ENTRYPOINT does.
IMAGE_ENTRYPOINT = "/startup/docker-entrypoint.sh"
#: Where the start script notes (a hash of) the password it last made Neo4j's, on the data volume.
PASSWORD_MARK = "/data/berth/password.sha256"
#: The ports of the start script's own Neo4j, on loopback: health checks and probes never see it.
SYNC_HTTP_PORT = 7475
SYNC_BOLT_PORT = 7688


def default_image(spec: GraphDatabaseSpec) -> str:
    return spec.image or f"neo4j:{spec.version}"


# Neo4j's start: its password follows the stack on every start. The image's NEO4J_AUTH sets the
# password only before the database's first start, so a volume kept from an earlier stack (prod data
# is retained after `pulumi destroy`; the redeploy generates a new password) would keep the old one
# and every client would be refused. When the password differs from the one last set here (a hash on
# the data volume says), Neo4j first starts on the container's loopback only (other ports, which no
# health check or probe asks) and without authentication (nothing outside the container can reach
# it), the password is set there with ALTER USER, and it stops; then the image's entrypoint starts it
# as usual. The password reaches wget in a file on the container's own tmpfs, never its arguments.
START = r"""#!/bin/bash
# Created by Berth: make the stack's password neo4j's, then start Neo4j (the image's entrypoint).
set -euo pipefail
password=${NEO4J_AUTH#neo4j/}
want=$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)
if [ -d /data/databases/system ] && [ "$(cat @MARK@ 2>/dev/null)" != "$want" ]; then
  echo "berth: setting neo4j's password over the data kept from before" >&2
  NEO4J_dbms_security_auth__enabled=false NEO4J_dbms_default__listen__address=127.0.0.1 \
    NEO4J_dbms_connector_http_listen__address=127.0.0.1:@SYNC_PORT@ \
    NEO4J_dbms_connector_bolt_listen__address=127.0.0.1:@SYNC_BOLT_PORT@ @ENTRYPOINT@ neo4j &
  pid=$!
  body=$(mktemp)
  trap 'rm -f "$body"' EXIT
  statement='ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED'
  printf '{"statements":[{"statement":"%s","parameters":{"password":"%s"}}]}' "$statement" "$password" >"$body"
  out=
  for _ in $(seq 1 180); do
    if out=$(wget -q -O - --header='Content-Type: application/json' --post-file="$body" \
               http://127.0.0.1:@SYNC_PORT@/db/system/tx/commit 2>/dev/null); then break; fi
    kill -0 "$pid" 2>/dev/null || { echo "berth: neo4j stopped before its password was set" >&2; exit 1; }
    sleep 1
  done
  rm -f "$body"
  kill -TERM "$pid"
  wait "$pid" || true
  case "$out" in
    *'"errors":[]'*) ;;
    *) echo "berth: setting neo4j's password failed: ${out:-no answer in 180 s}" >&2; exit 1 ;;
  esac
fi
mkdir -p "$(dirname @MARK@)"
printf '%s\n' "$want" >@MARK@
exec @ENTRYPOINT@ "$@"
""".replace("@MARK@", PASSWORD_MARK).replace("@ENTRYPOINT@", IMAGE_ENTRYPOINT).replace(
    "@SYNC_PORT@", str(SYNC_HTTP_PORT)).replace("@SYNC_BOLT_PORT@", str(SYNC_BOLT_PORT))


def graph_workloads(name: str, spec: GraphDatabaseSpec, password: pulumi.Input[str],
                    allow_from: Sequence[str] = ()) -> list[Workload]:
    """The Neo4j workload (pure)."""
    return [
        Workload(
            name=name,
            role=Role.DATABASE,
            image=default_image(spec),
            kind=Kind.STATEFUL,
            env={
                # NEO4J_<setting with . as _ and _ as __>: the image turns these into neo4j.conf.
                "NEO4J_dbms_memory_heap_initial__size": spec.heap,
                "NEO4J_dbms_memory_heap_max__size": spec.heap,
                "NEO4J_dbms_memory_pagecache_size": spec.page_cache,
                "NEO4J_dbms_default__listen__address": "0.0.0.0",
                # Written at every start: the start script's own first start changes them.
                "NEO4J_dbms_security_auth__enabled": "true",
                "NEO4J_dbms_connector_http_listen__address": f":{HTTP_PORT}",
                "NEO4J_dbms_connector_bolt_listen__address": f":{BOLT_PORT}",
                "NEO4J_dbms_logs_debug_level": "INFO",
            },
            # A plain password (tests, renders) gives plain text; the stack's generated one a secret Output.
            secret_env={"NEO4J_AUTH": SecretValue(f"{name}-env", "NEO4J_AUTH", f"{NEO4J_USER}/{password}"
                                                  if isinstance(password, str)
                                                  else pulumi.Output.concat(NEO4J_USER, "/", password))},
            # tini, as the image's own ENTRYPOINT runs its entrypoint.
            entrypoint=("tini", "-g", "--", "bash", START_SCRIPT),
            command=("neo4j",),
            files=(File("neo4j-start", START_SCRIPT, START, mode=0o555),),
            ports=(Port("bolt", BOLT_PORT), Port("http", HTTP_PORT)),
            volumes=(DataVolume(f"{name}-data", "/data", spec.storage),),
            # /run: dbms.directories.run, where the image points Neo4j's pid file.
            tmpfs=("/tmp", "/logs", "/run"),
            # Neo4j unpacks JNA's native library into /tmp and loads it: without it, it does not start.
            tmpfs_exec=True,
            # The entrypoint writes neo4j.conf from the NEO4J_* variables at every start, into the
            # image's conf directory: a writable copy of it.
            seeded=(f"{NEO4J_HOME}/conf",),
            # The HTTP discovery endpoint answers without credentials once the database is up.
            health=Probe(path="/", port=HTTP_PORT, interval=15, timeout=10, retries=10, start_period=60),
            resources=spec.resources,
            user=NEO4J_UID,
            group=NEO4J_UID,
            allow_from=tuple(sorted(allow_from)),
            stateful_data=True,
            stop_grace_seconds=60,
        )
    ]


@dataclass(frozen=True)
class GraphPlan:
    """A graph database's share of the plan: its workload and the password it is waiting for."""

    workloads: tuple[Workload, ...]
    password: Later


def plan_graph(name: str, spec: GraphDatabaseSpec, password: Later, allow_from: Sequence[str] = ()) -> GraphPlan:
    """The workload, with the password to come (pure). The password is planned apart: services
    that use it pass it through in their URLs."""
    return GraphPlan(tuple(graph_workloads(name, spec, password.output, allow_from)), password)


class GraphDatabase(pulumi.ComponentResource):
    """A Neo4j graph database. Outputs: ``host``, ``uri`` (bolt), ``user``, ``password`` (secret)."""

    def __init__(self, name: str, spec: GraphDatabaseSpec, target, allow_from: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None, plan: Optional[GraphPlan] = None):
        super().__init__("berth:index:GraphDatabase", name, None, opts)
        import pulumi_random as random

        plan = plan or plan_graph(name, spec, Later(f"{name}-password"), allow_from)
        self.password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        ).result
        plan.password.resolve(self.password)
        self.workloads = list(plan.workloads)
        self.ready = target.deploy(self.workloads[0], parent=self, depends_on=[])
        self.host = pulumi.Output.from_input(name)
        self.uri = pulumi.Output.from_input(f"bolt://{name}:{BOLT_PORT}")
        self.user = pulumi.Output.from_input(NEO4J_USER)
        self.register_outputs({"host": self.host, "uri": self.uri, "user": self.user,
                               "password": pulumi.Output.secret(self.password)})
