"""Marathon hostname constraints decide which agents the simulator launches on."""

from simulator.operations import add_agent, meets_constraints, put_app
from simulator.render_control import stamps
from simulator.server import load_model
from tests.scenarios.mesos_fixtures import FIXTURES

SOURCE = {"client_ip": "127.0.0.1", "uri": "/v2/apps"}


def test_like_unlike_and_cluster():
    like = {"constraints": [["hostname", "LIKE", r"10\.200\..*"]]}
    assert meets_constraints(like, "10.200.2.11") and not meets_constraints(like, "172.17.0.3")
    assert not meets_constraints({"constraints": [["hostname", "UNLIKE", "172.*"]]}, "172.17.0.3")
    assert meets_constraints({"constraints": [["hostname", "CLUSTER", "a"]]}, "a")
    assert not meets_constraints({"constraints": [["hostname", "CLUSTER", "a"]]}, "b")
    assert meets_constraints({"constraints": [["rack", "LIKE", "x"]]}, "anything")  # not simulated


def test_launch_lands_only_on_matching_agents():
    model = load_model(FIXTURES / "mesos-operator-api" / "operator-api.json")
    for n in (11, 12):
        add_agent(model, {"hostname": f"10.200.2.{n}", "id": f"demo-{n}"})
    app = {"id": "/pinned", "instances": 4, "constraints": [["hostname", "LIKE", r"10\.200\..*"]]}
    changes = stamps(put_app(model, app, SOURCE))
    agents = {c["agent_id"] for c in changes if c["kind"] == "task_state" and c["state"] == "TASK_RUNNING"}
    assert agents == {"demo-11", "demo-12"}
