"""The cache model (``berth:caches.NAME``): Redis."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, field_validator, model_validator

from .fields import _field, _Model
from .names import Image
from .shared import Resources
from .units import Size, _redis_memory, redis_bytes


class CacheSpec(_Model):
    """A Redis cache with a password and AOF persistence. Defaults: Redis 7.2, 1Gi volume."""

    engine: Literal["redis"] = _field("redis", "Always redis.")
    version: str = _field("7.2", "Redis version (6.2 or later: Berth gives the apps and the exporter their own "
                          "ACL users); the image is redis:<version>.")
    image: Optional[Image] = _field(None, "Image override.")
    storage: Size = _field("1Gi", "Volume size for the append-only file.", unit="Mi/Gi")
    maxmemory: Optional[Annotated[str, BeforeValidator(_redis_memory)]] = _field(
        None, "Memory for data, below memory_limit; evicts least-recently-used keys when full. Unset: no limit.",
        unit="Redis size (256mb, 1gb; 256Mi → 256mb)",
    )
    resources: Resources = _field(Resources(cpu="100m", memory="128Mi", cpu_limit="500m", memory_limit="512Mi"),
                                  "CPU/memory of Redis; with maxmemory and no memory_limit, the limit is "
                                  "4/3 of maxmemory (at least 512Mi).")

    @field_validator("version")
    @classmethod
    def _acl_users(cls, v: str) -> str:
        """The apps' and the exporter's users need Redis ACLs with channel patterns (6.2)."""
        m = re.match(r"(\d+)(?:\.(\d+))?", v)
        if m and (int(m.group(1)), int(m.group(2) or 0)) < (6, 2):
            raise ValueError(f"Redis {v} is too old: Berth gives the apps and the exporter their own ACL users, "
                             "which need Redis 6.2 or later; set version to 7.2 (the default) or 6.2")
        return v

    @model_validator(mode="before")
    @classmethod
    def _room_for_maxmemory(cls, data: Any) -> Any:
        """Redis uses more than ``maxmemory`` (buffers, fragmentation, the AOF rewrite's fork): a
        container limit at or below it gets Redis killed instead of evicting. Without a limit of the
        user's own, the default grows to 4/3 of maxmemory (rounded up to 64Mi)."""
        if not isinstance(data, dict) or data.get("maxmemory") is None:
            return data
        given = data.get("resources")
        if given is not None and (not isinstance(given, dict) or "memory_limit" in given):
            return data
        try:
            need = redis_bytes(_redis_memory(data["maxmemory"])) * 4 / 3 / 1024 ** 2
        except ValueError:
            return data  # the field validator reports it
        limit = max(512, -(-int(need) // 64) * 64)
        return {**data, "resources": {**(given or {}), "memory_limit": f"{limit}Mi"}} if limit > 512 else data
