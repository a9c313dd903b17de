"""The generated configs checked by the real tools: ``nginx -t`` (Debian package nginx-light),
``promtool check config|rules`` (Debian package prometheus), kubernetes-validate (strict, 1.31) for
every manifest of the prod stack, and the backup/restore scripts run by bash against stub clients.
A missing tool fails the test with the package to install; nothing is skipped."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from cfgtools import k8s_manifest, k8s_resources, record_with, stack_raw, tool, upload
from berth.components.renderers.backup import render_backup_script, render_restore_script
from berth.components.renderers.nginx import CERT_PATH, KEY_PATH, ProxyRoute, Upstream, render_nginx_conf


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


# ---------------------------------------------------------------- nginx -t


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A throwaway self-signed ECDSA certificate (openssl CLI)."""
    d = tmp_path_factory.mktemp("tls")
    openssl = tool("openssl", "openssl")
    r = run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(d / "tls.key"), "-out", str(d / "tls.crt"), "-days", "1", "-subj", "/CN=localhost"])
    assert r.returncode == 0, r.stderr
    return d / "tls.crt", d / "tls.key"


def nginx_t(conf: str, cert, tmp_path: Path):
    nginx = tool("nginx", "nginx-light")
    # Only the certificate paths are rewritten (to the throwaway pair); mime.types is Debian's own.
    conf = conf.replace(CERT_PATH, str(cert[0])).replace(KEY_PATH, str(cert[1]))
    assert Path("/etc/nginx/mime.types").exists(), "nginx-light ships /etc/nginx/mime.types"
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    version = run([nginx, "-v"]).stderr.strip()
    # Without `resolve`, nginx looks upstream hosts up when it loads the conf. The conf stays as it
    # is; the upstream names resolve to loopback through a private /etc/hosts (a mount namespace).
    hosts = sorted({m.group(1) for m in re.finditer(r"^\s*server ([^:\s]+):\d+", conf, re.M)})
    (tmp_path / "hosts").write_text(f"127.0.0.1 localhost {' '.join(hosts)}\n")
    unshare = tool("unshare", "util-linux")
    r = run([unshare, "-m", "sh", "-c", 'mount --bind "$1" /etc/hosts && exec "$2" -t -c "$3" -p "$4"', "sh",
             str(tmp_path / "hosts"), nginx, str(path), str(tmp_path)])
    assert r.returncode == 0, f"{version}: nginx -t failed:\n{r.stderr}"


def dev_conf_without_resolver() -> str:
    """The dev stack's nginx.conf with ``resolver: null`` (the setting for nginx < 1.27.3, which has
    no ``server ... resolve``), rendered by the real program."""
    raw = stack_raw("dev")
    raw["berth:proxy"]["resolver"] = None
    return upload(record_with("dev", raw), "proxy", "/etc/nginx/berth/nginx.conf")


def test_nginx_t_dev_stack_conf(cert, tmp_path):
    conf = dev_conf_without_resolver()
    assert " resolve " not in conf
    nginx_t(conf, cert, tmp_path)


@pytest.mark.parametrize(
    "routes,hsts",
    [
        ([ProxyRoute("/static/", "web", cache_static=True, access_log=False), ProxyRoute("/api/", "api", 5, 0),
          ProxyRoute("/", "web", 20, 40)], False),
    ],
    ids=["static-nolog-noburst-nohsts"],
)
def test_nginx_t_renderer_variants(cert, tmp_path, routes, hsts):
    ups = [Upstream("api", "127.0.0.1", 8000), Upstream("web", "127.0.0.1", 3000)]
    nginx_t(render_nginx_conf("example.test", ups, routes, resolver=None, hsts=hsts), cert, tmp_path)


# ---------------------------------------------------------------- promtool


