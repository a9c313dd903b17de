"""Program evaluation time under the recording mocks.

Generated stacks of 10, 50 and 200 services (each with a database/cache usage mix) on both targets,
plus the real prod stack; median of 3 runs each. Also times the unit suite. Writes bench/results.md.

Berth vs the *flat* program (``bench/flat_program.py``: the same resources registered directly with
the SDK classes, under the same mocks): each evaluation runs in a fresh worker process (same imports
and the same warm-up for both, then one timed evaluation), Berth and flat interleaved, median CPU
time of ``--ratio-runs`` runs each; the ratio is Berth / flat. Also times ``berth render -s prod``
(CPU of the whole process: imports, evaluation, writing, shutdown).

    .venv/bin/python bench/bench_eval.py [--profile] [--no-suite] [--only-ratio] [--ratio-runs N]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import json
import pstats
import statistics
import tempfile
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
#: ``--tree DIR``: measure a snapshot of the tree (bench/render_all.py --snapshot DIR) instead of the
#: working tree, which other engineers change while a run takes minutes. Set for the workers too.
TREE = os.environ.get("BERTH_BENCH_TREE")

from berth.record import record  # noqa: E402

SIZES = (10, 50, 200)
RUNS = 3
PROD_TARGET_SECONDS = 1.0
RATIO_SIZES = (50, 200)
RATIO_RUNS = 5
#: Goals (issue "Berth faster than a flat Pulumi program"): Berth's evaluation ≤ 0.8× the flat
#: program's at 200 services on both targets; `berth render -s prod` ≤ 0.8 s CPU.
RATIO_TARGET = 0.8
RENDER_TARGET_CPU = 0.8


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

# ---------------------------------------------------------------- Berth vs the flat program


def _worker(kind: str, target: str, n: int, specs_file: str) -> None:
    """One timed evaluation in this (fresh) process; prints JSON. Both kinds import the same modules
    and run the same warm-up (a 10-service Berth and flat evaluation: lazy SDK modules, first-use
    caches), so the processes differ only in the program timed."""
    import gc

    import pulumi  # noqa: F401
    import pulumi_docker  # noqa: F401
    import pulumi_kubernetes  # noqa: F401
    import pulumi_random  # noqa: F401
    import pulumi_tls  # noqa: F401

    import berth.components.program  # noqa: F401
    import berth.components.targets.docker  # noqa: F401
    import berth.components.targets.kubernetes  # noqa: F401
    from flat_program import flat_program, resource_specs

    warm_cfg = generated_config(10, target)
    warm = record("bench", config=warm_cfg)
    record("bench", config=warm_cfg, program=flat_program(resource_specs(warm)))
    specs = json.loads(Path(specs_file).read_text())
    program = flat_program(specs) if kind == "flat" else None
    cfg = generated_config(n, target)
    gc.collect()
    rss0 = _rss_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    t0, c0 = time.perf_counter(), time.process_time()
    rec = record("bench", config=cfg, program=program)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(json.dumps({"cpu": cpu, "wall": wall, "resources": sum(r.custom for r in rec.resources),
                      "peak_rss_mib": _rss_mib("VmHWM"), "rss_before_mib": rss0}))


def _rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


#: What the workers evaluate: Berth as it runs, Berth with the interpreter's default garbage collector
#: (BERTH_GC=default: what the collector setting alone is worth), and the flat program.
KINDS = ("berth", "berth-gc", "flat")


def _run_worker(kind: str, target: str, n: int, specs_file: str) -> dict:
    env = {**os.environ, **({"BERTH_GC": "default"} if kind == "berth-gc" else {})}
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, target, str(n), specs_file],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} {target} {n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _render_cpu(default_gc: bool = False) -> float:
    """CPU time (user+sys, children) of one `berth render -s prod -o TMP -q` run from the repo root
    (``default_gc``: with BERTH_GC=default, the interpreter's collector)."""
    cmd = [str(ROOT / ".venv" / "bin" / "berth")] if not TREE else [sys.executable, "-m", "berth"]
    env = {**os.environ, **({"BERTH_GC": "default"} if default_gc else {})}
    with tempfile.TemporaryDirectory() as out:
        before = os.times()
        subprocess.run([*cmd, "render", "-s", "prod", "-o", out, "-q"], cwd=TREE or ROOT, check=True, env=env)
        after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def _cpus(runs: list[dict]) -> str:
    return ", ".join(f"{r['cpu']:.2f}" for r in runs)


def ratio_section(runs: int) -> tuple[list[str], bool]:
    """Berth vs flat, interleaved worker processes; and `berth render -s prod` CPU. Markdown lines."""
    from flat_program import check_same, flat_program, resource_specs

    tmp = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    cases = [(t, n) for t in ("docker", "kubernetes") for n in RATIO_SIZES]
    spec_files = {}
    for target, n in cases:
        cfg = generated_config(n, target)
        rec = record("bench", config=cfg)
        specs = resource_specs(rec)
        problems = check_same(rec, record("bench", config=cfg, program=flat_program(specs)))
        if problems:  # the comparison is only fair if both declare the same thing
            raise SystemExit("flat program differs from Berth:\n" + "\n".join(problems[:20]))
        spec_files[(target, n)] = tmp / f"{target}-{n}.json"
        spec_files[(target, n)].write_text(json.dumps(specs))
    results: dict[tuple[str, int, str], list[dict]] = {}
    renders: list[float] = []
    renders_gc: list[float] = []
    for i in range(runs):
        for target, n in cases:
            # Rotate which goes first: none always runs right after another's.
            for kind in KINDS[i % len(KINDS):] + KINDS[:i % len(KINDS)]:
                results.setdefault((target, n, kind), []).append(_run_worker(kind, target, n, str(spec_files[(target, n)])))
        renders.append(_render_cpu())
        renders_gc.append(_render_cpu(default_gc=True))
    lines = [
        "| target | services | custom resources | Berth CPU (s) | flat CPU (s) | **Berth / flat** "
        "| Berth, default GC: CPU (s) / vs flat | Berth CPU runs | flat CPU runs "
        "| peak RSS (MiB): Berth / Berth default GC / flat |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    met = True
    for target, n in cases:
        b, g, f = (results[(target, n, k)] for k in KINDS)
        bc, gcpu, fc = (statistics.median(r["cpu"] for r in runs) for runs in (b, g, f))
        ratio = bc / fc
        if n == max(RATIO_SIZES) and ratio > RATIO_TARGET:
            met = False
        rss = " / ".join(f"{max(r['peak_rss_mib'] for r in runs):.0f}" for runs in (b, g, f))
        rss += f" (from {statistics.median(r['rss_before_mib'] for r in b + g + f):.0f})"
        lines.append(
            f"| {target} | {n} | {b[0]['resources']} | {bc:.2f} | {fc:.2f} | **{ratio:.2f}** | {gcpu:.2f} / {gcpu / fc:.2f} "
            f"| {_cpus(b)} | {_cpus(f)} | {rss} |"
        )
    render_med = statistics.median(renders)
    render_met = render_med <= RENDER_TARGET_CPU
    lines += [
        "",
        f"`berth render -s prod -o TMP -q` (whole process, user+sys): median **{render_med:.2f} s** CPU "
        f"({', '.join(f'{r:.2f}' for r in renders)}); target ≤ {RENDER_TARGET_CPU} s: "
        + ("**met**" if render_met else "**missed**") + f". With BERTH_GC=default (the collector on): "
        f"{statistics.median(renders_gc):.2f} s ({', '.join(f'{r:.2f}' for r in renders_gc)}).",
        "",
        f"Goal Berth/flat ≤ {RATIO_TARGET} at {max(RATIO_SIZES)} services on both targets: " + ("**met**" if met else "**missed**") + ".",
    ]
    return lines, met and render_met


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="store_true", help="always include cProfile output")
    ap.add_argument("--no-suite", action="store_true", help="skip timing the unit suite")
    ap.add_argument("--only-ratio", action="store_true", help="only Berth vs flat and the render time")
    ap.add_argument("--ratio-runs", type=int, default=RATIO_RUNS, help="interleaved runs per case")
    ap.add_argument("--worker", nargs=4, metavar=("KIND", "TARGET", "N", "SPECS"), help=argparse.SUPPRESS)
    ap.add_argument("--tree", type=Path, help="measure this snapshot (bench/render_all.py --snapshot DIR)")
    args = ap.parse_args()
    if args.tree and not TREE:
        # Again, with the snapshot's code first on the path (workers inherit it).
        env = {**os.environ, "PYTHONPATH": str(args.tree.resolve()), "BERTH_BENCH_TREE": str(args.tree.resolve())}
        sys.exit(subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env).returncode)
    if args.worker:
        kind, target, n, specs_file = args.worker
        _worker(kind, target, int(n), specs_file)
        return
    load_before = os.getloadavg()
    ratio_lines, _ = ratio_section(args.ratio_runs)
    ratio_report = [
        "## Berth vs the flat program (same resources, SDK classes directly, same mocks)",
        "",
        "The levers tried and what each was worth (garbage collector, Outputs, imports, teardown): "
        "bench/levers.md.",
        "",
        f"Each number is the CPU time of one evaluation in a fresh worker process after the same imports "
        f"and warm-up; median of {args.ratio_runs} interleaved runs. Load average before / after: "
        f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs."
        + (f" Code: snapshot of {(Path(TREE) / 'SNAPSHOT.txt').read_text().strip()}." if TREE else ""),
        "",
        *ratio_lines,
        "",
    ]
    if args.only_ratio:
        text = "\n".join(["# Program evaluation under the recording mocks", "", *ratio_report])
        print(text)
        return

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
        *ratio_report,
        "## Evaluation time by stack (in-process)",
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
