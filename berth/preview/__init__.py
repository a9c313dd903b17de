"""The PR comment: `pulumi preview --json` documents and engine event logs of several stacks,
rendered as one Markdown comment (``berth preview-comment``).

* `read`: the preview document and the NDJSON event log into the model;
* `model`: URNs, changes, violations, one stack's result, and which changes are flagged
  (stateful resources, TLS identities);
* `markdown`: escaping, blocks and the comment under GitHub's size limit;
* `cli`: the command.

Everything is a pure function of its inputs: the same inputs (in any step order) give
byte-identical output. Only the stdlib is used.
"""

from .cli import main, parse_stack_arg
from .markdown import (
    DEFAULT_BUDGET,
    DEFAULT_TITLE,
    GITHUB_COMMENT_LIMIT,
    MARKER,
    MAX_ERRORS_PER_STACK,
    MAX_FLAGGED,
    MAX_PATHS_PER_RESOURCE,
    MAX_POLICY_PER_STACK,
    MAX_REASONS,
    MAX_UNKNOWN_KINDS,
    MAX_VALUE_CHARS,
    OP_SYMBOL,
    Block,
    assemble,
    build_blocks,
    code_block,
    html_text,
    is_sensitive_path,
    md_code,
    md_text,
    render_comment,
    render_details,
    render_value,
)
from .model import (
    DOCKER_CONTAINER,
    ENFORCEMENT_ORDER,
    FLAG_STATEFUL,
    FLAG_TLS,
    K8S_SECRET,
    K8S_TLS_SECRET_TYPE,
    MAX_ERROR_CHARS,
    OP_ORDER,
    SECRET,
    STATEFUL_PARENTS,
    STATEFUL_TYPES,
    TLS_TYPES,
    UNKNOWN,
    Change,
    StackResult,
    Urn,
    Violation,
    classify,
    lookup,
    normalize_op,
    parse_path,
    parse_urn,
    replace_reasons,
    stateful_reason,
    step_type,
    tls_reason,
)
from .read import (
    KNOWN_EVENT_KINDS,
    analyze_preview,
    load_stack,
    parse_policy_events,
    read_event_log,
    read_preview,
)
from .text import plural, strip_colors, truncate

__all__ = [
    # constants
    "DEFAULT_BUDGET", "DEFAULT_TITLE", "DOCKER_CONTAINER", "ENFORCEMENT_ORDER", "FLAG_STATEFUL", "FLAG_TLS",
    "GITHUB_COMMENT_LIMIT", "K8S_SECRET", "K8S_TLS_SECRET_TYPE", "KNOWN_EVENT_KINDS", "MARKER",
    "MAX_ERRORS_PER_STACK", "MAX_ERROR_CHARS", "MAX_FLAGGED", "MAX_PATHS_PER_RESOURCE", "MAX_POLICY_PER_STACK",
    "MAX_REASONS", "MAX_UNKNOWN_KINDS", "MAX_VALUE_CHARS", "OP_ORDER", "OP_SYMBOL", "SECRET",
    "STATEFUL_PARENTS", "STATEFUL_TYPES", "TLS_TYPES", "UNKNOWN",
    # model
    "Block", "Change", "StackResult", "Urn", "Violation",
    # functions
    "analyze_preview", "assemble", "build_blocks", "classify", "code_block", "html_text",
    "is_sensitive_path", "load_stack", "lookup", "main", "md_code", "md_text", "normalize_op",
    "parse_path", "parse_policy_events", "parse_stack_arg", "parse_urn", "plural",
    "read_event_log", "read_preview", "render_comment", "render_details", "render_value",
    "replace_reasons", "stateful_reason", "step_type", "strip_colors", "tls_reason", "truncate",
]
