"""Reading the current stack's config: the one place it is read (``load_spec``). Besides the
models' checks, what only the stack files and the environment show: keys meant for Berth under
another namespace, YAML that changes what was written, the default name prefix, TLS files."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin

import pulumi

from .fields import NAMESPACE, ConfigError, _scalar_text
from .names import _prefix
from .parse import parse_spec
from .proxy import TlsMode
from .reference import _descend, _strip
from .stack import StackSpec

#: Namespaces of other packages a stack file may configure: never "a typo of berth".
_OTHER_NAMESPACES = {"pulumi", "kubernetes", "docker", "random", "tls", "aws", "azure", "gcp", "command"}


def namespace_problems(keys: list[str], project: Optional[str]) -> list[str]:
    """Config keys that were meant for Berth but are not read by it: a mistyped namespace
    (``berht:services``) or a Berth key in the project's own namespace (``myapp:services``, which is
    what a key without ``berth:`` becomes)."""
    problems = []
    top = set(StackSpec.model_fields)
    for full in sorted(keys):
        ns, sep, key = full.partition(":")
        if not sep:
            ns, key = (project or ""), full
        root = key.split(".")[0]
        if ns == NAMESPACE or ns in _OTHER_NAMESPACES:
            continue
        if ns != project and difflib.SequenceMatcher(None, ns.lower(), NAMESPACE).ratio() >= 0.6:
            problems.append(f"{full}: namespace {ns!r} is not read by Berth; did you mean {NAMESPACE}:{key}?")
        elif (ns == project or not sep) and root in top:
            problems.append(f"{full}: Berth reads {NAMESPACE}:{root}, not {full.split('.')[0]}; "
                            f"write it as {NAMESPACE}:{key}")
    return problems


def _yaml_loader(path: Path, problems: list[str]):
    import yaml

    class Loader(yaml.SafeLoader):
        """Refuses duplicate keys (the Pulumi CLI does) and notes numbers YAML would change
        (``version: 7.10`` is the float 7.1)."""

    def mapping(loader: Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            k = loader.construct_object(key_node, deep=True)
            if k in seen:
                problems.append(f"{path}:{key_node.start_mark.line + 1}: key {k!r} appears twice in this "
                                f"mapping (first on line {seen[k]}); keep one")
            seen.setdefault(k, key_node.start_mark.line + 1)
            if (isinstance(value_node, yaml.ScalarNode) and value_node.tag == "tag:yaml.org,2002:float"
                    and isinstance(k, str) and (k == "version" or k.endswith("_version"))):
                text = value_node.value
                if str(float(text)) != text:
                    problems.append(
                        f"{path}:{value_node.start_mark.line + 1}: {k}: {text} is read by YAML as the number "
                        f"{float(text)!r}; quote it: {k}: \"{text}\""
                    )
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def read_stack_file(path: Path) -> dict[str, Any]:
    """A ``Pulumi.<stack>.yaml`` (or ``Pulumi.yaml``) as data. A YAML syntax error, a duplicate key
    or a number that YAML changes becomes a ConfigError naming the file and line."""
    import yaml

    problems: list[str] = []
    try:
        data = yaml.load(path.read_text(), Loader=_yaml_loader(path, problems))  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: YAML syntax error: {exc.problem or exc.context}; fix the file"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: YAML error: {exc}; fix the file"]) from None
    if problems:
        raise ConfigError(problems)
    if data is not None and not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping at the top (config: ...)"])
    return data or {}


def read_raw_config() -> dict[str, Any]:
    """Every ``berth:*`` config value of the current stack, objects decoded from JSON. Keys meant for
    Berth under another namespace are errors (the program sees every namespace's keys)."""
    from pulumi.runtime import config as rc

    keys = set(rc.CONFIG.get().keys()) | set(rc.get_config_env().keys())
    problems = namespace_problems(sorted(keys), pulumi.get_project())
    if problems:
        raise ConfigError(problems)
    raw: dict[str, Any] = {}
    for full in sorted(keys):
        ns, _, key = full.partition(":")
        if ns != NAMESPACE:
            continue
        value = rc.get_config(full)
        if isinstance(value, str):
            stripped = value.strip()
            if stripped[:1] in ("{", "["):
                try:
                    value = json.loads(stripped)
                except json.JSONDecodeError as exc:
                    raise ConfigError([f"{full}: not valid JSON/YAML structure ({exc.msg}); fix the value"]) from None
        raw[key] = value
    return raw


def stack_prefix(name: Optional[str]) -> str:
    """The resource name prefix: ``berth:name``, or ``<project>-<stack>``."""
    return name or f"{pulumi.get_project()}-{pulumi.get_stack()}"


def check_prefix(spec: StackSpec, prefix: str) -> list[str]:
    """The resource name prefix names Docker containers, networks, volumes and images, and is the
    default namespace: it must be an RFC 1123 label. ``berth:name`` is checked by the model; the
    default ``<project>-<stack>`` here, where the project and stack are known."""
    if spec.name is not None:
        return []
    try:
        _prefix(prefix)
    except ValueError as exc:
        fixed = str(exc).rsplit("'", 2)[-2]
        return [f"{NAMESPACE}:name = (missing): the default prefix {prefix!r} (<project>-<stack>) {exc}; "
                f"set it: `pulumi config set {NAMESPACE}:name {fixed}`"]
    return []


def check_files(spec: StackSpec) -> list[str]:
    """``tls.mode: files`` reads the certificate and key where Pulumi runs: they must be there now."""
    if not spec.proxy or spec.proxy.tls.mode != TlsMode.FILES:
        return []
    problems = []
    for field, marker in (("cert_file", "CERTIFICATE"), ("key_file", "PRIVATE KEY")):
        path = getattr(spec.proxy.tls, field)
        key = f"{NAMESPACE}:proxy.tls.{field} = {json.dumps(path)}"
        try:
            text = Path(path).read_text()
        except OSError as exc:
            problems.append(f"{key}: cannot read it here ({exc.strerror}); fix the path, or keep the certificate "
                            f"in config: tls.mode secret (see README, TLS)")
            continue
        if f"-----BEGIN " not in text or marker not in text:
            problems.append(f"{key}: not a PEM {marker.lower()}; give the PEM file")
    return problems


def _expects_text(path: list[str]) -> bool:
    """Whether the key at ``path`` (``["services", "api", "env", "TZ"]``) takes text: a string, or a
    union with a string branch (``secret_env`` values)."""
    tp: Any = StackSpec
    for part in path:
        tp = _descend(tp, part)
        if tp is None:
            return False
    tp = _strip(tp)
    return tp is str or (get_origin(tp) is Union and any(_strip(a) is str for a in get_args(tp)))


#: Plain scalars a YAML 1.2 reader (the Pulumi CLI's) reads as numbers where a YAML 1.1 reader (PyYAML,
#: ``berth render``) keeps text: an exponent without a dot, 0o octal.
_YAML12_NUMBER = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)[eE][-+]?\d+$|^0o[0-7]+$")


