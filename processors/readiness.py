"""The active processor's readiness mark (pure): which source positions its outputs reflect,
and whether those reach what every producer of its sources had when it last synced.

Readiness is a chain (ARCHITECTURE.md): a producer marks the end offsets of its tables after a
full sync; an output of the processor is ready once it has been published from source
positions that reach those offsets, for every producer that writes one of that output's
sources; a node trusts a table only behind a processor mark that lists it as ready. Readiness
is per output so that a missing producer holds back only the tables it feeds: without
Marathon, `haproxy` waits while `dns` and `vips` serve.
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


# output alias -> producers of that output's sources (mark key -> the source aliases it writes)
OutputProducers = Mapping[str, Mapping[str, list[str]]]


def producers_by_output(catalog: Catalog, sources: Mapping[str, Iterable[str]]) -> dict[str, dict[str, list[str]]]:
    """`sources`: output alias -> its stage's source aliases."""
    return {output: producers_of(catalog, aliases) for output, aliases in sources.items()}


def ready_outputs(positions: Positions, marks: Mapping[str, Mark], producers: OutputProducers) -> list[str]:
    """The outputs whose producers all have synced marks that `positions` reach, sorted by alias
    (a stable order, so equal readiness gives equal marks)."""
    return sorted(output for output, by_producer in producers.items() if is_ready(positions, marks, by_producer))


def waiting_for(positions: Positions, marks: Mapping[str, Mark], producers: Mapping[str, list[str]]) -> list[str]:
    """The mark keys of the producers (of one output) that hold it back, sorted: no mark, not
    synced, or synced at positions that `positions` do not reach yet."""
    return sorted(key for key, aliases in producers.items() if not (key in marks and reflects(positions, marks[key], aliases)))


def outputs_waiting(marks: Mapping[str, Mark], producers: OutputProducers) -> dict[str, list[str]]:
    """For `wayfinder status`: each output the processor mark does not say is ready -> the
    producers it waits for, as the marks read now show it (empty when they would let it be
    ready by now: the processor has not marked it yet)."""
    mark = marks.get(PROCESSOR_KEY)
    if mark is None or mark.ready:
        return {}
    return {output: waiting_for(mark.positions, marks, by_producer)
            for output, by_producer in sorted(producers.items()) if output not in mark.ready_outputs}


def every_output_ready(ready: Iterable[str], outputs: Iterable[str]) -> bool:
    return set(outputs) <= set(ready)


def processor_mark(*, instance: str, started_at: float, now: float, epoch: int, positions: Positions, lag: int,
                   ready_outputs: list[str], outputs: Iterable[str], synced_at: float | None) -> Mark:
    """`ready` stays for readers older than `ready_outputs`, with the meaning it always had:
    every one of `outputs` is ready."""
    ready = every_output_ready(ready_outputs, outputs)
    return Mark(role="processor", instance=instance, started_at=started_at, heartbeat_at=now, in_sync=True,
                synced_at=synced_at, positions=positions, ready=ready, lag=lag, epoch=epoch,
                ready_outputs=list(ready_outputs))


def previous_epoch(marks: Mapping[str, Mark]) -> int:
    mark = marks.get(PROCESSOR_KEY)
    return mark.epoch if mark is not None else 0
