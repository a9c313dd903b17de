"""Every rule: a compliant resource passes; changing one field produces the expected violation.

Args are the SDK's own ``ResourceValidationArgs`` / ``StackValidationArgs`` (see policy_harness),
so the rules run exactly the code path the analyzer server uses.
"""

from __future__ import annotations

import copy
import importlib

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
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "api-env", "key": "DB_PASSWORD"}}}],
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
    ("docker_container_non_root", CONTAINER, docker_container, lambda p: p.pop("user"), "runs as root (user unset)"),
    ("docker_container_non_root", CONTAINER, docker_container, lambda p: p.update(user="0:0"), "runs as root (user '0:0')"),
    ("docker_container_non_root", CONTAINER, docker_container, lambda p: p.update(user="root"), "runs as root"),
    ("docker_container_restart_policy", CONTAINER, docker_container, lambda p: p.pop("restart"), "restart policy 'unset (no)'"),
    ("docker_container_restart_policy", CONTAINER, docker_container, lambda p: p.update(restart="no"), "restart policy 'no'"),
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
     lambda p: c0(p)["env"].append({"name": "DB_PASSWORD", "value": "hunter2"}), "sets DB_PASSWORD as a literal `value`"),
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
        {"urn": f"urn:pulumi:{stack}::berth::berth:index:BackupJob::db-backup", "type": "berth:index:BackupJob",
         "name": "db-backup", "custom": True, "inputs": {}},  # custom only so that find() can remove it
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
    db = docker_container(role="database", image="sha256:" + "d" * 64,
                          envs=["POSTGRES_USER=app", "POSTGRES_PASSWORD=x"])
    db["labels"][2]["value"] = "POSTGRES_PASSWORD"
    grafana = docker_container(role="monitoring", image="grafana/grafana:11.2.2",
                               envs=["GF_SECURITY_ADMIN_PASSWORD=y"])
    grafana["labels"][2]["value"] = "GF_SECURITY_ADMIN_PASSWORD"
    img = R(REMOTE_IMAGE, "image-postgres-15", {"name": "postgres:15"}, component="Platform", stack=stack)
    return [
        {"urn": f"urn:pulumi:{stack}::berth::berth:index:Database::db", "type": "berth:index:Database", "name": "db",
         "custom": False, "inputs": {}},
        {"urn": f"urn:pulumi:{stack}::berth::berth:index:BackupJob::db-backup", "type": "berth:index:BackupJob",
         "name": "db-backup", "custom": False, "inputs": {}},
        img,
        R("docker:index/volume:Volume", "db-data", {"name": "berth-prod-db-data"}, component="Database", stack=stack,
          protect=True),
        R(CONTAINER, "db", db, component="Database", stack=stack, deps=[img["urn"]]),
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
     "Database 'db' has no BackupJob"),
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
