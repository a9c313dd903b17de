"""Plain-text helpers shared by the readers and the Markdown renderer."""

from __future__ import annotations

import re

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


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def as_text(value: object) -> str:
    """A JSON string field as text; anything else (null, a number, an object) as ''.
    Real outputs omit or null fields freely, and `str(None)` must never reach the comment."""
    return value if isinstance(value, str) else ""
