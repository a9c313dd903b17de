"""Docker target: workloads → docker.Network / Volume / RemoteImage / Container.

``container_args`` and friends are pure: they map a Workload to the provider's inputs and are unit
tested without Pulumi. ``DockerTarget`` only creates resources from them. The input shapes follow
shared/PROVIDER-PITFALLS.md: canonical ``cpus``, Go durations, ``memory_swap`` = ``memory``, named
volumes with ``remove_volumes=False``, ``replace_on_changes`` for fields the provider cannot update.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import pulumi

from ..ir import File, ImageBuild, Kind, Probe, Role, Workload, probe_http_command
from ..spec import cpu_millis, memory_mib

#: Fields the provider shows as in-place updates that do nothing to a running container.
REPLACE_ON_CHANGES = ["healthcheck", "tmpfs", "init", "cpuPeriod", "cpuQuota", "mounts"]
#: Fields the Docker API reads back unlike what was declared, so that a diff against the read-back
#: state would replace the container on every `up`. Seen with the real provider on Podman's API:
#: `tmpfs` gains options (rprivate,nodev,tmpcopyup) and mounts never asked for (/run, /var/tmp with
#: a read-only root), `logOpts` reads back empty, `capabilities.drops: [ALL]` reads back as the 14
#: capabilities Podman grants by default and `no-new-privileges:true` as `no-new-privileges` (after a
#: `pulumi refresh` a preview would replace every container). The engine ignores them after creation;
#: their declared values are hashed into the CREATE_ONLY_LABEL, and labels force a replacement, so a
#: real change of them still recreates the container on Docker and Podman alike.
CREATE_ONLY = ["tmpfs", "logOpts", "capabilities", "securityOpts"]
CREATE_ONLY_LABEL = "berth.create-only"
#: Network fields Berth never sets and the API fills in: Podman reads the IPAM options back as
#: {driver: host-local}, which would replace both networks (and so every container) on every `up`.
NETWORK_READ_BACK = ["ipamDriver", "ipamOptions"]
#: Capabilities a workload may add back after dropping ALL (all others are refused).
CAPABILITY_ALLOW_LIST = ("NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE", "FOWNER")


def go_duration(seconds: int) -> str:
    """Seconds in the Go duration form the provider reads back (``90`` → ``"1m30s"``)."""
    if seconds < 60:
        return f"{seconds}s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return (f"{h}h" if h else "") + f"{m}m{s}s"


def docker_cpus(quantity: str) -> str:
    """A Kubernetes CPU quantity as the one-decimal string the provider reads back (``"1"`` → ``"1.0"``,
    ``"250m"`` → ``"0.3"``): any other form shows a diff, and a replacement, on every ``up``."""
    value = max(1, (cpu_millis(quantity) + 50) // 100) / 10  # half up: a limit is never made tighter by rounding to 0.2
    return f"{value:.1f}"


def healthcheck(probe: Probe, engine: str = "docker") -> dict[str, Any]:
    """The container's health check. On Podman (``berth:docker.engine: podman``) an exec-form check is
    given as one shell line: Podman 4's Docker API joins the arguments of ``CMD`` and splits them again
    on spaces, so ``[sh, -c, 'celery -A app inspect ping']`` ran ``sh -c celery`` (and a ``bash -c``
    check whose script starts with ``exec`` passed without checking anything). ``CMD-SHELL`` with
    the arguments quoted for sh runs the same command on either engine."""
    tests = list(probe.command) if probe.command else list(probe_http_command(probe))
    if probe.command and tests[0] not in ("CMD", "CMD-SHELL", "NONE"):
        tests = ["CMD", *tests]
    if engine == "podman" and tests[0] == "CMD" and any(not re.fullmatch(r"[\w@%+=:,./-]+", a) for a in tests[1:]):
        tests = ["CMD-SHELL", shlex.join(tests[1:])]
    return {
        "tests": tests,
        "interval": go_duration(probe.interval),
        "timeout": go_duration(probe.timeout),
        "start_period": go_duration(probe.start_period),
        "retries": probe.retries,
    }


def wait_timeout(probe: Probe) -> int:
    """Long enough for the slowest healthy start: start period + all retries, plus margin."""
    return probe.start_period + probe.retries * (probe.interval + probe.timeout) + 30


@dataclass(frozen=True)
class DockerContext:
    """What the mapping needs to know about the stack on this host."""

    prefix: str
    internal_network: str
    edge_network: str
    stack_labels: dict[str, str] = field(default_factory=dict)
    #: ``berth:docker.engine``: Docker Engine (``docker``) or Podman's Docker API (``podman``).
    engine: str = "docker"


#: How each engine is told who owns a tmpfs. Needed because runc, which both run here, mounts a tmpfs
#: with the `mode` asked for only when its mount point did not exist yet: on the first start it
#: creates the mount point (root, 0755) in the container's own layer, and on every later start
#: (`docker restart`, the daemon restarted, the host rebooted) it finds that directory and gives the
#: tmpfs its mode, 0755 root. A non-root process then cannot write where it could before (Postgres:
#: "could not create lock file /var/run/postgresql/.s.PGSQL.5432.lock": the database never comes back
#: after a reboot when its image lacks that directory). Paths the image has keep the image's mode;
#: Podman keeps the mode under /run, which it mounts as a fresh tmpfs for a read-only root, and not
#: elsewhere. An owner survives the chmod, so the workload's user owns its tmpfs on either engine;
#: Docker Engine takes it as `uid=,gid=` and refuses Podman's `U`; Podman 4 takes `U` (the
#: container's user) and refuses `uid=` ("unknown mount option").
TMPFS_OWNER = {"docker": "uid={uid},gid={gid}", "podman": "U"}
TMPFS_OPTIONS = "rw,noexec,nosuid,size=64m,mode=1777"


def tmpfs_options(ctx: DockerContext, w: Workload) -> str:
    """The options of ``w``'s tmpfs mounts: writable by anyone like /tmp (mode 1777, for the first
    start) and owned by the workload's user when it is not root (for every later start)."""
    base = TMPFS_OPTIONS.replace("noexec,", "") if w.tmpfs_exec else TMPFS_OPTIONS
    if not w.user:
        return base  # root, or the image's own user (Berth does not know it)
    gid = w.group if w.group is not None else w.user
    return f"{base},{TMPFS_OWNER[ctx.engine].format(uid=w.user, gid=gid)}"


