"""The inputs that crashed the producer or emptied a snapshot, on the pure path: each now
rejects one entity, with its reason, and everything else goes through."""

from __future__ import annotations

import time

import orjson

from producers.marathon.observer import MarathonObserver
from producers.mesos.observer import MesosObserver
from producers.publisher import Publisher
from runtime.tables import MemorySink
from schemas.catalog import DEFAULT_CATALOG
from schemas.headers import Observation
from tests.scenarios.mesos_fixtures import FIXTURES, LEADER

MESOS_TABLES = ("cluster", "agents", "frameworks", "tasks")
# a SUBSCRIBED snapshot with 4 running tasks
HELLO_WORLD = orjson.loads((FIXTURES / "mesos-operator-api" / "hello-world.json").read_bytes().splitlines()[0])["subscribed"]["get_state"]


def mesos() -> tuple[MemorySink, MesosObserver]:
    sink = MemorySink()
    return sink, MesosObserver(Publisher(sink, "mesos", {alias: {} for alias in MESOS_TABLES}), [])


def rejections(sink: MemorySink) -> list[tuple[str, str]]:
    return [(v["what"], v["why"]) for v in (orjson.loads(r) for _, r in sink.log(DEFAULT_CATALOG.topic("rejections").name))]


def tasks_of(sink: MemorySink) -> set[str]:
    return set(sink.table(DEFAULT_CATALOG.topic("tasks").name))


def subscribed(get_state: dict, heartbeat: object = 15) -> dict:
    return {"type": "SUBSCRIBED", "subscribed": {"get_state": get_state, "heartbeat_interval_seconds": heartbeat}}


def test_one_task_with_string_discovery_ports_rejects_only_that_task_of_the_subscribed_snapshot():
    good_sink, good = mesos()
    good.on_event(subscribed(HELLO_WORLD), LEADER, time.time(), Observation.now())
    all_tasks = tasks_of(good_sink)
    assert len(all_tasks) >= 2

    broken_state = orjson.loads(orjson.dumps(HELLO_WORLD))
    victim = broken_state["get_tasks"]["tasks"][0]
    victim["discovery"] = dict(victim.get("discovery") or {}, ports="80")
    victim_id = victim["task_id"]["value"]
    sink, observer = mesos()
    observer.on_event(subscribed(broken_state), LEADER, time.time(), Observation.now())

    assert tasks_of(sink) == all_tasks - {f"{victim['framework_id']['value']}/{victim_id}"}
    assert ("task", f"task {victim_id}: discovery.ports must be an object with a ports list") in rejections(sink)


def test_a_task_with_megabytes_of_labels_is_rejected_as_too_large_and_the_others_published():
    state = orjson.loads(orjson.dumps(HELLO_WORLD))
    victim = state["get_tasks"]["tasks"][0]
    victim["labels"] = {"labels": [{"key": f"k{i}", "value": "v" * 1000} for i in range(1700)]}
    sink, observer = mesos()
    observer.on_event(subscribed(state), LEADER, time.time(), Observation.now())
    victim_key = f"{victim['framework_id']['value']}/{victim['task_id']['value']}"
    assert victim_key not in tasks_of(sink) and len(tasks_of(sink)) == len(state["get_tasks"]["tasks"]) - 1
    ((what, why),) = rejections(sink)
    assert what == "task" and why.startswith(f"task {victim_key}: its record would be 1,7")


def test_a_rejected_task_keeps_its_last_good_record_at_the_next_snapshot():
    sink, observer = mesos()
    observer.on_event(subscribed(HELLO_WORLD), LEADER, time.time(), Observation.now())
    before = sink.table(DEFAULT_CATALOG.topic("tasks").name)
    state = orjson.loads(orjson.dumps(HELLO_WORLD))
    state["get_tasks"]["tasks"][0]["state"] = 5
    observer.on_event(subscribed(state), LEADER, time.time(), Observation.now())
    assert sink.table(DEFAULT_CATALOG.topic("tasks").name) == before
    assert [w for w, _ in rejections(sink)] == ["task"]


def test_a_negative_heartbeat_interval_is_reported_and_replaced_by_the_default():
    sink, observer = mesos()
    observer.on_event(subscribed(HELLO_WORLD, heartbeat=-1), LEADER, time.time(), Observation.now())
    assert observer.heartbeat_interval == 15.0
    assert rejections(sink) == [("heartbeat-interval", "heartbeat_interval_seconds -1 is not a positive number; using 15s")]
    assert len(tasks_of(sink)) == len(HELLO_WORLD["get_tasks"]["tasks"])


def test_a_marathon_app_whose_container_is_a_string_rejects_only_that_app():
    apps = orjson.loads((FIXTURES / "marathon-apps" / "zdd_apps.json").read_bytes())
    victim = apps["apps"][0]
    victim["container"] = "docker"
    sink = MemorySink()
    observer = MarathonObserver(Publisher(sink, "marathon", {"apps": {}, "app-tasks": {}}))
    observer.on_apps(orjson.dumps(apps), Observation.now())
    published = set(sink.table(DEFAULT_CATALOG.topic("apps").name))
    assert published == {"/" + a["id"].lstrip("/") for a in apps["apps"][1:]}
    assert rejections(sink) == [("app", f"app {victim['id']}: container must be an object, got str")]
