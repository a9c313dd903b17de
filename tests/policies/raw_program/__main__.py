"""A hand-written Pulumi program that uses no Berth code: raw pulumi_docker and pulumi_kubernetes resources.

It shows the berth-security pack judging what is deployed, not Berth's names: no ``berth.*`` labels, no
``app.kubernetes.io/component`` labels, no component resources. ``raw:variant`` (default ``compliant``)
picks what to declare; ``variants.py`` lists the variants and the mandatory rules each must trigger.

compliant:
- Docker: a network; postgres with its password in a file (POSTGRES_PASSWORD_FILE) and a protected data
  volume; a supercronic container whose uploaded crontab runs an uploaded pg_dump script against the
  postgres container's alias; an unprivileged nginx. All non-root, no capabilities, memory-limited.
- Kubernetes: a namespace with a default-deny NetworkPolicy; an nginx Deployment (2 replicas, PDB,
  probes, limits, restricted securityContext, API_TOKEN from a Secret) behind a ClusterIP Service and a
  TLS Ingress; a protected postgres StatefulSet behind a headless Service; a CronJob that runs a
  ConfigMap script with pg_dump against that Service.

``raw:kubernetesRenderDir`` (optional) renders the Kubernetes objects as YAML there instead of talking to
a cluster (a preview then needs no cluster).
"""

from __future__ import annotations

import os
import sys

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from variants import DEFAULT, mutations  # noqa: E402

cfg = pulumi.Config("raw")
variant = cfg.get("variant") or DEFAULT
bad = mutations(variant)  # the insecure changes to apply
pulumi.export("variant", variant)

DB_PASSWORD = cfg.get_secret("dbPassword") or pulumi.Output.secret("raw-example-db-password")
API_TOKEN = cfg.get_secret("apiToken") or pulumi.Output.secret("raw-example-api-token")

POSTGRES = "postgres:16.4"
NGINX = "nginxinc/nginx-unprivileged:1.27.3"
DUMP_SCRIPT = """#!/bin/sh
# Dump the app database into /dumps, keep a week of dumps.
set -eu
pg_dump --format=custom -h "$PGHOST" -U app -d app -f "/dumps/app-$(date +%Y%m%dT%H%M%S).dump"
find /dumps -name 'app-*.dump' -mtime +7 -delete
"""

# ------------------------------------------------------------------------------------------- Docker

net = docker.Network("raw-net", name="raw-net")
pg_image = docker.RemoteImage("postgres-image", name=POSTGRES, keep_locally=True)
app_image = docker.RemoteImage("app-image", name="nginx:latest" if "docker-latest-root" in bad else NGINX,
                               keep_locally=True)
pgdata = docker.Volume("pgdata", name="raw-pgdata",
                       opts=pulumi.ResourceOptions(protect="prod-db-unprotected" not in bad, retain_on_delete=True))
pgdumps = docker.Volume("pgdumps", name="raw-pgdumps")


def hardened(**over):
    """Container inputs every raw container shares: non-root, no capabilities, memory-limited, restarted."""
    args = dict(
        user="10001:10001",
        capabilities={"drops": ["ALL"]},
        security_opts=["no-new-privileges:true"],
        memory=256,
        memory_swap=256,
        restart="unless-stopped",
        networks_advanced=[{"name": net.name}],
    )
    args.update(over)
    return args


db_env = ["POSTGRES_USER=app", "POSTGRES_DB=app", "PGDATA=/var/lib/postgresql/data/pgdata"]
db_env.append("POSTGRES_PASSWORD=changeme" if "docker-db-literal-password" in bad
              else "POSTGRES_PASSWORD_FILE=/run/secrets/pg-password")
docker.Container(
    "raw-db",
    **hardened(
        name="raw-db", hostname="raw-db", image=pg_image.image_id, user="999:999", memory=512, memory_swap=512,
        envs=db_env,
        healthcheck={"tests": ["CMD", "pg_isready", "-U", "app", "-d", "app"], "interval": "10s"},
        uploads=[{"file": "/run/secrets/pg-password", "content": DB_PASSWORD}],
        volumes=[{"volume_name": pgdata.name, "container_path": "/var/lib/postgresql/data"}],
        networks_advanced=[{"name": net.name, "aliases": ["raw-db"]}],
    ),
)

if "prod-db-without-backup" not in bad:
    pghost = "old-db" if "prod-backup-wrong-host" in bad else "raw-db"
    once = "prod-backup-not-scheduled" in bad
    docker.Container(
        "raw-db-backup",
        **hardened(
            name="raw-db-backup", image=pg_image.image_id, user="999:999",
            command=["sh", "/etc/raw-backup/dump.sh"] if once else ["supercronic", "/etc/raw-backup/crontab"],
            restart="no" if once else "unless-stopped", must_run=not once,
            healthcheck=None if once else {"tests": ["CMD", "pgrep", "-x", "supercronic"], "interval": "60s"},
            envs=[f"PGHOST={pghost}", "PGPASSFILE=/run/secrets/pgpass"],
            uploads=[
                {"file": "/etc/raw-backup/crontab", "content": "15 3 * * * sh /etc/raw-backup/dump.sh\n"},
                {"file": "/etc/raw-backup/dump.sh", "content": DUMP_SCRIPT, "executable": True},
                {"file": "/run/secrets/pgpass", "content": pulumi.Output.concat(pghost, ":5432:app:app:", DB_PASSWORD)},
            ],
            volumes=[{"volume_name": pgdumps.name, "container_path": "/dumps"}],
        ),
    )

