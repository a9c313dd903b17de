"""`berth status`: the health of every workload of a stack, read from its target.

Pulumi knows what it created; it does not know whether it runs. A container that crash-loops, a pod
that never turned ready or a backup job that fails look the same to `pulumi preview --refresh` as
healthy ones. This reads the workloads the stack declares (the program evaluated under mocks, as
`berth render` does: the same names, namespace and host) and asks the target for each:

- Docker (the stack's ``berth:docker.host``, ``ssh://`` included, or ``DOCKER_HOST``): every long-running
  container's state, health, restart count and last error line from its log; one-shot containers
  (files writers, jobs) are fine once they exited 0 or were removed after the run;
- Kubernetes (the current kubeconfig context, or ``berth:kubernetes.context``): Deployments and
  StatefulSets by ready replicas, their pods' waiting reasons (CrashLoopBackOff, ImagePullBackOff),
  restarts and last termination message; Jobs by success; CronJobs by their last run.

Exit status: 0 every workload is fine, 1 one is not (or missing), 2 bad stack config or target
unreachable.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from .record import Recording, Resource, record, stack_config

#: A log line that says something went wrong (else the last line is shown).
_ERRORISH = re.compile(r"\b(error|fatal|panic|exception|traceback|failed|refused|denied|could not|cannot)\b", re.I)
#: Waiting reasons of a container that will not get better by itself.
_BAD_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                "CreateContainerError", "InvalidImageName", "RunContainerError"}


class TargetError(RuntimeError):
    """The target could not be reached or read."""


@dataclass
class Workload:
    name: str
    kind: str
    state: str
    ok: bool
    detail: str = ""
    last_error: str = ""


# ----------------------------------------------------------------------------------- what is declared


@dataclass
class Declared:
    target: str
    docker_host: Optional[str]
    kube_context: Optional[str]
    containers: list[tuple[str, bool]]         # (name, one-shot)
    kube: list[tuple[str, str, str]]           # (kind, namespace, name)


def declared(stack: str, project_dir: Path = Path(".")) -> Declared:
    """What the stack's program declares, evaluated under mocks (raises ConfigError on bad config)."""
    _project, config = stack_config(stack, project_dir)
    rec: Recording = record(stack, project_dir=project_dir)
    docker = config.get("berth:docker") or {}
    kube = config.get("berth:kubernetes") or {}
    containers = [(r.inputs["name"], bool(r.inputs.get("attach")) or r.inputs.get("mustRun") is False)
                  for r in rec.by_type("docker:index/container:Container")]
    objects = []
    for r in rec.resources:
        kind = _kube_kind(r)
        if kind:
            meta = r.inputs.get("metadata") or {}
            objects.append((kind, meta.get("namespace", "default"), meta.get("name", r.name)))
    return Declared(target=str(config.get("berth:target", "")), docker_host=docker.get("host") if isinstance(docker, dict) else None,
                    kube_context=kube.get("context") if isinstance(kube, dict) else None,
                    containers=sorted(containers), kube=sorted(objects))


def _kube_kind(r: Resource) -> Optional[str]:
    m = re.fullmatch(r"kubernetes:(apps/v1:(Deployment|StatefulSet)|batch/v1:(Job|CronJob))", r.type)
    return (m.group(2) or m.group(3)) if m else None


# ----------------------------------------------------------------------------------- Docker


def last_error_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    bad = [line for line in lines if _ERRORISH.search(line)]
    return ((bad or lines or [""])[-1])[:300]


def docker_status(containers: Iterable[tuple[str, bool]], host: Optional[str]) -> list[Workload]:
    from docker.errors import DockerException, NotFound

    from berth.docker_client import docker_client  # ssh:// hosts through the ssh client, as the docker CLI

    try:
        client = docker_client(host)
        client.ping()
    except DockerException as e:
        raise TargetError(f"the Docker host {host or '(DOCKER_HOST or the local socket)'} cannot be reached: {e}") from e
    out = []
    try:
        for name, one_shot in containers:
            try:
                c = client.containers.get(name)
            except NotFound:
                out.append(Workload(name, "container", "removed after its run" if one_shot else "missing", one_shot))
                continue
            out.append(_container(c, name, one_shot))
    finally:
        client.close()
    return out


def _container(c: Any, name: str, one_shot: bool) -> Workload:
    st = c.attrs.get("State") or {}
    status, code = st.get("Status", "?"), st.get("ExitCode")
    health = (st.get("Health") or {}).get("Status")
    restarts = c.attrs.get("RestartCount", 0)
    detail = f"restarts {restarts}" if restarts else ""

    def log_error() -> str:
        try:
            return last_error_line(c.logs(tail=40).decode(errors="replace"))
        except Exception:  # noqa: BLE001 - a log that cannot be read leaves the line empty
            return ""

    if one_shot:
        if status == "exited" and code == 0:
            return Workload(name, "container", "completed", True)
        if status in ("running", "created"):
            return Workload(name, "container", status, True, detail)
        return Workload(name, "container", f"{status} (exit {code})", False, detail, st.get("Error") or log_error())
    if status == "running" and restarts >= 3 and _seconds_since(st.get("StartedAt")) < 120:
        # Up for a moment between crashes: the restart policy keeps starting it again.
        return Workload(name, "container", "crash-looping", False, detail, st.get("Error") or log_error())
    if status == "running" and health in (None, "", "healthy"):
        return Workload(name, "container", "healthy" if health else "running", True, detail)
    state = f"running, {health}" if status == "running" else status
    if status == "exited":
        state += f" (exit {code})"
    return Workload(name, "container", state, False, detail, st.get("Error") or log_error())


