"""Database and Grafana admin credentials exist and come from secrets (stack-level).

Containers are judged by their role label (``berth.role`` / ``app.kubernetes.io/component``) and, with no
label, when they run a database server (``_databases.databases``) or a Grafana image, so a raw
program is judged too.
"""

from ._common import (
    DOCKER_CONTAINER,
    DOCKER_REMOTE_IMAGE,
    as_list,
    config_list,
    docker_envs,
    docker_role,
    docker_secret_envs,
    docker_workload,
    get,
    is_k8s_workload,
    k8s_component,
    k8s_kind,
    k8s_name,
    pod_labels,
)
from ._databases import DATABASE_ROLE, databases
from ._k8s import workload
from ._policy import Severity, stack_rule

# image name (last path element, before the tag) → env vars of which one must carry the admin password
CREDENTIALS = {
    "postgres": ["POSTGRES_PASSWORD"],
    "postgresql": ["POSTGRES_PASSWORD", "POSTGRESQL_PASSWORD"],
    "mysql": ["MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD"],
    "mariadb": ["MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD", "MARIADB_PASSWORD"],
    "mongo": ["MONGO_INITDB_ROOT_PASSWORD"],
    "grafana": ["GF_SECURITY_ADMIN_PASSWORD"],
}
# env settings that switch password authentication off
NO_AUTH = {
    "POSTGRES_HOST_AUTH_METHOD": "trust",
    "MYSQL_ALLOW_EMPTY_PASSWORD": "yes",
    "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD": "yes",
    "GF_AUTH_ANONYMOUS_ENABLED": "true",
}


def _engine(image) -> str:
    if not isinstance(image, str) or not image:
        return ""
    base = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return base.split(":", 1)[0].lower()


def _docker_image_ref(r, by_urn) -> str:
    """A Berth container's `image` is the RemoteImage id; the reference is the RemoteImage's name."""
    for urn in r.property_dependencies.get("image", []) + r.dependencies:
        dep = by_urn.get(urn)
        if dep is not None and dep.type == DOCKER_REMOTE_IMAGE and isinstance(dep.props.get("name"), str):
            return dep.props["name"]
    image = r.props.get("image")
    return image if isinstance(image, str) else ""


def _judge(where, engine, env: dict, secret_names: set):
    """env: name → 'secret' | 'literal' | 'file'."""
    for name, bad in NO_AUTH.items():
        if env.get(name, ("", ""))[1].lower() == bad:
            yield f"{where} sets {name}={bad}, which disables password authentication"
    wanted = CREDENTIALS.get(engine, [])
    if not wanted:
        return
    present = [n for n in wanted if n in env or f"{n}_FILE" in env]
    # A replica or a custom entrypoint may authenticate with another password (REPLICATION_PASSWORD);
    # any password-named env that comes from a secret counts as the credential then.
    other_secret = [n for n, (how, _v) in env.items() if how == "secret" and "PASSWORD" in n.upper()]
    if not present and not other_secret:
        yield f"{where} ({engine}) sets none of {', '.join(wanted)}: it would start with no or a default admin password"
        return
    for n in present:
        if n in env and env[n][0] == "literal":
            yield f"{where} ({engine}) sets {n} as a literal value, not from a secret"


def _unlabelled_role(is_database: bool, images) -> str:
    if is_database:
        return DATABASE_ROLE
    return "monitoring" if any(_engine(i) == "grafana" for i in images) else ""


def check(resources, config):
    roles = set(config_list(config, "roles", ["database", "monitoring"]))
    by_urn = {r.urn: r for r in resources}
    unlabelled_dbs = {db.res.urn for db in databases(resources)}
    for r in resources:
        if r.type == DOCKER_CONTAINER:
            role = docker_role(r.props) or _unlabelled_role(r.urn in unlabelled_dbs,
                                                           [_docker_image_ref(r, by_urn)])
            if role not in roles:
                continue
            declared = docker_secret_envs(r.props)
            env = {k: ("secret" if k in declared else "literal", v if isinstance(v, str) else "")
                   for k, v in docker_envs(r.props)}
            # In preview a secret env entry is wholly unknown (name included); the label still names it.
            for k in declared:
                env.setdefault(k, ("secret", ""))
            where = f"{role} container '{docker_workload(r.props, r.name)}'"
            for p in _judge(where, _engine(_docker_image_ref(r, by_urn)), env, declared):
                yield p, r.urn
        elif is_k8s_workload(r.type):
            kind = k8s_kind(r.type)
            comp = (pod_labels(kind, r.props).get("app.kubernetes.io/component") or k8s_component(r.props)
                    or _unlabelled_role(r.urn in unlabelled_dbs, [c.get("image") for c in workload(r)[3]]))
            if comp not in roles:
                continue
            _k, name, _pod, containers = workload(r)
            for c in containers:
                env = {}
                for e in as_list(c.get("env")):
                    if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                        continue
                    if get(e, "valueFrom", "secretKeyRef"):
                        env[e["name"]] = ("secret", "")
                    elif "value" in e:
                        env[e["name"]] = ("literal", str(e.get("value") or ""))
                    else:
                        env[e["name"]] = ("other", "")
                where = f"{comp} {kind} '{name}' container '{c.get('name', '?')}'"
                for p in _judge(where, _engine(c.get("image")), env, set()):
                    yield p, r.urn


policy = stack_rule(
    name="stack-credentials-are-secrets",
    description="Database and Grafana containers must have an admin password, supplied from a secret (never a literal env value or a disabled-auth setting).",
    remediation="let Berth generate the password (RandomPassword) or set it with `pulumi config set --secret`; it then "
    "reaches the container as a secret env (Docker) or a secretKeyRef (Kubernetes)",
    check=check, severity=Severity.CRITICAL,
    config={"roles": {"type": "array", "items": {"type": "string"}, "default": ["database", "monitoring"],
                      "description": "berth.role / app.kubernetes.io/component values whose credentials are checked."}},
)
