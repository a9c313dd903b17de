"""``python -m berth``: offline tools for a Berth project.

    python -m berth render -s prod -o build/prod
    python -m berth render -s dev                      # writes build/dev
    python -m berth render -s dev --project-dir examples/wiki -o build/wiki-dev

Exit codes: 0 done, 2 bad stack config or bad request (the message names the config key; no
traceback), 1 anything unexpected (with its traceback: that is a bug).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m berth", description="Offline tools for a Berth project.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "render",
        help="write what a stack would create (Kubernetes YAML, Docker/random/tls JSON) without deploying",
        description=(
            "Evaluate the program for a stack under mocks (no engine, no cloud) and write every "
            "Kubernetes object as YAML (apply order) and every other resource as JSON with its options. "
            "Secrets appear only as named placeholders <<berth:KIND:NAME>>. Output is deterministic."
        ),
    )
    r.add_argument("-s", "--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    r.add_argument("-o", "--out", type=Path, default=None, help="output directory (default: build/<stack>)")
    r.add_argument(
        "--project-dir", type=Path, default=ROOT,
        help="directory with Pulumi.yaml and Pulumi.<stack>.yaml (default: the repository root)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def _render(args: argparse.Namespace) -> int:
    from components.spec import ConfigError

    from .render import RenderError, render

    out = args.out or Path("build") / args.stack
    try:
        idx = render(args.stack, out, project_dir=args.project_dir)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (RenderError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        c = idx["counts"]
        print(
            f"rendered {idx['project']}/{idx['stack']} into {out}: "
            f"{c['kubernetes']} Kubernetes object(s) in {out}/kubernetes, "
            f"{c['other']} other resource(s) in {out}/resources, index.json, outputs.json"
        )
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the program's `components` package
    args = _parser().parse_args(argv)
    if args.command == "render":
        return _render(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
