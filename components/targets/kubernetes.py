"""Kubernetes target: workloads → Namespace, Secret, ConfigMap, Deployment/StatefulSet/CronJob,
Service, HPA, PodDisruptionBudget, NetworkPolicy.

``manifests`` is pure: it maps a Workload to plain manifest dicts (Outputs only inside Secret data)
and is unit tested without Pulumi and validated against the Kubernetes schemas. ``KubernetesTarget``
turns each dict into the typed pulumi-kubernetes resource. Shapes follow
shared/PROVIDER-PITFALLS.md: explicit names and namespaces, stable selectors, no ``replicas`` when an
HPA owns them, claim templates fixed at creation, data protected in prod.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from ..ir import Kind, Probe, Role, Workload
from ..spec import DEFAULT_EGRESS_EXCEPT, StackSpec

PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class KubeContext:
    namespace: str
    stack: str
    storage_class: Optional[str] = None
    ingress_namespace: str = "ingress-nginx"
    #: Refused to workloads with egress (``berth:kubernetes.egress_except``); METADATA_CIDRS are added.
    egress_except: tuple[str, ...] = DEFAULT_EGRESS_EXCEPT
    #: The Pulumi stack that owns every object (``organization/project/stack``): its annotation and
    #: its server-side-apply field manager (``field_manager``).
    owner: str = ""
    #: Where the pods' DNS server is (``berth:kubernetes.dns``): port 53 is allowed to it only.
    dns_namespace: str = "kube-system"
    dns_pod_labels: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)
    dns_addresses: tuple[str, ...] = ()

    @property
    def field_manager(self) -> str:
        return field_manager(self.owner)


def kube_context(spec: StackSpec, name: str, owner: str = "") -> KubeContext:
    """The context of a stack's objects: its namespace (``berth:kubernetes.namespace``, or the
    prefix), its owner and what its policies name."""
    k = spec.kubernetes
    return KubeContext(
        namespace=k.namespace or name,
        stack=name,
        storage_class=k.storage_class,
        ingress_namespace=k.ingress_namespace,
        egress_except=tuple(k.egress_except),
        owner=owner,
        dns_namespace=k.dns.namespace,
        dns_pod_labels=tuple(sorted(k.dns.pod_labels.items())),
        dns_addresses=tuple(k.dns.addresses),
    )


def selector(ctx: KubeContext, w: Workload) -> dict[str, str]:
    """Minimal, stable selector labels (a selector change would replace the workload)."""
    return {NAME: w.name, PART_OF: ctx.stack}


def labels(ctx: KubeContext, w: Workload) -> dict[str, str]:
    return {**selector(ctx, w), COMPONENT: w.role.value, MANAGED_BY: "berth", **w.labels}


#: One server-side-apply field manager per stack, the same for every object it declares, whatever
#: the stack's history. By default pulumi-kubernetes names a random manager per resource and keeps it
#: in the stack state; after `pulumi destroy`, a retained StatefulSet (or PVC, Namespace) is still
#: owned by that lost name, and the next `pulumi up` conflicts with it (".spec.volumeClaimTemplates"
#: on a StatefulSet). With the stack's own stable name the redeploy adopts what it retained.
#: Per stack, not one for all of Berth (as before: "berth"): with one shared name, a second stack
#: applying objects of the same names in the same namespace was their owner too, so its apply
#: silently overwrote the first stack's objects (and destroying either deleted what both used). Now
#: each stack's manager owns its fields, OWNER_ANNOTATION among them, whose value differs between
#: any two stacks: another stack's apply of the same object always conflicts (pulumi-kubernetes does
#: not force conflicts unless asked, `pulumi.com/patchForce`). That is the provider's guarantee at
#: `up`; the program refuses the common case, a namespace that another stack owns, already at preview
#: (components/live.py), with the key to change.
FIELD_MANAGER_ANNOTATION = "pulumi.com/patchFieldManager"
#: The stack that owns an object, as organization/project/stack.
OWNER_ANNOTATION = "berth.dev/stack"
#: The field manager of Berth before it had one per stack (see CHANGELOG: upgrading).
LEGACY_FIELD_MANAGER = "berth"


def field_manager(owner: str) -> str:
    """The server-side-apply field manager of the stack ``owner`` (organization/project/stack): it
    names the stack, so an apply conflict names the stack that owns the field. At most 128 printable
    characters (the API server's limit); a longer stack name is cut and keeps a hash of itself."""
    if not owner:
        return LEGACY_FIELD_MANAGER
    name = f"berth/{owner}"
    if len(name) > 128:
        name = name[:111] + "~" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return name


def meta(ctx: KubeContext, name: str, w: Optional[Workload] = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": ctx.namespace}
    m["labels"] = labels(ctx, w) if w else {PART_OF: ctx.stack, MANAGED_BY: "berth"}
    m.update(extra)
    return m


def probe_handler(p: Probe) -> dict[str, Any]:
    """What a probe runs: an exec command or an HTTP GET."""
    if p.command:
        cmd = list(p.command)
        if cmd[0] == "CMD-SHELL":
            cmd = ["sh", "-c", cmd[1]]
        elif cmd[0] == "CMD":
            cmd = cmd[1:]
        return {"exec": {"command": cmd}}
    return {"httpGet": {"path": p.path, "port": p.port}}


#: How often a readiness probe runs at most: every await on a workload (a StatefulSet ready, a
#: rollout done, the Job after the database, the apps after the Job) ends at a readiness probe, so its
#: period is time every deploy waits for nothing.
READINESS_PERIOD = 3
#: Failures of the liveness check beyond the health check's own retries: liveness gives up this many
#: intervals after readiness has taken the pod out of its Service.
LIVENESS_EXTRA_FAILURES = 3


def container_probes(w: Workload) -> dict[str, dict[str, Any]]:
    """Startup, liveness and readiness probes of a long-running workload.

    * readiness is the workload's health check (or ``readiness`` when it has its own): it decides
      who gets traffic. It starts at once and runs every READINESS_PERIOD seconds (each await of a
      deploy ends at a readiness probe), and marks the pod unready after ``retries`` × ``interval``
      of failures: an overloaded or degraded pod (its database down, say) is drained, not killed;
    * liveness asks only whether the process still answers: a TCP connect to its port when it has
      one (the health check itself when it has no port, or when ``readiness`` is separate), and it
      gives up LIVENESS_EXTRA_FAILURES intervals later than readiness: a pod that is slow, in
      recovery or overloaded is not restarted while readiness has taken it out of rotation;
    * a startup probe (the liveness check, every few seconds) holds liveness back until the
      workload has started, for as long as its start period and retries allow (Neo4j: 3.5 min), so
      a slow start (Postgres' crash recovery, a JVM warming up) is not killed in a loop.
    Liveness and readiness never run the same check (kube-score: pod-probes-identical)."""
    h = w.health
    if h is None or w.kind == Kind.CRON or w.one_shot:
        return {}
    port = h.port or (w.ports[0].port if w.ports else None)
    if w.readiness is not None:
        live = probe_handler(h)
    elif w.ports and port:
        live = {"tcpSocket": {"port": port}}
    else:
        live = probe_handler(h)
    ready = w.readiness or h
    out: dict[str, dict[str, Any]] = {}
    period = min(h.interval, 5)
    budget = max(h.start_period, 10) + h.retries * h.interval
    out["startupProbe"] = {**live, "periodSeconds": period, "timeoutSeconds": h.timeout,
                           "failureThreshold": -(-budget // period)}
    ready_window = ready.retries * ready.interval
    out["livenessProbe"] = {**live, "periodSeconds": h.interval, "timeoutSeconds": h.timeout,
                            "failureThreshold": -(-ready_window // h.interval) + LIVENESS_EXTRA_FAILURES}
    if w.ports:
        # Only a workload that serves gets a readiness probe: nothing routes to one without ports.
        ready_period = min(ready.interval, READINESS_PERIOD)
        out["readinessProbe"] = {**probe_handler(ready), "periodSeconds": ready_period,
                                 "timeoutSeconds": ready.timeout,
                                 "failureThreshold": -(-ready_window // ready_period)}
    return out


#: Each emptyDir (a writable path in a read-only root) holds at most this; a pod's ephemeral storage
#: (its emptyDirs and its logs) is limited to their sum plus EPHEMERAL_MARGIN, so a workload that
#: writes without end is evicted instead of filling the node's disk for every other pod.
EMPTY_DIR_SIZE = "64Mi"
EPHEMERAL_MARGIN_MIB = 512
EPHEMERAL_REQUEST = "64Mi"


def ephemeral_limit(w: Workload) -> str:
    return f"{64 * (len(w.tmpfs) + len(w.seeded)) + EPHEMERAL_MARGIN_MIB}Mi"


def seed_volume(i: int) -> str:
    return f"seed-{i}"


#: Where the init container sees the emptyDir it copies a seeded directory into.
SEED_MOUNT = "/berth-seed"


def secret_name(w: Workload) -> str:
    return f"{w.name}-env"


def files_name(w: Workload, secret: bool) -> str:
    return f"{w.name}-{'secret-files' if secret else 'files'}"


def _file_key(path: str) -> str:
    return path.strip("/").replace("/", "_")


def config_checksum(w: Workload) -> Optional[str]:
    """A checksum of plain files: pods roll when their config changes (named ConfigMaps don't)."""
    plain = [(f.path, f.content) for f in w.files if not f.secret and isinstance(f.content, str)]
    if not plain:
        return None
    return hashlib.sha256(json.dumps(sorted(plain)).encode()).hexdigest()[:16]


def pod_spec(ctx: KubeContext, w: Workload) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(w.env.items())]
    for k in sorted(w.secret_env):
        # Secrets reach pods by reference only: never a literal value in the pod spec.
        env.append({"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name(w), "key": w.secret_env[k].key}}})
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for i, path in enumerate(w.tmpfs):
        vname = f"tmp-{i}"
        volumes.append({"name": vname, "emptyDir": {"sizeLimit": EMPTY_DIR_SIZE}})
        mounts.append({"name": vname, "mountPath": path})
    for i, path in enumerate(w.seeded):
        volumes.append({"name": seed_volume(i), "emptyDir": {"sizeLimit": EMPTY_DIR_SIZE}})
        mounts.append({"name": seed_volume(i), "mountPath": path})
    for secret in (False, True):
        files = [f for f in w.files if f.secret == secret]
        if not files:
            continue
        vname = "secret-files" if secret else "files"
        items = [{"key": _file_key(f.path), "path": _file_key(f.path), "mode": f.mode} for f in files]
        src = (
            {"secret": {"secretName": files_name(w, True), "items": items, "defaultMode": 0o444}}
            if secret
            else {"configMap": {"name": files_name(w, False), "items": items, "defaultMode": 0o444}}
        )
        volumes.append({"name": vname, **src})
        for f in files:
            mounts.append({"name": vname, "mountPath": f.path, "subPath": _file_key(f.path), "readOnly": True})
    for v in w.volumes:
        mounts.append({"name": v.name, "mountPath": v.path})
        if w.kind != Kind.STATEFUL or v.shared:
            volumes.append({"name": v.name, "persistentVolumeClaim": {"claimName": v.name}})
    r = w.resources
    resources = {
        "requests": {"cpu": r.cpu, "memory": r.memory, "ephemeral-storage": EPHEMERAL_REQUEST},
        "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit, "ephemeral-storage": ephemeral_limit(w)},
    }
    security = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": w.read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"], **({"add": sorted(w.capabilities)} if w.capabilities else {})},
    }
    container: dict[str, Any] = {
        "name": w.name,
        "image": w.image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "resources": resources,
        "securityContext": security,
        "volumeMounts": mounts,
    }
    if w.entrypoint:
        container["command"] = list(w.entrypoint)
    if w.command:
        container["args"] = list(w.command)
    if w.ports:
        container["ports"] = [{"name": p.name, "containerPort": p.port, "protocol": "TCP"} for p in w.ports]
    container.update(container_probes(w))
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": w.user,
            "runAsGroup": w.group if w.group is not None else w.user,
            "fsGroup": w.fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": max(w.stop_grace_seconds, 30 if w.stateful_data else 10),
        "containers": [container],
        "volumes": volumes,
    }
    if w.seeded:
        # The image's own files of each seeded directory, copied into its emptyDir before the workload
        # starts (by the workload's image, with its user and limits): the entrypoint may then rewrite
        # them while the root stays read-only. A new pod starts again from the image's files. `cp -R`,
        # not `cp -a`: the emptyDir itself belongs to root (the pod's fsGroup may write it), and the
        # non-root user may not set its times or owner, which `cp -a` of `dir/.` tries and fails on
        # ("preserving times for '/berth-seed/0/.': Operation not permitted", seen with Neo4j's image).
        script = " && ".join(f"cp -R {shlex.quote(path.rstrip('/'))}/. {SEED_MOUNT}/{i}/"
                             for i, path in enumerate(w.seeded))
        spec["initContainers"] = [{
            "name": "seed",
            "image": w.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script],
            "resources": resources,
            "securityContext": {**security, "readOnlyRootFilesystem": True},
            "volumeMounts": [{"name": seed_volume(i), "mountPath": f"{SEED_MOUNT}/{i}"} for i in range(len(w.seeded))],
        }]
    spread = w.scaling.max if w.scaling else w.replicas
    if spread > 1:
        # Replicas prefer different nodes: one node going down takes only its share of them. Preferred,
        # not required, so that a cluster with fewer nodes than replicas still runs them all.
        spec["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"labelSelector": {"matchLabels": selector(ctx, w)},
                                "topologyKey": "kubernetes.io/hostname"},
        }]}}
    if w.kind == Kind.CRON or w.one_shot:
        spec["restartPolicy"] = "OnFailure"
    return spec


