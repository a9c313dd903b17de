"""The whole pack over the stacks the real program declares (``berth.record``), and insecure variants.

The recorded dev (Docker) and prod (Kubernetes) stacks must pass with zero mandatory violations, both
as ``pulumi up`` sees them and as ``pulumi preview`` does (generated secrets unknown). Each variant
changes one thing in the recorded inputs the way a bad component change or stack config would, and
must be blocked by a mandatory violation of the named rule.
"""

from __future__ import annotations

import copy
import functools

import pytest

from berth.record import record
from policy_harness import mandatory, run_pack


@functools.lru_cache(maxsize=None)
def _recorded(stack):
    return tuple(r.to_json() for r in record(stack).resources)


def recorded(stack):
    return copy.deepcopy(list(_recorded(stack)))


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_recorded_stack_has_no_mandatory_violation(stack, preview):
    violations = run_pack(recorded(stack), preview=preview)
    assert mandatory(violations) == [], "\n".join(map(str, mandatory(violations)))


def test_recorded_prod_advisories_are_known():
    """Advisories don't block; these are the ones the current prod stack gets (see README)."""
    advisories = {(v.policy, v.urn.rsplit("::", 1)[-1]) for v in run_pack(recorded("prod"))}
    assert advisories <= {
        ("k8s-deployment-multiple-replicas-in-prod", "beat-deployment"),
        ("k8s-deployment-multiple-replicas-in-prod", "db-exporter-deployment"),
        ("k8s-deployment-multiple-replicas-in-prod", "redis-exporter-deployment"),
    }, advisories


# ------------------------------------------------------------------------------ variants

def one(rs, type_suffix, name):
    matches = [r for r in rs if r["type"].endswith(type_suffix) and r["name"] == name]
    assert len(matches) == 1, (type_suffix, name, [r["name"] for r in rs if r["type"].endswith(type_suffix)])
    return matches[0]


def container(rs, name):
    return one(rs, "container:Container", name)["inputs"]


def k8s(rs, kind, name):
    return one(rs, f":{kind}", name)["inputs"]


def tmpl(rs, kind, name):
    return k8s(rs, kind, name)["spec"]["template"]["spec"]


def first(rs, kind, name):
    return tmpl(rs, kind, name)["containers"][0]


def drop(rs, type_suffix, name):
    rs.remove(one(rs, type_suffix, name))


