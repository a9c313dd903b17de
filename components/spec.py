"""The typed stack spec: every ``berth:*`` config key, validated before any resource exists.

All stack config is read here and nowhere else (``load_spec``). A bad value raises ``ConfigError``,
which names the config key (``berth:services.api.port``), shows the bad value and says the fix. It
subclasses ``pulumi.RunError`` so the CLI prints the message without a Python traceback.

Values whose units the running software reads (durations, sizes, JVM heaps, Redis memory,
retention, cron schedules, percentages) are accepted in the forms people write and converted to the
form that software expects (``15s`` → 15 seconds, ``512MB`` → ``512Mi``, ``1Gi`` → JVM ``1g``,
``512Mi`` → Redis ``512mb``), or refused with the unit to use. Every field carries its description,
unit and the targets it applies to (``json_schema_extra``): the README's configuration reference is
generated from them (``berth/docs.py``), and a key set for the other target is refused.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

NAMESPACE = "berth"

_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
_CPU_RE = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PG_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MONGO_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")
# Docker's reference grammar (distribution/reference): lowercase repository path, optional
# registry host[:port], tag, digest.
_IMAGE_RE = re.compile(
    r"^(?:(?P<registry>[A-Za-z0-9.-]+(?::\d+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@sha256:[a-f0-9]{64})?$"
)

#: Targets: a field without ``targets`` applies to both.
BOTH = ("docker", "kubernetes")
DOCKER_ONLY = ("docker",)
KUBERNETES_ONLY = ("kubernetes",)


class ConfigError(pulumi.RunError):
    """A user mistake in stack config. Each problem names its key, its value and the fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        text = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{text}")


def _field(default: Any = ..., description: str = "", *, unit: Optional[str] = None,
           targets: tuple[str, ...] = BOTH, wrong_target: str = "error", why: Optional[str] = None,
           **kw: Any) -> Any:
    """A documented field: its description, unit and targets feed the generated reference.
    ``wrong_target``: ``error`` refuses the key when set for another target, ``warn`` only warns
    (it is ignored there); ``why`` replaces the generic reason in that message."""
    extra: dict[str, Any] = {}
    if unit:
        extra["unit"] = unit
    if targets != BOTH:
        extra["targets"] = list(targets)
        extra["wrong_target"] = wrong_target
    if why:
        extra["why"] = why
    return Field(default, description=description, json_schema_extra=extra or None, **kw)


class Target(str, Enum):
    """Where the stack is deployed."""

    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class Environment(str, Enum):
    """``prod`` protects stateful resources (protect + retain on delete); ``dev`` does not."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


# ---------------------------------------------------------------- units


_QTY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$")
_POWER = {"k": 1, "m": 2, "g": 3, "t": 4}


def _quantity(v: object, example: str) -> tuple[float, str]:
    """A number and its unit letters: ``"512 MB"`` → (512.0, "MB")."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"must be a size such as {example}")
    m = _QTY_RE.match(str(v).strip())
    if not m:
        raise ValueError(f"must be a size: a number with a unit, such as {example}")
    return float(m.group(1)), m.group(2)


def _binary_power(unit: str) -> Optional[int]:
    """``Mi``, ``MiB``, ``MB``, ``M``, ``m``, ``mb`` → 2. Docker, Compose and the JVM read all of
    these as binary units (``512m`` is 512 MiB to Docker), so Berth does too."""
    m = re.fullmatch(r"([kmgt])(i|ib|b)?", unit.lower())
    return _POWER[m.group(1)] if m else None


def _binary_size(v: object) -> str:
    """A memory or volume size as a Kubernetes binary quantity (``Mi``/``Gi``/``Ti``). Other forms
    are refused with the value to write: ``512MB`` is 512 MiB to Docker but 488 MiB to Kubernetes."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"must be a size with a unit: {v:g}Mi or {v:g}Gi")
    n, unit = _quantity(v, "512Mi or 10Gi")
    power = _binary_power(unit) if unit else None
    suffix = {2: "Mi", 3: "Gi", 4: "Ti"}.get(power or 0)
    if suffix is None:
        raise ValueError(f"must be a size such as 512Mi or 10Gi (unit {unit or '(none)'!r}: use Mi, Gi or Ti)")
    if unit != suffix:
        raise ValueError(f"must be a size in Kubernetes binary units: write {n:g}{suffix} (Mi, Gi or Ti)")
    if n == int(n):
        return f"{int(n)}{suffix}"
    mib = n * 1024 ** (power - 2)  # 1.5Gi → 1536Mi (whole numbers keep Docker's memory exact)
    if mib < 1 or mib != int(mib):
        raise ValueError("must be a size of whole Mi (at least 1Mi)")
    return f"{int(mib)}Mi"


def memory_mib(value: str) -> int:
    """A size in binary units → MiB: ``"512Mi"`` → 512, ``"1Gi"`` → 1024, ``"1Ti"`` → 1048576."""
    n, unit = _quantity(value, "512Mi")
    power = _binary_power(unit) or 2
    return int(n * 1024 ** (power - 2))


def cpu_millis(value: str) -> int:
    """``"500m"`` → 500, ``"1"`` → 1000, ``"1.5"`` → 1500."""
    return int(value[:-1]) if value.endswith("m") else int(round(float(value) * 1000))


def _cpu(v: object) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = f"{v:g}"  # YAML turns `cpu_limit: 1` into a number
    text = str(v).strip()
    if not _CPU_RE.match(text):
        raise ValueError("must be a CPU quantity such as 250m, 1 or 1.5 (cores)")
    return text


def _jvm_size(v: object) -> str:
    """A JVM memory size (``-Xmx``, Neo4j memory settings): ``512m`` or ``2g``."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"has no unit; write {v:g}m or {v:g}g")
    n, unit = _quantity(v, "512m or 2g")
    power = _binary_power(unit) if unit else None
    if power is None or power < 2:
        raise ValueError(f"unit {unit or '(none)'!r} is not a JVM size unit; use m or g (512m, 2g)")
    mib = n * 1024 ** (power - 2)
    if mib < 1 or mib != int(mib):
        raise ValueError("must be a whole number of megabytes (e.g. 1536m)")
    if power == 3 and n == int(n):
        return f"{int(n)}g"
    return f"{int(mib)}m"


def jvm_mib(value: str) -> int:
    return memory_mib(value)


_REDIS_UNITS = {  # what Redis reads (config.c memtoull): k/m/g are powers of 1000, kb/mb/gb of 1024
    "b": ("b", 1), "k": ("k", 1000), "kb": ("kb", 1024), "ki": ("kb", 1024), "kib": ("kb", 1024),
    "m": ("m", 1000 ** 2), "mb": ("mb", 1024 ** 2), "mi": ("mb", 1024 ** 2), "mib": ("mb", 1024 ** 2),
    "g": ("g", 1000 ** 3), "gb": ("gb", 1024 ** 3), "gi": ("gb", 1024 ** 3), "gib": ("gb", 1024 ** 3),
}


def _redis_memory(v: object) -> str:
    """Redis ``maxmemory``: Kubernetes units (``512Mi``) become Redis's (``512mb``)."""
    if isinstance(v, bool):
        raise ValueError("must be a size such as 256mb")
    if isinstance(v, int):
        v = f"{v}b"
    n, unit = _quantity(v, "256mb or 1gb")
    key = unit.lower() or "b"
    if key not in _REDIS_UNITS or n != int(n):
        raise ValueError("must be a whole number with a Redis unit: 256mb, 1gb (or 256Mi, 1Gi)")
    suffix, factor = _REDIS_UNITS[key]
    if n * factor < 1024 ** 2:
        raise ValueError(f"is {int(n * factor)} bytes; give a unit, e.g. {int(n)}mb")
    return str(int(n)) if suffix == "b" else f"{int(n)}{suffix}"


def redis_bytes(value: str) -> int:
    n, unit = _quantity(value, "256mb")
    return int(n) * _REDIS_UNITS[unit.lower() or "b"][1]


_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _seconds(v: object) -> object:
    """``90``, ``"90"``, ``"15s"``, ``"1m"``, ``"1m30s"``, ``"2h"`` → whole seconds."""
    if isinstance(v, bool):
        raise ValueError("must be seconds or a duration such as 15s or 1m")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if not isinstance(v, str):
        return v  # ints (and bad types, which the int check reports)
    text = v.strip().lower().replace(" ", "")
    if text.isdigit():
        return int(text)
    m = _DURATION_RE.match(text)
    if not text or not m:
        raise ValueError("must be whole seconds or a duration such as 15s, 1m or 1m30s")
    h, mins, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mins * 60 + s


def _percent(v: object) -> object:
    """``70``, ``"70"``, ``"70%"`` → 70."""
    if isinstance(v, str) and v.strip().endswith("%"):
        return v.strip()[:-1].strip()
    return v


_PROM_DURATION_RE = re.compile(r"^(\d+(ms|[smhdwy]))+$")
_DURATION_WORDS = {"year": "y", "week": "w", "day": "d", "hour": "h", "minute": "m", "second": "s"}


