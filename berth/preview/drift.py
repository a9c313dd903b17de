"""`berth drift-report`: what changed outside Pulumi, one report per stack (the drift workflow's issues).

Input per stack, written by the drift workflow's job:
- the document of `pulumi preview --refresh --json` (what `pulumi up` would now do) and its engine
  event log (`--event-log`): the refresh step of each resource carries the fields the target read
  back differently from the state (`diffs`, `detailedDiff`) with the old and new values — that is
  the drift, field by field, secrets masked by the CLI;
- `berth status --json` of the stack: workloads not running well (a stopped container looks like no
  drift to Pulumi when its provider does not track run state);
- the exit code and stderr of the preview.

Each stack ends in one state: `not-deployed` (its state has no resources: nothing to report),
`failed` (the check itself failed: reported), `drifted` / `down` (reported), `clean` (a reported
issue is closed). The rendering reuses the PR comment's blocks (berth.preview.markdown).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .markdown import Block, assemble, code_block, md_code, md_text, render_details
from .model import Change, StackResult, parse_urn
from .read import load_stack, read_event_log
from .text import plural

ROOT_TYPE = "pulumi:pulumi:Stack"
LABEL = "berth-drift"


def marker(name: str) -> str:
    return f"<!-- berth-drift:{name} -->"


@dataclass
class Drift:
    """One stack's drift check, read from the files its job wrote."""

    name: str
    preview: StackResult
    drifted: list[Change] = field(default_factory=list)   # resources the refresh read back changed
    status: dict[str, Any] | None = None
    status_problem: str = ""

    @property
    def deployed(self) -> bool:
        root = [c for c in self.preview.changes if c.urn.type == ROOT_TYPE]
        return not (root and root[0].op == "create")

    @property
    def down(self) -> list[dict[str, Any]]:
        return [w for w in (self.status or {}).get("workloads", []) if not w.get("ok")]

    @property
    def state(self) -> str:
        if self.preview.failed or (self.deployed and self.status_problem):
            return "failed"
        if not self.deployed:
            return "not-deployed"
        if self.drifted:
            return "drifted"
        if self.down:
            return "down"
        return "clean"

    @property
    def report(self) -> bool:
        return self.state in ("failed", "drifted", "down")

    @property
    def title(self) -> str:
        if self.state == "failed":
            return f"Drift check failed: {self.name}"
        parts = []
        if self.drifted:
            parts.append(f"{plural(len(self.drifted), 'resource')} changed outside Pulumi")
        if self.down:
            parts.append(f"{plural(len(self.down), 'workload')} not running well")
        return f"Drift: {self.name} ({', '.join(parts)})" if parts else f"No drift: {self.name}"


def refresh_changes(events: list[dict[str, Any]]) -> list[Change]:
    """The resources whose refresh read back something else than the state, as changes whose
    fields are the drifted ones (old value = the state, new value = the target)."""
    out: dict[str, Change] = {}
    for ev in events:
        meta = ((ev.get("resOutputsEvent") or {}) if isinstance(ev, dict) else {}).get("metadata")
        if not isinstance(meta, dict) or meta.get("op") not in ("refresh", "delete"):
            continue
        urn = parse_urn(str(meta.get("urn") or ""))
        if urn.type == ROOT_TYPE:
            continue
        detailed = meta.get("detailedDiff") if isinstance(meta.get("detailedDiff"), dict) else {}
        diffs = [d for d in meta.get("diffs") or [] if isinstance(d, str)]
        gone = meta.get("op") == "delete" or not meta.get("new")
        if not (detailed or diffs or gone):
            continue
        # The refresh's kinds say what an update would do to the provider's state ("update-replace"):
        # for drift only the direction matters.
        dd = {path: {"kind": str(info.get("diffKind") or "update").split("-")[0], "inputDiff": False}
              for path, info in detailed.items() if isinstance(info, dict)}
        step = {"op": "delete" if gone else "update", "urn": urn.raw, "oldState": meta.get("old") or {},
                "newState": meta.get("new") or {}, "detailedDiff": dd or None, "diffReasons": diffs}
        out[urn.raw] = Change(urn=urn, op=step["op"], type=str(meta.get("type") or urn.type), step=step)
    return [out[k] for k in sorted(out)]


def load_drift(name: str, preview_path: str, events_path: str | None, exit_code: int | None,
               stderr_path: str | None, status_path: str | None) -> Drift:
    result = load_stack(name, preview_path, events_path, exit_code, stderr_path)
    events: list[dict[str, Any]] = []
    if events_path and Path(events_path).exists():
        events, _bad = read_event_log(Path(events_path).read_text(encoding="utf-8", errors="replace"))
    d = Drift(name, result, refresh_changes(events))
    if status_path:
        try:
            d.status = json.loads(Path(status_path).read_text())
        except FileNotFoundError:
            d.status_problem = "berth status wrote no report."
        except ValueError:
            err = Path(status_path).with_name("status-stderr.txt")
            why = err.read_text(errors="replace").strip() if err.exists() else ""
            d.status_problem = "berth status could not read the target" + (f": {why}" if why else ".")
    return d


