"""BackupJob component: scheduled logical dumps of one database with retention tiers, an optional
pre-deploy dump, and a restore that is a job too.

Kubernetes: one CronJob per tier (concurrencyPolicy Forbid, history limits) writing to a retained
PVC. Docker: a supercronic scheduler container writing to a named volume. The scripts are the same
on both targets (``renderers/backup.py``).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi

from .database import POSTGRES_UID, db_name, db_user, default_image
from .ir import DataVolume, File, Kind, Role, SecretValue, Workload
from .renderers.backup import BACKUP_DIR, SCRIPT_DIR, render_backup_script, render_crontab, render_restore_script
from .spec import DB_PORT, BackupSpec, DatabaseEngine, DatabaseSpec, Resources

BACKUP_UID = 10001
BACKUP_RESOURCES = Resources(cpu="100m", memory="128Mi", cpu_limit="1", memory_limit="512Mi")


def backup_volume(db: str, spec: BackupSpec) -> DataVolume:
    return DataVolume(f"{db}-backups", BACKUP_DIR, spec.storage, shared=True)


def _base(db: str, dbspec: DatabaseSpec, spec: BackupSpec, password: pulumi.Input[str], image: str,
          pushgateway: Optional[str] = None) -> dict[str, Any]:
    return dict(
        role=Role.BACKUP,
        image=image,
        env={
            "BERTH_DB_ENGINE": dbspec.engine.value,
            "BERTH_DB_NAME": db_name(db, dbspec),
            "BERTH_DB_ID": db,
            "DB_HOST": db,
            "DB_PORT": str(DB_PORT[dbspec.engine]),
            "DB_USER": db_user(db, dbspec),
            "BACKUP_DIR": BACKUP_DIR,
            **({"PUSHGATEWAY_HOST": pushgateway, "PUSHGATEWAY_PORT": "9091"} if pushgateway else {}),
            **({"S3_ENDPOINT": spec.s3.endpoint, "S3_BUCKET": spec.s3.bucket, "S3_PREFIX": spec.s3.prefix} if spec.s3 else {}),
        },
        volumes=(backup_volume(db, spec),),
        files=(
            File("backup-script", f"{SCRIPT_DIR}/backup.sh", render_backup_script(), mode=0o555),
            File("restore-script", f"{SCRIPT_DIR}/restore.sh", render_restore_script(), mode=0o555),
        ),
        tmpfs=("/tmp",),
        resources=BACKUP_RESOURCES,
        user=BACKUP_UID,
        group=BACKUP_UID,
    )


def _secret_env(db: str, password: pulumi.Input[str], s3: Optional[tuple[pulumi.Input[str], pulumi.Input[str]]]):
    env = {"DB_PASSWORD": SecretValue(f"{db}-backup-env", "DB_PASSWORD", password)}
    if s3:
        env["AWS_ACCESS_KEY_ID"] = SecretValue(f"{db}-backup-env", "AWS_ACCESS_KEY_ID", s3[0])
        env["AWS_SECRET_ACCESS_KEY"] = SecretValue(f"{db}-backup-env", "AWS_SECRET_ACCESS_KEY", s3[1])
    return env


def backup_workloads(
    db: str, dbspec: DatabaseSpec, spec: BackupSpec, password: pulumi.Input[str], target: str,
    revision: str = "", s3: Optional[tuple[pulumi.Input[str], pulumi.Input[str]]] = None,
    image: Optional[str] = None,
    pushgateway: Optional[str] = None,
) -> list[Workload]:
    """Scheduled workloads (+ pre-deploy and restore one-shots) for one database (pure).

    ``revision`` names the pre-deploy dump job: it changes when what is deployed changes, so a new
    dump is taken before each real deploy and not on a no-op ``up``.
    """
    image = image or spec.image or default_image(dbspec)
    base = _base(db, dbspec, spec, password, image, pushgateway)
    secret_env = _secret_env(db, password, s3)
    out: list[Workload] = []
    if target == "kubernetes":
        for tier in spec.tiers:
            out.append(Workload(
                name=f"{db}-backup-{tier.name}", kind=Kind.CRON, schedule=tier.schedule,
                command=("bash", f"{SCRIPT_DIR}/backup.sh", tier.name, str(tier.keep)),
                secret_env=secret_env, **base,
            ))
    else:
        crontab = render_crontab([(t.name, t.schedule, t.keep) for t in spec.tiers])
        files = (*base.pop("files"), File("crontab", f"{SCRIPT_DIR}/crontab", crontab))
        out.append(Workload(
            name=f"{db}-backup", kind=Kind.SERVICE,
            command=("supercronic", f"{SCRIPT_DIR}/crontab"), files=files,
            secret_env=secret_env, **base,
        ))
        base["files"] = files
    if spec.pre_deploy:
        out.append(Workload(
            name=f"{db}-predeploy-backup-{revision}" if revision else f"{db}-predeploy-backup",
            kind=Kind.SERVICE, one_shot=True,
            command=("bash", f"{SCRIPT_DIR}/backup.sh", "predeploy", "10"),
            secret_env=secret_env, labels={"berth.dev/job": "predeploy-backup"}, **base,
        ))
    if spec.restore_from:
        out.append(Workload(
            name=f"{db}-restore", kind=Kind.SERVICE, one_shot=True,
            command=("bash", f"{SCRIPT_DIR}/restore.sh", spec.restore_from),
            secret_env=secret_env, labels={"berth.dev/job": "restore"}, **base,
        ))
    return out


def backup_image_context() -> str:
    """The Dockerfile folder shipped with Berth, relative to where the program runs (the project
    root, or an example's folder) so that what is recorded does not depend on the checkout path."""
    import os

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images", "backup")
    return os.path.relpath(here)


class BackupJob(pulumi.ComponentResource):
    """Backups of one Database. ``predeploy`` holds the pre-deploy dump job (apps wait for it)."""

    def __init__(self, db: str, dbspec: DatabaseSpec, spec: BackupSpec, password: pulumi.Input[str], target,
                 depends_on: Sequence[pulumi.Resource], revision: str = "",
                 s3: Optional[tuple[pulumi.Input[str], pulumi.Input[str]]] = None,
                 pushgateway: Optional[str] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("berth:index:BackupJob", f"{db}-backup", None, opts)
        image = None
        if target.name == "docker" and not spec.image:
            image = target.build_image(
                "backup", backup_image_context(), {"POSTGRES_VERSION": dbspec.version or "15"}, parent=self
            ) if dbspec.engine == DatabaseEngine.POSTGRES else None
        self.workloads = backup_workloads(db, dbspec, spec, password, target.name, revision, s3, image, pushgateway)
        self.predeploy: list[pulumi.Resource] = []
        for w in self.workloads:
            created = target.deploy(w, parent=self, depends_on=list(depends_on))
            if w.labels.get("berth.dev/job") == "predeploy-backup":
                self.predeploy = created
        self.register_outputs({"schedules": {t.name: t.schedule for t in spec.tiers}})
