"""Ingresses terminate TLS for every host they route."""

from ._common import as_dict, as_list, k8s_name
from ._policy import is_type, resource_rule


def check(r, config):
    name = k8s_name(r.props, r.name)
    spec = as_dict(r.props.get("spec"))
    tls = [as_dict(t) for t in as_list(spec.get("tls"))]
    if not tls:
        yield f"Ingress '{name}' has no spec.tls"
        return
    covered = {h for t in tls for h in as_list(t.get("hosts")) if isinstance(h, str)}
    for rule in as_list(spec.get("rules")):
        host = as_dict(rule).get("host")
        if isinstance(host, str) and host not in covered and not any(
            c.startswith("*.") and host.endswith(c[1:]) and host.count(".") == c.count(".") for c in covered
        ):
            yield f"Ingress '{name}' routes host '{host}' without a TLS entry for it"
    for t in tls:
        if not t.get("secretName"):
            yield f"Ingress '{name}' has a tls entry without secretName"


policy = resource_rule(
    name="k8s-ingress-tls",
    description="Kubernetes Ingresses must terminate TLS (spec.tls with a secretName) for every host they route.",
    remediation="set `proxy.tls.mode: acme` (cert-manager) or provide a certificate Secret so Berth renders spec.tls",
    check=check,
    applies_to=is_type("kubernetes:networking.k8s.io/v1:Ingress", "kubernetes:extensions/v1beta1:Ingress",
                       "kubernetes:networking.k8s.io/v1beta1:Ingress"),
)