def _as_berth_reads(value: Any) -> Any:
    """A scalar as Berth turns it into text (``fields._scalar_text``): true → "true", 8000 → "8000"."""
    return _scalar_text(value)


def yaml_changed_problems(path: Path, raw: dict[str, Any]) -> list[str]:
    """Unquoted values of the stack file that arrive as something other than what was written where
    Berth takes text (env values, settings, arguments): ``0123`` is the number 83, ``1.10`` is 1.1,
    and in YAML 1.1 readers ``12:30`` is 750 and ``on`` is true. ``raw`` is what the program received
    (through the Pulumi CLI, or ``berth render``'s reading); a value is refused when either that, or
    a YAML 1.1 reader, makes of it something else than its text, so render and deploy agree."""
    import yaml

    try:
        root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return []  # read_stack_file reports syntax errors
    if not isinstance(root, yaml.MappingNode):
        return []
    config = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "config"), None)
    if not isinstance(config, yaml.MappingNode):
        return []
    problems: list[str] = []

    def walk(node: Any, received: Any, keys: list[str]) -> None:
        if isinstance(node, yaml.MappingNode) and isinstance(received, dict):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value in received:
                    walk(v, received[k.value], [*keys, k.value])
        elif isinstance(node, yaml.SequenceNode) and isinstance(received, list):
            for i, (v, got) in enumerate(zip(node.value, received)):
                walk(v, got, [*keys, str(i)])
        elif (isinstance(node, yaml.ScalarNode) and node.style is None and node.tag != "tag:yaml.org,2002:str"
              or isinstance(node, yaml.ScalarNode) and node.style is None and _YAML12_NUMBER.match(node.value)):
            written = node.value
            leaf = keys[-1]
            if leaf == "version" or leaf.endswith("_version") or not _expects_text(keys):
                return  # versions: read_stack_file's own message; numbers and booleans are meant as such
            try:
                yaml11: Any = yaml.safe_load(written)
            except yaml.YAMLError:
                yaml11 = written
            yaml12: Any = written
            if _YAML12_NUMBER.match(written):
                yaml12 = int(written[2:], 8) if written.startswith("0o") else float(written.replace("_", ""))
                yaml12 = int(yaml12) if isinstance(yaml12, float) and yaml12.is_integer() else yaml12
            if yaml11 is None:
                return  # null: no value, as meant (a field that needs one says so itself)
            readings = [r for r in (received, yaml11, yaml12) if _as_berth_reads(r) != written]
            if not readings:
                return
            shown = json.dumps(readings[0], default=str)
            key = NAMESPACE + ":" + ".".join(f"[{k}]" if k.isdigit() else k for k in keys).replace(".[", "[")
            problems.append(f"{path}:{node.start_mark.line + 1}: {key} = {written} is not read as written: YAML "
                            f"reads it as {shown}; quote it: {leaf if not leaf.isdigit() else '- '}"
                            f"{': ' if not leaf.isdigit() else ''}\"{written}\"")

    for k, v in config.value:
        if isinstance(k, yaml.ScalarNode) and k.value.startswith(f"{NAMESPACE}:"):
            key = k.value[len(NAMESPACE) + 1:]
            if key in raw:
                walk(v, raw[key], [key])
    return problems


