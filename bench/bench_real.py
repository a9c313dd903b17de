"""Real deployment times: `pulumi preview` and `pulumi up` of the dev stack (Docker on Podman) and the
prod stack (the Kubernetes test cluster), beside `kubectl apply --server-side` + `kubectl wait` of the
same rendered objects on the same cluster, measured in one run.

    eval "$(bash .ci/engine.sh env)"; export DOCKER_HOST=... KUBECONFIG=...
    .venv/bin/python -m bench.bench_real [--rounds N] [--out bench/results_real.md]

Engine time is what the CLI reports (`duration` of `preview --json`, the summary event of `up`'s
event log); wall time includes the CLI's start, the language host, the program and the plugins.
The stacks are the real-test ones (local test images, small requests; tests/real/test_docker_dev.py
and test_k8s_prod.py). Each round starts from nothing and ends with everything removed.
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


def pulumi_round(p: Pulumi, tmp: Path, k8s: bool) -> dict[str, float]:
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
    p.run("state", "unprotect", "--all", "--yes")
    p.destroy()
    return out


def docker_round(tmp: Path) -> dict[str, float]:
    import realdev

    project = write_project(tmp / "dev", "berth")
    write_stack_config(project, "dev", realdev.realdev_config(realdev.load_dev_config(), realdev.free_port(),
                                                               realdev.free_port()))
    p = Pulumi(project, "dev", tmp / "dev-state")
    p.init()
    try:
        return pulumi_round(p, tmp, k8s=False)
    finally:
        p.destroy(check=False)


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
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results_real.md")
    args = ap.parse_args()
    rounds: dict[str, list[dict[str, float]]] = {"dev (Docker on Podman)": [], "prod (Kubernetes)": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="berth-bench-") as d:
            rounds["dev (Docker on Podman)"].append(docker_round(Path(d)))
        with tempfile.TemporaryDirectory(prefix="berth-bench-") as d:
            rounds["prod (Kubernetes)"].append(k8s_round(Path(d)))
    lines = [f"# Real deployment times ({time.strftime('%Y-%m-%d')}, median of {args.rounds} round(s))", "",
             "| stack | measure | seconds |", "|---|---|---:|"]
    for stack, rs in rounds.items():
        for key in rs[0]:
            lines.append(f"| {stack} | {key} | {statistics.median(r[key] for r in rs):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
