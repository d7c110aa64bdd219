"""Fuzzing the Marathon parser from the real /v2/apps fixtures: one app (or one of its
tasks) is broken. Nothing raises out, every other app and task comes out exactly as from
the unbroken reply, and a broken app that is not published is reported in rejections."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.marathon.observer import MarathonObserver
from producers.publisher import Publisher
from runtime.tables import MemorySink
from schemas import codec
from schemas.catalog import DEFAULT_CATALOG
from schemas.headers import Observation
from tests.scenarios.mesos_fixtures import FIXTURES
from tests.unit.producers.mutations import breakage, mutated

TABLES = ("apps", "app-tasks")
APPS_REPLIES = [p for p in sorted((FIXTURES / "marathon-apps").rglob("*.json")) if b'"apps"' in p.read_bytes()[:20]]


def observe(reply: dict, sink: MemorySink | None = None) -> tuple[dict, list]:
    sink = sink or MemorySink()
    observer = MarathonObserver(Publisher(sink, "marathon", {alias: {} for alias in TABLES}))
    observer.on_apps(orjson.dumps(reply), Observation.now())
    tables = {alias: sink.table(DEFAULT_CATALOG.topic(alias).name) for alias in TABLES}
    rejections = [orjson.loads(v) for _, v in sink.log(DEFAULT_CATALOG.topic("rejections").name)]
    return tables, rejections


@pytest.mark.parametrize("fixture", APPS_REPLIES, ids=lambda p: p.stem)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_broken_app_rejects_only_itself(fixture, data):
    reply = orjson.loads(fixture.read_bytes())
    victim = data.draw(st.sampled_from(range(len(reply["apps"]))))
    app = reply["apps"][victim]
    path, action, wrong = data.draw(breakage(app))
    broken = dict(reply, apps=[mutated(app, path, action, wrong) if i == victim else a for i, a in enumerate(reply["apps"])])

    (good_tables, good_rejections), (tables, rejections) = observe(reply), observe(broken)
    victim_id = "/" + app["id"].lstrip("/")
    for alias in TABLES:
        for key, value in tables[alias].items():
            codec.decode(value, DEFAULT_CATALOG.topic(alias).value_type)
    others = {k: v for k, v in good_tables["apps"].items() if k != victim_id}
    assert {k: v for k, v in tables["apps"].items() if k in others} == others
    other_tasks = {k: v for k, v in good_tables["app-tasks"].items() if orjson.loads(v)["app_id"] != victim_id}
    assert {k: v for k, v in tables["app-tasks"].items() if k in other_tasks} == other_tasks
    if victim_id not in tables["apps"] and len(tables["apps"]) == len(others):
        assert len(rejections) > len(good_rejections)
        assert any(r["what"] == "app" for r in rejections)
