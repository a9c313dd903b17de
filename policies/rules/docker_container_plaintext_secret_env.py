"""Secret-looking env vars of Docker containers must come from secret outputs."""

from ._common import DOCKER_CONTAINER, SECRET_SCHEMA, docker_envs, docker_secret_envs, docker_workload, looks_secret
from ._policy import Severity, is_type, resource_rule


def check(r, config):
    declared = docker_secret_envs(r.props)
    for name, _value in docker_envs(r.props):
        # The value is never echoed: it may be the secret itself.
        if looks_secret(name, config) and name not in declared:
            yield (f"container '{docker_workload(r.props, r.name)}' sets {name} from a plain value "
                   "(not listed in its berth.secret-envs label)")


policy = resource_rule(
    name="docker-container-no-plaintext-secret-env",
    description="Docker container env vars named like PASSWORD, SECRET, TOKEN, KEY or CREDENTIAL must come from secret outputs (listed in the berth.secret-envs label), not literal values.",
    remediation="put the value in `berth:secrets` (pulumi config set --secret) or let Berth generate it, so it "
    "reaches the container as a secret env; a non-secret name can go in `allowedNames`",
    check=check,
    applies_to=is_type(DOCKER_CONTAINER),
    severity=Severity.CRITICAL,
    config=dict(SECRET_SCHEMA),
)