def pod_template(ctx: KubeContext, w: Workload) -> dict[str, Any]:
    annotations = {}
    checksum = config_checksum(w)
    if checksum:
        annotations["berth.dev/config-checksum"] = checksum
    md: dict[str, Any] = {"labels": labels(ctx, w)}
    if annotations:
        md["annotations"] = annotations
    return {"metadata": md, "spec": pod_spec(ctx, w)}


def workload_manifest(ctx: KubeContext, w: Workload) -> dict[str, Any]:
    tpl = pod_template(ctx, w)
    if w.kind == Kind.CRON:
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta(ctx, w.name, w),
            "spec": {
                "schedule": w.schedule,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"spec": {"backoffLimit": 2, "activeDeadlineSeconds": 6 * 3600, "template": tpl}},
            },
        }
    if w.one_shot:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            # A Job that failed (a pre-deploy dump on a full volume) stays failed: without this the
            # next `pulumi up`, after the cause was fixed, would find the same failed Job and stop
            # again. With it the failed Job is replaced, so it runs again.
            "metadata": meta(ctx, w.name, w, annotations={"pulumi.com/replaceUnready": "true"}),
            "spec": {"backoffLimit": 2, "template": tpl},
        }
    if w.kind == Kind.STATEFUL:
        claims = []
        for v in w.volumes:
            if v.shared:
                continue
            claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": v.size}}}
            if ctx.storage_class:
                claim_spec["storageClassName"] = ctx.storage_class
            claims.append({"metadata": {"name": v.name, "labels": selector(ctx, w)}, "spec": claim_spec})
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta(ctx, w.name, w),
            "spec": {
                "serviceName": w.name,
                "replicas": w.replicas,
                "selector": {"matchLabels": selector(ctx, w)},
                "podManagementPolicy": "OrderedReady",
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": tpl,
                "volumeClaimTemplates": claims,
            },
        }
    # A singleton (a scheduler) is stopped before its successor starts: a rolling update would run
    # both for a while. The others keep serving through a rollout: one extra pod at a time.
    strategy = ({"type": "Recreate"} if w.singleton
                else {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(ctx, w)},
        "revisionHistoryLimit": 10,
        "strategy": strategy,
        "template": tpl,
    }
    if w.scaling is None:
        # With an HPA the autoscaler owns spec.replicas; setting it would conflict on apply.
        spec["replicas"] = w.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(ctx, w.name, w), "spec": spec}


