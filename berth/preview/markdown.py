"""The report model as one GitHub PR comment: escaping, blocks, and assembly under the
comment size limit. Pure: the same results give byte-identical Markdown."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .model import (
    FLAG_STATEFUL,
    FLAG_TLS,
    K8S_SECRET,
    MAX_ERROR_CHARS,
    MISSING,
    OP_ORDER,
    SECRET,
    UNKNOWN,
    Change,
    StackResult,
    Violation,
    key_list,
    lookup,
    parse_path,
    step_state,
)
from .text import plural, strip_colors, truncate

MARKER = "<!-- berth-preview -->"
DEFAULT_TITLE = "Pulumi preview"
GITHUB_COMMENT_LIMIT = 65536
# Measured in UTF-8 bytes, which is never less than GitHub's character count.
DEFAULT_BUDGET = GITHUB_COMMENT_LIMIT - 1536

# Caps that keep every single block bounded, so shrinking can always work block-wise.
MAX_FLAGGED = 60
MAX_POLICY_PER_STACK = 60
MAX_ERRORS_PER_STACK = 10
MAX_PATHS_PER_RESOURCE = 25
MAX_VALUE_CHARS = 80
MAX_REASONS = 8
MAX_UNKNOWN_KINDS = 8

OP_SYMBOL = {
    "create": "+",
    "update": "~",
    "replace": "+-",
    "delete": "-",
    "same": " ",
    "read": ">",
    "read-replacement": ">>",
    "import": "=",
    "refresh": "~",
    "discard": "-",
    "discard-replaced": "-",
    "remove-pending-replace": "-",
}

@dataclass(frozen=True)
class _FlagText:
    """How one kind of flagged change is announced."""

    icon: str
    noun: str  # in the bold list at the top
    nouns: str
    consequence: str
    status: str  # in a stack's heading
    summary: str  # after the resource name in its details block
    lead: str  # before the reason inside its details block


_FLAGS = {
    FLAG_STATEFUL: _FlagText("⚠️", "stateful resource", "stateful resources", "data may be lost",
                             "stateful changes", "stateful", "Stateful: "),
    FLAG_TLS: _FlagText("🔑", "TLS key or certificate", "TLS keys or certificates",
                        "a new key or certificate is a new identity", "TLS key or certificate changes",
                        "TLS identity", "🔑 "),
}
_FLAG_ORDER = (FLAG_STATEFUL, FLAG_TLS)

_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|private[_-]?key|credential|api[_-]?key|"
    r"^auth$|bcrypt|connection[_-]?string|dsn",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- escaping

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


# --------------------------------------------------------------------------- values


def _contains(value: Any, match: Callable[[str], bool]) -> bool:
    if isinstance(value, str):
        return match(value)
    if isinstance(value, dict):
        return any(_contains(v, match) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, match) for v in value)
    return False


def is_sensitive_path(type_token: str, tokens: Sequence[str | int]) -> bool:
    if type_token == K8S_SECRET and tokens and tokens[0] in ("data", "stringData"):
        return True
    return any(isinstance(t, str) and _SENSITIVE_KEY.search(t) for t in tokens)


def render_value(value: Any, type_token: str, tokens: Sequence[str | int]) -> str:
    """One value for display. Secrets never leave as anything but `[secret]`."""
    if value is MISSING:
        return "—"
    if _contains(value, lambda s: SECRET in s):
        return md_code(SECRET)
    if is_sensitive_path(type_token, tokens):
        return "*(hidden)*"
    if value == UNKNOWN:
        return "*(known after apply)*"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if _contains(value, lambda s: s == UNKNOWN):
        text = text.replace(json.dumps(UNKNOWN), "(unknown)")
    return md_code(truncate(text, MAX_VALUE_CHARS))


# --------------------------------------------------------------------------- blocks


@dataclass
class Block:
    text: str
    droppable: bool = False
    priority: int = 0
    stack: str = ""


def _more(total: int, cap: int) -> list[str]:
    """The closing list item of a list cut at `cap` items."""
    return [f"- … and {total - cap} more"] if total > cap else []


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
    old, new = step_state(step, "oldState"), step_state(step, "newState")
    rows: list[tuple[str, str, str]] = []
    dd = step.get("detailedDiff")
    if isinstance(dd, dict) and dd:
        entries = sorted((str(k), v if isinstance(v, dict) else {}) for k, v in dd.items())
        for path, info in entries:
            kind = str(info.get("kind") or "update")
            section = "inputs" if info.get("inputDiff") else "outputs"
            rows.append((path, kind, _old_new(c.type, path, kind, old, new, section)))
        return rows
    replace_keys = key_list(step.get("replaceReasons"))
    diff_keys = key_list(step.get("diffReasons"))
    keys = set(replace_keys or diff_keys)
    if c.op == "replace":
        keys |= set(diff_keys)
    for key in sorted(keys):
        kind = "update-replace" if key in replace_keys else "update"
        rows.append((key, kind, _old_new(c.type, key, kind, old, new, "inputs")))
    return rows


def _old_new(type_token: str, path: str, kind: str, old: dict, new: dict, section: str) -> str:
    tokens = parse_path(path)

    def pick(state: dict) -> Any:
        for sec in (section, "inputs" if section == "outputs" else "outputs"):
            value = lookup(state.get(sec) or {}, tokens)
            if value is not MISSING:
                return value
        return MISSING

    before = MISSING if kind.startswith("add") else pick(old)
    after = MISSING if kind.startswith("delete") else pick(new)
    if before is MISSING and after is MISSING:
        return ""
    return f"{render_value(before, type_token, tokens)} → {render_value(after, type_token, tokens)}"


def render_details(c: Change) -> str:
    symbol = OP_SYMBOL.get(c.op, "?")
    ft = _FLAGS.get(c.flag, _FLAGS[FLAG_STATEFUL]) if c.flagged_reason else None
    flag = f" {ft.icon} {ft.summary}" if ft else ""  # appended after html_text (keeps the space)
    rows: list[str] = []
    if c.op in ("update", "replace"):
        paths = _changed_paths(c)
        if c.op == "replace":
            rows.append(f"Replaced because of: {', '.join(md_code(r) for r in c.reasons[:MAX_REASONS]) or '*(no reason reported)*'}")
            rows.append("")
        if paths:
            for path, kind, values in paths[:MAX_PATHS_PER_RESOURCE]:
                rows.append(f"- {md_code(path)} *{md_text(kind)}*" + (f": {values}" if values else ""))
            rows += _more(len(paths), MAX_PATHS_PER_RESOURCE)
        elif c.op == "update":
            rows.append("*(the provider reported no property paths)*")
    elif c.op == "create":
        inputs = step_state(c.step, "newState").get("inputs")
        inputs = inputs if isinstance(inputs, dict) else {}
        keys = sorted(k for k in inputs if not k.startswith("__"))
        for key in keys[:MAX_PATHS_PER_RESOURCE]:
            rows.append(f"- {md_code(key)}: {render_value(inputs[key], c.type, [key])}")
        rows += _more(len(keys), MAX_PATHS_PER_RESOURCE)
        if not keys:
            rows.append("*(no inputs)*")
    elif c.op == "delete":
        rows.append("Will be deleted.")
    else:
        rows.append(f"Operation: {md_code(c.op)}")
    if ft:
        rows.insert(0, f"**{ft.lead}{md_text(c.flagged_reason)}.**\n")
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
    flags = [f"{_FLAGS[kind].icon} {_FLAGS[kind].status}" for kind in _FLAG_ORDER if r.flagged_as(kind)]
    if flags:
        return ", ".join(flags)
    changed = sum(n for op, n in r.counts.items() if op != "same")
    return "✅ no changes" if not changed else "✅ ok"


def _counts_table(r: StackResult) -> str:
    extra = sorted(op for op, n in r.counts.items() if op not in OP_ORDER and n)
    # Ops come from the input: escaped, so that an unexpected one cannot break the table.
    header = [md_text(op.capitalize()) for op in OP_ORDER + extra]
    values = [str(r.counts.get(op, 0)) for op in OP_ORDER + extra]
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "|" + "---:|" * len(header),
            "| " + " | ".join(values) + " |",
        ]
    )


def _flagged_block(results: Sequence[StackResult], kind: str) -> Block | None:
    """The bold list at the top of the comment for one kind of flagged change."""
    flagged = [(r, c) for r in results for c in r.flagged_as(kind)]
    if not flagged:
        return None
    ft = _FLAGS[kind]
    lines = [f"**{ft.icon} {plural(len(flagged), ft.noun, ft.nouns)} will be replaced or deleted — {ft.consequence}:**",
             ""]
    for r, c in flagged[:MAX_FLAGGED]:
        lines.append(
            f"- **{md_text(c.op.upper())}** {_resource_label(c)} in **{md_text(r.label)}** "
            f"({md_text(c.flagged_reason)}){_reasons_text(c.reasons)}"
        )
    lines += _more(len(flagged), MAX_FLAGGED)
    return Block("\n".join(lines))


def _unknown_events_note(r: StackResult) -> str:
    kinds = list(r.unknown_events.items())
    shown = ", ".join(f"{md_code(kind)} ×{n}" for kind, n in kinds[:MAX_UNKNOWN_KINDS])
    more = f" and {plural(len(kinds) - MAX_UNKNOWN_KINDS, 'more kind')}" if len(kinds) > MAX_UNKNOWN_KINDS else ""
    total = sum(r.unknown_events.values())
    return f"*The event log has {plural(total, 'event')} of a kind this renderer does not read: {shown}{more}.*"


def build_blocks(results: Sequence[StackResult], title: str = DEFAULT_TITLE) -> list[Block]:
    blocks: list[Block] = [Block(MARKER + "\n## " + md_text(title or DEFAULT_TITLE))]

    # --- stateful resources and TLS identities replaced or deleted, at the very top, in bold
    for kind in _FLAG_ORDER:
        block = _flagged_block(results, kind)
        if block:
            blocks.append(block)

    failed = [r for r in results if r.failed]
    mandatory = sum(len(r.mandatory) for r in results)
    facts = []
    if failed:
        facts.append(f"**❌ Preview failed for {', '.join(md_text(r.label) for r in failed)}.**")
    if mandatory:
        facts.append(f"**🚫 {plural(mandatory, 'mandatory policy violation')}** — the deploy would be blocked.")
    if not failed and not any(r.flagged_as(FLAG_STATEFUL) for r in results):
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
        if r.unknown_events:
            blocks.append(Block(_unknown_events_note(r), stack=r.label))
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
        if r.cli_output and r.failed and not r.errors:
            blocks.append(Block("**The CLI said:**\n\n" + code_block(truncate(r.cli_output, MAX_ERROR_CHARS)),
                                stack=r.label))

        if r.violations:
            n_mand = len(r.mandatory)
            lines = [f"**Policy violations:** {n_mand} mandatory, {len(r.violations) - n_mand} other", ""]
            lines += [_violation_line(v) for v in r.violations[:MAX_POLICY_PER_STACK]]
            lines += _more(len(r.violations), MAX_POLICY_PER_STACK)
            blocks.append(Block("\n".join(lines), stack=r.label))

        if r.warnings:
            items = "\n".join([f"- {md_text(w)}" for w in r.warnings[:MAX_ERRORS_PER_STACK]]
                              + _more(len(r.warnings), MAX_ERRORS_PER_STACK))
            blocks.append(
                Block(
                    f"<details>\n<summary>{plural(len(r.warnings), 'warning')}</summary>\n\n{items}\n\n</details>",
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


# --------------------------------------------------------------------------- assembly


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
