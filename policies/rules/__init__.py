"""The Berth security rules, one per module; ``all_policies()`` is what the pack serves."""

from importlib import import_module

# Order is the order `pulumi preview` lists them in: Docker, Kubernetes, then whole-stack rules.
RULE_MODULES = [
    "docker_container_privileged",
    "docker_container_capabilities",
    "docker_container_host_namespaces",
    "docker_container_host_mounts",
    "docker_container_published_ports",
    "docker_container_port_bind_address",
    "docker_image_pinned",
    "docker_container_plaintext_secret_env",
    "docker_container_non_root",
    "docker_container_restart_policy",
    "docker_container_healthcheck",
    "docker_container_memory_limit",
    "k8s_workload_privileged",
    "k8s_workload_privilege_escalation",
    "k8s_workload_run_as_non_root",
    "k8s_workload_capabilities",
    "k8s_workload_seccomp",
    "k8s_workload_host_namespaces",
    "k8s_workload_host_path",
    "k8s_workload_resources",
    "k8s_workload_probes",
    "k8s_workload_image_pinned",
    "k8s_workload_plaintext_secret_env",
    "k8s_workload_read_only_root",
    "k8s_ingress_tls",
    "k8s_service_no_public_datastore",
    "k8s_namespace_default_deny",
    "k8s_deployment_replicas_prod",
    "k8s_deployment_pod_disruption_budget",
    "stack_database_storage_protected",
    "stack_database_has_backup",
    "stack_credentials_are_secrets",
]


def all_policies():
    return [import_module(f"{__name__}.{m}").policy for m in RULE_MODULES]
