"""Apply a recorded stack's Docker resources to a real Docker API (test harness, not a deploy tool).

The Pulumi engine can't run here, so the real-deploy tests take what the real program declares
(``berth.record``) and apply exactly that with the Docker SDK for Python, behaving like
pulumi-docker where it matters:

* dependency order from ``dependsOn``; a ``wait: true`` container blocks its dependents until healthy;
* networks, volumes: created once, outlive containers; images must already exist locally;
* a container is recreated only when its declared inputs (after secret substitution) or its image
  change: a hash of them is kept in the ``berth.applier.hash`` label;
* what is no longer declared is removed, except protected resources (an error, as with Pulumi) and
  ``retainOnDelete`` ones (forgotten, kept);
* ``destroy`` removes everything but protected resources;
* ``random:*`` and ``tls:*`` get real values (``secrets``, ``openssl``), kept in a JSON state file
  so a second apply reuses them; every ``<<berth:KIND:NAME>>`` placeholder in inputs is substituted
  from it (an unknown placeholder is an error).

A field it doesn't understand is an error naming the field: nothing is silently dropped.

Podman runs no health checks by itself (no systemd timers here): the applier drives them through
the libpod API (``/libpod/containers/NAME/healthcheck``, the same as ``podman healthcheck run``),
falling back to the ``podman`` CLI.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import string
import subprocess
import tarfile
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import docker
from docker.errors import APIError, ImageNotFound, NotFound

from berth.record import PLACEHOLDER_RE, Recording, Resource

HASH_LABEL = "berth.applier.hash"
URN_LABEL = "berth.applier.urn"

T_NETWORK = "docker:index/network:Network"
T_VOLUME = "docker:index/volume:Volume"
T_REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
T_IMAGE = "docker:index/image:Image"
T_CONTAINER = "docker:index/container:Container"
T_PASSWORD = "random:index/randomPassword:RandomPassword"
T_RANDOM_STRING = "random:index/randomString:RandomString"
T_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
T_SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"

#: Inputs understood per type (anything else is an error).
KNOWN_FIELDS: dict[str, set[str]] = {
    T_NETWORK: {"name", "internal", "labels", "driver", "options", "attachable", "ipv6", "checkDuplicate"},
    T_VOLUME: {"name", "labels", "driver", "driverOpts"},
    T_REMOTE_IMAGE: {"name", "keepLocally", "forceRemove"},
    T_IMAGE: {"imageName", "build", "skipPush", "buildOnPreview"},
    T_PASSWORD: {"length", "special", "upper", "lower", "numeric", "number", "minUpper", "minLower",
                 "minNumeric", "minSpecial", "overrideSpecial", "keepers"},
    T_RANDOM_STRING: {"length", "special", "upper", "lower", "numeric", "number", "minUpper", "minLower",
                      "minNumeric", "minSpecial", "overrideSpecial", "keepers"},
    T_PRIVATE_KEY: {"algorithm", "ecdsaCurve", "rsaBits"},
    T_SELF_SIGNED: {"privateKeyPem", "subject", "dnsNames", "ipAddresses", "validityPeriodHours",
                    "earlyRenewalHours", "allowedUses", "isCaCertificate", "setSubjectKeyId"},
    T_CONTAINER: {
        "name", "image", "hostname", "envs", "command", "entrypoints", "workingDir", "user", "labels",
        "ports", "volumes", "mounts", "networksAdvanced", "healthcheck", "restart", "maxRetryCount",
        "readOnly", "tmpfs", "memory", "memorySwap", "cpus", "capabilities", "securityOpts", "uploads",
        "logDriver", "logOpts", "destroyGraceSeconds", "mustRun", "removeVolumes", "wait", "waitTimeout",
        "rm", "start", "shmSize", "stopSignal", "stopTimeout", "hosts", "privileged", "init",
    },
}
NESTED_FIELDS = {
    "ports": {"internal", "external", "ip", "protocol"},
    "volumes": {"volumeName", "containerPath", "readOnly", "hostPath"},
    "mounts": {"target", "source", "type", "readOnly", "tmpfsOptions", "volumeOptions", "bindOptions"},
    "networksAdvanced": {"name", "aliases", "ipv4Address"},
    "healthcheck": {"tests", "interval", "timeout", "startPeriod", "retries"},
    "capabilities": {"drops", "adds"},
    "uploads": {"file", "content", "contentBase64", "executable"},
    "labels": {"label", "value"},
    "hosts": {"host", "ip"},
}


class ApplyError(Exception):
    pass


# ---------------------------------------------------------------- helpers


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}


def go_duration_ns(text: str) -> int:
    """``"1m30s"`` → nanoseconds (Go duration syntax, as the provider takes it)."""
    parts = _DUR.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ApplyError(f"not a Go duration: {text!r}")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:20]


def labels_dict(items: Optional[list[dict[str, str]]], where: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        check_fields(item, NESTED_FIELDS["labels"], f"{where}.labels[]")
        out[item["label"]] = item["value"]
    return out


def check_fields(obj: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise ApplyError(f"{where}: unsupported field(s) {unknown}: the applier would drop them; add support")


def _run(cmd: list[str], input_: Optional[bytes] = None) -> bytes:
    p = subprocess.run(cmd, input=input_, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise ApplyError(f"{' '.join(cmd)} failed: {p.stderr.decode(errors='replace')}")
    return p.stdout


# ---------------------------------------------------------------- state


class State:
    """Generated values (placeholder → value, with the hash of the inputs they came from) and the
    resources last applied (urn → kind, docker name, options), in a small JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data: dict[str, Any] = {"generated": {}, "resources": {}}
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
        self.lock = threading.Lock()

    def save(self) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True))
            os.chmod(tmp, 0o600)
            tmp.replace(self.path)

    @property
    def generated(self) -> dict[str, dict[str, Any]]:
        return self.data["generated"]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.data["resources"]

    def values(self) -> dict[str, str]:
        out = {}
        for entry in self.generated.values():
            out.update(entry["values"])
        return out


