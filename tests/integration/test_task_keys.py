"""Two frameworks running a task of the same id: Mesos keeps a task id unique only within its
framework, so both tasks live side by side in every table, on the SUBSCRIBE path and the
polling path, and killing one leaves the other in place."""

from __future__ import annotations

import copy
import json

import pytest

from tests.integration.pipeline import Pipeline, RunningProcessor
from tests.scenarios.mesos_fixtures import FIXTURES

MARATHON = "b2d07a6a-4012-4a7f-8635-224d04de674e-0001"
JENKINS = "b2d07a6a-4012-4a7f-8635-224d04de674e-0002"
TASK = "sleep.bf108244-ec7f-11e5-b98e-82ce0fb60967"
AGENT_S1 = "b2d07a6a-4012-4a7f-8635-224d04de674e-S1"  # 10.0.4.192; marathon's task runs on S0, 10.0.2.234


def state_with_a_second_framework(path) -> None:
    """mesos-state/state2.json plus a framework "jenkins" whose task has marathon's task id."""
    state = json.loads((FIXTURES / "mesos-state" / "state2.json").read_text())
    marathon = next(f for f in state["frameworks"] if f["id"] == MARATHON)
    jenkins = copy.deepcopy(marathon)
    jenkins.update(id=JENKINS, name="jenkins", pid="scheduler-jenkins@10.0.5.163:43999", completed_tasks=[])
    (task,) = jenkins["tasks"]
    task.update(framework_id=JENKINS, slave_id=AGENT_S1, executor_id="", labels=[])
    for status in task["statuses"]:
        status.pop("container_status", None)
    state["frameworks"].append(jenkins)
    path.write_text(json.dumps(state))


@pytest.mark.parametrize("poll_only", [False, True], ids=["subscribe", "poll"])
async def test_two_frameworks_with_one_task_id_keep_both_tasks(kafka_bootstrap, tmp_path, poll_only):
    state = tmp_path / "two-frameworks.json"
    state_with_a_second_framework(state)
    async with Pipeline(kafka_bootstrap, mesos_state=state, marathon_url=None, mesos_poll_only=poll_only,
                        mesos_poll_interval=0.5) as pipeline:
        async with RunningProcessor(pipeline):
            both = {f"{MARATHON}/{TASK}", f"{JENKINS}/{TASK}"}
            tasks = await pipeline.eventually(lambda: pipeline.table("tasks"), lambda t: set(t) == both, timeout=30)
            assert {key: (t["id"], t["framework_id"], t["agent_id"]) for key, t in tasks.items()} == {
                f"{MARATHON}/{TASK}": (TASK, MARATHON, "b2d07a6a-4012-4a7f-8635-224d04de674e-S0"),
                f"{JENKINS}/{TASK}": (TASK, JENKINS, AGENT_S1),
            }
            names = {"sleep.marathon.mesos./A": ["10.0.2.234"], "sleep.jenkins.mesos./A": ["10.0.4.192"]}
            dns = await pipeline.eventually(
                lambda: pipeline.table("dns"),
                lambda t: all(key in t for key in names), timeout=30)
            assert {key: dns[key]["rdata"] for key in names} == names
            assert dns["sleep.jenkins.mesos./A"]["tasks"] == [TASK]

            # The id alone is ambiguous: the simulator says so and kills nothing.
            async with pipeline.http.delete(f"{pipeline.simulator.marathon_url}/sim/tasks/{TASK}") as response:
                assert response.status == 409
                assert f"frameworks {MARATHON}, {JENKINS}" in (await response.json())["message"]

            reply = await pipeline.control("DELETE", f"/sim/tasks/{TASK}?framework_id={JENKINS}")
            assert [(c["task_id"], c["framework_id"], c["state"]) for c in reply["changes"]] == [
                (TASK, JENKINS, "TASK_KILLING"), (TASK, JENKINS, "TASK_KILLED")]
            await pipeline.eventually(lambda: pipeline.table("tasks"), lambda t: set(t) == {f"{MARATHON}/{TASK}"})
            dns = await pipeline.eventually(
                lambda: pipeline.table("dns"), lambda t: "sleep.jenkins.mesos./A" not in t, timeout=30)
            assert dns["sleep.marathon.mesos./A"]["rdata"] == ["10.0.2.234"]

            events = [e for e in await pipeline.values("events") if e["entity"] == "tasks"]
            ended = [(e["id"], e["fields"]["task_id"], e["fields"]["framework_id"]) for e in events
                     if e["kind"] in ("task_killed", "task_removed")]
            assert ended == [(f"{JENKINS}/{TASK}", TASK, JENKINS)]
