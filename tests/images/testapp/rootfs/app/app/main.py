"""Berth test app: a small stand-in for a team's FastAPI app + Celery worker/beat.

Standard library HTTP server (ThreadingHTTPServer) + Debian's psycopg2, redis, pymongo and pika packages.

Environment (every backend is optional; /ready checks the configured ones):
  DATABASE_URL          postgresql://user:pass@host:port/db       (primary; writes and reads)
  DATABASE_REPLICA_URL  optional, read by GET /api/replica/items/<id>
  REDIS_URL             redis://:pass@host:port/0   (falls back to a redis:// CELERY_BROKER_URL / BROKER_URL)
  MONGODB_URI           mongodb://user:pass@host:27017/db?authSource=admin (or MONGO_URL, MONGODB_URL, or a
                        mongodb:// DATABASE_URI / DATABASE_URL)
  AMQP_URL              amqp://user:pass@host:5672/vhost (or RABBITMQ_URL, or an amqp:// CELERY_BROKER_URL /
                        BROKER_URL); AMQP_QUEUE (default berth-test); MESSAGE_STORE (see app.messaging)
  PORT                  default 8000 (uvicorn's --port wins)
  APP_VERSION           set from the image tag (1 or 2)
  BEAT_INTERVAL         seconds between beat jobs, default 10

HTTP:
  GET  /, /health (and any path ending in /health or /healthz), /api/health, /metrics
  GET  /ready (503 unless every configured backend answers: database, redis, mongodb, amqp)
  POST /api/items  {"value": ...} (JSON or form)  -> row in items + SET item:<id> <value>
  GET  /api/items/<id>, /api/replica/items/<id>
  POST /api/jobs -> LPUSH jobs <id>;  GET /api/jobs/<id> -> {"done": EXISTS done:<id>}
  GET  /api/slow?ms=N  (sleeps N ms, at most 30000)
  POST /api/mongo/items {"value": ...} -> document in MongoDB's items;  GET /api/mongo/items/<id>
  POST /api/messages {"body": ...} -> persistent message on the AMQP queue
  GET  /api/messages/<id> (404 until a consumer recorded it), GET /api/messages (recent ones)

Consumer mode: `python3 -m app.consumer` (or `consumer`) consumes AMQP_QUEUE and serves the same HTTP
endpoints on PORT (/ready includes the consumer's connection).

Nothing is written outside /tmp (read-only root filesystem).
"""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import psycopg2.pool
import pymongo.errors
import redis

from app import messaging

VERSION = os.environ.get("APP_VERSION", "dev")
HOSTNAME = socket.gethostname()


