"""Secret-looking env vars of Kubernetes containers come from Secrets, not literal values."""

from ._common import SECRET_SCHEMA, as_list, looks_secret
from ._k8s import applies, where, workload
from ._policy import Severity, resource_rule


def check(r, config):
    kind, name, _pod, containers = workload(r)
    for c in containers:
        for e in as_list(c.get("env")):
            if isinstance(e, dict) and "value" in e and isinstance(e.get("name"), str) and looks_secret(e["name"], config):
                yield f"{where(kind, name, c)} sets {e['name']} as a literal `value`"


policy = resource_rule(
    name="k8s-workload-no-plaintext-secret-env",
    description="Kubernetes env vars named like PASSWORD, SECRET, TOKEN, KEY or CREDENTIAL must use valueFrom.secretKeyRef, not a literal value.",
    remediation="put the value in a Secret (Berth renders secret env into `<name>-env`) and reference it with valueFrom.secretKeyRef",
    check=check, applies_to=applies, severity=Severity.CRITICAL, config=dict(SECRET_SCHEMA),
)
