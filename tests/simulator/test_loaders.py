"""Loading real Mesos and Marathon documents into the model (pure, no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator import load_model
from simulator.convert import unwrap
from simulator.render_marathon import apps_document
from simulator.render_mesos import master_state
from tests.simulator.conftest import FIXTURES


def by_id(tasks: dict) -> dict:
    """The model's tasks (keyed <framework id>/<task id>) by bare task id: each fixture here
    runs a task id in one framework only."""
    return {unwrap(task["task_id"]): task for task in tasks.values()}


def meta_by_id(model) -> dict:
    return {key.split("/", 1)[1]: meta for key, meta in model.task_meta.items()}

# (agents, active tasks, task ids of the "marathon" framework's apps) after loading.
EXPECTED = {
    "mesos-operator-api/dns-hostname.json": (1, 1),
    "mesos-operator-api/hello-overlay.json": (2, 4),
    "mesos-operator-api/hello-world.json": (2, 0),
    "mesos-operator-api/operator-api.json": (2, 12),
    "mesos-operator-api/pod-tasks.json": (1, 1),
    "mesos-operator-api/recovered-agents.json": (1, 1),
    "mesos-operator-api/tcp-and-udp.json": (1, 1),
    "mesos-operator-api/unhealthy.json": (1, 1),
    "mesos-operator-api/vip-labels.json": (1, 1),
    "mesos-state/bad-state-gaal.json": (3, 102),
    "mesos-state/docker.json": (1, 1),
    "mesos-state/empty.json": (0, 0),
    "mesos-state/fake2.json": (3, 1),
    "mesos-state/state-overlay.json": (2, 2),
    "mesos-state/state1.json": (1, 2),
    "mesos-state/state2.json": (3, 1),
    "mesos-state/state3.json": (3, 2),
    "mesos-state/state5.json": (1, 2),
    "mesos-state/state6.json": (2, 10),
    "mesos-state/state7.json": (3, 1),
    "mesos-state/state_di.json": (3, 1),
    "mesos-state/two-healthcheck-free-vips-state.json": (1, 4),
    "mesos-state/ucr-bridge-mode.json": (1, 2),
}


def test_the_table_covers_every_mesos_fixture():
    on_disk = {str(p.relative_to(FIXTURES)) for d in ("mesos-state", "mesos-operator-api")
               for p in (FIXTURES / d).glob("*.json")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_mesos_fixture_loads(name):
    model = load_model(FIXTURES / name)
    agents, tasks = EXPECTED[name]
    assert (len(model.agents), len(model.tasks)) == (agents, tasks)
    # Every Marathon task has an app, and the two views agree on the task ids.
    marathon_ids = {unwrap(t["task_id"]) for t in model.tasks.values() if model.is_marathon_task(t)}
    listed = {t["id"] for app in apps_document(model, True)["apps"] for t in app["tasks"]}
    assert listed == marathon_ids


def test_master_state():
    model = load_model(FIXTURES / "mesos-state/state2.json")
    assert model.master["leader"] == "master@10.0.5.163:5050"
    assert {a: r["agent_info"]["hostname"] for a, r in model.agents.items()} == {
        "b2d07a6a-4012-4a7f-8635-224d04de674e-S2": "10.0.5.163",
        "b2d07a6a-4012-4a7f-8635-224d04de674e-S1": "10.0.4.192",
        "b2d07a6a-4012-4a7f-8635-224d04de674e-S0": "10.0.2.234",
    }
    task = by_id(model.tasks)["sleep.bf108244-ec7f-11e5-b98e-82ce0fb60967"]
    assert task["state"] == "TASK_RUNNING"
    assert unwrap(task["agent_id"]) == "b2d07a6a-4012-4a7f-8635-224d04de674e-S0"
    assert task["resources"][-1] == {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 19426, "end": 19426}]}}
    assert task["discovery"]["ports"]["ports"][0]["labels"] == {"labels": [{"key": "vip", "value": "1.2.3.4:8080"}]}
    assert meta_by_id(model)[unwrap(task["task_id"])]["app_id"] == "/sleep"
    assert model.apps["/sleep"]["instances"] == 1


def test_big_master_state_keeps_completed_tasks_per_framework():
    model = load_model(FIXTURES / "mesos-state/bad-state-gaal.json")
    assert sorted(model.apps) == ["/app1", "/marathon-alice", "/ping-as-a-service"]
    assert len(model.completed()) == 1000
    assert {fw["framework_info"]["name"] for fw in model.frameworks.values()} == {"marathon", "marathon-alice"}


def test_agent_state_becomes_a_one_agent_cluster_led_by_master_hostname():
    model = load_model(FIXTURES / "mesos-state/ucr-bridge-mode.json")
    assert model.master["leader"] == "master@ip-10-0-7-253.us-west-2.compute.internal:5050"
    assert list(model.agents) == ["384d6e5b-d578-433c-a7b2-691508695dbe-S0"]
    agent = model.agents["384d6e5b-d578-433c-a7b2-691508695dbe-S0"]
    assert (agent["agent_info"]["hostname"], agent["pid"]) == ("10.0.2.5", "slave(1)@10.0.2.5:5051")
    task = by_id(model.tasks)["foo-1.272b2208-6b16-11e7-b302-3edf0088f09a"]
    assert task["container"]["docker"]["port_mappings"] == [{"host_port": 21768, "container_port": 80, "protocol": "tcp"}]
    assert task["statuses"][0]["labels"] == {"labels": [{"key": "Docker.NetworkSettings.IPAddress", "value": "172.17.0.2"}]}
    assert sorted(model.apps) == ["/foo", "/foo-1"]
    state1 = load_model(FIXTURES / "mesos-state/state1.json")
    assert state1.master["leader"] == "master@ubuntu:5050"
    assert sorted(by_id(state1.tasks)) == ["sleep.85df5710-e493-11e5-b2f1-0242816970c9",
                                    "sleep10.4bfae841-e496-11e5-b2f1-0242816970c9"]


def test_event_stream_is_replayed_to_its_final_state():
    model = load_model(FIXTURES / "mesos-operator-api/operator-api.json")
    assert {fw["framework_info"]["name"] for fw in model.frameworks.values()} == {"metronome", "marathon"}
    task = by_id(model.tasks)["docker-on-dcos.0ebe53e8-2630-11e8-af52-70b3d5800001"]
    assert task["state"] == "TASK_RUNNING"
    ips = task["statuses"][-1]["container_status"]["network_infos"][0]["ip_addresses"]
    assert ips == [{"protocol": "IPv4", "ip_address": "9.0.2.130"}]
    assert meta_by_id(model)["pod-on-host.instance-ea1231bf-2930-11e8-96bf-70b3d5800001.app"]["app_id"] == "/pod-on-host"
    # hello-world.json ends with every task killed or finished and one framework removed.
    world = load_model(FIXTURES / "mesos-operator-api/hello-world.json")
    assert world.tasks == {}
    assert {fw["framework_info"]["name"] for fw in world.frameworks.values()} == {"marathon", "metronome"}
    assert "52b1358f-044b-4382-8b05-d972166ff18f-0002" in world.completed_frameworks


def test_recovered_agents_stay_recovered_until_re_added(tmp_path):
    full = load_model(FIXTURES / "mesos-operator-api/recovered-agents.json")
    assert full.recovered_agents == {}
    assert list(by_id(full.tasks)) == ["web.instance-8b38cc52-c951-11e9-8d5b-70b3d5800001._app.2"]
    assert [unwrap(t["task_id"]) for t in full.completed()] == ["web.instance-8b38cc52-c951-11e9-8d5b-70b3d5800001._app.1"]
    assert meta_by_id(full)["web.instance-8b38cc52-c951-11e9-8d5b-70b3d5800001._app.2"]["app_id"] == "/web"
    first_line = (FIXTURES / "mesos-operator-api/recovered-agents.json").read_text().splitlines()[0]
    (tmp_path / "subscribed-only.json").write_text(first_line + "\n")
    snapshot = load_model(tmp_path / "subscribed-only.json")
    assert snapshot.agents == {}
    assert list(snapshot.recovered_agents) == ["65fccc5d-35a8-4cae-9eb2-05922043018e-S0"]


def test_get_state_reply_with_launched_tasks():
    model = load_model(FIXTURES / "mesos-operator-api/vip-labels.json")
    assert list(by_id(model.tasks)) == ["app.c9e19be4-6a94-11e8-bfc9-70b3d5800002"]
    assert model.agents["3de98647-82e7-4a22-8fb5-32df27c1ef69-S0"]["pid"] == "slave(1)@172.17.0.3:5051"
    app = model.apps["/app"]
    assert app["instances"] == 1
    assert [(p["name"], p["labels"]) for p in app["portDefinitions"]] == [
        ("foo", {"VIP_0": "/abc:80", "VIP_1": "/cbd:80"}), ("bar", {}), ("baz", {"VIP_2": "/xyz:443"}), ("qux", {})]
    [task] = apps_document(model, True)["apps"][0]["tasks"]
    assert (task["host"], task["ports"], task["healthCheckResults"][0]["alive"]) == ("172.17.0.3", [9999, 10000, 10001, 10002], True)


def test_marathon_apps_alone_synthesise_the_mesos_side():
    model = load_model(None, FIXTURES / "marathon-apps/marathon15_apps.json")
    assert list(model.agents) == ["db7b40e2-791c-445f-b373-183e2a648a86-S1"]
    assert model.agents["db7b40e2-791c-445f-b373-183e2a648a86-S1"]["agent_info"]["hostname"] == "10.0.2.148"
    [framework] = model.frameworks.values()
    assert framework["framework_info"]["name"] == "marathon"
    task = by_id(model.tasks)["pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc"]
    assert task["state"] == "TASK_RUNNING"
    assert task["container"]["docker"]["port_mappings"] == [{"host_port": 1565, "container_port": 80, "protocol": "tcp"}]
    assert task["discovery"]["ports"]["ports"] == [{"number": 1565, "name": "test", "protocol": "tcp", "labels": {
        "labels": [{"key": "network-scope", "value": "host"}]}}]
    assert task["statuses"][0]["container_status"]["network_infos"][0]["ip_addresses"] == [
        {"protocol": "IPv4", "ip_address": "172.17.0.2"}]
    # Round trip: the Marathon view gives back what the document said.
    [listed] = apps_document(model, True)["apps"][0]["tasks"]
    assert {k: listed[k] for k in ("id", "host", "slaveId", "ports", "ipAddresses", "startedAt", "stagedAt", "version")} == {
        "id": "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc", "host": "10.0.2.148",
        "slaveId": "db7b40e2-791c-445f-b373-183e2a648a86-S1", "ports": [1565],
        "ipAddresses": [{"ipAddress": "172.17.0.2", "protocol": "IPv4"}],
        "startedAt": "2017-07-19T17:35:15.654Z", "stagedAt": "2017-07-19T17:34:43.039Z",
        "version": "2017-07-19T17:34:41.967Z"}


def test_blue_green_apps_round_trip_through_the_mesos_side():
    path = FIXTURES / "marathon-apps/zdd_apps.json"
    model = load_model(None, path)
    assert sorted(model.apps) == ["/nginx-blue", "/nginx-green"]
    assert sorted(r["agent_info"]["hostname"] for r in model.agents.values()) == ["10.0.1.147", "10.0.6.25"]
    fields = ("id", "host", "slaveId", "ports", "ipAddresses", "startedAt", "stagedAt", "healthCheckResults")
    given = {t["id"]: {k: t[k] for k in fields} for a in json.loads(path.read_text())["apps"] for t in a["tasks"]}
    served = {t["id"]: {k: t[k] for k in fields} for a in apps_document(model, True)["apps"] for t in a["tasks"]}
    assert len(served) == 4 and served == given
    green = apps_document(model, True)["apps"][0]
    assert (green["id"], green["tasksRunning"], green["tasksHealthy"]) == ("/nginx-green", 3, 3)


def test_bare_app_definition_is_deployed_on_a_loaded_cluster():
    model = load_model(FIXTURES / "mesos-state/state2.json", FIXTURES / "marathon-apps/ci-backends/docker_ippc.json", seed=3)
    tasks = model.app_tasks("/nginx-docker-ippc")
    assert len(tasks) == 4 and all(t["state"] == "TASK_RUNNING" for t in tasks)
    network = tasks[0]["statuses"][-1]["container_status"]["network_infos"][0]
    assert network["name"] == "dcos" and network["ip_addresses"][0]["ip_address"].startswith("9.0.")
    alone = load_model(None, FIXTURES / "marathon-apps/ci-backends/docker_ippc.json")
    assert (len(alone.apps), len(alone.tasks), len(alone.agents)) == (1, 0, 0)


def test_browser_comment_lines_are_stripped(tmp_path):
    original = (FIXTURES / "mesos-state/state2.json").read_text()
    exported = tmp_path / "exported.json"
    exported.write_text("// saved from the browser console\n// http://10.0.5.163:5050/master/state\n" + original)
    model = load_model(exported)
    assert model.master["leader"] == "master@10.0.5.163:5050"
    assert list(by_id(model.tasks)) == ["sleep.bf108244-ec7f-11e5-b98e-82ce0fb60967"]


@pytest.mark.parametrize("text, problem", [
    ('{"slaves": [', "malformed JSON at line 1"),
    ('{"hello": "world"}', "not a Mesos master state"),
    ('{"type":"SUBSCRIBED","subscribed":{"get_state":{}}}\n{"type":"TASK_EXPLODED"}\n', "unknown event type"),
    ('{"type":"SUBSCRIBED","subscribed":{"get_state":{}}}\n{"type": \n', "malformed JSON event at line 2"),
    ("", "empty"),
])
def test_malformed_mesos_documents_name_the_file(tmp_path, text, problem):
    path = tmp_path / "broken-state.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as raised:
        load_model(path)
    assert str(path) in str(raised.value)


def test_malformed_marathon_document_names_the_file(tmp_path):
    path = tmp_path / "apps.json"
    path.write_text('{"apps": [{"id": "/Bad_Name"}]}')
    with pytest.raises(ValueError, match="invalid app id '/Bad_Name'") as raised:
        load_model(None, path)
    assert str(path) in str(raised.value)


def test_missing_file_is_a_value_error():
    with pytest.raises(ValueError, match="cannot read"):
        load_model(Path("/nonexistent/state.json"))


MASTER_STATES = ["bad-state-gaal", "docker", "fake2", "state-overlay", "state2", "state3", "state6", "state7",
                 "state_di", "two-healthcheck-free-vips-state"]


@pytest.mark.parametrize("name", MASTER_STATES)
def test_master_state_round_trips_through_the_v1_model(name):
    """Legacy -> v1 model -> legacy keeps every task field a consumer reads."""
    original = json.loads((FIXTURES / f"mesos-state/{name}.json").read_text())
    rendered = master_state(load_model(FIXTURES / f"mesos-state/{name}.json"))
    assert rendered["leader"] == original["leader"]
    for theirs, ours in zip(original["frameworks"], rendered["frameworks"], strict=True):
        assert {k: ours.get(k) for k in ("id", "name", "pid", "hostname")} == {
            k: theirs.get(k) for k in ("id", "name", "pid", "hostname")}
        assert len(ours["tasks"]) == len(theirs["tasks"])
        for their_task, our_task in zip(theirs["tasks"], ours["tasks"]):
            for key in ("id", "name", "framework_id", "slave_id", "state", "discovery", "container"):
                assert our_task.get(key) == their_task.get(key), key
            assert our_task.get("labels", []) == (their_task.get("labels") or [])
            assert {k: our_task["resources"][k] for k in their_task["resources"]} == their_task["resources"]
            for their_status, our_status in zip(their_task["statuses"], our_task["statuses"], strict=True):
                assert (our_status["state"], our_status["timestamp"], our_status.get("healthy")) == (
                    their_status["state"], their_status["timestamp"], their_status.get("healthy"))
    for theirs, ours in zip(original["slaves"], rendered["slaves"], strict=True):
        assert (ours["id"], ours["pid"], ours["hostname"], ours["attributes"]) == (
            theirs["id"], theirs["pid"], theirs["hostname"], theirs["attributes"])
        assert {k: ours["resources"][k] for k in theirs["resources"]} == theirs["resources"]
