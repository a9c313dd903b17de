"""Multi-replica or autoscaled Deployments have a PodDisruptionBudget (advisory, stack-level)."""

from ._common import get, k8s_name
from ._policy import ADVISORY, Severity, stack_rule
from ._stack import describe, has_pdb, hpa_targets, k8s_of_kind, ns_key


def check(resources, config):
    scaled = hpa_targets(resources)
    for d in k8s_of_kind(resources, "Deployment"):
        replicas = get(d.props, "spec", "replicas", default=1)
        autoscaled = (ns_key(d), "Deployment", k8s_name(d.props, d.name)) in scaled
        multi = isinstance(replicas, (int, float)) and replicas >= 2
        if (autoscaled or multi) and not has_pdb(resources, d):
            yield (f"{describe(d)} ({'autoscaled' if autoscaled else f'{int(replicas)} replicas'}) has no "
                   "PodDisruptionBudget selecting its pods", d.urn)


policy = stack_rule(
    name="k8s-deployment-pod-disruption-budget",
    description="Deployments with several replicas or an HPA should have a PodDisruptionBudget so node drains keep them available.",
    remediation="declare a PodDisruptionBudget (maxUnavailable: 1) whose selector matches the pod labels; Berth's "
    "AppService does this for replicated services",
    check=check, enforcement=ADVISORY, severity=Severity.LOW,
)
