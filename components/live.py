"""Who owns what is already on the target: read before the stack declares anything, at preview and up.

Two stacks must never share objects. On Kubernetes, every object a stack applies carries its
owner (annotation ``berth.dev/stack``: organization/project/stack) and is applied with the stack's
own server-side-apply field manager, so that another stack's apply of the same object conflicts
(targets/kubernetes.py: field_manager). On Docker, every container, volume and network carries the
label ``berth.owner``. Those are the providers' guarantees, at ``up``; they say nothing at preview
(pulumi-kubernetes forces apply conflicts in its preview dry runs) and nothing at all for a Docker
volume (Docker hands out an existing volume of the requested name as it is, with its data). So the
program itself reads, before it declares anything:

* Kubernetes: the namespace. Another stack's namespace is refused; every object of this stack
  would land on names in it. One this stack owns is adopted (a retained prod brought back, README).
* Docker: the containers, volumes and networks labelled with this stack's prefix (``berth.stack``).
  One labelled with another owner is refused; another stack with this ``berth:name`` made it.

Objects that Berth made before it labelled owners carry no owner: they are adopted with a warning.
Nothing is read under ``berth render``'s mocks (no target), nor when the target cannot be reached
(the provider then fails, or previews without it, as it would have). Read only: nothing is changed.

The clients are small on purpose (urllib and the Docker API over its socket), so that Berth needs no
Kubernetes or Docker client library: the kubeconfig forms of the common clusters (token, token file,
client certificate, exec credential plugins such as ``aws eks get-token``) and Docker hosts given as
``unix://``, ``tcp://`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``) or ``ssh://`` (through
``ssh ... docker system dial-stdio``, as the docker CLI and the provider do).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pulumi

from .spec import NAMESPACE

#: Docker: the label naming the stack that owns a container, volume or network.
OWNER_LABEL = "berth.owner"
#: Docker: the label every object of a stack carries, with its prefix (``berth:name``).
PREFIX_LABEL = "berth.stack"
#: Kubernetes: the annotation naming the owning stack (targets/kubernetes.py OWNER_ANNOTATION).
OWNER_ANNOTATION = "berth.dev/stack"
TIMEOUT = 10


class Unreachable(Exception):
    """The target cannot be read from here; nothing is checked."""


def stack_owner() -> str:
    """This stack as ``organization/project/stack`` (the local file backend's organization is
    ``organization``; so is the recording mocks' none)."""
    return f"{pulumi.get_organization() or 'organization'}/{pulumi.get_project()}/{pulumi.get_stack()}"


def under_mocks() -> bool:
    """Whether the program runs under Pulumi mocks (``berth render``, the unit tests): no target."""
    from pulumi.runtime import settings
    from pulumi.runtime.mocks import MockMonitor

    return isinstance(getattr(settings.SETTINGS, "monitor", None), MockMonitor)


# ---------------------------------------------------------------- what the checks decide (pure)


@dataclass(frozen=True)
class Found:
    """An object on the target that this stack would use, and who owns it."""

    kind: str  # container, volume, network, namespace
    name: str
    owner: Optional[str]


def ownership_problems(found: list[Found], owner: str, key: str, fix: str) -> tuple[list[str], list[str]]:
    """(problems, warnings): objects of another owner are refused naming it, ``key`` (the setting
    that put this stack on those names) and ``fix``; objects without an owner are adopted, said."""
    problems, warnings = [], []
    others: dict[str, list[Found]] = {}
    for f in found:
        if f.owner and f.owner != owner:
            others.setdefault(f.owner, []).append(f)
    for other, objs in sorted(others.items()):
        shown = ", ".join(f"{f.kind} {f.name}" for f in sorted(objs, key=lambda f: (f.kind, f.name))[:4])
        more = f" and {len(objs) - 4} more" if len(objs) > 4 else ""
        problems.append(f"{key}: {shown}{more} on the target belong to stack {other}, and this stack "
                        f"({owner}) would take them over; {fix}")
    legacy = [f for f in found if not f.owner]
    if legacy:
        shown = ", ".join(f"{f.kind} {f.name}" for f in sorted(legacy, key=lambda f: (f.kind, f.name))[:4])
        more = f" and {len(legacy) - 4} more" if len(legacy) > 4 else ""
        warnings.append(f"{key}: {shown}{more} on the target name no owning stack (made by an earlier Berth, or "
                        f"by hand); this stack ({owner}) adopts them")
    return problems, warnings


# ---------------------------------------------------------------- Docker


def _docker_host(host: Optional[str]) -> str:
    return host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=TIMEOUT)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self._path)