def _prometheus_duration(v: object) -> str:
    """Prometheus retention: ``15d``, ``2w``, ``1y``, ``12h``; ``15 days`` → ``15d``."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"has no unit; write {v:g}d (days), {v:g}w or {v:g}h")
    text = str(v).strip()
    m = re.fullmatch(r"(\d+)\s*([A-Za-z]+?)s?", text)
    if m and m.group(2).lower() in _DURATION_WORDS:
        return f"{m.group(1)}{_DURATION_WORDS[m.group(2).lower()]}"
    if not _PROM_DURATION_RE.match(text):
        raise ValueError("must be a Prometheus duration such as 15d, 2w, 1y or 12h")
    return text


# Cron as both Kubernetes (robfig/cron standard parser) and supercronic read it.
_CRON_MACROS = {
    "@yearly": "@yearly", "@annually": "@yearly", "@monthly": "@monthly", "@weekly": "@weekly",
    "@daily": "@daily", "@midnight": "@daily", "@hourly": "@hourly",
}
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def _cron_value(text: str, lo: int, hi: int, names: tuple[str, ...], field: str) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + lo
    if not text.isdigit():
        raise ValueError(f"{field} {text!r} is not a number")
    n = int(text)
    if field == "day of week" and n == 7:
        raise ValueError("day of week 7: write 0 for Sunday (Kubernetes reads 0-6)")
    if not lo <= n <= hi:
        raise ValueError(f"{field} {n} is outside {lo}-{hi}")
    return n


def _cron(v: object) -> str:
    """A 5-field cron schedule (minute hour day-of-month month day-of-week) or @daily/@hourly/..."""
    if not isinstance(v, str):
        raise ValueError("must be a cron schedule in quotes, such as '0 2 * * *'")
    text = " ".join(v.split())
    if text.lower() in _CRON_MACROS:
        return _CRON_MACROS[text.lower()]
    fields = text.split(" ")
    if len(fields) == 6:
        raise ValueError("has 6 fields; Kubernetes reads 5 (minute hour day month weekday): drop the seconds")
    if len(fields) != 5:
        raise ValueError("must be a 5-field cron schedule (minute hour day month weekday) such as '0 2 * * *', "
                         "or @daily / @hourly / @weekly / @monthly")
    for part, (field, lo, hi, names) in zip(fields, _CRON_FIELDS):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) < 1):
                raise ValueError(f"{field} step {step!r} must be a whole number of at least 1")
            if base in ("*", "?"):
                if base == "?" and field not in ("day of month", "day of week"):
                    raise ValueError(f"'?' is allowed in day of month / day of week only, not in {field}")
                continue
            first, _, last = base.partition("-")
            a = _cron_value(first, lo, hi, names, field)
            if last and _cron_value(last, lo, hi, names, field) < a:
                raise ValueError(f"{field} range {base!r} runs backwards")
    return text


# ---------------------------------------------------------------- names


def _host(v: object) -> str:
    """A bare DNS host name (or IP address): what an Ingress host and a certificate name take."""
    if not isinstance(v, str):
        raise ValueError("must be a host name such as shop.example.com")
    text = v.strip()
    if "://" in text or "/" in text:
        host = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", text).split("/")[0].split("@")[-1].split(":")[0]
        raise ValueError(f"is a URL; give the host name only: {host.lower()!r}")
    if ":" in text and not _is_ip(text):
        raise ValueError(f"carries a port; give {text.split(':')[0]!r} and set {NAMESPACE}:proxy.https_port")
    if _is_ip(text):
        return text
    text = text.lower()
    labels = text.split(".")
    if len(text) > 253 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        raise ValueError("must be a DNS name: labels of a-z, 0-9 and '-', at most 63 characters each, "
                         "no wildcard, no trailing dot")
    return text


def _cidr(v: object) -> object:
    """An address range as a NetworkPolicy ipBlock takes it: ``10.0.0.0/8``; a bare address is ``/32``
    (``/128``)."""
    if not isinstance(v, str):
        return v
    try:
        net = ipaddress.ip_network(v.strip(), strict=False)
    except ValueError:
        raise ValueError("must be a CIDR such as 10.0.0.0/8 or 203.0.113.7/32") from None
    if ipaddress.ip_address(v.strip().split("/")[0]) != net.network_address:
        raise ValueError(f"has host bits set; the network is {str(net)!r}")
    if net.prefixlen == 0:
        raise ValueError("would refuse everything; to give a service no egress, set its egress to false")
    return str(net)


#: Refused to services with egress on Kubernetes by default (``berth:kubernetes.egress_except``).
DEFAULT_EGRESS_EXCEPT = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _dns_label(v: object) -> object:
    if isinstance(v, str) and not _DNS_LABEL_RE.match(v):
        raise ValueError("must be a DNS label (RFC 1123): lowercase letters, digits and '-', start and end with a "
                         "letter or digit, at most 63 characters")
    return v


def _dns_subdomain(v: object) -> object:
    if isinstance(v, str) and (len(v) > 253 or not all(_DNS_LABEL_RE.match(p) for p in v.split("."))):
        raise ValueError("must be a DNS subdomain (RFC 1123): lowercase letters, digits, '-' and '.'")
    return v


def _image(v: object) -> object:
    if isinstance(v, str):
        m = _IMAGE_RE.match(v)
        if not m:
            hint = f"; Docker references are lowercase: {v.lower()!r}" if _IMAGE_RE.match(v.lower()) else ""
            raise ValueError("is not a valid image reference (registry/repository:tag or @sha256:digest)" + hint)
    return v


def _http_path(v: object) -> object:
    if isinstance(v, str) and (not v.startswith("/") or re.search(r"[\s?#]", v)):
        raise ValueError("must be a URL path starting with / (no spaces, query or fragment), e.g. /health")
    return v


def _abs_path(v: object) -> object:
    if isinstance(v, str) and (not v.startswith("/") or "/../" in f"{v}/" or re.search(r"\s", v)):
        raise ValueError("must be an absolute path inside the container, e.g. /tmp")
    return v


def _matching(pattern: str, rule: str):
    """A validator refusing strings that do not match ``pattern``, with a readable ``rule``."""
    compiled = re.compile(pattern)

    def check(v: object) -> object:
        if isinstance(v, str) and not compiled.match(v):
            raise ValueError(rule)
        return v

    return AfterValidator(check)


def _prefix(v: object) -> object:
    if isinstance(v, str) and not _DNS_LABEL_RE.match(v):
        fixed = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", v.lower())).strip("-")[:63].strip("-") or "app"
        raise ValueError("must be lowercase letters, digits and '-' (an RFC 1123 label, at most 63 characters): "
                         f"Docker image names and Kubernetes namespaces accept nothing else; e.g. {fixed!r}")
    return v


def _env_name(v: object) -> object:
    if isinstance(v, str) and not _ENV_RE.match(v):
        raise ValueError(f"{v!r} is not a valid environment variable name (letters, digits, _; not starting "
                         "with a digit)")
    return v


def _scalar_text(v: object) -> object:
    """Env values, settings and arguments as YAML writes them: ``true`` → "true", ``8000`` → "8000"."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return v


def _text_map(v: object) -> object:
    return {k: _scalar_text(x) for k, x in v.items()} if isinstance(v, dict) else v


def _text_list(v: object) -> object:
    return [_scalar_text(x) for x in v] if isinstance(v, list) else v


