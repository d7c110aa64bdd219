"""The Marathon observer over real marathon-lb fixtures and SSE events."""

import orjson
import pytest

from producers.marathon.observer import MarathonObserver
from producers.marathon.sse import ServerSentEvent
from producers.problems import InputRejected
from producers.publisher import Publisher
from runtime.tables import MemorySink
from schemas.headers import Observation
from tests.scenarios.mesos_fixtures import FIXTURES

APPS = FIXTURES / "marathon-apps"


def new_observer():
    sink = MemorySink()
    return sink, MarathonObserver(Publisher(sink, "marathon", {"apps": {}, "app-tasks": {}}))


def table(sink, name):
    return {k: orjson.loads(v) for k, v in sink.table(name).items()}


def sse(kind, body):
    return ServerSentEvent(kind, orjson.dumps(body).decode())


def test_zdd_apps_resync_publishes_both_apps_and_their_tasks():
    sink, observer = new_observer()
    observer.on_apps((APPS / "zdd_apps.json").read_bytes(), Observation.now())
    apps = table(sink, "wayfinder.marathon.apps")
    assert sorted(apps) == ["/nginx-blue", "/nginx-green"]
    green = apps["/nginx-green"]
    assert green["labels"]["HAPROXY_DEPLOYMENT_COLOUR"] == "green"
    assert green["port_mappings"] == [
        {"container_port": 8080, "host_port": 0, "service_port": 10000, "protocol": "tcp", "name": None, "labels": {}}
    ]
    assert green["networks"] == [{"mode": "container/bridge", "name": None}]
    tasks = table(sink, "wayfinder.marathon.tasks")
    first = tasks["nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f"]
    assert (first["app_id"], first["host"], first["ip_addresses"], first["ports"]) == (
        "/nginx-green", "10.0.6.25", ["172.17.1.72"], [16916]
    )


def test_marathon15_network_shape():
    sink, observer = new_observer()
    observer.on_apps((APPS / "marathon15_apps.json").read_bytes(), Observation.now())
    app = table(sink, "wayfinder.marathon.apps")["/pywebserver"]
    assert app["networks"] == [{"mode": "container/bridge", "name": None}]
    assert app["port_mappings"][0]["name"] == "test"
    assert app["port_mappings"][0]["service_port"] == 10101


def test_status_updates_health_and_termination():
    sink, observer = new_observer()
    observer.on_apps(b'{"apps": [{"id": "/web", "instances": 1}]}', Observation.now())
    sink.records.clear()
    running = {"taskId": "web.1", "appId": "/web", "taskStatus": "TASK_RUNNING", "host": "10.0.1.1", "slaveId": "S0", "ports": [31000], "ipAddresses": [{"ipAddress": "10.0.1.1", "protocol": "IPv4"}]}
    observer.on_event(sse("status_update_event", running), Observation.now())
    observer.on_event(sse("health_status_changed_event", {"appId": "/web", "taskId": "web.1", "alive": False}), Observation.now())
    task = table(sink, "wayfinder.marathon.tasks")["web.1"]
    assert task["health_check_results"] == [{"alive": False, "consecutive_failures": 0}]
    observer.on_event(sse("status_update_event", {**running, "taskStatus": "TASK_KILLED"}), Observation.now())
    assert sink.table("wayfinder.marathon.tasks") == {}
    kinds = [orjson.loads(v)["kind"] for _, v in sink.log("wayfinder.events")]
    assert kinds == ["app_task_updated", "task_health_changed", "app_task_removed"]


def test_app_terminated_removes_the_app_and_its_tasks():
    sink, observer = new_observer()
    observer.on_apps((APPS / "zdd_apps.json").read_bytes(), Observation.now())
    sink.records.clear()
    observer.on_event(sse("app_terminated_event", {"appId": "/nginx-blue"}), Observation.now())
    assert sorted(observer.publisher.tables["apps"].keys()) == ["/nginx-green"]
    remaining = observer.publisher.tables["app-tasks"].items()
    assert {task.app_id for _, task in remaining} == {"/nginx-green"}
    assert ("/nginx-blue", None) in sink.log("wayfinder.marathon.apps")


def test_api_post_and_deployment_ask_for_a_fetch():
    _, observer = new_observer()
    assert observer.on_event(sse("api_post_event", {"appDefinition": {"id": "prod/web"}}), Observation.now()) == {"/prod/web"}
    plan = {"plan": {"steps": [{"actions": [{"action": "ScaleApplication", "app": "/a"}, {"app": "/b"}]}]}}
    assert observer.on_event(sse("deployment_success", plan), Observation.now()) == {"/a", "/b"}


def test_bad_input_is_rejected_and_valid_parts_kept():
    sink, observer = new_observer()
    body = {"apps": [{"id": "/ok", "instances": 2, "labels": {"HAPROXY_GROUP": "external", "BROKEN": 7}}, {"instances": 1}]}
    observer.on_apps(orjson.dumps(body), Observation.now())
    observer.on_event(ServerSentEvent("status_update_event", '{"taskId": '), Observation.now())
    observer.on_event(sse("framework_message_event", {}), Observation.now())
    with pytest.raises(InputRejected, match="malformed JSON"):
        observer.on_apps(b"<html>502</html>", Observation.now())
    assert table(sink, "wayfinder.marathon.apps")["/ok"]["labels"] == {"HAPROXY_GROUP": "external"}
    reasons = [orjson.loads(v)["why"] for _, v in sink.log("wayfinder.rejections")]
    assert reasons[0] == "app /ok: label 'BROKEN' has a non-string value"
    assert reasons[1] == "an app must be an object with an id"
    assert reasons[2].startswith("malformed JSON in status_update_event")
    assert reasons[3] == "unknown event type 'framework_message_event'"
