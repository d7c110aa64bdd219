"""The Mesos master API over real HTTP: /master/state, GET_STATE, SUBSCRIBE, leader redirects."""

from __future__ import annotations

import asyncio
import json

from simulator import load_model
from tests.simulator.conftest import FIXTURES, WAIT

AGENT_IDS = ["b2d07a6a-4012-4a7f-8635-224d04de674e-S2", "b2d07a6a-4012-4a7f-8635-224d04de674e-S1",
             "b2d07a6a-4012-4a7f-8635-224d04de674e-S0"]
SLEEP_TASK = "sleep.bf108244-ec7f-11e5-b98e-82ce0fb60967"
WEB = {"id": "/prod/web", "instances": 2, "cpus": 0.1, "mem": 64,
       "container": {"type": "DOCKER", "docker": {"image": "nginx"},
                     "portMappings": [{"containerPort": 80, "hostPort": 0, "labels": {"VIP_0": "/web:80"}}]},
       "networks": [{"mode": "container/bridge"}]}


async def test_master_state_is_the_legacy_document(cluster, http):
    async with http.get(cluster.mesos_url + "/master/state") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        state = await response.json()
    assert (state["leader"], state["pid"], state["hostname"]) == (
        "master@10.0.5.163:5050", "master@10.0.5.163:5050", "10.0.5.163")
    assert [s["id"] for s in state["slaves"]] == AGENT_IDS
    assert [s["pid"] for s in state["slaves"]] == ["slave(1)@10.0.5.163:5051", "slave(1)@10.0.4.192:5051",
                                                   "slave(1)@10.0.2.234:5051"]
    marathon = state["frameworks"][0]
    assert marathon["name"] == "marathon"
    [task] = marathon["tasks"]
    assert (task["id"], task["slave_id"], task["state"]) == (SLEEP_TASK, AGENT_IDS[2], "TASK_RUNNING")
    assert task["resources"]["ports"] == "[19426-19426]"
    assert "recovered_slaves" not in state
    async with http.get(cluster.mesos_url + "/state") as response:
        assert await response.json() == state