def log(msg):
    sys.stderr.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------- metrics
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}  # (method, path, status) -> count
        self.hist = {}  # (method, path) -> [bucket counts..., sum, count]
        self.started = time.time()

    def observe(self, method, path, status, seconds):
        with self.lock:
            key = (method, path, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.hist.setdefault((method, path), [0] * len(BUCKETS) + [0.0, 0])
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self):
        def lbl(**kv):
            return ",".join('%s="%s"' % (k, str(v).replace("\\", "\\\\").replace('"', '\\"')) for k, v in kv.items())

        out = [
            "# HELP app_info Berth test app build information.",
            "# TYPE app_info gauge",
            "app_info{%s} 1" % lbl(version=VERSION),
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
            "# TYPE process_start_time_seconds gauge",
            "process_start_time_seconds %.3f" % self.started,
            "# HELP http_requests_total Total HTTP requests.",
            "# TYPE http_requests_total counter",
        ]
        with self.lock:
            for (m, p, s), n in sorted(self.requests.items()):
                out.append("http_requests_total{%s} %d" % (lbl(method=m, path=p, status=s), n))
            out += [
                "# HELP http_request_duration_seconds HTTP request duration in seconds.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for (m, p), h in sorted(self.hist.items()):
                for i, b in enumerate(BUCKETS):
                    out.append("http_request_duration_seconds_bucket{%s} %d" % (lbl(method=m, path=p, le=repr(b)), h[i]))
                out.append("http_request_duration_seconds_bucket{%s} %d" % (lbl(method=m, path=p, le="+Inf"), h[-1]))
                out.append("http_request_duration_seconds_sum{%s} %.6f" % (lbl(method=m, path=p), h[-2]))
                out.append("http_request_duration_seconds_count{%s} %d" % (lbl(method=m, path=p), h[-1]))
        return "\n".join(out) + "\n"


METRICS = Metrics()


# --------------------------------------------------------------------------- backends
class Database:
    """A small thread-safe pool; broken connections are dropped and the query retried once."""

    def __init__(self, url, maxconn=10):
        self.url = url
        self.pool = None
        self.lock = threading.Lock()
        self.sem = threading.BoundedSemaphore(maxconn)
        self.maxconn = maxconn
        self.table_ready = False

    def _pool(self):
        with self.lock:
            if self.pool is None:
                # A connection to a database container that was replaced (new address) would wait for TCP's
                # retransmissions (minutes): unacknowledged data fails after 3 s instead, and the
                # query is retried once on a fresh connection (run below).
                self.pool = psycopg2.pool.ThreadedConnectionPool(
                    0, self.maxconn, self.url, connect_timeout=5, tcp_user_timeout=3000,
                    keepalives=1, keepalives_idle=10, keepalives_interval=3, keepalives_count=3)
            return self.pool

    def run(self, fn):
        if not self.url:
            raise RuntimeError("database URL not configured")
        with self.sem:
            for attempt in (1, 2):
                pool = self._pool()
                conn = pool.getconn()
                try:
                    with conn:
                        with conn.cursor() as cur:
                            result = fn(cur)
                    pool.putconn(conn)
                    return result
                except (psycopg2.OperationalError, psycopg2.InterfaceError):
                    pool.putconn(conn, close=True)
                    if attempt == 2:
                        raise
                except Exception:
                    pool.putconn(conn)
                    raise

    def ensure_table(self):
        if self.table_ready:
            return

        def create(cur):
            cur.execute("SELECT pg_advisory_xact_lock(727272)")
            cur.execute(
                "CREATE TABLE IF NOT EXISTS items ("
                " id serial PRIMARY KEY, value text, created_at timestamptz NOT NULL DEFAULT now())"
            )

        self.run(create)
        self.table_ready = True


def redis_url():
    # A Celery broker URL is Redis here only when it says so (it may be RabbitMQ's amqp://).
    return os.environ.get("REDIS_URL") or messaging._env_url(("CELERY_BROKER_URL", "BROKER_URL"),
                                                             ("redis://", "rediss://", "unix://"))


def postgres_url():
    url = os.environ.get("DATABASE_URL", "")
    return "" if url.lower().startswith(("mongodb://", "mongodb+srv://")) else url


def make_redis():
    url = redis_url()
    if not url:
        raise RuntimeError("REDIS_URL not configured")
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True,
                                health_check_interval=30)


class Backends:
    def __init__(self):
        self.db = Database(postgres_url())
        self.replica = Database(os.environ.get("DATABASE_REPLICA_URL", ""))
        self._redis = None
        self.lock = threading.Lock()
        self.redis_configured = bool(redis_url())
        self.mongo = messaging.Mongo(messaging.mongo_url())
        self.amqp = messaging.Publisher(messaging.amqp_url(), messaging.amqp_queue())
        self.messages = messaging.MessageLog(self)
        self.consumer = None  # a messaging.ConsumerState in consumer mode

    @property
    def redis(self):
        with self.lock:
            if self._redis is None:
                self._redis = make_redis()
            return self._redis


