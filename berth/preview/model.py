"""The report model: URNs, property paths, changes, policy violations, one stack's result,
and which replacements or deletions deserve a warning (stateful resources, TLS identities).

Everything here works on already-parsed JSON (see `read.py`) and renders nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from .text import as_text

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET = "[secret]"

# The ops every counts table shows, in this order; any other op gets a column of its own.
OP_ORDER = ["create", "update", "replace", "delete", "same"]
# With --show-replacement-steps one replacement arrives as several steps of the same URN;
# the report shows it once, as `replace`.
REPLACEMENT_OPS = ("create-replacement", "delete-replaced", "import-replacement", "replace")
ENFORCEMENT_ORDER = {"mandatory": 0, "remediate": 1, "advisory": 2}
# The longest diagnostic message kept (a Python traceback fits).
MAX_ERROR_CHARS = 3000

# --------------------------------------------------------------------------- types

STATEFUL_TYPES = {
    "docker:index/volume:Volume": "Docker volume",
    "kubernetes:core/v1:PersistentVolumeClaim": "PersistentVolumeClaim",
    "kubernetes:core/v1:PersistentVolume": "PersistentVolume",
    "kubernetes:apps/v1:StatefulSet": "StatefulSet",
    "kubernetes:core/v1:Secret": "Kubernetes Secret",
    "kubernetes:core/v1:Namespace": "Namespace (deletes everything in it)",
    "random:index/randomPassword:RandomPassword": "generated password",
    "berth:index:Database": "Berth database",
    "berth:index:Cache": "Berth cache",
}
# Component types whose children are all treated as stateful.
STATEFUL_PARENTS = {
    "berth:index:Database": "part of a Berth database",
    "berth:index:Cache": "part of a Berth cache",
}
DOCKER_CONTAINER = "docker:index/container:Container"
# A docker container running one of these images holds data (dev runs its DBs in containers).
_DB_IMAGE = re.compile(
    r"(?:^|/)(postgres|postgis|mysql|mariadb|mongo|redis|valkey|keydb|cockroach|"
    r"clickhouse|cassandra|elasticsearch|opensearch|influxdb|timescale)[^/]*$",
    re.IGNORECASE,
)
K8S_SECRET = "kubernetes:core/v1:Secret"

# A replaced key or certificate loses no data, but it is a new identity: whatever pinned or
# trusted the old one stops working, so it is flagged as loudly as a stateful resource.
_NEW_KEY = "a new key is a new identity, so clients pinning it or the certificate break"
TLS_TYPES = {
    "tls:index/privateKey:PrivateKey": f"TLS private key: {_NEW_KEY}",
    "tls:index/selfSignedCert:SelfSignedCert":
        "self-signed TLS certificate: a new certificate is a new identity, so clients trusting or pinning it break",
    "tls:index/locallySignedCert:LocallySignedCert":
        "TLS certificate: a new certificate is a new identity, so clients pinning it break",
    "tls:index/certRequest:CertRequest":
        "TLS certificate request: a new request means a new certificate, so clients pinning it break",
}
K8S_TLS_SECRET_TYPE = "kubernetes.io/tls"
K8S_TLS_SECRET_REASON = f"Kubernetes TLS Secret: {_NEW_KEY}"

# Why a change is flagged (Change.flag).
FLAG_STATEFUL = "stateful"
FLAG_TLS = "tls"


# --------------------------------------------------------------------------- URNs


@dataclass(frozen=True)
class Urn:
    raw: str
    stack: str
    project: str
    type_chain: tuple[str, ...]
    name: str

    @property
    def type(self) -> str:
        return self.type_chain[-1] if self.type_chain else ""


def parse_urn(urn: str) -> Urn:
    """`urn:pulumi:<stack>::<project>::<parent$...$type>::<name>` (name may contain `::`)."""
    parts = (urn or "").split("::", 3)
    if len(parts) == 4 and parts[0].startswith("urn:pulumi:"):
        return Urn(
            raw=urn,
            stack=parts[0][len("urn:pulumi:"):],
            project=parts[1],
            type_chain=tuple(t for t in parts[2].split("$") if t),
            name=parts[3],
        )
    return Urn(raw=urn or "", stack="", project="", type_chain=(), name=urn or "")


# --------------------------------------------------------------------------- property paths

_PATH_TOKEN = re.compile(r'\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.\[\]]+)')


def parse_path(path: str) -> list[str | int]:
    """`spec.containers[0].image` -> ['spec', 'containers', 0, 'image'];
    `data["app.properties"]` -> ['data', 'app.properties']."""
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m or m.end() == pos:
            tokens.append(path[pos:])
            break
        if m.group(1) is not None:
            tokens.append(int(m.group(1)))
        elif m.group(2) is not None:
            tokens.append(re.sub(r"\\(.)", r"\1", m.group(2)))
        else:
            tokens.append(m.group(3))
        pos = m.end()
    return tokens


MISSING = object()  # a path that is not in a state (distinct from a JSON null)


def lookup(obj: Any, tokens: Sequence[str | int]) -> Any:
    for tok in tokens:
        if isinstance(obj, dict) and isinstance(tok, str) and tok in obj:
            obj = obj[tok]
        elif isinstance(obj, list) and isinstance(tok, int) and 0 <= tok < len(obj):
            obj = obj[tok]
        else:
            return MISSING
    return obj


# --------------------------------------------------------------------------- model


@dataclass
class Change:
    urn: Urn
    op: str
    type: str
    step: dict
    flagged_reason: str = ""
    flag: str = ""  # FLAG_STATEFUL or FLAG_TLS when flagged_reason is set
    reasons: list[str] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple:
        return (self.urn.raw, self.op)


@dataclass
class Violation:
    level: str
    pack: str
    pack_version: str
    policy: str
    urn: Urn
    message: str
    severity: str = ""

    @property
    def sort_key(self) -> tuple:
        return (
            ENFORCEMENT_ORDER.get(self.level, 9),
            self.level,
            self.pack,
            self.policy,
            self.urn.raw,
            self.message,
        )


@dataclass
class StackResult:
    label: str
    stack: str = ""
    project: str = ""
    changes: list[Change] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    # The CLI's own error output (``2> stderr.txt``), kept for a failed preview whose document says
    # nothing of why (an unreachable host fails before any resource; the CLI then prints no diagnostic).
    cli_output: str = ""
    violations: list[Violation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # our own notes (missing files etc.)
    exit_code: int | None = None
    maybe_corrupt: bool = False
    duration_ns: int | None = None
    # Event-log lines of kinds this renderer does not know (newer CLIs add kinds): kind -> count.
    unknown_events: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.errors) or bool(self.problems) or (self.exit_code not in (None, 0))

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def flagged(self) -> list[Change]:
        return [c for c in self.changes if c.flagged_reason]

    def flagged_as(self, flag: str) -> list[Change]:
        # A flagged change of no named kind counts as stateful (the only kind there once was).
        return [c for c in self.changes if c.flagged_reason and (c.flag or FLAG_STATEFUL) == flag]


# --------------------------------------------------------------------------- steps


def step_state(step: dict, which: str) -> dict:
    """`oldState` / `newState` of a step, `{}` when absent or null (creates have no old
    state, deletes no new one, and a failed serialisation drops either)."""
    value = step.get(which)
    return value if isinstance(value, dict) else {}


def state_section(step: dict, which: str, section: str) -> dict:
    """`inputs` / `outputs` of one state, `{}` when absent or not an object."""
    value = step_state(step, which).get(section)
    return value if isinstance(value, dict) else {}


def step_type(step: dict, urn: Urn) -> str:
    return (urn.type or as_text(step_state(step, "newState").get("type"))
            or as_text(step_state(step, "oldState").get("type")) or "?")


def normalize_op(op: str) -> str:
    if op in REPLACEMENT_OPS:
        return "replace"
    if op == "refresh":
        return "same"
    return op or "?"


def _image_repo(image: str) -> str:
    """`host:5000/library/postgres:16@sha256:...` -> `host:5000/library/postgres`."""
    image = image.split("@", 1)[0]
    head, sep, tag = image.rpartition(":")
    return head if sep and "/" not in tag else image


def stateful_reason(step: dict, urn: Urn, type_token: str) -> str:
    """Why this resource holds state (empty string when it does not)."""
    if type_token in STATEFUL_TYPES:
        return STATEFUL_TYPES[type_token]
    for parent in urn.type_chain[:-1]:
        if parent in STATEFUL_PARENTS:
            return STATEFUL_PARENTS[parent]
    if type_token == DOCKER_CONTAINER:
        for which in ("oldState", "newState"):
            image = state_section(step, which, "inputs").get("image")
            if isinstance(image, str) and _DB_IMAGE.search(_image_repo(image)):
                return "database container"
    return ""


def tls_reason(step: dict, type_token: str) -> str:
    """Why replacing or deleting this resource changes a TLS identity ('' when it does not)."""
    if type_token in TLS_TYPES:
        return TLS_TYPES[type_token]
    if type_token == K8S_SECRET:
        # Either side counts: a TLS Secret turned Opaque loses its key, and the reverse makes a new one.
        for which in ("oldState", "newState"):
            for section in ("inputs", "outputs"):
                if state_section(step, which, section).get("type") == K8S_TLS_SECRET_TYPE:
                    return K8S_TLS_SECRET_REASON
    return ""


def classify(step: dict, urn: Urn, type_token: str) -> tuple[str, str]:
    """(flag, reason) for a replaced or deleted resource; ('', '') when it is not flagged.
    A TLS reason wins over a stateful one: it says more about a TLS Secret than "Kubernetes Secret"."""
    reason = tls_reason(step, type_token)
    if reason:
        return FLAG_TLS, reason
    reason = stateful_reason(step, urn, type_token)
    return (FLAG_STATEFUL, reason) if reason else ("", "")


def key_list(value: Any) -> list[str]:
    """A list of property keys (`replaceReasons`, `diffReasons`); absent, null or malformed -> []."""
    return [str(v) for v in value if isinstance(v, (str, int))] if isinstance(value, list) else []


def replace_reasons(step: dict) -> list[str]:
    """replaceReasons -> detailedDiff keys (replace kinds first) -> diffReasons."""
    reasons = key_list(step.get("replaceReasons"))
    if reasons:
        return sorted(set(reasons))
    dd = step.get("detailedDiff")
    if isinstance(dd, dict) and dd:
        forcing = [k for k, v in dd.items() if isinstance(v, dict) and as_text(v.get("kind")).endswith("-replace")]
        return sorted(forcing or dd.keys())
    return sorted(set(key_list(step.get("diffReasons"))))