def service_manifest(ctx: KubeContext, w: Workload) -> Optional[dict[str, Any]]:
    if not w.ports or w.kind == Kind.CRON or w.one_shot:
        return None
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector(ctx, w),
        "ports": [{"name": p.name, "port": p.port, "targetPort": p.name, "protocol": "TCP"} for p in w.ports],
    }
    if w.kind == Kind.STATEFUL:
        # Headless: the StatefulSet's governing service; clients resolve the pod directly.
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = False
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(ctx, w.name, w), "spec": spec}


def hpa_manifest(ctx: KubeContext, w: Workload) -> Optional[dict[str, Any]]:
    if not w.scaling:
        return None
    metrics = []
    for resource, target in (("cpu", w.scaling.cpu), ("memory", w.scaling.memory)):
        if target:
            metrics.append(
                {"type": "Resource", "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}}}
            )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(ctx, w.name, w),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name},
            "minReplicas": w.scaling.min,
            "maxReplicas": w.scaling.max,
            "metrics": metrics,
            # Only when it differs from Kubernetes' default: the API server fills in the rest of
            # `behavior` itself, and a declared default would be one more field to diff.
            **({"behavior": {"scaleDown": {"stabilizationWindowSeconds": w.scaling.scale_down_after}}}
               if w.scaling.scale_down_after != 300 else {}),
        },
    }


