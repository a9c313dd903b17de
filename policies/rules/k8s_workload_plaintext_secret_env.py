"""Secret-looking env vars of Kubernetes containers come from Secrets, not literal values.

A literal ``value`` is refused for a secret-looking name (``secretNamePattern``), and for any name that
the same container also takes from a Secret (``valueFrom.secretKeyRef``): the Secret reference says the
value is secret, and with both entries the later one wins, so the literal may silently replace it.
"""

from ._common import SECRET_SCHEMA, as_list, get, looks_secret
from ._k8s import applies, where, workload
from ._policy import Severity, resource_rule


def check(r, config):
    kind, name, _pod, containers = workload(r)
    for c in containers:
        env = [e for e in as_list(c.get("env")) if isinstance(e, dict) and isinstance(e.get("name"), str)]
        from_secret = {e["name"] for e in env if get(e, "valueFrom", "secretKeyRef")}
        for e in env:
            if "value" not in e:
                continue
            if e["name"] in from_secret:
                yield (f"{where(kind, name, c)} sets {e['name']} as a literal `value` beside a "
                       "valueFrom.secretKeyRef entry of the same name")
            elif looks_secret(e["name"], config):
                yield f"{where(kind, name, c)} sets {e['name']} as a literal `value`"


policy = resource_rule(
    name="k8s-workload-no-plaintext-secret-env",
    description="Kubernetes env vars named like PASSWORD, SECRET, TOKEN, KEY or CREDENTIAL must use valueFrom.secretKeyRef, not a literal value, and no env var taken from a Secret may also be set to a literal.",
    remediation="put the value in a Secret (Berth renders secret env into `<name>-env`), reference it with "
    "valueFrom.secretKeyRef and remove the literal entry of the same name",
    check=check, applies_to=applies, severity=Severity.CRITICAL, config=dict(SECRET_SCHEMA),
)
