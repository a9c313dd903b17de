"""Every namespace the stack uses has a default-deny NetworkPolicy (stack-level)."""

from ._common import as_dict, as_list, config_value, get, is_k8s_workload, k8s_kind, k8s_name, k8s_namespace
from ._policy import Severity, stack_rule
from ._stack import k8s_of_kind


def _is_default_deny(np, require_egress):
    spec = as_dict(np.props.get("spec"))
    selector = as_dict(spec.get("podSelector"))
    if selector.get("matchLabels") or selector.get("matchExpressions"):
        return False
    types = set(as_list(spec.get("policyTypes")))
    need = {"Ingress", "Egress"} if require_egress else {"Ingress"}
    if not need <= types:
        return False
    if as_list(spec.get("ingress")):
        return False
    return not (require_egress and as_list(spec.get("egress")))


def check(resources, config):
    require_egress = bool(config_value(config, "requireEgress", True))
    namespaces = {}
    for r in resources:
        if k8s_kind(r.type) == "Namespace":
            name = k8s_name(r.props)
            if name:
                namespaces.setdefault(name, r.urn)
        elif is_k8s_workload(r.type):
            namespaces.setdefault(k8s_namespace(r.props) or "default", r.urn)
    denied = {k8s_namespace(np.props) for np in k8s_of_kind(resources, "NetworkPolicy")
              if _is_default_deny(np, require_egress)}
    for ns, urn in sorted(namespaces.items()):
        if ns not in denied:
            yield (f"namespace '{ns}' has no default-deny NetworkPolicy (empty podSelector, policyTypes "
                   f"{'Ingress+Egress' if require_egress else 'Ingress'}, no rules)", urn)


policy = stack_rule(
    name="k8s-namespace-default-deny",
    description="Every Kubernetes namespace the stack deploys into must have a default-deny NetworkPolicy.",
    remediation="declare a NetworkPolicy with `podSelector: {}`, `policyTypes: [Ingress, Egress]` and no rules in the "
    "namespace (Berth's Platform does), then allow traffic per workload",
    check=check, severity=Severity.HIGH,
    config={"requireEgress": {"type": "boolean", "default": True,
                              "description": "The default-deny must cover Egress as well as Ingress."}},
)