# --------------------------------------------------------------------------- HTTP
class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def route_label(path):
    parts = path.rstrip("/").split("/") or ["/"]
    norm = ["{id}" if p and (p.isdigit() or len(p) == 32) else p for p in parts]
    label = "/".join(norm) or "/"
    norm = ["{id}" if len(p) == 24 and all(c in "0123456789abcdef" for c in p) else p for p in norm]  # ObjectId
    label = "/".join(norm) or "/"
    known = ("/", "/health", "/api/health", "/ready", "/metrics", "/api/items", "/api/items/{id}",
             "/api/replica/items/{id}", "/api/jobs", "/api/jobs/{id}", "/api/slow", "/api/version",
             "/api/mongo/items", "/api/mongo/items/{id}", "/api/messages", "/api/messages/{id}")
    return label if label in known else "other"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "berth-testapp/" + VERSION
    backends = None  # set by serve()

    def log_message(self, fmt, *args):
        if self.path not in ("/health", "/metrics"):
            log("%s %s" % (self.address_string(), fmt % args))

    # -- helpers
    def _send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else (json.dumps(body, default=str) + "\n").encode())
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", VERSION)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return status

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if not raw:
            return {}
        if ctype == "application/x-www-form-urlencoded":
            return {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        try:
            data = json.loads(raw)
        except ValueError:
            if ctype == "application/json":
                raise HTTPError(400, "invalid JSON")
            return {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        if not isinstance(data, dict):
            raise HTTPError(400, "expected a JSON object")
        return data

    def _handle(self):
        start = time.monotonic()
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        status = 500
        try:
            status = self._dispatch(self.command, path, urllib.parse.parse_qs(parsed.query))
        except HTTPError as e:
            status = self._send(e.status, {"error": e.message})
        except Exception as e:  # noqa: BLE001
            log("error on %s %s: %r" % (self.command, path, e))
            status = self._send(503 if isinstance(e, (psycopg2.OperationalError, redis.ConnectionError,
                                                      redis.TimeoutError, RuntimeError,
                                                      pymongo.errors.PyMongoError) + messaging.AMQP_ERRORS) else 500,
                                {"error": "%s: %s" % (type(e).__name__, e)})
        finally:
            METRICS.observe(self.command, route_label(path), status, time.monotonic() - start)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle

    # -- routes
    def _dispatch(self, method, path, query):
        b = self.backends
        parts = [p for p in path.split("/") if p]
        if method in ("GET", "HEAD"):
            if path == "/":
                return self._send(200, {"app": "berth-testapp", "version": VERSION, "host": HOSTNAME})
            if path in ("/health", "/healthz", "/api/health"):
                body = {"status": "ok", "version": VERSION}
                if path == "/api/health":
                    body["checks"] = self._checks()
                return self._send(200, body)
            if path.endswith(("/health", "/healthz")):  # a stack's own health path, e.g. /mcp/health
                return self._send(200, {"status": "ok", "version": VERSION})
            if path == "/ready":
                checks = self._checks()
                ok = all(v == "ok" for v in checks.values())
                return self._send(200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": checks})
            if path == "/metrics":
                return self._send(200, METRICS.render(), "text/plain; version=0.0.4; charset=utf-8")
            if path == "/api/version":
                return self._send(200, {"version": VERSION})
            if path == "/api/slow":
                ms = min(max(int((query.get("ms") or ["100"])[0]), 0), 30000)
                time.sleep(ms / 1000.0)
                return self._send(200, {"slept_ms": ms})
            if len(parts) == 3 and parts[:2] == ["api", "items"]:
                return self._get_item(b.db, parts[2], with_cache=True)
            if len(parts) == 4 and parts[:3] == ["api", "replica", "items"]:
                if not b.replica.url:
                    raise HTTPError(503, "DATABASE_REPLICA_URL not configured")
                return self._get_item(b.replica, parts[3], with_cache=False)
            if len(parts) == 3 and parts[:2] == ["api", "jobs"]:
                job_id = parts[2]
                result = b.redis.get("done:" + job_id)
                return self._send(200, {"id": job_id, "done": result is not None, "result": result})
            if len(parts) == 4 and parts[:3] == ["api", "mongo", "items"]:
                item = b.mongo.get_item(parts[3])
                if item == "invalid":
                    raise HTTPError(400, "id must be an ObjectId (24 hex digits)")
                if item is None:
                    raise HTTPError(404, "item %s not found" % parts[3])
                return self._send(200, item)
            if path.rstrip("/") == "/api/messages":
                return self._send(200, {"store": b.messages.store, "queue": b.amqp.queue,
                                        "messages": b.messages.recent()})
            if len(parts) == 3 and parts[:2] == ["api", "messages"]:
                msg = b.messages.get(parts[2])
                if msg is None:
                    raise HTTPError(404, "message %s not consumed (yet)" % parts[2])
                return self._send(200, msg)
        if method == "POST":
            if path.rstrip("/") == "/api/items":
                data = self._body()
                if "value" not in data:
                    raise HTTPError(400, 'missing "value"')
                value = str(data["value"])
                b.db.ensure_table()
                row = b.db.run(lambda cur: (cur.execute(
                    "INSERT INTO items (value) VALUES (%s) RETURNING id, created_at", (value,)), cur.fetchone())[1])
                b.redis.set("item:%d" % row[0], value)
                return self._send(200, {"id": row[0], "value": value, "created_at": row[1].isoformat()})
            if path.rstrip("/") == "/api/jobs":
                self._body()
                job_id = uuid.uuid4().hex
                b.redis.lpush("jobs", job_id)
                return self._send(200, {"id": job_id, "status": "queued"})
            if path.rstrip("/") == "/api/mongo/items":
                data = self._body()
                if "value" not in data:
                    raise HTTPError(400, 'missing "value"')
                return self._send(200, b.mongo.insert_item(str(data["value"])))
            if path.rstrip("/") == "/api/messages":
                data = self._body()
                if "body" not in data and "value" not in data:
                    raise HTTPError(400, 'missing "body"')
                msg = b.amqp.publish(data.get("body", data.get("value")))
                return self._send(200, {"id": msg["id"], "queue": b.amqp.queue, "status": "published"})
        raise HTTPError(404 if method in ("GET", "HEAD", "POST") else 405, "no route for %s %s" % (method, path))

    def _get_item(self, db, item_id, with_cache):
        if not item_id.isdigit():
            raise HTTPError(400, "id must be an integer")

        def fetch(cur):
            try:
                cur.execute("SELECT id, value, created_at FROM items WHERE id = %s", (int(item_id),))
            except psycopg2.errors.UndefinedTable:
                return None
            return cur.fetchone()

        row = db.run(fetch)
        if row is None:
            raise HTTPError(404, "item %s not found" % item_id)
        body = {"id": row[0], "value": row[1], "created_at": row[2].isoformat()}
        if with_cache:
            body["cached"] = self.backends.redis.get("item:%d" % row[0])
        return self._send(200, body)

    def _checks(self):
        """The configured backends only (a service that uses no Redis is ready without it)."""
        b = self.backends
        probes = {}
        if b.db.url:
            probes["database"] = lambda: b.db.run(lambda cur: cur.execute("SELECT 1"))
        if b.redis_configured:
            probes["redis"] = lambda: b.redis.ping()
        if b.mongo.url:
            probes["mongodb"] = b.mongo.ping
        if b.amqp.url:
            probes["amqp"] = b.amqp.check if b.consumer is None else self._consumer_check
        checks = {}
        for name, probe in probes.items():
            try:
                probe()
                checks[name] = "ok"
            except Exception as e:  # noqa: BLE001
                checks[name] = "error: %s" % (str(e).strip() or type(e).__name__)[:200]
        return checks

    def _consumer_check(self):
        if not self.backends.consumer.connected:
            raise RuntimeError("consumer not connected: %s" % self.backends.consumer.error)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(host, port, consumer=False):
    Handler.backends = backends = Backends()
    if consumer:
        if not backends.amqp.url:
            log("consumer: AMQP_URL is not set")
            return 2
        backends.consumer = messaging.ConsumerState()
        threading.Thread(target=messaging.consume, daemon=True,
                         args=(backends.amqp.url, backends.amqp.queue, backends.messages, backends.consumer,
                               STOP, log)).start()
    server_cls = Server
    if ":" in host:
        class Server6(Server):
            address_family = socket.AF_INET6
        server_cls = Server6
    httpd = server_cls((host, port), Handler)

    def stop(signum, frame):
        log("signal %d: shutting down" % signum)
        STOP.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("berth-testapp %s %slistening on %s:%d" % (VERSION, "(consumer) " if consumer else "", host, port))
    httpd.serve_forever()
    httpd.server_close()
    return 0


# --------------------------------------------------------------------------- CLIs
def uvicorn_cli(argv, consumer=False, host="127.0.0.1"):
    port = int(os.environ.get("PORT") or 8000)
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--host", "--port") and i + 1 < len(argv):
            if a == "--host":
                host = argv[i + 1]
            else:
                port = int(argv[i + 1])
            i += 2
            continue
        if a.startswith("--host="):
            host = a.split("=", 1)[1]
        elif a.startswith("--port="):
            port = int(a.split("=", 1)[1])
        elif not a.startswith("-"):
            log("uvicorn stand-in: app %s -> berth test app" % a)
        else:
            log("uvicorn stand-in: ignoring option %s" % a)
        i += 1
    sys.exit(serve(host, port, consumer=consumer))


def consumer_cli(argv):
    """`python3 -m app.consumer [--host H] [--port P]`: consume AMQP_QUEUE, serve the HTTP endpoints on
    H:P (default 0.0.0.0:$PORT) for health checks and for reading what was consumed."""
    uvicorn_cli(argv, consumer=True, host="0.0.0.0")


CELERY_VALUE_OPTS = {"-A", "--app", "-b", "--broker", "--result-backend", "-l", "--loglevel", "-c",
                     "--concurrency", "-Q", "--queues", "-n", "--hostname", "--pidfile", "-s", "--schedule",
                     "-f", "--logfile", "-P", "--pool", "--max-tasks-per-child", "--workdir", "-d",
                     "--destination", "-t", "--timeout", "--autoscale", "-X", "--exclude-queues"}


def parse_celery(argv):
    opts, positional = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
        elif a in CELERY_VALUE_OPTS and i + 1 < len(argv):
            opts[a] = argv[i + 1]
            i += 1
        elif a.startswith("-"):
            opts[a] = True
        else:
            positional.append(a)
        i += 1
    return opts, positional


STOP = threading.Event()


def _install_stop_handlers():
    def stop(signum, frame):
        log("signal %d: stopping" % signum)
        STOP.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _touch(path):
    try:
        with open(path, "w") as f:
            f.write(str(time.time()))
    except OSError:
        pass


def worker_loop(n):
    r = make_redis()
    log("worker-%d: waiting for jobs on list 'jobs'" % n)
    while not STOP.is_set():
        try:
            item = r.brpop("jobs", timeout=2)
            _touch("/tmp/worker-heartbeat")
            if item is None:
                continue
            job_id = item[1]
            r.set("done:" + job_id, json.dumps({"worker": HOSTNAME, "thread": n, "at": time.time(),
                                                "version": VERSION}))
            r.incr("jobs:processed")
            log("worker-%d: done %s" % (n, job_id))
        except (redis.ConnectionError, redis.TimeoutError) as e:
            log("worker-%d: redis error: %s; retrying" % (n, e))
            STOP.wait(1)


def beat_loop(interval, schedule=None):
    r = make_redis()
    log("beat: pushing a job every %ss" % interval)
    while not STOP.is_set():
        try:
            job_id = "beat-%d" % int(time.time())
            r.lpush("jobs", job_id)
            r.set("beat:last", job_id)
            _touch("/tmp/beat-heartbeat")
            if schedule:
                # Celery beat keeps its schedule file (--schedule) up to date while it runs.
                _touch(schedule)
            log("beat: queued %s" % job_id)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            log("beat: redis error: %s" % e)
        STOP.wait(interval)


def celery_cli(argv):
    opts, positional = parse_celery(argv)
    cmd = positional[0] if positional else ""
    if cmd == "worker":
        _install_stop_handlers()
        conc = int(opts.get("-c") or opts.get("--concurrency") or 1)
        threads = [threading.Thread(target=worker_loop, args=(i,), daemon=True) for i in range(max(conc, 1))]
        if opts.get("-B") or opts.get("--beat"):
            threads.append(threading.Thread(target=beat_loop, args=(float(os.environ.get("BEAT_INTERVAL", 10)),),
                                            daemon=True))
        log("celery stand-in worker (version %s, concurrency %d)" % (VERSION, conc))
        for t in threads:
            t.start()
        while not STOP.is_set():
            STOP.wait(1)
        return 0
    if cmd == "beat":
        _install_stop_handlers()
        beat_loop(float(os.environ.get("BEAT_INTERVAL", 10)), opts.get("-s") or opts.get("--schedule"))
        return 0
    if cmd in ("inspect", "status", "report"):
        try:
            make_redis().ping()
        except Exception as e:  # noqa: BLE001
            print("Error: broker unreachable: %s" % e, file=sys.stderr)
            return 1
        print("-> celery@%s: OK\n        pong" % HOSTNAME)
        return 0
    print("celery stand-in: unsupported command %r (supported: worker, beat, inspect, status)" % cmd,
          file=sys.stderr)
    return 2


def main():
    # `python3 -m app.main` runs the web server like the default CMD.
    uvicorn_cli(["app.main:app", "--host", "0.0.0.0", "--port", os.environ.get("PORT", "8000")])


app = None  # `uvicorn app.main:app` names this attribute; the stand-in serves the handler above.

if __name__ == "__main__":
    main()
