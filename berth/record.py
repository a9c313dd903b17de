"""Evaluate the real program for a stack under Pulumi mocks and record what it declares.

The project's own ``__main__.py`` (for Berth projects: ``berth.main()``), the program ``pulumi up`` runs, with the same ``Pulumi.<stack>.yaml``,
no engine and no cloud. Every registered resource is kept with its inputs (as the provider would
receive them, camelCase) and its options (protect, retainOnDelete, dependsOn, ...). Generated values
(passwords, TLS keys and certificates) and secret config come back as named placeholders
``<<berth:KIND:NAME>>``: the renderer writes them as they are, the real-deploy tests substitute
real values, and a test can tell a leaked secret by its placeholder.
"""

from __future__ import annotations

import contextvars
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_RE = re.compile(r"<<berth:([a-z-]+):([^<>]+)>>")


def placeholder(kind: str, name: str) -> str:
    return f"<<berth:{kind}:{name}>>"


@dataclass
class Resource:
    """One declared resource: what the engine would send to the provider."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    parent: str = ""
    provider: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    depends_on: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deleteBeforeReplace": self.delete_before_replace,
            "dependsOn": sorted(self.depends_on),
            "ignoreChanges": sorted(self.ignore_changes),
            "replaceOnChanges": sorted(self.replace_on_changes),
            "inputs": self.inputs,
        }


@dataclass
class Recording:
    project: str
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]

    def by_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def find(self, type_: str, name: str) -> Resource:
        for r in self.resources:
            if r.type == type_ and r.name == name:
                return r
        raise KeyError(f"no {type_} named {name}; have: {sorted(r.name for r in self.by_type(type_))}")


def _generated_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs a provider would compute, as placeholders. Unknown custom types fail loudly."""
    if typ == "random:index/randomPassword:RandomPassword":
        return {"result": placeholder("password", name), "bcryptHash": placeholder("bcrypt", name)}
    if typ == "random:index/randomString:RandomString":
        return {"result": placeholder("random", name)}
    if typ == "tls:index/privateKey:PrivateKey":
        return {"privateKeyPem": placeholder("tls-key", name), "publicKeyPem": placeholder("tls-public", name)}
    if typ == "tls:index/selfSignedCert:SelfSignedCert":
        return {"certPem": placeholder("tls-cert", name)}
    if typ == "docker:index/remoteImage:RemoteImage":
        return {"imageId": inputs.get("name"), "repoDigest": inputs.get("name")}
    if typ == "docker:index/image:Image":
        return {"imageName": inputs.get("imageName"), "repoDigest": inputs.get("imageName")}
    return {}


KNOWN_PACKAGES = ("docker:", "kubernetes:", "random:", "tls:", "pulumi:providers:")
STACK_REFERENCE = "pulumi:pulumi:StackReference"


