"""The L4 processor (a real faust worker) against a real Kafka: simulator -> producer -> processor -> vips."""

import asyncio

import orjson
import pytest

from tests.integration.pipeline import Pipeline, RunningProcessor, changes_of
from tests.scenarios.mesos_fixtures import FIXTURES, SCENARIOS, scenario_name

pytestmark = pytest.mark.kafka

VIP_LABELS = FIXTURES / "mesos-operator-api" / "vip-labels.json"


def golden_vips(fixture):
    return orjson.loads((SCENARIOS / scenario_name(fixture) / "vips.json").read_bytes())["vips"]


async def test_vips_from_the_fixture_then_a_launch_and_a_kill(kafka_bootstrap):
    async with Pipeline(kafka_bootstrap, mesos_state=VIP_LABELS, marathon_url=None) as pipeline:
        await pipeline.eventually(lambda: pipeline.tasks_by_id(), lambda t: len(t) == 1)
        expected = golden_vips(VIP_LABELS)
        async with RunningProcessor(pipeline):
            await pipeline.eventually(lambda: pipeline.table("vips"), lambda t: t == expected, timeout=30)

            app = {"id": "/shop/web", "instances": 2, "portDefinitions": [{"port": 0, "labels": {"VIP_0": "/shop/web:80"}}]}
            launched = await pipeline.control("POST", "/sim/apps", app)
            running = sorted(c["task_id"] for c in changes_of(launched, state="TASK_RUNNING"))

            def web(table):
                return [v for v in table.values() if v.get("name") == "/shop/web"]

            table = await pipeline.eventually(lambda: pipeline.table("vips"), lambda t: len(web(t)) == 1 and len(web(t)[0]["backends"]) == 2)
            (vip,) = web(table)
            assert vip["dns"] == "shopweb.marathon.l4lb.thisdcos.directory"
            assert vip["ip"].startswith("11.") and vip["port"] == 80 and vip["protocol"] == "tcp"
            assert sorted(b["task_id"] for b in vip["backends"]) == running
            assert {b["weight"] for b in vip["backends"]} == {1}

            await pipeline.control("DELETE", f"/sim/tasks/{running[0]}")
            table = await pipeline.eventually(lambda: pipeline.table("vips"), lambda t: [b["task_id"] for v in web(t) for b in v["backends"]] == [running[1]])
            assert web(table)[0]["ip"] == vip["ip"]  # the named VIP keeps its address

        # A restarted processor publishes nothing new and keeps every address.
        before = len(await pipeline.log("vips"))
        async with RunningProcessor(pipeline):
            await asyncio.sleep(2)
        assert len(await pipeline.log("vips")) == before
        assert await pipeline.table("vips") == table
