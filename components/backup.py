"""BackupJob component: scheduled logical dumps of one database with retention tiers, an optional
pre-deploy dump, and a restore that is a job too.

Kubernetes: one CronJob per tier (concurrencyPolicy Forbid, history limits) writing to a retained
PVC. Docker: a supercronic scheduler container writing to a named volume. The scripts are the same
on both targets (``renderers/backup.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi

from .database import Credentials, backup_login, db_name, default_image
from .ir import DataVolume, File, ImageBuild, Kind, Probe, Role, SecretValue, Workload
from .renderers.backup import (BACKUP_DIR, SCRIPT_DIR, max_interval_seconds, render_backup_script, render_crontab,
                               render_restore_script)
from .spec import DB_PORT, DEFAULT_DB_VERSION, BackupSpec, DatabaseEngine, DatabaseSpec, Resources

BACKUP_UID = 10001
SUPERCRONIC_PORT = 9746
SUPERCRONIC_CHECK = (f"exec 3<>/dev/tcp/127.0.0.1/{SUPERCRONIC_PORT} && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 "
                     "&& head -n 1 <&3 | grep -q ' 200 '")
BACKUP_RESOURCES = Resources(cpu="100m", memory="128Mi", cpu_limit="1", memory_limit="512Mi")


def backup_volume(db: str, spec: BackupSpec) -> DataVolume:
    return DataVolume(f"{db}-backups", BACKUP_DIR, spec.storage, shared=True)


def _base(db: str, dbspec: DatabaseSpec, spec: BackupSpec, user: str, image: str,
          pushgateway: Optional[str] = None, build: Optional[ImageBuild] = None) -> dict[str, Any]:
    return dict(
        role=Role.BACKUP,
        image=image,
        build=build,
        env={
            "BERTH_DB_ENGINE": dbspec.engine.value,
            "BERTH_DB_NAME": db_name(db, dbspec),
            "BERTH_DB_ID": db,
            "DB_HOST": db,
            "DB_PORT": str(DB_PORT[dbspec.engine]),
            "DB_USER": user,
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
    db: str, dbspec: DatabaseSpec, spec: BackupSpec, credentials: Credentials, target: str,
    revision: str = "", s3: Optional[tuple[pulumi.Input[str], pulumi.Input[str]]] = None,
    image: Optional[str] = None,
    pushgateway: Optional[str] = None,
    build: Optional[ImageBuild] = None,
) -> list[Workload]:
    """Scheduled workloads (+ pre-deploy and restore one-shots) for one database (pure).

    ``revision`` names the pre-deploy dump job: it changes when what is deployed changes, so a new
    dump is taken before each real deploy and not on a no-op ``up``. With ``build``, ``image`` is
    built on the host (``backup_image``).
    """
    image = image or spec.image or default_image(dbspec)
    # The dumps log in as the database's backup role, which reads and changes nothing; the restore
    # as what restoring needs (``backup_login``).
    user, password = backup_login(db, dbspec, credentials)
    base = _base(db, dbspec, spec, user, image, pushgateway, build)
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
            command=("supercronic", "-prometheus-listen-address", f"127.0.0.1:{SUPERCRONIC_PORT}",
                     f"{SCRIPT_DIR}/crontab"),
            files=files, secret_env=secret_env,
            # The scheduler is healthy while supercronic answers on its own metrics port (loopback
            # only); bash's /dev/tcp, as the images have no HTTP client.
            health=Probe(command=("CMD", "bash", "-c", SUPERCRONIC_CHECK), interval=30, timeout=10, retries=3,
                         start_period=10),
            **base,
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
        restore_user, restore_password = backup_login(db, dbspec, credentials, restore=True)
        out.append(Workload(
            name=f"{db}-restore", kind=Kind.SERVICE, one_shot=True,
            command=("bash", f"{SCRIPT_DIR}/restore.sh", spec.restore_from),
            secret_env=_secret_env(db, restore_password, s3), labels={"berth.dev/job": "restore"},
            **{**base, "env": {**base["env"], "DB_USER": restore_user}},
        ))
    return out


def backup_image_context() -> str:
    """The Dockerfile folder shipped with Berth, relative to where the program runs (the project
    root, or an example's folder) so that what is recorded does not depend on the checkout path."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images", "backup")
    return os.path.relpath(here)


def backup_image(prefix: str, dbspec: DatabaseSpec, spec: BackupSpec, target: str) -> tuple[Optional[str], Optional[ImageBuild]]:
    """On Docker, PostgreSQL backups without an image of their own run one built on the host from
    the Dockerfile shipped with Berth (the database's pg_dump and supercronic), named after the
    stack so that two stacks on one host keep theirs. ``(None, None)`` otherwise."""
    if target != "docker" or spec.image or dbspec.engine != DatabaseEngine.POSTGRES:
        return None, None
    version = dbspec.version or DEFAULT_DB_VERSION[DatabaseEngine.POSTGRES]
    return f"{prefix}-backup:{version}", ImageBuild("backup", backup_image_context(), {"POSTGRES_VERSION": version})


@dataclass(frozen=True)
class BackupPlan:
    """One database's backups in the plan (the passwords are the database's ``Later`` values)."""

    workloads: tuple[Workload, ...]


def alert_after_seconds(spec: BackupSpec) -> int:
    """How old the newest dump may be before BackupTooOld fires: the longest interval between two runs
    of a tier, plus ``alert_after``."""
    return max(max_interval_seconds(t.schedule) for t in spec.tiers) + spec.alert_after


def plan_backup(
    db: str, dbspec: DatabaseSpec, spec: BackupSpec, credentials: Credentials, target: str, prefix: str,
    revision: str = "", s3: Optional[tuple[pulumi.Input[str], pulumi.Input[str]]] = None,
    pushgateway: Optional[str] = None,
) -> BackupPlan:
    """The backup workloads, with the image they run (pure)."""
    image, build = backup_image(prefix, dbspec, spec, target)
    return BackupPlan(tuple(backup_workloads(db, dbspec, spec, credentials, target, revision, s3, image, pushgateway,
                                             build)))


class BackupJob(pulumi.ComponentResource):
    """Backups of one Database. ``predeploy`` holds the pre-deploy dump job (apps wait for it)."""

    def __init__(self, db: str, dbspec: DatabaseSpec, spec: BackupSpec, credentials: Credentials, target,
                 depends_on: Sequence[pulumi.Resource], revision: str = "",
                 s3: Optional[tuple[pulumi.Input[str], pulumi.Input[str]]] = None,
                 pushgateway: Optional[str] = None,
                 opts: Optional[pulumi.ResourceOptions] = None, plan: Optional[BackupPlan] = None):
        super().__init__("berth:index:BackupJob", f"{db}-backup", None, opts)
        # Only the Docker target builds images, named after its stack.
        prefix = target.prefix if target.name == "docker" else ""
        plan = plan or plan_backup(db, dbspec, spec, credentials, target.name, prefix, revision, s3, pushgateway)
        self.workloads = list(plan.workloads)
        self.predeploy: list[pulumi.Resource] = []
        for w in self.workloads:
            created = target.deploy(w, parent=self, depends_on=list(depends_on))
            if w.labels.get("berth.dev/job") == "predeploy-backup":
                self.predeploy = created
        self.register_outputs({"schedules": {t.name: t.schedule for t in spec.tiers}})
