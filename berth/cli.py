"""The ``berth`` command (also ``python -m berth``): tools for a Berth project.

    berth render -s prod -o build/prod                 # what a stack would create, without deploying
    berth render -s dev --project-dir examples/wishlins
    berth preview-comment --stack prod=preview.json:events.ndjson   # the PR comment
    berth drift-report --stack prod=preview.json:events.ndjson --out-dir drift   # drift issues
    berth status -s prod                               # is every workload of the stack running?
    berth policy-pack                                  # where the installed policy pack is
    berth recover -s dev                               # after a killed `pulumi up` (then `pulumi up`)
    berth package                                      # where the component package is (for YAML programs)
    berth --version

Exit codes: 0 done (status: every workload fine), 1 status: a workload is not fine, 2 bad stack config or bad request (the message names the config key; no
traceback), 1 anything unexpected (with its traceback: that is a bug).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from . import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berth", description="Offline tools for a Berth project.")
    p.add_argument("--version", action="version", version=f"berth {__version__}")
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
        "--project-dir", type=Path, default=Path("."),
        help="directory with Pulumi.yaml and Pulumi.<stack>.yaml (default: the current directory)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    sub.add_parser(
        "preview-comment", add_help=False,
        help="render `pulumi preview --json` outputs and event logs as one PR comment (see --help)",
    )
    sub.add_parser(
        "drift-report", add_help=False,
        help="render `pulumi preview --refresh --json` outputs as one drift report per stack (see --help)",
    )
    st = sub.add_parser(
        "status",
        help="the health of every workload of a stack, read from its Docker host or cluster",
        description=(
            "Evaluate the stack's program under mocks (as render does) for the workloads it declares, then "
            "read each from the target: state, health, restarts and its last error line. Docker: the stack's "
            "berth:docker.host (ssh:// through your ssh client) or DOCKER_HOST; Kubernetes: the kubeconfig "
            "context. Exit 0 when every workload is fine, 1 when one is not, 2 on bad config or an "
            "unreachable target."
        ),
    )
    st.add_argument("-s", "--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    st.add_argument("--project-dir", type=Path, default=Path("."),
                    help="directory with Pulumi.yaml and Pulumi.<stack>.yaml (default: the current directory)")
    st.add_argument("--json", type=Path, default=None, metavar="FILE",
                    help="also write the report as JSON to FILE (- for stdout instead of the table)")
    sub.add_parser(
        "recover", add_help=False,
        help="after a killed `pulumi up`: release its lock, settle pending operations, remove the containers "
             "it was creating (see --help)",
    )
    sub.add_parser(
        "policy-pack",
        help="print the directory of the installed policy pack (for `pulumi preview --policy-pack`)",
    )
    sub.add_parser(
        "package",
        help="print the folder of Berth's component package (for `packages:` in a YAML program's Pulumi.yaml)",
    )
    return p


def _render(args: argparse.Namespace) -> int:
    # Imported for this command only: `berth --version` and `berth policy-pack` load neither
    # Pulumi nor the models.
    from .components.spec import ConfigError
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


def _status(args: argparse.Namespace) -> int:
    from .components.spec import ConfigError
    from .status import TargetError, format_table, status, to_json

    try:
        report = status(args.stack, args.project_dir)
    except (ConfigError, FileNotFoundError, TargetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if str(args.json) == "-":
        print(to_json(report))
    else:
        print(format_table(report))
        if args.json:
            args.json.write_text(to_json(report) + "\n")
    return 0 if report["ok"] else 1


def _policy_pack() -> int:
    import importlib.util

    spec = importlib.util.find_spec("berth.policies")
    if spec is None or not spec.submodule_search_locations:
        print("error: the policy pack is not installed with this berth", file=sys.stderr)
        return 2
    print(list(spec.submodule_search_locations)[0])
    return 0


def _package() -> int:
    import importlib.util

    spec = importlib.util.find_spec("berth.package")
    folder = Path(list(spec.submodule_search_locations)[0]) / "plugin" if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / "pulumi-resource-berth").is_file():
        print("error: the component package is not installed with this berth", file=sys.stderr)
        return 2
    print(folder)
    return 0


def _render_and_exit(args: argparse.Namespace) -> NoReturn:
    """``berth render`` run as a command: the whole process renders once and ends.

    The cyclic garbage collector stays off from here on: the imports and the evaluation create
    long-lived objects only, and the collector scanning them again and again was about a fifth of
    the command's CPU time (see components/program.py and bench/results.md). The process then ends
    without the interpreter's teardown (freeing every module and object one by one, about a third
    of the command's CPU time on the prod stack) once every file is written and closed and the
    message is flushed: nothing else is left to do.
    """
    import gc

    if os.environ.get("BERTH_GC") != "default":  # the same switch as the program's (components/program.py)
        gc.disable()
    code = _render(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Optional[Sequence[str]] = None) -> int:
    command_line = argv is None  # run as `berth ...` / `python -m berth ...`, not called from Python
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["preview-comment"]:
        # Its own parser (and --help): the renderer has many options of its own. Imported for this
        # command only.
        from .preview.cli import main as preview_comment

        return preview_comment(argv[1:])
    if argv[:1] == ["drift-report"]:
        from .preview.drift import main as drift_report

        return drift_report(argv[1:])
    if argv[:1] == ["recover"]:
        from .recover import main as recover

        return recover(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "render":
        if command_line:
            _render_and_exit(args)
        return _render(args)
    if args.command == "status":
        return _status(args)
    if args.command == "policy-pack":
        return _policy_pack()
    if args.command == "package":
        return _package()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
