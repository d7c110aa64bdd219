"""The overlay lease stage against a real Kafka: simulator -> producer -> processor -> overlay.

The topic holds exactly the golden leases of the fixture's agents; an agent added in the
simulator gets the next lease; a removed agent's lease is kept with ``gone_since``; a lease
tombstoned by hand (as an operator would, with any Kafka client) is forgotten by the
processor, so the next agent gets that subnet; a restarted processor keeps every lease.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from confluent_kafka import Producer

from tests.integration.pipeline import Pipeline, RunningProcessor
from tests.scenarios.mesos_fixtures import FIXTURES, SCENARIOS, scenario_name
from tests.unit.overlay.test_fixtures import CONFIG

pytestmark = pytest.mark.kafka

STATE_OVERLAY = FIXTURES / "mesos-state" / "state-overlay.json"


def golden_leases(fixture) -> dict[str, dict]:
    return orjson.loads((SCENARIOS / scenario_name(fixture) / "overlay-leases.json").read_bytes())["leases"]


def by_overlay(table: dict[str, dict], overlay: str) -> dict[str, dict]:
    return {lease["agent_id"]: lease for lease in table.values() if lease["overlay"] == overlay}


def tombstone(bootstrap: str, topic: str, key: str) -> None:
    """What an operator does by hand: a null value for the lease's key, in the key's partition
    as Java clients (kafka-console-producer) and Wayfinder's writers choose it (murmur2)."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    producer.produce(topic, key=key.encode(), value=None)
    assert producer.flush(10) == 0


async def test_leases_of_the_fixture_a_new_agent_a_gone_one_and_one_freed_by_hand(kafka_bootstrap):
    expected = golden_leases(STATE_OVERLAY)
    assert len(by_overlay(expected, "dcos")) == 2
    async with Pipeline(kafka_bootstrap, mesos_state=STATE_OVERLAY, marathon_url=None) as pipeline:
        # Leases go first come, first served. The golden ones are the fixture's agents taken
        # together, as a processor's start takes what the sources hold: so both agents must be
        # in Kafka before it starts (on a loaded machine the producer may publish one of them
        # a moment after the processor read the sources to their end).
        agents = {lease["agent_id"] for lease in expected.values()}
        await pipeline.eventually(lambda: pipeline.table("agents"), lambda t: set(t) >= agents, timeout=30)
        async with RunningProcessor(pipeline, overlay=CONFIG):
            await pipeline.eventually(lambda: pipeline.table("overlay"), lambda t: t == expected, timeout=30)

            added = await pipeline.control("POST", "/sim/agents", {"hostname": "10.0.0.9"})
            assert added  # the simulator names the agent
            table = await pipeline.eventually(lambda: pipeline.table("overlay"),
                                              lambda t: len(by_overlay(t, "dcos")) == 3, timeout=15)
            (new,) = [lease for lease in by_overlay(table, "dcos").values() if lease["agent_ip"] == "10.0.0.9"]
            assert (new["subnet"], new["mesos_subnet"], new["docker_subnet"]) == ("9.0.2.0/24", "9.0.2.0/25", "9.0.2.128/25")
            assert (new["vtep_ip"], new["vtep_mac"], new["vtep_ip6"]) == ("44.128.0.3", "70:b3:d5:80:00:03", "fd01:a::3")
            assert by_overlay(table, "dcos6")[new["agent_id"]]["subnet"] == "fd01:b:0:0:2::/80"
            assert new["agent_id"] not in by_overlay(table, "tiny")  # two subnets, both taken
            rejected = await pipeline.values("rejections")
            assert any(r["source"] == "overlay" and "overlay tiny is exhausted" in r["why"] for r in rejected)

            # The agent goes: its leases stay, marked, for the grace period.
            await pipeline.control("DELETE", f"/sim/agents/{new['agent_id']}")
            table = await pipeline.eventually(
                lambda: pipeline.table("overlay"),
                lambda t: by_overlay(t, "dcos")[new["agent_id"]]["gone_since"] is not None, timeout=15)
            for key, lease in expected.items():
                assert table[key] == lease  # the others are untouched

            # Freed by hand: every lease of the gone agent; the next agent gets its subnet.
            for overlay in ("dcos", "dcos6"):
                await asyncio.to_thread(tombstone, kafka_bootstrap, pipeline.catalog.topic("overlay").name,
                                        f"{overlay}/{new['agent_id']}")
            await pipeline.eventually(lambda: pipeline.table("overlay"), lambda t: t == expected, timeout=15)
            await pipeline.control("POST", "/sim/agents", {"hostname": "10.0.0.10"})
            table = await pipeline.eventually(lambda: pipeline.table("overlay"),
                                              lambda t: len(by_overlay(t, "dcos")) == 3, timeout=15)
            (again,) = [lease for lease in by_overlay(table, "dcos").values() if lease["agent_ip"] == "10.0.0.10"]
            assert (again["subnet"], again["vtep_ip"]) == ("9.0.2.0/24", "44.128.0.3")

        # A restarted processor publishes nothing new and keeps every lease.
        before = len(await pipeline.log("overlay"))
        async with RunningProcessor(pipeline, overlay=CONFIG):
            await asyncio.sleep(3)
        assert len(await pipeline.log("overlay")) == before
        assert await pipeline.table("overlay") == table