def prometheus_files(recorded, stack):
    rec = recorded(stack)
    if stack == "dev":
        return (upload(rec, "prometheus", "/etc/prometheus/prometheus.yml"),
                upload(rec, "prometheus", "/etc/prometheus/alerts.yml"))
    from cfgtools import configmap_file

    return (configmap_file(rec, "prometheus-files", "/etc/prometheus/prometheus.yml"),
            configmap_file(rec, "prometheus-files", "/etc/prometheus/alerts.yml"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_promtool_check_config(recorded, stack, tmp_path):
    promtool = tool("promtool", "prometheus")
    config, alerts = prometheus_files(recorded, stack)
    (tmp_path / "alerts.yml").write_text(alerts)
    # Only the rule file path is rewritten, to where the alerts file sits beside it here.
    assert "- /etc/prometheus/alerts.yml\n" in config
    config = config.replace("- /etc/prometheus/alerts.yml\n", f"- {tmp_path / 'alerts.yml'}\n")
    (tmp_path / "prometheus.yml").write_text(config)
    r = run([promtool, "check", "config", str(tmp_path / "prometheus.yml")])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 1 rule files found" in r.stdout + r.stderr  # the alerts file was found and read


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_promtool_check_rules(recorded, stack, tmp_path):
    promtool = tool("promtool", "prometheus")
    _, alerts = prometheus_files(recorded, stack)
    (tmp_path / "alerts.yml").write_text(alerts)
    r = run([promtool, "check", "rules", str(tmp_path / "alerts.yml")])
    assert r.returncode == 0, r.stdout + r.stderr
    count = len(yaml.safe_load(alerts)["groups"][0]["rules"])
    assert f"SUCCESS: {count} rules found" in r.stdout


# ---------------------------------------------------------------- kubernetes schemas


def _prod_manifests():
    from berth.record import record

    return {r.name: k8s_manifest(r) for r in k8s_resources(record("prod"))}


PROD = _prod_manifests()


@pytest.mark.parametrize("name", sorted(PROD))
def test_prod_manifest_matches_kubernetes_schema(name):
    import kubernetes_validate

    try:
        kubernetes_validate.validate(PROD[name], "1.31", strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")


def test_prod_has_every_kind_validated():
    kinds = {m["kind"] for m in PROD.values()}
    assert {"Ingress", "CronJob", "Job", "ConfigMap", "Secret", "StatefulSet", "Deployment",
            "PersistentVolumeClaim", "NetworkPolicy"} <= kinds


# ---------------------------------------------------------------- backup scripts


@pytest.mark.parametrize("script", ["backup", "restore"])
def test_scripts_pass_shellcheck(script, tmp_path):
    shellcheck = tool("shellcheck", "shellcheck")
    path = tmp_path / f"{script}.sh"
    path.write_text(render_backup_script() if script == "backup" else render_restore_script())
    assert run(["bash", "-n", str(path)]).returncode == 0
    # SC2010 (ls | grep): deliberate, `ls -t` is the mtime sort and the names are generated
    # (<database>-<UTC timestamp>.dump), never user input.
    r = run([shellcheck, "-S", "warning", "-e", "SC2010", str(path)])
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("name", ["POSTGRES_ROLES", "POSTGRES_INIT", "PRIMARY_ENTRYPOINT", "REPLICA_ENTRYPOINT",
                                  "MONGO_ENTRYPOINT"])
def test_database_scripts_pass_shellcheck(name, tmp_path):
    """The scripts that set the databases' roles and users at every start (components/database.py)."""
    from berth.components import database

    shellcheck = tool("shellcheck", "shellcheck")
    path = tmp_path / f"{name.lower()}.sh"
    path.write_text(getattr(database, name))
    assert run(["bash", "-n", str(path)]).returncode == 0
    r = run([shellcheck, "-S", "warning", str(path)])
    assert r.returncode == 0, r.stdout


STUBS = {
    # pg_dump: writes its arguments into the -f file, like a (tiny) dump.
    "pg_dump": 'while [ $# -gt 0 ]; do [ "$1" = -f ] && { shift; echo "dump $*" > "$1"; }; shift; done',
    "pg_isready": "exit 0",
    "pg_restore": 'echo "pg_restore $*" >> "$STUB_LOG"',
}


@pytest.fixture
def script_env(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in STUBS.items():
        (bin_ / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_ / name).chmod(0o755)
    for name, text in (("backup.sh", render_backup_script()), ("restore.sh", render_restore_script())):
        (tmp_path / name).write_text(text)
    env = {"PATH": f"{bin_}:{os.environ['PATH']}", "BACKUP_DIR": str(tmp_path / "backups"),
           "BERTH_DB_ENGINE": "postgres", "BERTH_DB_NAME": "easyflow", "DB_HOST": "db", "DB_PORT": "5432",
           "DB_USER": "easyflow", "DB_PASSWORD": "pw", "STUB_LOG": str(tmp_path / "log")}
    return tmp_path, env


def test_backup_script_keeps_the_newest_n(script_env):
    d, env = script_env
    for i in range(4):
        r = run(["bash", str(d / "backup.sh"), "daily", "2"], env=env)
        assert r.returncode == 0, r.stderr
        # distinct timestamps and mtimes for the next dump
        for f in (d / "backups" / "daily").iterdir():
            os.utime(f, (1_700_000_000 + i, 1_700_000_000 + i))
        subprocess.run(["sleep", "1.05"])
    dumps = sorted(p.name for p in (d / "backups" / "daily").iterdir())
    assert len(dumps) == 2 and all(re.fullmatch(r"easyflow-\d{8}T\d{6}Z\.dump", n) for n in dumps)
    prom = (d / "backups" / "last-success-daily.prom").read_text()
    assert re.fullmatch(r'berth_backup_last_success_timestamp_seconds\{database="easyflow",tier="daily"\} \d+\n', prom)


def test_restore_script_latest_picks_the_newest_dump(script_env):
    d, env = script_env
    for tier, stamp in (("daily", "20250101T020000Z"), ("weekly", "20250105T030000Z")):
        (d / "backups" / tier).mkdir(parents=True)
        (d / "backups" / tier / f"easyflow-{stamp}.dump").write_text("x")
    os.utime(d / "backups" / "daily" / "easyflow-20250101T020000Z.dump", (1, 1))
    r = run(["bash", str(d / "restore.sh"), "latest"], env=env)
    assert r.returncode == 0, r.stderr
    assert "weekly/easyflow-20250105T030000Z.dump" in (d / "log").read_text()
    r = run(["bash", str(d / "restore.sh"), "daily/missing.dump"], env=env)
    assert r.returncode == 2 and "no such dump" in r.stderr


def test_backup_metric_label_matches_the_alert(recorded, script_env):
    """The BackupTooOld alert must select the label the backup script writes: the dev stack's
    script runs with BERTH_DB_NAME=easyflow, the alert looks for the config key (database="db")."""
    d, _ = script_env
    dev = recorded("dev")
    env = {**dict(e.split("=", 1) for e in dev.find("docker:index/container:Container", "db-backup").inputs["envs"]),
           "PATH": script_env[1]["PATH"], "BACKUP_DIR": str(d / "backups")}
    r = run(["bash", str(d / "backup.sh"), "daily", "7"], env=env)
    assert r.returncode == 0, r.stderr
    written = re.search(r'database="([^"]+)"', (d / "backups" / "last-success-daily.prom").read_text()).group(1)
    alerts = yaml.safe_load(upload(dev, "prometheus", "/etc/prometheus/alerts.yml"))["groups"][0]["rules"]
    selected = {re.search(r'database="([^"]+)"', a["expr"]).group(1) for a in alerts if a["alert"] == "BackupTooOld"}
    assert selected == {written}, json.dumps({"script writes": written, "alert selects": sorted(selected)})