def _ssh_get(url: urllib.parse.SplitResult, path: str) -> Any:
    """One GET through ``docker system dial-stdio`` on the SSH host (HTTP/1.0: the answer ends
    with the connection)."""
    target = url.hostname or ""
    if url.username:
        target = f"{url.username}@{target}"
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={TIMEOUT}"]
    if url.port:
        argv += ["-p", str(url.port)]
    request = f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode()
    try:
        proc = subprocess.run([*argv, "--", target, "docker", "system", "dial-stdio"], input=request,
                              capture_output=True, timeout=3 * TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unreachable(f"ssh {target}: {exc}") from None
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/") or b" 200 " not in head.split(b"\r\n")[0]:
        raise Unreachable(f"ssh {target}: {proc.stderr.decode(errors='replace').strip() or head[:80]!r}")
    return json.loads(body or b"null")


def docker_get(host: Optional[str], path: str) -> Any:
    """GET ``path`` of the Docker API at ``host`` (Berth's ``berth:docker.host``, else ``DOCKER_HOST``)."""
    url = urllib.parse.urlsplit(_docker_host(host))
    if url.scheme == "ssh":
        return _ssh_get(url, path)
    conn: http.client.HTTPConnection
    if url.scheme == "unix":
        conn = _UnixConnection(url.path)
    elif url.scheme in ("tcp", "http", "https"):
        certs = os.environ.get("DOCKER_CERT_PATH")
        tls = url.scheme == "https" or bool(os.environ.get("DOCKER_TLS_VERIFY")) or bool(certs)
        if tls:
            ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem") if certs else None)
            if certs:
                ctx.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
            if not os.environ.get("DOCKER_TLS_VERIFY"):
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            conn = http.client.HTTPSConnection(url.hostname or "", url.port or 2376, timeout=TIMEOUT, context=ctx)
        else:
            conn = http.client.HTTPConnection(url.hostname or "", url.port or 2375, timeout=TIMEOUT)
    else:
        raise Unreachable(f"Docker host {url.geturl()}: scheme {url.scheme!r} is not read here")
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    except OSError as exc:
        raise Unreachable(f"Docker API at {url.geturl()}: {exc}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise Unreachable(f"Docker API at {url.geturl()}: {path} answered {resp.status}")
    return json.loads(body or b"null")


def docker_found(host: Optional[str], prefix: str) -> list[Found]:
    """The containers, volumes and networks labelled with ``prefix`` on the Docker host."""
    filters = urllib.parse.quote(json.dumps({"label": [f"{PREFIX_LABEL}={prefix}"]}))
    found = []
    for c in docker_get(host, f"/containers/json?all=1&filters={filters}") or []:
        labels = c.get("Labels") or {}
        found.append(Found("container", (c.get("Names") or ["?"])[0].lstrip("/"), labels.get(OWNER_LABEL)))
    for v in (docker_get(host, f"/volumes?filters={filters}") or {}).get("Volumes") or []:
        found.append(Found("volume", v["Name"], (v.get("Labels") or {}).get(OWNER_LABEL)))
    for n in docker_get(host, f"/networks?filters={filters}") or []:
        found.append(Found("network", n["Name"], (n.get("Labels") or {}).get(OWNER_LABEL)))
    return found


# ---------------------------------------------------------------- Kubernetes


def _kubeconfig_files() -> list[Path]:
    given = os.environ.get("KUBECONFIG")
    if given:
        return [Path(p).expanduser() for p in given.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _named(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return item.get(what) or {}
    raise Unreachable(f"kubeconfig: no {what} {name!r}")


def _exec_credential(spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env.update({e["name"]: e["value"] for e in spec.get("env") or []})
    try:
        proc = subprocess.run([spec["command"], *(spec.get("args") or [])], capture_output=True, text=True,
                              env=env, timeout=3 * TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unreachable(f"kubeconfig exec {spec.get('command')}: {exc}") from None
    if proc.returncode != 0:
        raise Unreachable(f"kubeconfig exec {spec.get('command')}: exited {proc.returncode}")
    return (json.loads(proc.stdout) or {}).get("status") or {}


def _pem_file(data: Optional[str], path: Optional[str], tmp: str, name: str) -> Optional[str]:
    if path:
        return path
    if data:
        out = os.path.join(tmp, name)
        with open(out, "wb") as f:
            f.write(base64.b64decode(data))
        return out
    return None


def kubernetes_get(context: Optional[str], path: str) -> Optional[dict[str, Any]]:
    """GET ``path`` of the API server of ``context`` (default: the current one), as the provider's
    kubeconfig resolution finds it (``KUBECONFIG``, else ``~/.kube/config``); None for 404."""
    import yaml

    config: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    current = None
    for f in _kubeconfig_files():
        try:
            doc = yaml.safe_load(f.read_text()) or {}
        except OSError:
            continue
        for part in ("clusters", "users", "contexts"):
            config[part] += doc.get(part) or []
        current = current or doc.get("current-context")
    name = context or current
    if not name:
        raise Unreachable("no kubeconfig context")
    ctx = _named(config["contexts"], name, "context")
    cluster = _named(config["clusters"], ctx.get("cluster", ""), "cluster")
    user = _named(config["users"], ctx.get("user", ""), "user") if ctx.get("user") else {}
    headers = {"Accept": "application/json"}
    with tempfile.TemporaryDirectory() as tmp:
        if user.get("exec"):
            cred = _exec_credential(user["exec"])
            if cred.get("token"):
                headers["Authorization"] = f"Bearer {cred['token']}"
            user = {**user, "client-certificate-data": None, "client-key-data": None}
            if cred.get("clientCertificateData"):
                for key, field in (("client-certificate", "clientCertificateData"), ("client-key", "clientKeyData")):
                    with open(os.path.join(tmp, key), "w") as out:
                        out.write(cred[field])
                    user[key] = os.path.join(tmp, key)
        elif user.get("auth-provider"):
            raise Unreachable("kubeconfig auth-provider users are not read here")
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user.get("username"):
            pair = f"{user['username']}:{user.get('password', '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        server = urllib.parse.urlsplit(cluster.get("server", ""))
        if server.scheme == "https":
            ca = _pem_file(cluster.get("certificate-authority-data"), cluster.get("certificate-authority"), tmp, "ca")
            tls = ssl.create_default_context(cafile=ca)
            if cluster.get("insecure-skip-tls-verify"):
                tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
            cert = _pem_file(user.get("client-certificate-data"), user.get("client-certificate"), tmp, "cert")
            key = _pem_file(user.get("client-key-data"), user.get("client-key"), tmp, "key")
            if cert and key:
                tls.load_cert_chain(cert, key)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                server.hostname or "", server.port or 443, timeout=TIMEOUT, context=tls)
        else:
            conn = http.client.HTTPConnection(server.hostname or "", server.port or 80, timeout=TIMEOUT)
        try:
            conn.request("GET", (server.path.rstrip("/") or "") + path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(f"API server {cluster.get('server')}: {exc}") from None
        finally:
            conn.close()
    if resp.status == 404:
        return None
    if resp.status != 200:
        raise Unreachable(f"API server {cluster.get('server')}: GET {path} answered {resp.status}")
    return json.loads(body)


def namespace_found(context: Optional[str], namespace: str) -> list[Found]:
    ns = kubernetes_get(context, f"/api/v1/namespaces/{urllib.parse.quote(namespace)}")
    if ns is None:
        return []
    md = ns.get("metadata") or {}
    labels = md.get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") != "berth":
        return []  # not Berth's (an administrator's namespace, say): who deploys into it is theirs to say
    return [Found("namespace", namespace, (md.get("annotations") or {}).get(OWNER_ANNOTATION))]


# ---------------------------------------------------------------- the check


def check_ownership(target: str, *, prefix: str, owner: str, name_set: bool, docker_host: Optional[str] = None,
                    context: Optional[str] = None, namespace: Optional[str] = None,
                    namespace_set: bool = False) -> tuple[list[str], list[str]]:
    """(problems, warnings) for this stack taking its names on the target; nothing under mocks or when
    the target cannot be read (said as a warning)."""
    if under_mocks():
        return [], []
    try:
        if target == "docker":
            found = docker_found(docker_host, prefix)
            key = (f"{NAMESPACE}:name = {prefix}" if name_set else
                   f"{NAMESPACE}:name (not set: the prefix is <project>-<stack> = {prefix})")
            fix = ("give this stack a prefix of its own: `pulumi config set berth:name <prefix>` (the containers, "
                   "networks and volumes are named after it; the volumes hold the other stack's data)")
        else:
            assert namespace is not None
            found = namespace_found(context, namespace)
            key = (f"{NAMESPACE}:kubernetes.namespace = {namespace}" if namespace_set else
                   f"{NAMESPACE}:kubernetes.namespace (not set: the namespace is the prefix, {namespace})")
            fix = ("give this stack a namespace of its own: `pulumi config set --path berth:kubernetes.namespace "
                   "<namespace>` (every object of the stack is named inside it)")
    except Unreachable as exc:
        # A warning, shown in previews and the PR comment: `pulumi preview` itself may pass without the
        # target (the Docker provider reads nothing to plan a create), and `pulumi up` will need it.
        pulumi.log.warn(f"the target could not be read, so whether another stack owns this stack's names "
                        f"was not checked: {exc}")
        return [], []
    return ownership_problems(found, owner, key, fix)