def cronjob_container(rs, name):
    return k8s(rs, "CronJob", name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def set_env(container, name, value):
    env = [e for e in container["env"] if e["name"] == name]
    assert len(env) == 1, (name, container["env"])
    env[0]["value"] = value


def set_label(inputs, label, value):
    inputs["labels"] = [l for l in inputs["labels"] if l["label"] != label] + [{"label": label, "value": value}]


VARIANTS = {
    # ---- dev: Docker host
    ("dev", "privileged api container"): (
        lambda rs: container(rs, "api").update(privileged=True), "docker-container-no-privileged"),
    ("dev", "worker on the host network"): (
        lambda rs: container(rs, "worker-1").update(networkMode="host"), "docker-container-no-host-namespaces"),
    ("dev", "database port published"): (
        lambda rs: container(rs, "db").update(ports=[{"internal": 5432, "external": 5432, "ip": "127.0.0.1"}]),
        "docker-container-host-ports-proxy-only"),
    ("dev", "redis published on 0.0.0.0"): (
        lambda rs: container(rs, "redis").update(ports=[{"internal": 6379, "external": 6379, "ip": "0.0.0.0"}]),
        "docker-container-no-wildcard-bind"),
    ("dev", "proxy publishes an admin port"): (
        lambda rs: container(rs, "proxy")["ports"].append({"internal": 9000, "external": 9000, "ip": "127.0.0.1"}),
        "docker-container-host-ports-proxy-only"),
    ("dev", "latest postgres image"): (
        lambda rs: next(r for r in rs if r["type"].endswith("remoteImage:RemoteImage")
                       and r["inputs"]["name"].startswith("postgres:"))["inputs"].update(name="postgres:latest"),
        "docker-image-no-latest-tag"),
    ("dev", "untagged api image on the container"): (
        lambda rs: container(rs, "api").update(image="ghcr.io/easy-flow/api"), "docker-image-no-latest-tag"),
    ("dev", "api runs as root"): (lambda rs: container(rs, "api").pop("user"), "docker-container-non-root-user"),
    ("dev", "literal password env"): (
        lambda rs: container(rs, "api")["envs"].append("ADMIN_PASSWORD=changeme"),
        "docker-container-no-plaintext-secret-env"),
    ("dev", "literal beside a secret env"): (
        lambda rs: container(rs, "api")["envs"].append("DATABASE_URL=postgresql://easyflow:changeme@db:5432/easyflow"),
        "docker-container-no-plaintext-secret-env"),
    ("dev", "db password no longer from a secret"): (
        lambda rs: set_label(container(rs, "db"), "berth.secret-envs", ""), "stack-credentials-are-secrets"),
    ("dev", "grafana without admin password"): (
        lambda rs: (container(rs, "grafana").update(
            envs=[e for e in container(rs, "grafana")["envs"] if not e.startswith("GF_SECURITY_ADMIN_PASSWORD")]),
            set_label(container(rs, "grafana"), "berth.secret-envs", "")),
        "stack-credentials-are-secrets"),
    ("dev", "docker socket mounted"): (
        lambda rs: container(rs, "prometheus")["volumes"].append(
            {"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}),
        "docker-container-no-sensitive-host-mounts"),
    ("dev", "host /etc bind mount"): (
        lambda rs: container(rs, "api").update(mounts=[{"type": "bind", "source": "/etc", "target": "/host/etc"}]),
        "docker-container-no-sensitive-host-mounts"),
    ("dev", "SYS_ADMIN added"): (
        lambda rs: container(rs, "api").update(capabilities={"drops": ["ALL"], "adds": ["SYS_ADMIN"]}),
        "docker-container-capabilities-allow-list"),
    ("dev", "no restart policy"): (lambda rs: container(rs, "redis").pop("restart"), "docker-container-restart-policy"),
    ("dev", "no health check on the cache"): (lambda rs: container(rs, "redis").pop("healthcheck"),
                                              "docker-container-healthcheck"),
    ("dev", "no memory limit"): (lambda rs: container(rs, "db").pop("memory"), "docker-container-memory-limit"),
    ("dev", "host PID for the exporter"): (
        lambda rs: container(rs, "db-exporter").update(pidMode="host"), "docker-container-no-host-namespaces"),
    # ---- prod: Kubernetes
    ("prod", "privileged api pod"): (
        lambda rs: first(rs, "Deployment", "api-deployment")["securityContext"].update(privileged=True),
        "k8s-workload-no-privileged"),
    ("prod", "privilege escalation allowed"): (
        lambda rs: first(rs, "Deployment", "worker-deployment")["securityContext"].update(allowPrivilegeEscalation=True),
        "k8s-workload-no-privilege-escalation"),
    ("prod", "db runs as root"): (
        lambda rs: (tmpl(rs, "StatefulSet", "db-statefulset")["securityContext"].update(runAsNonRoot=False, runAsUser=0),
                    first(rs, "StatefulSet", "db-statefulset")["securityContext"].pop("runAsNonRoot")),
        "k8s-workload-run-as-non-root"),
    ("prod", "capabilities not dropped"): (
        lambda rs: first(rs, "Deployment", "api-deployment")["securityContext"].pop("capabilities"),
        "k8s-workload-capabilities-drop-all"),
    ("prod", "seccomp unconfined"): (
        lambda rs: tmpl(rs, "Deployment", "api-deployment")["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "k8s-workload-seccomp-profile"),
    ("prod", "host network"): (
        lambda rs: tmpl(rs, "Deployment", "api-deployment").update(hostNetwork=True), "k8s-workload-no-host-namespaces"),
    ("prod", "hostPath volume"): (
        lambda rs: tmpl(rs, "StatefulSet", "db-statefulset")["volumes"].append(
            {"name": "host", "hostPath": {"path": "/var/lib/pg"}}), "k8s-workload-no-host-path"),
    ("prod", "missing limits"): (
        lambda rs: first(rs, "Deployment", "api-deployment").pop("resources"), "k8s-workload-resource-limits"),
    ("prod", "missing probes"): (
        lambda rs: first(rs, "Deployment", "api-deployment").pop("readinessProbe"), "k8s-workload-health-probes"),
    ("prod", "latest image"): (
        lambda rs: first(rs, "Deployment", "worker-deployment").update(image="ghcr.io/easy-flow/api:latest"),
        "k8s-workload-no-latest-tag"),
    ("prod", "literal password env"): (
        lambda rs: first(rs, "Deployment", "api-deployment")["env"].append({"name": "SECRET_KEY", "value": "dev"}),
        "k8s-workload-no-plaintext-secret-env"),
    ("prod", "literal postgres password"): (
        lambda rs: (lambda env: env.__setitem__(
            next(i for i, e in enumerate(env) if e["name"] == "POSTGRES_PASSWORD"),
            {"name": "POSTGRES_PASSWORD", "value": "hunter2"}))(first(rs, "StatefulSet", "db-statefulset")["env"]),
        "stack-credentials-are-secrets"),
    ("prod", "LoadBalancer database service"): (
        lambda rs: k8s(rs, "Service", "db-service")["spec"].update(type="LoadBalancer", clusterIP=None),
        "k8s-service-no-public-datastore"),
    ("prod", "NodePort redis service"): (
        lambda rs: k8s(rs, "Service", "redis-service")["spec"].update(type="NodePort"),
        "k8s-service-no-public-datastore"),
    ("prod", "ingress without TLS"): (
        lambda rs: next(r for r in rs if r["type"].endswith(":Ingress"))["inputs"]["spec"].pop("tls"), "k8s-ingress-tls"),
    ("prod", "no default-deny NetworkPolicy"): (
        lambda rs: drop(rs, ":NetworkPolicy", "default-deny"), "k8s-namespace-default-deny"),
    ("prod", "database StatefulSet unprotected"): (
        lambda rs: one(rs, ":StatefulSet", "db-statefulset").update(protect=False), "stack-database-storage-protected"),
    ("prod", "database without backup"): (
        lambda rs: drop(rs, ":CronJob", "db-backup-daily-cronjob"), "stack-database-has-backup"),
    ("prod", "backup CronJob dumps another host"): (
        lambda rs: set_env(cronjob_container(rs, "db-backup-daily-cronjob"), "DB_HOST", "db-old"),
        "stack-database-has-backup"),
    ("prod", "backup CronJob suspended"): (
        lambda rs: k8s(rs, "CronJob", "db-backup-daily-cronjob")["spec"].update(suspend=True),
        "stack-database-has-backup"),
    ("prod", "backup CronJob runs the restore script"): (
        lambda rs: cronjob_container(rs, "db-backup-daily-cronjob").update(args=["bash", "/berth/restore.sh", "latest"]),
        "stack-database-has-backup"),
    ("prod", "literal beside a secretKeyRef env"): (
        lambda rs: first(rs, "Deployment", "api-deployment")["env"].append({"name": "DATABASE_URL", "value": "postgresql://x"}),
        "k8s-workload-no-plaintext-secret-env"),
}


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_insecure_variants_are_blocked(preview, capsys):
    blocked, missed = [], []
    for (stack, what), (mutate, policy) in VARIANTS.items():
        rs = recorded(stack)
        mutate(rs)
        hits = [v for v in mandatory(run_pack(rs, preview=preview)) if v.policy == policy]
        (blocked if hits else missed).append(f"{stack}: {what} -> {policy}")
    with capsys.disabled():
        print(f"\n[{'preview' if preview else 'up'}] blocked {len(blocked)}/{len(VARIANTS)} insecure variants")
    assert missed == [], missed
    assert len(blocked) == len(VARIANTS) >= 30
