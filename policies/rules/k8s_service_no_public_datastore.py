"""Datastores are never exposed through LoadBalancer or NodePort Services (stack-level).

A datastore is a workload labelled with a datastore component, or one that runs a database server
(``_databases.databases``), so unlabelled workloads of a raw program count too.
"""

from ._common import as_dict, config_list, get, k8s_component, k8s_kind, k8s_name, pod_labels
from ._databases import databases
from ._policy import Severity, stack_rule
from ._stack import k8s_of_kind, k8s_workloads, ns_key

EXPOSED = ("LoadBalancer", "NodePort")


def check(resources, config):
    roles = set(config_list(config, "datastoreComponents", ["database", "cache"]))
    workloads = k8s_workloads(resources)
    db_urns = {db.res.urn for db in databases(resources) if db.run.platform == "kubernetes"}
    for svc in k8s_of_kind(resources, "Service"):
        typ = get(svc.props, "spec", "type", default="ClusterIP")
        if typ not in EXPOSED:
            continue
        name = k8s_name(svc.props, svc.name)
        selector = as_dict(get(svc.props, "spec", "selector", default={}))
        hits = set()
        if k8s_component(svc.props) in roles:
            hits.add(f"its own component label '{k8s_component(svc.props)}'")
        if selector.get("app.kubernetes.io/component") in roles:
            hits.add(f"selector component '{selector['app.kubernetes.io/component']}'")
        for w in workloads:
            labels = pod_labels(k8s_kind(w.type), w.props)
            if ns_key(w) == ns_key(svc) and selector and all(labels.get(k) == v for k, v in selector.items()):
                comp = labels.get("app.kubernetes.io/component")
                if comp in roles:
                    hits.add(f"{k8s_kind(w.type)} '{k8s_name(w.props, w.name)}' ({comp})")
                elif w.urn in db_urns:
                    hits.add(f"{k8s_kind(w.type)} '{k8s_name(w.props, w.name)}' (runs a database server)")
        if hits:
            yield (f"Service '{name}' of type {typ} exposes a datastore: selects {', '.join(sorted(hits))}", svc.urn)


policy = stack_rule(
    name="k8s-service-no-public-datastore",
    description="Kubernetes Services of type LoadBalancer or NodePort must not select database or cache pods.",
    remediation="keep datastore Services ClusterIP (headless) and reach them from inside the namespace; use "
    "`kubectl port-forward` for admin access",
    check=check, severity=Severity.CRITICAL,
    config={"datastoreComponents": {"type": "array", "items": {"type": "string"}, "default": ["database", "cache"],
                                    "description": "app.kubernetes.io/component values that are datastores."}},
)
