"""Secret-looking env vars of Docker containers must come from secret outputs.

The Python policy SDK hands a policy plain values (the secret flag is stripped before ``validate``), so a
secret env value and a literal look alike. Berth therefore names the env vars it fills from secret
outputs in the ``berth.secret-envs`` label. The rule:

- refuses a secret-looking name (``secretNamePattern``) whose value the label does not vouch for, with
  or without Berth labels (a raw ``API_TOKEN=abc`` is caught);
- refuses a name set more than once when it is secret-looking or vouched for: one of the entries is a
  literal beside the secret, and Docker keeps the last one;
- in preview, where a value computed from a generated secret is unknown (the whole ``K=V`` entry is,
  name included), refuses the container when there are more unknown entries than vouched names without
  a known entry: an unknown entry is then the secret of a vouched name that also has a known (literal)
  entry. (Berth never computes a non-secret env from an unknown output; a raw program that does and
  uses the label may see this in preview only.)
"""

from collections import Counter

from ._common import (
    DOCKER_CONTAINER,
    SECRET_SCHEMA,
    as_list,
    docker_envs,
    docker_secret_envs,
    docker_workload,
    looks_secret,
)
from ._policy import Severity, is_type, resource_rule


def check(r, config):
    # The value is never echoed: it may be the secret itself.
    declared = docker_secret_envs(r.props)
    known = docker_envs(r.props)
    unknown = sum(1 for e in as_list(r.props.get("envs")) if not isinstance(e, str))
    counts = Counter(k for k, _v in known)
    who = f"container '{docker_workload(r.props, r.name)}'"
    for name, n in counts.items():
        if n > 1 and (name in declared or looks_secret(name, config)):
            yield (f"{who} sets {name} {n} times: a literal value beside its secret one (the last entry wins)")
        elif looks_secret(name, config) and name not in declared:
            yield f"{who} sets {name} from a plain value (not listed in its berth.secret-envs label)"
    missing = [n for n in declared if counts[n] == 0]
    suspects = sorted(n for n in declared if counts[n] == 1)
    if unknown > len(missing) and suspects:
        yield (f"{who} sets {' or '.join(suspects)} from a literal value beside its secret one: it has {unknown} "
               f"computed env entries but only {len(missing)} secret names without a known value")


policy = resource_rule(
    name="docker-container-no-plaintext-secret-env",
    description="Docker container env vars named like PASSWORD, SECRET, TOKEN, KEY or CREDENTIAL must come from secret outputs (listed in the berth.secret-envs label), not literal values, and no secret env var may also be set to a literal.",
    remediation="put the value in `berth:secrets` (pulumi config set --secret) or let Berth generate it, so it "
    "reaches the container as a secret env; set each env var once; a raw program lists its secret env names in a "
    "`berth.secret-envs` label (or mounts the secret as a file and sets `<NAME>_FILE`); a non-secret name can go in "
    "`allowedNames`",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.CRITICAL,
    config=dict(SECRET_SCHEMA),
)
