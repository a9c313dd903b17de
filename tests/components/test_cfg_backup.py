"""BackupJob: tiers → CronJobs (Kubernetes) / one supercronic scheduler (Docker), pre-deploy dump,
restore job, and the pure renderers (crontab, schedule intervals). Pure functions first, then the
real program under recording mocks."""

from __future__ import annotations

import pytest

from cfgtools import CONTAINER, CRONJOB, JOB, SECRET, env_of, record_with, stack_raw, upload
from berth.components.backup import backup_workloads
from berth.components.database import Credentials
from berth.components.ir import Kind
from berth.components.renderers.backup import SCRIPT_DIR, max_interval_seconds, render_crontab
from berth.components.spec import BackupSpec, DatabaseSpec, parse_spec
from berth.components.plan import revision
from berth.components.targets.kubernetes import KubeContext, manifests

DB = DatabaseSpec(database="easyflow", user="easyflow")
PASSWORD = "<<pw>>"  # the backup role's
OWNER_PASSWORD = "<<owner-pw>>"  # the database owner's: what the restore logs in with
CREDENTIALS = Credentials(OWNER_PASSWORD, "<<admin-pw>>", backup=PASSWORD)
SEED_B = [{"name": "daily", "schedule": "0 2 * * *", "keep": 7}]
SEED_E = [
    {"name": "daily", "schedule": "0 2 * * *", "keep": 7},
    {"name": "weekly", "schedule": "0 3 * * 0", "keep": 4},
    {"name": "monthly", "schedule": "0 4 1 * *", "keep": 12},
]
CTX = KubeContext(namespace="ns", stack="berth-prod")


def workloads(target, tiers=SEED_B, revision="", **spec):
    return backup_workloads("db", DB, BackupSpec.model_validate({"tiers": tiers, **spec}), CREDENTIALS, target, revision)