def _status_table(workloads: list[dict[str, Any]]) -> str:
    rows = ["| workload | kind | state | detail | last error |", "|---|---|---|---|---|"]
    for w in workloads:
        rows.append("| " + " | ".join(md_text(str(w.get(k) or "")).replace("|", "\\|")
                                       for k in ("name", "kind", "state", "detail", "last_error")) + " |")
    return "\n".join(rows)


def render_drift(d: Drift, checked: str = "") -> str:
    """The body of the stack's issue (starts with its marker)."""
    r = d.preview
    head = f"{marker(d.name)}\n## {md_text(d.title)}"
    sub = [f"Project {md_code(r.project or '?')}, stack {md_code(r.stack or '?')}"]
    if checked:
        sub.append(f"checked {md_text(checked)}")
    blocks = [Block(head + "\n\n" + " · ".join(sub))]
    if d.state == "failed":
        text = ["**The drift check did not complete**, so what runs is unknown."]
        text += [f"- {md_text(p)}" for p in r.problems]
        if r.exit_code not in (None, 0):
            text.append(f"- `pulumi preview --refresh` exited {r.exit_code}")
        if d.status_problem:
            text.append(f"- {md_text(d.status_problem)}")
        blocks.append(Block("\n".join(text)))
        for e in r.errors[:10]:
            blocks.append(Block(code_block(e)))
        if r.cli_output and not r.errors:
            blocks.append(Block("**The CLI said:**\n\n" + code_block(r.cli_output)))
    if d.state in ("clean", "not-deployed"):
        blocks.append(Block("The stack is as deployed: no resource changed outside Pulumi and every workload "
                            "runs well." if d.state == "clean" else "The stack has not been deployed."))
    if d.drifted:
        blocks.append(Block(f"**Changed outside Pulumi ({len(d.drifted)})** — the state says the first value, "
                            "the target has the second:"))
        for c in d.drifted:
            blocks.append(Block(render_details(c), droppable=True, priority=1))
    if d.down:
        blocks.append(Block(f"**Workloads not running well ({len(d.down)})**, read by `berth status`:\n\n"
                            + _status_table(d.down)))
    if d.report and d.state != "failed":
        undo = [c for c in r.changes if c.op not in ("same", "read", "refresh") and c.urn.type != ROOT_TYPE]
        if undo:
            blocks.append(Block(f"**What `pulumi up --refresh` would do** to bring back what the stack declares "
                                f"({plural(len(undo), 'resource')}):"))
            for c in undo:
                blocks.append(Block(render_details(c), droppable=True, priority=3))
        blocks.append(Block(f"To undo the drift: `pulumi up --refresh -s {md_text(r.stack or d.name)}`. "
                            "To keep a change, make it in the stack's configuration and deploy it. "
                            "This issue is updated by each drift check and closed when the stack is as deployed."))
    return assemble(blocks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="berth drift-report",
        description="Render the drift workflow's results as one Markdown report per stack, "
                    "plus summary.json (which stacks to report) and summary.md.",
    )
    parser.add_argument("--stack", action="append", required=True, metavar="NAME=preview.json[:events.ndjson]",
                        help="a stack's `pulumi preview --refresh --json` output and, after a colon, its event log "
                             "(--event-log, with PULUMI_DEBUG_COMMANDS=true): the drifted fields are read from it")
    parser.add_argument("--exit-code", action="append", default=[], metavar="NAME=CODE")
    parser.add_argument("--stderr", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--status", action="append", default=[], metavar="NAME=FILE",
                        help="`berth status --json FILE` of that stack")
    parser.add_argument("--checked", default="", help="when the check ran (shown)")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    def pairs(items: list[str]) -> dict[str, str]:
        return {k: v for k, _, v in (i.partition("=") for i in items)}

    codes = {k: int(v) if v.strip().isdigit() else None for k, v in pairs(args.exit_code).items()}
    stderr, status = pairs(args.stderr), pairs(args.status)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    summary, lines = {}, ["| stack | state |", "|---|---|"]
    for item in args.stack:
        name, _, paths = item.partition("=")
        preview, _, events = paths.partition(":")
        d = load_drift(name, preview, events or None, codes.get(name), stderr.get(name), status.get(name))
        file = f"{name}.md"
        (args.out_dir / file).write_text(render_drift(d, args.checked))
        summary[name] = {"state": d.state, "report": d.report, "title": d.title, "file": file}
        lines.append(f"| {md_text(name)} | {d.state} |")
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (args.out_dir / "summary.md").write_text("## Drift\n\n" + "\n".join(lines) + "\n")
    for name, s in summary.items():
        print(f"{name}: {s['state']}", file=sys.stderr)
    return 0
