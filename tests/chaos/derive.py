"""The derived tables as a fresh processor would publish them, from what the sources hold now
(processors/replay.py), read from a running pipeline's Kafka."""

from __future__ import annotations

from processors.replay import fresh_outputs, processor_stages
from runtime.kafka.reader import read_table
from schemas.catalog import Catalog

SOURCES = tuple(dict.fromkeys(alias for stage in processor_stages(Catalog()) for alias in stage.sources))
OUTPUTS = tuple(stage.output for stage in processor_stages(Catalog()))


def fresh_derivation(bootstrap: str, catalog: Catalog) -> dict[str, dict[str, bytes]]:
    """Output alias -> key -> encoded value, for every output table."""
    def table(alias: str) -> dict[str, bytes]:
        return read_table(bootstrap, catalog.topic(alias).name, timeout=60)

    return fresh_outputs(catalog, {alias: table(alias) for alias in SOURCES}, {alias: table(alias) for alias in OUTPUTS})