app = hardened(name="raw-app", hostname="raw-app", image=app_image.image_id, user="101:101", read_only=True,
               tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"}, envs=["LOG_LEVEL=info"],
               healthcheck={"tests": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"], "interval": "10s"})
if "docker-privileged" in bad:
    app.update(privileged=True, capabilities={"drops": ["ALL"], "adds": ["SYS_ADMIN"]}, pid_mode="host")
if "docker-host-mounts" in bad:
    app["volumes"] = [{"host_path": "/var/run/docker.sock", "container_path": "/var/run/docker.sock"}]
if "docker-published-port" in bad:
    app["ports"] = [{"internal": 8080, "external": 8080}]
if "docker-latest-root" in bad:
    for key in ("user", "restart", "memory", "memory_swap", "healthcheck"):
        app.pop(key)
if "docker-plaintext-token" in bad:
    app["envs"] = app["envs"] + ["API_TOKEN=abc"]
if "docker-literal-beside-secret" in bad:
    # The label says API_TOKEN comes from a secret output; a second, literal API_TOKEN sits beside it.
    app["labels"] = [{"label": "berth.secret-envs", "value": "API_TOKEN"}]
    app["envs"] = app["envs"] + [pulumi.Output.concat("API_TOKEN=", API_TOKEN), "API_TOKEN=literal-token"]
docker.Container("raw-app", **app)

# --------------------------------------------------------------------------------------- Kubernetes

render_dir = cfg.get("kubernetesRenderDir")
k8s_opts = pulumi.ResourceOptions(
    provider=k8s.Provider("render", render_yaml_to_directory=render_dir) if render_dir else None)
NS = "raw"


def opts(**kw) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(**kw))


def meta(name: str, labels: dict | None = None) -> dict:
    return {"name": name, "namespace": NS, **({"labels": labels} if labels else {})}


def restricted(uid: int) -> dict:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                      "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def resources(cpu="100m", memory="128Mi", cpu_limit="500m", memory_limit="256Mi") -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def secret_env(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


ns = k8s.core.v1.Namespace("raw-namespace", metadata={"name": NS}, opts=opts())
if "k8s-no-default-deny" not in bad:
    k8s.networking.v1.NetworkPolicy(
        "default-deny", metadata=meta("default-deny"),
        spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, opts=opts(depends_on=[ns]))

app_secret = k8s.core.v1.Secret(
    "app-secrets", metadata=meta("app-secrets"),
    string_data={"API_TOKEN": API_TOKEN, "DATABASE_URL": pulumi.Output.concat("postgresql://app:", DB_PASSWORD, "@pg:5432/app")},
    opts=opts(depends_on=[ns]))
pg_secret = k8s.core.v1.Secret("pg-credentials", metadata=meta("pg-credentials"),
                               string_data={"POSTGRES_PASSWORD": DB_PASSWORD}, opts=opts(depends_on=[ns]))

# ---- web: nginx Deployment, PDB, Service, Ingress
web_labels = {"app.kubernetes.io/name": "web"}
web_container = {
    "name": "web",
    "image": "nginx:latest" if "k8s-privileged-latest" in bad else NGINX,
    "ports": [{"containerPort": 8080, "name": "http"}],
    "securityContext": dict(CONTAINER_SECURITY),
    "resources": resources(),
    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
    "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
    "env": [{"name": "LOG_LEVEL", "value": "info"}, secret_env("API_TOKEN", "app-secrets", "API_TOKEN")],
    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
}
web_pod = {"securityContext": restricted(101), "automountServiceAccountToken": False,
           "containers": [web_container], "volumes": [{"name": "tmp", "emptyDir": {}}]}
if "k8s-privileged-latest" in bad:
    web_container["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
if "k8s-root-host" in bad:
    web_pod["securityContext"].update(runAsNonRoot=False, runAsUser=0, seccompProfile={"type": "Unconfined"})
    web_container["securityContext"] = {k: v for k, v in web_container["securityContext"].items()
                                        if k not in ("runAsNonRoot", "capabilities")}
    web_pod["hostNetwork"] = True
    web_pod["volumes"].append({"name": "logs", "hostPath": {"path": "/var/log"}})
if "k8s-no-limits-probes" in bad:
    for key in ("resources", "readinessProbe", "livenessProbe"):
        web_container.pop(key)
if "k8s-plaintext-token" in bad:
    web_container["env"][1] = {"name": "API_TOKEN", "value": "abc"}
if "k8s-literal-beside-secret" in bad:
    web_container["env"] += [secret_env("DATABASE_URL", "app-secrets", "DATABASE_URL"),
                             {"name": "DATABASE_URL", "value": "postgresql://app:changeme@pg:5432/app"}]

k8s.apps.v1.Deployment(
    "web", metadata=meta("web", web_labels),
    spec={"replicas": 2, "selector": {"matchLabels": web_labels},
          "template": {"metadata": {"labels": web_labels}, "spec": web_pod}},
    opts=opts(depends_on=[ns, app_secret]))
k8s.policy.v1.PodDisruptionBudget(
    "web", metadata=meta("web"), spec={"maxUnavailable": 1, "selector": {"matchLabels": web_labels}},
    opts=opts(depends_on=[ns]))
k8s.core.v1.Service(
    "web", metadata=meta("web", web_labels),
    spec={"type": "ClusterIP", "selector": web_labels, "ports": [{"port": 80, "targetPort": "http", "name": "http"}]},
    opts=opts(depends_on=[ns]))
ingress_spec = {"rules": [{"host": "raw.example.com", "http": {"paths": [{
    "path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
if "k8s-ingress-no-tls" not in bad:
    ingress_spec["tls"] = [{"hosts": ["raw.example.com"], "secretName": "web-tls"}]
k8s.networking.v1.Ingress("web", metadata=meta("web"), spec=ingress_spec, opts=opts(depends_on=[ns]))

# ---- postgres: StatefulSet (protected), headless Service
pg_labels = {"app.kubernetes.io/name": "pg"}
pg_probe = {"exec": {"command": ["pg_isready", "-q", "-h", "127.0.0.1", "-U", "app", "-d", "app"]},
            "initialDelaySeconds": 20, "periodSeconds": 10}
pg_env = [{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
          {"name": "POSTGRES_USER", "value": "app"}, {"name": "POSTGRES_DB", "value": "app"},
          {"name": "POSTGRES_PASSWORD", "value": "changeme"} if "k8s-db-literal-password" in bad
          else secret_env("POSTGRES_PASSWORD", "pg-credentials", "POSTGRES_PASSWORD")]
k8s.apps.v1.StatefulSet(
    "pg", metadata=meta("pg", pg_labels),
    spec={
        "serviceName": "pg", "replicas": 1, "selector": {"matchLabels": pg_labels},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "template": {"metadata": {"labels": pg_labels}, "spec": {
            "securityContext": restricted(999), "automountServiceAccountToken": False,
            "containers": [{
                "name": "postgres", "image": POSTGRES, "ports": [{"containerPort": 5432, "name": "pg"}],
                "env": pg_env, "securityContext": dict(CONTAINER_SECURITY),
                "resources": resources("250m", "512Mi", "1", "1Gi"),
                "readinessProbe": pg_probe, "livenessProbe": pg_probe,
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                 {"name": "run", "mountPath": "/var/run/postgresql"},
                                 {"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        }},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}],
    },
    opts=opts(depends_on=[ns, pg_secret], protect="prod-db-unprotected" not in bad, retain_on_delete=True))
pg_service = {"selector": pg_labels, "ports": [{"port": 5432, "targetPort": "pg", "name": "pg"}]}
pg_service.update({"type": "LoadBalancer"} if "k8s-public-database" in bad else {"type": "ClusterIP", "clusterIP": "None"})
k8s.core.v1.Service("pg", metadata=meta("pg", pg_labels), spec=pg_service, opts=opts(depends_on=[ns]))

# ---- backup: a ConfigMap script run by a CronJob against the pg Service
if "prod-db-without-backup" not in bad:
    script = k8s.core.v1.ConfigMap("pg-backup-script", metadata=meta("pg-backup-script"),
                                   data={"backup.sh": DUMP_SCRIPT}, opts=opts(depends_on=[ns]))
    dumps = k8s.core.v1.PersistentVolumeClaim(
        "pg-dumps", metadata=meta("pg-dumps"),
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}},
        opts=opts(depends_on=[ns]))
    k8s.batch.v1.CronJob(
        "pg-backup", metadata=meta("pg-backup"),
        spec={
            "schedule": "15 3 * * *", "concurrencyPolicy": "Forbid",
            **({"suspend": True} if "prod-backup-not-scheduled" in bad else {}),
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": {"spec": {
                "restartPolicy": "OnFailure", "securityContext": restricted(999),
                "automountServiceAccountToken": False,
                "containers": [{
                    "name": "backup", "image": POSTGRES, "command": ["sh", "/scripts/backup.sh"],
                    "env": [{"name": "PGHOST", "value": "pg.other" if "prod-backup-wrong-host" in bad else "pg"},
                            secret_env("PGPASSWORD", "pg-credentials", "POSTGRES_PASSWORD")],
                    "securityContext": dict(CONTAINER_SECURITY), "resources": resources(),
                    "volumeMounts": [{"name": "scripts", "mountPath": "/scripts"},
                                     {"name": "dumps", "mountPath": "/dumps"},
                                     {"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "scripts", "configMap": {"name": "pg-backup-script"}},
                            {"name": "dumps", "persistentVolumeClaim": {"claimName": "pg-dumps"}},
                            {"name": "tmp", "emptyDir": {}}],
            }}}},
        },
        opts=opts(depends_on=[ns, script, dumps, pg_secret]))
