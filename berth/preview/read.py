"""Reading what the Pulumi CLI writes into the report model (shapes: shared/PREVIEW-JSON.md).

* the preview document of `pulumi preview --json` (`config`, `steps`, `diagnostics`,
  `duration`, `changeSummary`, `maybeCorrupt`; every key may be absent), whose step order
  is not stable and which carries no policy results;
* the engine event log (NDJSON, `--event-log FILE`), where each policy violation is a line
  with a `policyEvent` object.

Real outputs vary between CLI versions and flags: ops beyond the usual five, steps without
`newState`, `detailedDiff: null`, no `diffReasons`, new event kinds. Nothing here raises on
such input: unknown ops and event kinds are counted and shown, and input that is not what
was expected becomes a problem note in the comment.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from .model import (
    MAX_ERROR_CHARS,
    OP_ORDER,
    REPLACEMENT_OPS,
    Change,
    StackResult,
    Violation,
    classify,
    normalize_op,
    parse_urn,
    replace_reasons,
    step_type,
)
from .text import as_text, plural, strip_colors, truncate

# Event kinds of apitype.EngineEvent (sdk/go/common/apitype/events.go). Only policyEvent
# and diagnosticEvent are read; the others are known so that they are not reported.
KNOWN_EVENT_KINDS = frozenset({
    "cancelEvent", "stdoutEvent", "diagnosticEvent", "preludeEvent", "summaryEvent",
    "resourcePreEvent", "resOutputsEvent", "resOpFailedEvent", "policyEvent",
    "policyRemediationEvent", "policyLoadEvent", "policyAnalyzeSummaryEvent",
    "policyRemediateSummaryEvent", "policyAnalyzeStackSummaryEvent", "startDebuggingEvent",
    "progressEvent", "errorEvent",
})
NO_EVENT = "(no event)"  # the kind counted for a line that names none

# Problem notes are rendered as plain text (md_text), so they hold no Markdown.
STREAM_AS_PREVIEW = (
    "The preview output is an engine event stream (NDJSON), not the document of pulumi preview --json "
    "(was PULUMI_ENABLE_STREAMING_JSON_PREVIEW set?): resource changes are not shown, "
    "its policy violations and diagnostics are."
)
OUTPUT_JSON_AS_PREVIEW = (
    "The preview output is the one of pulumi preview --output json, which has no diffs: "
    "run pulumi preview --json for this comment."
)


# --------------------------------------------------------------------------- event log


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


def event_kinds(event: dict) -> list[str]:
    """The kinds a line carries: its non-null `...Event` keys (exactly one in real logs)."""
    kinds = sorted(k for k, v in event.items() if k.endswith("Event") and v is not None)
    return kinds or [NO_EVENT]


def is_event(obj: Any) -> bool:
    return isinstance(obj, dict) and ("sequence" in obj or any(k.endswith("Event") for k in obj))


def unknown_event_kinds(events: Iterable[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ev in events:
        for kind in event_kinds(ev):
            if kind not in KNOWN_EVENT_KINDS:
                counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def _event(ev: Any, kind: str) -> dict | None:
    value = ev.get(kind) if isinstance(ev, dict) else None
    return value if isinstance(value, dict) else None


def parse_policy_events(events: Iterable[dict]) -> list[Violation]:
    found: dict[tuple, Violation] = {}
    for ev in events:
        pe = _event(ev, "policyEvent")
        if pe is None:
            continue
        v = Violation(
            level=(as_text(pe.get("enforcementLevel")) or "advisory").lower(),
            pack=strip_colors(as_text(pe.get("policyPackName"))),
            pack_version=strip_colors(as_text(pe.get("policyPackVersion"))),
            policy=strip_colors(as_text(pe.get("policyName"))),
            urn=parse_urn(as_text(pe.get("resourceUrn"))),
            message=" ".join(strip_colors(as_text(pe.get("message"))).split()),
            severity=strip_colors(as_text(pe.get("severity"))),
        )
        found.setdefault(v.sort_key, v)
    return [found[k] for k in sorted(found)]


def event_diagnostics(events: Iterable[dict]) -> list[dict]:
    """The `diagnosticEvent`s of an event log as the CLI's document lists them: ephemeral
    and debug messages dropped, the `prefix` (`warning: `) put before the message."""
    out = []
    for ev in events:
        de = _event(ev, "diagnosticEvent")
        if de is not None and not de.get("ephemeral") and de.get("severity") != "debug":
            out.append({**de, "message": as_text(de.get("prefix")) + as_text(de.get("message"))})
    return out


# --------------------------------------------------------------------------- diagnostics


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
    for d in sorted(diagnostics, key=lambda d: (as_text(d.get("severity")), as_text(d.get("urn")),
                                                as_text(d.get("message")))):
        severity = as_text(d.get("severity"))
        message = _clean_message(as_text(d.get("message")), as_text(d.get("urn")))
        if not message or (severity, message) in seen:
            continue
        seen.add((severity, message))
        if severity == "error":
            result.errors.append(message)
        elif severity == "warning":
            result.warnings.append(message)
        elif severity == "info#err":
            result.stderr.append(message)


# --------------------------------------------------------------------------- preview document


def _merge_replacement_steps(steps: list[dict]) -> list[dict]:
    """With --show-replacement-steps a replacement comes as create-replacement +
    delete-replaced (+ replace); keep one step per URN for the report."""
    by_urn: dict[str, dict] = {}
    out: list[dict] = []
    for step in steps:
        if as_text(step.get("op")) in REPLACEMENT_OPS:
            urn = as_text(step.get("urn"))
            if urn in by_urn:
                merged = by_urn[urn]
                for key in ("oldState", "newState", "replaceReasons", "diffReasons", "detailedDiff"):
                    if not merged.get(key) and step.get(key):
                        merged[key] = step[key]
                continue
            merged = dict(step)
            merged["op"] = "replace"
            by_urn[urn] = merged
            out.append(merged)
        else:
            out.append(step)
    return out


def _pick_stack(result: StackResult, doc: dict, events: list[dict]) -> None:
    """Stack and project come from URNs: the root stack's, else the first in URN order."""
    urns = [c.urn for c in result.changes if c.urn.stack]
    for d in doc.get("diagnostics") or []:
        if isinstance(d, dict) and as_text(d.get("urn")):
            urns.append(parse_urn(as_text(d.get("urn"))))
    for ev in events:
        pe = _event(ev, "policyEvent")
        if pe is not None and as_text(pe.get("resourceUrn")):
            urns.append(parse_urn(as_text(pe.get("resourceUrn"))))
    urns = [u for u in urns if u.stack]
    if urns:
        roots = [u for u in urns if u.type == "pulumi:pulumi:Stack"]
        pick = sorted(roots or urns, key=lambda u: u.raw)[0]
        result.stack, result.project = pick.stack, pick.project