#: The label naming the stack that owns a container, volume or network (organization/project/stack):
#: another stack with the same prefix (``berth:name``) on the host is refused (components/live.py).
OWNER_LABEL = "berth.owner"


def docker_context(prefix: str, owner: str = "", engine: str = "docker") -> DockerContext:
    """The context of a stack on a Docker host: its networks and the labels of all it creates."""
    labels = {"berth.stack": prefix, **({OWNER_LABEL: owner} if owner else {})}
    return DockerContext(prefix=prefix, internal_network=f"{prefix}-internal", edge_network=f"{prefix}-edge",
                         stack_labels=labels, engine=engine)


def container_name(ctx: DockerContext, w: Workload, index: int) -> str:
    return f"{ctx.prefix}-{w.name}" if replica_count(w) == 1 else f"{ctx.prefix}-{w.name}-{index + 1}"


def volume_name(ctx: DockerContext, volume: str) -> str:
    """Stable, explicit names: an auto-named volume would come back empty after a replacement."""
    return f"{ctx.prefix}-{volume}"


def read_only_root(w: Workload) -> bool:
    """The root filesystem is read-only unless the workload opted out (a service's
    ``read_only_root: false``, an image that writes beside its code). Generated files do not need a
    writable root: they reach the container through read-only volumes written by a one-shot
    container first (``file_dirs``), never by uploads into the workload itself."""
    return w.read_only_root


# ---------------------------------------------------------------- generated files

#: Where the one-shot files container mounts the file volumes (its own root is read-only).
FILES_MOUNT = "/berth-files"
#: Where the writer's uploads land: in its own new root, never in a volume. Podman extracts an upload
#: (the provider sends each at "/") into the root of a container that is not running, and a volume
#: that is not empty hides it when the container starts: the file of an earlier run would stay. The
#: script moves each upload from here into its volume.
UPLOAD_DIR = "/berth-upload"
#: Directories a volume of generated files must never be mounted over: it would hide the image's own
#: files there. Generated files live in a directory of their own (``/etc/nginx/berth``, ``/berth``).
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root", "/run", "/sbin",
    "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin", "/usr/sbin",
    "/usr/share", "/var", "/var/lib", "/var/run",
})
#: Characters of a file per environment variable: Linux refuses one environment string above 128 KiB
#: (MAX_ARG_STRLEN), and a character takes up to 4 bytes.
ENV_CHUNK = 30_000


