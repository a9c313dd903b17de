"""MongoDB items and RabbitMQ messages for the Berth test app (Debian's python3-pymongo and python3-pika).

MongoDB (MONGODB_URI, or MONGO_URL / MONGODB_URL, or a mongodb:// URL in DATABASE_URI / DATABASE_URL: a
stack's `uses: {mongo: DATABASE_URI}` names the variable): items in the collection `items` of the URL's
database.

RabbitMQ (AMQP_URL, or RABBITMQ_URL, or an amqp:// URL in CELERY_BROKER_URL / BROKER_URL): the web app
publishes persistent JSON messages to the durable queue AMQP_QUEUE (default berth-test); the consumer
(`python3 -m app.consumer`) consumes them, acknowledges each one only once it is recorded, and records it
in memory and in the first store configured of Redis (SET message:<id>, LPUSH messages), MongoDB
(collection messages) and Postgres (table messages), or the one MESSAGE_STORE names (redis, mongodb,
postgres, memory). Any instance with the same store answers GET /api/messages/<id>.
"""

import collections
import json
import os
import socket
import threading
import time
import uuid

import pika
import pika.exceptions
import pymongo
import pymongo.errors
from bson import ObjectId
from bson.errors import InvalidId

VERSION = os.environ.get("APP_VERSION", "dev")
HOSTNAME = socket.gethostname()
AMQP_ERRORS = (pika.exceptions.AMQPError, OSError)


def _env_url(names, schemes):
    for name in names:
        value = os.environ.get(name, "")
        if value and value.lower().startswith(schemes):
            return value
    return ""


def mongo_url():
    return (os.environ.get("MONGODB_URI") or os.environ.get("MONGO_URL") or os.environ.get("MONGODB_URL")
            or _env_url(("DATABASE_URI", "DATABASE_URL"), ("mongodb://", "mongodb+srv://")))


def amqp_url():
    return os.environ.get("AMQP_URL") or os.environ.get("RABBITMQ_URL") or _env_url(
        ("CELERY_BROKER_URL", "BROKER_URL"), ("amqp://", "amqps://"))


def amqp_queue():
    return os.environ.get("AMQP_QUEUE") or "berth-test"


# --------------------------------------------------------------------------- MongoDB
class Mongo:
    def __init__(self, url):
        self.url = url
        self._client = None
        self.lock = threading.Lock()

    @property
    def db(self):
        if not self.url:
            raise RuntimeError("MONGODB_URI not configured")
        with self.lock:
            if self._client is None:
                # pymongo's client is thread-safe and reconnects by itself.
                self._client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000,
                                                   socketTimeoutMS=10000)
            return self._client.get_default_database("app")

    def ping(self):
        # The client authenticates each connection first: wrong credentials fail here too.
        self.db.command("ping")

    def insert_item(self, value):
        doc = {"value": value, "created_at": time.time(), "version": VERSION}
        result = self.db.items.insert_one(doc)
        return {"id": str(result.inserted_id), "value": value, "created_at": doc["created_at"]}

    def get_item(self, item_id):
        try:
            oid = ObjectId(item_id)
        except (InvalidId, TypeError):
            return "invalid"
        doc = self.db.items.find_one({"_id": oid})
        if doc is None:
            return None
        return {"id": str(doc["_id"]), "value": doc.get("value"), "created_at": doc.get("created_at")}


# --------------------------------------------------------------------------- RabbitMQ
def amqp_parameters(url):
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 10
    params.connection_attempts = 1
    return params


class Publisher:
    """One connection shared by the request threads (pika's BlockingConnection is not thread-safe: a lock);
    a broken connection is dropped and the publish retried once. Publisher confirms: a message the broker
    did not take raises."""

    def __init__(self, url, queue):
        self.url = url
        self.queue = queue
        self.lock = threading.Lock()
        self.conn = None
        self.channel = None

    def _open(self):
        if not self.url:
            raise RuntimeError("AMQP_URL not configured")
        if self.conn is None or self.conn.is_closed or self.channel is None or self.channel.is_closed:
            self._close()
            self.conn = pika.BlockingConnection(amqp_parameters(self.url))
            self.channel = self.conn.channel()
            self.channel.queue_declare(self.queue, durable=True)
            self.channel.confirm_delivery()
        return self.channel

    def _close(self):
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except AMQP_ERRORS:
            pass
        self.conn = self.channel = None

    def _with_channel(self, fn):
        with self.lock:
            for attempt in (1, 2):
                try:
                    return fn(self._open())
                except AMQP_ERRORS:
                    self._close()
                    if attempt == 2:
                        raise

    def publish(self, body):
        msg = {"id": uuid.uuid4().hex, "body": body, "sent_at": time.time(), "sent_by": HOSTNAME, "version": VERSION}
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=msg["id"])
        self._with_channel(lambda ch: ch.basic_publish("", self.queue, json.dumps(msg).encode(), props,
                                                       mandatory=True))
        return msg

    def check(self):
        # Also serves the connection's heartbeats, which a BlockingConnection only handles when called.
        self._with_channel(lambda ch: ch.connection.process_data_events(0))


