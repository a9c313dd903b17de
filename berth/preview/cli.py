"""`berth preview-comment`: render `pulumi preview --json` documents (+ engine event logs)
of several stacks into one PR comment on stdout.

Usage::

    berth preview-comment \
        --stack dev=dev/preview.json:dev/events.ndjson \
        --stack prod=prod/preview.json \
        [--exit-code dev=0 --exit-code prod=255] [--title T] > comment.md
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .markdown import DEFAULT_BUDGET, DEFAULT_TITLE, render_comment
from .read import load_stack


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
