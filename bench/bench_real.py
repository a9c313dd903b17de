"""Real deployment times against what the same objects take without Pulumi, measured in one run:

- prod (the Kubernetes test cluster): `pulumi up` against `kubectl apply --server-side` of the same
  rendered objects + `kubectl wait` / `rollout status` for them (the provider's awaits);
- dev (Docker Engine, ``BERTH_DOCKERD_HOST``): `pulumi up` against `docker compose up --wait` of an
  equivalent compose file made from the stack's state (bench/compose.py: same containers, order and
  health waits), with Compose v2 built from its Go module (``$BERTH_COMPOSE`` or
  ``$BERTH_CACHE/compose/<version>/cmd``).

    eval "$(bash .ci/engine.sh env)"; export KUBECONFIG=... BERTH_DOCKERD_HOST=...
    .venv/bin/python -m bench.bench_real [--rounds 3] [--out bench/results_real.md]

Rounds are interleaved (each round runs `pulumi up` and its baseline back to back) and the medians
are reported, with the load average before each round. Engine time is what the CLI reports; wall
time includes the CLI's start, the language host, the program and the plugins. Each round starts
from nothing and ends with everything removed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "real" / "stacks"))  # realdev, a test helper folder

from tests.real import kube  # noqa: E402
from tests.real.pulumi_cli import Pulumi, write_project, write_stack_config  # noqa: E402


def engine_seconds_of_up(events: Path) -> float | None:
    for line in events.read_text().splitlines():
        ev = json.loads(line).get("summaryEvent")
        if ev and "durationSeconds" in ev:
            return float(ev["durationSeconds"])
    return None


def pulumi_round(p: Pulumi, tmp: Path, k8s: bool, keep: bool = False) -> dict[str, float]:
    out: dict[str, float] = {}
    res, doc = p.preview_json(check=True)
    out["preview wall"] = res.seconds
    out["preview engine"] = (doc.get("duration") or 0) / 1e9
    events = tmp / "up.events.ndjson"
    if k8s:
        with kube.ingress_status_standin():
            res = p.up("--event-log", str(events))
    else:
        res = p.up("--event-log", str(events))
    out["up wall"] = res.seconds
    out["up engine"] = engine_seconds_of_up(events) or float("nan")
    if not keep:
        p.run("state", "unprotect", "--all", "--yes")
        p.destroy()
    return out


COMPOSE_VERSION = "v2.29.7"


def compose_binary() -> str:
    """Compose v2, built once from its Go module into the cache (about 5 min on 2 cores)."""
    import os
    import subprocess

    path = os.environ.get("BERTH_COMPOSE") or str(
        Path(os.environ.get("BERTH_CACHE", "/var/cache/berth")) / "compose" / COMPOSE_VERSION / "cmd")
    if not Path(path).exists():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "install", f"github.com/docker/compose/v2/cmd@{COMPOSE_VERSION}"], check=True,
                       env={**os.environ, "GOBIN": str(Path(path).parent)})
    return path


def docker_round(tmp: Path) -> dict[str, float]:
    """dev on Docker Engine: `pulumi up`, then `docker compose up --wait` of the same containers."""
    import os
    import subprocess

    import realdev
    import yaml

    from bench.compose import compose_from_state

    host = os.environ["BERTH_DOCKERD_HOST"]
    project = write_project(tmp / "dev", "berth")
    cfg = realdev.realdev_config(realdev.load_dev_config(), realdev.free_port(), realdev.free_port(), engine="docker")
    cfg["berth:docker"]["host"] = host
    write_stack_config(project, "dev", cfg)
    p = Pulumi(project, "dev", tmp / "dev-state")
    p.init()
    try:
        out = pulumi_round(p, tmp, k8s=False, keep=True)
        compose = compose_from_state(p.export()["deployment"], "berth-bench-compose")
    finally:
        p.destroy(check=False)
    file = Path(os.environ.get("BERTH_BENCH_COMPOSE_FILE", tmp / "compose.yaml"))
    file.write_text(yaml.safe_dump(compose, sort_keys=False))
    env = {**os.environ, "DOCKER_HOST": host}
    cmd = [compose_binary(), "-f", str(file), "-p", "berth-bench-compose"]
    t0 = time.monotonic()
    try:
        subprocess.run([*cmd, "up", "--wait", "--detach", "--quiet-pull"], check=True, env=env, timeout=900,
                       capture_output=True, text=True)
        out["docker compose up --wait"] = time.monotonic() - t0
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"docker compose up failed:\n{e.stdout[-3000:]}\n{e.stderr[:1500]}\n...\n{e.stderr[-1500:]}")
    finally:
        if not os.environ.get("BERTH_BENCH_KEEP"):
            subprocess.run([*cmd, "down", "--volumes", "--timeout", "10"], env=env, capture_output=True, timeout=600)
    out["ratio up wall / compose"] = out["up wall"] / out["docker compose up --wait"]
    return out


def kubectl_round(project: Path, tmp: Path, namespace: str) -> float:
    """`berth render` of the same stack, placeholders given random values, applied server-side and
    waited for as the provider waits (workloads ready, jobs complete)."""
    import subprocess

    out = tmp / "render"
    subprocess.run([sys.executable, "-m", "berth", "render", "-s", "prod", "-o", str(out), "--project-dir",
                    str(project), "-q"], check=True)
    values: dict[str, str] = {}

    def value(m: re.Match) -> str:
        return values.setdefault(m.group(0), "".join(random.choices(string.ascii_letters + string.digits, k=32)))

    for f in sorted((out / "kubernetes").glob("*.yaml")):
        f.write_text(re.sub(r"<<berth:[a-z-]+:[^<>]+>>", value, f.read_text()))
    kube.forget_namespace(namespace)
    t0 = time.monotonic()
    kube.kubectl("apply", "--server-side", "--field-manager=berth-bench", "-f", str(out / "kubernetes"), timeout=300)
    kube.kubectl("-n", namespace, "wait", "--for=condition=Available", "deployment", "--all", "--timeout=600s", timeout=620)
    for sts in kube.kubectl_json("-n", namespace, "get", "statefulsets")["items"]:
        kube.kubectl("-n", namespace, "rollout", "status", f"statefulset/{sts['metadata']['name']}", "--timeout=600s",
                     timeout=620)
    kube.kubectl("-n", namespace, "wait", "--for=condition=Complete", "job", "--all", "--timeout=600s", timeout=620)
    seconds = time.monotonic() - t0
    kube.forget_namespace(namespace)
    return seconds


def k8s_round(tmp: Path) -> dict[str, float]:
    from tests.real.test_k8s_prod import NAMESPACE, ci_config

    project = write_project(tmp / "prod", "berth")
    write_stack_config(project, "prod", ci_config())
    kube.forget_namespace(NAMESPACE)
    p = Pulumi(project, "prod", tmp / "prod-state", env_extra=kube.kube_env())
    p.init()
    try:
        out = pulumi_round(p, tmp, k8s=True)
    finally:
        p.run("state", "unprotect", "--all", "--yes", check=False)
        p.destroy(check=False)
        kube.forget_namespace(NAMESPACE)
    out["kubectl apply --server-side + wait"] = kubectl_round(project, tmp, NAMESPACE)
    out["ratio up wall / kubectl"] = out["up wall"] / out["kubectl apply --server-side + wait"]
    return out


def main() -> int:
    import os

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["dev", "prod"], default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results_real.md")
    args = ap.parse_args()
    stacks = {"dev (Docker Engine)": docker_round, "prod (Kubernetes)": k8s_round}
    if args.only:
        stacks = {k: v for k, v in stacks.items() if k.startswith(args.only)}
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in stacks}
    loads: list[float] = []
    for _ in range(args.rounds):
        for stack, fn in stacks.items():
            loads.append(os.getloadavg()[0])
            with tempfile.TemporaryDirectory(prefix="berth-bench-") as d:
                rounds[stack].append(fn(Path(d)))
            print(stack, json.dumps({k: round(v, 2) for k, v in rounds[stack][-1].items()}), flush=True)
    lines = [f"# Real deployment times ({time.strftime('%Y-%m-%d')}, median of {args.rounds} interleaved round(s))",
             "", f"Load average (1 min) before each round: {', '.join(f'{x:.1f}' for x in loads)}", "",
             "| stack | measure | seconds (median) | rounds |", "|---|---|---:|---|"]
    for stack, rs in rounds.items():
        for key in rs[0]:
            vals = [r[key] for r in rs]
            lines.append(f"| {stack} | {key} | {statistics.median(vals):.2f} | {', '.join(f'{v:.1f}' for v in vals)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
