"""Where the stack runs (``berth:docker``, ``berth:kubernetes``) and how big the machines are."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import model_validator

from .fields import DOCKER_ONLY, KUBERNETES_ONLY, _field, _Model
from .names import DEFAULT_EGRESS_EXCEPT, Cidr, DnsLabel, DnsSubdomain, _matching
from .units import Cpu, Memory, cpu_millis, memory_mib


class DockerCapacity(_Model):
    """The Docker host's size, checked before anything is created (``components/capacity.py``).

    Docker enforces only limits, so limits are what is added up: every container of the stack
    (services at ``replicas`` or the autoscaler's ``min``, and Berth's own: exporters, Prometheus,
    Grafana, Pushgateway, backup scheduler and jobs, proxy, read replica, logging). Memory limits
    must fit what the host leaves for containers: memory cannot be taken back, and on Docker nothing
    protects a container when the host runs out (the kernel kills the largest process, often the
    database). CPU is not summed: a host with fewer CPUs than the limits add up to runs everything,
    more slowly; but no container's limit may exceed the host's CPUs (Docker refuses to create it).
    Two stacks on one host each declare their share.
    """

    cpus: Cpu = _field(..., "CPUs of the host (or of this stack's share of it).", unit="cores (2, 1.5, 500m)")
    memory: Memory = _field(..., "Memory of the host (or of this stack's share of it).", unit="Mi/Gi")
    reserved_memory: Memory = _field("256Mi", "Memory kept for the OS, the Docker daemon and anything else on the "
                                     "host that is not this stack.", unit="Mi/Gi")
    memory_overcommit: float = _field(
        1, "How far the containers' memory limits may add up beyond memory - reserved_memory: 1 = they must fit; "
        "1.5 accepts that they fit only if not all containers reach their limit at once.",
        unit="factor (1, 1.5)", ge=1, le=10)

    @model_validator(mode="after")
    def _room(self) -> "DockerCapacity":
        if cpu_millis(self.cpus) < 100:
            raise ValueError(f"cpus {self.cpus} is less than 0.1 CPU; give the host's CPUs, e.g. cpus: 2")
        if memory_mib(self.reserved_memory) >= memory_mib(self.memory):
            raise ValueError(f"reserved_memory {self.reserved_memory} leaves nothing of memory {self.memory} for "
                             "containers; lower reserved_memory or raise memory")
        return self


class KubernetesCapacity(_Model):
    """The cluster's nodes, checked before anything is created (``components/capacity.py``).

    The scheduler places pods by their requests: the stack's requests (every pod, Berth's own
    included, services at ``replicas`` or the autoscaler's ``min``; each CronJob and Job as one
    pod, since schedules may coincide and a pre-deploy dump runs while the stack runs) must fit
    the nodes' allocatable room, and each pod must fit one node. Limits are burst room above the
    requests: when a node runs short the kubelet evicts pods that use more than they requested, so
    memory limits may add up to ``memory_overcommit`` times the allocatable memory. CPU limits are
    not summed (CPU is throttled, never taken back by killing).
    """

    nodes: int = _field(1, "Nodes that run the stack's pods (all of the same size).", ge=1, le=1000)
    cpus: Cpu = _field(..., "CPUs of each node.", unit="cores (2, 1.5, 500m)")
    memory: Memory = _field(..., "Memory of each node.", unit="Mi/Gi")
    reserved_cpu: Cpu = _field("250m", "CPU of each node not for the stack: kubelet, container runtime, OS and the "
                               "cluster's own pods (DNS, ingress controller, cert-manager).",
                               unit="cores (250m, 1)")
    reserved_memory: Memory = _field("1Gi", "Memory of each node not for the stack: kubelet, container runtime, OS, "
                                     "eviction threshold and the cluster's own pods. `kubectl describe node` shows "
                                     "capacity - allocatable; add the requests of kube-system and ingress pods.",
                                     unit="Mi/Gi")
    memory_overcommit: float = _field(
        2, "How far the pods' memory limits may add up beyond the allocatable memory (requests must always fit): "
        "1 = limits must fit too.", unit="factor (1, 2)", ge=1, le=10)

    @model_validator(mode="after")
    def _room(self) -> "KubernetesCapacity":
        if memory_mib(self.reserved_memory) >= memory_mib(self.memory):
            raise ValueError(f"reserved_memory {self.reserved_memory} leaves nothing of memory {self.memory} for "
                             "pods; lower reserved_memory or raise memory")
        if cpu_millis(self.reserved_cpu) >= cpu_millis(self.cpus):
            raise ValueError(f"reserved_cpu {self.reserved_cpu} leaves nothing of cpus {self.cpus} for pods; "
                             "lower reserved_cpu or raise cpus")
        return self


class DockerSpec(_Model):
    """The Docker host."""

    host: Optional[Annotated[str, _matching(r"^(unix|tcp|ssh|npipe|http|https)://\S+$", "must be a Docker host "
                                            "URL: ssh://user@host, tcp://host:2376 or unix:///var/run/docker.sock")]] = _field(
        None, "Docker host, e.g. ssh://deploy@host; default: the local engine.", targets=DOCKER_ONLY)
    capacity: Optional[DockerCapacity] = _field(
        None, "Size of the host: the containers' memory limits must fit it (see README, capacity); none: not "
        "checked.", targets=DOCKER_ONLY)
    engine: Literal["docker", "podman"] = _field(
        "docker", "What serves the Docker API on the host: Docker Engine, or Podman's Docker-compatible API "
        "(they take a tmpfs' owner in different forms; see README, Docker Engine versions tested).",
        targets=DOCKER_ONLY)


class ClusterDns(_Model):
    """Where the pods' DNS server is: the namespace baseline allows port 53 to it only."""

    namespace: DnsLabel = _field("kube-system", "Namespace of the cluster's DNS pods.", targets=KUBERNETES_ONLY)
    pod_labels: dict[str, str] = _field(
        default_factory=lambda: {"k8s-app": "kube-dns"},
        description="Labels of the cluster's DNS pods (CoreDNS or kube-dns: k8s-app: kube-dns on kubeadm, k3s, EKS, "
                    "GKE and AKS).", targets=KUBERNETES_ONLY)
    addresses: list[Cidr] = _field(
        default_factory=list, description="DNS servers that are not pods of the cluster, allowed too: a node-local "
        "DNS cache (169.254.20.10/32), a DNS server on the nodes.", unit="CIDRs (169.254.20.10/32)",
        targets=KUBERNETES_ONLY)


