"""`berth preview-comment`: render `pulumi preview --json` documents (+ engine event logs, written
by `pulumi preview --event-log FILE`, which the CLI accepts only with PULUMI_DEBUG_COMMANDS=true)
of several stacks into one PR comment on stdout.

Usage::

    berth preview-comment \
        --stack dev=dev/preview.json:dev/events.ndjson \
        --stack prod=prod/preview.json \
        [--exit-code dev=0 --exit-code prod=255] [--stderr prod=prod/stderr.txt] [--title T] > comment.md
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


DESCRIPTION = """\
Render the previews of one or more stacks as one pull-request comment (Markdown, on stdout).

It reads two files per stack, both written by `pulumi preview` (nothing else is run or contacted):
  preview.json    what `pulumi preview --json` prints on stdout: the resource changes, diffs and
                  diagnostics (not the output of `--output json`, and not the event stream that
                  PULUMI_ENABLE_STREAMING_JSON_PREVIEW makes it print instead)
  events.ndjson   the engine event log written by `pulumi preview --event-log FILE`: the only place
                  the CLI writes policy pack violations. The Pulumi CLI accepts --event-log only
                  with PULUMI_DEBUG_COMMANDS=true in its environment. Without an event log the
                  comment shows no policy results (a log that is named but missing is noted).
and, optionally (--stderr), what the CLI wrote on stderr: shown for a preview that failed without
saying why in its document (a Docker host or cluster that cannot be reached).
"""

EPILOG = """\
example:
  PULUMI_DEBUG_COMMANDS=true pulumi preview -s prod --json --event-log events.ndjson \\
      --policy-pack "$(berth policy-pack)" > preview.json; echo $? > exit-code
  berth preview-comment --stack prod=preview.json:events.ndjson --exit-code prod=$(cat exit-code) > comment.md

A missing or unreadable file is noted in the comment, not an error. Exit codes: 0 comment written,
2 bad arguments.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="berth preview-comment",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", action="append", required=True, type=parse_stack_arg,
                        metavar="NAME=preview.json[:events.ndjson]",
                        help="a stack's name in the comment, its `pulumi preview --json` output and, after a "
                             "colon, its event log (--event-log FILE); repeat for each stack")
    parser.add_argument("--exit-code", action="append", default=[], metavar="NAME=CODE",
                        help="exit code of that stack's `pulumi preview` (shown; non-zero marks it failed)")
    parser.add_argument("--stderr", action="append", default=[], metavar="NAME=FILE",
                        help="that stack's `pulumi preview` stderr (shown when the preview failed and its "
                             "document names no error, e.g. a Docker host that cannot be reached)")
    parser.add_argument("--title", default=DEFAULT_TITLE, help=f"the comment's heading (default: {DEFAULT_TITLE!r})")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_BUDGET, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    codes: dict[str, int] = {}
    for item in args.exit_code:
        name, _, code = item.partition("=")
        try:
            codes[name] = int(code.strip())
        except ValueError:
            parser.error(f"--exit-code expects NAME=INTEGER, got {item!r}")

    stderr = dict(item.partition("=")[::2] for item in args.stderr)
    results = [load_stack(name, preview, events, codes.get(name), stderr.get(name) or None)
               for name, preview, events in args.stack]
    sys.stdout.write(render_comment(results, args.title, args.max_bytes))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
