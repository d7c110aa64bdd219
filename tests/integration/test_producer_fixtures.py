"""Every shared Mesos fixture goes simulator -> producer -> Kafka, and the topics then hold
exactly the golden tables (tests/scenarios/<fixture>/mesos-tables.json).

Each document goes through the producer path that consumes its kind: event streams and
GET_STATE replies through SUBSCRIBE, master and agent states through /master/state polling.
"""

import asyncio
import os

import msgspec
import orjson
import pytest

from processors.dns.config import DnsConfig
from processors.dns.derive import framework_records
from producers.mesos.normalize import parse_pid
from schemas.mesos import Framework
from tests.integration.pipeline import Pipeline
from tests.scenarios.mesos_fixtures import ENTITY_TABLES, MESOS_FIXTURES, expected_tables, fixture_kind, scenario_name

pytestmark = pytest.mark.kafka


async def entity_tables(pipeline: Pipeline) -> dict[str, dict]:
    return {alias: await pipeline.table(alias) for alias in ENTITY_TABLES}


@pytest.mark.parametrize("fixture", MESOS_FIXTURES, ids=scenario_name)
async def test_fixture_tables_in_kafka(kafka_bootstrap, fixture):
    polled = fixture_kind(fixture) in ("master-state", "agent-state")
    async with Pipeline(kafka_bootstrap, mesos_state=fixture, marathon_url=None, mesos_poll_only=polled) as pipeline:
        if os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
            await asyncio.sleep(3)
            expected_tables(fixture, await entity_tables(pipeline))
        expected = expected_tables(fixture)
        await pipeline.eventually(lambda: entity_tables(pipeline), lambda tables: tables == expected)

        if polled:  # the leader the state document names
            async with pipeline.http.get(pipeline.simulator.mesos_url + "/master/state") as response:
                host, port = parse_pid(orjson.loads(await response.read())["leader"])
        else:  # the master that answered SUBSCRIBE
            host, port = "127.0.0.1", int(pipeline.simulator.mesos_url.rsplit(":", 1)[1])
        cluster = (await pipeline.table("cluster"))["cluster"]
        leader = cluster["leader"]
        assert (leader["ip"] or leader["hostname"], leader["port"]) == (host, port)
        assert cluster["masters"] == [cluster["leader"]]
        assert await pipeline.values("rejections") == []


async def test_over_subscribe_the_leader_is_the_address_the_master_advertises(kafka_bootstrap):
    """The simulated master listens on 127.0.0.1:<free port>, but the loaded state's master is
    192.168.65.90:5050: over SUBSCRIBE the producer must name the leader as the master names
    itself (GET_MASTER), as it does when polling (the state's leader PID), never by its URL."""
    fixture = next(f for f in MESOS_FIXTURES if f.name == "state6.json")
    async with Pipeline(kafka_bootstrap, mesos_state=fixture, marathon_url=None, mesos_poll_only=False) as pipeline:
        assert not pipeline.simulator.mesos_url.endswith(":5050")
        cluster = await pipeline.eventually(lambda: pipeline.table("cluster"), lambda table: "cluster" in table)
        leader = cluster["cluster"]["leader"]
        assert (leader["hostname"], leader["ip"], leader["port"]) == ("192.168.65.90", "192.168.65.90", 5050)
        assert parse_pid(orjson.loads(fixture.read_bytes())["leader"]) == ("192.168.65.90", 5050)


@pytest.mark.parametrize("poll_only", [False, True], ids=["subscribe", "poll"])
async def test_framework_srv_records_on_both_paths(kafka_bootstrap, poll_only):
    """A framework's `_framework._tcp.<fw>.mesos` needs its scheduler PID. Polling reads it
    from /master/state; over SUBSCRIBE (no PIDs in the operator API) the producer reads it from
    /master/frameworks. Either way the frameworks table, and the DNS records derived from it,
    are the same."""
    fixture = next(f for f in MESOS_FIXTURES if f.name == "state6.json")
    async with Pipeline(kafka_bootstrap, mesos_state=fixture, marathon_url=None, mesos_poll_only=poll_only) as pipeline:
        calico_id = "10172a79-151f-4bd3-aeec-9ef367a7ddcc-0003"
        frameworks = await pipeline.eventually(
            lambda: pipeline.table("frameworks"), lambda table: (table.get(calico_id) or {}).get("port") is not None)
        assert (frameworks[calico_id]["ip"], frameworks[calico_id]["port"]) == ("192.168.65.111", 45788)
        framework = msgspec.convert(frameworks[calico_id], Framework)
        records = dict(framework_records(framework, DnsConfig()).contributions)
        assert records["_framework._tcp.calico.mesos./SRV"] == ("0 1 45788 calico.mesos.",)
        assert records["calico.mesos./A"] == ("192.168.65.111",)
