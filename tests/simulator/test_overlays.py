"""PUT /sim/agents/{agent id}/overlays: tasks launched on that agent on that overlay get the
lowest free addresses of the given subnets, as host-local on a Wayfinder node hands them out;
an agent without them keeps the made-up addresses."""

from __future__ import annotations

from simulator.task_builder import task_ips

UCR = {"id": "/ov/ucr", "instances": 2, "networks": [{"mode": "container", "name": "dcos"}],
       "container": {"type": "MESOS"}}
DOCKER = {"id": "/ov/docker", "instances": 1, "networks": [{"mode": "container", "name": "dcos"}],
          "container": {"type": "DOCKER", "docker": {"image": "nginx"}}}


async def ips_of(sim, app_id: str) -> list[str]:
    return sorted(ip for task in sim.model.app_tasks(app_id) for ip in task_ips(task))


async def test_tasks_get_addresses_from_the_agents_subnets(start_sim, control):
    sim = await start_sim()
    _, added = await control(sim, "POST", "/sim/agents", {"hostname": "10.0.0.9", "id": "S9"})
    status, reply = await control(sim, "PUT", "/sim/agents/S9/overlays",
                                  {"dcos": {"mesos": "9.0.2.0/25", "docker": "9.0.2.128/25"}})
    assert (status, reply) == (200, {"agent_id": "S9", "overlays": {"dcos": {"MESOS": "9.0.2.0/25", "DOCKER": "9.0.2.128/25"}}})
    await control(sim, "POST", "/sim/apps", UCR)
    assert await ips_of(sim, "/ov/ucr") == ["9.0.2.2", "9.0.2.3"]  # .0 the network, .1 the bridge
    await control(sim, "POST", "/sim/apps", DOCKER)
    assert await ips_of(sim, "/ov/docker") == ["9.0.2.130"]
    # A freed address is handed out again first, as host-local's lowest free.
    (first, _) = sorted(sim.model.app_tasks("/ov/ucr"), key=lambda t: task_ips(t))
    await control(sim, "DELETE", f"/sim/tasks/{first['task_id']['value']}")
    await control(sim, "PUT", "/sim/apps/ov/ucr/instances/2")
    assert await ips_of(sim, "/ov/ucr") == ["9.0.2.2", "9.0.2.3"]


async def test_one_subnet_serves_every_containerizer_and_an_empty_body_forgets_it(start_sim, control):
    sim = await start_sim()
    await control(sim, "POST", "/sim/agents", {"hostname": "10.0.0.9", "id": "S9"})
    await control(sim, "PUT", "/sim/agents/S9/overlays", {"dcos": "9.0.5.0/29"})
    await control(sim, "POST", "/sim/apps", DOCKER)
    assert await ips_of(sim, "/ov/docker") == ["9.0.5.2"]
    status, reply = await control(sim, "PUT", "/sim/agents/S9/overlays", {})
    assert (status, reply) == (200, {"agent_id": "S9", "overlays": {}})
    await control(sim, "POST", "/sim/apps", UCR)
    assert all(ip.startswith("9.0.1.") for ip in await ips_of(sim, "/ov/ucr"))  # the made-up pool of agent 1


async def test_bad_bodies_and_unknown_agents_are_refused(start_sim, control):
    sim = await start_sim()
    await control(sim, "POST", "/sim/agents", {"hostname": "10.0.0.9", "id": "S9"})
    assert await control(sim, "PUT", "/sim/agents/S8/overlays", {"dcos": "9.0.5.0/29"}) == (
        404, {"message": "agent S8 does not exist"})
    status, reply = await control(sim, "PUT", "/sim/agents/S9/overlays", {"dcos": "9.0.5.1/29"})
    assert status == 400 and reply["message"].startswith("overlay dcos: '9.0.5.1/29' is not a subnet")
    status, reply = await control(sim, "PUT", "/sim/agents/S9/overlays", {"dcos": {"ucr": "9.0.5.0/29"}})
    assert status == 400 and "unknown containerizer" in reply["message"]
    assert (await control(sim, "PUT", "/sim/agents/S9/overlays", ["dcos"]))[0] == 400