def pdb_manifest(ctx: KubeContext, w: Workload) -> Optional[dict[str, Any]]:
    replicas = w.scaling.min if w.scaling else w.replicas
    if replicas < 2 or w.kind == Kind.CRON or w.one_shot:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(ctx, w.name, w),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(ctx, w)}},
    }


def network_policy_manifest(ctx: KubeContext, w: Workload, peers: dict[str, Workload]) -> Optional[dict[str, Any]]:
    """Ingress allowed only from ``allow_from`` workloads (plus the ingress controller for the
    proxy's backends); egress to the internet only for workloads that need it."""
    ingress = []
    if w.ports:
        sources: list[dict[str, Any]] = [
            {"podSelector": {"matchLabels": selector(ctx, peers[p])}} for p in sorted(w.allow_from) if p in peers
        ]
        if "ingress-controller" in w.allow_from:
            sources.append(
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ctx.ingress_namespace}}}
            )
        if sources:
            ingress.append({"from": sources, "ports": [{"port": p.port, "protocol": "TCP"} for p in w.ports]})
    # An empty rule list is written by omission: the API server stores no list, so declaring `[]`
    # would make every server-side apply a change (and every `pulumi up` a diff).
    spec: dict[str, Any] = {"podSelector": {"matchLabels": selector(ctx, w)}, "policyTypes": ["Ingress"]}
    if ingress:
        spec["ingress"] = ingress
    if w.egress:
        spec["policyTypes"].append("Egress")
        spec["egress"] = [egress_rule(ctx.egress_except)]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(ctx, w.name, w), "spec": spec}


