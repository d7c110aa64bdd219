"""History across an outage, on the pure path: the gap event and the task events rebuilt
from the master's completed tasks."""

from __future__ import annotations

from producers.history_gap import Gap, gap_event, reconstructed_task_events
from producers.mesos.observer import MesosObserver
from producers.mesos.snapshot import Snapshot
from producers.publisher import Publisher
from runtime.tables import MemorySink
from schemas import codec
from schemas.catalog import DEFAULT_CATALOG
from schemas.headers import Observation
from schemas.history import CHANGE_KINDS, ChangeEvent
from schemas.mesos import Task, TaskStatus
from tests.scenarios.mesos_fixtures import LEADER


def task(task_id: str, *states: tuple[str, float]) -> Task:
    statuses = [TaskStatus(state=s, timestamp=t) for s, t in states]
    return Task(id=task_id, name="web", framework_id="f", agent_id="a", state=statuses[-1].state, statuses=statuses)


def test_gap_event_says_from_when_to_when():
    event = gap_event("mesos", Gap(100.0, "producer restart"), 250.0, 3)
    assert "history_gap" in CHANGE_KINDS
    assert event == ChangeEvent(kind="history_gap", entity="cluster", id="mesos", source="mesos", observed_at=250.0,
                                fields={"from": 100.0, "to": 250.0, "cause": "producer restart", "reconstructed": 3})


def test_statuses_inside_the_gap_are_rebuilt_with_the_masters_times_and_known_ones_skipped():
    unseen = task("unseen", ("TASK_STAGING", 110.0), ("TASK_RUNNING", 111.0), ("TASK_KILLED", 120.0))
    seen_running = task("seen", ("TASK_STAGING", 90.0), ("TASK_RUNNING", 91.0), ("TASK_FAILED", 130.0))
    before_gap = task("old", ("TASK_RUNNING", 10.0), ("TASK_FINISHED", 20.0))
    completed = {t.key: t for t in (unseen, seen_running, before_gap)}
    # Another framework's task of the same id says nothing about framework f's "seen".
    known = {"f/seen": task("seen", ("TASK_STAGING", 90.0), ("TASK_RUNNING", 91.0)),
             "g/unseen": task("unseen", ("TASK_STAGING", 110.0), ("TASK_RUNNING", 111.0))}

    events = reconstructed_task_events(completed, known, Gap(100.0, "producer restart"), 200.0)

    assert [(e.id, e.kind, e.observed_at, e.fields["state"]) for e in events] == [
        ("f/unseen", "task_staging", 110.0, "TASK_STAGING"),
        ("f/unseen", "task_running", 111.0, "TASK_RUNNING"),
        ("f/unseen", "task_killed", 120.0, "TASK_KILLED"),
        ("f/seen", "task_failed", 130.0, "TASK_FAILED"),
    ]
    assert {e.fields["task_id"] for e in events} == {"unseen", "seen"}
    assert all(e.fields["reconstructed"] is True and e.entity == "tasks" for e in events)


def test_the_snapshot_after_a_gap_writes_the_gap_then_the_rebuilt_events_then_the_diff():
    sink = MemorySink()
    observer = MesosObserver(Publisher(sink, "mesos", {a: {} for a in ("cluster", "agents", "frameworks", "tasks")}), [])
    observer.expect_gap(Gap(100.0, "stream lost"))
    observer.expect_gap(Gap(150.0, "stream lost"))  # the earliest start is kept
    running = task("now-running", ("TASK_RUNNING", 140.0))
    snapshot = Snapshot(tasks={running.key: running}, completed={"f/gone": task("gone", ("TASK_RUNNING", 120.0), ("TASK_KILLED", 125.0))})

    observer.on_snapshot(snapshot, LEADER, 200.0, Observation.now())
    observer.on_snapshot(snapshot, LEADER, 210.0, Observation.now())  # no second gap

    events = [codec.decode(v, ChangeEvent) for _, v in sink.log(DEFAULT_CATALOG.topic("events").name)]
    assert [(e.kind, e.id, e.observed_at) for e in events[:3]] == [
        ("history_gap", "mesos", 200.0), ("task_running", "f/gone", 120.0), ("task_killed", "f/gone", 125.0)]
    assert events[0].fields == {"from": 100.0, "to": 200.0, "cause": "stream lost", "reconstructed": 2}
    assert [(e.kind, e.id) for e in events[3:]] == [("leader_changed", "cluster"), ("task_running", "f/now-running")]
