"""The derived tables as a fresh processor would publish them, from what the sources hold now
(processors/replay.py), read from a running pipeline's Kafka."""

from __future__ import annotations

from processors.replay import fresh_outputs
from runtime.kafka.reader import read_table
from schemas.catalog import Catalog

SOURCES = ("agents", "frameworks", "cluster", "tasks")
OUTPUTS = ("vips", "dns")


def fresh_derivation(bootstrap: str, catalog: Catalog) -> dict[str, dict[str, bytes]]:
    """Output alias -> key -> encoded value, for the vips and dns tables."""
    def table(alias: str) -> dict[str, bytes]:
        return read_table(bootstrap, catalog.topic(alias).name, timeout=60)

    return fresh_outputs(catalog, {alias: table(alias) for alias in SOURCES}, {alias: table(alias) for alias in OUTPUTS})
