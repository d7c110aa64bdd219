"""Fuzzing the Mesos parsers from the real fixtures: one entity of a snapshot is broken (a
wrongly typed field, a missing field, an oversized value). Nothing raises out, every other
entity comes out exactly as from the unbroken document, and the broken one is either still
a valid record or reported in rejections."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.mesos.observer import MesosObserver
from producers.mesos.snapshot import parse_master_state
from producers.publisher import Publisher
from runtime.tables import MemorySink
from schemas import codec
from schemas.catalog import DEFAULT_CATALOG
from schemas.headers import Observation
from tests.scenarios.mesos_fixtures import FIXTURES, LEADER
from tests.unit.producers.mutations import breakage, mutated

TABLES = ("cluster", "agents", "frameworks", "tasks")
GET_STATES = sorted((FIXTURES / "mesos-operator-api").glob("*.json"))
MASTER_STATES = [p for p in sorted((FIXTURES / "mesos-state").glob("*.json")) if b'"leader"' in p.read_bytes()]


def get_state_of(path) -> dict:
    first = orjson.loads(path.read_bytes().splitlines()[0])
    return first["get_state"] if first["type"] == "GET_STATE" else first["subscribed"]["get_state"]


def observe_get_state(get_state: dict) -> tuple[dict, list]:
    """SUBSCRIBED with this get_state, through the observer: (tables, rejections)."""
    sink = MemorySink()
    observer = MesosObserver(Publisher(sink, "mesos", {alias: {} for alias in TABLES}), [])
    event = {"type": "SUBSCRIBED", "subscribed": {"get_state": get_state, "heartbeat_interval_seconds": 15}}
    observer.on_event(event, LEADER, time.time(), Observation.now())
    return outcome(sink)


def observe_master_state(state: dict) -> tuple[dict, list]:
    """A polled /master/state through the parser and the observer, as the loop does it."""
    sink = MemorySink()
    observer = MesosObserver(Publisher(sink, "mesos", {alias: {} for alias in TABLES}), [])
    snapshot, leader, problems = parse_master_state(orjson.dumps(state))
    observer.on_snapshot(snapshot, leader, time.time(), Observation.now())
    for problem in problems.found:
        observer.publisher.reject(problem)
    return outcome(sink)


def outcome(sink: MemorySink) -> tuple[dict, list]:
    tables = {alias: sink.table(DEFAULT_CATALOG.topic(alias).name) for alias in TABLES}
    rejections = [orjson.loads(v) for _, v in sink.log(DEFAULT_CATALOG.topic("rejections").name)]
    return tables, rejections


def victims_of_get_state(get_state: dict) -> list[tuple]:
    """(path to a list, index) of every task, agent and framework in a get_state."""
    found = []
    for group, key in (("get_tasks", "tasks"), ("get_tasks", "launched_tasks"), ("get_tasks", "completed_tasks"),
                       ("get_agents", "agents"), ("get_frameworks", "frameworks")):
        for index, _ in enumerate((get_state.get(group) or {}).get(key) or []):
            found.append((group, key, index))
    return found


def victims_of_master_state(state: dict) -> list[tuple]:
    found = [("slaves", index) for index, _ in enumerate(state.get("slaves") or [])]
    for f, framework in enumerate(state.get("frameworks") or []):
        found += [("frameworks", f, "tasks", t) for t, _ in enumerate(framework.get("tasks") or [])]
    return [v for v in found if isinstance(entity_at(state, v), dict) and entity_at(state, v)]


def entity_at(doc: dict, path: tuple):
    for step in path:
        doc = doc[step]
    return doc


def with_entity(doc: dict, path: tuple, entity) -> dict:
    broken = orjson.loads(orjson.dumps(doc))
    entity_at(broken, path[:-1])[path[-1]] = entity
    return broken


def assert_only_the_victim_differs(baseline: tuple, broken: tuple) -> None:
    (good_tables, good_rejections), (tables, rejections) = baseline, broken
    for alias in TABLES:
        for key, value in tables[alias].items():
            codec.decode(value, DEFAULT_CATALOG.topic(alias).value_type)  # every published record is valid
        changed = {key for key in good_tables[alias] if tables[alias].get(key) != good_tables[alias][key]}
        added = set(tables[alias]) - set(good_tables[alias])
        assert len(changed) <= 1 and len(added) <= 1, (alias, changed, added)  # the victim, maybe under a new id
        if any(key not in tables[alias] for key in changed) and not added:
            # the victim is gone from the table, so it must have been reported
            assert len(rejections) > len(good_rejections), (alias, changed)
    if len(rejections) > len(good_rejections):
        assert all(r["source"] == "mesos" and r["why"] for r in rejections)


def break_one_entity(document, victims, observe, data) -> None:
    """Break one field of one entity of `document` as hypothesis draws it, and check that only
    that entity's records change."""
    assert victims, "the fixture lists must hold only documents with entities to break"
    victim = data.draw(st.sampled_from(victims))
    entity = entity_at(document, victim)
    path, action, wrong = data.draw(breakage(entity))
    broken = with_entity(document, victim, mutated(entity, path, action, wrong))
    assert_only_the_victim_differs(observe(document), observe(broken))


def run_get_state_case(fixture, data) -> None:
    get_state = get_state_of(fixture)
    break_one_entity(get_state, victims_of_get_state(get_state), observe_get_state, data)


@pytest.mark.parametrize("fixture", [p for p in GET_STATES if victims_of_get_state(get_state_of(p))],
                         ids=lambda p: p.stem)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_broken_entity_in_get_state_rejects_only_itself(fixture, data):
    run_get_state_case(fixture, data)


@pytest.mark.parametrize("fixture", [p for p in MASTER_STATES if victims_of_master_state(orjson.loads(p.read_bytes()))],
                         ids=lambda p: p.stem)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_broken_entity_in_master_state_rejects_only_itself(fixture, data):
    state = orjson.loads(fixture.read_bytes())
    break_one_entity(state, victims_of_master_state(state), observe_master_state, data)
