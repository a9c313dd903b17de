"""`python -m berth render`: offline synth of a stack (Kubernetes YAML, Docker/random/tls JSON).

Checked here: valid manifests in apply order, every resource written with its options, secrets only
as named placeholders, byte-identical output on re-render, and the spec's named-key error (exit 2,
no traceback) for bad config.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from berth.record import PLACEHOLDER_RE, ROOT, record, stack_config
from berth.render import KIND_GROUPS, render

EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*") if (p / "Pulumi.yaml").exists())
GROUP = {kind: g for g, kinds in enumerate(KIND_GROUPS) for kind in kinds}


def files_of(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "berth", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def prod(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render") / "prod"
    render("prod", out)
    return out


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render") / "dev"
    render("dev", out)
    return out


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_render_twice_is_byte_identical(tmp_path, stack):
    a, b = tmp_path / "a", tmp_path / "b"
    render(stack, a)
    render(stack, b)
    fa, fb = files_of(a), files_of(b)
    assert fa.keys() == fb.keys()
    different = [name for name in fa if fa[name] != fb[name]]
    assert not different, f"files differ between two renders: {different}"
    assert len(fa) > 3


def test_cli_render_and_rerender_replaces_stale_files(tmp_path):
    out = tmp_path / "out"
    r = run_cli("render", "-s", "prod", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "rendered berth/prod" in r.stdout
    stale = out / "kubernetes" / "999-deployment-gone.yaml"
    stale.write_text("kind: Deployment\n")
    keep = out / "NOTES.md"  # not ours: left alone
    keep.write_text("mine\n")
    first = files_of(out)
    r = run_cli("render", "-s", "prod", "-o", str(out), "-q")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert not stale.exists()
    assert keep.read_text() == "mine\n"
    second = files_of(out)
    assert {k: v for k, v in first.items() if "999-" not in k} == second


# ---------------------------------------------------------------- Kubernetes manifests


def manifests(out: Path) -> list[tuple[str, dict]]:
    return [(p.name, yaml.safe_load(p.read_text())) for p in sorted((out / "kubernetes").glob("*.yaml"))]


def test_prod_manifests_are_valid_and_complete(prod):
    import kubernetes_validate

    docs = manifests(prod)
    rec = record("prod")
    k8s = [r for r in rec.resources if r.custom and r.type.startswith("kubernetes:")]
    assert len(docs) == len(k8s) > 10
    for name, m in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(m), name
        assert m["metadata"].get("name"), name
        if m["kind"] != "Namespace":
            assert m["metadata"].get("namespace") == "easyflow", name
        if m["kind"] in ("Secret", "ConfigMap"):
            assert "stringData" in m or "data" in m, name
        elif m["kind"] != "Namespace":
            assert "spec" in m, name
        if m["kind"] == "Secret":
            assert "stringData" in m and "data" not in m, name
        kubernetes_validate.validate(m, "1.31", strict=True)


def test_prod_manifests_in_apply_order(prod):
    docs = manifests(prod)
    names = [n for n, _ in docs]
    assert names == sorted(names)
    for i, (name, m) in enumerate(docs, start=1):
        assert name.startswith(f"{i:03d}-{m['kind'].lower()}-{m['metadata']['name']}"), name
    assert docs[0][1]["kind"] == "Namespace"
    groups = [GROUP.get(m["kind"], len(KIND_GROUPS)) for _, m in docs]
    assert groups == sorted(groups), [(n, g) for (n, _), g in zip(docs, groups)]
    kinds = [m["kind"] for _, m in docs]
    assert kinds.index("StatefulSet") > max(i for i, k in enumerate(kinds) if k in ("Secret", "ConfigMap"))
    assert max(i for i, k in enumerate(kinds) if k == "Service") < kinds.index("HorizontalPodAutoscaler")


def test_dependencies_come_first(prod, dev):
    for out in (prod, dev):
        idx = json.loads((out / "index.json").read_text())
        pos = {f: i for i, f in enumerate(idx["applyOrder"])}
        by_urn = {e["urn"]: e for e in idx["resources"]}
        for e in idx["resources"]:
            if not e["file"]:
                continue
            for d in e["dependsOn"]:
                dep = by_urn.get(d)
                if dep and dep["file"] and dep["file"].split("/")[0] == e["file"].split("/")[0]:
                    # Inside one kind group dependsOn decides; across groups the group order does.
                    if e.get("kind") and GROUP.get(dep.get("kind")) != GROUP.get(e.get("kind")):
                        continue
                    assert pos[dep["file"]] < pos[e["file"]], (dep["file"], e["file"])


def test_prod_options_recorded(prod):
    idx = json.loads((prod / "index.json").read_text())
    protected = {(e.get("kind"), e["name"]) for e in idx["resources"] if e["protect"]}
    assert ("Namespace", "namespace") in protected
    assert ("StatefulSet", "db-statefulset") in protected
    assert idx["project"] == "berth" and idx["stack"] == "prod"
    outputs = json.loads((prod / "outputs.json").read_text())
    assert outputs["target"] == "kubernetes"


# ---------------------------------------------------------------- Docker resources


def test_dev_docker_resources_as_json(dev):
    files = sorted((dev / "resources").glob("*.json"))
    docs = [json.loads(p.read_text()) for p in files]
    types = {d["type"] for d in docs}
    assert {"docker:index/network:Network", "docker:index/volume:Volume", "docker:index/remoteImage:RemoteImage",
            "docker:index/container:Container", "random:index/randomPassword:RandomPassword"} <= types
    for p, d in zip(files, docs):
        assert {"urn", "type", "name", "inputs", "protect", "retainOnDelete", "dependsOn",
                "deleteBeforeReplace", "replaceOnChanges", "ignoreChanges"} <= set(d), p.name
    containers = {d["name"]: d for d in docs if d["type"] == "docker:index/container:Container"}
    assert {"db", "redis", "api", "beat", "worker-1", "worker-2"} <= set(containers)
    db = containers["db"]
    assert db["inputs"]["name"] == "berth-dev-db"
    assert db["deleteBeforeReplace"] is True and "healthcheck" in db["replaceOnChanges"]
    assert not (dev / "kubernetes").exists()
    assert json.loads((dev / "outputs.json").read_text())["target"] == "docker"


# ---------------------------------------------------------------- secrets


SECRET_VALUE = "s3cr3t-Value-9f8e7d"


def test_secrets_only_as_placeholders(tmp_path):
    _, cfg = stack_config("prod")
    cfg = json.loads(json.dumps(cfg))
    cfg["berth:secrets"] = {"stripe_key": SECRET_VALUE}
    cfg["berth:services"]["api"]["secret_env"] = {"STRIPE_KEY": "stripe_key", "SESSION_KEY": {"generate": True}}
    out = tmp_path / "out"
    render("prod", out, config=cfg)
    text = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert SECRET_VALUE not in text
    api_secret = yaml.safe_load(next((out / "kubernetes").glob("*-secret-api-env.yaml")).read_text())
    data = api_secret["stringData"]
    assert data["STRIPE_KEY"] == "<<berth:config:stripe_key>>"
    assert data["SESSION_KEY"].startswith("<<berth:password:") and data["SESSION_KEY"].endswith(">>")
    # Every value in every Secret carries a named placeholder: no real or mock value.
    for p in (out / "kubernetes").glob("*-secret-*.yaml"):
        for key, value in yaml.safe_load(p.read_text())["stringData"].items():
            assert PLACEHOLDER_RE.search(value), f"{p.name}: {key} has no placeholder"


def test_dev_container_secrets_are_placeholders(dev):
    for p in (dev / "resources").glob("*-docker-container-*.json"):
        d = json.loads(p.read_text())
        secret_vars = set(next((l["value"] for l in d["inputs"]["labels"] if l["label"] == "berth.secret-envs"), "").split(","))
        for env in d["inputs"]["envs"]:
            var, _, value = env.partition("=")
            if var in secret_vars:
                assert PLACEHOLDER_RE.search(value), f"{p.name}: {var}={value}"


# ---------------------------------------------------------------- errors and project dirs


def write_project(d: Path, stack: str, config: dict) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "Pulumi.yaml").write_text("name: berth\nruntime: python\n")
    (d / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return d


def test_bad_config_named_key_exit_2_no_traceback(tmp_path):
    _, cfg = stack_config("dev")
    cfg = json.loads(json.dumps(cfg))
    cfg["berth:services"]["api"]["port"] = 99999
    proj = write_project(tmp_path / "proj", "bad", cfg)
    out = tmp_path / "out"
    r = run_cli("render", "-s", "bad", "--project-dir", str(proj), "-o", str(out))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert "berth:services.api.port" in r.stderr
    assert not out.exists()


def test_missing_stack_exit_2(tmp_path):
    r = run_cli("render", "-s", "nosuchstack", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "Pulumi.nosuchstack.yaml" in r.stderr and "Traceback" not in r.stderr


def test_project_dir(tmp_path):
    _, cfg = stack_config("dev")
    proj = write_project(tmp_path / "proj", "other", cfg)
    out = tmp_path / "out"
    r = run_cli("render", "-s", "other", "--project-dir", str(proj), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    idx = json.loads((out / "index.json").read_text())
    assert idx["stack"] == "other"
    names = {e["name"] for e in idx["resources"]}
    assert "api" in names
    container = json.loads(next((out / "resources").glob("*-docker-container-api.json")).read_text())
    assert container["inputs"]["name"] == "berth-other-api"


FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nTHIS-IS-THE-REAL-KEY-MATERIAL-0123456789\n-----END PRIVATE KEY-----\n"
FAKE_CERT = "-----BEGIN CERTIFICATE-----\nPUBLIC-CERT-0123\n-----END CERTIFICATE-----\n"


def with_tls_files(cfg: dict, tmp: Path) -> dict:
    """`tls.mode: files` reads the certificate and key at program time: point them at test files."""
    proxy = cfg.get("berth:proxy")
    if isinstance(proxy, dict) and (proxy.get("tls") or {}).get("mode") == "files":
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "fullchain.pem").write_text(FAKE_CERT)
        (tmp / "privkey.pem").write_text(FAKE_KEY)
        proxy["tls"]["cert_file"] = str(tmp / "fullchain.pem")
        proxy["tls"]["key_file"] = str(tmp / "privkey.pem")
    return cfg


def test_key_read_from_file_is_redacted(tmp_path):
    _, cfg = stack_config("dev")
    cfg = json.loads(json.dumps(cfg))
    cfg["berth:proxy"]["tls"] = {"mode": "files", "cert_file": "x", "key_file": "y"}
    out = tmp_path / "out"
    render("dev", out, config=with_tls_files(cfg, tmp_path / "tls"))
    text = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "REAL-KEY-MATERIAL" not in text
    assert "<<berth:secret:" in text


def test_examples_render(tmp_path):
    """Every example project (examples/<name>/ with its own Pulumi.yaml) renders, deterministically,
    with no secret from a file in the output."""
    rendered = 0
    for example in EXAMPLES:
        for stack_file in sorted(example.glob("Pulumi.*.yaml")):
            stack = stack_file.name[len("Pulumi."):-len(".yaml")]
            _, cfg = stack_config(stack, example)
            cfg = with_tls_files(json.loads(json.dumps(cfg)), tmp_path / "tls")
            a, b = tmp_path / example.name / stack / "a", tmp_path / example.name / stack / "b"
            render(stack, a, project_dir=example, config=cfg)
            render(stack, b, project_dir=example, config=cfg)
            fa = files_of(a)
            assert fa == files_of(b), f"{example.name}/{stack}"
            assert not any(b"REAL-KEY-MATERIAL" in v for v in fa.values()), f"{example.name}/{stack}"
            rendered += 1
    assert rendered >= len(EXAMPLES) - 1
