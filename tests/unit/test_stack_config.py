"""Stack-file problems are named-key (or file:line) errors in `berth render` and in the program under
the real CLI, never a traceback or a silently ignored key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from berth.components.spec import ConfigError, namespace_problems
from berth.record import ROOT, record, stack_config

from .support import STACK, config

APP = {"image": "ghcr.io/acme/app:1.0.0", "port": 8000}
GOOD = """\
config:
  berth:target: docker
  berth:services:
    api:
      image: ghcr.io/acme/app:1.0.0
      port: 8000
"""


def project(tmp_path: Path, stack_text: str, name: str = "shop") -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "Pulumi.yaml").write_text(f"name: {name}\nruntime: python\n")
    (d / "Pulumi.s.yaml").write_text(textwrap.dedent(stack_text))
    return d


def render_cli(proj: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "berth", "render", "-s", "s", "--project-dir", str(proj), "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )


# (case id, stack file text, what the error must contain)
FILE_PROBLEMS = [
    ("yaml-syntax-error", GOOD.replace("      port: 8000", "      port: [8000"), ["Pulumi.s.yaml:", "YAML syntax error"]),
    ("yaml-tab-indent", GOOD.replace("      port: 8000", "\tport: 8000"), ["Pulumi.s.yaml:6:", "YAML syntax error"]),
    ("duplicate-top-level-key", GOOD + "  berth:target: kubernetes\n", ["Pulumi.s.yaml:7:", "'berth:target' appears twice",
                                                                      "first on line 2"]),
    ("duplicate-nested-key", GOOD + "      port: 9000\n", ["Pulumi.s.yaml:7:", "'port' appears twice"]),
    ("version-float-changed-by-yaml", GOOD + "  berth:databases:\n    docs:\n      engine: mongodb\n      version: 7.10\n",
     ["Pulumi.s.yaml:10:", "7.10", "number 7.1", 'quote it: version: "7.10"']),
    ("env-octal-changed-by-yaml", GOOD + "      env:\n        UMASK: 0022\n",
     ["Pulumi.s.yaml:8:", "berth:services.api.env.UMASK = 0022", "YAML reads it as 18", 'quote it: UMASK: "0022"']),
    ("env-time-changed-by-yaml", GOOD + "      env:\n        BACKUP_AT: 12:30\n",
     ["Pulumi.s.yaml:8:", "berth:services.api.env.BACKUP_AT = 12:30", "YAML reads it as 750", 'quote it: BACKUP_AT: "12:30"']),
    ("env-on-changed-by-yaml", GOOD + "      env:\n        FEATURE: on\n",
     ["berth:services.api.env.FEATURE = on", "YAML reads it as true", 'quote it: FEATURE: "on"']),
    ("env-exponent-changed-by-the-cli", GOOD + "      env:\n        LIMIT: 1e3\n",
     ["berth:services.api.env.LIMIT = 1e3", "YAML reads it as 1000", 'quote it: LIMIT: "1e3"']),
    ("command-argument-changed-by-yaml", GOOD + "      command: [run, --at, 12:30]\n",
     ["berth:services.api.command[2] = 12:30", 'quote it: - "12:30"']),
    ("plain-text-secret-in-prod", GOOD + "  berth:environment: prod\n  berth:secrets:\n    api-key: abc123\n",
     ["berth:secrets.api-key: stored in plain text in Pulumi.s.yaml",
      "pulumi config set --secret --path 'berth:secrets.api-key' <value>"]),
    ("mistyped-namespace", GOOD + "  berht:caches:\n    redis: {}\n", ["berht:caches", "did you mean berth:caches?"]),
    ("berth-key-without-namespace", GOOD + "  caches:\n    redis: {}\n", ["caches", "write it as berth:caches"]),
    ("unknown-key-did-you-mean", GOOD + "      replcias: 2\n", ["berth:services.api.replcias", "did you mean berth:services.api.replicas?"]),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in FILE_PROBLEMS], ids=[c[0] for c in FILE_PROBLEMS])
def test_render_reports_stack_file_problems_without_traceback(tmp_path, text, expected):
    r = render_cli(project(tmp_path, text), tmp_path / "out")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for part in expected:
        assert part in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_a_good_stack_file_renders(tmp_path):
    """The table above is not vacuous: the same file without the mistake renders."""
    r = render_cli(project(tmp_path, GOOD), tmp_path / "out")
    assert r.returncode == 0, r.stderr


def test_stack_config_raises_config_error_with_file_and_line(tmp_path):
    proj = project(tmp_path, GOOD + "  berth:target: kubernetes\n")
    with pytest.raises(ConfigError) as info:
        stack_config("s", proj)
    assert f"{proj / 'Pulumi.s.yaml'}:7:" in str(info.value)


def test_a_quoted_version_is_kept(tmp_path):
    proj = project(tmp_path, GOOD + '  berth:databases:\n    docs:\n      engine: mongodb\n      version: "7.10"\n')
    _, cfg = stack_config("s", proj)
    assert cfg["berth:databases"]["docs"]["version"] == "7.10"
    assert "mongo:7.10" in str(record("s", project_dir=proj).by_type("docker:index/container:Container"))


# The program sees every namespace's keys, as under `pulumi up`: a key meant for Berth under another
# namespace is refused there too (not only by `render`).
@pytest.mark.parametrize("key,expected", [
    ("berht:services", "did you mean berth:services?"),
    ("Berth:services", "did you mean berth:services?"),
    ("bert:caches", "did you mean berth:caches?"),
    ("berth_:domain", "did you mean berth:domain?"),
    ("berth:services", None),  # the real one
    ("kubernetes:context", None),  # another provider's
    ("shop:api_url", None),  # the project's own, not a Berth key
])
def test_program_refuses_keys_under_a_mistyped_namespace(key, expected):
    cfg = config("docker", services={"api": APP})
    cfg[key] = cfg.pop("berth:services") if key.endswith("services") else {"x": 1} if key.endswith("caches") else "x"
    if expected is None:
        if key != "berth:services":
            cfg["berth:services"] = {"api": APP}
        record(STACK, config=cfg)
        return
    with pytest.raises(ConfigError) as info:
        record(STACK, config=cfg)
    assert key in str(info.value) and expected in str(info.value)


def test_berth_key_in_the_project_namespace_is_refused():
    """`services:` without a namespace becomes `<project>:services` under the Pulumi CLI."""
    assert namespace_problems(["shop:services", "shop:api_url", "berth:target"], "shop") == [
        "shop:services: Berth reads berth:services, not shop:services; write it as berth:services"
    ]
    assert namespace_problems(["birth:anything"], "birth") == []  # a project named close to berth


def test_default_prefix_must_be_a_dns_label():
    """The default prefix <project>-<stack> names containers, images and the namespace."""
    with pytest.raises(ConfigError) as info:
        record("Prod_1", config=config("kubernetes", services={"api": APP}))
    assert "berth:name = (missing)" in str(info.value) and "'berth-prod-1'" in str(info.value)
    record("Prod_1", config=config("kubernetes", name="shop-prod", services={"api": APP}))


def test_program_reads_numbers_yaml_changed_from_the_stack_file(tmp_path):
    """Under the CLI the program gets 7.1 for `version: 7.10`; it still refuses it, from the file."""
    proj = project(tmp_path, GOOD + "  berth:databases:\n    docs:\n      engine: mongodb\n      version: 7.10\n")
    cfg = config("docker", services={"api": APP}, databases={"docs": {"engine": "mongodb", "version": 7.1}})
    with pytest.raises(ConfigError) as info:
        record("s", project_dir=proj, config=cfg)
    assert 'quote it: version: "7.10"' in str(info.value)


def test_a_plain_text_secret_in_dev_is_a_warning_and_an_encrypted_one_is_fine(tmp_path):
    plain = project(tmp_path, GOOD + "  berth:secrets:\n    api-key: abc123\n    other:\n      secure: v1:AAAA\n")
    r = render_cli(plain, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "berth:secrets.api-key: stored in plain text in Pulumi.s.yaml" in r.stderr, r.stderr
    assert "abc123" not in r.stderr and "berth:secrets.other" not in r.stderr


def test_quoted_or_unchanged_values_pass():
    """Numbers and booleans YAML keeps as written (8000, true, 1.5) and quoted text are fine."""
    from berth.components.spec.config import yaml_changed_problems

    text = (GOOD + '      env:\n        PORT: 8000\n        DEBUG: true\n        RATIO: 1.5\n        AT: "12:30"\n'
            '  berth:proxy:\n    resolver: null\n')
    path = tmp_file(text)
    raw = {"target": "docker", "services": {"api": {"image": "ghcr.io/acme/app:1.0.0", "port": 8000,
                                                     "env": {"PORT": 8000, "DEBUG": True, "RATIO": 1.5, "AT": "12:30"}}},
           "proxy": {"resolver": None}}
    assert yaml_changed_problems(path, raw) == []


def tmp_file(text: str) -> Path:
    import tempfile

    f = Path(tempfile.mkdtemp()) / "Pulumi.s.yaml"
    f.write_text(text)
    return f
