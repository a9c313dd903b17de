"""Render `pulumi preview --json` documents (+ engine event logs) into one PR comment.

Usage::

    python -m berth_ci.preview_comment \
        --stack dev=dev/preview.json:dev/events.ndjson \
        --stack prod=prod/preview.json \
        [--exit-code dev=0 --exit-code prod=255] [--title T] > comment.md

Input shapes are described in shared/PREVIEW-JSON.md:

* the preview document (`config`, `steps`, `diagnostics`, `duration`, `changeSummary`,
  `maybeCorrupt`), whose step order is not stable and which carries no policy results;
* the engine event log (NDJSON, `--event-log FILE`), where each policy violation is a
  line with a `policyEvent` object.

Everything here is a pure function of its inputs: the same inputs (in any step order)
give byte-identical output. Only the stdlib is used.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

MARKER = "<!-- berth-preview -->"
DEFAULT_TITLE = "Pulumi preview"
GITHUB_COMMENT_LIMIT = 65536
# Measured in UTF-8 bytes, which is never less than GitHub's character count.
DEFAULT_BUDGET = GITHUB_COMMENT_LIMIT - 1536

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET = "[secret]"

# Caps that keep every single block bounded, so shrinking can always work block-wise.
MAX_FLAGGED = 60
MAX_POLICY_PER_STACK = 60
MAX_ERRORS_PER_STACK = 10
MAX_ERROR_CHARS = 3000
MAX_PATHS_PER_RESOURCE = 25
MAX_VALUE_CHARS = 80
MAX_REASONS = 8

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
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|private[_-]?key|credential|api[_-]?key|"
    r"^auth$|bcrypt|connection[_-]?string|dsn",
    re.IGNORECASE,
)

OP_ORDER = ["create", "update", "replace", "delete", "same"]
OP_SYMBOL = {
    "create": "+",
    "update": "~",
    "replace": "+-",
    "delete": "-",
    "same": " ",
    "read": ">",
    "import": "=",
    "refresh": "~",
    "discard": "-",
}
ENFORCEMENT_ORDER = {"mandatory": 0, "remediate": 1, "advisory": 2}


# --------------------------------------------------------------------------- text helpers

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colors, cursor)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC (hyperlinks, titles)
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
)
_COLOR_TAG = re.compile(r"<\{%[^%]*%\}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_colors(text: str) -> str:
    """Remove ANSI escapes, Pulumi color tags (`<{%reset%}>`) and other control chars."""
    text = _ANSI.sub("", text)
    text = _COLOR_TAG.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def md_text(text: str) -> str:
    """Inline text, safe anywhere in Markdown (incl. table cells): no HTML, no formatting,
    no @-mentions, single line."""
    text = " ".join(strip_colors(text).split())
    text = html.escape(text, quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # A zero-width space after @ keeps GitHub from pinging users or teams.
    return text.replace("@", "@\u200b")


def md_code(text: str) -> str:
    """An inline code span that survives any content (backticks, pipes in tables, newlines)."""
    text = " ".join(strip_colors(text).split()) or " "
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    # Never used inside table cells, so `|` needs no escaping here.
    return f"{fence}{pad}{text}{pad}{fence}"


def html_text(text: str) -> str:
    """Text for inside raw HTML (e.g. <summary>), where Markdown is not parsed."""
    return html.escape(" ".join(strip_colors(text).split()), quote=True).replace("@", "@\u200b")


def code_block(text: str, lang: str = "text") -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


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


_MISSING = object()


def lookup(obj: Any, tokens: Sequence[str | int]) -> Any:
    for tok in tokens:
        if isinstance(obj, dict) and isinstance(tok, str) and tok in obj:
            obj = obj[tok]
        elif isinstance(obj, list) and isinstance(tok, int) and 0 <= tok < len(obj):
            obj = obj[tok]
        else:
            return _MISSING
    return obj


def _contains_secret(value: Any) -> bool:
    if isinstance(value, str):
        return SECRET in value
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


def _contains_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, dict):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(v) for v in value)
    return False


def is_sensitive_path(type_token: str, tokens: Sequence[str | int]) -> bool:
    if type_token == K8S_SECRET and tokens and tokens[0] in ("data", "stringData"):
        return True
    return any(isinstance(t, str) and _SENSITIVE_KEY.search(t) for t in tokens)


def render_value(value: Any, type_token: str, tokens: Sequence[str | int]) -> str:
    """One value for display. Secrets never leave as anything but `[secret]`."""
    if value is _MISSING:
        return "—"
    if _contains_secret(value):
        return md_code(SECRET)
    if is_sensitive_path(type_token, tokens):
        return "*(hidden)*"
    if value == UNKNOWN:
        return "*(known after apply)*"
    if _contains_unknown(value):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False).replace(
            json.dumps(UNKNOWN), "(unknown)"
        )
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return md_code(truncate(text, MAX_VALUE_CHARS))


# --------------------------------------------------------------------------- model


@dataclass
class Change:
    urn: Urn
    op: str
    type: str
    step: dict
    flagged_reason: str = ""
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
    violations: list[Violation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # our own notes (missing files etc.)
    exit_code: int | None = None
    maybe_corrupt: bool = False
    duration_ns: int | None = None

    @property
    def failed(self) -> bool:
        return bool(self.errors) or bool(self.problems) or (self.exit_code not in (None, 0))

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def flagged(self) -> list[Change]:
        return [c for c in self.changes if c.flagged_reason]


def _state(step: dict, which: str) -> dict:
    value = step.get(which)
    return value if isinstance(value, dict) else {}


def step_type(step: dict, urn: Urn) -> str:
    return urn.type or _state(step, "newState").get("type") or _state(step, "oldState").get("type") or "?"


def normalize_op(op: str) -> str:
    if op in ("create-replacement", "delete-replaced", "replace"):
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
            inputs = _state(step, which).get("inputs") or {}
            image = inputs.get("image") if isinstance(inputs, dict) else None
            if isinstance(image, str) and _DB_IMAGE.search(_image_repo(image)):
                return "database container"
    return ""


def replace_reasons(step: dict) -> list[str]:
    """replaceReasons -> detailedDiff keys (replace kinds first) -> diffReasons."""
    reasons = [str(r) for r in (step.get("replaceReasons") or [])]
    if reasons:
        return sorted(set(reasons))
    dd = step.get("detailedDiff") or {}
    if isinstance(dd, dict) and dd:
        forcing = [k for k, v in dd.items() if isinstance(v, dict) and str(v.get("kind", "")).endswith("-replace")]
        return sorted(forcing or dd.keys())
    return sorted({str(r) for r in (step.get("diffReasons") or [])})


def _merge_replacement_steps(steps: list[dict]) -> list[dict]:
    """With --show-replacement-steps a replacement comes as create-replacement +
    delete-replaced (+ replace); keep one step per URN for the report."""
    by_urn: dict[str, dict] = {}
    out: list[dict] = []
    for step in steps:
        op = step.get("op", "")
        if op in ("create-replacement", "delete-replaced", "replace"):
            urn = step.get("urn", "")
            if urn in by_urn:
                merged = by_urn[urn]
                for key in ("oldState", "newState", "replaceReasons", "diffReasons"):
                    if not merged.get(key) and step.get(key):
                        merged[key] = step[key]
                if not merged.get("detailedDiff") and step.get("detailedDiff"):
                    merged["detailedDiff"] = step["detailedDiff"]
                continue
            merged = dict(step)
            merged["op"] = "replace"
            by_urn[urn] = merged
            out.append(merged)
        else:
            out.append(step)
    return out


def analyze_preview(label: str, doc: Any, events: Iterable[dict] = (), exit_code: int | None = None) -> StackResult:
    """Build the report model for one stack from a parsed preview document and event-log lines."""
    result = StackResult(label=label, exit_code=exit_code)
    events = list(events)
    if not isinstance(doc, dict) or not ({"steps", "diagnostics", "changeSummary"} & doc.keys()):
        result.problems.append("No preview document was produced (the CLI failed before printing JSON).")
        doc = {}

    raw_steps = [s for s in (doc.get("steps") or []) if isinstance(s, dict)]
    steps = _merge_replacement_steps(sorted(raw_steps, key=lambda s: (str(s.get("urn", "")), str(s.get("op", "")))))
    counts = {op: 0 for op in OP_ORDER}
    for step in steps:
        urn = parse_urn(str(step.get("urn", "")))
        op = normalize_op(str(step.get("op", "")))
        counts[op] = counts.get(op, 0) + 1
        type_token = step_type(step, urn)
        change = Change(urn=urn, op=op, type=type_token, step=step)
        if op in ("replace", "delete"):
            change.flagged_reason = stateful_reason(step, urn, type_token)
            change.reasons = replace_reasons(step) if op == "replace" else []
        result.changes.append(change)
    result.changes.sort(key=lambda c: c.sort_key)
    result.counts = counts

    urns = [c.urn for c in result.changes if c.urn.stack]
    for d in doc.get("diagnostics") or []:
        if isinstance(d, dict) and d.get("urn"):
            urns.append(parse_urn(str(d["urn"])))
    for ev in events:
        pe = ev.get("policyEvent")
        if isinstance(pe, dict) and pe.get("resourceUrn"):
            urns.append(parse_urn(str(pe["resourceUrn"])))
    urns = [u for u in urns if u.stack]
    if urns:
        # Root stack resource first, otherwise the most common stack/project.
        roots = [u for u in urns if u.type == "pulumi:pulumi:Stack"]
        pick = sorted(roots or urns, key=lambda u: u.raw)[0]
        result.stack, result.project = pick.stack, pick.project

    diagnostics = [d for d in (doc.get("diagnostics") or []) if isinstance(d, dict)]
    if not doc:
        # Fall back to the event log's diagnostics when stdout had no document.
        for ev in events:
            de = ev.get("diagnosticEvent")
            if isinstance(de, dict):
                diagnostics.append(de)
    _collect_diagnostics(result, diagnostics)

    result.violations = parse_policy_events(events)
    result.maybe_corrupt = bool(doc.get("maybeCorrupt"))
    duration = doc.get("duration")
    result.duration_ns = duration if isinstance(duration, int) else None
    return result


def _clean_message(message: str, urn: str = "") -> str:
    text = strip_colors(message).strip("\n")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines).strip()
    if urn:
        u = parse_urn(urn)
        text = f"{u.type} {u.name}: {text}" if u.type else text
    return truncate(text, MAX_ERROR_CHARS)


def _collect_diagnostics(result: StackResult, diagnostics: list[dict]) -> None:
    seen: set[tuple[str, str]] = set()
    for d in sorted(diagnostics, key=lambda d: (str(d.get("severity", "")), str(d.get("urn", "")), str(d.get("message", "")))):
        severity = str(d.get("severity", ""))
        message = _clean_message(str(d.get("message", "")), str(d.get("urn", "") or ""))
        if not message or (severity, message) in seen:
            continue
        seen.add((severity, message))
        if severity == "error":
            result.errors.append(message)
        elif severity == "warning":
            result.warnings.append(message)
        elif severity == "info#err":
            result.stderr.append(message)


def parse_policy_events(events: Iterable[dict]) -> list[Violation]:
    found: dict[tuple, Violation] = {}
    for ev in events:
        pe = ev.get("policyEvent") if isinstance(ev, dict) else None
        if not isinstance(pe, dict):
            continue
        v = Violation(
            level=str(pe.get("enforcementLevel") or "advisory").lower(),
            pack=strip_colors(str(pe.get("policyPackName") or "")),
            pack_version=strip_colors(str(pe.get("policyPackVersion") or "")),
            policy=strip_colors(str(pe.get("policyName") or "")),
            urn=parse_urn(str(pe.get("resourceUrn") or "")),
            message=" ".join(strip_colors(str(pe.get("message") or "")).split()),
            severity=strip_colors(str(pe.get("severity") or "")),
        )
        found.setdefault(v.sort_key, v)
    return [found[k] for k in sorted(found)]


def read_event_log(text: str) -> tuple[list[dict], int]:
    """Parse NDJSON; returns (events, number of unreadable lines)."""
    events, bad = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(obj, dict):
            events.append(obj)
        else:
            bad += 1
    return events, bad


def load_stack(label: str, preview_path: str, events_path: str | None = None, exit_code: int | None = None) -> StackResult:
    problems: list[str] = []
    doc: Any = None
    try:
        with open(preview_path, encoding="utf-8") as fh:
            text = fh.read()
        doc = json.loads(text) if text.strip() else None
        if doc is None:
            problems.append(f"Preview output {preview_path!r} is empty.")
    except FileNotFoundError:
        problems.append(f"Preview output {preview_path!r} was not found.")
    except ValueError as exc:
        problems.append(f"Preview output is not valid JSON ({exc.msg} at line {exc.lineno}).")
    events: list[dict] = []
    if events_path:
        try:
            with open(events_path, encoding="utf-8") as fh:
                events, bad = read_event_log(fh.read())
            if bad:
                problems.append(f"{plural(bad, 'line')} of the event log could not be read.")
        except FileNotFoundError:
            problems.append("The event log was not found, so policy results are unknown.")
    result = analyze_preview(label, doc, events, exit_code)
    if problems:
        # analyze_preview's generic "no document" note is redundant next to a precise one.
        if doc is None:
            result.problems = []
        result.problems = problems + result.problems
    return result


# --------------------------------------------------------------------------- rendering


@dataclass
class Block:
    text: str
    droppable: bool = False
    priority: int = 0
    stack: str = ""


def _resource_label(c: Change) -> str:
    return f"{md_code(c.type)} {md_code(c.urn.name)}"


def _reasons_text(reasons: list[str]) -> str:
    if not reasons:
        return ""
    shown = ", ".join(md_code(r) for r in reasons[:MAX_REASONS])
    more = f" and {len(reasons) - MAX_REASONS} more" if len(reasons) > MAX_REASONS else ""
    return f" — because of {shown}{more}"


def _changed_paths(c: Change) -> list[tuple[str, str, str]]:
    """(path, kind, rendered old -> new) for one change."""
    step = c.step
    old, new = _state(step, "oldState"), _state(step, "newState")
    rows: list[tuple[str, str, str]] = []
    dd = step.get("detailedDiff")
    if isinstance(dd, dict) and dd:
        entries = sorted((str(k), v if isinstance(v, dict) else {}) for k, v in dd.items())
        for path, info in entries:
            kind = str(info.get("kind", "update"))
            section = "inputs" if info.get("inputDiff") else "outputs"
            rows.append((path, kind, _old_new(c.type, path, kind, old, new, section)))
        return rows
    keys = step.get("replaceReasons") or step.get("diffReasons") or []
    if c.op == "replace" and step.get("diffReasons"):
        keys = sorted(set(keys) | set(step.get("diffReasons") or []))
    for key in sorted({str(k) for k in keys}):
        kind = "update-replace" if key in (step.get("replaceReasons") or []) else "update"
        rows.append((key, kind, _old_new(c.type, key, kind, old, new, "inputs")))
    return rows


def _old_new(type_token: str, path: str, kind: str, old: dict, new: dict, section: str) -> str:
    tokens = parse_path(path)

    def pick(state: dict) -> Any:
        for sec in (section, "inputs" if section == "outputs" else "outputs"):
            value = lookup(state.get(sec) or {}, tokens)
            if value is not _MISSING:
                return value
        return _MISSING

    before = _MISSING if kind.startswith("add") else pick(old)
    after = _MISSING if kind.startswith("delete") else pick(new)
    if before is _MISSING and after is _MISSING:
        return ""
    return f"{render_value(before, type_token, tokens)} → {render_value(after, type_token, tokens)}"


def render_details(c: Change) -> str:
    symbol = OP_SYMBOL.get(c.op, "?")
    flag = " ⚠️ stateful" if c.flagged_reason else ""  # appended after html_text (keeps the space)
    rows: list[str] = []
    if c.op in ("update", "replace"):
        paths = _changed_paths(c)
        if c.op == "replace":
            rows.append(f"Replaced because of: {', '.join(md_code(r) for r in c.reasons[:MAX_REASONS]) or '*(no reason reported)*'}")
            rows.append("")
        if paths:
            for path, kind, values in paths[:MAX_PATHS_PER_RESOURCE]:
                rows.append(f"- {md_code(path)} *{md_text(kind)}*" + (f": {values}" if values else ""))
            if len(paths) > MAX_PATHS_PER_RESOURCE:
                rows.append(f"- … and {len(paths) - MAX_PATHS_PER_RESOURCE} more")
        elif c.op == "update":
            rows.append("*(the provider reported no property paths)*")
    elif c.op == "create":
        inputs = _state(c.step, "newState").get("inputs") or {}
        keys = sorted(k for k in inputs if not k.startswith("__"))
        for key in keys[:MAX_PATHS_PER_RESOURCE]:
            rows.append(f"- {md_code(key)}: {render_value(inputs[key], c.type, [key])}")
        if len(keys) > MAX_PATHS_PER_RESOURCE:
            rows.append(f"- … and {len(keys) - MAX_PATHS_PER_RESOURCE} more")
        if not keys:
            rows.append("*(no inputs)*")
    elif c.op == "delete":
        rows.append("Will be deleted.")
    else:
        rows.append(f"Operation: {md_code(c.op)}")
    if c.flagged_reason:
        rows.insert(0, f"**Stateful: {md_text(c.flagged_reason)}.**\n")
    rows.append("")
    rows.append(f"URN: {md_code(c.urn.raw)}")
    summary = (
        f"<summary><code>{html_text(symbol)}</code> {html_text(c.op)} "
        f"<code>{html_text(c.type)}</code> <b>{html_text(c.urn.name)}</b>{flag}</summary>"
    )
    return "<details>\n" + summary + "\n\n" + "\n".join(rows).rstrip() + "\n\n</details>"


def _violation_line(v: Violation) -> str:
    icon = "🚫" if v.level == "mandatory" else "⚠️" if v.level in ("advisory", "remediate") else "ℹ️"
    pack = md_code(f"{v.pack}@{v.pack_version}" if v.pack_version else v.pack or "?")
    where = f"{md_code(v.urn.type)} {md_code(v.urn.name)}" if v.urn.type else (md_code(v.urn.name) if v.urn.name else "the stack")
    sev = f" ({md_text(v.severity)})" if v.severity else ""
    return f"- {icon} **{md_text(v.level)}**{sev} {pack} / {md_code(v.policy or '?')} on {where}: {md_text(v.message)}"


def _status(r: StackResult) -> str:
    if r.failed:
        return "❌ preview failed"
    if r.mandatory:
        return "🚫 blocked by policy"
    if r.flagged:
        return "⚠️ stateful changes"
    changed = sum(n for op, n in r.counts.items() if op != "same")
    return "✅ no changes" if not changed else "✅ ok"


def _counts_table(r: StackResult) -> str:
    extra = sorted(op for op, n in r.counts.items() if op not in OP_ORDER and n)
    header = [op.capitalize() for op in OP_ORDER] + [op.capitalize() for op in extra]
    values = [str(r.counts.get(op, 0)) for op in OP_ORDER + extra]
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "|" + "---:|" * len(header),
            "| " + " | ".join(values) + " |",
        ]
    )


def build_blocks(results: Sequence[StackResult], title: str = DEFAULT_TITLE) -> list[Block]:
    blocks: list[Block] = [Block(MARKER + "\n## " + md_text(title or DEFAULT_TITLE))]

    # --- stateful replacements / deletions, at the very top, in bold
    flagged = [(r, c) for r in results for c in r.flagged]
    if flagged:
        lines = [
            f"**⚠️ {plural(len(flagged), 'stateful resource')} will be replaced or deleted — "
            f"data may be lost:**",
            "",
        ]
        for r, c in flagged[:MAX_FLAGGED]:
            lines.append(
                f"- **{md_text(c.op.upper())}** {_resource_label(c)} in **{md_text(r.label)}** "
                f"({md_text(c.flagged_reason)}){_reasons_text(c.reasons)}"
            )
        if len(flagged) > MAX_FLAGGED:
            lines.append(f"- … and {len(flagged) - MAX_FLAGGED} more")
        blocks.append(Block("\n".join(lines)))

    failed = [r for r in results if r.failed]
    mandatory = sum(len(r.mandatory) for r in results)
    facts = []
    if failed:
        facts.append(f"**❌ Preview failed for {', '.join(md_text(r.label) for r in failed)}.**")
    if mandatory:
        facts.append(f"**🚫 {plural(mandatory, 'mandatory policy violation')}** — the deploy would be blocked.")
    if not flagged and not failed:
        facts.append("No stateful resources are replaced or deleted.")
    if facts:
        blocks.append(Block("\n\n".join(facts)))

    for r in results:
        heading = f"### {md_text(r.label)} — {_status(r)}"
        sub = []
        if r.project or r.stack:
            sub.append(f"Project {md_code(r.project or '?')}, stack {md_code(r.stack or '?')}")
        if r.exit_code not in (None, 0):
            sub.append(f"exit code {r.exit_code}")
        if r.duration_ns:
            sub.append(f"previewed in {r.duration_ns / 1e9:.1f} s")
        blocks.append(Block(heading + ("\n\n" + " · ".join(sub) if sub else ""), stack=r.label))
        blocks.append(Block(_counts_table(r), stack=r.label))

        if r.maybe_corrupt:
            blocks.append(Block("**The CLI reported that the state may be corrupt (`maybeCorrupt`).**", stack=r.label))
        for p in r.problems:
            blocks.append(Block(f"**{md_text(p)}**", stack=r.label))
        if r.errors:
            parts = [f"**Errors ({len(r.errors)}):**"]
            for msg in r.errors[:MAX_ERRORS_PER_STACK]:
                parts.append(code_block(msg))
            if len(r.errors) > MAX_ERRORS_PER_STACK:
                parts.append(f"… and {len(r.errors) - MAX_ERRORS_PER_STACK} more errors")
            blocks.append(Block("\n\n".join(parts), stack=r.label))
        if r.stderr and r.failed:
            text = "\n\n".join(r.stderr[:MAX_ERRORS_PER_STACK])
            blocks.append(Block("**Program output (stderr):**\n\n" + code_block(truncate(text, MAX_ERROR_CHARS)), stack=r.label))

        if r.violations:
            n_mand = len(r.mandatory)
            lines = [f"**Policy violations:** {n_mand} mandatory, {len(r.violations) - n_mand} other", ""]
            lines += [_violation_line(v) for v in r.violations[:MAX_POLICY_PER_STACK]]
            if len(r.violations) > MAX_POLICY_PER_STACK:
                lines.append(f"- … and {len(r.violations) - MAX_POLICY_PER_STACK} more")
            blocks.append(Block("\n".join(lines), stack=r.label))

        if r.warnings:
            items = "\n".join(f"- {md_text(w)}" for w in r.warnings[:MAX_ERRORS_PER_STACK])
            more = f"\n- … and {len(r.warnings) - MAX_ERRORS_PER_STACK} more" if len(r.warnings) > MAX_ERRORS_PER_STACK else ""
            blocks.append(
                Block(
                    f"<details>\n<summary>{plural(len(r.warnings), 'warning')}</summary>\n\n{items}{more}\n\n</details>",
                    droppable=True,
                    priority=5,
                    stack=r.label,
                )
            )

        changed = [c for c in r.changes if c.op != "same"]
        if changed:
            blocks.append(Block(f"**Resource changes ({len(changed)}):**", stack=r.label))
            for c in changed:
                prio = 0 if c.flagged_reason else 1 if c.op in ("replace", "delete") else 2 if c.op == "update" else 3
                blocks.append(Block(render_details(c), droppable=True, priority=prio, stack=r.label))
    return blocks


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _join(blocks: Sequence[Block]) -> str:
    return "\n\n".join(b.text for b in blocks) + "\n"


def _omitted_note(n: int) -> Block:
    return Block(
        f"*{plural(n, 'resource detail block')} omitted to stay under GitHub's comment size limit; "
        "the full preview is in the workflow artifacts.*"
    )


def assemble(blocks: list[Block], budget: int = DEFAULT_BUDGET) -> str:
    """Join blocks, shrinking to `budget` UTF-8 bytes: drop detail blocks (least important
    first), then cut whole blocks from the end. Blocks are never split, so every
    Markdown/HTML construct that is emitted is complete."""
    body = _join(blocks)
    if _size(body) <= budget:
        return body

    droppable = sorted(
        (i for i, b in enumerate(blocks) if b.droppable),
        key=lambda i: (-blocks[i].priority, -i),  # least important, latest first
    )
    dropped: set[int] = set()

    def compose() -> list[Block]:
        out: list[Block] = []
        pending: dict[str, int] = {}
        for i, b in enumerate(blocks):
            if i in dropped:
                pending[b.stack] = pending.get(b.stack, 0) + 1
                continue
            out.append(b)
        # One note per stack, placed after that stack's last emitted block.
        if pending:
            result: list[Block] = []
            last_index = {b.stack: j for j, b in enumerate(out) if b.stack}
            for j, b in enumerate(out):
                result.append(b)
                if b.stack in pending and last_index.get(b.stack) == j:
                    result.append(_omitted_note(pending.pop(b.stack)))
            for stack, n in sorted(pending.items()):
                result.append(_omitted_note(n))
            out = result
        return out

    # Drop in chunks first (fast for thousands of blocks), then one by one.
    current = compose()
    while droppable and _size(_join(current)) > budget:
        excess = _size(_join(current)) - budget
        while droppable and excess > 0:
            i = droppable.pop(0)
            dropped.add(i)
            excess -= _size(blocks[i].text) + 2
        current = compose()

    if _size(_join(current)) <= budget:
        return _join(current)

    # Still too big: keep whole blocks from the top (always the marker/title), then a note.
    kept: list[Block] = [current[0]]
    current = current[1:]
    note_template = "**Comment truncated: {n} more section(s) not shown (GitHub's comment size limit).** See the workflow artifacts for the full preview."
    for k, b in enumerate(current):
        trial = kept + [b, Block(note_template.format(n=len(current) - k - 1))]
        if _size(_join(trial)) > budget:
            kept.append(Block(note_template.format(n=len(current) - k)))
            return _join(kept)
        kept.append(b)
    return _join(kept)


def render_comment(results: Sequence[StackResult], title: str = DEFAULT_TITLE, budget: int = DEFAULT_BUDGET) -> str:
    return assemble(build_blocks(results, title), budget)


# --------------------------------------------------------------------------- CLI


def parse_stack_arg(value: str) -> tuple[str, str, str | None]:
    """`NAME=preview.json[:events.ndjson]`."""
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"expected NAME=preview.json[:events.ndjson], got {value!r}")
    name, paths = value.split("=", 1)
    preview, _, events = paths.partition(":")
    if not name or not preview:
        raise argparse.ArgumentTypeError(f"expected NAME=preview.json[:events.ndjson], got {value!r}")
    return name, preview, events or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="berth preview-comment",
        description="Render pulumi preview --json output (and event logs) as one PR comment.",
    )
    parser.add_argument("--stack", action="append", required=True, type=parse_stack_arg,
                        metavar="NAME=preview.json[:events.ndjson]")
    parser.add_argument("--exit-code", action="append", default=[], metavar="NAME=CODE",
                        help="exit code of that stack's `pulumi preview` (shown; non-zero marks it failed)")
    parser.add_argument("--title", default=DEFAULT_TITLE)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_BUDGET, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    codes: dict[str, int] = {}
    for item in args.exit_code:
        name, _, code = item.partition("=")
        try:
            codes[name] = int(code.strip())
        except ValueError:
            parser.error(f"--exit-code expects NAME=INTEGER, got {item!r}")

    results = [load_stack(name, preview, events, codes.get(name)) for name, preview, events in args.stack]
    sys.stdout.write(render_comment(results, args.title, args.max_bytes))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
