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

from .ir import DataVolume, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .spec import GraphDatabaseSpec

BOLT_PORT = 7687
HTTP_PORT = 7474
NEO4J_UID = 7474  # the official neo4j image's user
NEO4J_USER = "neo4j"  # community edition: the initial admin user is always neo4j
NEO4J_HOME = "/var/lib/neo4j"  # the official image's


def default_image(spec: GraphDatabaseSpec) -> str:
    return spec.image or f"neo4j:{spec.version}"


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
                "NEO4J_dbms_logs_debug_level": "INFO",
            },
            secret_env={"NEO4J_AUTH": SecretValue(f"{name}-env", "NEO4J_AUTH",
                                                  pulumi.Output.concat(NEO4J_USER, "/", password))},
            ports=(Port("bolt", BOLT_PORT), Port("http", HTTP_PORT)),
            volumes=(DataVolume(f"{name}-data", "/data", spec.storage),),
            # /run: dbms.directories.run, where the image points Neo4j's pid file.
            tmpfs=("/tmp", "/logs", "/run"),
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
