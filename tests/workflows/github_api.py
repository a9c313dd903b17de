"""A stand-in for the few GitHub REST endpoints Berth's workflows call (test harness, not product code).

GitHub cannot be reached from the test machines, so the workflows run under ``act`` talk to this
server instead (``GITHUB_API_URL=http://127.0.0.1:PORT``). It keeps issues and issue comments in
memory, answers the way the REST API does for the calls the workflows make, and records every
request so a test can check what a real pull request or repository would have received. A request
for anything else is answered 404 and recorded in ``unexpected``: a test asserts it stays empty, so
the list below is exactly what the workflows need.

Served (``/repos/{owner}/{repo}/...``):
- ``GET issues/{n}/comments``, ``POST issues/{n}/comments``, ``PATCH issues/comments/{id}``
  (the sticky PR comment of preview.yml);
- ``GET issues?state=&labels=``, ``POST issues``, ``PATCH issues/{n}`` (the drift issues of drift.yml).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlparse

BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: Optional[str]


@dataclass
class GitHubStandIn:
    """``with GitHubStandIn("acme", "shop") as gh:`` serves on ``gh.url`` until the block ends."""

    owner: str
    repo: str
    token: str = "test-token"
    requests: list[Request] = field(default_factory=list)
    unexpected: list[Request] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_issue: int = 100
    next_comment: int = 9000

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "GitHubStandIn":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: requests are recorded instead
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                auth = self.headers.get("Authorization") or ""
                token = auth.split(None, 1)[1] if " " in auth else None
                url = urlparse(self.path)
                req = Request(self.command, url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}, body, token)
                status, payload = stand_in.handle(req)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------------ the API

    def handle(self, req: Request) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(req)
            if req.token != self.token:
                return 401, {"message": "Bad credentials"}
            prefix = f"/repos/{self.owner}/{self.repo}/"
            path = req.path[len(prefix):] if req.path.startswith(prefix) else None
            for method, pattern, handler in self._routes():
                m = re.fullmatch(pattern, path or "")
                if path is not None and req.method == method and m:
                    return handler(req, *m.groups())
            self.unexpected.append(req)
            return 404, {"message": "Not Found"}

    def _routes(self):
        return [
            ("GET", r"issues/(\d+)/comments", self._list_comments),
            ("POST", r"issues/(\d+)/comments", self._create_comment),
            ("PATCH", r"issues/comments/(\d+)", self._update_comment),
            ("GET", r"issues", self._list_issues),
            ("POST", r"issues", self._create_issue),
            ("PATCH", r"issues/(\d+)", self._update_issue),
        ]

    def _list_comments(self, req: Request, number: str) -> tuple[int, Any]:
        found = [c for c in self.comments.values() if c["issue_number"] == int(number)]
        return 200, self._page(found, req)

    def _create_comment(self, req: Request, number: str) -> tuple[int, Any]:
        self.next_comment += 1
        c = {"id": self.next_comment, "issue_number": int(number), "body": req.body["body"], "user": BOT}
        self.comments[c["id"]] = c
        return 201, c

    def _update_comment(self, req: Request, cid: str) -> tuple[int, Any]:
        c = self.comments.get(int(cid))
        if not c:
            return 404, {"message": "Not Found"}
        c["body"] = req.body["body"]
        return 200, c

    def _list_issues(self, req: Request) -> tuple[int, Any]:
        state = req.query.get("state", "open")
        labels = {x for x in req.query.get("labels", "").split(",") if x}
        found = [i for i in self.issues.values()
                 if (state == "all" or i["state"] == state) and labels <= {lb["name"] for lb in i["labels"]}]
        return 200, self._page(found, req)

    def _create_issue(self, req: Request) -> tuple[int, Any]:
        self.next_issue += 1
        labels = [{"name": n} for n in req.body.get("labels") or []]
        issue = {"number": self.next_issue, "title": req.body["title"], "body": req.body.get("body", ""),
                 "state": "open", "labels": labels, "user": BOT}
        self.issues[issue["number"]] = issue
        return 201, issue

    def _update_issue(self, req: Request, number: str) -> tuple[int, Any]:
        issue = self.issues.get(int(number))
        if not issue:
            return 404, {"message": "Not Found"}
        for k in ("title", "body", "state", "state_reason"):
            if k in req.body:
                issue[k] = req.body[k]
        if "labels" in req.body:
            issue["labels"] = [{"name": n} for n in req.body["labels"]]
        return 200, issue

    @staticmethod
    def _page(items: list[dict[str, Any]], req: Request) -> list[dict[str, Any]]:
        per_page, page = int(req.query.get("per_page", 30)), int(req.query.get("page", 1))
        return items[(page - 1) * per_page: page * per_page]

    # ------------------------------------------------------------------ for assertions

    def calls(self) -> list[str]:
        """``METHOD path`` of every request, in order (the repository prefix dropped)."""
        prefix = f"/repos/{self.owner}/{self.repo}/"
        return [f"{r.method} {r.path.removeprefix(prefix)}" for r in self.requests]
