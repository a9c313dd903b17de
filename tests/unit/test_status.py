"""`berth status`: what it reads from the stack (under mocks) and how it judges each workload. The
real targets are read in tests/workflows (drift) and the fault tests; here the judgement, from the
shapes Docker's and Kubernetes' APIs return."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from berth.status import _container, _controller, _cronjob, _job, declared, format_table, last_error_line
from berth.record import ROOT


def container(status="running", health=None, restarts=0, code=0, started_ago=3600, error="", logs=b""):
    started = (datetime.now(timezone.utc) - timedelta(seconds=started_ago)).isoformat().replace("+00:00", "Z")
    state = {"Status": status, "ExitCode": code, "Error": error, "StartedAt": started}
    if health:
        state["Health"] = {"Status": health}
    return SimpleNamespace(attrs={"State": state, "RestartCount": restarts}, logs=lambda tail: logs)


def test_declared_reads_every_container_and_controller_of_a_stack():
    dev = declared("dev", ROOT)
    names = dict(dev.containers)
    assert dev.target == "docker" and dev.docker_host is None
    assert names["berth-dev-api"] is False and names["berth-dev-proxy"] is False
    assert names["berth-dev-proxy-files"] is True  # one-shot: the files writer
    prod = declared("prod", ROOT)
    kinds = {(k, n) for k, _ns, n in prod.kube}
    assert ("Deployment", "api") in kinds and ("StatefulSet", "db") in kinds and ("CronJob", "db-backup-daily") in kinds
    assert {ns for _k, ns, _n in prod.kube} == {"easyflow"}


def test_long_running_containers():
    assert _container(container(health="healthy"), "a", False).ok
    assert _container(container(), "a", False).state == "running"
    w = _container(container(health="unhealthy", logs=b"ok\nERROR: could not connect to db\nbye\n"), "a", False)
    assert not w.ok and w.state == "running, unhealthy" and w.last_error == "ERROR: could not connect to db"
    w = _container(container(status="exited", code=1, logs=b"FATAL: lock file\n"), "db", False)
    assert not w.ok and w.state == "exited (exit 1)" and "lock file" in w.last_error
    w = _container(container(restarts=12, started_ago=5, logs=b"No module named app\n"), "worker", False)
    assert not w.ok and w.state == "crash-looping" and w.detail == "restarts 12"
    # Restarted long ago and running since: fine.
    assert _container(container(restarts=12, started_ago=3600), "worker", False).ok


def test_one_shot_containers():
    assert _container(container(status="exited", code=0), "files", True).ok
    w = _container(container(status="exited", code=3, logs=b"pg_dump: error: connection refused\n"), "dump", True)
    assert not w.ok and "connection refused" in w.last_error


def pod(name, ready=True, restarts=0, waiting=None, terminated=None):
    cs = {"restart_count": restarts, "state": {"waiting": waiting} if waiting else {"running": {}},
          "last_state": {"terminated": terminated} if terminated else {}}
    return {"metadata": {"name": name}, "status": {"container_statuses": [cs]}}


def test_controllers():
    ok = _controller("Deployment", "api", {"spec": {"replicas": 2}, "status": {"ready_replicas": 2}},
                     [pod("api-1"), pod("api-2")])
    assert ok.ok and ok.detail == "2/2 ready"
    bad = _controller("StatefulSet", "db", {"spec": {"replicas": 1}, "status": {}},
                      [pod("db-0", restarts=7, waiting={"reason": "CrashLoopBackOff", "message": "back-off 5m0s"},
                           terminated={"reason": "Error", "exit_code": 1, "message": "lock file"})])
    assert not bad.ok and bad.state == "crash-looping" and "restarts 7" in bad.detail
    pull = _controller("Deployment", "web", {"spec": {"replicas": 1}, "status": {}},
                       [pod("web-1", waiting={"reason": "ImagePullBackOff", "message": "not found"})])
    assert not pull.ok and "ImagePullBackOff" in pull.last_error


def test_jobs_and_cronjobs():
    assert _job("restore", {"status": {"succeeded": 1}}).ok
    failed = _job("restore", {"status": {"failed": 2, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the limit"}]}})
    assert not failed.ok and "BackoffLimitExceeded" in failed.last_error
    now = datetime.now(timezone.utc)
    assert _cronjob("b", {"status": {"last_schedule_time": now, "last_successful_time": now}}).ok
    late = _cronjob("b", {"status": {"last_schedule_time": now, "last_successful_time": now - timedelta(days=1)}})
    assert not late.ok and late.state == "last run failed"
    assert _cronjob("b", {"status": {}}).detail == "not run yet"


def test_table_and_last_error_line():
    report = {"stack": "dev", "target": "docker", "ok": False, "workloads": [
        {"name": "db", "kind": "container", "state": "exited (exit 1)", "ok": False, "detail": "", "last_error": "x"},
        {"name": "api", "kind": "container", "state": "healthy", "ok": True, "detail": "", "last_error": ""}]}
    table = format_table(report)
    assert table.splitlines()[0] == "dev (docker): 1 of 2 workloads are not fine"
    assert table.splitlines()[2].startswith("!!  db")
    assert last_error_line("") == "" and last_error_line("a\nb\n") == "b"