def analyze_preview(label: str, doc: Any, events: Iterable[dict] = (), exit_code: int | None = None) -> StackResult:
    """Build the report model for one stack from a parsed preview document and event-log lines."""
    result = StackResult(label=label, exit_code=exit_code)
    events = [ev for ev in events if isinstance(ev, dict)]
    if not isinstance(doc, dict) or not ({"steps", "diagnostics", "changeSummary"} & doc.keys()):
        result.problems.append("No preview document was produced (the CLI failed before printing JSON).")
        doc = {}

    raw_steps = [s for s in (doc.get("steps") or []) if isinstance(s, dict)]
    raw_steps.sort(key=lambda s: (as_text(s.get("urn")), as_text(s.get("op"))))
    counts = {op: 0 for op in OP_ORDER}
    for step in _merge_replacement_steps(raw_steps):
        urn = parse_urn(as_text(step.get("urn")))
        op = normalize_op(as_text(step.get("op")))
        counts[op] = counts.get(op, 0) + 1
        type_token = step_type(step, urn)
        change = Change(urn=urn, op=op, type=type_token, step=step)
        if op in ("replace", "delete"):
            change.flag, change.flagged_reason = classify(step, urn, type_token)
            change.reasons = replace_reasons(step) if op == "replace" else []
        result.changes.append(change)
    result.changes.sort(key=lambda c: c.sort_key)
    result.counts = counts
    _pick_stack(result, doc, events)

    diagnostics = [d for d in (doc.get("diagnostics") or []) if isinstance(d, dict)]
    if not doc:
        # Fall back to the event log's diagnostics when stdout had no document.
        diagnostics += event_diagnostics(events)
    _collect_diagnostics(result, diagnostics)

    result.violations = parse_policy_events(events)
    result.unknown_events = unknown_event_kinds(events)
    result.maybe_corrupt = bool(doc.get("maybeCorrupt"))
    duration = doc.get("duration")
    # bool is an int in Python; a duration never is one.
    result.duration_ns = duration if isinstance(duration, int) and not isinstance(duration, bool) else None
    return result


