"""`wayfinder tail` filtering and formatting; published schema drift; the catalog."""

import orjson
import pytest

from runtime.kafka.reader import ConsumedRecord
from cli.tail import as_json, as_line, matches, parse_filters
from schemas import publish
from schemas.catalog import DEFAULT_CATALOG, Catalog

EVENT = {"kind": "task_running", "entity": "tasks", "id": "web.1", "source": "mesos", "observed_at": 1.5,
         "fields": {"name": "web", "state": "TASK_RUNNING", "healthy": None}}
RECORD = ConsumedRecord("wayfinder.events", 2, 41, 1764140000123, "web.1", orjson.dumps(EVENT), [("wf-trace", b"abc")])


def test_filters_match_dotted_paths_and_key():
    assert matches("web.1", EVENT, parse_filters(["kind=task_running", "fields.name=web"]))
    assert matches("web.1", EVENT, parse_filters(["key=web.1", "fields.healthy=null"]))
    assert not matches("web.1", EVENT, parse_filters(["fields.state=TASK_KILLED"]))
    assert not matches("web.1", EVENT, parse_filters(["fields.missing=x"]))


def test_one_frameworks_task_is_followed_by_its_key_or_by_task_and_framework_ids():
    """Two frameworks' tasks of one id: the key, or both ids, pick exactly one of them."""
    mine = dict(EVENT, id="F1/server-0", fields=dict(EVENT["fields"], task_id="server-0", framework_id="F1"))
    theirs = dict(EVENT, id="F2/server-0", fields=dict(EVENT["fields"], task_id="server-0", framework_id="F2"))
    by_key = parse_filters(["key=F1/server-0"])
    by_ids = parse_filters(["fields.task_id=server-0", "fields.framework_id=F1"])
    for filters in (by_key, by_ids):
        assert [e["id"] for e in (mine, theirs) if matches(e["id"], e, filters)] == ["F1/server-0"]
    assert [e["id"] for e in (mine, theirs) if matches(e["id"], e, parse_filters(["fields.task_id=server-0"]))] == [
        "F1/server-0", "F2/server-0"]
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_filters(["kind"])


def test_json_output_has_every_field():
    assert orjson.loads(as_json(RECORD, EVENT)) == {
        "topic": "wayfinder.events", "key": "web.1", "value": EVENT, "headers": {"wf-trace": "abc"},
        "partition": 2, "offset": 41, "timestamp": 1764140000123,
    }


def test_human_lines():
    assert as_line("events", RECORD, EVENT) == "06:53:20.123 task_running         web.1  name=web state=TASK_RUNNING"
    assert as_line("tasks", RECORD, None) == "06:53:20.123 tasks      web.1  (deleted)"


def test_published_schemas_match_the_types():
    stale = [path.name for path, data in publish.rendered().items() if not path.exists() or path.read_bytes() != data]
    assert stale == [], "run `wayfinder schemas --write`"


def test_catalog_names_every_issue_alias_once():
    assert DEFAULT_CATALOG.aliases() == ["agents", "frameworks", "tasks", "cluster", "apps", "app-tasks", "events", "rejections", "vips", "dns", "haproxy", "overlay", "status"]
    assert len({t.name for t in DEFAULT_CATALOG.topics}) == len(DEFAULT_CATALOG.topics)
    assert DEFAULT_CATALOG.topic("tasks").config["cleanup.policy"] == "compact"
    assert DEFAULT_CATALOG.topic("events").config["cleanup.policy"] == "delete"
    with pytest.raises(KeyError, match="known: agents"):
        DEFAULT_CATALOG.topic("nope")
    assert Catalog("cluster-b").topic("tasks").name == "cluster-b.mesos.tasks"
    with pytest.raises(ValueError, match="namespace"):
        Catalog("bad name")
