"""Cross-field checks: what no single model can see (names unique across sections, references
between them, keys set for the other target, dependency cycles). Each problem names its key."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Optional

from pydantic import BaseModel

from .database import DatabaseEngine, reserved_user_problem
from .fields import BOTH, NAMESPACE, Target, _extra
from .names import _ENV_RE, _NAME_RE, _is_ip
from .proxy import TlsMode
from .service import ServiceSpec
from .shared import GeneratedSecret
from .stack import StackSpec
from .units import memory_mib, redis_bytes


def check_names(spec: StackSpec, problems: list[str]) -> None:
    """Names that collide: with each other, with a read replica's or with Berth's own workloads."""
    seen: dict[str, str] = {}
    derived = {f"{d}-replica": d for d, s in spec.databases.items() if s.replica}
    for section in ("databases", "caches", "services"):
        for name in getattr(spec, section):
            if name in derived:
                problems.append(
                    f"{NAMESPACE}:{section}.{name}: the name is taken by the read replica of database "
                    f"{derived[name]!r}; rename it"
                )
    for section in ("databases", "caches", "brokers", "graphs", "services"):
        for name in getattr(spec, section):
            key = f"{NAMESPACE}:{section}.{name}"
            if not _NAME_RE.match(name):
                problems.append(
                    f"{key}: name {name!r} must be lowercase letters, digits and '-', start with a letter, "
                    "at most 30 characters; rename it"
                )
            if name in seen:
                problems.append(f"{key}: name {name!r} is also used in {NAMESPACE}:{seen[name]}; names must be unique")
            seen[name] = section
    for name, db in spec.databases.items():
        problem = reserved_user_problem(f"{NAMESPACE}:databases.{name}", name, db)
        if problem:
            problems.append(problem)
    for secret in spec.secrets:
        if not re.match(r"^[A-Za-z0-9._-]{1,253}$", secret):
            problems.append(f"{NAMESPACE}:secrets.{secret}: secret names are letters, digits, '.', '_' and '-'; "
                            "rename it")
    for db, b in spec.backups.items():
        for i, tier in enumerate(b.tiers):
            job = f"{db}-backup-{tier.name}"
            if spec.target == Target.KUBERNETES and len(job) > 52:
                problems.append(
                    f"{NAMESPACE}:backups.{db}.tiers[{i}].name: the CronJob name {job!r} is {len(job)} characters; "
                    "Kubernetes allows 52: shorten the tier name"
                )


#: The outputs Berth's program exports itself (components/stack.py): a secret's ``export`` may not take them.
STACK_OUTPUTS = frozenset({"target", "databases", "caches", "brokers", "graphs", "services", "url",
                           "grafana_admin_password"})


def _missing_secret(key: str, ref: str, example: str = "<value>") -> str:
    return (f"{key}: secret {ref!r} is missing; set it with "
            f"`pulumi config set --secret --path '{NAMESPACE}:secrets.{ref}' {example}`")


def check_references(spec: StackSpec, problems: list[str]) -> None:
    """What one part names of another: the stores a service uses, its depends_on, secrets, backups."""
    stores = {**{n: d.engine.value for n, d in spec.databases.items()}, **{n: "redis" for n in spec.caches}}
    stores.update({n: "rabbitmq" for n in spec.brokers})
    stores.update({n: "neo4j" for n in spec.graphs})
    exported: dict[str, str] = {}
    for sname, svc in spec.services.items():
        key = f"{NAMESPACE}:services.{sname}"
        used = list(svc.uses) if isinstance(svc.uses, list) else list(svc.uses.keys())
        for u in used:
            if u not in stores:
                known = ", ".join(sorted(stores)) or "none defined"
                problems.append(
                    f"{key}.uses: {u!r} is not a database, cache, broker or graph database (known: {known}); "
                    f"add it under {NAMESPACE}:databases / caches / brokers / graphs or fix the name"
                )
        if isinstance(svc.uses, list):
            kinds: dict[str, list[str]] = {}
            for u in used:
                if u in stores:
                    kinds.setdefault(stores[u], []).append(u)
            for kind, names in kinds.items():
                if len(names) > 1:
                    problems.append(
                        f"{key}.uses: {names} are all {kind}; use the mapping form to name each variable, "
                        f"e.g. uses: {{{names[0]}: DATABASE_URL, {names[1]}: OTHER_DATABASE_URL}}"
                    )
        for dep in svc.depends_on:
            if dep not in spec.services and dep not in stores:
                problems.append(f"{key}.depends_on: {dep!r} is not a service, database or cache; fix the name")
            if dep == sname:
                problems.append(f"{key}.depends_on: a service cannot depend on itself; remove {dep!r}")
        for var, ref in svc.secret_env.items():
            if not _ENV_RE.match(var):
                problems.append(f"{key}.secret_env: {var!r} is not a valid variable name")
            if isinstance(ref, str) and ref not in spec.secrets:
                problems.append(_missing_secret(f"{key}.secret_env.{var}", ref) + " or use {generate: true}")
            if isinstance(ref, GeneratedSecret) and ref.export:
                where = f"{key}.secret_env.{var}.export"
                if ref.export in STACK_OUTPUTS:
                    problems.append(f"{where} = {ref.export!r}: Berth exports {ref.export!r} itself; pick another name")
                elif ref.export in exported:
                    problems.append(f"{where} = {ref.export!r}: also exported by {exported[ref.export]}; "
                                    "give each export its own name")
                else:
                    exported[ref.export] = f"{key}.secret_env.{var}"
        clash = set(svc.env) & set(svc.secret_env)
        for var in sorted(clash):
            problems.append(f"{key}.env.{var}: also set in secret_env; keep only one")
        if svc.autoscale and "replicas" in svc.model_fields_set:
            problems.append(
                f"{key}.replicas = {svc.replicas}: autoscale decides the replica count "
                f"({svc.autoscale.min}-{svc.autoscale.max}); remove replicas (autoscale.min is the starting count)"
            )
        if svc.metrics and svc.port is None and svc.metrics.port is None:
            problems.append(f"{key}.metrics: the service has no port; set metrics.port")
        if svc.health and svc.health.path and svc.port is None:
            problems.append(f"{key}.health.path: an HTTP check needs `port`; set port or use health.command")
        if svc.health and svc.health.ready_path and svc.port is None:
            problems.append(f"{key}.health.ready_path: an HTTP readiness check needs `port`; set port or remove "
                            "ready_path")
        if svc.run_as_root and "run_as_user" in svc.model_fields_set:
            problems.append(f"{key}.run_as_user: run_as_root is true, so the container runs as root, not as "
                            f"{svc.run_as_user}; remove one of them")
    for cname, cache in spec.caches.items():
        if cache.maxmemory and redis_bytes(cache.maxmemory) >= memory_mib(cache.resources.memory_limit) * 1024 ** 2:
            problems.append(
                f"{NAMESPACE}:caches.{cname}.maxmemory = {json.dumps(cache.maxmemory)}: not below "
                f"resources.memory_limit {cache.resources.memory_limit}; Redis would be killed before it evicts: "
                "lower maxmemory (about 3/4 of the limit) or raise memory_limit"
            )
    if spec.target == Target.KUBERNETES and _is_ip(spec.domain):
        problems.append(f"{NAMESPACE}:domain = {json.dumps(spec.domain)}: an Ingress host cannot be an IP "
                        "address; use a DNS name")
    if spec.proxy:
        for i, route in enumerate(spec.proxy.routes):
            rkey = f"{NAMESPACE}:proxy.routes[{i}].service"
            target = spec.services.get(route.service)
            if target is None:
                problems.append(f"{rkey}: {route.service!r} is not a service in {NAMESPACE}:services; fix the name")
            elif target.port is None:
                problems.append(f"{rkey}: service {route.service!r} has no port to route to; give it `port`")
        paths = [r.path for r in spec.proxy.routes]
        for p in sorted({p for p in paths if paths.count(p) > 1}):
            problems.append(f"{NAMESPACE}:proxy.routes: path {p!r} is routed twice; keep one")
        tls = spec.proxy.tls
        if spec.target == Target.DOCKER and tls.mode == TlsMode.ACME:
            problems.append(
                f"{NAMESPACE}:proxy.tls.mode: 'acme' is for Kubernetes (cert-manager); on Docker use "
                "'secret' (a certificate in berth:secrets), 'files' or 'self-signed'"
            )
        if tls.mode == TlsMode.SECRET:
            for field, ref, pem in (("cert_secret", tls.cert_secret, "fullchain.pem"),
                                    ("key_secret", tls.key_secret, "privkey.pem")):
                if ref not in spec.secrets:
                    problems.append(_missing_secret(f"{NAMESPACE}:proxy.tls.{field}", ref, f"< {pem}"))
    for db, b in spec.backups.items():
        bkey = f"{NAMESPACE}:backups.{db}"
        if db not in spec.databases:
            problems.append(f"{bkey}: {db!r} is not a database in {NAMESPACE}:databases; fix the name")
        if b.s3:
            for field in ("access_key_secret", "secret_key_secret"):
                ref = getattr(b.s3, field)
                if ref not in spec.secrets:
                    problems.append(_missing_secret(f"{bkey}.s3.{field}", ref))
        if (spec.target == Target.DOCKER and not b.image and db in spec.databases
                and spec.databases[db].engine == DatabaseEngine.MONGODB):
            problems.append(
                f"{bkey}.image: on Docker, MongoDB backups need an image with mongodump and supercronic; set it"
            )
        names = [t.name for t in b.tiers]
        for n in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{bkey}.tiers: tier name {n!r} is used twice; make names unique")
    if spec.monitoring and spec.monitoring.enabled and spec.monitoring.grafana and spec.monitoring.grafana_path:
        if spec.proxy and any(r.path == spec.monitoring.grafana_path for r in spec.proxy.routes):
            problems.append(
                f"{NAMESPACE}:monitoring.grafana_path: {spec.monitoring.grafana_path!r} is already a proxy route; "
                "pick another path"
            )
    _check_logging(spec, problems)


def _check_logging(spec: StackSpec, problems: list[str]) -> None:
    """The logging workloads take fixed names and, with a proxy, a path."""
    if not (spec.logging and spec.logging.enabled):
        return
    taken = {"elasticsearch", "elasticsearch-users", "logstash", *(["kibana"] if spec.logging.kibana else [])}
    for section in ("databases", "caches", "brokers", "graphs", "services"):
        for name in sorted(set(getattr(spec, section)) & taken):
            problems.append(
                f"{NAMESPACE}:{section}.{name}: the name is taken by {NAMESPACE}:logging's {name}; rename it"
            )
    path = spec.logging.kibana_path
    if spec.logging.kibana and path and spec.proxy:
        used = [r.path.rstrip("/") or "/" for r in spec.proxy.routes]
        if spec.monitoring and spec.monitoring.enabled and spec.monitoring.grafana and spec.monitoring.grafana_path:
            used.append(spec.monitoring.grafana_path.rstrip("/"))
        if path in used:
            problems.append(
                f"{NAMESPACE}:logging.kibana_path: {path!r} is already routed by the proxy; pick another path"
            )


def check_targets(spec: StackSpec, problems: list[str], warnings: list[str]) -> None:
    """A key set for the other target would be silently ignored: refuse it (or warn, where marked)."""
    target = spec.target.value

    def visit(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                visit(v, f"{key}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                visit(v, f"{key}[{i}]")
        elif isinstance(value, BaseModel):
            fields = type(value).model_fields
            for name in [n for n in fields if n in value.model_fields_set]:
                sub = f"{key}{name}" if key.endswith(":") else f"{key}.{name}"
                extra = _extra(fields[name])
                if target not in extra.get("targets", BOTH):
                    reason = extra.get("why") or f"it applies to target {extra['targets'][0]} only"
                    text = f"{sub}: set for target {target}, where it does nothing: {reason}"
                    if extra.get("wrong_target") == "warn":
                        warnings.append(text + "; it is ignored")
                    else:
                        problems.append(text + ("" if extra.get("why") else "; remove it"))
                    continue
                visit(getattr(value, name), sub)

    visit(spec, f"{NAMESPACE}:")


def service_order(services: dict[str, "ServiceSpec"]) -> tuple[list[str], list[str]]:
    """Services with their ``depends_on`` first, and every dependency cycle found
    (as ``"a -> b -> a"``). The one walk of the dependency graph: validation reports the cycles,
    the stack builds in this order."""
    order: list[str] = []
    cycles: list[tuple[str, str]] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycles.append((n, " -> ".join([*path[path.index(n):], n])))
            return
        state[n] = 1
        for d in services[n].depends_on:
            if d in services and d != n:
                visit(d, [*path, n])
        state[n] = 2
        order.append(n)

    for n in sorted(services):
        visit(n, [])
    return order, [f"{NAMESPACE}:services.{n}.depends_on: dependency cycle {c}; break the cycle" for n, c in cycles]


def _check_cycles(spec: StackSpec, problems: list[str]) -> None:
    """A ``depends_on`` cycle can never start; report it before anything is created."""
    problems.extend(service_order(spec.services)[1])


# ---------------------------------------------------------------- input that would deploy, then misbehave

#: Words that make an env name secret-looking wherever they stand (``SECRET_KEY_BASE``, ``DB_PASSWORD``);
#: ``KEY`` and ``PASS`` only as the last word (``OPENAI_API_KEY``, ``DB_PASS``; not ``CACHE_KEY_PREFIX``).
_SECRET_WORDS = frozenset({"PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "CREDENTIALS", "APIKEY"})
_SECRET_LAST = frozenset({"KEY", "PASS", *_SECRET_WORDS})
#: A last word that says the value is about a secret, not the secret (``TOKEN_TTL``, ``PASSWORD_FILE``).
_ABOUT_A_SECRET = frozenset({
    "FILE", "PATH", "DIR", "TTL", "LENGTH", "LEN", "MIN", "MAX", "EXPIRY", "EXPIRES", "EXPIRATION", "TIMEOUT",
    "LIFETIME", "AGE", "URL", "URI", "ENDPOINT", "HEADER", "NAME", "TYPE", "ALGORITHM", "ALG", "PREFIX", "ENABLED",
    "DISABLED", "ID", "ISSUER", "AUDIENCE", "SCOPE", "SCOPES", "FIELD", "PARAM", "VERSION", "SIZE", "COUNT",
    "RETRIES", "POLICY", "MODE", "HOST", "PORT", "USER", "USERNAME", "ROTATION", "INTERVAL", "PERIOD",
})


def secret_looking(name: str) -> bool:
    """An env name that holds a secret by its words (``DB_PASSWORD``, ``OPENAI_API_KEY``), not one that only
    mentions one (``TOKEN_TTL``, ``PASSWORD_FILE``, ``CACHE_KEY_PREFIX``)."""
    words = [w for w in re.split(r"[_\W]+", name.upper()) if w]
    if not words or words[-1] in _ABOUT_A_SECRET:
        return False
    return words[-1] in _SECRET_LAST or any(w in _SECRET_WORDS for w in words)


def _secret_slug(var: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", var.lower()).strip("-")


#: Where BackupJob keeps its dumps (renderers/backup.py BACKUP_DIR; a unit test keeps them equal).
BACKUP_DIR = "/backups"
DUMP_SUFFIX = {DatabaseEngine.POSTGRES: ".dump", DatabaseEngine.MONGODB: ".archive.gz"}


def _restore_problem(key: str, value: str, engine: DatabaseEngine, tiers: list[str]) -> tuple[Optional[str], Optional[str]]:
    """(problem, warning) for a ``restore_from`` value: ``latest`` or a dump as ``berth-backup`` names it."""
    if value == "latest":
        return None, None
    suffix = DUMP_SUFFIX[engine]
    shape = f"<tier>/<database>-<YYYYmmddTHHMMSSZ>{suffix}, e.g. {tiers[0]}/<database>-20260102T020000Z{suffix}"
    text = value.removeprefix(BACKUP_DIR + "/")
    parts = text.split("/")
    close = difflib.get_close_matches(value.lower(), ["latest"], n=1, cutoff=0.6)
    if close:
        return (f"{key} = {json.dumps(value)}: neither latest nor a dump; did you mean latest?", None)
    if text.startswith("/") or len(parts) != 2 or not all(parts) or not parts[1].endswith(suffix):
        return (f"{key} = {json.dumps(value)}: neither latest nor a dump of this {engine.value} database on the "
                f"backup volume ({shape}; `ls {BACKUP_DIR}/*/` in the backup container lists them); fix it", None)
    if parts[0] not in [*tiers, "predeploy"]:
        return None, (f"{key} = {json.dumps(value)}: no tier of this stack writes to {parts[0]}/ (tiers: "
                      f"{', '.join([*tiers, 'predeploy'])}); the restore fails unless that dump is on the volume")
    return None, None


def check_inputs(spec: StackSpec, problems: list[str], warnings: list[str]) -> None:
    """Values that pass their models but would deploy something that fails or misbehaves later, or
    that leaks: secrets in plain env, restores of dumps that cannot exist, bursts one target cannot
    express, schedulers that a rollout would double."""
    for name, svc in spec.services.items():
        key = f"{NAMESPACE}:services.{name}"
        for var, value in svc.env.items():
            if value and secret_looking(var):
                slug = _secret_slug(var)
                # The value is never shown: it may be the secret itself.
                problems.append(
                    f"{key}.env.{var}: named like a secret, yet its value is written in plain text (in the stack "
                    f"file, every preview and a container label); keep it as a secret: `pulumi config set --secret "
                    f"--path '{NAMESPACE}:secrets.{slug}' <value>`, then secret_env: {{{var}: {slug}}} instead of "
                    f"env (or secret_env: {{{var}: {{generate: true}}}})")
        if svc.singleton and svc.replicas > 1:
            problems.append(f"{key}.replicas = {svc.replicas}: a singleton runs one container at a time; remove "
                            "replicas, or singleton")
        if svc.singleton and svc.autoscale:
            problems.append(f"{key}.autoscale: a singleton runs one container at a time; remove autoscale, or "
                            "singleton")
        if svc.port is None and svc.health is None:
            # Every service runs for good: one without a check that hangs is never restarted nor seen.
            (problems if spec.protect else warnings).append(
                f"{key}: no health check, so a worker that hangs is never restarted nor reported (Docker's health "
                "status, Kubernetes' liveness probe); give it one by its own command, e.g. health: {command: [sh, -c, "
                "'celery -A app inspect ping -d \"celery@$HOSTNAME\"']}" + ("" if spec.protect else
                                                                              " (a prod stack refuses it)"))
        words = [w.lower() for w in [*(svc.entrypoint or []), *(svc.command or [])]]
        if not svc.singleton and any("celery" in w for w in words) and ("beat" in words or "-b" in words):
            warnings.append(f"{key}: runs Celery beat, a scheduler: a rollout would run two for a while and each "
                            "task twice; set singleton: true (and run beat in a service of its own)")
    for db, b in spec.backups.items():
        if b.restore_from is not None and db in spec.databases:
            problem, warning = _restore_problem(f"{NAMESPACE}:backups.{db}.restore_from", b.restore_from,
                                                spec.databases[db].engine, [t.name for t in b.tiers])
            problems += [problem] if problem else []
            warnings += [warning] if warning else []
    if spec.proxy and spec.target == Target.KUBERNETES:
        for i, route in enumerate(spec.proxy.routes):
            limit = route.rate_limit
            if limit is None or limit.burst is None:
                continue
            rate, burst = limit.rate, limit.burst
            if burst >= rate and burst % rate == 0:
                continue
            options = sorted({max(rate, burst // rate * rate), (burst // rate + 1) * rate})
            problems.append(
                f"{NAMESPACE}:proxy.routes[{i}].rate_limit.burst = {burst}: ingress-nginx allows a burst only in whole "
                f"multiples of the rate ({rate}), and at least the rate, so this route would allow another burst on "
                f"Kubernetes than on Docker; set burst: {' or '.join(map(str, options))}, or leave burst out (it "
                "defaults to the rate)")
