"""Every production database is dumped on a schedule (stack-level).

Judged from what is deployed, not from Berth's component names: the databases are the containers that
run a database server (``_databases.databases``), and a backup is a CronJob or a cron-loop container
that runs the engine's dump tool against one of the database's host names (``_databases.schedules``),
however its script reaches it (command line, env, Docker uploads, ConfigMap/Secret volumes, an init or
writer container). A streaming replica is covered by its primary's backup. A database of an engine the
rule has no dump tool for (one recognised only by its role label, e.g. Neo4j) is not judged.
"""

from ._common import ENVIRONMENT_SCHEMA, config_list, environment_is_prod
from ._databases import backs_up, databases, schedules
from ._policy import Severity, stack_rule
from ._runs import StackIndex
from ._stack import stack_urn


def check(resources, config):
    if not resources or not environment_is_prod(config, stack_urn(resources)):
        return
    exempt = {str(n).lower() for n in config_list(config, "exemptDatabases", [])}
    index = StackIndex(resources)
    dbs = databases(resources, config, index)
    jobs = schedules(resources, config, index)
    covered = {id(db) for db in dbs if any(backs_up(s, db) for s in jobs)}
    for db in dbs:
        if db.engine is None:
            continue  # labelled a database, but of an engine whose dump tool the rule does not know (e.g. Neo4j)
        if id(db) in covered or db.names & exempt or db.res.name.lower() in exempt:
            continue
        primaries = [p for p in dbs if p is not db and any(
            p.reached_by(h, db.run.platform, db.run.namespace) for h in db.replica_of)]
        if primaries:
            continue  # a replica: judged through its primary
        tools = "/".join(db.engine.dump_tools)
        seen = "; ".join(
            f"{s.describe()} runs {'/'.join(sorted(s.tools)) or 'no dump tool'}"
            f"{' against ' + ', '.join(sorted(s.hosts)) if s.hosts else ''}" for s in jobs) or "none"
        yield (f"{db.describe()} has no backup schedule: no CronJob or cron container runs {tools} against "
               f"{', '.join(sorted(db.names)) or 'it'} (schedules seen: {seen})", db.res.urn)


policy = stack_rule(
    name="stack-database-has-backup",
    description="In production, every database (a container running a database server) must be dumped by a "
    "backup schedule (a CronJob or a cron container running its dump tool against the database's host).",
    remediation="add `berth:backups: {<database>: {tiers: [...]}}` to the stack config (Berth then renders a CronJob "
    "or a supercronic container that runs pg_dump/mongodump against the database's Service or container name); "
    "a database that is backed up elsewhere can be listed in `exemptDatabases`",
    check=check, severity=Severity.HIGH,
    config={**ENVIRONMENT_SCHEMA,
            "exemptDatabases": {"type": "array", "items": {"type": "string"}, "default": [],
                                "description": "Databases backed up outside the stack: a workload, container, "
                                "Service or host name of the database."},
            "databaseImages": {"type": "array", "items": {"type": "string"}, "default": [],
                               "description": "More database server images, as 'image' or 'image=engine' "
                               "(engine: postgres, mongo, mysql)."},
            "backupImages": {"type": "array", "items": {"type": "string"}, "default": [],
                             "description": "Images whose default command dumps the database named by its "
                             "*_HOST env (e.g. a ready-made backup image)."}},
)
