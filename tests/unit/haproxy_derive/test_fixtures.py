"""Golden HAProxy services for every shared Marathon app document.

Each document (``../shared/fixtures/marathon-apps/``, an app, or ``{"apps": [...]}`` with
embedded tasks) goes through the Marathon producer's normalizer (``app_of`` /
``app_task_of``) and the HAProxy table; the expected output is
``golden/<document>.json``: every record by key, then the rejections and the tasks left out.
``WAYFINDER_UPDATE_GOLDEN=1`` rewrites the files; review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import orjson
import pytest

from processors.haproxy.table import HaproxyTable
from producers.marathon.normalize import app_of, app_task_of
from producers.problems import Problems

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "marathon-apps"
GOLDEN = Path(__file__).resolve().parent / "golden"
DOCUMENTS = sorted(FIXTURES.rglob("*.json"))


def golden_name(document: Path) -> str:
    return str(document.relative_to(FIXTURES)).replace("/", "__")


def derived_of(document: Path) -> dict:
    raw = orjson.loads(document.read_bytes())
    raw_apps = raw["apps"] if "apps" in raw else [raw]
    updates = []
    for raw_app in raw_apps:
        app = app_of(raw_app, Problems())
        updates.append(("app", app.id, app))
        updates.extend(("app_task", task.id, task) for task in (app_task_of(t, app.id) for t in raw_app.get("tasks") or []))
    table = HaproxyTable()
    table.put_many(updates)
    return {
        "services": {key: msgspec.to_builtins(table.records[key]) for key in sorted(table.records)},
        "rejections": sorted(msgspec.to_builtins(list(r)) for problems in table.rejections.values() for r in problems),
    }


def expected(document: Path, actual: bytes) -> bytes:
    path = GOLDEN / golden_name(document)
    if os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
        path.write_bytes(actual)
    return path.read_bytes()


def test_every_document_is_covered():
    assert len(DOCUMENTS) == 12
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(golden_name(d) for d in DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=golden_name)
def test_golden_services(document):
    actual = orjson.dumps(derived_of(document), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    assert actual.decode() == expected(document, actual).decode()


def test_zdd_pair_merges_like_marathon_lb():
    """zdd_apps.json (marathon-lb's test_zdd_app): /nginx-green (older) and /nginx-blue merge
    into /nginx on green's port; one old task, the first by id, drains: min(3 old, 1 healthy
    new, 1 + 3 - 3) = 1."""
    services = derived_of(FIXTURES / "zdd_apps.json")["services"]
    (service,) = services.values()
    assert (service["app_id"], service["backend"], service["bind_port"]) == ("/nginx", "nginx_10000", 10000)
    draining = [s["task_id"] for s in service["servers"] if s["draining"]]
    assert draining == ["nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f"]
    assert len(service["servers"]) == 4
