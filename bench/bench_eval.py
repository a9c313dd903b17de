"""Program evaluation time under the recording mocks.

Generated stacks of 10, 50 and 200 services (each with a database/cache usage mix) on both targets,
plus the real prod stack; median of 3 runs each. Also times the unit suite. Writes bench/results.md.

    .venv/bin/python bench/bench_eval.py [--profile] [--no-suite]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from berth.record import record  # noqa: E402

SIZES = (10, 50, 200)
RUNS = 3
PROD_TARGET_SECONDS = 1.0


def generated_config(n: int, target: str) -> dict:
    """``n`` services over n/10 databases (postgres and mongodb, every 4th postgres with a replica)
    and n/20 caches; services use a database, a cache, or both; every other one has a port."""
    n_db, n_cache = max(1, n // 10), max(1, n // 20)
    databases = {}
    for i in range(n_db):
        engine = "mongodb" if i % 3 == 2 else "postgres"
        databases[f"db{i}"] = {"engine": engine, **({"replica": True} if engine == "postgres" and i % 4 == 0 else {})}
    caches = {f"cache{i}": {} for i in range(n_cache)}
    services = {}
    for i in range(n):
        db, cache = f"db{i % n_db}", f"cache{i % n_cache}"
        uses = [[db], [cache], [db, cache]][i % 3]
        svc = {"image": f"ghcr.io/acme/svc{i % 7}:1.{i % 5}.0", "uses": uses,
               "resources": {"cpu": "100m", "memory": "128Mi", "cpu_limit": "500m", "memory_limit": "256Mi"}}
        if i % 2 == 0:
            svc["port"] = 8000 + i
        if i % 10 == 5:
            svc["autoscale"] = {"min": 2, "max": 6}
        elif i % 10 == 7:
            svc["replicas"] = 2
        if i % 9 == 4:
            svc["egress"] = True
        services[f"svc{i}"] = svc
    return {
        "berth:target": target,
        "berth:environment": "prod",
        "berth:databases": databases,
        "berth:caches": caches,
        "berth:services": services,
    }


def timed(fn) -> tuple[float, float, int]:
    t0, c0 = time.perf_counter(), time.process_time()
    rec = fn()
    return time.perf_counter() - t0, time.process_time() - c0, len(rec.resources)


def median_of(fn, runs: int = RUNS) -> tuple[float, int, list[float], float]:
    """Median wall time, resource count, the wall times, and the median CPU time of this process
    (CPU time is the fairer number when the host is shared: wall time includes waiting for a CPU)."""
    times, cpus, count = [], [], 0
    for _ in range(runs):
        t, c, count = timed(fn)
        times.append(t)
        cpus.append(c)
    return statistics.median(times), count, times, statistics.median(cpus)


def profile(fn, limit: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def suite_time() -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
    return elapsed, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="store_true", help="always include cProfile output")
    ap.add_argument("--no-suite", action="store_true", help="skip timing the unit suite")
    args = ap.parse_args()

    # Warm-up: imports (pulumi_kubernetes is large) are paid once per process, not per evaluation.
    t0 = time.perf_counter()
    record("prod")
    record("dev")
    first = time.perf_counter() - t0

    rows = []
    prod_med, prod_n, prod_runs, prod_cpu = median_of(lambda: record("prod"))
    rows.append(("prod stack (Pulumi.prod.yaml)", "kubernetes", "-", prod_n, prod_med, prod_runs, prod_cpu))
    dev_med, dev_n, dev_runs, dev_cpu = median_of(lambda: record("dev"))
    rows.append(("dev stack (Pulumi.dev.yaml)", "docker", "-", dev_n, dev_med, dev_runs, dev_cpu))
    per_service: dict[str, list[tuple[int, float]]] = {"docker": [], "kubernetes": []}
    for target in ("docker", "kubernetes"):
        for n in SIZES:
            cfg = generated_config(n, target)
            med, count, runs, cpu = median_of(lambda: record("bench", config=cfg))
            rows.append((f"generated, {n} services", target, n, count, med, runs, cpu))
            per_service[target].append((n, cpu))

    lines = ["| stack | target | services | resources | median wall (s) | wall runs (s) | median CPU (s) | CPU ms / resource |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, target, n, count, med, runs, cpu in rows:
        lines.append(f"| {name} | {target} | {n} | {count} | {med:.3f} | {', '.join(f'{r:.3f}' for r in runs)} "
                     f"| {cpu:.3f} | {1000 * cpu / max(count, 1):.2f} |")
    table = "\n".join(lines)

    growth = []
    for target, pts in per_service.items():
        (n0, t0_), (n1, t1) = pts[0], pts[-1]
        ratio = (t1 / t0_) / (n1 / n0)
        growth.append(f"- {target}: {n0}→{n1} services is ×{n1 / n0:.0f} work, took ×{t1 / t0_:.1f} CPU time "
                      f"(×{ratio:.2f} of linear)")
    nonlinear = any(
        (pts[-1][1] / pts[0][1]) / (pts[-1][0] / pts[0][0]) > 1.5 for pts in per_service.values()
    )

    suite = ""
    if not args.no_suite:
        elapsed, summary = suite_time()
        suite = f"Unit suite (`pytest tests/unit -q`, fresh process): **{elapsed:.1f} s** wall — {summary}\n"

    report = [
        "# Program evaluation under the recording mocks",
        "",
        f"Python {sys.version.split()[0]}; each evaluation runs `components.program.main` via `berth.record.record`,",
        f"median of {RUNS} runs after a warm-up (first prod+dev evaluation in the process, imports included: {first:.2f} s).",
        "",
        table,
        "",
        "Growth (largest vs smallest generated stack):",
        *growth,
        "",
        f"Host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end of the run.",
        "",
        f"Target: prod stack ≤ {PROD_TARGET_SECONDS:.0f} s — wall "
        + ("**met**" if prod_med <= PROD_TARGET_SECONDS else f"**missed** ({prod_med:.2f} s)")
        + f", CPU {prod_cpu:.2f} s "
        + ("(met)" if prod_cpu <= PROD_TARGET_SECONDS else "(missed)")
        + "; growth " + ("**not linear**" if nonlinear else "roughly linear") + ".",
        "",
        suite,
    ]
    if args.profile or prod_cpu > PROD_TARGET_SECONDS or nonlinear:
        report += ["## cProfile: generated 200-service kubernetes stack (cumulative, top 25)", "", "```",
                   profile(lambda: record("bench", config=generated_config(200, "kubernetes"))).strip(), "```", ""]
    text = "\n".join(report)
    (ROOT / "bench" / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
