"""The backup model (``berth:backups.DB``): schedules with retention, S3 copies, pre-deploy dumps."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import BeforeValidator

from .fields import _field, _Model
from .names import DnsLabel, Image, _matching
from .units import Seconds, Size, _cron


class BackupTier(_Model):
    """One schedule of dumps with its own retention."""

    name: DnsLabel = _field(..., "Tier name (a directory, and part of the CronJob name).")
    schedule: Annotated[str, BeforeValidator(_cron)] = _field(
        ..., "When to dump.", unit="cron, 5 fields in UTC ('0 2 * * *', @daily)")
    keep: int = _field(..., "Dumps of this tier kept (older ones are deleted).", unit="dumps", ge=1, le=1000)


class S3Spec(_Model):
    """Copy each dump to S3-compatible storage."""

    endpoint: Annotated[str, _matching(r"^https?://[^\s/]+(/\S*)?$", "must be a URL with its scheme, e.g. "
                                       "https://s3.eu-central-1.amazonaws.com")] = _field(
        ..., "S3 endpoint URL, e.g. https://s3.eu-central-1.amazonaws.com.")
    bucket: Annotated[str, _matching(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "must be an S3 bucket name: 3-63 "
                                     "lowercase letters, digits, '.' and '-'")] = _field(..., "Bucket name.")
    prefix: str = _field("", "Key prefix inside the bucket, e.g. backups/.")
    access_key_secret: str = _field(..., "Name in berth:secrets holding the access key id.")
    secret_key_secret: str = _field(..., "Name in berth:secrets holding the secret key.")


class BackupSpec(_Model):
    """Scheduled logical dumps of one database. Default: daily at 02:00, 7 kept."""

    tiers: list[BackupTier] = _field(
        default_factory=lambda: [BackupTier(name="daily", schedule="0 2 * * *", keep=7)], min_length=1,
        description="Dump schedules with retention; default daily at 02:00 UTC, 7 kept.",
    )
    storage: Size = _field("20Gi", "Backup volume size.", unit="Mi/Gi")
    s3: Optional[S3Spec] = _field(None, "Also upload dumps to S3-compatible storage.")
    pre_deploy: bool = _field(False, "Take a dump before each deploy (a one-shot job the apps wait for).")
    alert_after: Seconds = _field(
        3600, "How late a dump may be before it is alerted: BackupTooOld when the last successful dump is older "
        "than the longest gap of the schedules plus this, BackupMissing when none has succeeded for as long.",
        unit="seconds (1h, 30m, 90)", ge=0, le=7 * 86400)
    restore_from: Optional[str] = _field(
        None, "Run a one-shot restore of this dump (path under the backup volume, or 'latest')."
    )
    image: Optional[Image] = _field(None, "Image with pg_dump/mongodump (+ supercronic on Docker); "
                                    "defaults to the database image (Kubernetes) or a built one (Docker).")
