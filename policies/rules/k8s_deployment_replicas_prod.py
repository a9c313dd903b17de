"""Production Deployments run more than one replica or are autoscaled (advisory, stack-level)."""

from ._common import ENVIRONMENT_SCHEMA, config_list, environment_is_prod, get, k8s_name
from ._policy import ADVISORY, Severity, stack_rule
from ._stack import describe, hpa_targets, k8s_of_kind, ns_key, stack_urn


def check(resources, config):
    if not resources or not environment_is_prod(config, stack_urn(resources)):
        return
    scaled = hpa_targets(resources)
    singletons = set(config_list(config, "singletonWorkloads", []))
    for d in k8s_of_kind(resources, "Deployment"):
        name = k8s_name(d.props, d.name)
        if (ns_key(d), "Deployment", name) in scaled or name in singletons:
            continue
        replicas = get(d.props, "spec", "replicas", default=1)
        if isinstance(replicas, (int, float)) and replicas < 2:
            yield (f"{describe(d)} runs {int(replicas)} replica in prod and no HorizontalPodAutoscaler targets it", d.urn)


policy = stack_rule(
    name="k8s-deployment-multiple-replicas-in-prod",
    description="Production Deployments should run at least two replicas or be scaled by a HorizontalPodAutoscaler.",
    remediation="set `replicas: 2` or `autoscale: {min: 2, ...}` on the service; for true singletons (a scheduler) "
    "list the Deployment in `singletonWorkloads`",
    check=check, enforcement=ADVISORY, severity=Severity.LOW,
    config={**ENVIRONMENT_SCHEMA,
            "singletonWorkloads": {"type": "array", "items": {"type": "string"}, "default": [],
                                   "description": "Deployment names that must stay at one replica (e.g. a beat scheduler)."}},
)