def referenced_outputs(config: Any) -> dict[str, set[str]]:
    """Every ``{from_stack: S, output: O}`` in the stack config, as ``{S: {O, ...}}``: the outputs a
    StackReference is asked for (``secret_env``), which the mocks answer with placeholders."""
    found: dict[str, set[str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("from_stack"), str) and isinstance(value.get("output"), str):
                found.setdefault(value["from_stack"], set()).add(value["output"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(config)
    return found


def _make_mocks(stack_outputs: Optional[dict[str, set[str]]] = None):
    import pulumi

    class RecordingMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            if args.typ == STACK_REFERENCE:
                # Another stack's outputs are not here: each one asked for is a named placeholder.
                stack = args.inputs.get("name") or args.name
                names = sorted((stack_outputs or {}).get(stack, ()))
                outs = {o: placeholder("stack-output", f"{stack}:{o}") for o in names}
                return f"{args.name}-id", {"name": stack, "outputs": outs, "secretOutputNames": names}
            if args.custom and not args.typ.startswith(KNOWN_PACKAGES):
                raise RuntimeError(f"recording mocks: unexpected resource type {args.typ}")
            outputs = {**args.inputs, **_generated_outputs(args.typ, args.name, args.inputs)}
            return f"{args.name}-id", outputs

        def call(self, args: pulumi.runtime.MockCallArgs):
            # The program makes no provider calls; one appearing is a change worth a test.
            raise RuntimeError(f"recording mocks: unexpected call {args.token}")

    return RecordingMocks()


def _make_monitor(mocks, resources: list[Resource], outputs: dict[str, Any]):
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import MockMonitor

    class RecordingMonitor(MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type == "pulumi:pulumi:Stack":
                return response
            inputs = rpc.deserialize_properties(request.object)
            resources.append(
                Resource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    inputs=_plain(inputs),
                    parent=request.parent,
                    provider=request.provider,
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    depends_on=list(request.dependencies),
                    ignore_changes=list(request.ignoreChanges),
                    replace_on_changes=list(request.replaceOnChanges),
                    aliases=list(request.aliasURNs),
                )
            )
            return response

        def RegisterResourceOutputs(self, request):
            if request.urn.split("::")[-2].endswith("pulumi:pulumi:Stack"):
                outputs.update(_plain(rpc.deserialize_properties(request.outputs)))
            return super().RegisterResourceOutputs(request)

    return RecordingMonitor(mocks)


def _plain(value: Any) -> Any:
    """Deserialized properties → JSON-able data (secrets unwrapped; they are placeholders here)."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the protocol carries every number as a double
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def stack_config(stack: str, project_dir: Path = ROOT) -> tuple[str, dict[str, Any]]:
    """The project name and the raw config of ``Pulumi.<stack>.yaml``.

    Read as the Pulumi CLI reads it: a YAML syntax error or a duplicate key is a ``ConfigError``
    naming the file and line (not a traceback), and so is a number YAML would change
    (``version: 7.10``). Keys meant for Berth under another namespace are reported by the program
    itself (``read_raw_config``), which sees every key as it does under the CLI.
    """
    # Imported when a stack is read, as pulumi is in this module: importing berth.record (for ROOT
    # or the Recording type) loads neither Pulumi nor the models.
    from berth.components.spec import ConfigError, read_stack_file

    project = read_stack_file(project_dir / "Pulumi.yaml").get("name")
    if not isinstance(project, str):
        raise ConfigError([f"{project_dir / 'Pulumi.yaml'}: `name` (the project name) is missing; add it"])
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack config {path}")
    config = read_stack_file(path).get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([f"{path}: `config` must be a mapping of keys (berth:target: docker, ...)"])
    return project, config


def secret_placeholders(config: dict[str, Any]) -> dict[str, Any]:
    """Secret config values (``berth:secrets`` and ``secure:`` values) replaced by placeholders."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "berth:secrets" and isinstance(value, dict):
            out[key] = {k: placeholder("config", k) for k in value}
        elif isinstance(value, dict) and set(value) == {"secure"}:
            out[key] = placeholder("config", key)
        else:
            out[key] = value
    return out


def record(
    stack: str,
    project_dir: Path = ROOT,
    config: Optional[dict[str, Any]] = None,
    program: Optional[Callable[[], None]] = None,
) -> Recording:
    """Run the program for ``stack`` under recording mocks. ``config`` overrides the stack file.

    Raises the program's own exceptions (``ConfigError`` for bad config) unchanged.
    """
    project_dir = Path(project_dir).absolute()  # the program is found from inside it (below)
    project, file_config = stack_config(stack, project_dir) if config is None else (_project(project_dir), {})
    cfg = secret_placeholders(config if config is not None else file_config)

    def run() -> Recording:
        import pulumi
        from pulumi.runtime.stack import run_pulumi_func
        from pulumi.runtime.sync_await import _sync_await

        resources: list[Resource] = []
        outputs: dict[str, Any] = {}
        flat = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in cfg.items()}
        pulumi.runtime.set_all_config(flat, [k for k in cfg if k == "berth:secrets"])
        mocks = _make_mocks(referenced_outputs(cfg))
        pulumi.runtime.set_mocks(mocks, project, stack, preview=False, monitor=_make_monitor(mocks, resources, outputs))
        from pulumi.runtime.settings import SETTINGS

        # As pulumi.runtime.test does: no failure of an earlier recording is carried into this one.
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()
        entry = program if program is not None else _project_program(project_dir, stack)
        _sync_await(run_pulumi_func(entry))
        from pulumi.runtime.settings import get_root_resource

        root = get_root_resource()
        exported = getattr(root, "outputs", {}) or {}
        if exported:
            outputs.update(_plain(_sync_await(pulumi.Output.from_input(exported).future())))
        return Recording(project, stack, resources, outputs)

    # A fresh context: each recording starts with no root stack, config or settings of a previous one.
    # The program runs in the project directory, as the language host runs it (relative paths in
    # stack config and in the program resolve the same way).
    import contextlib
    import gc

    # Berth's program switches the garbage collector off for its evaluation (components/program.py):
    # right for `pulumi up`, whose process ends with the program, but this process goes on (tests
    # record hundreds of stacks), so the collector is given back as it was.
    collecting = gc.isenabled()
    try:
        with contextlib.chdir(project_dir):
            return contextvars.Context().run(run)
    finally:
        if collecting:
            gc.enable()


def _project_program(project_dir: Path, stack: str = "dev") -> Callable[[], None]:
    """The project's ``__main__.py`` as a function (what the language host runs), a YAML program's
    Berth resources, or Berth's own program when the project has none."""
    from berth.package.yaml_program import is_yaml

    if is_yaml(project_dir):  # a YAML program using Berth's component package (berth/package/yaml_program.py)
        from berth.package.yaml_program import program

        return program(project_dir, stack)
    main = project_dir / "__main__.py"
    if not main.exists():
        # Only for a project without a program of its own (see stack_config on why it is imported here).
        from berth.components.program import main as berth_main

        return berth_main

    def run_main() -> None:
        import runpy

        runpy.run_path(str(main), run_name="__main__")

    return run_main


def _project(project_dir: Path) -> str:
    return yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]


def placeholders_in(value: Any) -> set[str]:
    """Every placeholder appearing anywhere in ``value``."""
    return {m.group(0) for m in PLACEHOLDER_RE.finditer(json.dumps(value))}