# ---------------------------------------------------------------- report


@dataclass
class ContainerTiming:
    name: str
    action: str  # created | recreated | unchanged | started
    start: float = 0.0
    running_at: float = 0.0
    healthy_at: Optional[float] = None

    @property
    def health_seconds(self) -> Optional[float]:
        return None if self.healthy_at is None else round(self.healthy_at - self.start, 1)


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    timings: dict[str, ContainerTiming] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def containers_changed(self) -> list[str]:
        return sorted(set(self.created) | set(self.recreated))

    def summary(self) -> str:
        lines = [f"apply: {self.seconds:.1f}s; created {sorted(self.created)}; recreated {sorted(self.recreated)}; "
                 f"removed {sorted(self.removed)}; unchanged {len(self.unchanged)}"]
        for t in sorted(self.timings.values(), key=lambda t: t.start):
            if t.action in ("created", "recreated", "started"):
                h = f"healthy after {t.health_seconds}s" if t.health_seconds is not None else "running (no health check)"
                lines.append(f"  {t.name:<32} {t.action:<9} {h}")
        return "\n".join(lines)


# ---------------------------------------------------------------- the applier


class DockerApplier:
    def __init__(self, state_path: Path, client: Optional[docker.DockerClient] = None,
                 config_secrets: Optional[dict[str, str]] = None, log: Callable[[str], None] = print,
                 health_poll: float = 1.0, parallel: int = 6):
        self.client = client or docker.from_env(timeout=300)
        self.api = self.client.api
        self.state = State(state_path)
        self.config_secrets = config_secrets or {}
        self.log = log
        self.health_poll = health_poll
        self.parallel = parallel

    # ------------------------------------------------------------ public

    def apply(self, rec: Recording) -> ApplyReport:
        t0 = time.monotonic()
        report = ApplyReport()
        declared = [r for r in rec.resources if r.custom]
        for r in declared:
            self._validate(r)
        order = topo_order(declared)
        by_urn = {r.urn: r for r in declared}
        # Remove what is no longer declared first (containers before networks/volumes), like a replace-free up.
        self._remove_undeclared(set(by_urn), report)
        done: set[str] = set()
        futures: dict[Future, str] = {}
        pending = [r.urn for r in order]
        errors: list[BaseException] = []
        with ThreadPoolExecutor(self.parallel) as pool:
            while pending or futures:
                ready = [u for u in pending if all(d in done for d in by_urn[u].depends_on if d in by_urn)]
                if errors:
                    ready = []
                for u in ready:
                    pending.remove(u)
                    futures[pool.submit(self._apply_one, by_urn[u], report)] = u
                if not futures:
                    if errors:
                        break
                    raise ApplyError(f"dependency cycle or unknown dependency among {pending}")
                finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                for f in finished:
                    u = futures.pop(f)
                    if f.exception():
                        errors.append(f.exception())
                    else:
                        done.add(u)
        self.state.save()
        report.seconds = round(time.monotonic() - t0, 1)
        if errors:
            raise errors[0]
        return report

    def destroy(self, keep_protected: bool = True) -> ApplyReport:
        """Remove everything applied (dependents first), except protected resources."""
        report = ApplyReport()
        self._remove_undeclared(set(), report, protected_ok=True, keep_protected=keep_protected)
        self.state.save()
        return report

    def substitute(self, value: Any) -> Any:
        """Inputs with every placeholder replaced by its real value (from the state)."""
        values = {**self.state.values(), **{f"<<berth:config:{k}>>": v for k, v in self.config_secrets.items()}}

        def sub(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: sub(x) for k, x in v.items()}
            if isinstance(v, list):
                return [sub(x) for x in v]
            if isinstance(v, str) and "<<berth:" in v:
                def one(m: re.Match) -> str:
                    if m.group(0) not in values:
                        raise ApplyError(f"no value for placeholder {m.group(0)} (not generated or configured)")
                    return values[m.group(0)]
                return PLACEHOLDER_RE.sub(one, v)
            return v

        return sub(value)

    def value_of(self, placeholder: str) -> str:
        return self.substitute(placeholder)

    # ------------------------------------------------------------ per resource

    def _validate(self, r: Resource) -> None:
        if r.type not in KNOWN_FIELDS:
            raise ApplyError(f"{r.name}: resource type {r.type} is not supported by the applier")
        check_fields(r.inputs, KNOWN_FIELDS[r.type], f"{r.type} {r.name}")
        if r.type == T_CONTAINER:
            for key, known in NESTED_FIELDS.items():
                v = r.inputs.get(key)
                items = v if isinstance(v, list) else ([v] if isinstance(v, dict) else [])
                for i, item in enumerate(items):
                    check_fields(item, known, f"container {r.name}.{key}[{i}]")
            if r.inputs.get("wait") and not r.inputs.get("healthcheck"):
                raise ApplyError(f"container {r.name}: wait=true without a healthcheck fails on the provider")

    def _apply_one(self, r: Resource, report: ApplyReport) -> None:
        if r.type in (T_PASSWORD, T_RANDOM_STRING):
            self._random(r)
        elif r.type == T_PRIVATE_KEY:
            self._private_key(r)
        elif r.type == T_SELF_SIGNED:
            self._self_signed(r)
        elif r.type == T_NETWORK:
            self._network(r)
        elif r.type == T_VOLUME:
            self._volume(r)
        elif r.type in (T_REMOTE_IMAGE, T_IMAGE):
            self._image(r)
        elif r.type == T_CONTAINER:
            self._container(r, report)
        else:  # pragma: no cover - _validate refused it
            raise ApplyError(r.type)

    def _remember(self, r: Resource, kind: str, name: str, **extra: Any) -> None:
        with self.state.lock:
            self.state.resources[r.urn] = {
                "kind": kind, "name": name, "protect": r.protect, "retainOnDelete": r.retain_on_delete,
                "destroyGrace": r.inputs.get("destroyGraceSeconds", 0), "removeVolumes": r.inputs.get("removeVolumes", True),
                "dependsOn": sorted(r.depends_on), **extra,
            }

    # random / tls

    def _generated(self, r: Resource, make: Callable[[], dict[str, str]]) -> None:
        h = digest(self.substitute(r.inputs))
        with self.state.lock:
            entry = self.state.generated.get(r.urn)
        if entry is None or entry["hash"] != h:
            entry = {"hash": h, "values": make()}
            with self.state.lock:
                self.state.generated[r.urn] = entry
            self.state.save()
        self._remember(r, "generated", r.name)

    def _random(self, r: Resource) -> None:
        i = r.inputs

        def make() -> dict[str, str]:
            alphabet = ""
            if i.get("upper", True):
                alphabet += string.ascii_uppercase
            if i.get("lower", True):
                alphabet += string.ascii_lowercase
            if i.get("numeric", i.get("number", True)):
                alphabet += string.digits
            if i.get("special", True):
                alphabet += i.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
            n = int(i["length"])
            while True:
                v = "".join(secrets.choice(alphabet) for _ in range(n))
                if (sum(c.isupper() for c in v) >= i.get("minUpper", 0) and sum(c.islower() for c in v) >= i.get("minLower", 0)
                        and sum(c.isdigit() for c in v) >= i.get("minNumeric", 0)):
                    break
            kind = "password" if r.type == T_PASSWORD else "random"
            return {f"<<berth:{kind}:{r.name}>>": v}

        self._generated(r, make)

    def _private_key(self, r: Resource) -> None:
        i = r.inputs

        def make() -> dict[str, str]:
            algo = i.get("algorithm", "RSA")
            if algo == "ECDSA":
                curve = {"P224": "P-224", "P256": "P-256", "P384": "P-384", "P521": "P-521"}[i.get("ecdsaCurve", "P224")]
                key = _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}"])
            elif algo == "RSA":
                key = _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{i.get('rsaBits', 2048)}"])
            elif algo == "ED25519":
                key = _run(["openssl", "genpkey", "-algorithm", "ED25519"])
            else:
                raise ApplyError(f"{r.name}: algorithm {algo} not supported")
            pub = _run(["openssl", "pkey", "-pubout"], key)
            return {f"<<berth:tls-key:{r.name}>>": key.decode(), f"<<berth:tls-public:{r.name}>>": pub.decode()}

        self._generated(r, make)

    def _self_signed(self, r: Resource) -> None:
        i = self.substitute(r.inputs)

        def make() -> dict[str, str]:
            subj = i.get("subject") or {}
            parts = {"commonName": "CN", "organization": "O", "organizationalUnit": "OU", "country": "C",
                     "locality": "L", "province": "ST"}
            check_fields(subj, set(parts), f"tls cert {r.name}.subject")
            subject = "".join(f"/{parts[k]}={v}" for k, v in subj.items()) or "/CN=berth"
            san = [f"DNS:{d}" for d in i.get("dnsNames", [])] + [f"IP:{a}" for a in i.get("ipAddresses", [])]
            uses = {"key_encipherment": "keyEncipherment", "digital_signature": "digitalSignature",
                    "cert_signing": "keyCertSign", "crl_signing": "cRLSign"}
            ext_uses = {"server_auth": "serverAuth", "client_auth": "clientAuth"}
            for u in i.get("allowedUses", []):
                if u not in uses and u not in ext_uses:
                    raise ApplyError(f"tls cert {r.name}: allowed use {u!r} not supported")
            ku = [uses[u] for u in i.get("allowedUses", []) if u in uses]
            eku = [ext_uses[u] for u in i.get("allowedUses", []) if u in ext_uses]
            days = max(1, -(-int(i.get("validityPeriodHours", 24)) // 24))
            with tempfile.TemporaryDirectory() as d:
                key = Path(d) / "key.pem"
                key.write_text(i["privateKeyPem"])
                cmd = ["openssl", "req", "-x509", "-new", "-key", str(key), "-subj", subject, "-days", str(days),
                       "-sha256"]
                if san:
                    cmd += ["-addext", "subjectAltName=" + ",".join(san)]
                if ku:
                    cmd += ["-addext", "keyUsage=critical," + ",".join(ku)]
                if eku:
                    cmd += ["-addext", "extendedKeyUsage=" + ",".join(eku)]
                cmd += ["-addext", f"basicConstraints=critical,CA:{'TRUE' if i.get('isCaCertificate') else 'FALSE'}"]
                cert = _run(cmd)
            return {f"<<berth:tls-cert:{r.name}>>": cert.decode()}

        self._generated(r, make)

    # docker objects

    def _network(self, r: Resource) -> None:
        i = r.inputs
        name = i.get("name") or r.name
        labels = {**labels_dict(i.get("labels"), f"network {r.name}"), URN_LABEL: r.urn}
        spec = {"internal": bool(i.get("internal", False)), "driver": i.get("driver", "bridge"),
                "options": i.get("options") or {}, "ipv6": bool(i.get("ipv6", False)), "labels": labels}
        h = digest(spec)
        existing = self.client.networks.list(names=[name])
        existing = [n for n in existing if n.name == name]
        if existing and existing[0].attrs.get("Labels", {}).get(HASH_LABEL) != h:
            raise ApplyError(f"network {name} exists with other settings (or not created by the applier): "
                             "the provider would replace it; remove it first")
        if not existing:
            self.client.networks.create(name, driver=spec["driver"], internal=spec["internal"], options=spec["options"],
                                        enable_ipv6=spec["ipv6"], labels={**labels, HASH_LABEL: h},
                                        attachable=i.get("attachable"))
            self.log(f"network {name}: created")
        self._remember(r, "network", name)

    def _volume(self, r: Resource) -> None:
        i = r.inputs
        name = i.get("name")
        if not name:
            raise ApplyError(f"volume {r.name}: no explicit name (an auto-named volume comes back empty on replace)")
        labels = {**labels_dict(i.get("labels"), f"volume {r.name}"), URN_LABEL: r.urn}
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, driver=i.get("driver", "local"), driver_opts=i.get("driverOpts") or {},
                                       labels=labels)
            self.log(f"volume {name}: created")
        self._remember(r, "volume", name)

    def _image(self, r: Resource) -> None:
        ref = r.inputs.get("name") or r.inputs.get("imageName")
        try:
            img = self.client.images.get(ref)
        except ImageNotFound:
            raise ApplyError(f"image {ref} ({r.name}) is not in the local image store; build it first "
                             "(bash tests/images/build.sh) — there is no registry to pull from") from None
        self._remember(r, "image", ref, imageId=img.id)

    # containers

    def container_spec(self, r: Resource) -> dict[str, Any]:
        """The substituted inputs plus the image's id: what decides a replacement."""
        i = self.substitute(r.inputs)
        try:
            image_id = self.client.images.get(i["image"]).id
        except ImageNotFound:
            raise ApplyError(f"container {r.name}: image {i['image']} is not local") from None
        return {"inputs": i, "imageId": image_id}

    def _container(self, r: Resource, report: ApplyReport) -> None:
        spec = self.container_spec(r)
        i = spec["inputs"]
        name = i["name"]
        h = digest(spec)
        timing = ContainerTiming(name, "unchanged", start=time.monotonic())
        existing = self._get_container(name)
        if existing is not None and existing.labels.get(HASH_LABEL) == h:
            existing.reload()
            if i.get("mustRun", True) and existing.status != "running" and i.get("restart") != "no":
                existing.start()
                timing.action = "started"
                report.started.append(name)
            else:
                report.unchanged.append(name)
                report.timings[name] = timing
                self._remember(r, "container", name, hash=h)
                return
        else:
            if existing is not None:
                self._remove_container(existing, r.inputs.get("destroyGraceSeconds", 0), r.inputs.get("removeVolumes", True))
                timing.action = "recreated"
                report.recreated.append(name)
            else:
                timing.action = "created"
                report.created.append(name)
            timing.start = time.monotonic()
            container = self._create(r, i, h)
            if i.get("start", True):
                container.start()
        timing.running_at = time.monotonic()
        report.timings[name] = timing
        self._remember(r, "container", name, hash=h)
        if i.get("healthcheck") and i.get("mustRun", True):
            self._wait_healthy(name, i, timing, block=bool(i.get("wait")))
        self.log(f"container {name}: {timing.action}"
                 + (f", healthy after {timing.health_seconds}s" if timing.health_seconds is not None else ""))

    def _create(self, r: Resource, i: dict[str, Any], h: str):
        api = self.api
        labels = {**labels_dict(i.get("labels"), f"container {r.name}"), HASH_LABEL: h, URN_LABEL: r.urn}
        port_bindings: dict[str, Any] = {}
        exposed = []
        for p in i.get("ports") or []:
            key = f"{p['internal']}/{p.get('protocol', 'tcp')}"
            exposed.append((p["internal"], p.get("protocol", "tcp")))
            port_bindings[key] = (p.get("ip", "0.0.0.0"), p["external"]) if p.get("external") else None
        binds = {}
        for v in i.get("volumes") or []:
            src = v.get("volumeName") or v.get("hostPath")
            if not src:
                raise ApplyError(f"container {r.name}: a volume without volumeName/hostPath")
            binds[src] = {"bind": v["containerPath"], "mode": "ro" if v.get("readOnly") else "rw"}
        mounts = []
        for m in i.get("mounts") or []:
            if m.get("volumeOptions") or m.get("bindOptions"):
                raise ApplyError(f"container {r.name}: mounts volumeOptions/bindOptions not supported")
            tmpfs_opts = m.get("tmpfsOptions") or {}
            mounts.append(docker.types.Mount(m["target"], m.get("source"), type=m.get("type", "volume"),
                                             read_only=bool(m.get("readOnly")), tmpfs_size=tmpfs_opts.get("sizeBytes"),
                                             tmpfs_mode=tmpfs_opts.get("mode")))
        restart = i.get("restart", "no")
        restart_policy = None if restart == "no" else {"Name": restart, "MaximumRetryCount": i.get("maxRetryCount", 0)}
        caps = i.get("capabilities") or {}
        log_config = None
        if i.get("logDriver"):
            log_config = docker.types.LogConfig(type=i["logDriver"], config=i.get("logOpts") or {})
        memory = i.get("memory")
        swap = i.get("memorySwap")
        host_config = api.create_host_config(
            binds=binds or None,
            mounts=mounts or None,
            port_bindings=port_bindings or None,
            restart_policy=restart_policy,
            read_only=bool(i.get("readOnly")),
            tmpfs=i.get("tmpfs") or None,
            mem_limit=f"{memory}m" if memory else None,
            memswap_limit=(f"{swap}m" if swap and swap > 0 else swap) if swap is not None else None,
            nano_cpus=int(round(float(i["cpus"]) * 1e9)) if i.get("cpus") else None,
            cap_drop=caps.get("drops") or None,
            cap_add=caps.get("adds") or None,
            security_opt=i.get("securityOpts") or None,
            log_config=log_config,
            auto_remove=bool(i.get("rm")),
            shm_size=i.get("shmSize"),
            privileged=bool(i.get("privileged")),
            init=i.get("init"),
            extra_hosts={h["host"]: h["ip"] for h in i.get("hosts") or []} or None,
        )
        nets = i.get("networksAdvanced") or []
        networking_config = None
        if nets:
            first = nets[0]
            networking_config = api.create_networking_config(
                {first["name"]: api.create_endpoint_config(aliases=first.get("aliases"),
                                                           ipv4_address=first.get("ipv4Address"))})
            host_config["NetworkMode"] = first["name"]
        healthcheck = None
        if i.get("healthcheck"):
            hc = i["healthcheck"]
            healthcheck = {
                "test": hc["tests"],
                "interval": go_duration_ns(hc.get("interval", "0s")),
                "timeout": go_duration_ns(hc.get("timeout", "0s")),
                "start_period": go_duration_ns(hc.get("startPeriod", "0s")),
                "retries": hc.get("retries", 0),
            }
        created = api.create_container(
            image=i["image"],
            name=i["name"],
            command=i.get("command"),
            entrypoint=i.get("entrypoints"),
            environment=i.get("envs") or None,
            user=i.get("user"),
            hostname=i.get("hostname"),
            working_dir=i.get("workingDir"),
            labels=labels,
            ports=exposed or None,
            host_config=host_config,
            networking_config=networking_config,
            healthcheck=healthcheck,
            stop_signal=i.get("stopSignal"),
            stop_timeout=i.get("stopTimeout"),
        )
        cid = created["Id"]
        for n in nets[1:]:
            api.connect_container_to_network(cid, n["name"], aliases=n.get("aliases"), ipv4_address=n.get("ipv4Address"))
        if i.get("uploads"):
            self._upload(r, cid, i)
        return self.client.containers.get(cid)

    def _upload(self, r: Resource, cid: str, i: dict[str, Any]) -> None:
        """Uploads of a created (not yet started) container, sent exactly as the real provider sends
        them (terraform-provider-docker, which pulumi-docker wraps): for each upload, a tar with one
        entry named by the file's absolute path (mode 0744 if executable, else 0644), extracted at
        ``/`` (``CopyToContainer(ctx, id, "/", tar)``). Docker refuses that extraction point for a
        read-only root ("container rootfs is marked read-only"); Podman accepts it (the file then
        lands in the image layer): the applier refuses it like Docker."""
        if i.get("readOnly"):
            raise ApplyError(f"container {r.name}: uploads {sorted(u['file'] for u in i['uploads'])} into a "
                             "read-only root: Docker refuses them (the provider extracts at '/')")
        for u in i["uploads"]:
            if not self.api.put_archive(cid, "/", upload_tar(u)):
                raise ApplyError(f"container {r.name}: upload of {u['file']} refused")

    def _wait_healthy(self, name: str, i: dict[str, Any], timing: ContainerTiming, block: bool) -> None:
        timeout = float(i.get("waitTimeout") or 60)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            c = self.client.containers.get(name)
            if c.status in ("exited", "dead"):
                raise ApplyError(f"container {name} exited ({c.attrs['State'].get('ExitCode')}) before healthy:\n"
                                 + c.logs(tail=40).decode(errors="replace"))
            status = self.run_healthcheck(name)
            if status == "healthy":
                timing.healthy_at = time.monotonic()
                return
            last = status
            time.sleep(self.health_poll)
        logs = self.client.containers.get(name).logs(tail=40).decode(errors="replace")
        msg = f"container {name}: not healthy after {timeout:.0f}s (last status {last!r}); logs:\n{logs}"
        if block:
            raise ApplyError(msg)
        self.log(msg)

    def run_healthcheck(self, name: str) -> str:
        """Run the container's health check once (what Podman's timers would do) and return the status."""
        url = f"{self.api.base_url}/v4.0.0/libpod/containers/{name}/healthcheck"
        try:
            resp = self.api.get(url, timeout=60)
            if resp.status_code == 200:
                return (resp.json() or {}).get("Status", "")
        except Exception:  # noqa: BLE001 - fall back to the CLI
            pass
        p = subprocess.run(["podman", "healthcheck", "run", name], capture_output=True, text=True, timeout=60)
        if p.returncode == 0:
            return "healthy"
        c = self.client.containers.get(name)
        return (c.attrs.get("State", {}).get("Health") or {}).get("Status", "starting")

    # ------------------------------------------------------------ removal

    def _get_container(self, name: str):
        try:
            return self.client.containers.get(name)
        except NotFound:
            return None

    def _remove_container(self, c, grace: int, remove_volumes: bool) -> None:
        try:
            if c.status == "running":
                c.stop(timeout=grace or 0)
            c.remove(v=bool(remove_volumes), force=True)
        except NotFound:
            pass

    def _remove_undeclared(self, declared: set[str], report: ApplyReport, protected_ok: bool = False,
                           keep_protected: bool = True) -> None:
        gone = {u: e for u, e in self.state.resources.items() if u not in declared}
        if not gone:
            return
        protected = [e["name"] for u, e in gone.items() if e["protect"] and keep_protected]
        if protected and not protected_ok:
            raise ApplyError(f"resources {protected} are protected and no longer declared: "
                             "unprotect them first (as Pulumi would refuse)")
        rank = {"container": 0, "network": 1, "volume": 2, "image": 3, "generated": 4}
        for u, e in sorted(gone.items(), key=lambda kv: (rank[kv[1]["kind"]], kv[1]["name"])):
            if e["protect"] and keep_protected:
                report.kept.append(e["name"])
                continue
            if e["retainOnDelete"]:
                report.kept.append(e["name"])
            elif e["kind"] == "container":
                c = self._get_container(e["name"])
                if c is not None:
                    self._remove_container(c, e.get("destroyGrace", 0), e.get("removeVolumes", True))
            elif e["kind"] == "network":
                for n in self.client.networks.list(names=[e["name"]]):
                    if n.name == e["name"]:
                        n.remove()
            elif e["kind"] == "volume":
                try:
                    self.client.volumes.get(e["name"]).remove(force=True)
                except NotFound:
                    pass
            elif e["kind"] == "generated":
                self.state.generated.pop(u, None)
            # images: keepLocally — left in the local store, only forgotten.
            if e["kind"] not in ("image", "generated") and e["name"] not in report.kept:
                report.removed.append(e["name"])
                self.log(f"{e['kind']} {e['name']}: removed")
            elif e["name"] in report.kept:
                self.log(f"{e['kind']} {e['name']}: kept (protected or retainOnDelete)")
            del self.state.resources[u]
        self.state.save()


def upload_content(u: dict[str, Any]) -> bytes:
    import base64

    return base64.b64decode(u["contentBase64"]) if "contentBase64" in u else u["content"].encode()


def upload_tar(u: dict[str, Any]) -> bytes:
    """The tar the provider sends for one upload: one entry, named by the absolute path, no parent
    directory entries (the daemon creates missing parents), mode 0744 executable else 0644."""
    if not u["file"].startswith("/"):
        raise ApplyError(f"upload {u['file']}: not an absolute path")
    data = upload_content(u)
    info = tarfile.TarInfo(u["file"])
    info.size = len(data)
    info.mode = 0o744 if u.get("executable") else 0o644
    info.mtime = 0
    try:
        header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    except ValueError:  # a name too long for ustar: Go's writer switches to PAX too
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")
    # Like Go's archive/tar: data padded to 512-byte blocks, then two zero blocks, and nothing more.
    # (Python's tarfile pads the archive to a 10 KiB record; Podman's copier subprocess stops reading
    # after the end-of-archive blocks, and Podman then fails the upload now and then with
    # "passing bulk input to subprocess: write |1: broken pipe".)
    pad = -len(data) % tarfile.BLOCKSIZE
    return header + data + b"\0" * pad + b"\0" * (2 * tarfile.BLOCKSIZE)


def topo_order(resources: list[Resource]) -> list[Resource]:
    by_urn = {r.urn: r for r in resources}
    out: list[Resource] = []
    state: dict[str, int] = {}

    def visit(u: str) -> None:
        if state.get(u) == 2:
            return
        if state.get(u) == 1:
            raise ApplyError(f"dependency cycle at {u}")
        state[u] = 1
        for d in sorted(by_urn[u].depends_on):
            if d in by_urn:
                visit(d)
        state[u] = 2
        out.append(by_urn[u])

    for u in sorted(by_urn):
        visit(u)
    return out


def stack_leftovers(client: docker.DockerClient, stack_label: str) -> dict[str, list[str]]:
    """Containers, networks and volumes labelled ``berth.stack=<stack_label>``."""
    f = {"label": f"berth.stack={stack_label}"}
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters=f)),
        "networks": sorted(n.name for n in client.networks.list(filters=f)),
        "volumes": sorted(v.name for v in client.volumes.list(filters=f)),
    }


def force_cleanup(client: docker.DockerClient, stack_label: str) -> None:
    """Test teardown: remove every container, network and volume of the stack (protected or not)."""
    f = {"label": f"berth.stack={stack_label}"}
    for c in client.containers.list(all=True, filters=f):
        try:
            c.remove(force=True, v=True)
        except NotFound:
            pass
    for n in client.networks.list(filters=f):
        try:
            n.remove()
        except (NotFound, APIError):
            pass
    for v in client.volumes.list(filters=f):
        try:
            v.remove(force=True)
        except (NotFound, APIError):
            pass