def objects(w):
    return {m["kind"]: m for m in manifests(CTX, w, {})}


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("tiers", [SEED_B, SEED_E], ids=["seed-b", "seed-e"])
def test_one_cronjob_per_tier(tiers):
    ws = workloads("kubernetes", tiers)
    assert [w.name for w in ws] == [f"db-backup-{t['name']}" for t in tiers]
    for w, t in zip(ws, tiers):
        assert w.kind == Kind.CRON and w.schedule == t["schedule"]
        assert w.command == ("bash", f"{SCRIPT_DIR}/backup.sh", t["name"], str(t["keep"]))
        cron = objects(w)["CronJob"]["spec"]
        assert cron["schedule"] == t["schedule"]
        assert cron["concurrencyPolicy"] == "Forbid"
        assert cron["successfulJobsHistoryLimit"] == 3 and cron["failedJobsHistoryLimit"] == 3
        pod = cron["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "OnFailure"
        assert pod["containers"][0]["resources"]["limits"]  # resources are set


@pytest.mark.parametrize("tiers", [SEED_B, SEED_E], ids=["seed-b", "seed-e"])
def test_tiers_share_one_backup_pvc(tiers):
    claims = set()
    for w in workloads("kubernetes", tiers, pre_deploy=True, restore_from="latest", revision="abc"):
        pod = objects(w)[w.kind == Kind.CRON and "CronJob" or "Job"]
        spec = pod["spec"]["jobTemplate"]["spec"]["template"]["spec"] if w.kind == Kind.CRON else pod["spec"]["template"]["spec"]
        pvcs = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert pvcs == ["db-backups"]
        assert {"name": "db-backups", "mountPath": "/backups"} in spec["containers"][0]["volumeMounts"]
        claims.add(pvcs[0])
    assert claims == {"db-backups"}


def test_db_password_only_by_secret_ref():
    for w in workloads("kubernetes", SEED_E):
        objs = objects(w)
        env = objs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
        pw = [e for e in env if e["name"] == "DB_PASSWORD"]
        assert pw == [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{w.name}-env", "key": "DB_PASSWORD"}}}]
        assert PASSWORD not in str(objs["CronJob"]) and PASSWORD not in str(objs.get("ConfigMap"))
        assert objs["Secret"]["stringData"]["DB_PASSWORD"] == PASSWORD


def test_prod_stack_backup_objects(recorded):
    prod = recorded("prod")
    crons = prod.by_type(CRONJOB)
    assert [c.name for c in crons] == ["db-backup-daily-cronjob"]
    spec = crons[0].inputs["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["schedule"] == "0 2 * * *"
    env = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-backup-daily-env", "key": "DB_PASSWORD"}}} in env
    assert prod.find(SECRET, "db-backup-daily-env").inputs["stringData"]["DB_PASSWORD"] == "<<berth:password:db-backup-password>>"
    jobs = [j.name for j in prod.by_type(JOB)]
    assert jobs == [f"db-predeploy-backup-{revision(parse_spec(_berth(stack_raw('prod'))))}-job"]


# ---------------------------------------------------------------- Docker


@pytest.mark.parametrize("tiers", [SEED_B, SEED_E], ids=["seed-b", "seed-e"])
def test_docker_one_scheduler_with_the_crontab(tiers):
    ws = workloads("docker", tiers)
    assert [w.name for w in ws] == ["db-backup"]
    w = ws[0]
    assert w.kind == Kind.SERVICE and not w.one_shot
    assert w.command == ("supercronic", "-prometheus-listen-address", "127.0.0.1:9746", f"{SCRIPT_DIR}/crontab")
    assert w.health and w.health.command[:2] == ("CMD", "bash")  # supercronic answers on its own port
    files = {f.path: f.content for f in w.files}
    assert files[f"{SCRIPT_DIR}/crontab"] == render_crontab([(t["name"], t["schedule"], t["keep"]) for t in tiers])
    assert {f"{SCRIPT_DIR}/backup.sh", f"{SCRIPT_DIR}/restore.sh"} <= set(files)
    assert w.secret_env["DB_PASSWORD"].value == PASSWORD and "DB_PASSWORD" not in w.env
    assert w.env["DB_USER"] == "berth_backup"  # reads everything, changes nothing


def test_dev_stack_scheduler_container(recorded):
    dev = recorded("dev")
    c = dev.find(CONTAINER, "db-backup")
    assert c.inputs["command"] == ["supercronic", "-prometheus-listen-address", "127.0.0.1:9746", "/berth/crontab"]
    assert upload(dev, "db-backup", "/berth/crontab") == \
        "# Generated by Berth: backup tiers (supercronic).\n0 2 * * * bash /berth/backup.sh daily 7\n"
    assert env_of(c)["DB_PASSWORD"] == "<<berth:password:db-backup-password>>"
    assert env_of(c)["DB_USER"] == "berth_backup"
    assert not [r for r in dev.by_type(CONTAINER) if "predeploy" in r.name or "restore" in r.name]


@pytest.mark.parametrize(
    "tiers,expected",
    [
        (SEED_B, ["0 2 * * * bash /berth/backup.sh daily 7"]),
        (SEED_E, ["0 2 * * * bash /berth/backup.sh daily 7", "0 3 * * 0 bash /berth/backup.sh weekly 4",
                  "0 4 1 * * bash /berth/backup.sh monthly 12"]),
    ],
    ids=["seed-b", "seed-e"],
)
def test_render_crontab(tiers, expected):
    text = render_crontab([(t["name"], t["schedule"], t["keep"]) for t in tiers])
    assert text.endswith("\n")
    assert [l for l in text.splitlines() if not l.startswith("#")] == expected


@pytest.mark.parametrize(
    "schedule,seconds",
    [
        ("0 2 * * *", 86400),
        ("@daily", 86400),
        ("*/15 * * * *", 900),
        ("0 3 * * 0", 7 * 86400),
        ("0 4 1 * *", 31 * 86400),
        ("0 2 * * 1-5", 3 * 86400),  # Friday → Monday
        ("0 */6 * * *", 6 * 3600),
    ],
)
def test_max_interval_seconds(schedule, seconds):
    assert max_interval_seconds(schedule) == seconds


# ---------------------------------------------------------------- pre-deploy and restore


@pytest.mark.parametrize("target,kind", [("kubernetes", "Job"), ("docker", None)])
def test_predeploy_one_shot_named_by_revision(target, kind):
    ws = {w.name: w for w in workloads(target, pre_deploy=True, revision="1a2b3c4d")}
    w = ws["db-predeploy-backup-1a2b3c4d"]
    assert w.one_shot and w.command == ("bash", f"{SCRIPT_DIR}/backup.sh", "predeploy", "10")
    assert w.labels["berth.dev/job"] == "predeploy-backup"
    if kind:
        assert objects(w)["Job"]["metadata"]["name"] == "db-predeploy-backup-1a2b3c4d"
    assert not [n for n in ws if "predeploy" in n and n != w.name]
    assert not [w for w in workloads(target) if "predeploy" in w.name]


def _berth(raw):
    return {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("berth:")}


def _with(raw, mutate):
    mutate(raw)
    return raw


def _image(raw):
    raw["berth:services"]["api"]["image"] = "ghcr.io/easy-flow/api:1.4.1"


def _env(raw):
    raw["berth:services"]["worker"]["env"] = {"X": "1"}


def _proxy(raw):
    raw["berth:proxy"]["routes"][1]["rate_limit"]["burst"] = 30


def _tiers(raw):
    raw["berth:backups"]["db"]["tiers"].append({"name": "weekly", "schedule": "0 3 * * 0", "keep": 4})


def _monitoring(raw):
    raw["berth:monitoring"]["retention"] = "30d"


def _db(raw):
    raw["berth:databases"]["db"]["storage"] = "40Gi"


@pytest.mark.parametrize(
    "mutate,changes",
    [(None, False), (_image, True), (_env, True), (_proxy, False), (_tiers, False), (_monitoring, False), (_db, False)],
    ids=["no-op", "service-image", "service-env", "proxy", "backup-tiers", "monitoring", "database-storage"],
)
def test_revision_changes_with_what_the_apps_run_only(mutate, changes):
    base = revision(parse_spec(_berth(stack_raw("prod"))))
    raw = stack_raw("prod")
    if mutate:
        mutate(raw)
    assert (revision(parse_spec(_berth(raw))) != base) == changes


@pytest.fixture(scope="module")
def dev_predeploy():
    """The dev stack with pre_deploy, recorded as is and with a new api image."""
    def rec(new_image):
        raw = stack_raw("dev")
        raw["berth:backups"]["db"]["pre_deploy"] = True
        if new_image:
            _image(raw)
        return {r.name for r in record_with("dev", raw).by_type(CONTAINER)
                if "predeploy" in r.name and not r.name.endswith("-files")}  # not its files writer

    return rec(False), rec(False), rec(True)


def test_predeploy_container_renamed_only_when_a_service_image_changes(dev_predeploy):
    first, again, new_image = dev_predeploy
    assert len(first) == 1 and first == again
    assert len(new_image) == 1 and new_image != first


def test_prod_predeploy_job_renamed_when_the_image_changes():
    names = []
    for new_image in (False, True):
        raw = stack_raw("prod")
        if new_image:
            _image(raw)
        names.append([j.name for j in record_with("prod", raw).by_type(JOB)])
    assert len(names[0]) == 1 and len(names[1]) == 1 and names[0] != names[1]


@pytest.mark.parametrize("target", ["kubernetes", "docker"])
@pytest.mark.parametrize("restore_from", [None, "latest", "daily/easyflow-20250101T020000Z.dump"])
def test_restore_job_only_when_restore_from(target, restore_from):
    ws = workloads(target, **({"restore_from": restore_from} if restore_from else {}))
    restores = [w for w in ws if w.labels.get("berth.dev/job") == "restore"]
    if restore_from is None:
        assert restores == []
        return
    (w,) = restores
    assert w.name == "db-restore" and w.one_shot
    assert w.command == ("bash", f"{SCRIPT_DIR}/restore.sh", restore_from)
    # pg_restore --clean drops and recreates the database's objects: as their owner, never a superuser.
    assert w.secret_env["DB_PASSWORD"].value == OWNER_PASSWORD and w.env["DB_USER"] == "easyflow"
    if target == "kubernetes":
        assert objects(w)["Job"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_dev_stack_restore_container_when_configured():
    raw = stack_raw("dev")
    raw["berth:backups"]["db"]["restore_from"] = "latest"
    c = record_with("dev", raw).find(CONTAINER, "db-restore")
    # Its command runs after it read (and deleted) the file its secrets came in (targets/docker.py).
    assert c.inputs["entrypoints"][3:] == ["/berth-secrets/env", "bash", "/berth/restore.sh", "latest"]
    assert "command" not in c.inputs and not any(e.startswith("DB_PASSWORD=") for e in c.inputs["envs"])
    assert c.inputs.get("mustRun") is False or c.inputs.get("restart") == "no"