def read_preview(text: str, path: str) -> tuple[Any, list[dict], list[str]]:
    """(document or None, engine events found instead of a document, problems)."""
    if not text.strip():
        return None, [], [f"Preview output {path!r} is empty."]
    try:
        doc = json.loads(text)
    except ValueError as exc:
        events, bad = read_event_log(text)
        if any(is_event(ev) for ev in events):
            unreadable = [f"{plural(bad, 'line')} of the preview output could not be read."] if bad else []
            return None, events, [STREAM_AS_PREVIEW] + unreadable
        return None, [], [f"Preview output is not valid JSON ({exc.msg} at line {exc.lineno})."]
    if is_event(doc):  # a stream of one line
        return None, [doc], [STREAM_AS_PREVIEW]
    if isinstance(doc, dict) and {"resources", "summary"} <= doc.keys() and "steps" not in doc:
        return None, [], [OUTPUT_JSON_AS_PREVIEW]
    return doc, [], []


def cli_errors(text: str, max_lines: int = 40) -> str:
    """What the CLI's stderr says of a failure: its ``error:`` lines with what follows each (the cause
    is often on the next lines), else its last lines; ANSI colour removed."""
    lines = [strip_colors(line).rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line.strip()]
    picked: list[str] = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith("error:"):
            picked += [x for x in lines[i:i + 4] if x not in picked]
    return "\n".join((picked or lines[-max_lines:])[:max_lines])


def load_stack(label: str, preview_path: str, events_path: str | None = None, exit_code: int | None = None,
               stderr_path: str | None = None) -> StackResult:
    problems: list[str] = []
    doc: Any = None
    events: list[dict] = []
    try:
        with open(preview_path, encoding="utf-8") as fh:
            doc, events, problems = read_preview(fh.read(), preview_path)
    except FileNotFoundError:
        problems.append(f"Preview output {preview_path!r} was not found.")
    except UnicodeDecodeError:
        problems.append(f"Preview output {preview_path!r} is not UTF-8 text.")
    except OSError as exc:
        problems.append(f"Preview output {preview_path!r} could not be read ({exc.strerror or exc}).")
    if events_path:
        try:
            with open(events_path, encoding="utf-8", errors="replace") as fh:
                log, bad = read_event_log(fh.read())
            events += log
            if bad:
                problems.append(f"{plural(bad, 'line')} of the event log could not be read.")
        except FileNotFoundError:
            problems.append("The event log was not found, so policy results are unknown.")
        except OSError as exc:
            problems.append(f"The event log could not be read ({exc.strerror or exc}), so policy results are unknown.")
    result = analyze_preview(label, doc, events, exit_code)
    if stderr_path:
        try:
            with open(stderr_path, encoding="utf-8", errors="replace") as fh:
                result.cli_output = cli_errors(fh.read())
        except OSError:
            pass  # a missing stderr file is no news: the document and the exit code still tell
    if problems:
        # analyze_preview's generic "no document" note is redundant next to a precise one.
        if doc is None:
            result.problems = []
        result.problems = problems + result.problems
    return result
