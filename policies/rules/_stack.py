"""Helpers for stack rules: indexes over the whole resource list."""

from ._common import (
    as_dict,
    get,
    is_k8s_workload,
    k8s_kind,
    k8s_name,
    k8s_namespace,
    pod_labels,
    selector_matches,
)

HPA_KINDS = ("HorizontalPodAutoscaler",)


def k8s_of_kind(resources, *kinds):
    return [r for r in resources if k8s_kind(r.type) in kinds]


def k8s_workloads(resources):
    return [r for r in resources if is_k8s_workload(r.type)]


def ns_key(r):
    return k8s_namespace(r.props)


def hpa_targets(resources):
    """{(namespace, kind, name)} scaled by an HPA."""
    out = set()
    for h in k8s_of_kind(resources, *HPA_KINDS):
        ref = as_dict(get(h.props, "spec", "scaleTargetRef", default={}))
        if isinstance(ref.get("name"), str):
            out.add((ns_key(h), ref.get("kind", "Deployment"), ref["name"]))
    return out


def has_pdb(resources, workload):
    labels = pod_labels(k8s_kind(workload.type), workload.props)
    for p in k8s_of_kind(resources, "PodDisruptionBudget"):
        if ns_key(p) == ns_key(workload) and selector_matches(as_dict(get(p.props, "spec", "selector", default={})), labels):
            return True
    return False


def stack_urn(resources):
    return resources[0].urn if resources else ""


def describe(r):
    return f"{k8s_kind(r.type)} '{k8s_name(r.props, r.name)}'"
