"""From a dict of ``berth:`` keys to a checked ``StackSpec``: pydantic's errors become one line per
problem that names the key, shows the value and says the fix (or the key that was meant)."""

from __future__ import annotations

import difflib
import json
from typing import Any, Optional

from pydantic import ValidationError

from .checks import _check_cycles, check_names, check_references, check_inputs, check_targets
from .fields import NAMESPACE, ConfigError
from .reference import _field_homes, _model_at
from .stack import StackSpec

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


def flat_key_problems(raw: dict[str, Any]) -> list[str]:
    """Keys such as ``services.web.image``: ``pulumi config set berth:services.web.image X`` without
    ``--path`` stores one flat key of that name, which Berth would never read (it reads the object
    ``berth:services``)."""
    problems = []
    for key in sorted(k for k in raw if "." in k or "[" in k):
        root = key.split(".")[0].split("[")[0]
        if root in StackSpec.model_fields:
            problems.append(
                f"{NAMESPACE}:{key}: one flat key of that name (set without --path), which Berth does not read: it "
                f"reads {NAMESPACE}:{root} as one object; set it with --path instead: `pulumi config rm "
                f"'{NAMESPACE}:{key}'` and `pulumi config set --path '{NAMESPACE}:{key}' <value>`")
    return problems


def parse_spec(raw: dict[str, Any], warnings: Optional[list[str]] = None) -> StackSpec:
    """Validate a plain dict of ``berth:`` keys (without the prefix). Raises ConfigError; keys that
    are ignored on this target are added to ``warnings``."""
    flat = flat_key_problems(raw)
    if flat:
        raise ConfigError(flat)
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
    check_names(spec, problems)
    check_references(spec, problems)
    check_targets(spec, problems, warnings if warnings is not None else [])
    _check_cycles(spec, problems)
    check_inputs(spec, problems, warnings if warnings is not None else [])
    if problems:
        raise ConfigError(problems)
    return spec