class KubernetesSpec(_Model):
    """The cluster and namespace."""

    namespace: Optional[DnsLabel] = _field(None, "Namespace; defaults to the resource name prefix.",
                                           targets=KUBERNETES_ONLY)
    storage_class: Optional[DnsSubdomain] = _field(None, "StorageClass of the PVCs; default: the cluster's.",
                                                   targets=KUBERNETES_ONLY)
    context: Optional[str] = _field(None, "kubeconfig context; default: the current one.", targets=KUBERNETES_ONLY)
    ingress_namespace: DnsLabel = _field("ingress-nginx", "Namespace of the ingress controller (allowed in by "
                                         "NetworkPolicy).", targets=KUBERNETES_ONLY)
    capacity: Optional[KubernetesCapacity] = _field(
        None, "Size of the nodes: the pods' requests must fit them (see README, capacity); none: not checked.",
        targets=KUBERNETES_ONLY)
    # The API server cannot be named in a NetworkPolicy, and what a policy sees is not the `kubernetes`
    # Service's ClusterIP but the endpoint it is translated to, which each cluster puts elsewhere (a
    # control-plane node, a cloud's private or public endpoint: `kubectl get endpoints kubernetes -n
    # default`). Refusing the private ranges covers it on most clusters (kubeadm, k3s, private managed
    # endpoints) without asking; a public endpoint is one more entry here. Pods also get no service
    # account token (automountServiceAccountToken: false), so the API server would not know them anyway.
    egress_except: list[Cidr] = _field(
        default_factory=lambda: list(DEFAULT_EGRESS_EXCEPT),
        description="Addresses refused to services with egress (NetworkPolicy ipBlock except): the private and "
                    "link-local ranges, where the cluster's API server, nodes and cloud services live; add a public "
                    "API server endpoint (kubectl get endpoints kubernetes -n default). The cloud metadata addresses "
                    "(169.254.169.254, fd00:ec2::254, 100.100.100.200) are refused whatever this says.",
        unit="CIDRs (10.0.0.0/8, 203.0.113.7/32)", targets=KUBERNETES_ONLY)
    dns: ClusterDns = _field(ClusterDns(), "The cluster's DNS: the only place pods may send DNS queries (port 53) to; "
                             "any other address on port 53 is refused like any other egress.",
                             targets=KUBERNETES_ONLY)
