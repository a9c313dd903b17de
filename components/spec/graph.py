"""The graph database model (``berth:graphs.NAME``): Neo4j."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import model_validator

from .fields import _field, _Model
from .names import Image
from .shared import Resources
from .units import JvmSize, Size, jvm_mib, memory_mib


class GraphDatabaseSpec(_Model):
    """A Neo4j graph database (community edition): generated password, persistent volume, internal only.

    Services that list it in ``uses`` get ``NEO4J_URI`` (``bolt://<name>:7687``), ``NEO4J_USER`` and
    ``NEO4J_PASSWORD`` (secrets); with the mapping form ``{graph: GRAPH_URI}`` the names become
    ``GRAPH_URI`` / ``GRAPH_USER`` / ``GRAPH_PASSWORD``. Defaults: Neo4j 4.4, 10Gi volume, 512m heap.
    """

    engine: Literal["neo4j"] = _field("neo4j", "Always neo4j.")
    version: str = _field("4.4", "Neo4j version; the image is neo4j:<version>.")
    image: Optional[Image] = _field(None, "Image override.")
    storage: Size = _field("10Gi", "Volume size for /data.", unit="Mi/Gi")
    heap: JvmSize = _field("512m", "JVM heap (dbms.memory.heap.max_size); heap + page_cache < memory_limit.",
                           unit="JVM size (512m, 2g; 1Gi → 1g)")
    page_cache: JvmSize = _field("256m", "Page cache (dbms.memory.pagecache.size).",
                                 unit="JVM size (256m, 1g; 1Gi → 1g)")
    resources: Resources = _field(Resources(cpu="250m", memory="1Gi", cpu_limit="1", memory_limit="1536Mi"),
                                  "CPU/memory of Neo4j.")

    @model_validator(mode="after")
    def _fits(self) -> "GraphDatabaseSpec":
        used = jvm_mib(self.heap) + jvm_mib(self.page_cache)
        if used >= memory_mib(self.resources.memory_limit):
            raise ValueError(
                f"heap {self.heap} + page_cache {self.page_cache} ({used}Mi) do not fit in resources.memory_limit "
                f"{self.resources.memory_limit}; the JVM needs memory beyond both: lower them or raise memory_limit"
            )
        return self
