"""Every rule: a compliant resource passes; changing one field produces the expected violation.

Args are the SDK's own ``ResourceValidationArgs`` / ``StackValidationArgs`` (see policy_harness),
so the rules run exactly the code path the analyzer server uses.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json

import pytest
from pulumi_policy import EnforcementLevel, StackValidationArgs

from policy_harness import resource_args, run_policy, stack_resources
from rules import RULE_MODULES, all_policies

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def docker_container(role="app", **over):
    props = {
        "name": "berth-dev-api",
        "image": "ghcr.io/easy-flow/api:1.4.0",
        "user": "10001:10001",
        "restart": "unless-stopped",
        "mustRun": True,
        "memory": 512,
        "memorySwap": 512,
        "readOnly": True,
        "capabilities": {"drops": ["ALL"]},
        "envs": ["LOG_LEVEL=info", "DATABASE_URL=postgresql://u:pw@db/app"],
        "labels": [
            {"label": "berth.role", "value": role},
            {"label": "berth.workload", "value": "api"},
            {"label": "berth.secret-envs", "value": "DATABASE_URL"},
        ],
        "volumes": [{"volumeName": "berth-dev-data", "containerPath": "/data"}],
        "healthcheck": {"tests": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8000/health"], "interval": "10s"},
    }
    props.update(over)
    return props


def proxy_container(**over):
    props = docker_container(role="proxy")
    props["labels"][1]["value"] = "proxy"
    props["ports"] = [{"internal": 8080, "external": 80, "ip": "0.0.0.0"}, {"internal": 8443, "external": 443}]
    props.update(over)
    return props


def pod_spec():
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "api",
            "image": "ghcr.io/easy-flow/api:1.4.0",
            "ports": [{"containerPort": 8000, "name": "http"}],
            "securityContext": {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
            "env": [{"name": "LOG_LEVEL", "value": "info"},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "api-env", "key": "DB_PASSWORD"}}},
                    {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "api-env", "key": "DATABASE_URL"}}}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def deployment(**spec_over):
    labels = {"app.kubernetes.io/name": "api", "app.kubernetes.io/component": "app"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec()}, **spec_over},
    }


def c0(p):
    return p["spec"]["template"]["spec"]["containers"][0]


def pod(p):
    return p["spec"]["template"]["spec"]


def ingress():
    return {"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"tls": [{"hosts": ["shop.example.com"], "secretName": "web-tls"}],
                     "rules": [{"host": "shop.example.com"}]}}


# (module, resource type, base props factory, mutation, expected fragment of the message)
RESOURCE_CASES = [
    ("docker_container_privileged", CONTAINER, docker_container, lambda p: p.update(privileged=True), "privileged=true"),
    ("docker_container_capabilities", CONTAINER, docker_container,
     lambda p: p.update(capabilities={"drops": ["ALL"], "adds": ["SYS_ADMIN"]}), "adds capabilities SYS_ADMIN"),
    ("docker_container_capabilities", CONTAINER, docker_container,
     lambda p: p.update(capabilities={"adds": ["CAP_NET_ADMIN"]}), "adds capabilities NET_ADMIN"),
    ("docker_container_host_namespaces", CONTAINER, docker_container, lambda p: p.update(networkMode="host"), "networkMode=host"),
    ("docker_container_host_namespaces", CONTAINER, docker_container, lambda p: p.update(pidMode="host"), "pidMode=host"),
    ("docker_container_host_namespaces", CONTAINER, docker_container, lambda p: p.update(ipcMode="host"), "ipcMode=host"),
    ("docker_container_host_mounts", CONTAINER, docker_container,
     lambda p: p["volumes"].append({"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}),
     "mounts host path '/var/run/docker.sock'"),
    ("docker_container_host_mounts", CONTAINER, docker_container,
     lambda p: p["volumes"].append({"hostPath": "/etc", "containerPath": "/host-etc"}), "host path '/etc'"),
    ("docker_container_host_mounts", CONTAINER, docker_container,
     lambda p: p.update(mounts=[{"type": "bind", "source": "/", "target": "/host"}]), "bind-mounts host path '/'"),
    ("docker_container_host_mounts", CONTAINER, docker_container,
     lambda p: p.update(mounts=[{"type": "bind", "source": "/proc/sys", "target": "/p"}]), "'/proc/sys'"),
    ("docker_container_published_ports", CONTAINER, lambda: docker_container(role="database"),
     lambda p: p.update(ports=[{"internal": 5432, "external": 5432, "ip": "127.0.0.1"}]),
     "database container 'api' publishes container port 5432 on host port 5432; only proxy may publish"),
    ("docker_container_published_ports", CONTAINER, proxy_container,
     lambda p: p["ports"].append({"internal": 9000, "external": 8081}), "publishes host port 8081"),
    ("docker_container_port_bind_address", CONTAINER, docker_container,
     lambda p: p.update(ports=[{"internal": 8000, "external": 8000}]), "all interfaces (ip unset = 0.0.0.0)"),
    ("docker_container_port_bind_address", CONTAINER, docker_container,
     lambda p: p.update(ports=[{"internal": 8000, "external": 8000, "ip": "0.0.0.0"}]), "all interfaces (0.0.0.0)"),
    ("docker_image_pinned", CONTAINER, docker_container, lambda p: p.update(image="nginx:latest"), "mutable tag ':latest'"),
    ("docker_image_pinned", CONTAINER, docker_container, lambda p: p.update(image="nginx"), "has no tag"),
    ("docker_image_pinned", REMOTE_IMAGE, lambda: {"name": "postgres:15", "keepLocally": True},
     lambda p: p.update(name="registry:5000/team/postgres"), "has no tag"),
    ("docker_image_pinned", REMOTE_IMAGE, lambda: {"name": "postgres@sha256:" + "a" * 64},
     lambda p: p.update(name="postgres:LATEST"), "mutable tag"),
    ("docker_container_plaintext_secret_env", CONTAINER, docker_container,
     lambda p: p["envs"].append("POSTGRES_PASSWORD=hunter2"), "sets POSTGRES_PASSWORD from a plain value"),
    ("docker_container_plaintext_secret_env", CONTAINER, docker_container,
     lambda p: p["envs"].append("STRIPE_API_KEY=sk_live"), "STRIPE_API_KEY"),
    ("docker_container_plaintext_secret_env", CONTAINER, docker_container,
     lambda p: p["envs"].append("DATABASE_URL=postgresql://u:changeme@db/app"),
     "sets DATABASE_URL 2 times: a literal value beside its secret one"),
    ("docker_container_plaintext_secret_env", CONTAINER, docker_container,
     lambda p: p.update(labels=[], envs=["LOG_LEVEL=info", "API_TOKEN=abc"]),
     "sets API_TOKEN from a plain value"),
    ("docker_container_non_root", CONTAINER, docker_container, lambda p: p.pop("user"), "runs as root (user unset)"),
    ("docker_container_non_root", CONTAINER, docker_container, lambda p: p.update(user="0:0"), "runs as root (user '0:0')"),
    ("docker_container_non_root", CONTAINER, docker_container, lambda p: p.update(user="root"), "runs as root"),
    ("docker_container_restart_policy", CONTAINER, docker_container, lambda p: p.pop("restart"), "restart policy 'unset (no)'"),
    ("docker_container_restart_policy", CONTAINER, docker_container, lambda p: p.update(restart="no"), "restart policy 'no'"),
    ("docker_container_healthcheck", CONTAINER, docker_container, lambda p: p.pop("healthcheck"), "has no health check"),
    ("docker_container_healthcheck", CONTAINER, docker_container, lambda p: p.update(healthcheck={"tests": ["NONE"]}),
     "container 'api' has no health check"),
    ("docker_container_memory_limit", CONTAINER, docker_container, lambda p: p.pop("memory"), "has no memory limit"),
    ("docker_container_memory_limit", CONTAINER, docker_container, lambda p: p.update(memory=0), "has no memory limit"),
    ("k8s_workload_privileged", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"].update(privileged=True), "container 'api' sets securityContext.privileged=true"),
    ("k8s_workload_privilege_escalation", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation=false"),
    ("k8s_workload_privilege_escalation", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation=false"),
    ("k8s_workload_run_as_non_root", DEPLOYMENT, deployment,
     lambda p: (c0(p)["securityContext"].pop("runAsNonRoot"), pod(p)["securityContext"].pop("runAsNonRoot")),
     "does not set runAsNonRoot=true"),
    ("k8s_workload_run_as_non_root", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"].update(runAsNonRoot=False), "does not set runAsNonRoot=true"),
    ("k8s_workload_run_as_non_root", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"].update(runAsUser=0), "runAsUser=0"),
    ("k8s_workload_capabilities", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "does not drop ALL capabilities"),
    ("k8s_workload_capabilities", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]), "adds capabilities SYS_ADMIN"),
    ("k8s_workload_seccomp", DEPLOYMENT, deployment,
     lambda p: pod(p)["securityContext"].pop("seccompProfile"), "seccompProfile type 'unset'"),
    ("k8s_workload_seccomp", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"].update(seccompProfile={"type": "Unconfined"}), "seccompProfile type 'Unconfined'"),
    ("k8s_workload_host_namespaces", DEPLOYMENT, deployment, lambda p: pod(p).update(hostNetwork=True), "hostNetwork=true"),
    ("k8s_workload_host_namespaces", DEPLOYMENT, deployment, lambda p: pod(p).update(hostPID=True), "hostPID=true"),
    ("k8s_workload_host_namespaces", DEPLOYMENT, deployment, lambda p: pod(p).update(hostIPC=True), "hostIPC=true"),
    ("k8s_workload_host_namespaces", DEPLOYMENT, deployment,
     lambda p: c0(p)["ports"][0].update(hostPort=8000), "binds hostPort 8000"),
    ("k8s_workload_host_path", DEPLOYMENT, deployment,
     lambda p: pod(p)["volumes"].append({"name": "host", "hostPath": {"path": "/var/log"}}), "mounts hostPath '/var/log'"),
    ("k8s_workload_resources", DEPLOYMENT, deployment, lambda p: c0(p).pop("resources"),
     "missing resources requests.cpu, requests.memory, limits.cpu, limits.memory"),
    ("k8s_workload_resources", DEPLOYMENT, deployment, lambda p: c0(p)["resources"]["limits"].pop("memory"),
     "missing resources limits.memory"),
    ("k8s_workload_probes", DEPLOYMENT, deployment, lambda p: c0(p).pop("readinessProbe"), "has no readinessProbe"),
    ("k8s_workload_probes", DEPLOYMENT, deployment,
     lambda p: (c0(p).pop("readinessProbe"), c0(p).pop("livenessProbe")), "has no readinessProbe or livenessProbe"),
    ("k8s_workload_image_pinned", DEPLOYMENT, deployment, lambda p: c0(p).update(image="redis:latest"), "mutable tag ':latest'"),
    ("k8s_workload_image_pinned", DEPLOYMENT, deployment, lambda p: c0(p).update(image="redis"), "has no tag"),
    ("k8s_workload_plaintext_secret_env", DEPLOYMENT, deployment,
     lambda p: c0(p)["env"].append({"name": "DB_PASSWORD", "value": "hunter2"}),
     "sets DB_PASSWORD as a literal `value` beside a valueFrom.secretKeyRef entry"),
    ("k8s_workload_plaintext_secret_env", DEPLOYMENT, deployment,
     lambda p: c0(p)["env"].append({"name": "API_TOKEN", "value": "abc"}), "sets API_TOKEN as a literal `value`"),
    ("k8s_workload_plaintext_secret_env", DEPLOYMENT, deployment,
     lambda p: c0(p)["env"].append({"name": "DATABASE_URL", "value": "postgresql://u:pw@db/app"}),
     "sets DATABASE_URL as a literal `value` beside a valueFrom.secretKeyRef entry"),
    ("k8s_workload_read_only_root", DEPLOYMENT, deployment,
     lambda p: c0(p)["securityContext"].pop("readOnlyRootFilesystem"), "writable root filesystem"),
    ("k8s_ingress_tls", "kubernetes:networking.k8s.io/v1:Ingress", ingress, lambda p: p["spec"].pop("tls"), "has no spec.tls"),
    ("k8s_ingress_tls", "kubernetes:networking.k8s.io/v1:Ingress", ingress,
     lambda p: p["spec"]["rules"].append({"host": "admin.example.com"}), "routes host 'admin.example.com' without a TLS entry"),
]


def _module(name):
    return importlib.import_module(f"rules.{name}")


def test_every_rule_module_is_in_the_pack_and_names_are_unique():
    names = [p.name for p in all_policies()]
    assert len(names) == len(set(names)) == len(RULE_MODULES)
    for p in all_policies():
        assert p.description.endswith("."), p.name
        assert p.remediation_steps, p.name
        assert p.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY)
        assert p.name.split("-")[0] in ("docker", "k8s", "stack"), p.name


@pytest.mark.parametrize("module", sorted({c[0] for c in RESOURCE_CASES}))
def test_resource_rule_accepts_compliant(module):
    for case in [c for c in RESOURCE_CASES if c[0] == module]:
        _, typ, base, _, _ = case
        assert run_policy(_module(module).policy, resource_args(typ, base())) == []


@pytest.mark.parametrize("module,typ,base,mutate,expected", RESOURCE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RESOURCE_CASES)])
def test_resource_rule_blocks_one_field_change(module, typ, base, mutate, expected):
    policy = _module(module).policy
    props = copy.deepcopy(base())
    mutate(props)
    messages = run_policy(policy, resource_args(typ, props))
    assert messages, f"{policy.name} let {props} through"
    assert any(expected in m for m in messages), messages
    assert all("Fix: " in m for m in messages)  # the server prepends the description (see test_policy_grpc)


def test_resource_rules_ignore_other_types():
    for policy in all_policies():
        if hasattr(policy, "remediate"):
            assert run_policy(policy, resource_args("random:index/randomPassword:RandomPassword", {"length": 32})) == []


def test_secret_env_rule_skips_unknown_values_in_preview():
    props = docker_container()
    props["envs"].append("POSTGRES_PASSWORD=<<berth:password:db>>")
    props["labels"][2]["value"] = "DATABASE_URL,POSTGRES_PASSWORD"
    assert run_policy(_module("docker_container_plaintext_secret_env").policy,
                      resource_args(CONTAINER, props, preview=True)) == []


def test_secret_env_rule_catches_a_literal_beside_an_unknown_secret_in_preview():
    """In preview the secret entry is wholly unknown; the literal beside it is known."""
    rule = _module("docker_container_plaintext_secret_env").policy
    props = docker_container()
    props["envs"].append("DB_PASSWORD=<<berth:password:db>>")
    props["labels"][2]["value"] = "DATABASE_URL,DB_PASSWORD"
    assert run_policy(rule, resource_args(CONTAINER, props, preview=True)) == []
    props["envs"].append("DB_PASSWORD=changeme")
    messages = run_policy(rule, resource_args(CONTAINER, props, preview=True))
    assert len(messages) == 1 and "DB_PASSWORD from a literal value beside its secret one" in messages[0], messages
    assert "changeme" not in messages[0]
    assert any("sets DB_PASSWORD 2 times" in m for m in run_policy(rule, resource_args(CONTAINER, props)))


def test_secret_reference_beats_allowed_names():
    """A name allow-listed as 'not a secret' is still refused as a literal beside its own secretKeyRef."""
    rule = _module("k8s_workload_plaintext_secret_env").policy
    props = deployment()
    c0(props)["env"].append({"name": "DB_PASSWORD", "value": "hunter2"})
    messages = run_policy(rule, resource_args(DEPLOYMENT, props, config={"allowedNames": ["DB_PASSWORD"]}))
    assert len(messages) == 1 and "beside a valueFrom.secretKeyRef" in messages[0]


def test_image_rule_accepts_digests_and_image_ids():
    rule = _module("docker_image_pinned").policy
    for image in ("sha256:" + "b" * 64, "nginx@sha256:" + "c" * 64, "localhost:5000/app:1.2"):
        assert run_policy(rule, resource_args(CONTAINER, docker_container(image=image))) == []


def test_config_allow_lists():
    caps = _module("docker_container_capabilities").policy
    props = docker_container(capabilities={"drops": ["ALL"], "adds": ["SYS_PTRACE"]})
    assert run_policy(caps, resource_args(CONTAINER, props, config={"allowedCapabilities": ["SYS_PTRACE"]})) == []
    ports = _module("docker_container_published_ports").policy
    props = proxy_container()
    props["ports"].append({"internal": 9000, "external": 8081})
    assert run_policy(ports, resource_args(CONTAINER, props, config={"allowedHostPorts": [80, 443, 8081]})) == []
    root = _module("docker_container_non_root").policy
    props = docker_container()
    props.pop("user")
    assert run_policy(root, resource_args(CONTAINER, props, config={"allowRootWorkloads": ["api"]})) == []
    props["labels"].append({"label": "berth.run-as-root", "value": "true"})
    assert run_policy(root, resource_args(CONTAINER, props)) == []
    secrets = _module("docker_container_plaintext_secret_env").policy
    props = docker_container()
    props["envs"].append("CACHE_KEY_PREFIX=app")
    assert run_policy(secrets, resource_args(CONTAINER, props, config={"allowedNames": ["CACHE_KEY_PREFIX"]})) == []
    assert run_policy(secrets, resource_args(CONTAINER, props))


def test_one_shot_container_needs_no_restart_policy():
    rule = _module("docker_container_restart_policy").policy
    assert run_policy(rule, resource_args(CONTAINER, docker_container(restart="no", mustRun=False))) == []


def test_one_shot_or_allowed_container_needs_no_healthcheck():
    rule = _module("docker_container_healthcheck").policy
    props = docker_container(restart="no", mustRun=False)
    props.pop("healthcheck")
    assert run_policy(rule, resource_args(CONTAINER, props)) == []
    props = docker_container()
    props.pop("healthcheck")
    assert run_policy(rule, resource_args(CONTAINER, props, config={"allowWorkloads": ["api"]})) == []
    assert run_policy(rule, resource_args(CONTAINER, props, config={"allowWorkloads": ["web"]}))


def test_probes_not_required_for_portless_workers_unless_configured():
    rule = _module("k8s_workload_probes").policy
    props = deployment()
    c0(props).pop("ports")
    c0(props).pop("readinessProbe")
    c0(props).pop("livenessProbe")
    assert run_policy(rule, resource_args(DEPLOYMENT, props)) == []
    assert run_policy(rule, resource_args(DEPLOYMENT, props, config={"requireForContainersWithoutPorts": True}))


def test_k8s_rules_read_cronjob_and_pod_templates():
    rule = _module("k8s_workload_privileged").policy
    spec = pod_spec()
    spec["containers"][0]["securityContext"]["privileged"] = True
    cron = {"metadata": {"name": "backup"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    assert run_policy(rule, resource_args("kubernetes:batch/v1:CronJob", cron))
    assert run_policy(rule, resource_args("kubernetes:core/v1:Pod", {"metadata": {"name": "p"}, "spec": spec}))
    spec2 = pod_spec()
    spec2["initContainers"] = [dict(spec["containers"][0], name="init")]
    assert run_policy(rule, resource_args("kubernetes:batch/v1:Job", {"spec": {"template": {"spec": spec2}}}))


# ------------------------------------------------------------------------------- stack rules

def R(typ, name, props, *, component=None, stack="prod", protect=False, deps=()):
    chain = f"berth:index:{component}${typ}" if component else typ
    return {"urn": f"urn:pulumi:{stack}::berth::{chain}::{name}", "type": typ, "name": name, "custom": True,
            "inputs": props, "protect": protect, "dependsOn": list(deps)}


CRONJOB = "kubernetes:batch/v1:CronJob"
BACKUP_SH = """#!/bin/bash
set -euo pipefail
PGPASSWORD="$DB_PASSWORD" pg_dump --format=custom -h "$DB_HOST" -U app -d app -f "/backups/$1.dump"
"""
RESTORE_SH = """#!/bin/bash
PGPASSWORD="$DB_PASSWORD" pg_restore --clean -h "$DB_HOST" -U app -d app "$1"
"""


def backup_pod_spec():
    spec = pod_spec()
    c = spec["containers"][0]
    for k in ("ports", "readinessProbe", "livenessProbe"):
        c.pop(k)
    c.update(name="backup", image="postgres:15", args=["bash", "/berth/backup.sh", "daily", "7"],
             env=[{"name": "DB_HOST", "value": "db"},
                  {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-backup-env", "key": "DB_PASSWORD"}}}],
             volumeMounts=[{"name": "files", "mountPath": "/berth/backup.sh", "subPath": "backup.sh"},
                           {"name": "files", "mountPath": "/berth/restore.sh", "subPath": "restore.sh"}])
    spec["volumes"] = [{"name": "files", "configMap": {"name": "db-backup-files"}}]
    spec["restartPolicy"] = "OnFailure"
    return spec


def backup_cronjob():
    return {"metadata": {"name": "db-backup", "namespace": "shop"},
            "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": backup_pod_spec()}}}}}


def cron_container(rs):
    return find(rs, "db-backup")["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def backup_scheduler():
    props = docker_container(role="backup", image="postgres:15", name="berth-prod-db-backup", hostname="db-backup",
                             command=["supercronic", "/berth/crontab"],
                             envs=["DB_HOST=db", "DB_PASSWORD=x"],
                             uploads=[{"file": "/berth/crontab", "content": "0 2 * * * bash /berth/backup.sh daily 7\n"},
                                      {"file": "/berth/backup.sh", "content": BACKUP_SH, "executable": True},
                                      {"file": "/berth/restore.sh", "content": RESTORE_SH, "executable": True}],
                             volumes=[{"volumeName": "berth-prod-db-backups", "containerPath": "/backups"}])
    props["labels"][1]["value"] = "db-backup"
    props["labels"][2]["value"] = "DB_PASSWORD"
    return props


def set_envs(props, name, value):
    props["envs"] = [e for e in props["envs"] if not e.startswith(name + "=")] + [f"{name}={value}"]


def k8s_stack(stack="prod"):
    db_labels = {"app.kubernetes.io/name": "db", "app.kubernetes.io/component": "database"}
    db_spec = pod_spec()
    db_spec["containers"][0].update(
        name="db", image="postgres:15",
        env=[{"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-env", "key": "POSTGRES_PASSWORD"}}}])
    hpa = {"metadata": {"name": "api", "namespace": "shop"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"}, "minReplicas": 3, "maxReplicas": 5}}
    api = deployment()
    api["spec"].pop("replicas")
    return [
        {"urn": f"urn:pulumi:{stack}::berth::berth:index:Database::db", "type": "berth:index:Database", "name": "db",
         "custom": False, "inputs": {}},
        R("kubernetes:core/v1:ConfigMap", "db-backup-files",
          {"metadata": {"name": "db-backup-files", "namespace": "shop"},
           "data": {"backup.sh": BACKUP_SH, "restore.sh": RESTORE_SH}}, component="BackupJob", stack=stack),
        R(CRONJOB, "db-backup", backup_cronjob(), component="BackupJob", stack=stack),
        R("kubernetes:core/v1:Namespace", "ns", {"metadata": {"name": "shop"}}, component="Platform", stack=stack, protect=True),
        R("kubernetes:networking.k8s.io/v1:NetworkPolicy", "default-deny",
          {"metadata": {"name": "default-deny", "namespace": "shop"},
           "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}, component="Platform", stack=stack),
        R(DEPLOYMENT, "api-deployment", api, component="AppService", stack=stack),
        R("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "api-hpa", hpa, component="AppService", stack=stack),
        R("kubernetes:policy/v1:PodDisruptionBudget", "api-pdb",
          {"metadata": {"name": "api", "namespace": "shop"},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}}}},
          component="AppService", stack=stack),
        R("kubernetes:apps/v1:StatefulSet", "db-statefulset",
          {"metadata": {"name": "db", "namespace": "shop", "labels": db_labels},
           "spec": {"replicas": 1, "template": {"metadata": {"labels": db_labels}, "spec": db_spec}}},
          component="Database", stack=stack, protect=True),
        R("kubernetes:core/v1:Service", "db-service",
          {"metadata": {"name": "db", "namespace": "shop", "labels": db_labels},
           "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": "db"}}}, component="Database", stack=stack),
    ]


def docker_stack(stack="prod"):
    db = docker_container(role="database", image="sha256:" + "d" * 64, name="berth-prod-db", hostname="db",
                          envs=["POSTGRES_USER=app", "POSTGRES_PASSWORD=x"],
                          networksAdvanced=[{"name": "berth-prod-internal", "aliases": ["db"]}],
                          volumes=[{"volumeName": "berth-prod-db-data", "containerPath": "/var/lib/postgresql/data"}])
    db["labels"][1]["value"] = "db"
    db["labels"][2]["value"] = "POSTGRES_PASSWORD"
    grafana = docker_container(role="monitoring", image="grafana/grafana:11.2.2",
                               envs=["GF_SECURITY_ADMIN_PASSWORD=y"])
    grafana["labels"][2]["value"] = "GF_SECURITY_ADMIN_PASSWORD"
    img = R(REMOTE_IMAGE, "image-postgres-15", {"name": "postgres:15"}, component="Platform", stack=stack)
    return [
        {"urn": f"urn:pulumi:{stack}::berth::berth:index:Database::db", "type": "berth:index:Database", "name": "db",
         "custom": False, "inputs": {}},
        img,
        R("docker:index/volume:Volume", "db-data", {"name": "berth-prod-db-data"}, component="Database", stack=stack,
          protect=True),
        R(CONTAINER, "db", db, component="Database", stack=stack, deps=[img["urn"]]),
        R(CONTAINER, "db-backup", backup_scheduler(), component="BackupJob", stack=stack),
        R(CONTAINER, "grafana", grafana, component="Monitoring", stack=stack),
    ]


def find(resources, name):
    """The custom resource named ``name`` (a component may share the name)."""
    return next(r for r in resources if r["name"] == name and r.get("custom", True))


def set_service_type(rs, typ):
    find(rs, "db-service")["inputs"]["spec"]["type"] = typ


def db_env(rs):
    return find(rs, "db-statefulset")["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]


# (module, stack factory, mutation, config, expected fragment)
STACK_CASES = [
    ("k8s_service_no_public_datastore", k8s_stack, lambda rs: set_service_type(rs, "LoadBalancer"), {},
     "Service 'db' of type LoadBalancer exposes a datastore"),
    ("k8s_service_no_public_datastore", k8s_stack, lambda rs: (
        set_service_type(rs, "NodePort"), find(rs, "db-service")["inputs"]["metadata"].pop("labels")), {},
     "StatefulSet 'db' (database)"),
    ("k8s_namespace_default_deny", k8s_stack, lambda rs: rs.remove(find(rs, "default-deny")), {},
     "namespace 'shop' has no default-deny NetworkPolicy"),
    ("k8s_namespace_default_deny", k8s_stack,
     lambda rs: find(rs, "default-deny")["inputs"]["spec"].update(policyTypes=["Ingress"]), {},
     "namespace 'shop' has no default-deny"),
    ("k8s_deployment_replicas_prod", k8s_stack, lambda rs: rs.remove(find(rs, "api-hpa")), {},
     "Deployment 'api' runs 1 replica in prod"),
    ("k8s_deployment_pod_disruption_budget", k8s_stack, lambda rs: rs.remove(find(rs, "api-pdb")), {},
     "Deployment 'api' (autoscaled) has no PodDisruptionBudget"),
    ("stack_database_storage_protected", k8s_stack, lambda rs: find(rs, "db-statefulset").update(protect=False), {},
     "StatefulSet 'db' of Database 'db-statefulset' is not protected"),
    ("stack_database_storage_protected", k8s_stack, lambda rs: find(rs, "db-statefulset")["inputs"]["spec"].update(
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"}), {}, "whenDeleted=Delete"),
    ("stack_database_storage_protected", docker_stack, lambda rs: find(rs, "db-data").update(protect=False), {},
     "docker Volume 'berth-prod-db-data' of Database 'db-data' is not protected"),
    ("stack_database_has_backup", k8s_stack, lambda rs: rs.remove(find(rs, "db-backup")), {},
     "StatefulSet 'db' (postgres) has no backup schedule"),
    ("stack_database_has_backup", k8s_stack, lambda rs: cron_container(rs)["env"][0].update(value="db-old"), {},
     "runs pg_dump against db-old"),
    ("stack_database_has_backup", k8s_stack, lambda rs: cron_container(rs)["env"][0].update(value="db.staging"), {},
     "StatefulSet 'db' (postgres) has no backup schedule"),
    ("stack_database_has_backup", k8s_stack, lambda rs: find(rs, "db-backup")["inputs"]["spec"].update(suspend=True),
     {}, "schedules seen: none"),
    ("stack_database_has_backup", k8s_stack,
     lambda rs: find(rs, "db-backup-files")["inputs"]["data"].update({"backup.sh": "echo skipped"}), {},
     "CronJob 'db-backup' runs no dump tool against db"),
    ("stack_database_has_backup", k8s_stack,
     lambda rs: cron_container(rs).update(args=["bash", "/berth/restore.sh", "latest"]), {},
     "CronJob 'db-backup' runs no dump tool"),
    ("stack_database_has_backup", docker_stack, lambda rs: rs.remove(find(rs, "db-backup")), {},
     "container 'berth-prod-db' (postgres) has no backup schedule"),
    ("stack_database_has_backup", docker_stack, lambda rs: find(rs, "db-backup")["inputs"].update(mustRun=False), {},
     "schedules seen: none"),
    ("stack_database_has_backup", docker_stack,
     lambda rs: find(rs, "db-backup")["inputs"].update(command=["bash", "/berth/backup.sh", "daily", "7"]), {},
     "schedules seen: none"),
    ("stack_database_has_backup", docker_stack, lambda rs: set_envs(find(rs, "db-backup")["inputs"], "DB_HOST", "db2"),
     {}, "container 'berth-prod-db-backup' runs pg_dump against db2"),
    ("stack_database_has_backup", docker_stack,
     lambda rs: find(rs, "image-postgres-15")["inputs"].update(name="mongo:7.0"), {},
     "container 'berth-prod-db' (mongo) has no backup schedule: no CronJob or cron container runs mongodump"),
    ("stack_credentials_are_secrets", docker_stack,
     lambda rs: find(rs, "db")["inputs"]["labels"][2].update(value=""), {},
     "sets POSTGRES_PASSWORD as a literal value"),
    ("stack_credentials_are_secrets", docker_stack,
     lambda rs: find(rs, "grafana")["inputs"].update(envs=["GF_SECURITY_ADMIN_USER=admin"], labels=[
         {"label": "berth.role", "value": "monitoring"}]), {},
     "(grafana) sets none of GF_SECURITY_ADMIN_PASSWORD"),
    ("stack_credentials_are_secrets", docker_stack,
     lambda rs: find(rs, "db")["inputs"]["envs"].append("POSTGRES_HOST_AUTH_METHOD=trust"), {},
     "POSTGRES_HOST_AUTH_METHOD=trust"),
    ("stack_credentials_are_secrets", k8s_stack,
     lambda rs: db_env(rs).__setitem__(0, {"name": "POSTGRES_PASSWORD", "value": "hunter2"}), {},
     "(postgres) sets POSTGRES_PASSWORD as a literal value"),
]


def _stack_messages(module, resources, config=None):
    args = StackValidationArgs(stack_resources(resources), config or {})
    return run_policy(_module(module).policy, args)


@pytest.mark.parametrize("module", sorted({c[0] for c in STACK_CASES}))
def test_stack_rule_accepts_compliant(module):
    for factory in {c[1] for c in STACK_CASES if c[0] == module}:
        assert _stack_messages(module, factory()) == []


@pytest.mark.parametrize("module,factory,mutate,config,expected", STACK_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(STACK_CASES)])
def test_stack_rule_blocks_one_change(module, factory, mutate, config, expected):
    resources = factory()
    mutate(resources)
    messages = _stack_messages(module, resources, config)
    assert any(expected in m for m in messages), messages


def test_prod_only_rules_are_silent_outside_prod():
    for module, mutate in [
        ("stack_database_has_backup", lambda rs: rs.remove(find(rs, "db-backup"))),
        ("stack_database_storage_protected", lambda rs: find(rs, "db-statefulset").update(protect=False)),
        ("k8s_deployment_replicas_prod", lambda rs: rs.remove(find(rs, "api-hpa"))),
    ]:
        rs = k8s_stack(stack="dev")
        mutate(rs)
        assert _stack_messages(module, rs) == []
        # the policy config wins over the stack name, both ways
        assert _stack_messages(module, rs, {"environment": "prod"})
        rs_prod = k8s_stack(stack="prod")
        mutate(rs_prod)
        assert _stack_messages(module, rs_prod, {"environment": "dev"}) == []


def test_stack_config_environment_is_read_from_the_cli_env(monkeypatch):
    """The CLI passes the stack config to the policy process as PULUMI_CONFIG (see README)."""
    rs = k8s_stack(stack="staging")
    rs.remove(find(rs, "db-backup"))
    assert _stack_messages("stack_database_has_backup", rs) == []
    monkeypatch.setenv("PULUMI_CONFIG", '{"berth:environment": "prod"}')
    assert _stack_messages("stack_database_has_backup", rs)


def test_singleton_and_exemption_config():
    rs = k8s_stack()
    rs.remove(find(rs, "api-hpa"))
    assert _stack_messages("k8s_deployment_replicas_prod", rs, {"singletonWorkloads": ["api"]}) == []
    rs = k8s_stack()
    rs.remove(find(rs, "db-backup"))
    assert _stack_messages("stack_database_has_backup", rs, {"exemptDatabases": ["db"]}) == []


# --------------------------------------------- backups, storage and credentials judged without Berth's names

def without_berth_names(rs):
    """The same stack as a hand-written program would declare it: no berth.* labels, no Berth component
    parents, no app.kubernetes.io/component labels; the Berth component resources themselves dropped."""
    out = []
    for r in copy.deepcopy(rs):
        if r["type"].startswith("berth:"):
            continue
        stack, project = r["urn"].split("::")[0], r["urn"].split("::")[1]
        r["urn"] = f"{stack}::{project}::{r['type']}::{r['name']}"
        r["dependsOn"] = [f"{d.split('::')[0]}::{d.split('::')[1]}::{d.split('::')[2].split('$')[-1]}::{d.split('::')[3]}"
                          for d in r.get("dependsOn", [])]
        inputs = r["inputs"]
        if isinstance(inputs.get("labels"), list):
            inputs["labels"] = [l for l in inputs["labels"] if not l["label"].startswith("berth.")]
        _drop_component_labels(inputs)
        out.append(r)
    return out


def _drop_component_labels(value):
    if isinstance(value, dict):
        value.pop("app.kubernetes.io/component", None)
        for v in value.values():
            _drop_component_labels(v)
    elif isinstance(value, list):
        for v in value:
            _drop_component_labels(v)


@pytest.mark.parametrize("factory", [k8s_stack, docker_stack])
def test_backup_rule_needs_no_berth_labels_or_components(factory):
    rs = without_berth_names(factory())
    assert not any("berth." in json.dumps(r["inputs"]) or "berth:index" in r["urn"] for r in rs)
    assert _stack_messages("stack_database_has_backup", rs) == []
    rs.remove(find(rs, "db-backup"))
    assert [m for m in _stack_messages("stack_database_has_backup", rs) if "has no backup schedule" in m]


def test_backup_script_written_by_an_init_container():
    """The script may stop being a ConfigMap file: an init container writes it into an emptyDir."""
    rs = k8s_stack()
    rs.remove(find(rs, "db-backup-files"))
    spec = find(rs, "db-backup")["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "scripts", "emptyDir": {}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "scripts", "mountPath": "/berth"}]
    spec["initContainers"] = [dict(copy.deepcopy(spec["containers"][0]), name="write-scripts", args=None,
                                   command=["sh", "-c", "printf '%s' \"$BACKUP_SCRIPT\" > /berth/backup.sh"],
                                   env=[{"name": "BACKUP_SCRIPT", "value": BACKUP_SH}])]
    assert _stack_messages("stack_database_has_backup", rs) == []
    spec["initContainers"][0]["env"][0]["value"] = "echo nothing to do"
    assert _stack_messages("stack_database_has_backup", rs)


def test_backup_script_in_a_volume_written_by_a_one_shot_docker_container():
    """Docker's generated files may move from `uploads` into a volume written by a one-shot container."""
    rs = docker_stack()
    sched = find(rs, "db-backup")["inputs"]
    uploads = sched.pop("uploads")
    sched["volumes"].append({"volumeName": "berth-prod-db-backup-files", "containerPath": "/berth", "readOnly": True})
    writer = docker_container(role="init", image="busybox:1.36", name="berth-prod-db-backup-files", restart="no",
                              mustRun=False, uploads=[dict(u, file="/src" + u["file"][len("/berth"):]) for u in uploads],
                              command=["sh", "-c", "cp /src/* /berth/"],
                              volumes=[{"volumeName": "berth-prod-db-backup-files", "containerPath": "/berth"}])
    rs.append(R(CONTAINER, "db-backup-files", writer, stack="prod"))
    assert _stack_messages("stack_database_has_backup", rs) == []
    writer["volumes"] = [{"volumeName": "elsewhere", "containerPath": "/berth"}]
    assert _stack_messages("stack_database_has_backup", rs)


