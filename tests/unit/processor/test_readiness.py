"""Readiness per output (processors/readiness.py): each output waits only for the producers of
its own stage's sources, and the mark's `ready` still means every output."""

from __future__ import annotations

from processors.dns.agent import DnsStage
from processors.haproxy.agent import HaproxyStage
from processors.l4lb.agent import L4Stage
from processors.readiness import outputs_waiting, processor_mark, producers_by_output, ready_outputs
from schemas.catalog import Catalog
from schemas.status import PROCESSOR_KEY, Mark

CATALOG = Catalog("unit")
# These three stages, named here so that a stage added to the processor changes no result below.
PRODUCERS = producers_by_output(CATALOG, {stage.output: stage.sources for stage in (L4Stage, DnsStage, HaproxyStage)})
MESOS_ENDS = {"agents": {0: 3}, "frameworks": {0: 1}, "cluster": {0: 1}, "tasks": {0: 10, 1: 4}}
MARATHON_ENDS = {"apps": {0: 5}, "app-tasks": {0: 7}}


def synced(positions) -> Mark:
    return Mark(role="producer", instance="p", started_at=1.0, heartbeat_at=1.0, in_sync=True, synced_at=1.0,
                positions=positions)


def test_each_output_waits_for_the_producers_of_its_own_sources():
    assert {output: sorted(producers) for output, producers in PRODUCERS.items()} == {
        "vips": ["producer/mesos"], "dns": ["producer/mesos"],
        "haproxy": ["producer/marathon", "producer/mesos"],  # apps and app-tasks, and agents
    }


def test_both_producers_synced_and_reached_make_every_output_ready():
    marks = {"producer/mesos": synced(MESOS_ENDS), "producer/marathon": synced(MARATHON_ENDS)}
    assert ready_outputs(MESOS_ENDS | MARATHON_ENDS, marks, PRODUCERS) == ["dns", "haproxy", "vips"]


def test_only_mesos_synced_makes_the_mesos_outputs_ready_in_alias_order():
    marks = {"producer/mesos": synced(MESOS_ENDS)}
    assert ready_outputs(MESOS_ENDS | MARATHON_ENDS, marks, PRODUCERS) == ["dns", "vips"]


def test_positions_behind_one_producer_hold_back_only_its_outputs():
    marks = {"producer/mesos": synced(MESOS_ENDS), "producer/marathon": synced(MARATHON_ENDS)}
    behind_marathon = MESOS_ENDS | {"apps": {0: 5}, "app-tasks": {0: 6}}
    assert ready_outputs(behind_marathon, marks, PRODUCERS) == ["dns", "vips"]
    # haproxy reads no Mesos tasks: behind on tasks holds back vips and dns only.
    behind_on_tasks = MESOS_ENDS | {"tasks": {0: 10, 1: 3}} | MARATHON_ENDS
    assert ready_outputs(behind_on_tasks, marks, PRODUCERS) == ["haproxy"]
    # Every stage reads agents.
    behind_on_agents = MESOS_ENDS | {"agents": {0: 2}} | MARATHON_ENDS
    assert ready_outputs(behind_on_agents, marks, PRODUCERS) == []


def test_the_mark_is_ready_only_when_every_output_is():
    def mark(ready: list[str]) -> Mark:
        return processor_mark(instance="i", started_at=1.0, now=2.0, epoch=1, positions={}, lag=0,
                              ready_outputs=ready, outputs=PRODUCERS, synced_at=None)

    assert (mark(["dns", "vips"]).ready, mark(["dns", "vips"]).ready_outputs) == (False, ["dns", "vips"])
    assert mark(["dns", "haproxy", "vips"]).ready


def test_outputs_waiting_names_the_missing_producer():
    processor = Mark(role="processor", instance="i", started_at=1.0, heartbeat_at=1.0, in_sync=True,
                     positions=MESOS_ENDS, ready_outputs=["dns", "vips"])
    marks = {"producer/mesos": synced(MESOS_ENDS), PROCESSOR_KEY: processor}
    assert outputs_waiting(marks, PRODUCERS) == {"haproxy": ["producer/marathon"]}
    assert outputs_waiting({PROCESSOR_KEY: Mark("processor", "i", 1.0, 1.0, True, ready=True)}, PRODUCERS) == {}
    assert outputs_waiting({}, PRODUCERS) == {}
