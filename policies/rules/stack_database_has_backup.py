"""Every production Database has a BackupJob (stack-level)."""

from ._common import ENVIRONMENT_SCHEMA, config_list, environment_is_prod
from ._policy import Severity, stack_rule
from ._stack import stack_urn

DATABASE = "berth:index:Database"
BACKUP = "berth:index:BackupJob"


def _backs_up(backup_name: str, db: str) -> bool:
    return backup_name in (db, f"{db}-backup", f"{db}-backups", f"backup-{db}") or backup_name.startswith(f"{db}-backup")


def check(resources, config):
    if not resources or not environment_is_prod(config, stack_urn(resources)):
        return
    exempt = set(config_list(config, "exemptDatabases", []))
    backups = [r.name for r in resources if r.type == BACKUP]
    for db in (r for r in resources if r.type == DATABASE):
        if db.name in exempt:
            continue
        if not any(_backs_up(b, db.name) for b in backups):
            yield (f"Database '{db.name}' has no BackupJob (looked for a BackupJob named '{db.name}' or "
                   f"'{db.name}-backup'; found {sorted(backups) or 'none'})", db.urn)


policy = stack_rule(
    name="stack-database-has-backup",
    description="In production, every Database component must have a BackupJob.",
    remediation="add `berth:backups: {<database>: {tiers: [...]}}` to the stack config; a database that is backed up "
    "elsewhere can be listed in `exemptDatabases`",
    check=check, severity=Severity.HIGH,
    config={**ENVIRONMENT_SCHEMA,
            "exemptDatabases": {"type": "array", "items": {"type": "string"}, "default": [],
                                "description": "Database names backed up outside Berth."}},
)
