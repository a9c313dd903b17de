"""The raw program's variants and the mandatory rules each one must trigger — exactly those, no others.

Shared by the in-process tests (tests/policies/test_raw_program.py, Pulumi mocks) and a real-CLI test
(``pulumi preview --policy-pack policies`` on this folder), so both judge the same table. Run a variant with
``pulumi config set raw:variant <name>`` on a stack named ``prod`` (``STACK``): the prod-only rules decide
production from the stack name (or pass ``environment: prod`` in the pack config).

Plain data only: no Pulumi, no Berth imports.
"""

from __future__ import annotations

STACK = "prod"
PROJECT = "raw"
CONFIG_KEY = "raw:variant"
DEFAULT = "compliant"
ALL = "all-insecure"

# variant → mandatory rules it must trigger (each variant changes the compliant program in one place)
VARIANTS: dict[str, frozenset[str]] = {
    "compliant": frozenset(),
    # ---- Docker
    "docker-privileged": frozenset({  # privileged, SYS_ADMIN added, host PID namespace
        "docker-container-no-privileged", "docker-container-capabilities-allow-list",
        "docker-container-no-host-namespaces"}),
    "docker-host-mounts": frozenset({"docker-container-no-sensitive-host-mounts"}),  # the Docker socket
    "docker-published-port": frozenset({  # the app publishes 8080 on all interfaces
        "docker-container-host-ports-proxy-only", "docker-container-no-wildcard-bind"}),
    "docker-latest-root": frozenset({  # nginx:latest, no user, no restart policy, no memory limit, no health check
        "docker-image-no-latest-tag", "docker-container-non-root-user", "docker-container-restart-policy",
        "docker-container-memory-limit", "docker-container-healthcheck"}),
    "docker-plaintext-token": frozenset({"docker-container-no-plaintext-secret-env"}),  # API_TOKEN=abc, no labels
    "docker-literal-beside-secret": frozenset({"docker-container-no-plaintext-secret-env"}),  # API_TOKEN twice
    "docker-db-literal-password": frozenset({  # POSTGRES_PASSWORD=literal instead of POSTGRES_PASSWORD_FILE
        "docker-container-no-plaintext-secret-env", "stack-credentials-are-secrets"}),
    # ---- Kubernetes
    "k8s-privileged-latest": frozenset({
        "k8s-workload-no-privileged", "k8s-workload-no-privilege-escalation", "k8s-workload-no-latest-tag"}),
    "k8s-root-host": frozenset({  # UID 0, host network, hostPath, capabilities kept, seccomp Unconfined
        "k8s-workload-run-as-non-root", "k8s-workload-no-host-namespaces", "k8s-workload-no-host-path",
        "k8s-workload-capabilities-drop-all", "k8s-workload-seccomp-profile"}),
    "k8s-no-limits-probes": frozenset({"k8s-workload-resource-limits", "k8s-workload-health-probes"}),
    "k8s-plaintext-token": frozenset({"k8s-workload-no-plaintext-secret-env"}),  # API_TOKEN as a literal value
    "k8s-literal-beside-secret": frozenset({"k8s-workload-no-plaintext-secret-env"}),  # DATABASE_URL twice
    "k8s-db-literal-password": frozenset({
        "k8s-workload-no-plaintext-secret-env", "stack-credentials-are-secrets"}),
    "k8s-ingress-no-tls": frozenset({"k8s-ingress-tls"}),
    "k8s-public-database": frozenset({"k8s-service-no-public-datastore"}),  # LoadBalancer Service → postgres pods
    "k8s-no-default-deny": frozenset({"k8s-namespace-default-deny"}),
    # ---- whole stack (production)
    "prod-db-unprotected": frozenset({"stack-database-storage-protected"}),  # pg StatefulSet + Docker volume
    "prod-db-without-backup": frozenset({"stack-database-has-backup"}),  # no CronJob, no cron container
    "prod-backup-wrong-host": frozenset({"stack-database-has-backup"}),  # the dumps target other hosts
    "prod-backup-not-scheduled": frozenset({"stack-database-has-backup"}),  # one-shot container, suspended CronJob
}
VARIANTS[ALL] = frozenset().union(*VARIANTS.values())


def mutations(variant: str) -> frozenset[str]:
    """The insecure changes a variant applies (all of them for ``all-insecure``)."""
    if variant not in VARIANTS:
        raise ValueError(f"{CONFIG_KEY}: unknown variant {variant!r}; one of: {', '.join(VARIANTS)}")
    if variant == ALL:
        return frozenset(v for v in VARIANTS if v not in (DEFAULT, ALL))
    return frozenset() if variant == DEFAULT else frozenset({variant})