def _seconds_since(timestamp: Optional[str]) -> float:
    """Seconds since a Docker timestamp (RFC 3339 with nanoseconds); very large when unreadable."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", str(timestamp)).replace("Z", "+00:00"))
        return (datetime.now(timezone.utc) - when).total_seconds()
    except ValueError:
        return float("inf")


# ----------------------------------------------------------------------------------- Kubernetes


def kube_status(objects: Iterable[tuple[str, str, str]], context: Optional[str]) -> list[Workload]:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    try:
        api_client = config.new_client_from_config(context=context)
        apps, batch, core = client.AppsV1Api(api_client), client.BatchV1Api(api_client), client.CoreV1Api(api_client)
        client.VersionApi(api_client).get_code()
    except (ConfigException, ApiException, OSError, Exception) as e:  # noqa: BLE001 - urllib3 errors too
        raise TargetError(f"the Kubernetes cluster (context {context or 'current'}) cannot be reached: {e}") from e
    read = {"Deployment": apps.read_namespaced_deployment, "StatefulSet": apps.read_namespaced_stateful_set,
            "Job": batch.read_namespaced_job, "CronJob": batch.read_namespaced_cron_job}
    out = []
    with api_client:
        for kind, ns, name in objects:
            try:
                obj = read[kind](name, ns).to_dict()
            except ApiException as e:
                if e.status == 404:
                    out.append(Workload(name, kind, "missing", False))
                    continue
                raise TargetError(f"reading {kind} {ns}/{name}: {e.reason}") from e
            if kind in ("Deployment", "StatefulSet"):
                out.append(_controller(kind, name, obj, _pods(core, ns, obj)))
            elif kind == "Job":
                out.append(_job(name, obj))
            else:
                out.append(_cronjob(name, obj))
    return out


def _pods(core: Any, ns: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("match_labels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return [p.to_dict() for p in core.list_namespaced_pod(ns, label_selector=selector).items] if selector else []


def _controller(kind: str, name: str, obj: dict[str, Any], pods: list[dict[str, Any]]) -> Workload:
    want = (obj.get("spec") or {}).get("replicas")
    want = 1 if want is None else want
    ready = (obj.get("status") or {}).get("ready_replicas") or 0
    restarts, problems = 0, []
    for p in pods:
        for cs in (p.get("status") or {}).get("container_statuses") or []:
            restarts += cs.get("restart_count") or 0
            waiting = ((cs.get("state") or {}).get("waiting") or {})
            if waiting.get("reason") in _BAD_WAITING:
                problems.append(f"{p['metadata']['name']}: {waiting['reason']}: {waiting.get('message') or ''}".strip(": "))
            term = ((cs.get("last_state") or {}).get("terminated") or {})
            if term.get("reason") and term.get("reason") != "Completed":
                problems.append(f"{p['metadata']['name']}: last exit {term.get('exit_code')} ({term['reason']}) "
                                f"{term.get('message') or ''}".strip())
    detail = f"{ready}/{want} ready" + (f", restarts {restarts}" if restarts else "")
    ok = ready >= want and not any("BackOff" in x or "Err" in x for x in problems)
    state = "ready" if ok else ("crash-looping" if any("CrashLoopBackOff" in x for x in problems) else "not ready")
    return Workload(name, kind, state, ok, detail, (problems or [""])[-1][:300])


def _job(name: str, obj: dict[str, Any]) -> Workload:
    st = obj.get("status") or {}
    if st.get("succeeded"):
        return Workload(name, "Job", "completed", True)
    failed = [c for c in st.get("conditions") or [] if c.get("type") == "Failed" and c.get("status") == "True"]
    if failed:
        return Workload(name, "Job", "failed", False, f"{st.get('failed') or 0} failed pod(s)",
                        f"{failed[0].get('reason') or ''}: {failed[0].get('message') or ''}".strip(": "))
    return Workload(name, "Job", "running", True, f"{st.get('active') or 0} active")


def _cronjob(name: str, obj: dict[str, Any]) -> Workload:
    st = obj.get("status") or {}
    last, good = st.get("last_schedule_time"), st.get("last_successful_time")
    if (obj.get("spec") or {}).get("suspend"):
        return Workload(name, "CronJob", "suspended", False)
    if last and (not good or good < last) and not st.get("active"):
        return Workload(name, "CronJob", "last run failed", False, f"last run {last:%Y-%m-%d %H:%M}Z")
    return Workload(name, "CronJob", "scheduled", True, f"last success {good:%Y-%m-%d %H:%M}Z" if good else "not run yet")


# ----------------------------------------------------------------------------------- report


def status(stack: str, project_dir: Path = Path(".")) -> dict[str, Any]:
    d = declared(stack, project_dir)
    if d.target == "docker":
        workloads = docker_status(d.containers, d.docker_host)
    else:
        workloads = kube_status(d.kube, d.kube_context)
    return {"stack": stack, "target": d.target, "ok": all(w.ok for w in workloads),
            "workloads": [asdict(w) for w in workloads]}


def format_table(report: dict[str, Any]) -> str:
    rows = [("", "WORKLOAD", "KIND", "STATE", "DETAIL", "LAST ERROR")]
    for w in report["workloads"]:
        rows.append(("ok" if w["ok"] else "!!", w["name"], w["kind"], w["state"], w["detail"], w["last_error"]))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(widths[i]) if i < 5 else c for i, c in enumerate(r)).rstrip() for r in rows]
    bad = [w for w in report["workloads"] if not w["ok"]]
    verdict = "every workload is fine" if not bad else f"{len(bad)} of {len(report['workloads'])} workloads are not fine"
    return "\n".join([f"{report['stack']} ({report['target']}): {verdict}", *lines])


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
