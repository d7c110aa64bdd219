"""The active processor's readiness mark (pure): which source positions its outputs reflect,
and whether those reach what every producer of its sources had when it last synced.

Readiness is a chain (ARCHITECTURE.md): a producer marks the end offsets of its tables after a
full sync; the processor is ready once it has published outputs that reflect at least those
offsets, for every producer that writes one of its sources; a node trusts a table only behind
a ready processor mark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.catalog import Catalog
from schemas.status import PROCESSOR_KEY, Mark, Positions, producer_key

PRODUCER_PREFIX = "producers/"


def producers_of(catalog: Catalog, aliases: Iterable[str]) -> dict[str, list[str]]:
    """Mark key of each producer that writes one of `aliases` -> the aliases it writes among
    them (``producer/mesos`` -> tasks, agents, ...), from the catalog's writers."""
    found: dict[str, list[str]] = {}
    for alias in aliases:
        for writer in catalog.topic(alias).writers:
            if writer.startswith(PRODUCER_PREFIX):
                found.setdefault(producer_key(writer.removeprefix(PRODUCER_PREFIX)), []).append(alias)
    return found


def reaches(positions: Positions, target: Positions, aliases: Iterable[str] | None = None) -> bool:
    """Whether `positions` are at or past `target` on every partition of `aliases` (default:
    every alias of `target`); a partition missing from `positions` is at 0."""
    for alias in target if aliases is None else aliases:
        for partition, offset in target.get(alias, {}).items():
            if positions.get(alias, {}).get(partition, 0) < offset:
                return False
    return True


def reflects(positions: Positions, producer: Mark, aliases: Iterable[str]) -> bool:
    """Whether `positions` reach the producer's synced positions on every one of `aliases`."""
    return producer.synced_at is not None and reaches(positions, producer.positions, aliases)


def is_ready(positions: Positions, marks: Mapping[str, Mark], producers: Mapping[str, list[str]]) -> bool:
    """Every producer of the sources has a synced mark, and `positions` reach it."""
    return all(key in marks and reflects(positions, marks[key], aliases) for key, aliases in producers.items())


def processor_mark(*, instance: str, started_at: float, now: float, epoch: int, positions: Positions, lag: int,
                   ready: bool, synced_at: float | None) -> Mark:
    return Mark(role="processor", instance=instance, started_at=started_at, heartbeat_at=now, in_sync=True,
                synced_at=synced_at, positions=positions, ready=ready, lag=lag, epoch=epoch)


def previous_epoch(marks: Mapping[str, Mark]) -> int:
    mark = marks.get(PROCESSOR_KEY)
    return mark.epoch if mark is not None else 0
