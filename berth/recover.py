"""`berth recover`: after a `pulumi up` that was killed, make the stack's state true again.

A `pulumi up` stopped with one Ctrl-C finishes the operations under way and saves the state: running
`pulumi up` again is all it takes. A CLI that was killed (`kill -9`, a second Ctrl-C, a CI job's
timeout, a lost machine) leaves three things behind, which `pulumi up` refuses or trips over:

- the stack's lock (`pulumi cancel` removes it): done here when the lock was taken on this machine
  by a process that no longer runs, refused otherwise (another `pulumi` may still be at work);
- operations the state marks as under way ("pending"): deletes and updates are settled by the next
  `up`; a pending *create* stays until `pulumi refresh` is told what became of it;
- the objects whose creation was under way, which may exist on the target without being in the
  state. Docker: a container with the stack's name for it, and `pulumi up` fails with "Conflict. The
  container name ... is already in use". It is removed here (containers hold no data: a stack's data
  lives in named volumes, which are never removed); a network is imported into the state by its ID;
  a volume is left as it is (creating a named volume that exists returns it, data and all).
  Kubernetes: nothing to do; the next server-side apply adopts an object that exists (Berth applies
  everything with one field manager). Anything else (a generated password) is created again.

`pulumi refresh --clear-pending-creates` (with the imports) settles the state first (it takes the
lock: nothing is removed while another `pulumi` works on the stack), then the half-made containers
go, and `pulumi up` deploys what the program declares. Every step is printed.

Exit status: 0 done (run `pulumi up` next), 1 something failed (the message says what to do), 2 bad
request (no such stack or project).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_NETWORK = "docker:index/network:Network"
DOCKER_VOLUME = "docker:index/volume:Volume"
_LOCK = re.compile(r"created by (?P<user>[^@\s]+)@(?P<host>\S+) \(pid (?P<pid>\d+)\)")


class RecoverError(RuntimeError):
    """A step failed; the message says what to do."""


@dataclass
class Plan:
    """What to do about each pending create (pure: decided from the state and what exists)."""

    remove_containers: list[tuple[str, str]] = field(default_factory=list)  # (docker host or "", name)
    imports: list[tuple[str, str]] = field(default_factory=list)            # (urn, id)
    cleared: list[str] = field(default_factory=list)                        # urns created again by `up`
    notes: list[str] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """An input of `pulumi stack export --show-secrets` with a secret unwrapped."""
    if isinstance(value, dict) and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


def docker_host_of(deployment: dict[str, Any], resource: dict[str, Any]) -> str:
    """The Docker host of a pending resource: its explicit provider's ``host``, else the environment's."""
    ref = resource.get("provider") or ""
    urn = ref.rsplit("::", 1)[0] if "::" in ref else ref
    for r in deployment.get("resources") or []:
        if r.get("urn") == urn:
            return str(_plain((r.get("inputs") or {}).get("host")) or "")
    return ""


def plan(deployment: dict[str, Any], exists: Callable[[str, str, str], Optional[str]]) -> Plan:
    """What to do about each pending create. ``exists(host, kind, name)`` is the ID of a Docker object of
    that kind (container, network, volume) and name on that host, or None."""
    p = Plan()
    for op in deployment.get("pending_operations") or []:
        if op.get("type") != "creating":
            continue  # deletes and updates: the next `pulumi up` settles them
        res = op.get("resource") or {}
        urn, type_ = res.get("urn", ""), res.get("type", "")
        name = _plain((res.get("inputs") or {}).get("name"))
        kind = {DOCKER_CONTAINER: "container", DOCKER_NETWORK: "network", DOCKER_VOLUME: "volume"}.get(type_)
        if kind and name:
            host = docker_host_of(deployment, res)
            found = exists(host, kind, name)
            if found and kind == "container":
                p.remove_containers.append((host, name))
                p.cleared.append(urn)
                p.notes.append(f"container {name}: created by the killed run, not in the state: removed "
                               "(the next `pulumi up` creates it again)")
            elif found and kind == "network":
                p.imports.append((urn, found))
                p.notes.append(f"network {name}: created by the killed run: imported into the state ({found[:12]})")
            else:
                p.notes.append(f"{kind} {name}: " + ("exists; the next `pulumi up` adopts it" if found
                                                     else "was not created; the next `pulumi up` creates it"))
                p.cleared.append(urn)
            continue
        p.cleared.append(urn)
        p.notes.append(f"{type_} {urn.rsplit('::', 1)[-1]}: created again (Kubernetes: adopted) by the next `pulumi up`")
    return p


def _docker_client(host: str) -> Any:
    try:
        import docker  # noqa: F401 - the Docker SDK
    except ImportError:
        raise RecoverError("the Docker SDK for Python is not installed beside berth: pip install docker") from None
    from berth.docker_client import docker_client  # ssh:// hosts through the ssh client, as the docker CLI

    return docker_client(host)


def docker_exists(host: str, kind: str, name: str) -> Optional[str]:
    from docker.errors import NotFound

    client = _docker_client(host)
    collection = {"container": client.containers, "network": client.networks, "volume": client.volumes}[kind]
    try:
        obj = collection.get(name)
    except NotFound:
        return None
    return obj.id if kind != "volume" else obj.name


def docker_remove_container(host: str, name: str) -> None:
    from docker.errors import NotFound

    try:
        _docker_client(host).containers.get(name).remove(force=True, v=False)  # named volumes always stay
    except NotFound:
        pass


@dataclass
class Cli:
    """The user's ``pulumi`` in their project."""

    stack: str
    project_dir: Path
    say: Callable[[str], None] = print

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        pulumi = shutil.which("pulumi")
        if not pulumi:
            raise RecoverError("the pulumi CLI is not on PATH")
        argv = [pulumi, *args, "--stack", self.stack, "--non-interactive"]
        self.say("$ pulumi " + " ".join(args) + f" --stack {self.stack}")
        proc = subprocess.run(argv, cwd=self.project_dir, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RecoverError(f"`pulumi {' '.join(args)}` failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        return proc


def release_stale_lock(cli: Cli, output: str) -> bool:
    """``pulumi cancel`` when the stack is locked by a process of this machine that no longer runs."""
    m = _LOCK.search(output)
    if "currently locked" not in output or not m:
        return False
    same_host = m["host"] in {socket.gethostname(), socket.getfqdn()}
    alive = same_host and os.path.exists(f"/proc/{m['pid']}")
    if not same_host or alive:
        where = f"pid {m['pid']} on {m['host']}"
        raise RecoverError(f"the stack is locked by {where}, which may still be running: wait for it, or make sure it "
                           f"is gone and run `pulumi cancel --stack {cli.stack}`, then berth recover again")
    cli.say(f"the stack is locked by pid {m['pid']}, which no longer runs on this machine: releasing the lock")
    cli.run("cancel", "--yes")
    return True


def recover(stack: str, project_dir: Path = Path("."), say: Callable[[str], None] = print,
            exists: Callable[[str, str, str], Optional[str]] = docker_exists,
            remove: Callable[[str, str], None] = docker_remove_container) -> Plan:
    cli = Cli(stack, project_dir, say)
    exported = cli.run("stack", "export", "--show-secrets", check=False)
    if exported.returncode != 0:
        raise RecoverError(f"cannot read the state of stack {stack!r}:\n{exported.stderr[-2000:]}")
    deployment = json.loads(exported.stdout).get("deployment") or {}
    p = plan(deployment, exists)
    # The refresh first: it takes the stack's lock, so nothing is removed while another `pulumi` may
    # still work on the stack. The removals need nothing from the state it writes.
    args = ["refresh", "--yes", "--skip-preview", "--clear-pending-creates"]
    for urn, id_ in p.imports:
        args += ["--import-pending-creates", urn, "--import-pending-creates", id_]
    refreshed = cli.run(*args, check=False)
    if refreshed.returncode != 0 and release_stale_lock(cli, refreshed.stdout + refreshed.stderr):
        refreshed = cli.run(*args, check=False)
    if refreshed.returncode != 0:
        raise RecoverError(f"`pulumi refresh` failed:\n{(refreshed.stdout + refreshed.stderr)[-3000:]}")
    for note in p.notes:
        say(note)
    for host, name in p.remove_containers:
        remove(host, name)
    if not (deployment.get("pending_operations") or []):
        say("no operation was left pending: the state was refreshed")
    say(f"done: run `pulumi up --stack {stack}`")
    return p


def main(argv: Sequence[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="berth recover", description=(
        "After a `pulumi up` that was killed: release its lock (when its process is gone), remove the "
        "Docker containers it was creating, settle the pending operations with `pulumi refresh`. Then run "
        "`pulumi up`."))
    ap.add_argument("-s", "--stack", required=True, help="stack name")
    ap.add_argument("--project-dir", type=Path, default=Path("."),
                    help="directory with Pulumi.yaml (default: the current directory)")
    args = ap.parse_args(list(argv))
    if not (args.project_dir / "Pulumi.yaml").is_file():
        print(f"error: no Pulumi.yaml in {args.project_dir}", file=sys.stderr)
        return 2
    try:
        recover(args.stack, args.project_dir, say=lambda m: print(m, flush=True))
    except RecoverError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
