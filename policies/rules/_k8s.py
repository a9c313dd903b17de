"""Kubernetes workload helpers shared by the k8s_workload_* rules."""

from ._common import as_dict, get, is_k8s_workload, k8s_containers, k8s_kind, k8s_name, pod_spec


def workload(r):
    """(kind, name, pod spec, containers) of a workload resource."""
    kind = k8s_kind(r.type)
    spec = pod_spec(kind, r.props)
    return kind, k8s_name(r.props, r.name), spec, k8s_containers(spec)


def container_security(pod, container, field):
    """A securityContext field: the container's value wins over the pod's."""
    c = get(container, "securityContext", field)
    return c if c is not None else get(pod, "securityContext", field)


def where(kind, name, container):
    return f"{kind} '{name}' container '{as_dict(container).get('name', '?')}'"


applies = is_k8s_workload