#: Where a one-shot job finds its secret values on Docker: a file it reads and deletes before it runs
#: its command (``job_secrets``). A job container stays after it exits, and `docker inspect` shows
#: its environment and command to anyone who may use the Docker API, for as long as it stays.
JOB_SECRETS_DIR = "/berth-secrets"
JOB_SECRETS_FILE = f"{JOB_SECRETS_DIR}/env"
#: ``sh -c`` script run as ``sh -c SCRIPT FILE COMMAND...``: export what FILE sets, delete it, run COMMAND.
JOB_SECRETS_WRAPPER = 'set -a; . "$0"; set +a; rm -f "$0"; exec "$@"'


@dataclass(frozen=True)
class FileDir:
    """One directory of a workload's generated files: a named volume the workload mounts read-only
    at ``path`` (over whatever the image has there), written by the files container first.
    ``writable``: the workload deletes what it read there (a one-shot job's secrets), so the volume
    is its own and mounted read-write."""

    path: str
    volume: str
    files: tuple[File, ...]
    writable: bool = False


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def file_dirs(ctx: DockerContext, w: Workload) -> list[FileDir]:
    """The workload's generated files grouped by directory, one volume each (pure). Refuses a
    directory that would hide the image's system files, a data volume or a tmpfs."""
    by_dir: dict[str, list[File]] = {}
    for f in w.files:
        by_dir.setdefault(posixpath.dirname(f.path), []).append(f)
    taken = ({v.path: f"data volume {v.name}" for v in w.volumes} | {t: "a tmpfs" for t in w.tmpfs}
             | {p: "a seeded directory" for p in w.seeded})
    out = []
    for d in sorted(by_dir):
        if d in SYSTEM_DIRS:
            raise ValueError(f"workload {w.name}: generated files in {d} would hide the image's {d} on Docker "
                             "(each directory of generated files is a volume): put them in a directory of their own")
        for other, what in taken.items():
            if d == other or d.startswith(other.rstrip("/") + "/") or other.startswith(d + "/"):
                raise ValueError(f"workload {w.name}: generated files in {d} overlap {what} at {other}")
        out.append(FileDir(d, f"{ctx.prefix}-{w.name}-files-{_slug(d)}", tuple(by_dir[d]), writable=d == JOB_SECRETS_DIR))
    return out


def seeded_volume(ctx: DockerContext, w: Workload, path: str) -> str:
    """The volume of a seeded directory (``Workload.seeded``). Docker fills an empty named volume
    with the image's files at that path when a container first mounts it; the name carries a hash of
    what the container runs (image, command, plain settings), so that a changed image or setting gets
    a new volume, filled from the image again, and the old one goes with the old container."""
    runs = json.dumps([w.image, w.entrypoint, w.command, sorted(w.env.items())], sort_keys=True, default=str)
    return f"{ctx.prefix}-{w.name}-seed-{_slug(path)}-{hashlib.sha256(runs.encode()).hexdigest()[:8]}"


def object_names(ctx: DockerContext, w: Workload) -> list[tuple[str, str, str]]:
    """(kind, name, what) of every container and volume ``w`` gets on the host (pure): the names two
    workloads must not share (``checks.py``)."""
    out = [("container", container_name(ctx, w, i), "container") for i in range(replica_count(w))]
    out += [("volume", volume_name(ctx, v.name), "volume") for v in w.volumes]
    out += [("volume", seeded_volume(ctx, w, p), "volume") for p in w.seeded]
    if w.files:
        out.append(("container", f"{ctx.prefix}-{w.name}-files", "files writer"))
        out += [("volume", d.volume, "files volume") for d in file_dirs(ctx, w)]
    return out


def _env_file(names: list[str], values: list) -> str:
    return "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in zip(names, values))


def job_secrets(w: Workload) -> Workload:
    """A one-shot job whose secrets are not in its environment (pure): on Docker the container
    stays after it exits, and its environment and command with it (`docker inspect`). Its secret
    values go into a secret file (uploaded, like any secret file, never in an environment), which
    the job reads and deletes before it runs its command: nothing of them stays once it has run.
    The job's command then runs as is, without the image's ENTRYPOINT (Berth's jobs give theirs)."""
    if not (w.one_shot and w.secret_env):
        return w
    if not (w.entrypoint or w.command):
        raise ValueError(f"workload {w.name}: a one-shot job with secrets needs its command on Docker")
    names = sorted(w.secret_env)
    content = pulumi.Output.secret(pulumi.Output.all(*[w.secret_env[k].value for k in names]).apply(
        lambda values: _env_file(names, values)))
    secrets = File("job-secrets", JOB_SECRETS_FILE, content, secret=True, mode=0o400)
    return replace(
        w, secret_env={}, files=(*w.files, secrets), command=None,
        entrypoint=("/bin/sh", "-c", JOB_SECRETS_WRAPPER, JOB_SECRETS_FILE, *(w.entrypoint or ()), *(w.command or ())),
        labels={**w.labels, "berth.secret-file-envs": ",".join(names)})