#: A volume or memory size as a Kubernetes binary quantity: ``10Gi`` (``10GB`` is refused with "write 10Gi").
Size = Annotated[str, BeforeValidator(_binary_size)]
Memory = Annotated[str, BeforeValidator(_binary_size)]
Cpu = Annotated[str, BeforeValidator(_cpu)]
JvmSize = Annotated[str, BeforeValidator(_jvm_size)]
Seconds = Annotated[int, BeforeValidator(_seconds)]
Percent = Annotated[int, BeforeValidator(_percent)]
Image = Annotated[str, AfterValidator(_image)]
HttpPath = Annotated[str, AfterValidator(_http_path)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]
EnvName = Annotated[str, AfterValidator(_env_name)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
Cidr = Annotated[str, BeforeValidator(_cidr)]
TextMap = Annotated[dict[str, str], BeforeValidator(_text_map)]
Args = Annotated[list[str], BeforeValidator(_text_list)]


class _Model(BaseModel):
    # Unknown keys are errors: a typo must never be silently ignored. Numbers where a string is
    # expected are taken as written (`version: 15` → "15", `version: 7.0` → "7.0").
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _keep_component_defaults(cls, data: Any) -> Any:
        """An object given in part keeps its component's own defaults for the keys not given
        (``resources: {cpu: 1}`` on a database keeps the database's memory limit, not a generic one),
        so the defaults in the reference are the ones that apply."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, info in cls.model_fields.items():
            default, given = info.default, data.get(name)
            if isinstance(default, BaseModel) and default.model_fields_set and isinstance(given, dict):
                out[name] = {**default.model_dump(mode="json", exclude_unset=True), **given}
        return out


# ---------------------------------------------------------------- shared settings


class Resources(_Model):
    """CPU/memory requests and limits. Each component has its own defaults (see the reference)."""

    cpu: Cpu = _field("100m", "CPU request (Kubernetes); Docker reserves nothing.", unit="cores (250m, 1, 1.5)")
    memory: Memory = _field("128Mi", "Memory request (Kubernetes).", unit="Mi/Gi")
    cpu_limit: Cpu = _field("500m", "CPU limit; on Docker becomes `cpus`.", unit="cores (250m, 1, 1.5)")
    memory_limit: Memory = _field("256Mi", "Memory limit; on Docker becomes `memory` (no swap).",
                                  unit="Mi/Gi")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> "Resources":
        if cpu_millis(self.cpu_limit) < cpu_millis(self.cpu):
            raise ValueError(f"cpu_limit {self.cpu_limit} is below the request {self.cpu}; raise cpu_limit")
        if memory_mib(self.memory_limit) < memory_mib(self.memory):
            raise ValueError(
                f"memory_limit {self.memory_limit} is below the request {self.memory}; raise memory_limit"
            )
        return self


class Health(_Model):
    """A health check: an HTTP ``path`` on the service port, or an exec ``command``."""

    path: Optional[HttpPath] = _field(None, "HTTP path probed on the service port, e.g. /health.")
    command: Optional[Args] = _field(None, "Exec check instead of HTTP, e.g. [pg_isready, -q].")
    ready_path: Optional[HttpPath] = _field(None, "Readiness path if it differs (e.g. /ready); needs `port`.")
    interval: Seconds = _field(10, "Time between checks.", unit="seconds (15s, 1m, 90)", ge=1, le=3600)
    timeout: Seconds = _field(5, "Time before a check fails.", unit="seconds (15s, 1m, 90)", ge=1, le=600)
    retries: int = _field(5, "Failures in a row before unhealthy.", ge=1, le=100)
    start_period: Seconds = _field(20, "Grace time at start when failures do not count.",
                                   unit="seconds (15s, 1m, 90)", ge=0, le=3600)

    @model_validator(mode="after")
    def _one_kind(self) -> "Health":
        if (self.path is None) == (self.command is None):
            raise ValueError("give exactly one of `path` (HTTP) or `command` (exec)")
        return self


class Autoscale(_Model):
    """Horizontal autoscaling (Kubernetes HPA; Docker runs ``min`` replicas)."""

    min: int = _field(..., "Fewest replicas (Docker runs this many).", ge=1)
    max: int = _field(..., "Most replicas.", ge=1, le=100)
    cpu: Optional[Percent] = _field(70, "Target average CPU utilisation of the request.", unit="percent (70, 70%)",
                                    ge=1, le=100)
    memory: Optional[Percent] = _field(None, "Target average memory utilisation of the request.",
                                       unit="percent (80, 80%)", ge=1, le=100)
    scale_down_after: Seconds = _field(
        300, "How long the load must stay low before replicas are removed (the HPA's scale-down "
        "stabilization window; Kubernetes' own default).", unit="seconds (5m, 90s, 300)", ge=0, le=3600)

    @model_validator(mode="after")
    def _range(self) -> "Autoscale":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); make min <= max")
        return self


OUTPUT_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class GeneratedSecret(_Model):
    """A secret generated per stack with pulumi-random and kept secret."""

    generate: Literal[True] = _field(True, "Generate the value (pulumi-random).")
    length: int = _field(32, "Length of the generated value.", unit="characters", ge=16, le=128)
    export: Optional[Annotated[str, _matching(OUTPUT_NAME, "must be a stack output name such as mcp_api_key "
                                              "(letters, digits, _)")]] = _field(
        None, "Also export the value as this stack output (a secret), for another stack's from_stack.")


class StackSecret(_Model):
    """A secret another stack exports (a Pulumi StackReference): one value shared by two stacks,
    e.g. the API key an app on one host accepts and a client on another host sends."""

    from_stack: Annotated[str, _matching(r"^[^/\s]+/[^/\s]+/[^/\s]+$", "must name a stack as "
                                         "<organization>/<project>/<stack> (with the local file backend: "
                                         "organization/<project>/<stack>)")] = _field(
        ..., "The stack that exports the value: <organization>/<project>/<stack>; with `pulumi login --local`, "
        "organization/<project>/<stack>.")
    output: Annotated[str, _matching(OUTPUT_NAME, "must be a stack output name such as mcp_api_key "
                                     "(letters, digits, _)")] = _field(
        ..., "The output's name in that stack (exported there with secret_env: {VAR: {generate: true, export: NAME}}).")


class Metrics(_Model):
    """Where Prometheus scrapes the service."""

    path: HttpPath = _field("/metrics", "HTTP path of the Prometheus metrics.")
    port: Optional[int] = _field(None, "Port of the metrics; defaults to the service port.", ge=1, le=65535)


# ---------------------------------------------------------------- components


class DatabaseEngine(str, Enum):
    POSTGRES = "postgres"
    MONGODB = "mongodb"


DEFAULT_DB_VERSION = {DatabaseEngine.POSTGRES: "15", DatabaseEngine.MONGODB: "7.0"}
DB_PORT = {DatabaseEngine.POSTGRES: 5432, DatabaseEngine.MONGODB: 27017}


class DatabaseSpec(_Model):
    """A database. Defaults: PostgreSQL 15, 10Gi volume, database and user named after the key."""

    engine: DatabaseEngine = _field(DatabaseEngine.POSTGRES, "postgres or mongodb.")
    version: Optional[str] = _field(None, "Engine version (image tag); defaults to 15 (postgres) / 7.0 (mongodb).")
    image: Optional[Image] = _field(None, "Image override; defaults to the official image for the version.")
    database: Optional[str] = _field(None, "Database name; defaults to the config key with - as _.")
    user: Optional[str] = _field(None, "Owner role; defaults to the config key with - as _.")
    storage: Size = _field("10Gi", "Volume size (Kubernetes PVC request).", unit="Mi/Gi")
    replica: bool = _field(False, "Postgres only: add a streaming-replication read replica.")
    resources: Resources = _field(Resources(cpu="250m", memory="256Mi", cpu_limit="1", memory_limit="1Gi"),
                                  "CPU/memory of the database (and its replica).")
    settings: TextMap = _field(default_factory=dict, description="Postgres only: `-c key=value` server settings.")

    @model_validator(mode="after")
    def _engine_specific(self) -> "DatabaseSpec":
        if self.replica and self.engine != DatabaseEngine.POSTGRES:
            raise ValueError("`replica: true` is supported for engine postgres only; remove it")
        if self.settings and self.engine != DatabaseEngine.POSTGRES:
            raise ValueError("`settings` are postgres server settings; remove them for engine mongodb")
        ident = _PG_IDENT_RE if self.engine == DatabaseEngine.POSTGRES else _MONGO_NAME_RE
        for field in ("database", "user"):
            value = getattr(self, field)
            if value is not None and not ident.match(value):
                rule = ("lowercase letters, digits and _, starting with a letter or _, at most 63 characters "
                        "(Postgres folds unquoted names to lowercase)" if self.engine == DatabaseEngine.POSTGRES
                        else "letters, digits, _ and -, at most 63 characters")
                raise ValueError(f"{field} {value!r} must be {rule}; e.g. {re.sub(r'[^a-z0-9_]', '_', value.lower())!r}")
        for key in self.settings:
            if not re.match(r"^[a-z_][a-z0-9_.]*$", key):
                raise ValueError(f"settings key {key!r} is not a Postgres setting name (e.g. shared_buffers)")
        return self


class CacheSpec(_Model):
    """A Redis cache with a password and AOF persistence. Defaults: Redis 7.2, 1Gi volume."""

    engine: Literal["redis"] = _field("redis", "Always redis.")
    version: str = _field("7.2", "Redis version; the image is redis:<version>.")
    image: Optional[Image] = _field(None, "Image override.")
    storage: Size = _field("1Gi", "Volume size for the append-only file.", unit="Mi/Gi")
    maxmemory: Optional[Annotated[str, BeforeValidator(_redis_memory)]] = _field(
        None, "Memory for data, below memory_limit; evicts least-recently-used keys when full. Unset: no limit.",
        unit="Redis size (256mb, 1gb; 256Mi → 256mb)",
    )
    resources: Resources = _field(Resources(cpu="100m", memory="128Mi", cpu_limit="500m", memory_limit="512Mi"),
                                  "CPU/memory of Redis; with maxmemory and no memory_limit, the limit is "
                                  "4/3 of maxmemory (at least 512Mi).")

    @model_validator(mode="before")
    @classmethod
    def _room_for_maxmemory(cls, data: Any) -> Any:
        """Redis uses more than ``maxmemory`` (buffers, fragmentation, the AOF rewrite's fork): a
        container limit at or below it gets Redis killed instead of evicting. Without a limit of the
        user's own, the default grows to 4/3 of maxmemory (rounded up to 64Mi)."""
        if not isinstance(data, dict) or data.get("maxmemory") is None:
            return data
        given = data.get("resources")
        if given is not None and (not isinstance(given, dict) or "memory_limit" in given):
            return data
        try:
            need = redis_bytes(_redis_memory(data["maxmemory"])) * 4 / 3 / 1024 ** 2
        except ValueError:
            return data  # the field validator reports it
        limit = max(512, -(-int(need) // 64) * 64)
        return {**data, "resources": {**(given or {}), "memory_limit": f"{limit}Mi"}} if limit > 512 else data


class BrokerSpec(_Model):
    """A RabbitMQ message broker: generated password, persistent volume, management UI (internal only).

    Services that list it in ``uses`` get ``AMQP_URL`` (secret). Defaults: RabbitMQ 3.13 with the
    management plugin, user and vhost named after the config key, 2Gi volume.
    """

    engine: Literal["rabbitmq"] = _field("rabbitmq", "Always rabbitmq.")
    version: str = _field("3.13", "RabbitMQ version; the image is rabbitmq:<version>-management.")
    image: Optional[Image] = _field(None, "Image override (keep rabbitmq-diagnostics for the health check).")
    user: Optional[Annotated[str, _matching(r"^[A-Za-z0-9_.-]{1,64}$", "must be letters, digits, '_', '.' and "
                                            "'-' (it is part of AMQP_URL)")]] = _field(
        None, "Default user; defaults to the config key with - as _.")
    vhost: Optional[Annotated[str, _matching(r"^[A-Za-z0-9_./-]{1,64}$", "must be letters, digits, '_', '.', "
                                             "'/' and '-'")]] = _field(
        None, "Default virtual host; defaults to the config key.")
    storage: Size = _field("2Gi", "Volume size for /var/lib/rabbitmq (queues, Erlang cookie).", unit="Mi/Gi")
    resources: Resources = _field(Resources(cpu="100m", memory="256Mi", cpu_limit="1", memory_limit="512Mi"),
                                  "CPU/memory of RabbitMQ.")


class GraphDatabaseSpec(_Model):
    """A Neo4j graph database (community edition): generated password, persistent volume, internal only.

    Services that list it in ``uses`` get ``NEO4J_URI`` (``bolt://<name>:7687``), ``NEO4J_USER`` and
    ``NEO4J_PASSWORD`` (secrets); with the mapping form ``{graph: GRAPH_URI}`` the names become
    ``GRAPH_URI`` / ``GRAPH_USER`` / ``GRAPH_PASSWORD``. Defaults: Neo4j 4.4, 10Gi volume, 512m heap.
    """

    engine: Literal["neo4j"] = _field("neo4j", "Always neo4j.")
    version: str = _field("4.4", "Neo4j version; the image is neo4j:<version>.")
    image: Optional[Image] = _field(None, "Image override.")
    storage: Size = _field("10Gi", "Volume size for /data.", unit="Mi/Gi")
    heap: JvmSize = _field("512m", "JVM heap (dbms.memory.heap.max_size); heap + page_cache < memory_limit.",
                           unit="JVM size (512m, 2g; 1Gi → 1g)")
    page_cache: JvmSize = _field("256m", "Page cache (dbms.memory.pagecache.size).",
                                 unit="JVM size (256m, 1g; 1Gi → 1g)")
    resources: Resources = _field(Resources(cpu="250m", memory="1Gi", cpu_limit="1", memory_limit="1536Mi"),
                                  "CPU/memory of Neo4j.")

    @model_validator(mode="after")
    def _fits(self) -> "GraphDatabaseSpec":
        used = jvm_mib(self.heap) + jvm_mib(self.page_cache)
        if used >= memory_mib(self.resources.memory_limit):
            raise ValueError(
                f"heap {self.heap} + page_cache {self.page_cache} ({used}Mi) do not fit in resources.memory_limit "
                f"{self.resources.memory_limit}; the JVM needs memory beyond both: lower them or raise memory_limit"
            )
        return self


class ServiceSpec(_Model):
    """An application container: web app (with ``port``), worker, scheduler or bot (without)."""

    image: Image = _field(..., "Image with a pinned tag or digest (not :latest).")
    command: Optional[Args] = _field(None, "Replaces the image's CMD (compose `command`).")
    entrypoint: Optional[Args] = _field(None, "Replaces the image's ENTRYPOINT; rarely needed.")
    port: Optional[int] = _field(None, "Container port; omit for workers/bots.", ge=1, le=65535)
    replicas: int = _field(1, "Replicas (Docker: containers); not with autoscale.", ge=1, le=100)
    autoscale: Optional[Autoscale] = _field(None, "Scale between min and max (Kubernetes HPA; Docker runs min); "
                                            "not with replicas.")
    env: TextMap = _field(default_factory=dict, description="Plain environment variables.")
    secret_env: dict[str, Union[str, GeneratedSecret, StackSecret]] = _field(
        default_factory=dict,
        description="Env from secrets: VAR: a name in berth:secrets, VAR: {generate: true} (+ export: OUTPUT to "
                    "share it), or VAR: {from_stack: org/project/stack, output: OUTPUT} (another stack's export).",
    )
    uses: Union[list[str], dict[str, str]] = _field(
        default_factory=list,
        description="Stores to connect to; a list injects DATABASE_URL / MONGODB_URI / REDIS_URL / AMQP_URL / "
                    "NEO4J_URI (+ DATABASE_REPLICA_URL), a map store: VAR names the variable.",
    )
    depends_on: list[str] = _field(default_factory=list, description="Services or stores to start first.")
    health: Optional[Health] = _field(None, "Health check; defaults to HTTP GET /health when a port is set.")
    metrics: Optional[Metrics] = _field(None, "Prometheus scraping of the service.")
    resources: Resources = _field(Resources(), "CPU/memory of each replica.")
    run_as_user: int = _field(10001, "Non-root UID the container runs as.", ge=1)
    run_as_root: bool = _field(
        False, "Opt in to root (the policy pack blocks it unless allowed).", targets=DOCKER_ONLY,
        why="the stack's namespace enforces Pod Security 'restricted', which admits no root pods; build the image "
            "to run as a non-root user and remove run_as_root",
    )
    read_only_root: bool = _field(True, "Read-only root filesystem; writable_paths stay writable.")
    writable_paths: list[AbsPath] = _field(default_factory=lambda: ["/tmp"],
                                           description="Writable (tmpfs) paths in a read-only root.")
    egress: bool = _field(False, "May open connections outside the stack (a bot or worker calling an external "
                          "API); none unless asked. Kubernetes still refuses berth:kubernetes.egress_except.")
    public_url: Optional[str] = _field(None, "Reach an app on another host by URL (distributed stacks).")

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        name = v.split("@")[0].rsplit("/", 1)[-1]
        if "@sha256:" not in v and (":" not in name or name.endswith(":latest")):
            raise ValueError("pin the image to a tag or digest (e.g. myapp:1.4.2), not :latest or no tag")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not _ENV_RE.match(k):
                raise ValueError(f"env name {k!r} is not a valid variable name")
        return v

    @field_validator("uses")
    @classmethod
    def _uses_vars(cls, v: Union[list[str], dict[str, str]]) -> Union[list[str], dict[str, str]]:
        if isinstance(v, dict):
            for store, var in v.items():
                if not _ENV_RE.match(var):
                    raise ValueError(f"{store}: {var!r} is not a valid variable name")
        return v


class RateLimit(_Model):
    """Requests per second per client address, with a burst allowance."""

    rate: Annotated[int, BeforeValidator(lambda v: _rate(v))] = _field(
        ..., "Requests per second per client IP.", unit="requests/second (10, 10r/s, 600r/m)", ge=1)
    burst: int = _field(0, "Requests allowed above the rate before 429/503.", unit="requests", ge=0)


def _rate(v: object) -> object:
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:r?/\s*([sm]))?\s*", v)
        if not m:
            raise ValueError("must be requests per second such as 10 or 10r/s")
        n = int(m.group(1))
        if m.group(2) == "m":
            if n % 60:
                raise ValueError(f"{n}r/m is not a whole number per second; Berth limits per second (e.g. {max(1, n // 60)}r/s)")
            n //= 60
        return n
    return v


class Route(_Model):
    """A path routed by the proxy to a service."""

    path: HttpPath = _field(..., "Path prefix, e.g. / or /api/.")
    service: str = _field(..., "Service (with a port) that serves the path.")
    rate_limit: Optional[RateLimit] = _field(None, "Per-client rate limit for this path.")
    access_log: bool = _field(True, "Log requests to this path (nginx).", targets=DOCKER_ONLY, wrong_target="warn")
    cache_static: bool = _field(False, "Add 1-year cache headers (static assets; nginx).", targets=DOCKER_ONLY,
                                wrong_target="warn")


class TlsMode(str, Enum):
    SELF_SIGNED = "self-signed"
    FILES = "files"
    SECRET = "secret"
    ACME = "acme"


class TlsSpec(_Model):
    """Where the proxy's certificate comes from (see the README's TLS table)."""

    mode: TlsMode = _field(TlsMode.SELF_SIGNED, "self-signed (generated), secret (from berth:secrets), files "
                           "(read where Pulumi runs) or acme (cert-manager, Kubernetes).")
    cert_secret: str = _field("tls-cert", "Mode secret: name in berth:secrets holding the PEM certificate chain.")
    key_secret: str = _field("tls-key", "Mode secret: name in berth:secrets holding the PEM private key.")
    cert_file: Optional[str] = _field(None, "Mode files: PEM certificate chain path on the machine running Pulumi.")
    key_file: Optional[str] = _field(None, "Mode files: PEM key path on the machine running Pulumi.")
    cluster_issuer: str = _field("letsencrypt-prod", "Mode acme: cert-manager ClusterIssuer.",
                                 targets=KUBERNETES_ONLY)
    email: Optional[str] = _field(None, "Mode acme: contact address (informational; the ClusterIssuer has its own).",
                                  targets=KUBERNETES_ONLY)

    @model_validator(mode="after")
    def _mode_fields(self) -> "TlsSpec":
        if self.mode == TlsMode.FILES and not (self.cert_file and self.key_file):
            raise ValueError("mode `files` needs cert_file and key_file")
        owners = {"cert_file": TlsMode.FILES, "key_file": TlsMode.FILES, "cert_secret": TlsMode.SECRET,
                  "key_secret": TlsMode.SECRET, "cluster_issuer": TlsMode.ACME, "email": TlsMode.ACME}
        for field, mode in owners.items():
            if field in self.model_fields_set and self.mode != mode:
                raise ValueError(f"`{field}` belongs to mode {mode.value}, but mode is {self.mode.value}; "
                                 f"remove {field} or set mode: {mode.value}")
        return self


class ProxySpec(_Model):
    """nginx on Docker (the only published container), an Ingress on Kubernetes."""

    routes: list[Route] = _field(..., "Paths routed to services.", min_length=1)
    tls: TlsSpec = _field(TlsSpec(), "HTTPS certificate.")
    image: Image = _field("nginxinc/nginx-unprivileged:1.27.3", "nginx image (unprivileged).", targets=DOCKER_ONLY)
    http_port: int = _field(80, "Host port for HTTP (redirects to HTTPS).", ge=1, le=65535, targets=DOCKER_ONLY)
    https_port: int = _field(443, "Host port for HTTPS.", ge=1, le=65535, targets=DOCKER_ONLY)
    bind_address: str = _field("0.0.0.0", "Host address the proxy publishes on.", targets=DOCKER_ONLY)
    resolver: Optional[str] = _field(
        "127.0.0.11",
        "DNS server nginx re-resolves upstreams with (Docker's embedded DNS); null resolves once at start "
        "(nginx < 1.27.3).",
        targets=DOCKER_ONLY,
    )
    ingress_class: DnsSubdomain = _field("nginx", "IngressClass of the Ingresses.", targets=KUBERNETES_ONLY)
    health_path: HttpPath = _field("/health", "The proxy's own unlogged health endpoint.", targets=DOCKER_ONLY)
    resources: Resources = _field(Resources(cpu="100m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi"),
                                  "CPU/memory of nginx.", targets=DOCKER_ONLY)

    @field_validator("bind_address")
    @classmethod
    def _ip(cls, v: str) -> str:
        if not _is_ip(v):
            raise ValueError("must be an IP address of the host, e.g. 0.0.0.0 or 127.0.0.1")
        return v

    @model_validator(mode="after")
    def _ports(self) -> "ProxySpec":
        if self.http_port == self.https_port:
            raise ValueError(f"http_port and https_port are both {self.http_port}; give them different ports")
        return self


class BackupTier(_Model):
    """One schedule of dumps with its own retention."""

    name: DnsLabel = _field(..., "Tier name (a directory, and part of the CronJob name).")
    schedule: Annotated[str, BeforeValidator(_cron)] = _field(
        ..., "When to dump.", unit="cron, 5 fields in UTC ('0 2 * * *', @daily)")
    keep: int = _field(..., "Dumps of this tier kept (older ones are deleted).", unit="dumps", ge=1, le=1000)


class S3Spec(_Model):
    """Copy each dump to S3-compatible storage."""

    endpoint: Annotated[str, _matching(r"^https?://[^\s/]+(/\S*)?$", "must be a URL with its scheme, e.g. "
                                       "https://s3.eu-central-1.amazonaws.com")] = _field(
        ..., "S3 endpoint URL, e.g. https://s3.eu-central-1.amazonaws.com.")
    bucket: Annotated[str, _matching(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "must be an S3 bucket name: 3-63 "
                                     "lowercase letters, digits, '.' and '-'")] = _field(..., "Bucket name.")
    prefix: str = _field("", "Key prefix inside the bucket, e.g. backups/.")
    access_key_secret: str = _field(..., "Name in berth:secrets holding the access key id.")
    secret_key_secret: str = _field(..., "Name in berth:secrets holding the secret key.")


class BackupSpec(_Model):
    """Scheduled logical dumps of one database. Default: daily at 02:00, 7 kept."""

    tiers: list[BackupTier] = _field(
        default_factory=lambda: [BackupTier(name="daily", schedule="0 2 * * *", keep=7)], min_length=1,
        description="Dump schedules with retention; default daily at 02:00 UTC, 7 kept.",
    )
    storage: Size = _field("20Gi", "Backup volume size.", unit="Mi/Gi")
    s3: Optional[S3Spec] = _field(None, "Also upload dumps to S3-compatible storage.")
    pre_deploy: bool = _field(False, "Take a dump before each deploy (a one-shot job the apps wait for).")
    restore_from: Optional[str] = _field(
        None, "Run a one-shot restore of this dump (path under the backup volume, or 'latest')."
    )
    image: Optional[Image] = _field(None, "Image with pg_dump/mongodump (+ supercronic on Docker); "
                                    "defaults to the database image (Kubernetes) or a built one (Docker).")


class MonitoringSpec(_Model):
    """Prometheus, exporters, Pushgateway (backup results) and Grafana."""

    enabled: bool = _field(True, "Run monitoring.")
    prometheus_image: Image = _field("prom/prometheus:v2.53.2", "Prometheus image.")
    grafana_image: Image = _field("grafana/grafana:11.2.2", "Grafana image.")
    postgres_exporter_image: Image = _field("quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
                                            "postgres-exporter image.")
    redis_exporter_image: Image = _field("oliver006/redis_exporter:v1.62.0", "redis_exporter image.")
    mongodb_exporter_image: Image = _field("percona/mongodb_exporter:0.40.0", "mongodb_exporter image.")
    pushgateway_image: Image = _field("prom/pushgateway:v1.9.0", "Pushgateway image.")
    grafana: bool = _field(True, "Run Grafana.")
    grafana_path: Optional[HttpPath] = _field("/grafana/", "Route Grafana through the proxy here (null: no route).")
    retention: Annotated[str, BeforeValidator(_prometheus_duration)] = _field(
        "15d", "How long Prometheus keeps samples.", unit="duration (15d, 2w, 1y; '15 days' → 15d)")
    storage: Size = _field("10Gi", "Prometheus volume size.", unit="Mi/Gi")
    grafana_allow_from: list[Cidr] = _field(
        default_factory=list, description="Client addresses that may reach Grafana through the proxy (nginx allow/deny; "
        "Kubernetes: its own Ingress with whitelist-source-range); empty: anyone (Grafana's login still applies).",
        unit="CIDRs (10.0.0.0/8, 203.0.113.7/32)")

    @field_validator("grafana_path")
    @classmethod
    def _trailing_slash(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.endswith("/"):
            raise ValueError(f"must end with / (Grafana serves from a sub path): {v + '/'!r}")
        return v

    @model_validator(mode="after")
    def _grafana(self) -> "MonitoringSpec":
        if not self.grafana and "grafana_path" in self.model_fields_set and self.grafana_path:
            raise ValueError("grafana_path is set but grafana is false; remove grafana_path or enable grafana")
        if self.grafana_allow_from and not (self.grafana and self.grafana_path):
            raise ValueError("grafana_allow_from is set but Grafana has no route through the proxy; set grafana_path "
                             "or remove grafana_allow_from")
        return self


class LoggingSpec(_Model):
    """Central logs (ELK): Elasticsearch (single node, security on, generated ``elastic`` password),
    Logstash receiving JSON lines on TCP 5000 and Beats on 5044, and Kibana. Internal only; Kibana is
    reachable through the Proxy when ``kibana_path`` is set. Every service gets ``LOGSTASH_HOST`` and
    ``LOGSTASH_PORT`` to ship its logs to (an app-level log transport: a host-level collector would
    need the host mounts the policy pack forbids)."""

    enabled: bool = _field(True, "Run the logging stack.")
    elasticsearch_image: Image = _field("docker.elastic.co/elasticsearch/elasticsearch:7.17.24",
                                        "Elasticsearch image (7.x, where Kibana may log in as elastic).")
    logstash_image: Image = _field("docker.elastic.co/logstash/logstash:7.17.24", "Logstash image.")
    kibana_image: Image = _field("docker.elastic.co/kibana/kibana:7.17.24", "Kibana image.")
    kibana: bool = _field(True, "Run Kibana.")
    kibana_path: Optional[str] = _field("/kibana", "Route Kibana through the proxy here (no trailing slash).")
    kibana_allow_from: list[Cidr] = _field(
        default_factory=list, description="Client addresses that may reach Kibana through the proxy (nginx allow/deny; "
        "Kubernetes: its own Ingress with whitelist-source-range); empty: anyone (Kibana's login still applies).",
        unit="CIDRs (10.0.0.0/8, 203.0.113.7/32)")
    heap: JvmSize = _field("512m", "Elasticsearch JVM heap (-Xms/-Xmx); at most half of memory_limit.",
                           unit="JVM size (512m, 1g; 1Gi → 1g)")
    storage: Size = _field("10Gi", "Elasticsearch volume size.", unit="Mi/Gi")
    resources: Resources = _field(Resources(cpu="250m", memory="1Gi", cpu_limit="1", memory_limit="2Gi"),
                                  "CPU/memory of Elasticsearch.")

    @field_validator("kibana_path")
    @classmethod
    def _path(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and (not v.startswith("/") or len(v) < 2 or v.endswith("/") or re.search(r"[\s?#]", v)):
            raise ValueError("must start with / and not end with / (e.g. /kibana)")
        return v

    @model_validator(mode="after")
    def _fits(self) -> "LoggingSpec":
        if not self.kibana and "kibana_path" in self.model_fields_set and self.kibana_path:
            raise ValueError("kibana_path is set but kibana is false; remove kibana_path or enable kibana")
        if self.kibana_allow_from and not (self.kibana and self.kibana_path):
            raise ValueError("kibana_allow_from is set but Kibana has no route through the proxy; set kibana_path or "
                             "remove kibana_allow_from")
        if 2 * jvm_mib(self.heap) > memory_mib(self.resources.memory_limit):
            raise ValueError(
                f"heap {self.heap} is more than half of resources.memory_limit {self.resources.memory_limit}; "
                "Elasticsearch needs the rest off-heap: lower heap or raise memory_limit"
            )
        return self


class DockerCapacity(_Model):
    """The Docker host's size, checked before anything is created (``components/capacity.py``).

    Docker enforces only limits, so limits are what is added up: every container of the stack
    (services at ``replicas`` or the autoscaler's ``min``, and Berth's own: exporters, Prometheus,
    Grafana, Pushgateway, backup scheduler and jobs, proxy, read replica, logging). Memory limits
    must fit what the host leaves for containers: memory cannot be taken back, and on Docker nothing
    protects a container when the host runs out (the kernel kills the largest process, often the
    database). CPU is not summed: a host with fewer CPUs than the limits add up to runs everything,
    more slowly; but no container's limit may exceed the host's CPUs (Docker refuses to create it).
    Two stacks on one host each declare their share.
    """

    cpus: Cpu = _field(..., "CPUs of the host (or of this stack's share of it).", unit="cores (2, 1.5, 500m)")
    memory: Memory = _field(..., "Memory of the host (or of this stack's share of it).", unit="Mi/Gi")
    reserved_memory: Memory = _field("256Mi", "Memory kept for the OS, the Docker daemon and anything else on the "
                                     "host that is not this stack.", unit="Mi/Gi")
    memory_overcommit: float = _field(
        1, "How far the containers' memory limits may add up beyond memory - reserved_memory: 1 = they must fit; "
        "1.5 accepts that they fit only if not all containers reach their limit at once.",
        unit="factor (1, 1.5)", ge=1, le=10)

    @model_validator(mode="after")
    def _room(self) -> "DockerCapacity":
        if cpu_millis(self.cpus) < 100:
            raise ValueError(f"cpus {self.cpus} is less than 0.1 CPU; give the host's CPUs, e.g. cpus: 2")
        if memory_mib(self.reserved_memory) >= memory_mib(self.memory):
            raise ValueError(f"reserved_memory {self.reserved_memory} leaves nothing of memory {self.memory} for "
                             "containers; lower reserved_memory or raise memory")
        return self


class KubernetesCapacity(_Model):
    """The cluster's nodes, checked before anything is created (``components/capacity.py``).

    The scheduler places pods by their requests: the stack's requests (every pod, Berth's own
    included, services at ``replicas`` or the autoscaler's ``min``; each CronJob and Job as one
    pod, since schedules may coincide and a pre-deploy dump runs while the stack runs) must fit
    the nodes' allocatable room, and each pod must fit one node. Limits are burst room above the
    requests: when a node runs short the kubelet evicts pods that use more than they requested, so
    memory limits may add up to ``memory_overcommit`` times the allocatable memory. CPU limits are
    not summed (CPU is throttled, never taken back by killing).
    """

    nodes: int = _field(1, "Nodes that run the stack's pods (all of the same size).", ge=1, le=1000)
    cpus: Cpu = _field(..., "CPUs of each node.", unit="cores (2, 1.5, 500m)")
    memory: Memory = _field(..., "Memory of each node.", unit="Mi/Gi")
    reserved_cpu: Cpu = _field("250m", "CPU of each node not for the stack: kubelet, container runtime, OS and the "
                               "cluster's own pods (DNS, ingress controller, cert-manager).",
                               unit="cores (250m, 1)")
    reserved_memory: Memory = _field("1Gi", "Memory of each node not for the stack: kubelet, container runtime, OS, "
                                     "eviction threshold and the cluster's own pods. `kubectl describe node` shows "
                                     "capacity - allocatable; add the requests of kube-system and ingress pods.",
                                     unit="Mi/Gi")
    memory_overcommit: float = _field(
        2, "How far the pods' memory limits may add up beyond the allocatable memory (requests must always fit): "
        "1 = limits must fit too.", unit="factor (1, 2)", ge=1, le=10)

    @model_validator(mode="after")
    def _room(self) -> "KubernetesCapacity":
        if memory_mib(self.reserved_memory) >= memory_mib(self.memory):
            raise ValueError(f"reserved_memory {self.reserved_memory} leaves nothing of memory {self.memory} for "
                             "pods; lower reserved_memory or raise memory")
        if cpu_millis(self.reserved_cpu) >= cpu_millis(self.cpus):
            raise ValueError(f"reserved_cpu {self.reserved_cpu} leaves nothing of cpus {self.cpus} for pods; "
                             "lower reserved_cpu or raise cpus")
        return self


class DockerSpec(_Model):
    """The Docker host."""

    host: Optional[Annotated[str, _matching(r"^(unix|tcp|ssh|npipe|http|https)://\S+$", "must be a Docker host "
                                            "URL: ssh://user@host, tcp://host:2376 or unix:///var/run/docker.sock")]] = _field(
        None, "Docker host, e.g. ssh://deploy@host; default: the local engine.", targets=DOCKER_ONLY)
    capacity: Optional[DockerCapacity] = _field(
        None, "Size of the host: the containers' memory limits must fit it (see README, capacity); none: not "
        "checked.", targets=DOCKER_ONLY)


class KubernetesSpec(_Model):
    """The cluster and namespace."""

    namespace: Optional[DnsLabel] = _field(None, "Namespace; defaults to the resource name prefix.",
                                           targets=KUBERNETES_ONLY)
    storage_class: Optional[DnsSubdomain] = _field(None, "StorageClass of the PVCs; default: the cluster's.",
                                                   targets=KUBERNETES_ONLY)
    context: Optional[str] = _field(None, "kubeconfig context; default: the current one.", targets=KUBERNETES_ONLY)
    ingress_namespace: DnsLabel = _field("ingress-nginx", "Namespace of the ingress controller (allowed in by "
                                         "NetworkPolicy).", targets=KUBERNETES_ONLY)
    capacity: Optional[KubernetesCapacity] = _field(
        None, "Size of the nodes: the pods' requests must fit them (see README, capacity); none: not checked.",
        targets=KUBERNETES_ONLY)
    # The API server cannot be named in a NetworkPolicy, and what a policy sees is not the `kubernetes`
    # Service's ClusterIP but the endpoint it is translated to, which each cluster puts elsewhere (a
    # control-plane node, a cloud's private or public endpoint: `kubectl get endpoints kubernetes -n
    # default`). Refusing the private ranges covers it on most clusters (kubeadm, k3s, private managed
    # endpoints) without asking; a public endpoint is one more entry here. Pods also get no service
    # account token (automountServiceAccountToken: false), so the API server would not know them anyway.
    egress_except: list[Cidr] = _field(
        default_factory=lambda: list(DEFAULT_EGRESS_EXCEPT),
        description="Addresses refused to services with egress (NetworkPolicy ipBlock except): the private and "
                    "link-local ranges, where the cluster's API server, nodes and cloud services live; add a public "
                    "API server endpoint (kubectl get endpoints kubernetes -n default). The cloud metadata addresses "
                    "(169.254.169.254, fd00:ec2::254, 100.100.100.200) are refused whatever this says.",
        unit="CIDRs (10.0.0.0/8, 203.0.113.7/32)", targets=KUBERNETES_ONLY)


class StackSpec(_Model):
    """A whole stack. Its keys are the top-level ``berth:`` config keys."""

    target: Target = _field(..., "docker or kubernetes.")
    environment: Environment = _field(Environment.DEV, "dev, staging or prod; prod protects and retains data "
                                      "volumes/PVCs/StatefulSets/namespace.")
    name: Optional[Annotated[str, AfterValidator(_prefix)]] = _field(None, "Resource name prefix (an RFC 1123 label); defaults to <project>-<stack>. "
                                 "Two stacks on one Docker host must differ.")
    domain: Annotated[str, BeforeValidator(_host)] = _field(
        "localhost", "Public host name of the proxy / Ingress (no scheme, no path).")
    docker: DockerSpec = _field(DockerSpec(), "Docker target settings.", targets=DOCKER_ONLY)
    kubernetes: KubernetesSpec = _field(KubernetesSpec(), "Kubernetes target settings.", targets=KUBERNETES_ONLY)
    databases: dict[str, DatabaseSpec] = _field(default_factory=dict, description="Databases by name.")
    caches: dict[str, CacheSpec] = _field(default_factory=dict, description="Redis caches by name.")
    brokers: dict[str, BrokerSpec] = _field(default_factory=dict, description="Message brokers (RabbitMQ) by name.")
    graphs: dict[str, GraphDatabaseSpec] = _field(default_factory=dict, description="Graph databases (Neo4j) by name.")
    services: dict[str, ServiceSpec] = _field(default_factory=dict, description="Application containers by name.")
    proxy: Optional[ProxySpec] = _field(None, "The HTTPS edge; none: nothing is published.")
    backups: dict[str, BackupSpec] = _field(default_factory=dict, description="Backups by database name.")
    monitoring: Optional[MonitoringSpec] = _field(None, "Prometheus and Grafana; none: no monitoring.")
    logging: Optional[LoggingSpec] = _field(None, "Central logs (Elasticsearch, Logstash, Kibana).")
    secrets: dict[str, str] = _field(default_factory=dict, description="Secret values by name, each set with "
                                     "`pulumi config set --secret --path 'berth:secrets.NAME'`.")

    @property
    def protect(self) -> bool:
        return self.environment == Environment.PROD


# ---------------------------------------------------------------- walking the models


def _strip(tp: Any) -> Any:
    """``Optional[Annotated[X, ...]]`` → ``X`` (a Union of several types stays a Union)."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union and sum(a is not type(None) for a in get_args(tp)) == 1:
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _descend(tp: Any, part: Any) -> Any:
    """The type found at ``part`` (a field name, map key, list index or union branch) inside ``tp``."""
    tp = _strip(tp)
    if _is_model(tp):
        info = tp.model_fields.get(str(part))
        return info.annotation if info else None
    origin = get_origin(tp)
    if origin is dict:
        return get_args(tp)[1]
    if origin is list:
        return get_args(tp)[0]
    if origin is Union:
        for arg in get_args(tp):
            if getattr(_strip(arg), "__name__", None) == part:
                return arg
        for arg in get_args(tp):
            found = _descend(arg, part)
            if found is not None:
                return found
    return None


def _model_at(loc: tuple) -> Optional[type[BaseModel]]:
    tp: Any = StackSpec
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return None
    tp = _strip(tp)
    return tp if _is_model(tp) else None


#: Placeholder for the keys of a map, by field name.
_MAP_KEY = {"backups": "DB", "secret_env": "VAR", "env": "VAR", "settings": "SETTING", "uses": "STORE"}


def _type_text(tp: Any) -> str:
    tp = _strip(tp)
    if tp is type(None):
        return "null"
    if _is_model(tp):
        return "object"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return " \\| ".join(f"`{m.value}`" for m in tp)
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f"`{str(a).lower() if isinstance(a, bool) else a}`" for a in get_args(tp))
    if origin is list:
        return f"list of {_type_text(get_args(tp)[0])}"
    if origin is dict:
        return f"map of {_type_text(get_args(tp)[1])}"
    if origin is Union:
        return " or ".join(_type_text(a) for a in get_args(tp) if a is not type(None))
    return {str: "string", int: "integer", bool: "boolean", float: "number"}.get(tp, getattr(tp, "__name__", str(tp)))


def _extra(info: Any) -> dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _default_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, (list, dict)):
        if not value:
            return "`[]`" if isinstance(value, list) else "`{}`"
        dumped = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value] \
            if isinstance(value, list) else value
        return f"`{json.dumps(dumped)}`"
    return f"`{value}`"


def reference_rows() -> list[dict[str, str]]:
    """Every config key with its type, unit, default, targets and description, generated from the
    models (``berth/docs.py`` writes them into the README). Map keys are NAME (or DB, VAR, ...);
    list items ``[]``. A key's default inside a component's own default object (e.g. each
    component's ``resources``) is that component's default."""
    rows: list[dict[str, str]] = []

    def visit(model: type[BaseModel], prefix: str, defaults: Optional[BaseModel], targets: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}{name}" if prefix.endswith(":") else f"{prefix}.{name}"
            extra = _extra(info)
            where = tuple(extra.get("targets", targets))
            if defaults is not None:
                default: Any = getattr(defaults, name)
            elif info.is_required():
                default = ...
            else:
                default = info.get_default(call_default_factory=True)
            rows.append({
                "key": key,
                "type": _type_text(info.annotation),
                "unit": extra.get("unit", ""),
                "default": "required" if default is ... else _default_text(default),
                "targets": "both" if set(where) == set(BOTH) else where[0],
                "description": info.description or "",
            })
            tp = _strip(info.annotation)
            suffix, item = "", tp
            if get_origin(tp) is dict:
                suffix, item = f".{_MAP_KEY.get(name, 'NAME')}", _strip(get_args(tp)[1])
            elif get_origin(tp) is list:
                suffix, item = "[]", _strip(get_args(tp)[0])
            branches = get_args(item) if get_origin(item) is Union else (item,)
            for sub in [_strip(b) for b in branches if _is_model(_strip(b))]:
                visit(sub, key + suffix, default if isinstance(default, sub) else None, where)

    visit(StackSpec, f"{NAMESPACE}:", None, BOTH)
    return rows


def _field_homes() -> dict[str, list[str]]:
    """Field name → the keys where it is a setting (for "`egress` belongs to berth:services.NAME")."""
    homes: dict[str, list[str]] = {}
    for row in reference_rows():
        leaf = re.split(r"[.:]", row["key"].replace("[]", ""))[-1]
        parent = row["key"][: -len(leaf) - 1]
        homes.setdefault(leaf, []).append(parent)
    return homes


# ---------------------------------------------------------------- cross-field checks


def _check_names(spec: StackSpec, problems: list[str]) -> None:
    seen: dict[str, str] = {}
    derived = {f"{d}-replica": d for d, s in spec.databases.items() if s.replica}
    for section in ("databases", "caches", "services"):
        for name in getattr(spec, section):
            if name in derived:
                problems.append(
                    f"{NAMESPACE}:{section}.{name}: the name is taken by the read replica of database "
                    f"{derived[name]!r}; rename it"
                )
    for section in ("databases", "caches", "brokers", "graphs", "services"):
        for name in getattr(spec, section):
            key = f"{NAMESPACE}:{section}.{name}"
            if not _NAME_RE.match(name):
                problems.append(
                    f"{key}: name {name!r} must be lowercase letters, digits and '-', start with a letter, "
                    "at most 30 characters; rename it"
                )
            if name in seen:
                problems.append(f"{key}: name {name!r} is also used in {NAMESPACE}:{seen[name]}; names must be unique")
            seen[name] = section
    for secret in spec.secrets:
        if not re.match(r"^[A-Za-z0-9._-]{1,253}$", secret):
            problems.append(f"{NAMESPACE}:secrets.{secret}: secret names are letters, digits, '.', '_' and '-'; "
                            "rename it")
    for db, b in spec.backups.items():
        for i, tier in enumerate(b.tiers):
            job = f"{db}-backup-{tier.name}"
            if spec.target == Target.KUBERNETES and len(job) > 52:
                problems.append(
                    f"{NAMESPACE}:backups.{db}.tiers[{i}].name: the CronJob name {job!r} is {len(job)} characters; "
                    "Kubernetes allows 52: shorten the tier name"
                )


#: The outputs Berth's program exports itself (components/stack.py): a secret's ``export`` may not take them.
STACK_OUTPUTS = frozenset({"target", "databases", "caches", "brokers", "graphs", "services", "url",
                           "grafana_admin_password"})


def _missing_secret(key: str, ref: str, example: str = "<value>") -> str:
    return (f"{key}: secret {ref!r} is missing; set it with "
            f"`pulumi config set --secret --path '{NAMESPACE}:secrets.{ref}' {example}`")


def _check_references(spec: StackSpec, problems: list[str]) -> None:
    stores = {**{n: d.engine.value for n, d in spec.databases.items()}, **{n: "redis" for n in spec.caches}}
    stores.update({n: "rabbitmq" for n in spec.brokers})
    stores.update({n: "neo4j" for n in spec.graphs})
    exported: dict[str, str] = {}
    for sname, svc in spec.services.items():
        key = f"{NAMESPACE}:services.{sname}"
        used = list(svc.uses) if isinstance(svc.uses, list) else list(svc.uses.keys())
        for u in used:
            if u not in stores:
                known = ", ".join(sorted(stores)) or "none defined"
                problems.append(
                    f"{key}.uses: {u!r} is not a database, cache, broker or graph database (known: {known}); "
                    f"add it under {NAMESPACE}:databases / caches / brokers / graphs or fix the name"
                )
        if isinstance(svc.uses, list):
            kinds: dict[str, list[str]] = {}
            for u in used:
                if u in stores:
                    kinds.setdefault(stores[u], []).append(u)
            for kind, names in kinds.items():
                if len(names) > 1:
                    problems.append(
                        f"{key}.uses: {names} are all {kind}; use the mapping form to name each variable, "
                        f"e.g. uses: {{{names[0]}: DATABASE_URL, {names[1]}: OTHER_DATABASE_URL}}"
                    )
        for dep in svc.depends_on:
            if dep not in spec.services and dep not in stores:
                problems.append(f"{key}.depends_on: {dep!r} is not a service, database or cache; fix the name")
            if dep == sname:
                problems.append(f"{key}.depends_on: a service cannot depend on itself; remove {dep!r}")
        for var, ref in svc.secret_env.items():
            if not _ENV_RE.match(var):
                problems.append(f"{key}.secret_env: {var!r} is not a valid variable name")
            if isinstance(ref, str) and ref not in spec.secrets:
                problems.append(_missing_secret(f"{key}.secret_env.{var}", ref) + " or use {generate: true}")
            if isinstance(ref, GeneratedSecret) and ref.export:
                where = f"{key}.secret_env.{var}.export"
                if ref.export in STACK_OUTPUTS:
                    problems.append(f"{where} = {ref.export!r}: Berth exports {ref.export!r} itself; pick another name")
                elif ref.export in exported:
                    problems.append(f"{where} = {ref.export!r}: also exported by {exported[ref.export]}; "
                                    "give each export its own name")
                else:
                    exported[ref.export] = f"{key}.secret_env.{var}"
        clash = set(svc.env) & set(svc.secret_env)
        for var in sorted(clash):
            problems.append(f"{key}.env.{var}: also set in secret_env; keep only one")
        if svc.autoscale and "replicas" in svc.model_fields_set:
            problems.append(
                f"{key}.replicas = {svc.replicas}: autoscale decides the replica count "
                f"({svc.autoscale.min}-{svc.autoscale.max}); remove replicas (autoscale.min is the starting count)"
            )
        if svc.metrics and svc.port is None and svc.metrics.port is None:
            problems.append(f"{key}.metrics: the service has no port; set metrics.port")
        if svc.health and svc.health.path and svc.port is None:
            problems.append(f"{key}.health.path: an HTTP check needs `port`; set port or use health.command")
        if svc.health and svc.health.ready_path and svc.port is None:
            problems.append(f"{key}.health.ready_path: an HTTP readiness check needs `port`; set port or remove "
                            "ready_path")
        if svc.run_as_root and "run_as_user" in svc.model_fields_set:
            problems.append(f"{key}.run_as_user: run_as_root is true, so the container runs as root, not as "
                            f"{svc.run_as_user}; remove one of them")
    for cname, cache in spec.caches.items():
        if cache.maxmemory and redis_bytes(cache.maxmemory) >= memory_mib(cache.resources.memory_limit) * 1024 ** 2:
            problems.append(
                f"{NAMESPACE}:caches.{cname}.maxmemory = {json.dumps(cache.maxmemory)}: not below "
                f"resources.memory_limit {cache.resources.memory_limit}; Redis would be killed before it evicts: "
                "lower maxmemory (about 3/4 of the limit) or raise memory_limit"
            )
    if spec.target == Target.KUBERNETES and _is_ip(spec.domain):
        problems.append(f"{NAMESPACE}:domain = {json.dumps(spec.domain)}: an Ingress host cannot be an IP "
                        "address; use a DNS name")
    if spec.proxy:
        for i, route in enumerate(spec.proxy.routes):
            rkey = f"{NAMESPACE}:proxy.routes[{i}].service"
            target = spec.services.get(route.service)
            if target is None:
                problems.append(f"{rkey}: {route.service!r} is not a service in {NAMESPACE}:services; fix the name")
            elif target.port is None:
                problems.append(f"{rkey}: service {route.service!r} has no port to route to; give it `port`")
        paths = [r.path for r in spec.proxy.routes]
        for p in sorted({p for p in paths if paths.count(p) > 1}):
            problems.append(f"{NAMESPACE}:proxy.routes: path {p!r} is routed twice; keep one")
        tls = spec.proxy.tls
        if spec.target == Target.DOCKER and tls.mode == TlsMode.ACME:
            problems.append(
                f"{NAMESPACE}:proxy.tls.mode: 'acme' is for Kubernetes (cert-manager); on Docker use "
                "'secret' (a certificate in berth:secrets), 'files' or 'self-signed'"
            )
        if tls.mode == TlsMode.SECRET:
            for field, ref, pem in (("cert_secret", tls.cert_secret, "fullchain.pem"),
                                    ("key_secret", tls.key_secret, "privkey.pem")):
                if ref not in spec.secrets:
                    problems.append(_missing_secret(f"{NAMESPACE}:proxy.tls.{field}", ref, f"< {pem}"))
    for db, b in spec.backups.items():
        bkey = f"{NAMESPACE}:backups.{db}"
        if db not in spec.databases:
            problems.append(f"{bkey}: {db!r} is not a database in {NAMESPACE}:databases; fix the name")
        if b.s3:
            for field in ("access_key_secret", "secret_key_secret"):
                ref = getattr(b.s3, field)
                if ref not in spec.secrets:
                    problems.append(_missing_secret(f"{bkey}.s3.{field}", ref))
        if (spec.target == Target.DOCKER and not b.image and db in spec.databases
                and spec.databases[db].engine == DatabaseEngine.MONGODB):
            problems.append(
                f"{bkey}.image: on Docker, MongoDB backups need an image with mongodump and supercronic; set it"
            )
        names = [t.name for t in b.tiers]
        for n in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{bkey}.tiers: tier name {n!r} is used twice; make names unique")
    if spec.monitoring and spec.monitoring.enabled and spec.monitoring.grafana and spec.monitoring.grafana_path:
        if spec.proxy and any(r.path == spec.monitoring.grafana_path for r in spec.proxy.routes):
            problems.append(
                f"{NAMESPACE}:monitoring.grafana_path: {spec.monitoring.grafana_path!r} is already a proxy route; "
                "pick another path"
            )
    _check_logging(spec, problems)


def _check_logging(spec: StackSpec, problems: list[str]) -> None:
    """The logging workloads take fixed names and, with a proxy, a path."""
    if not (spec.logging and spec.logging.enabled):
        return
    taken = {"elasticsearch", "logstash", *(["kibana"] if spec.logging.kibana else [])}
    for section in ("databases", "caches", "brokers", "graphs", "services"):
        for name in sorted(set(getattr(spec, section)) & taken):
            problems.append(
                f"{NAMESPACE}:{section}.{name}: the name is taken by {NAMESPACE}:logging's {name}; rename it"
            )
    path = spec.logging.kibana_path
    if spec.logging.kibana and path and spec.proxy:
        used = [r.path.rstrip("/") or "/" for r in spec.proxy.routes]
        if spec.monitoring and spec.monitoring.enabled and spec.monitoring.grafana and spec.monitoring.grafana_path:
            used.append(spec.monitoring.grafana_path.rstrip("/"))
        if path in used:
            problems.append(
                f"{NAMESPACE}:logging.kibana_path: {path!r} is already routed by the proxy; pick another path"
            )


def _check_targets(spec: StackSpec, problems: list[str], warnings: list[str]) -> None:
    """A key set for the other target would be silently ignored: refuse it (or warn, where marked)."""
    target = spec.target.value

    def visit(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                visit(v, f"{key}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                visit(v, f"{key}[{i}]")
        elif isinstance(value, BaseModel):
            fields = type(value).model_fields
            for name in [n for n in fields if n in value.model_fields_set]:
                sub = f"{key}{name}" if key.endswith(":") else f"{key}.{name}"
                extra = _extra(fields[name])
                if target not in extra.get("targets", BOTH):
                    reason = extra.get("why") or f"it applies to target {extra['targets'][0]} only"
                    text = f"{sub}: set for target {target}, where it does nothing: {reason}"
                    if extra.get("wrong_target") == "warn":
                        warnings.append(text + "; it is ignored")
                    else:
                        problems.append(text + ("" if extra.get("why") else "; remove it"))
                    continue
                visit(getattr(value, name), sub)

    visit(spec, f"{NAMESPACE}:")


# ---------------------------------------------------------------- errors


_FIXES = {
    "extra_forbidden": "remove it or fix the spelling",
    "missing": "add it",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "int_from_float": "use a whole number",
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "string_type": "use a string",
    "enum": "use one of the listed values",
    "literal_error": "use one of the listed values",
    "greater_than_equal": "raise it",
    "less_than_equal": "lower it",
    "too_short": "add at least one entry",
    "list_type": "use a list",
    "dict_type": "use a mapping",
    "model_type": "use a mapping of settings",
    "string_pattern_mismatch": "fix the value",
}
_BRANCHES = ("list[str]", "dict[str,str]", "GeneratedSecret", "StackSecret", "str", "function-before[_text_list(), list[str]]",
             "function-before[_text_map(), dict[str,str]]")


def _key(loc: tuple) -> str:
    parts = [str(p) for p in loc if str(p) not in _BRANCHES]
    head, *rest = parts or ["?"]
    out = f"{NAMESPACE}:{head}"
    for part in rest:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _suggest_key(loc: tuple) -> str:
    """For an unknown key: the nearest valid key here, or where such a setting lives."""
    clean = tuple(p for p in loc if str(p) not in _BRANCHES)
    model = _model_at(clean[:-1])
    bad = str(clean[-1])
    if model is not None:
        close = difflib.get_close_matches(bad, list(model.model_fields), n=1, cutoff=0.6)
        if close:
            parent = _key(clean[:-1]) + "." if len(clean) > 1 else f"{NAMESPACE}:"
            return f"did you mean {parent}{close[0]}?"
    homes = _field_homes().get(bad)
    if homes:
        return f"`{bad}` is a setting of {' / '.join(sorted(set(homes))[:3])}, not of {_key(clean[:-1])}; move or remove it"
    return ""


def _describe(err: dict) -> str:
    loc = err["loc"]
    key = _key(loc)
    value = err.get("input")
    shown = "(missing)" if err["type"] == "missing" else json.dumps(value, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    msg = err["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(err["type"], "")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
        hint = _suggest_key(loc)
        if hint:
            fix = hint
        elif len(loc) == 1:
            fix = "it is not a Berth setting: remove it or fix the spelling (see README, configuration reference)"
    return f"{key} = {shown}: {msg}" + (f"; {fix}" if fix and fix not in msg else "")


def parse_spec(raw: dict[str, Any], warnings: Optional[list[str]] = None) -> StackSpec:
    """Validate a plain dict of ``berth:`` keys (without the prefix). Raises ConfigError; keys that
    are ignored on this target are added to ``warnings``."""
    try:
        spec = StackSpec.model_validate(raw)
    except ValidationError as exc:
        # Deduplicate the per-branch noise that unions produce.
        seen, problems = set(), []
        for err in exc.errors():
            text = _describe(err)
            key = text.split(" = ")[0]
            if err["type"] in ("string_type", "list_type", "dict_type", "model_type") and any(
                    p.startswith(key) for p in problems):
                continue
            if text not in seen:
                seen.add(text)
                problems.append(text)
        raise ConfigError(problems) from None
    problems: list[str] = []
    _check_names(spec, problems)
    _check_references(spec, problems)
    _check_targets(spec, problems, warnings if warnings is not None else [])
    _check_cycles(spec, problems)
    if problems:
        raise ConfigError(problems)
    return spec


def service_order(services: dict[str, "ServiceSpec"]) -> tuple[list[str], list[str]]:
    """Services with their ``depends_on`` first, and every dependency cycle found
    (as ``"a -> b -> a"``). The one walk of the dependency graph: validation reports the cycles,
    the stack builds in this order."""
    order: list[str] = []
    cycles: list[tuple[str, str]] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycles.append((n, " -> ".join([*path[path.index(n):], n])))
            return
        state[n] = 1
        for d in services[n].depends_on:
            if d in services and d != n:
                visit(d, [*path, n])
        state[n] = 2
        order.append(n)

    for n in sorted(services):
        visit(n, [])
    return order, [f"{NAMESPACE}:services.{n}.depends_on: dependency cycle {c}; break the cycle" for n, c in cycles]


def _check_cycles(spec: StackSpec, problems: list[str]) -> None:
    """A ``depends_on`` cycle can never start; report it before anything is created."""
    problems.extend(service_order(spec.services)[1])


# ---------------------------------------------------------------- stack files and raw config


#: Namespaces of other packages a stack file may configure: never "a typo of berth".
_OTHER_NAMESPACES = {"pulumi", "kubernetes", "docker", "random", "tls", "aws", "azure", "gcp", "command"}


def namespace_problems(keys: list[str], project: Optional[str]) -> list[str]:
    """Config keys that were meant for Berth but are not read by it: a mistyped namespace
    (``berht:services``) or a Berth key in the project's own namespace (``myapp:services``, which is
    what a key without ``berth:`` becomes)."""
    problems = []
    top = set(StackSpec.model_fields)
    for full in sorted(keys):
        ns, sep, key = full.partition(":")
        if not sep:
            ns, key = (project or ""), full
        root = key.split(".")[0]
        if ns == NAMESPACE or ns in _OTHER_NAMESPACES:
            continue
        if ns != project and difflib.SequenceMatcher(None, ns.lower(), NAMESPACE).ratio() >= 0.6:
            problems.append(f"{full}: namespace {ns!r} is not read by Berth; did you mean {NAMESPACE}:{key}?")
        elif (ns == project or not sep) and root in top:
            problems.append(f"{full}: Berth reads {NAMESPACE}:{root}, not {full.split('.')[0]}; "
                            f"write it as {NAMESPACE}:{key}")
    return problems


def _yaml_loader(path: Path, problems: list[str]):
    import yaml

    class Loader(yaml.SafeLoader):
        """Refuses duplicate keys (the Pulumi CLI does) and notes numbers YAML would change
        (``version: 7.10`` is the float 7.1)."""

    def mapping(loader: Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            k = loader.construct_object(key_node, deep=True)
            if k in seen:
                problems.append(f"{path}:{key_node.start_mark.line + 1}: key {k!r} appears twice in this "
                                f"mapping (first on line {seen[k]}); keep one")
            seen.setdefault(k, key_node.start_mark.line + 1)
            if (isinstance(value_node, yaml.ScalarNode) and value_node.tag == "tag:yaml.org,2002:float"
                    and isinstance(k, str) and (k == "version" or k.endswith("_version"))):
                text = value_node.value
                if str(float(text)) != text:
                    problems.append(
                        f"{path}:{value_node.start_mark.line + 1}: {k}: {text} is read by YAML as the number "
                        f"{float(text)!r}; quote it: {k}: \"{text}\""
                    )
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def read_stack_file(path: Path) -> dict[str, Any]:
    """A ``Pulumi.<stack>.yaml`` (or ``Pulumi.yaml``) as data. A YAML syntax error, a duplicate key
    or a number that YAML changes becomes a ConfigError naming the file and line."""
    import yaml

    problems: list[str] = []
    try:
        data = yaml.load(path.read_text(), Loader=_yaml_loader(path, problems))  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: YAML syntax error: {exc.problem or exc.context}; fix the file"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: YAML error: {exc}; fix the file"]) from None
    if problems:
        raise ConfigError(problems)
    if data is not None and not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping at the top (config: ...)"])
    return data or {}


def read_raw_config() -> dict[str, Any]:
    """Every ``berth:*`` config value of the current stack, objects decoded from JSON. Keys meant for
    Berth under another namespace are errors (the program sees every namespace's keys)."""
    from pulumi.runtime import config as rc

    keys = set(rc.CONFIG.get().keys()) | set(rc.get_config_env().keys())
    problems = namespace_problems(sorted(keys), pulumi.get_project())
    if problems:
        raise ConfigError(problems)
    raw: dict[str, Any] = {}
    for full in sorted(keys):
        ns, _, key = full.partition(":")
        if ns != NAMESPACE:
            continue
        value = rc.get_config(full)
        if isinstance(value, str):
            stripped = value.strip()
            if stripped[:1] in ("{", "["):
                try:
                    value = json.loads(stripped)
                except json.JSONDecodeError as exc:
                    raise ConfigError([f"{full}: not valid JSON/YAML structure ({exc.msg}); fix the value"]) from None
        raw[key] = value
    return raw


def check_prefix(spec: StackSpec, prefix: str) -> list[str]:
    """The resource name prefix names Docker containers, networks, volumes and images, and is the
    default namespace: it must be an RFC 1123 label. ``berth:name`` is checked by the model; the
    default ``<project>-<stack>`` here, where the project and stack are known."""
    if spec.name is not None:
        return []
    try:
        _prefix(prefix)
    except ValueError as exc:
        fixed = str(exc).rsplit("'", 2)[-2]
        return [f"{NAMESPACE}:name = (missing): the default prefix {prefix!r} (<project>-<stack>) {exc}; "
                f"set it: `pulumi config set {NAMESPACE}:name {fixed}`"]
    return []


def check_files(spec: StackSpec) -> list[str]:
    """``tls.mode: files`` reads the certificate and key where Pulumi runs: they must be there now."""
    if not spec.proxy or spec.proxy.tls.mode != TlsMode.FILES:
        return []
    problems = []
    for field, marker in (("cert_file", "CERTIFICATE"), ("key_file", "PRIVATE KEY")):
        path = getattr(spec.proxy.tls, field)
        key = f"{NAMESPACE}:proxy.tls.{field} = {json.dumps(path)}"
        try:
            text = Path(path).read_text()
        except OSError as exc:
            problems.append(f"{key}: cannot read it here ({exc.strerror}); fix the path, or keep the certificate "
                            f"in config: tls.mode secret (see README, TLS)")
            continue
        if f"-----BEGIN " not in text or marker not in text:
            problems.append(f"{key}: not a PEM {marker.lower()}; give the PEM file")
    return problems


def load_spec() -> StackSpec:
    """Read and validate the current stack's config. The one place config is read."""
    from .program import stack_prefix

    raw = read_raw_config()
    problems: list[str] = []
    stack_file = Path(f"Pulumi.{pulumi.get_stack()}.yaml")
    if stack_file.exists():
        # Numbers YAML changes (`version: 7.10` → 7.1) are lost before the config reaches the
        # program; the stack file still has them as written.
        try:
            read_stack_file(stack_file)
        except ConfigError as exc:
            problems += [p for p in exc.problems if "read by YAML as the number" in p]
    if "target" not in raw:
        problems.append(f"{NAMESPACE}:target = (missing): set it with `pulumi config set {NAMESPACE}:target docker` "
                        "(or kubernetes)")
        raise ConfigError(problems)
    warnings: list[str] = []
    try:
        spec = parse_spec(raw, warnings)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    problems += check_prefix(spec, stack_prefix(spec.name)) + check_files(spec)
    if problems:
        raise ConfigError(problems)
    for w in warnings:
        pulumi.log.warn(w)
    return spec
