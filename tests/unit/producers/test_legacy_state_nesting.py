"""A legacy /master/state task whose framework_id disagrees with the framework it is listed
under: the listing wins, as in Mesos-DNS, and the disagreement is reported."""

from __future__ import annotations

import orjson

from producers.mesos.snapshot import parse_master_state


def _task(task_id: str, **fields) -> dict:
    return {"id": task_id, "name": "web", "slave_id": "S0", "state": "TASK_RUNNING", "statuses": [], **fields}


def test_the_framework_a_task_is_listed_under_wins_and_the_disagreement_is_reported():
    state = {
        "leader": "master@10.0.0.1:5050",
        "slaves": [{"id": "S0", "hostname": "10.0.0.21", "pid": "slave(1)@10.0.0.21:5051"}],
        "frameworks": [{"id": "F0", "name": "marathon", "active": True,
                        "tasks": [_task("web.1", framework_id="F9"), _task("web.2", framework_id="F0"),
                                  _task("web.3")]}],
    }
    snapshot, _, problems = parse_master_state(orjson.dumps(state))
    assert {task_id: task.framework_id for task_id, task in snapshot.tasks.items()} == {
        "F0/web.1": "F0", "F0/web.2": "F0", "F0/web.3": "F0"}
    assert [(p.what, p.why) for p in problems.found] == [
        ("task", "task web.1: its framework_id 'F9' is not the framework 'F0' it is listed under; the listing is followed")]