def files_digest(w: Workload) -> pulumi.Input[str]:
    """A hash of every generated file (path, mode, content). It reveals nothing, so it stays plain
    (a secret label would hide the whole label list in diffs)."""
    def digest(contents: list) -> str:
        blob = json.dumps([[f.path, f.mode, str(c)] for f, c in zip(w.files, contents)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    contents = [f.content for f in w.files]
    if all(isinstance(c, str) for c in contents):
        return digest(contents)
    return pulumi.Output.unsecret(pulumi.Output.all(*contents).apply(digest))


def _file_vars(i: int, f: File) -> list[tuple[str, pulumi.Input[str]]]:
    """(variable, value) pairs carrying file ``i``; plain content longer than ENV_CHUNK is split."""
    if not isinstance(f.content, str) or len(f.content) <= ENV_CHUNK:
        return [(f"BERTH_FILE_{i}", f.content)]
    parts = [f.content[k:k + ENV_CHUNK] for k in range(0, len(f.content), ENV_CHUNK)]
    return [(f"BERTH_FILE_{i}" if j == 0 else f"BERTH_FILE_{i}_{j}", part) for j, part in enumerate(parts)]


#: Plain file content up to this size is written by the script itself (a here-document), so it is
#: known at preview time and shown in `pulumi preview --diff`; longer or secret content travels in
#: the environment. One argument may hold 128 KiB (MAX_ARG_STRLEN).
INLINE_MAX = 60_000


def _inline(f: File) -> bool:
    return not f.secret and isinstance(f.content, str) and len(f.content.encode()) <= INLINE_MAX


def _uploaded(f: File) -> bool:
    """Secret files, and files whose content only a resource gives (which may be secret): uploaded
    into the files volume when the writer is created, so they are in no container's environment or
    command (`docker inspect` shows those). Plain content known now is written by the script."""
    return f.secret or not isinstance(f.content, str)


def _heredoc(content: str, target: str) -> str:
    """Shell that writes ``content`` to ``target`` byte for byte, quoted (no expansion)."""
    delim = "BERTH_EOF_" + hashlib.sha256(content.encode()).hexdigest()[:12]
    if content.endswith("\n") or not content:
        return f"cat > {target} <<'{delim}'\n{content}{delim}" if content else f": > {target}"
    # $(...) drops trailing newlines, and this content has none.
    return f"printf '%s' \"$(cat <<'{delim}'\n{content}\n{delim}\n)\" > {target}"


def files_script(dirs: list[FileDir], owner: Optional[str] = None) -> tuple[str, list[tuple[str, pulumi.Input[str], str]]]:
    """The files container's shell script and its variables (name, value, workload path). Each
    directory is emptied first, so a file no longer generated does not linger. Plain files are
    written by the script itself (visible and known in a preview), long ones from variables; secret
    files were uploaded into the writer's own root (``_uploaded``, ``UPLOAD_DIR``), are moved into
    their volume readable by their mode alone (umask 077 until then) and given to the workload's user
    (``owner``, ``uid:gid``); so is a directory the workload deletes from."""
    lines = ["set -eu"]
    variables: list[tuple[str, pulumi.Input[str], str]] = []
    i = 0
    for n, d in enumerate(dirs):
        mount = f"{FILES_MOUNT}/{n}"
        if d.writable and owner:
            lines.append(f"chown 0:0 {mount}")  # root's again while it writes (an earlier run gave it away)
        # Unlinking needs only the directory (root's): a file an earlier run gave the workload goes too.
        lines.append(f"rm -f {mount}/* {mount}/.[!.]*")
        for f in d.files:
            target = shlex.quote(f"{mount}/{posixpath.basename(f.path)}")
            if _uploaded(f):
                staged = shlex.quote(_upload_path(n, f))
                lines.append(f"test -f {staged}")  # uploaded when this container was created
                lines.append(f"(umask 077 && cat {staged} > {target}) && rm -f {staged}")
                lines.append(f"chmod {f.mode:o} {target}")
                if f.secret and owner:
                    lines.append(f"chown {owner} {target}")
                i += 1
                continue
            elif _inline(f):
                lines.append(_heredoc(f.content, target))  # type: ignore[arg-type]
            else:
                pairs = _file_vars(i, f)
                variables += [(name, value, f.path) for name, value in pairs]
                refs = " ".join(f'"${name}"' for name, _ in pairs)
                lines.append(f"printf '%s' {refs} > {target}")
            lines.append(f"chmod {f.mode:o} {target}")
            i += 1
        if d.writable and owner:
            # Last: root here has no CAP_DAC_OVERRIDE, so once the directory is the workload's (700)
            # it can no longer reach the files in it.
            lines.append(f"chown {owner} {mount} && chmod 700 {mount}")
    return "\n".join(lines) + "\n", variables


def _upload_path(n: int, f: File) -> str:
    return f"{UPLOAD_DIR}/{n}/{posixpath.basename(f.path)}"


def files_uploads(dirs: list[FileDir]) -> list[dict[str, Any]]:
    """The files uploaded into the writer's root when it is created (``_uploaded``): the provider
    extracts them before the container starts; its script moves them into their volumes."""
    out = []
    for n, d in enumerate(dirs):
        for f in d.files:
            if _uploaded(f):
                out.append({"file": _upload_path(n, f), "content": f.content, "permissions": "0400"})
    return out


def files_init_args(ctx: DockerContext, w: Workload) -> dict[str, Any]:
    """The one-shot container that writes ``w``'s generated files into their volumes (pure).

    It runs the workload's own image (already on the host, and it has a shell) as root, because a new
    named volume belongs to root; it has no capabilities, no network, and it runs once: the provider
    waits for it to exit (``attach``) before the workload is created. Plain files travel in its
    script (or, when long, its environment). Secret files never do: the container stays after it
    exits, and `docker inspect` shows its environment and command. They are uploaded into the
    volumes when the container is created (`docker inspect` does not show uploads) and given to the
    workload's user, mode 0400: only the process that reads them can (CAP_CHOWN, the one capability
    such a writer gets). The uploads land in the writer's own root (``UPLOAD_DIR``), which is
    therefore writable, and are moved from there (dockerd refuses an upload into a container whose root
    is read-only, and Podman would extract one at a volume's path under the volume, into the root). A
    changed file replaces this container (it runs again) and, through the workload's ``berth.files``
    hash, the workload."""
    dirs = file_dirs(ctx, w)
    owner = f"{w.user}:{w.fs_group}" if w.user is not None else None
    script, variables = files_script(dirs, owner)
    uploads = files_uploads(dirs)
    labels = {**ctx.stack_labels, "berth.role": "init", "berth.workload": f"{w.name}-files", "berth.files-for": w.name,
              # root only to write into root's new volumes: no network, no capability but CHOWN for secret files
              "berth.run-as-root": "true"}
    seen: set[str] = set()
    for name, _value, path in variables:
        index = name.split("_")[2]
        if index not in seen:
            seen.add(index)
            labels[f"berth.file.{index}"] = path  # which variable holds which file (never the content)
    if uploads:
        # Which files were uploaded (never their content), and why this writer's root is writable.
        labels["berth.uploads"] = ",".join(f.path for d in dirs for f in d.files if _uploaded(f))
    chown = any(f.secret for d in dirs for f in d.files) or any(d.writable for d in dirs)
    args: dict[str, Any] = {
        "name": f"{ctx.prefix}-{w.name}-files",
        "hostname": f"{w.name}-files",
        "entrypoints": ["/bin/sh", "-c"],
        "command": [script],
        "envs": [env_entry(name, value) for name, value, _p in variables],
        "labels": [{"label": k, "value": v} for k, v in sorted(labels.items())],
        "user": "0:0",
        "network_mode": "none",
        "restart": "no",
        "must_run": False,
        "attach": True,
        "read_only": not uploads,
        "memory": 64,
        "memory_swap": 64,
        "cpus": "0.5",
        "capabilities": {"drops": ["ALL"], "adds": ["CHOWN"]} if chown else {"drops": ["ALL"]},
        "security_opts": ["no-new-privileges:true"],
        "volumes": [{"volume_name": d.volume, "container_path": f"{FILES_MOUNT}/{n}", "read_only": False}
                    for n, d in enumerate(dirs)],
        # Anonymous volumes go with it: the writer runs the workload's image, whose VOLUME
        # directories (a database image's data dir) would otherwise leave one behind at every
        # replacement (seen on Podman: over a hundred after a day of tests). Named volumes stay.
        "remove_volumes": True,
        "rm": False,
        "log_driver": "json-file",
        "log_opts": {"max-size": "1m", "max-file": "1"},
    }
    if uploads:
        args["uploads"] = uploads
    return _with_create_only_label(args)


def _with_create_only_label(args: dict[str, Any]) -> dict[str, Any]:
    create_only = {"tmpfs": args.get("tmpfs"), "logOpts": args["log_opts"]}
    # Added later: hashed only when they differ from what every container had then, so that the
    # label (and so the container) stays as it was where they do not.
    extra = {"capabilities": args.get("capabilities"), "securityOpts": args.get("security_opts")}
    if extra != {"capabilities": {"drops": ["ALL"]}, "securityOpts": ["no-new-privileges:true"]}:
        create_only.update(extra)
    digest = hashlib.sha256(json.dumps(create_only, sort_keys=True).encode()).hexdigest()[:16]
    args["labels"] = sorted([*args["labels"], {"label": CREATE_ONLY_LABEL, "value": digest}], key=lambda x: x["label"])
    return args


def replica_count(w: Workload) -> int:
    """Docker has no autoscaler: run the autoscaler's minimum."""
    return w.scaling.min if w.scaling else w.replicas


def env_entry(name: str, value: pulumi.Input[str]) -> pulumi.Input[str]:
    """``NAME=value`` for a secret env value: one ``apply`` on the value's Output, which keeps its
    secrecy and dependencies. ``Output.concat`` made about ten Outputs per entry, the most Berth made
    of its own on a Docker stack: about 7 % of a large stack's evaluation (bench/results.md)."""
    if isinstance(value, str):
        return f"{name}={value}"
    out = value if isinstance(value, pulumi.Output) else pulumi.Output.from_input(value)
    return out.apply(lambda v: f"{name}={v}")


def container_args(ctx: DockerContext, w: Workload, index: int = 0) -> dict[str, Any]:
    """The docker.Container inputs for replica ``index`` of ``w`` (pure; Outputs pass through)."""
    envs: list[Any] = [f"{k}={v}" for k, v in sorted(w.env.items())]
    for k in sorted(w.secret_env):
        envs.append(env_entry(k, w.secret_env[k].value))
    networks = [{"name": ctx.internal_network, "aliases": [w.name]}]
    if w.egress or w.publish:
        networks.append({"name": ctx.edge_network, "aliases": [w.name]})
    labels = {**ctx.stack_labels, "berth.role": w.role.value, "berth.workload": w.name, **w.labels}
    if w.secret_env:
        # Tells the policy pack which env values came from secret outputs.
        labels["berth.secret-envs"] = ",".join(sorted(w.secret_env))
    # What a reviewer must see in a diff, in plain inputs. With one secret value among them the SDK
    # makes the whole `envs` list one secret, so `pulumi preview --diff` (and the PR comment) would
    # show a plain change such as LOG_LEVEL=info → debug only as "[secret] changed". A label per plain
    # variable (NAME=value; labels are plain) shows it; secret values never reach a label. The image
    # reference likewise: the container gets the image's id, which is unknown until it is pulled.
    labels["berth.image"] = w.image
    for k, v in sorted(w.env.items()):
        labels[f"berth.env.{k}"] = f"{k}={v}"
    args: dict[str, Any] = {
        "name": container_name(ctx, w, index),
        "hostname": w.name,
        "envs": envs,
        "networks_advanced": networks,
        "labels": [{"label": k, "value": v} for k, v in sorted(labels.items())],
        "restart": "no" if w.one_shot else "unless-stopped",
        "must_run": not w.one_shot,
        # A one-shot job (pre-deploy dump, restore) is waited for until it exits: without `attach`
        # the provider returns once it has started, and what depends on it (the apps after their
        # pre-deploy dump) would start beside it.
        **({"attach": True} if w.one_shot else {}),
        "read_only": read_only_root(w),
        # A non-root user must be able to write there (e.g. postgres' socket lock file), after a
        # restart too (tmpfs_options).
        "tmpfs": {p: tmpfs_options(ctx, w) for p in w.tmpfs} or None,
        "memory": memory_mib(w.resources.memory_limit),
        "memory_swap": memory_mib(w.resources.memory_limit),
        "cpus": docker_cpus(w.resources.cpu_limit),
        "capabilities": {"drops": ["ALL"], "adds": sorted(w.capabilities)} if w.capabilities else {"drops": ["ALL"]},
        "security_opts": ["no-new-privileges:true"],
        "destroy_grace_seconds": max(w.stop_grace_seconds, 30 if w.stateful_data else 10),
        # A one-shot job holds no data of its own (see the writer's); a long-running container keeps
        # anonymous volumes its image declares, in case an image keeps data there.
        "remove_volumes": w.one_shot,
        "rm": False,
        "log_driver": "json-file",
        "log_opts": {"max-size": "10m", "max-file": "3"},
    }
    if w.user is not None:
        args["user"] = f"{w.user}:{w.group if w.group is not None else w.user}"
    if w.entrypoint:
        args["entrypoints"] = list(w.entrypoint)
    if w.command:
        args["command"] = list(w.command)
    if w.publish:
        args["ports"] = [
            {"internal": p.container_port, "external": p.host_port, "ip": p.host_ip, "protocol": "tcp"}
            for p in w.publish
        ]
    volumes = [{"volume_name": volume_name(ctx, v.name), "container_path": v.path, "read_only": False} for v in w.volumes]
    volumes += [{"volume_name": seeded_volume(ctx, w, p), "container_path": p, "read_only": False} for p in w.seeded]
    if w.files:
        volumes += [{"volume_name": d.volume, "container_path": d.path, "read_only": not d.writable}
                    for d in file_dirs(ctx, w)]
        args["labels"].append({"label": "berth.files", "value": files_digest(w)})
        args["labels"].sort(key=lambda x: x["label"])
    if volumes:
        args["volumes"] = volumes
    if w.health and not w.one_shot and w.health.docker:
        args["healthcheck"] = healthcheck(w.health, ctx.engine)
        # Dependents are created only once this container is healthy (compose's service_healthy).
        args["wait"] = True
        args["wait_timeout"] = wait_timeout(w.health)
    if args["tmpfs"] is None:
        del args["tmpfs"]
    return _with_create_only_label(args)


def job_succeeded(job: str, exit_code: Optional[int]) -> str:
    """The label value of a workload that waits for ``job``; raises when the job failed."""
    if exit_code not in (None, 0):
        raise pulumi.RunError(
            f"the one-shot job {job!r} exited with code {exit_code}; what depends on it was not deployed. "
            f"See `docker logs <prefix>-{job}`, fix the cause, then run `pulumi up` again"
        )
    return "succeeded"


def check_capabilities(w: Workload) -> None:
    extra = set(w.capabilities) - set(CAPABILITY_ALLOW_LIST)
    if extra:
        raise ValueError(f"workload {w.name}: capabilities {sorted(extra)} are not allowed")


class DockerTarget:
    """Creates Docker resources for workloads on one Docker host."""

    name = "docker"

    def __init__(self, prefix: str, host: Optional[str], protect: bool, parent: pulumi.Resource, owner: str = "",
                 engine: str = "docker"):
        self.prefix = prefix
        self.protect = protect
        self._parent = parent
        self._images: dict[str, Any] = {}
        self._volumes: dict[str, Any] = {}  # shared volumes are created once
        self._jobs: dict[int, tuple[str, pulumi.Output[str]]] = {}  # one-shot containers: name, success label
        opts = pulumi.ResourceOptions(parent=parent)
        self.provider = None
        if host:
            from pulumi_docker import Provider

            self.provider = Provider("docker", host=host, opts=opts)
        self.ctx = docker_context(prefix, owner, engine)
        from pulumi_docker import Network

        # Datastores live on an internal network only (no route out, never published).
        self.internal = Network(
            "internal",
            name=self.ctx.internal_network,
            internal=True,
            labels=self.labels(),
            opts=self._network_opts(parent),
        )
        # Apps that need egress (bots, API clients) and the proxy also join the edge network.
        self.edge = Network(
            "edge",
            name=self.ctx.edge_network,
            labels=self.labels(),
            opts=self._network_opts(parent),
        )

    def labels(self, **extra: str) -> list[dict[str, str]]:
        """The labels of a network or volume: the stack's (prefix and owner) and ``extra``."""
        return [{"label": k, "value": v} for k, v in sorted({**self.ctx.stack_labels, **extra}.items())]

    def _network_opts(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        # Labels of networks and volumes cannot change in place: the provider replaces the network (and
        # so every container) or the volume (and its data) to change them. They are written when the
        # object is created; a network or volume made before Berth labelled owners keeps its labels
        # (live.py adopts it with a warning).
        return self._opts(parent, ignore_changes=[*NETWORK_READ_BACK, "labels"])

    def _opts(self, parent: pulumi.Resource, **kw: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **kw)

    def image(self, ref: str, parent: pulumi.Resource) -> pulumi.Output[str]:
        """A RemoteImage per image reference, kept locally so containers can restart offline."""
        from pulumi_docker import RemoteImage

        if ref not in self._images:
            # The reference itself names the resource: any sanitising could make two references collide.
            self._images[ref] = RemoteImage(
                f"image-{ref}", name=ref, keep_locally=True, opts=self._opts(self._parent)
            )
        img = self._images[ref]
        return img.image_id if isinstance(img, RemoteImage) else img.image_name

    def build_image(self, ref: str, build: ImageBuild) -> None:
        """Build ``ref`` from a Dockerfile shipped with Berth (kept on the host, never pushed); once
        per image name."""
        from pulumi_docker import Image

        if ref not in self._images:
            self._images[ref] = Image(
                f"build-{build.name}",
                image_name=ref,
                build={"context": build.context, "dockerfile": f"{build.context}/Dockerfile", "args": build.args,
                       "platform": "linux/amd64"},
                skip_push=True,
                opts=self._opts(self._parent),
            )

    def deploy(self, w: Workload, parent: pulumi.Resource, depends_on: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """Create the volumes and containers of ``w``; returns what dependents should wait for."""
        from pulumi_docker import Container, Volume

        check_capabilities(w)
        w = job_secrets(w)
        volumes = []
        for v in w.volumes:
            if v.name in self._volumes:
                volumes.append(self._volumes[v.name])
                continue
            # Data volumes outlive containers: protected and retained in prod.
            stateful = w.stateful_data or v.shared
            self._volumes[v.name] = (
                Volume(
                    f"{w.name}-{v.name}" if not v.name.startswith(w.name) else v.name,
                    name=volume_name(self.ctx, v.name),
                    labels=self.labels(**{"berth.workload": w.name}),
                    # Labels only when created (see _network_opts): a new label would replace the data.
                    opts=self._opts(parent, protect=self.protect and stateful, retain_on_delete=self.protect and stateful,
                                    ignore_changes=["labels"]),
                )
            )
            volumes.append(self._volumes[v.name])
        for i, path in enumerate(w.seeded):
            # Not data: a copy of the image's directory for the entrypoint to rewrite (seeded_volume).
            volumes.append(Volume(
                f"{w.name}-seed-{i}",
                name=seeded_volume(self.ctx, w, path),
                labels=self.labels(**{"berth.workload": w.name, "berth.config": "true"}),
                opts=self._opts(parent, ignore_changes=["labels"]),
            ))
        if w.build:
            self.build_image(w.image, w.build)
        image = self.image(w.image, parent)
        if w.files:
            # Generated files: their volumes, then the one-shot container that writes them; the
            # workload comes after it (files_init_args).
            file_volumes = [
                Volume(
                    d.volume.removeprefix(f"{self.prefix}-"),
                    name=d.volume,
                    # Not data: regenerated on every change, never protected (berth.config tells them apart).
                    labels=self.labels(**{"berth.workload": w.name, "berth.config": "true"}),
                    opts=self._opts(parent, ignore_changes=["labels"]),
                )
                for d in file_dirs(self.ctx, w)
            ]
            writer = Container(
                f"{w.name}-files",
                image=image,
                opts=self._opts(parent, depends_on=[*file_volumes], replace_on_changes=REPLACE_ON_CHANGES,
                                ignore_changes=CREATE_ONLY, delete_before_replace=True),
                **files_init_args(self.ctx, w),
            )
            depends_on = [*depends_on, writer]
        # Waiting is not succeeding: the provider does not check a job's exit code. A workload that
        # depends on a job carries a label derived from the job's exit code, and a failed job fails
        # it before it is created or replaced (the rollout stops; the old containers stay).
        after = {self._jobs[id(d)][0]: self._jobs[id(d)][1] for d in depends_on if id(d) in self._jobs}
        containers = []
        n = replica_count(w)
        for i in range(n):
            args = container_args(self.ctx, w, i)
            if after:
                args["labels"] = sorted([*args["labels"], *({"label": f"berth.after.{job}", "value": ok}
                                                             for job, ok in sorted(after.items()))],
                                        key=lambda x: x["label"])
            res_name = w.name if n == 1 else f"{w.name}-{i + 1}"
            containers.append(
                Container(
                    res_name,
                    image=image,
                    opts=self._opts(
                        parent,
                        depends_on=[self.internal, self.edge, *volumes, *depends_on],
                        replace_on_changes=REPLACE_ON_CHANGES,
                        ignore_changes=CREATE_ONLY,
                        delete_before_replace=True,
                    ),
                    **args,
                )
            )
        if w.one_shot:
            for c in containers:
                self._jobs[id(c)] = (w.name, c.exit_code.apply(lambda code, job=w.name: job_succeeded(job, code)))
        return containers
