"""What each Redis login of a deployed stack may do, checked the same way on both targets.

Berth gives a cache three ACL users (components/cache.py): ``default`` for the apps (their
``redis://:password@`` URLs), ``berth_monitor`` for the exporter, ``berth_admin`` for the operator.
A target's test hands ``check_users`` its way of running ``redis-cli`` inside the Redis container
(Docker's exec API, ``kubectl exec``) with a password that never reaches a command line.
"""

from __future__ import annotations

from typing import Callable, Optional

#: redis_cli(user or None for the default user, password, args) -> what redis-cli printed
RedisCli = Callable[[Optional[str], str, list[str]], str]

NOPERM = "NOPERM"
#: What an SQL injection's Redis twin would reach for: files written where Redis runs, the data sent
#: to another server, new users, other clients cut off. Each is harmless if it were let through (the
#: replica is already a primary, no client has that id), so a failing run breaks nothing. MODULE and
#: DEBUG are not here: Redis 7 refuses them to every connection unless its config enables them
#: (`enable-module-command`, `enable-debug-command`), before the ACL is asked.
APP_REFUSED = (
    ["CONFIG", "SET", "dir", "/tmp"],
    ["CONFIG", "GET", "requirepass"],
    ["ACL", "SETUSER", "intruder", "on", ">intruder-pw", "~*", "+@all"],
    ["ACL", "LIST"],
    ["REPLICAOF", "NO", "ONE"],
    ["BGSAVE"],
    ["BGREWRITEAOF"],
    ["CLIENT", "KILL", "ID", "999999"],
)
#: The exporter reads the server's state, never a key.
MONITOR_ALLOWED = (["INFO", "keyspace"], ["CONFIG", "GET", "maxmemory"], ["SLOWLOG", "LEN"], ["PING"])


def check_users(redis_cli: RedisCli, app: str, monitor: str, admin: str, key: str, value: str) -> None:
    """``app``, ``monitor``, ``admin``: the three passwords as the stack handed them out; ``key``
    holds ``value`` (written by the app)."""
    assert len({app, monitor, admin}) == 3, "each login has its own password"
    # No password, no entry; the app's password is not the exporter's or the operator's.
    assert "NOAUTH" in redis_cli(None, "", ["PING"])
    assert "WRONGPASS" in redis_cli("berth_monitor", app, ["PING"])
    assert "WRONGPASS" in redis_cli("berth_admin", app, ["PING"])

    # The apps: every key (the app's own value), and none of the admin commands.
    for args, want in ((["ACL", "WHOAMI"], "default"), (["GET", key], value), (["SET", f"{key}:probe", "1"], "OK"),
                       (["DEL", f"{key}:probe"], "1")):
        out = redis_cli(None, app, args)
        assert out == want, (args, out)
    for args in APP_REFUSED:
        out = redis_cli(None, app, args)
        assert NOPERM in out, (args, out)

    # The exporter: the server's state, no key, no write.
    for args in MONITOR_ALLOWED:
        out = redis_cli("berth_monitor", monitor, args)
        assert NOPERM not in out and "ERR" not in out, (args, out)
    for args in (["GET", key], ["SET", f"{key}:probe", "1"], ["KEYS", "*"], ["SCAN", "0"], ["FLUSHALL"]):
        out = redis_cli("berth_monitor", monitor, args)
        assert NOPERM in out, (args, out)
    out = redis_cli(None, app, ["GET", key])
    assert out == value, out

    # The operator sees the three users, and what the app and the exporter were refused.
    users = redis_cli("berth_admin", admin, ["ACL", "USERS"]).split()
    assert sorted(users) == ["berth_admin", "berth_monitor", "default"], users
    log = redis_cli("berth_admin", admin, ["ACL", "LOG", "128"])  # (without a count: the last 10)
    assert "config|set" in log and "berth_monitor" in log, log
