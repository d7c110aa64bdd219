"""The shared Mesos fixtures and the tables a producer must publish for each.

The expected tables live in ``tests/scenarios/<fixture>/mesos-tables.json`` (golden files,
reviewed by hand). They are compared with the pure path here (unit tests) and with what a
real Kafka holds after simulator -> producer (integration tests). Rewrite them with
``WAYFINDER_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from producers.mesos.normalize import master_of
from producers.mesos.observer import MesosObserver
from producers.mesos.snapshot import parse_master_state, snapshot_of_get_state
from producers.problems import Problems
from producers.publisher import Publisher
from runtime.tables import MemorySink
from schemas.catalog import DEFAULT_CATALOG
from schemas.headers import Observation

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
SCENARIOS = Path(__file__).resolve().parent
MESOS_FIXTURES = sorted(
    [p for p in (FIXTURES / "mesos-operator-api").glob("*.json")] + [p for p in (FIXTURES / "mesos-state").glob("*.json")]
)
ENTITY_TABLES = ("agents", "frameworks", "tasks")
LEADER = master_of("127.0.0.1:5050")


def scenario_name(fixture: Path) -> str:
    return f"{fixture.parent.name}--{fixture.stem}"


def fixture_kind(fixture: Path) -> str:
    """``stream`` (one event per line), ``get-state``, ``master-state`` or ``agent-state``."""
    text = fixture.read_bytes()
    if fixture.parent.name == "mesos-operator-api":
        first = orjson.loads(text.splitlines()[0])
        return "get-state" if first.get("type") == "GET_STATE" else "stream"
    return "master-state" if orjson.loads(text).get("leader") else "agent-state"


def observe(fixture: Path) -> tuple[MemorySink, Publisher]:
    """Feed a stream, GET_STATE or master-state fixture through the pure producer path."""
    sink = MemorySink()
    publisher = Publisher(sink, "mesos", {alias: {} for alias in ("cluster", *ENTITY_TABLES)})
    observer = MesosObserver(publisher, [])
    kind = fixture_kind(fixture)
    if kind == "stream":
        for line in fixture.read_bytes().splitlines():
            if line.strip():
                observer.on_event(orjson.loads(line), LEADER, time.time(), Observation.now())
    elif kind == "get-state":
        problems = Problems()
        snapshot = snapshot_of_get_state(orjson.loads(fixture.read_bytes())["get_state"], problems)
        observer.on_snapshot(snapshot, LEADER, time.time(), Observation.now())
    elif kind == "master-state":
        snapshot, leader, problems = parse_master_state(fixture.read_bytes())
        observer.on_snapshot(snapshot, leader, time.time(), Observation.now())
    else:
        raise ValueError(f"{fixture} is an agent state: only the simulator turns it into a cluster")
    for problem in problems.found if kind != "stream" else ():
        publisher.reject(problem)
    return sink, publisher


def tables_of(sink_table) -> dict[str, dict]:
    """{alias: {key: value as JSON}} for the entity tables, from a function alias -> {key: bytes}."""
    return {alias: {k: orjson.loads(v) for k, v in sorted(sink_table(DEFAULT_CATALOG.topic(alias).name).items())} for alias in ENTITY_TABLES}


def golden_path(fixture: Path) -> Path:
    return SCENARIOS / scenario_name(fixture) / "mesos-tables.json"


def expected_tables(fixture: Path, actual: dict[str, dict] | None = None) -> dict[str, dict]:
    """The golden tables; with WAYFINDER_UPDATE_GOLDEN=1 and ``actual`` given, rewrite them first."""
    path = golden_path(fixture)
    if actual is not None and os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return orjson.loads(path.read_bytes())