async def test_get_state_and_unknown_calls(cluster, http):
    async with http.post(cluster.mesos_url + "/api/v1", json={"type": "GET_STATE"}) as response:
        assert response.status == 200 and response.content_type == "application/json"
        reply = await response.json()
    assert reply["type"] == "GET_STATE"
    state = reply["get_state"]
    assert [t["task_id"]["value"] for t in state["get_tasks"]["tasks"]] == [SLEEP_TASK]
    assert [a["agent_info"]["id"]["value"] for a in state["get_agents"]["agents"]] == AGENT_IDS
    assert all(a["active"] is True for a in state["get_agents"]["agents"])
    assert [f["framework_info"]["name"] for f in state["get_frameworks"]["frameworks"]] == ["marathon", "marathon"]
    async with http.post(cluster.mesos_url + "/api/v1", json={"type": "LAUNCH_ROCKETS"}) as response:
        assert response.status == 400
        assert "LAUNCH_ROCKETS" in await response.text()
    async with http.post(cluster.mesos_url + "/api/v1", data=b'{"type": "GET_STATE"}') as response:
        assert response.status == 415  # no Content-Type
    async with http.post(cluster.mesos_url + "/api/v1", data=b"{not json",
                         headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400


async def test_non_leader_redirects_every_endpoint(start_sim, http):
    sim = await start_sim(leader_url="http://10.1.2.3:5050")
    for method, path in (("GET", "/master/state"), ("GET", "/state?jsonp=x"), ("POST", "/api/v1")):
        async with http.request(method, sim.mesos_url + path, json={"type": "SUBSCRIBE"},
                                allow_redirects=False) as response:
            assert response.status == 307
            assert response.headers["Location"] == "http://10.1.2.3:5050" + path


async def test_subscribe_frames_snapshot_heartbeat_and_launch_events(cluster, http, subscribe):
    stream = await subscribe(cluster)
    assert stream.response.headers["Content-Type"] == "application/json"
    assert stream.response.headers["Transfer-Encoding"] == "chunked"
    first = json.loads(await stream.raw_record())
    assert first["type"] == "SUBSCRIBED"
    snapshot = first["subscribed"]
    assert snapshot["heartbeat_interval_seconds"] == 0.2
    assert [t["task_id"]["value"] for t in snapshot["get_state"]["get_tasks"]["tasks"]] == [SLEEP_TASK]
    assert [a["agent_info"]["hostname"] for a in snapshot["get_state"]["get_agents"]["agents"]] == [
        "10.0.5.163", "10.0.4.192", "10.0.2.234"]
    assert [a["pid"] for a in snapshot["get_state"]["get_agents"]["agents"]][0] == "slave(1)@10.0.5.163:5051"
    # Mesos sends the first HEARTBEAT right after SUBSCRIBED, then one per interval.
    assert json.loads(await stream.raw_record()) == {"type": "HEARTBEAT"}
    assert json.loads(await stream.raw_record()) == {"type": "HEARTBEAT"}

    async with http.post(cluster.marathon_url + "/sim/apps", json=WEB) as response:
        assert response.status == 200
        changes = (await response.json())["changes"]
    launched = [c["task_id"] for c in changes if c.get("state") == "TASK_STAGING"]
    assert len(launched) == 2
    events = await stream.events(4)
    assert [(e["type"], e.get("task_added", {}).get("task", {}).get("task_id", {}).get("value")
             or e["task_updated"]["status"]["task_id"]["value"]) for e in events] == [
        ("TASK_ADDED", launched[0]), ("TASK_UPDATED", launched[0]),
        ("TASK_ADDED", launched[1]), ("TASK_UPDATED", launched[1])]
    added, updated = events[0]["task_added"]["task"], events[1]["task_updated"]
    assert added["state"] == "TASK_STAGING" and "statuses" not in added
    assert added["framework_id"] == {"value": "b2d07a6a-4012-4a7f-8635-224d04de674e-0001"}
    assert added["discovery"]["ports"]["ports"][0]["labels"]["labels"] == [
        {"key": "VIP_0", "value": "/web:80"}, {"key": "network-scope", "value": "host"}]
    assert added["container"]["docker"]["network"] == "BRIDGE"
    assert updated["state"] == "TASK_RUNNING" and updated["status"]["state"] == "TASK_RUNNING"
    assert updated["framework_id"] == added["framework_id"]
    assert updated["status"]["container_status"]["network_infos"] == [
        {"ip_addresses": [{"protocol": "IPv4", "ip_address": "172.17.0.2"}]}]
    # Round robin: the two tasks went to the first two agents.
    assert [e["task_added"]["task"]["agent_id"]["value"] for e in events[::2]] == AGENT_IDS[:2]


async def test_subscribe_snapshot_lists_recovered_agents(start_sim, http, subscribe, tmp_path):
    first_line = (FIXTURES / "mesos-operator-api/recovered-agents.json").read_text().splitlines()[0]
    (tmp_path / "subscribed.json").write_text(first_line)
    sim = await start_sim(load_model(tmp_path / "subscribed.json"))
    stream = await subscribe(sim)
    snapshot = (await stream.event())["subscribed"]["get_state"]
    assert snapshot["get_agents"] == {"recovered_agents": [json.loads(first_line)["subscribed"]["get_state"]
                                                           ["get_agents"]["recovered_agents"][0]]}
    async with http.get(sim.mesos_url + "/master/state") as response:
        state = await response.json()
    assert [s["id"] for s in state["recovered_slaves"]] == ["65fccc5d-35a8-4cae-9eb2-05922043018e-S0"]
    assert state["leader"] == f"master@127.0.0.1:{sim.mesos_url.rsplit(':', 1)[1]}"
    # Re-registering the agent turns it into an AGENT_ADDED and clears the recovered list.
    async with http.post(sim.marathon_url + "/sim/agents",
                         json={"id": "65fccc5d-35a8-4cae-9eb2-05922043018e-S0"}) as response:
        assert response.status == 200
    event = await stream.event()
    assert event["type"] == "AGENT_ADDED"
    assert event["agent_added"]["agent"]["agent_info"]["hostname"] == "172.17.0.4"
    async with http.post(sim.mesos_url + "/api/v1", json={"type": "GET_STATE"}) as response:
        agents = (await response.json())["get_state"]["get_agents"]
    assert "recovered_agents" not in agents and len(agents["agents"]) == 1


async def test_recordio_accept_header_and_stream_end_on_stop(start_sim, subscribe):
    sim = await start_sim(heartbeat_interval=30)
    stream = await subscribe(sim, Accept="application/recordio", **{"Message-Accept": "application/json"})
    assert stream.response.headers["Content-Type"] == "application/recordio"
    assert stream.response.headers["Message-Content-Type"] == "application/json"
    assert (await stream.event())["type"] == "SUBSCRIBED"
    assert json.loads(await stream.raw_record()) == {"type": "HEARTBEAT"}
    await asyncio.wait_for(sim.stop(), WAIT)
    assert await asyncio.wait_for(stream.response.content.read(), WAIT) == b""
