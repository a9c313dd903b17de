"""Settings several components share: resources, health checks, autoscaling, secrets, metrics."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import model_validator

from .fields import Args, _field, _Model
from .names import OUTPUT_NAME, HttpPath, _matching
from .units import Cpu, Memory, Percent, Seconds, cpu_millis, memory_mib


class Resources(_Model):
    """CPU/memory requests and limits. Each component has its own defaults (see the reference)."""

    cpu: Cpu = _field("100m", "CPU request (Kubernetes); Docker reserves nothing.", unit="cores (250m, 1, 1.5)")
    memory: Memory = _field("128Mi", "Memory request (Kubernetes).", unit="Mi/Gi")
    cpu_limit: Cpu = _field("500m", "CPU limit; on Docker becomes `cpus`.", unit="cores (250m, 1, 1.5)")
    memory_limit: Memory = _field("256Mi", "Memory limit; on Docker becomes `memory` (no swap).",
                                  unit="Mi/Gi")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> "Resources":
        if cpu_millis(self.cpu_limit) < cpu_millis(self.cpu):
            raise ValueError(f"cpu_limit {self.cpu_limit} is below the request {self.cpu}; raise cpu_limit")
        if memory_mib(self.memory_limit) < memory_mib(self.memory):
            raise ValueError(
                f"memory_limit {self.memory_limit} is below the request {self.memory}; raise memory_limit"
            )
        return self


class Health(_Model):
    """A health check: an HTTP ``path`` on the service port, or an exec ``command``."""

    path: Optional[HttpPath] = _field(None, "HTTP path probed on the service port, e.g. /health.")
    command: Optional[Args] = _field(None, "Exec check instead of HTTP, e.g. [pg_isready, -q].")
    ready_path: Optional[HttpPath] = _field(None, "Readiness path if it differs (e.g. /ready); needs `port`.")
    interval: Seconds = _field(10, "Time between checks.", unit="seconds (15s, 1m, 90)", ge=1, le=3600)
    timeout: Seconds = _field(5, "Time before a check fails.", unit="seconds (15s, 1m, 90)", ge=1, le=600)
    retries: int = _field(5, "Failures in a row before unhealthy.", ge=1, le=100)
    start_period: Seconds = _field(20, "Grace time at start when failures do not count.",
                                   unit="seconds (15s, 1m, 90)", ge=0, le=3600)

    @model_validator(mode="after")
    def _one_kind(self) -> "Health":
        if (self.path is None) == (self.command is None):
            raise ValueError("give exactly one of `path` (HTTP) or `command` (exec)")
        return self


class Autoscale(_Model):
    """Horizontal autoscaling (Kubernetes HPA; Docker runs ``min`` replicas)."""

    min: int = _field(..., "Fewest replicas (Docker runs this many).", ge=1)
    max: int = _field(..., "Most replicas.", ge=1, le=100)
    cpu: Optional[Percent] = _field(70, "Target average CPU utilisation of the request.", unit="percent (70, 70%)",
                                    ge=1, le=100)
    memory: Optional[Percent] = _field(None, "Target average memory utilisation of the request.",
                                       unit="percent (80, 80%)", ge=1, le=100)
    scale_down_after: Seconds = _field(
        300, "How long the load must stay low before replicas are removed (the HPA's scale-down "
        "stabilization window; Kubernetes' own default).", unit="seconds (5m, 90s, 300)", ge=0, le=3600)

    @model_validator(mode="after")
    def _range(self) -> "Autoscale":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); make min <= max")
        return self


class GeneratedSecret(_Model):
    """A secret generated per stack with pulumi-random and kept secret."""

    generate: Literal[True] = _field(True, "Generate the value (pulumi-random).")
    length: int = _field(32, "Length of the generated value.", unit="characters", ge=16, le=128)
    export: Optional[Annotated[str, _matching(OUTPUT_NAME, "must be a stack output name such as mcp_api_key "
                                              "(letters, digits, _)")]] = _field(
        None, "Also export the value as this stack output (a secret), for another stack's from_stack.")


class StackSecret(_Model):
    """A secret another stack exports (a Pulumi StackReference): one value shared by two stacks,
    e.g. the API key an app on one host accepts and a client on another host sends."""

    from_stack: Annotated[str, _matching(r"^[^/\s]+/[^/\s]+/[^/\s]+$", "must name a stack as "
                                         "<organization>/<project>/<stack> (with the local file backend: "
                                         "organization/<project>/<stack>)")] = _field(
        ..., "The stack that exports the value: <organization>/<project>/<stack>; with `pulumi login --local`, "
        "organization/<project>/<stack>.")
    output: Annotated[str, _matching(OUTPUT_NAME, "must be a stack output name such as mcp_api_key "
                                     "(letters, digits, _)")] = _field(
        ..., "The output's name in that stack (exported there with secret_env: {VAR: {generate: true, export: NAME}}).")


class Metrics(_Model):
    """Where Prometheus scrapes the service."""

    path: HttpPath = _field("/metrics", "HTTP path of the Prometheus metrics.")
    port: Optional[int] = _field(None, "Port of the metrics; defaults to the service port.", ge=1, le=65535)
