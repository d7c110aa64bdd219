"""The incremental table: a change re-derives only its logical app; the result equals a
fresh derivation; refusals are reported once; the stage publishes and rejects."""

import msgspec

from processors.haproxy.agent import HaproxyStage
from processors.haproxy.table import HaproxyTable
from processors.stage import SourceRecord
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.mesos import Agent
from tests.unit.haproxy_derive.builders import host_app, task

AGENT = Agent(id="agent-1", hostname="agent1", ip="10.0.0.1")
WEB = host_app("/web", ports=(10000, 10001), labels={"HAPROXY_GROUP": "ext,int", "HAPROXY_0_VHOST": "web.example.com"})
API = host_app("/api", labels={"HAPROXY_0_VHOST": "api.example.com"})


def loaded() -> HaproxyTable:
    table = HaproxyTable()
    table.put_many([("agent", AGENT.id, AGENT), ("app", WEB.id, WEB), ("app", API.id, API),
                    ("app_task", "web.1", task("web.1", ports=(31000, 31001))), ("app_task", "api.1", task("api.1", app_id="/api"))])
    return table


def without_servers(records):
    return {key: msgspec.structs.replace(value, servers=[]) for key, value in records.items()}


def test_a_task_change_changes_only_the_servers_of_its_app():
    table = loaded()
    before = dict(table.records)
    changes, causes = table.apply_batch([("app_task", "web.2", task("web.2", ports=(32000, 32001)))])
    assert sorted(changes) == ["ext:/web:10000", "ext:/web:10001", "int:/web:10000", "int:/web:10001"]
    assert causes == dict.fromkeys(changes, 0)
    assert without_servers(table.records) == without_servers(before)
    assert [s.task_id for s in table.records["ext:/web:10000"].servers] == ["web.1", "web.2"]
    assert table.records[":/api:10000"] is before[":/api:10000"]
    # Leaving: the same keys, back to what they were.
    changes = table.put_many([("app_task", "web.2", None)])
    assert {key: value for key, value in changes.items()} == {key: before[key] for key in changes}


def test_unchanged_updates_change_nothing_and_the_order_does_not_matter():
    table = loaded()
    assert table.put_many([("app", WEB.id, WEB), ("app_task", "web.1", task("web.1", ports=(31000, 31001)))]) == {}
    other = HaproxyTable()
    other.put_many([("app_task", "api.1", task("api.1", app_id="/api")), ("app", API.id, API),
                    ("app_task", "web.1", task("web.1", ports=(31000, 31001))), ("app", WEB.id, WEB), ("agent", AGENT.id, AGENT)])
    assert other.records == table.records


def test_an_agent_change_moves_its_servers_and_unknown_agent_falls_back():
    table = loaded()
    changes = table.put_many([("agent", AGENT.id, msgspec.structs.replace(AGENT, ip="10.0.0.9"))])
    assert len(changes) == 5 and {s.ip for r in table.records.values() for s in r.servers} == {"10.0.0.9"}
    table.put_many([("agent", AGENT.id, None)])  # host "agent1" is no IP: the tasks are left out
    assert all(r.servers == [] for r in table.records.values())


def test_app_deleted_and_bad_label_then_fixed():
    table = loaded()
    assert table.put_many([("app", API.id, None)]) == {":/api:10000": None}
    bad = msgspec.structs.replace(WEB, labels={**WEB.labels, "HAPROXY_GROUP": "e x t"})
    changes = table.put_many([("app", WEB.id, bad)])
    assert changes == dict.fromkeys(["ext:/web:10000", "ext:/web:10001", "int:/web:10000", "int:/web:10001"])
    assert [r.label for r in table.take_rejections()] == ["HAPROXY_GROUP"]
    table.put_many([("app_task", "web.2", task("web.2"))])
    assert table.take_rejections() == []  # the same problem is not reported again
    table.put_many([("app", WEB.id, WEB)])
    assert len(table.records) == 4 and table.rejections == {} and table.take_rejections() == []


def test_an_app_moving_into_a_deployment_group():
    table = loaded()
    moved = msgspec.structs.replace(API, labels={**API.labels, "HAPROXY_DEPLOYMENT_GROUP": "shop"})
    changes = table.put_many([("app", API.id, moved)])
    assert changes[":/api:10000"] is None and [s.task_id for s in changes[":/shop:10000"].servers] == ["api.1"]


def test_the_stage_publishes_records_and_rejections():
    stage = HaproxyStage(Catalog("t"))
    stage.start({})
    obs = Observation.now()
    bad = host_app("/bad", labels={"HAPROXY_0_PORT": "99999"})
    batch = {"apps": [SourceRecord("apps", "/api", codec.encode(API), obs), SourceRecord("apps", "/bad", codec.encode(bad), obs)],
             "app-tasks": [SourceRecord("app-tasks", "api.1", codec.encode(task("api.1", app_id="/api", host="10.0.0.3")), obs)]}
    stage.apply(batch)

    class Sink:
        published = []

        def publish(self, topic, key, value, headers):
            self.published.append((topic, key, value))

    sink = Sink()
    assert stage.publish_pending(sink) == 1
    ((topic, key, value),) = sink.published
    assert (topic, key) == ("t.haproxy.services", ":/api:10000")
    assert codec.decode(value, type(stage.table.records[key])).servers[0].ip == "10.0.0.3"
    (rejection,) = stage.take_rejections()
    assert (rejection.source, rejection.what) == ("haproxy", "HAProxy label HAPROXY_0_PORT of port index 0 of app /bad")
    assert rejection.why == "is not an integer from 1 to 65535" and rejection.excerpt == "HAPROXY_0_PORT=99999"