def plaintext_secrets(file_config: dict[str, Any], raw: dict[str, Any], is_secret: bool) -> list[str]:
    """The names under ``berth:secrets`` whose value is not encrypted. ``file_config`` is the stack
    file's ``config`` (where ``pulumi config set --secret --path`` writes ``{secure: ...}``);
    without the key there (config from elsewhere), ``is_secret`` says whether Pulumi holds
    ``berth:secrets`` as a secret."""
    written = file_config.get(f"{NAMESPACE}:secrets")
    if isinstance(written, dict):
        if set(written) == {"secure"}:
            return []
        return sorted(k for k, v in written.items() if not (isinstance(v, dict) and set(v) == {"secure"}))
    if written is None and isinstance(raw.get("secrets"), dict) and not is_secret:
        return sorted(raw["secrets"])
    return []


def plaintext_secret_messages(names: list[str], where: str, prod: bool) -> list[str]:
    return [f"{NAMESPACE}:secrets.{n}: stored in plain text in {where} (whoever reads the file reads it, and "
            f"`berth render` and previews show it as if it were encrypted); encrypt it: `pulumi config set --secret "
            f"--path '{NAMESPACE}:secrets.{n}' <value>`" + ("" if prod else " (a prod stack refuses it)")
            for n in names]


def load_spec() -> StackSpec:
    """Read and validate the current stack's config. The one place config is read."""
    raw = read_raw_config()
    problems: list[str] = []
    file_config: dict[str, Any] = {}
    stack_file = Path(f"Pulumi.{pulumi.get_stack()}.yaml")
    if stack_file.exists():
        # Numbers YAML changes (`version: 7.10` → 7.1) are lost before the config reaches the
        # program; the stack file still has them as written.
        try:
            file_config = read_stack_file(stack_file).get("config") or {}
        except ConfigError as exc:
            problems += [p for p in exc.problems if "read by YAML as the number" in p]
        problems += yaml_changed_problems(stack_file, raw)
    if "target" not in raw:
        problems.append(f"{NAMESPACE}:target = (missing): set it with `pulumi config set {NAMESPACE}:target docker` "
                        "(or kubernetes)")
        raise ConfigError(problems)
    warnings: list[str] = []
    try:
        spec = parse_spec(raw, warnings)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    problems += check_prefix(spec, stack_prefix(spec.name)) + check_files(spec)
    from pulumi.runtime import config as rc

    plain = plaintext_secrets(file_config if isinstance(file_config, dict) else {}, raw,
                              rc.is_config_secret(f"{NAMESPACE}:secrets"))
    messages = plaintext_secret_messages(plain, stack_file.name if stack_file.exists() else "the stack's config",
                                         spec.protect)
    if spec.protect:
        problems += messages
    else:
        warnings += messages
    if problems:
        raise ConfigError(problems)
    for w in warnings:
        pulumi.log.warn(w)
    return spec