#: The cloud metadata services hand out the node's cloud credentials: refused to every workload with
#: egress, whatever ``berth:kubernetes.egress_except`` says (AWS, GCP, Azure, Oracle, OpenStack:
#: 169.254.169.254; AWS over IPv6: fd00:ec2::254; Alibaba: 100.100.100.200).
METADATA_CIDRS = ("169.254.169.254/32", "100.100.100.200/32", "fd00:ec2::254/128")


def egress_rule(excepts: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Anywhere (IPv4 and IPv6) except ``excepts`` and the metadata addresses: an egress rule for a
    workload that calls external APIs. In-namespace peers and DNS stay allowed by the namespace's
    baseline policy (NetworkPolicies add up)."""
    import ipaddress

    nets = [ipaddress.ip_network(c) for c in excepts]
    for m in map(ipaddress.ip_network, METADATA_CIDRS):
        if not any(m.version == n.version and m.subnet_of(n) for n in nets):  # type: ignore[arg-type]
            nets.append(m)
    to = []
    for version, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        mine = sorted({n for n in nets if n.version == version})  # type: ignore[type-var]
        to.append({"ipBlock": {"cidr": everything, "except": [str(n) for n in mine]}})
    return {"to": to}


def namespace_manifests(ctx: KubeContext) -> list[dict[str, Any]]:
    """The namespace (Pod Security "restricted" enforced) and its baseline network policies."""
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ctx.namespace,
            **({"annotations": {OWNER_ANNOTATION: ctx.owner}} if ctx.owner else {}),
            "labels": {
                PART_OF: ctx.stack,
                MANAGED_BY: "berth",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
    }
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(ctx, "default-deny"),
        # No rules listed (not empty lists: see network_policy_manifest): deny all in and out.
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    internal = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(ctx, "allow-dns-and-internal-egress"),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [dns_rule(ctx), {"to": [{"podSelector": {}}]}],
        },
    }
    return [ns, deny, internal]


def dns_rule(ctx: KubeContext) -> dict[str, Any]:
    """DNS (port 53) to the cluster's DNS only: its pods (``berth:kubernetes.dns``; kube-system's
    ``k8s-app: kube-dns`` on kubeadm, k3s, EKS, GKE and AKS) and the addresses listed there. Port 53
    to anywhere would be a way out for any pod (DNS tunnelling to a server of one's own, or plain TCP
    on port 53), whatever its egress says."""
    to: list[dict[str, Any]] = [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ctx.dns_namespace}},
        "podSelector": {"matchLabels": dict(ctx.dns_pod_labels)},
    }]
    to += [{"ipBlock": {"cidr": cidr}} for cidr in ctx.dns_addresses]
    return {"to": to, "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def secret_manifests(ctx: KubeContext, w: Workload) -> list[dict[str, Any]]:
    out = []
    if w.secret_env:
        data = {sv.key: sv.value for sv in w.secret_env.values()}
        out.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta(ctx, secret_name(w), w), "type": "Opaque", "stringData": data})
    secret_files = [f for f in w.files if f.secret]
    if secret_files:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta(ctx, files_name(w, True), w),
                "type": "Opaque",
                "stringData": {_file_key(f.path): f.content for f in secret_files},
            }
        )
    plain_files = [f for f in w.files if not f.secret]
    if plain_files:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta(ctx, files_name(w, False), w),
                "data": {_file_key(f.path): f.content for f in plain_files},
            }
        )
    return out


def claim_manifests(ctx: KubeContext, w: Workload) -> list[dict[str, Any]]:
    """Standalone PVCs: volumes of non-StatefulSet workloads, and shared volumes."""
    out = []
    for v in w.volumes:
        if w.kind == Kind.STATEFUL and not v.shared:
            continue
        spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": v.size}}}
        if ctx.storage_class:
            spec["storageClassName"] = ctx.storage_class
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(ctx, v.name, w), "spec": spec})
    return out


def manifests(ctx: KubeContext, w: Workload, peers: dict[str, Workload]) -> list[dict[str, Any]]:
    """Every object for ``w``, in apply order."""
    out = [*secret_manifests(ctx, w), *claim_manifests(ctx, w), workload_manifest(ctx, w)]
    for m in (service_manifest(ctx, w), hpa_manifest(ctx, w), pdb_manifest(ctx, w), network_policy_manifest(ctx, w, peers)):
        if m:
            out.append(m)
    return out


# ---------------------------------------------------------------- resource creation


def _resource_class(api_version: str, kind: str):
    import pulumi_kubernetes as k8s

    table = {
        ("v1", "Namespace"): k8s.core.v1.Namespace,
        ("v1", "Secret"): k8s.core.v1.Secret,
        ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
        ("v1", "Service"): k8s.core.v1.Service,
        ("v1", "PersistentVolumeClaim"): k8s.core.v1.PersistentVolumeClaim,
        ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
        ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
        ("batch/v1", "CronJob"): k8s.batch.v1.CronJob,
        ("batch/v1", "Job"): k8s.batch.v1.Job,
        ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
        ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
        ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
        ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    }
    return table[(api_version, kind)]


#: The only capability Pod Security "restricted" lets a pod add back.
RESTRICTED_CAPABILITIES = ("NET_BIND_SERVICE",)

_STATEFUL_KINDS = {"PersistentVolumeClaim", "StatefulSet", "Namespace"}


class KubernetesTarget:
    """Creates Kubernetes objects for workloads in one namespace."""

    name = "kubernetes"

    def __init__(self, ctx: KubeContext, context: Optional[str], protect: bool, parent: pulumi.Resource):
        self.ctx = ctx
        self.protect = protect
        self.provider = None
        self.workloads: dict[str, Workload] = {}
        self._claims: dict[str, pulumi.Resource] = {}  # shared PVCs are created once
        if context:
            import pulumi_kubernetes as k8s

            self.provider = k8s.Provider("k8s", context=context, opts=pulumi.ResourceOptions(parent=parent))
        ns, *policies = namespace_manifests(ctx)
        self.namespace = self.create(ns, "namespace", parent, [], stateful=True)
        for p in policies:
            self.create(p, p["metadata"]["name"], parent, [self.namespace])

    def register(self, workloads: list[Workload]) -> None:
        """Workloads known up front, so network policies can name their peers."""
        for w in workloads:
            self.workloads[w.name] = w

    def create(
        self,
        manifest: dict[str, Any],
        name: str,
        parent: pulumi.Resource,
        depends_on: list[pulumi.Resource],
        stateful: bool = False,
        secret_checksum: Optional[pulumi.Output[str]] = None,
    ) -> pulumi.CustomResource:
        cls = _resource_class(manifest["apiVersion"], manifest["kind"])
        kwargs = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
        kwargs["metadata"] = with_owner(kwargs["metadata"], self.ctx)
        if secret_checksum is not None:
            kwargs = _with_secret_checksum(kwargs, secret_checksum)
        if "stringData" in kwargs:
            kwargs["string_data"] = pulumi.Output.secret(kwargs.pop("stringData"))
        keep = self.protect and stateful
        ignore = ["spec.volumeClaimTemplates"] if manifest["kind"] == "StatefulSet" else []
        opts = pulumi.ResourceOptions(
            parent=parent,
            provider=self.provider,
            depends_on=depends_on,
            protect=keep,
            retain_on_delete=keep,
            ignore_changes=ignore or None,
        )
        return cls(name, opts=opts, **kwargs)

    def deploy(self, w: Workload, parent: pulumi.Resource, depends_on: list[pulumi.Resource]) -> list[pulumi.Resource]:
        if w.build:
            raise ValueError(f"workload {w.name}: images are built on a Docker host only; give a registry image")
        extra = set(w.capabilities) - set(RESTRICTED_CAPABILITIES)
        if extra:
            raise ValueError(f"workload {w.name}: capabilities {sorted(extra)} are not admitted by Pod Security 'restricted'")
        self.workloads.setdefault(w.name, w)
        created: list[pulumi.Resource] = []
        deps = [self.namespace, *depends_on]
        for m in manifests(self.ctx, w, self.workloads):
            kind = m["kind"]
            if kind == "PersistentVolumeClaim" and m["metadata"]["name"] in self._claims:
                created.append(self._claims[m["metadata"]["name"]])
                continue
            res_name = f"{w.name}-{_KIND_SUFFIX[kind]}" if kind in _KIND_SUFFIX else m["metadata"]["name"]
            stateful = kind in _STATEFUL_KINDS and (w.stateful_data or kind == "PersistentVolumeClaim")
            checksum = secret_checksum(w) if kind in _POD_OWNERS else None
            res = self.create(m, res_name, parent, deps + [c for c in created if _is_config(c)], stateful=stateful,
                              secret_checksum=checksum)
            if kind == "PersistentVolumeClaim":
                self._claims[m["metadata"]["name"]] = res
            created.append(res)
        return created

    def create_ingress(self, manifest: dict[str, Any], parent: pulumi.Resource, depends_on: list[pulumi.Resource]):
        return self.create(manifest, manifest["metadata"]["name"] + "-ingress", parent, [self.namespace, *depends_on])


def with_owner(md: dict[str, Any], ctx: KubeContext) -> dict[str, Any]:
    """``metadata`` with the owning stack's annotation and its server-side-apply field manager (see
    ``field_manager``)."""
    owner = {OWNER_ANNOTATION: ctx.owner} if ctx.owner else {}
    return {**md, "annotations": {**(md.get("annotations") or {}), **owner,
                                  FIELD_MANAGER_ANNOTATION: ctx.field_manager}}


_KIND_SUFFIX = {
    "Deployment": "deployment",
    "StatefulSet": "statefulset",
    "CronJob": "cronjob",
    "Job": "job",
    "Service": "service",
    "HorizontalPodAutoscaler": "hpa",
    "PodDisruptionBudget": "pdb",
    "NetworkPolicy": "netpol",
}


_POD_OWNERS = {"Deployment", "StatefulSet", "CronJob", "Job"}


def secret_checksum(w: Workload) -> Optional[pulumi.Output[str]]:
    """A hash of the workload's secret values, so pods roll when a secret changes (a named Secret
    changes in place and running pods would keep the old value). The hash reveals nothing, so it is
    unsecreted: a secret annotation would hide the whole pod template in every diff."""
    values = [w.secret_env[k].value for k in sorted(w.secret_env)] + [f.content for f in w.files if f.secret]
    if not values:
        return None

    def digest(vals: list) -> str:
        return hashlib.sha256("\0".join(str(v) for v in vals).encode()).hexdigest()[:16]

    return pulumi.Output.unsecret(pulumi.Output.all(*values).apply(digest))


def _with_secret_checksum(kwargs: dict[str, Any], checksum: pulumi.Output[str]) -> dict[str, Any]:
    """A copy of the object's inputs with the checksum on its pod template (CronJobs: the job's)."""
    import copy

    out = copy.deepcopy({k: v for k, v in kwargs.items() if k != "spec"})
    spec = dict(kwargs["spec"])
    holder = spec
    if "jobTemplate" in spec:
        spec["jobTemplate"] = dict(spec["jobTemplate"])
        spec["jobTemplate"]["spec"] = holder = dict(spec["jobTemplate"]["spec"])
    holder["template"] = dict(holder["template"])
    holder["template"]["metadata"] = _annotate(holder["template"].get("metadata", {}), checksum)
    out["spec"] = spec
    return out


def _annotate(md: dict[str, Any], checksum: pulumi.Output[str]) -> dict[str, Any]:
    md = dict(md)
    md["annotations"] = {**md.get("annotations", {}), "berth.dev/secret-checksum": checksum}
    return md


def _is_config(res: pulumi.Resource) -> bool:
    import pulumi_kubernetes as k8s

    return isinstance(res, (k8s.core.v1.Secret, k8s.core.v1.ConfigMap, k8s.core.v1.PersistentVolumeClaim))