def test_backup_host_from_the_plain_env_labels_when_the_env_list_is_unknown_at_preview():
    """At preview the real engine sends an env list holding one generated password as unknown (it
    is absent from the inputs); Berth's `berth.env.NAME` labels still carry the plain variables."""
    rs = docker_stack()
    sched = find(rs, "db-backup")["inputs"]
    env = dict(e.split("=", 1) for e in sched.pop("envs"))
    assert _stack_messages("stack_database_has_backup", rs), "no host: not a schedule of this database"
    sched["labels"] = [*sched.get("labels", []), *({"label": f"berth.env.{k}", "value": f"{k}={v}"}
                                                    for k, v in env.items() if "PASSWORD" not in k)]
    assert _stack_messages("stack_database_has_backup", rs) == []


@pytest.mark.parametrize("how", ["secret volume", "projected volume", "inline command", "connection URI",
                                 "deployment cron loop"])
def test_backup_found_whichever_way_the_dump_reaches_the_cronjob(how):
    rs = k8s_stack()
    job = find(rs, "db-backup")
    spec = job["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    if how == "secret volume":
        cm = find(rs, "db-backup-files")
        rs.remove(cm)
        rs.append(R("kubernetes:core/v1:Secret", "db-backup-scripts",
                    {"metadata": {"name": "db-backup-scripts", "namespace": "shop"},
                     "data": {"backup.sh": base64.b64encode(BACKUP_SH.encode()).decode()}}))
        spec["volumes"] = [{"name": "files", "secret": {"secretName": "db-backup-scripts"}}]
        c["volumeMounts"] = [{"name": "files", "mountPath": "/berth"}]
    elif how == "projected volume":
        spec["volumes"] = [{"name": "files", "projected": {"sources": [{"configMap": {
            "name": "db-backup-files", "items": [{"key": "backup.sh", "path": "run/backup.sh"}]}}]}}]
        c["volumeMounts"] = [{"name": "files", "mountPath": "/opt"}]
        c["args"] = ["bash", "/opt/run/backup.sh", "daily"]
    elif how == "inline command":
        c.update(command=["sh", "-c"], args=["PGPASSWORD=$DB_PASSWORD pg_dumpall -h $(DB_HOST) > /backups/all.sql"])
    elif how == "connection URI":
        c.update(args=["sh", "-c", 'pg_dump "$DATABASE_URL" -Fc -f /backups/app.dump'],
                 env=[{"name": "DATABASE_URL", "value": "postgresql://backup@db.shop.svc.cluster.local:5432/app"}])
    elif how == "deployment cron loop":
        rs.remove(job)
        c.update(args=["sh", "-c", "while true; do bash /berth/backup.sh daily 7; sleep 86400; done"])
        rs.append(R(DEPLOYMENT, "db-backup-loop", {"metadata": {"name": "db-backup-loop", "namespace": "shop"},
                                                    "spec": {"template": {"spec": spec}}}))
    assert _stack_messages("stack_database_has_backup", rs) == [], how


def test_a_streaming_replica_is_covered_by_its_primary():
    rs = k8s_stack()
    replica = copy.deepcopy(find(rs, "db-statefulset"))
    replica["name"] = "db-replica-statefulset"
    replica["urn"] = replica["urn"].replace("::db-statefulset", "::db-replica-statefulset")
    replica["inputs"]["metadata"]["name"] = "db-replica"
    c = replica["inputs"]["spec"]["template"]["spec"]["containers"][0]
    c["command"] = ["sh", "-c", 'pg_basebackup -h "$PRIMARY_HOST" -D "$PGDATA" -X stream -R && exec postgres']
    c["env"].append({"name": "PRIMARY_HOST", "value": "db"})
    rs.append(replica)
    assert _stack_messages("stack_database_has_backup", rs) == []
    rs.remove(find(rs, "db-backup"))
    messages = _stack_messages("stack_database_has_backup", rs)
    assert len(messages) == 1 and messages[0].startswith("StatefulSet 'db' (postgres)"), messages


def test_backup_images_and_exemptions_by_host_name():
    rs = k8s_stack()
    c = cron_container(rs)
    c.update(image="prodrigestivill/postgres-backup-local:16", args=None)
    c.pop("volumeMounts")
    assert _stack_messages("stack_database_has_backup", rs)
    assert _stack_messages("stack_database_has_backup", rs,
                           {"backupImages": ["prodrigestivill/postgres-backup-local"]}) == []
    rs.remove(find(rs, "db-backup"))
    assert _stack_messages("stack_database_has_backup", rs, {"exemptDatabases": ["db-0"]}) == []


def test_database_image_clients_are_not_databases():
    """A one-shot or a scheduler that uses the database image for its client tools is no database."""
    rs = docker_stack()
    restore = docker_container(image="postgres:15", name="berth-prod-db-restore",
                               command=["bash", "/berth/restore.sh", "latest"])
    rs.append(R(CONTAINER, "db-restore", restore))
    assert _stack_messages("stack_database_has_backup", rs) == []
    assert len(_stack_messages("stack_database_has_backup", rs + [
        R(CONTAINER, "db2", docker_container(image="postgres:15", name="db2"))])) == 1


@pytest.mark.parametrize("factory", [k8s_stack, docker_stack])
def test_storage_rule_judges_databases_without_berth_names(factory):
    rs = without_berth_names(factory())
    assert _stack_messages("stack_database_storage_protected", rs) == []
    for r in rs:
        r["protect"] = False
    messages = _stack_messages("stack_database_storage_protected", rs)
    assert messages and all("(postgres) is not protected" in m for m in messages), messages


def test_credentials_and_public_datastore_rules_judge_unlabelled_databases():
    rs = without_berth_names(k8s_stack())
    assert _stack_messages("stack_credentials_are_secrets", rs) == []
    assert _stack_messages("k8s_service_no_public_datastore", rs) == []
    db_env(rs)[0] = {"name": "POSTGRES_PASSWORD", "value": "hunter2"}
    assert any("sets POSTGRES_PASSWORD as a literal value" in m
               for m in _stack_messages("stack_credentials_are_secrets", rs))
    set_service_type(rs, "LoadBalancer")
    assert any("StatefulSet 'db' (runs a database server)" in m
               for m in _stack_messages("k8s_service_no_public_datastore", rs))
    # Docker: without the berth.secret-envs label nothing vouches for an env value, so both count as literals.
    messages = _stack_messages("stack_credentials_are_secrets", without_berth_names(docker_stack()))
    assert len(messages) == 2 and all("as a literal value" in m for m in messages), messages
    assert {m.split(" (")[0] for m in messages} == {"database container 'db'", "monitoring container 'grafana'"}


def test_backup_rule_skips_labelled_databases_of_unknown_engines():
    """Neo4j (Berth's `graphs`) is labelled a database but has no dump tool the rule knows: not judged."""
    rs = k8s_stack()
    rs.remove(find(rs, "db-backup"))
    c = find(rs, "db-statefulset")["inputs"]["spec"]["template"]["spec"]["containers"][0]
    c["image"] = "neo4j:4.4"
    assert _stack_messages("stack_database_has_backup", rs) == []
    assert _stack_messages("stack_database_storage_protected", rs) == []
    find(rs, "db-statefulset")["protect"] = False
    assert _stack_messages("stack_database_storage_protected", rs)
