"""The application model (``berth:services.NAME``): web apps, workers, schedulers and bots."""

from __future__ import annotations

from typing import Optional, Union

from pydantic import field_validator

from .fields import DOCKER_ONLY, Args, TextMap, _field, _Model
from .names import _ENV_RE, AbsPath, Image
from .shared import Autoscale, GeneratedSecret, Health, Metrics, Resources, StackSecret


class ServiceSpec(_Model):
    """An application container: web app (with ``port``), worker, scheduler or bot (without)."""

    image: Image = _field(..., "Image with a pinned tag or digest (not :latest).")
    command: Optional[Args] = _field(None, "Replaces the image's CMD (compose `command`).")
    entrypoint: Optional[Args] = _field(None, "Replaces the image's ENTRYPOINT; rarely needed.")
    port: Optional[int] = _field(None, "Container port; omit for workers/bots.", ge=1, le=65535)
    replicas: int = _field(1, "Replicas (Docker: containers); not with autoscale.", ge=1, le=100)
    autoscale: Optional[Autoscale] = _field(None, "Scale between min and max (Kubernetes HPA; Docker runs min); "
                                            "not with replicas.")
    singleton: bool = _field(False, "At most one container at any time, during a rollout too (a scheduler such as "
                             "Celery beat, which would run each task twice): Kubernetes replaces the pod with the "
                             "Recreate strategy, Docker removes the container before starting its successor. Not "
                             "with replicas or autoscale.")
    env: TextMap = _field(default_factory=dict, description="Plain environment variables.")
    secret_env: dict[str, Union[str, GeneratedSecret, StackSecret]] = _field(
        default_factory=dict,
        description="Env from secrets: VAR: a name in berth:secrets, VAR: {generate: true} (+ export: OUTPUT to "
                    "share it), or VAR: {from_stack: org/project/stack, output: OUTPUT} (another stack's export).",
    )
    uses: Union[list[str], dict[str, str]] = _field(
        default_factory=list,
        description="Stores to connect to; a list injects DATABASE_URL / MONGODB_URI / REDIS_URL / AMQP_URL / "
                    "NEO4J_URI (+ DATABASE_REPLICA_URL), a map store: VAR names the variable.",
    )
    depends_on: list[str] = _field(default_factory=list, description="Services or stores to start first.")
    health: Optional[Health] = _field(None, "Health check; defaults to HTTP GET /health when a port is set.")
    metrics: Optional[Metrics] = _field(None, "Prometheus scraping of the service.")
    resources: Resources = _field(Resources(), "CPU/memory of each replica.")
    run_as_user: int = _field(10001, "Non-root UID the container runs as.", ge=1)
    run_as_root: bool = _field(
        False, "Opt in to root (the policy pack blocks it unless allowed).", targets=DOCKER_ONLY,
        why="the stack's namespace enforces Pod Security 'restricted', which admits no root pods; build the image "
            "to run as a non-root user and remove run_as_root",
    )
    read_only_root: bool = _field(True, "Read-only root filesystem; writable_paths stay writable.")
    writable_paths: list[AbsPath] = _field(default_factory=lambda: ["/tmp"],
                                           description="Writable (tmpfs) paths in a read-only root.")
    egress: bool = _field(False, "May open connections outside the stack (a bot or worker calling an external "
                          "API); none unless asked. Kubernetes still refuses berth:kubernetes.egress_except.")
    public_url: Optional[str] = _field(None, "Reach an app on another host by URL (distributed stacks).")

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        name = v.split("@")[0].rsplit("/", 1)[-1]
        if "@sha256:" not in v and (":" not in name or name.endswith(":latest")):
            raise ValueError("pin the image to a tag or digest (e.g. myapp:1.4.2), not :latest or no tag")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not _ENV_RE.match(k):
                raise ValueError(f"env name {k!r} is not a valid variable name")
        return v

    @field_validator("uses")
    @classmethod
    def _uses_vars(cls, v: Union[list[str], dict[str, str]]) -> Union[list[str], dict[str, str]]:
        if isinstance(v, dict):
            for store, var in v.items():
                if not _ENV_RE.match(var):
                    raise ValueError(f"{store}: {var!r} is not a valid variable name")
        return v
