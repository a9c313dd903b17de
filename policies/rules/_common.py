"""Helpers shared by the rule modules: plain property access, Berth labels, images, environments.

Nothing here calls Pulumi; every helper is a pure function of the values the analyzer hands a policy,
so the rules can be tested with hand-built ``ResourceValidationArgs``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)


class _Unknown:
    """A value the engine can't know yet (preview): e.g. an image id or a password result."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()
_UNKNOWN_SENTINELS = {
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_STRING_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_OBJECT_VALUE,
}


def plain(value: Any) -> Any:
    """The analyzer's proxied props as plain dicts/lists; unknown values become ``UNKNOWN``.

    The SDK wraps props in proxies that raise ``UnknownValueError`` on any unknown value, which
    turns the whole policy into an advisory "can't run during preview" note. Reading the raw target
    instead lets a rule skip just the unknown part (a computed env value) and still judge the rest.
    """
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        raw = _raw(value)
        return {k: plain(raw[k]) for k in raw}
    if isinstance(value, (list, tuple)) or _is_list_proxy(value):
        raw = _raw(value)
        return [plain(v) for v in raw]
    return value


def _raw(value: Any) -> Any:
    try:
        # pulumi_policy's _DictProxy/_ListProxy hand out their target under this key.
        if type(value).__name__ in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"):
            return value["__target"]
    except (KeyError, TypeError):
        pass
    return value


def _is_list_proxy(value: Any) -> bool:
    return type(value).__name__ in ("_ListProxy", "_ListSecretsProxy")


def known(value: Any) -> bool:
    return value is not UNKNOWN


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def get(obj: Any, *path: str, default: Any = None) -> Any:
    """``obj[path[0]][path[1]]...`` or ``default`` when a step is missing, unknown or not a dict."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return default if obj is None or obj is UNKNOWN else obj


def config_list(config: Mapping[str, Any], key: str, default: Iterable[Any]) -> list:
    value = config.get(key) if config else None
    return list(value) if isinstance(value, (list, tuple)) else list(default)


def config_value(config: Mapping[str, Any], key: str, default: Any) -> Any:
    value = config.get(key) if config else None
    return default if value is None else value


# ---------------------------------------------------------------- URNs and Berth components

def urn_stack(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type chain>::<name>`` → ``<stack>``."""
    parts = urn.split("::")
    return parts[0].split(":")[-1] if parts and parts[0].startswith("urn:pulumi:") else ""


def urn_type_chain(urn: str) -> list[str]:
    """The parent type chain of a URN, e.g. ``['berth:index:Database', 'docker:index/container:Container']``."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []


def berth_component(urn: str) -> Optional[str]:
    """The nearest ``berth:index:*`` component a resource belongs to, from its URN type chain."""
    chain = urn_type_chain(urn)
    for typ in reversed(chain[:-1]):
        if typ.startswith("berth:index:"):
            return typ
    return None


PROD_STACK_RE = r"(^|[-_.])prod(uction)?($|[-_.])"


def environment_is_prod(config: Mapping[str, Any], urn: str) -> bool:
    """Whether the stack being checked is production. First match wins:

    1. the policy's own config ``environment`` (``--policy-pack-config``): explicit, always honoured;
    2. the stack config ``berth:environment``, which the Pulumi CLI hands a policy pack process in
       ``PULUMI_CONFIG`` (the SDK loads it into the runtime config before each analysis);
    3. the stack name in the URN matching ``prodStackPattern`` (default: a ``prod``/``production``
       word, e.g. ``prod``, ``eu-prod``, ``prod-2``).
    """
    env = config_value(config, "environment", None)
    if isinstance(env, str) and env:
        return env.lower() in ("prod", "production")
    try:
        import pulumi.runtime

        stack_env = pulumi.runtime.get_config("berth:environment")
    except Exception:  # noqa: BLE001 - no runtime config is simply "unknown"
        stack_env = None
    if isinstance(stack_env, str) and stack_env:
        return stack_env.lower() in ("prod", "production")
    pattern = config_value(config, "prodStackPattern", PROD_STACK_RE)
    return bool(re.search(pattern, urn_stack(urn)))


ENVIRONMENT_SCHEMA = {
    "environment": {
        "type": "string",
        "description": "Force the environment (e.g. 'prod', 'dev'); otherwise the stack config "
        "berth:environment, then the stack name, decides.",
    },
    "prodStackPattern": {
        "type": "string",
        "default": PROD_STACK_RE,
        "description": "Regular expression: a stack whose name matches is production when neither "
        "'environment' nor berth:environment is known.",
    },
}


# ---------------------------------------------------------------- Docker

def docker_labels(props: Mapping[str, Any]) -> dict[str, str]:
    """``labels: [{label, value}]`` → dict (unknown values dropped)."""
    out: dict[str, str] = {}
    for item in as_list(props.get("labels")):
        if isinstance(item, dict) and isinstance(item.get("label"), str) and isinstance(item.get("value"), str):
            out[item["label"]] = item["value"]
    return out


def docker_role(props: Mapping[str, Any]) -> str:
    return docker_labels(props).get("berth.role", "")


def docker_one_shot(props: Mapping[str, Any]) -> bool:
    """A Docker container that runs once and exits (a files writer, a restore, a pre-deploy dump)."""
    return props.get("mustRun") is False or props.get("start") is False


def docker_workload(props: Mapping[str, Any], default: str = "") -> str:
    return docker_labels(props).get("berth.workload", default)


def docker_secret_envs(props: Mapping[str, Any]) -> set[str]:
    raw = docker_labels(props).get("berth.secret-envs", "")
    return {n.strip() for n in raw.split(",") if n.strip()}


def docker_envs(props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``envs: ["K=V"]`` → [(K, V)]; an entry computed from an unknown output is skipped."""
    out = []
    for item in as_list(props.get("envs")):
        if isinstance(item, str) and "=" in item:
            k, v = item.split("=", 1)
            out.append((k, v))
    return out


DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DOCKER_VOLUME = "docker:index/volume:Volume"


# ---------------------------------------------------------------- images

def image_problem(ref: Any, disallowed_tags: Iterable[str] = ("latest",)) -> Optional[str]:
    """Why an image reference is not pinned, or None. Digests and image ids are pinned."""
    if not isinstance(ref, str) or not ref:
        return None  # unknown during preview (an image id from RemoteImage): judged when known
    if "@sha256:" in ref or re.fullmatch(r"sha256:[0-9a-f]{12,64}", ref):
        return None
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image '{ref}' has no tag, so it resolves to ':latest'"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in {t.lower() for t in disallowed_tags}:
        return f"image '{ref}' uses the mutable tag ':{tag}'"
    return None


IMAGE_SCHEMA = {
    "disallowedTags": {
        "type": "array",
        "items": {"type": "string"},
        "default": ["latest"],
        "description": "Tags that float and are refused (an untagged image always is).",
    },
}


# ---------------------------------------------------------------- secrets

SECRET_NAME_RE = r"(PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL)"

SECRET_SCHEMA = {
    "secretNamePattern": {
        "type": "string",
        "default": SECRET_NAME_RE,
        "description": "Regular expression (case-insensitive) for env var names that hold secrets.",
    },
    "allowedNames": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Env var names that match the pattern but are not secrets (e.g. CACHE_KEY_PREFIX).",
    },
}


def looks_secret(name: str, config: Mapping[str, Any]) -> bool:
    """A secret-looking env name; ``*_FILE`` names point at a mounted file and are fine."""
    if name in config_list(config, "allowedNames", []):
        return False
    if name.upper().endswith("_FILE"):
        return False
    return bool(re.search(config_value(config, "secretNamePattern", SECRET_NAME_RE), name, re.IGNORECASE))


# ---------------------------------------------------------------- Kubernetes

K8S_WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def k8s_kind(resource_type: str) -> str:
    """``kubernetes:apps/v1:Deployment`` → ``Deployment`` ('' for other packages)."""
    if not resource_type.startswith("kubernetes:"):
        return ""
    return resource_type.rsplit(":", 1)[-1]


def is_k8s_workload(resource_type: str) -> bool:
    return k8s_kind(resource_type) in K8S_WORKLOAD_KINDS


def pod_template(kind: str, props: Mapping[str, Any]) -> dict:
    """The pod template (metadata+spec) of a workload; a Pod is its own template."""
    if kind == "Pod":
        return {"metadata": as_dict(props.get("metadata")), "spec": as_dict(props.get("spec"))}
    if kind == "CronJob":
        return as_dict(get(props, "spec", "jobTemplate", "spec", "template", default={}))
    return as_dict(get(props, "spec", "template", default={}))


def pod_spec(kind: str, props: Mapping[str, Any]) -> dict:
    return as_dict(pod_template(kind, props).get("spec"))


def pod_labels(kind: str, props: Mapping[str, Any]) -> dict:
    return as_dict(get(pod_template(kind, props), "metadata", "labels", default={}))


def k8s_containers(spec: Mapping[str, Any]) -> list[dict]:
    """Every container of a pod spec: init, regular and ephemeral."""
    out = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out.extend(c for c in as_list(spec.get(key)) if isinstance(c, dict))
    return out


def k8s_name(props: Mapping[str, Any], default: str = "") -> str:
    name = get(props, "metadata", "name")
    return name if isinstance(name, str) else default


def k8s_namespace(props: Mapping[str, Any]) -> str:
    ns = get(props, "metadata", "namespace")
    return ns if isinstance(ns, str) else ""


def k8s_component(props: Mapping[str, Any]) -> str:
    return as_dict(get(props, "metadata", "labels", default={})).get("app.kubernetes.io/component", "")


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A plain label selector (``matchLabels`` or a Service's map) against pod labels."""
    match = as_dict(selector.get("matchLabels")) if "matchLabels" in selector else dict(selector)
    if not match and not selector.get("matchExpressions"):
        return False
    return all(labels.get(k) == v for k, v in match.items())


def workload_label(kind: str, name: str) -> str:
    return f"{kind} '{name}'"
