"""The ``elasticsearch-users`` job's script, run by sh and curl against a stand-in Elasticsearch.

No Elasticsearch image can be had on these machines (no registry, not in Debian's packages), so
this server answers the three security API calls the job makes, as Elasticsearch 7.17 documents
them, and records what it received: who logged in, which method and path, which body. What is shown
is the script's side: it waits until ``elastic`` is accepted, sets ``kibana_system``'s password,
creates the Logstash role and user with their own password, keeps the passwords off curl's command
line, and fails saying what Elasticsearch answered. That Elasticsearch accepts these bodies is taken
from its documentation, not shown here.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from berth.components.logs import ES_PORT, LoggingPasswords, logging_workloads, logstash_role, render_users_script
from berth.components.spec import LoggingSpec

STACK = "philos-prod"
PASSWORDS = {"ELASTIC_PASSWORD": "E1astic0nly4Ops", "KIBANA_PASSWORD": "k1banaSyst3m", "LOGSTASH_PASSWORD": "l0gstashWr1ter"}


class FakeElasticsearch(ThreadingHTTPServer):
    def __init__(self, refuse_first: int = 0, fail_path: str = ""):
        super().__init__(("127.0.0.1", 0), Handler)
        self.calls: list[tuple[str, str, str, object]] = []  # (user, method, path, body)
        self.refuse_first = refuse_first  # _authenticate answers 401 this many times (starting up)
        self.fail_path = fail_path


class Handler(BaseHTTPRequestHandler):
    server: FakeElasticsearch

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        user, password = base64.b64decode(self.headers.get("Authorization", "Basic Og==")[6:]).decode().split(":", 1)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.calls.append((user, self.command, self.path, body))
        ok = user == "elastic" and password == PASSWORDS["ELASTIC_PASSWORD"]
        if self.path == "/_security/_authenticate" and self.server.refuse_first > 0:
            self.server.refuse_first -= 1
            ok = False
        if not ok:
            status, out = 401, {"error": {"type": "security_exception"}, "status": 401}
        elif self.path == self.server.fail_path:
            status, out = 400, {"error": {"type": "parse_exception", "reason": "unknown cluster privilege"}, "status": 400}
        elif self.path.startswith("/_security/user/kibana_system/_password"):
            status, out = 200, {}
        elif self.path.startswith("/_security/role/"):
            status, out = 200, {"role": {"created": True}}
        elif self.path.startswith("/_security/user/"):
            status, out = 200, {"created": True}
        elif self.path == "/_security/_authenticate":
            status, out = 200, {"username": user}
        else:
            status, out = 404, {}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture
def es():
    servers: list[FakeElasticsearch] = []

    def start(**kw) -> FakeElasticsearch:
        server = FakeElasticsearch(**kw)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def run_script(server: FakeElasticsearch, tmp_path) -> subprocess.CompletedProcess:
    """The script as the job runs it (``sh -c``), aimed at the stand-in; curl's command lines are
    recorded by a wrapper first on PATH."""
    assert shutil.which("curl"), "curl is needed (it is in the Elasticsearch image)"
    script = render_users_script(STACK).replace(f"http://elasticsearch:{ES_PORT}",
                                                f"http://127.0.0.1:{server.server_address[1]}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "curl"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {tmp_path}/argv\nexec {shutil.which("curl")} "$@"\n')
    wrapper.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **PASSWORDS}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)


def test_the_job_sets_kibana_and_creates_logstash_as_elastic_once_it_is_accepted(es, tmp_path):
    server = es(refuse_first=1)
    r = run_script(server, tmp_path)
    assert r.returncode == 0, r.stderr
    calls = [c for c in server.calls if c[2] != "/_security/_authenticate"]
    waits = [c for c in server.calls if c[2] == "/_security/_authenticate"]
    assert len(waits) == 2 and {c[0] for c in server.calls} == {"elastic"}
    assert calls == [
        ("elastic", "POST", "/_security/user/kibana_system/_password", {"password": PASSWORDS["KIBANA_PASSWORD"]}),
        ("elastic", "PUT", "/_security/role/berth_logstash_writer", logstash_role(STACK)),
        ("elastic", "PUT", "/_security/user/berth_logstash",
         {"password": PASSWORDS["LOGSTASH_PASSWORD"], "roles": ["berth_logstash_writer"]}),
    ]
    # No password on curl's command line (another process could read it there).
    argv = (tmp_path / "argv").read_text()
    assert argv and not any(p in argv for p in PASSWORDS.values()), argv


def test_the_logstash_role_writes_the_stacks_log_indices_only():
    role = logstash_role(STACK)
    assert role["cluster"] == ["monitor", "manage_index_templates"]
    assert role["indices"] == [{"names": [f"logs-{STACK}-*"], "privileges": ["create_index", "write"]}]
    pipeline_index = next(w for w in logging_workloads(LoggingSpec(), STACK, LoggingPasswords("e", "k", "l"))
                          if w.name == "logstash").env["BERTH_STACK"]
    assert pipeline_index == STACK  # the pipeline's index is logs-${BERTH_STACK}-<date>


def test_the_job_fails_saying_what_elasticsearch_answered(es, tmp_path):
    server = es(fail_path="/_security/role/berth_logstash_writer")
    r = run_script(server, tmp_path)
    assert r.returncode != 0
    assert "PUT /_security/role/berth_logstash_writer: 400" in r.stderr and "unknown cluster privilege" in r.stderr
    assert not any(c[2] == "/_security/user/berth_logstash" for c in server.calls)  # stops at the failure