# --------------------------------------------------------------------------- consumed messages
class MessageLog:
    """Where consumed messages are recorded: memory (this process) + one shared store."""

    def __init__(self, backends):
        self.backends = backends
        self.memory = collections.OrderedDict()
        self.lock = threading.Lock()
        self.store = self._pick_store()
        self.pg_ready = False

    def _pick_store(self):
        forced = os.environ.get("MESSAGE_STORE", "").strip().lower()
        if forced:
            if forced not in ("redis", "mongodb", "postgres", "memory"):
                raise SystemExit("MESSAGE_STORE=%r: use redis, mongodb, postgres or memory" % forced)
            return forced
        b = self.backends
        if b.redis_configured:
            return "redis"
        if b.mongo.url:
            return "mongodb"
        if b.db.url:
            return "postgres"
        return "memory"

    def record(self, msg):
        """Raises if the store cannot take it (the consumer then requeues the message)."""
        data = json.dumps(msg)
        if self.store == "redis":
            r = self.backends.redis
            pipe = r.pipeline()
            pipe.set("message:" + msg["id"], data)
            pipe.lpush("messages", msg["id"])
            pipe.ltrim("messages", 0, 999)
            pipe.incr("messages:consumed")
            pipe.execute()
        elif self.store == "mongodb":
            self.backends.mongo.db.messages.replace_one({"_id": msg["id"]}, dict(msg, _id=msg["id"]), upsert=True)
        elif self.store == "postgres":
            self._pg_table()
            self.backends.db.run(lambda cur: cur.execute(
                "INSERT INTO messages (id, doc) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING", (msg["id"], data)))
        with self.lock:
            self.memory[msg["id"]] = msg
            while len(self.memory) > 1000:
                self.memory.popitem(last=False)

    def _pg_table(self):
        if not self.pg_ready:
            self.backends.db.run(lambda cur: cur.execute(
                "CREATE TABLE IF NOT EXISTS messages (id text PRIMARY KEY, doc text NOT NULL,"
                " consumed_at timestamptz NOT NULL DEFAULT now())"))
            self.pg_ready = True

    def get(self, msg_id):
        with self.lock:
            if msg_id in self.memory:
                return self.memory[msg_id]
        if self.store == "redis":
            data = self.backends.redis.get("message:" + msg_id)
            return json.loads(data) if data else None
        if self.store == "mongodb":
            doc = self.backends.mongo.db.messages.find_one({"_id": msg_id})
            if doc:
                doc.pop("_id", None)
            return doc
        if self.store == "postgres":
            self._pg_table()
            row = self.backends.db.run(lambda cur: (cur.execute("SELECT doc FROM messages WHERE id = %s", (msg_id,)),
                                                    cur.fetchone())[1])
            return json.loads(row[0]) if row else None
        return None

    def recent(self, n=50):
        if self.store == "redis":
            ids = self.backends.redis.lrange("messages", 0, n - 1)
            return [m for m in (self.get(i) for i in ids) if m]
        if self.store == "mongodb":
            docs = list(self.backends.mongo.db.messages.find().sort("consumed_at", -1).limit(n))
            for d in docs:
                d.pop("_id", None)
            return docs
        if self.store == "postgres":
            self._pg_table()
            rows = self.backends.db.run(lambda cur: (cur.execute(
                "SELECT doc FROM messages ORDER BY consumed_at DESC LIMIT %s", (n,)), cur.fetchall())[1])
            return [json.loads(r[0]) for r in rows]
        with self.lock:
            return list(reversed(self.memory.values()))[:n]


class ConsumerState:
    def __init__(self):
        self.connected = False
        self.consumed = 0
        self.error = "not connected yet"


def consume(url, queue, messages, state, stop, log):
    """Consume `queue` until `stop` is set, reconnecting as needed. A message is acknowledged only once
    it is recorded; one that cannot be recorded is requeued."""
    while not stop.is_set():
        conn = None
        try:
            conn = pika.BlockingConnection(amqp_parameters(url))
            channel = conn.channel()
            channel.queue_declare(queue, durable=True)
            channel.basic_qos(prefetch_count=10)
            state.connected, state.error = True, None
            log("consumer: consuming queue %r" % queue)
            for method, props, body in channel.consume(queue, inactivity_timeout=1):
                _touch("/tmp/consumer-heartbeat")
                if stop.is_set():
                    break
                if method is None:
                    continue
                try:
                    msg = json.loads(body)
                    if not isinstance(msg, dict):
                        raise ValueError("not an object")
                except ValueError:
                    msg = {"body": body.decode("utf-8", "replace")}
                msg.setdefault("id", props.message_id or uuid.uuid4().hex)
                msg.update(consumed_at=time.time(), consumed_by=HOSTNAME, consumer_version=VERSION,
                           redelivered=bool(method.redelivered))
                try:
                    messages.record(msg)
                except Exception as e:  # noqa: BLE001 - any store failure: requeue and retry later
                    log("consumer: cannot record %s (%s: %s); requeued" % (msg["id"], type(e).__name__, e))
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    stop.wait(1)
                    continue
                channel.basic_ack(method.delivery_tag)
                state.consumed += 1
                log("consumer: recorded %s in %s" % (msg["id"], messages.store))
            channel.cancel()
        except AMQP_ERRORS as e:
            state.connected, state.error = False, "%s: %s" % (type(e).__name__, str(e) or repr(e.args))
            log("consumer: broker error: %s; reconnecting" % state.error)
            stop.wait(2)
        finally:
            state.connected = False
            try:
                if conn is not None and conn.is_open:
                    conn.close()
            except AMQP_ERRORS:
                pass


def _touch(path):
    try:
        with open(path, "w") as f:
            f.write(str(time.time()))
    except OSError:
        pass
