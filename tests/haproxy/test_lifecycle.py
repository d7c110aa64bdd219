"""HAProxy's life under the node: runtime-only membership changes, reloads only for structure,
a refused config that changes nothing, no failed request under churn or reload, and nothing
left behind after stop."""

import os
import socket
import threading
import time

import msgspec
import pytest

from appliers.haproxy.process import ConfigRejected, HaproxyError, HaproxyProcess, ReloadFailed, group_members
from appliers.haproxy.render import BackendSlots
from appliers.haproxy.slots import Applied, skeleton
from schemas.haproxy import HealthCheck
from tests.haproxy.conftest import server_for, service
from tests.haproxy.loopback import free_ports, get


def test_membership_changes_go_through_the_runtime_api_without_reload(balancer, backends):
    b1, b2, b3 = backends(3)
    (port,) = free_ports(1)
    assert balancer.apply([service("/web", port, b1)]).action == "started"
    before = balancer.process.show_proc()

    added = balancer.apply([service("/web", port, b1, b2, b3)])
    first, second = sorted([b2, b3], key=lambda b: server_for(b).name)  # new servers fill in name order
    assert added.action == "runtime" and added.plan.commands == (
        f"set server web_{port}/s2 addr 127.0.0.1 port {first.port}", f"set server web_{port}/s2 state ready",
        f"set server web_{port}/s3 addr 127.0.0.1 port {second.port}", f"set server web_{port}/s3 state ready",
    )
    assert {get(port).body for _ in range(6)} == {"b1", "b2", "b3"}

    removed = balancer.apply([service("/web", port, b3)])
    assert removed.action == "runtime"
    assert {get(port).body for _ in range(4)} == {"b3"}

    state = balancer.process.runtime.servers_state()[f"web_{port}"]
    b3_slot = "s2" if first is b3 else "s3"
    assert (state[b3_slot].port, state[b3_slot].maintenance, state[b3_slot].up) == (b3.port, False, True)
    assert (state["s1"].port, state["s1"].maintenance) == (1, True)

    after = balancer.process.show_proc()
    assert after.reloads == before.reloads  # the master never reloaded
    assert [w.pid for w in after.current_workers] == [w.pid for w in before.current_workers]


def test_unhealthy_and_draining_servers_get_no_new_requests(balancer, backends):
    b1, b2, b3 = backends(3)
    (port,) = free_ports(1)
    balancer.apply([service("/web", port, b1, b2, b3)])
    web = service("/web", port, b1, b2, b3)
    sick = msgspec.structs.replace(web, servers=[
        server_for(b1), server_for(b2, healthy=False), server_for(b3, draining=True)])
    assert balancer.apply([sick]).action == "runtime"
    assert {get(port).body for _ in range(4)} == {"b1"}


def test_a_structural_change_is_exactly_one_reload(balancer, backends):
    b1, b2 = backends(2)
    p1, p2 = free_ports(2)
    balancer.apply([service("/one", p1, b1)])
    before = balancer.reloads()
    result = balancer.apply([service("/one", p1, b1), service("/two", p2, b2)])
    assert result.action == "reloaded" and result.plan.reload_reason == f"new backends two_{p2}"
    assert balancer.reloads() == before + 1
    assert get(p1).body == "b1" and get(p2).body == "b2"
    assert balancer.apply([service("/one", p1, b1), service("/two", p2, b2)]).action == "unchanged"
    assert balancer.reloads() == before + 1


def test_outgrowing_the_slots_reloads_and_serves_everyone(balancer, backends):
    made = backends(5)
    (port,) = free_ports(1)
    balancer.apply([service("/web", port, *made[:4])])
    result = balancer.apply([service("/web", port, *made)])
    assert result.action == "reloaded" and "outgrew its 4 slots" in result.plan.reload_reason
    assert {get(port).body for _ in range(10)} == {"b1", "b2", "b3", "b4", "b5"}


def test_a_refused_config_keeps_the_last_good_one_serving(balancer, backends):
    b1, b2 = backends(2)
    p1, p2 = free_ports(2)
    balancer.apply([service("/one", p1, b1)])
    before = balancer.reloads()
    good_text = balancer.process.config_path.read_text()
    broken = service("/two", p2, b2, ssl_cert=str(balancer.process.directory / "missing.pem"))
    with pytest.raises(ConfigRejected, match="missing.pem"):
        balancer.apply([service("/one", p1, b1), broken])
    assert balancer.process.config_path.read_text() == good_text
    assert balancer.reloads() == before
    assert get(p1).body == "b1"
    with pytest.raises(ConfigRejected):
        balancer.process.apply("global\n  no-such-keyword\n")
    assert get(p1).body == "b1"


def test_a_refused_runtime_command_falls_back_to_a_reload(balancer, backends):
    b1, b2 = backends(2)
    (port,) = free_ports(1)
    web = service("/web", port, b1, b2)
    balancer.apply([service("/web", port, b1)])
    # pretend HAProxy had 8 slots, b2 in s5 at another port: the command for s5 is refused
    moved = msgspec.structs.replace(server_for(b2), port=1)
    wrong = {f"web_{port}": BackendSlots((server_for(b1), None, None, None, moved, None, None, None))}
    balancer.current = Applied(skeleton([web], balancer.settings, wrong), wrong)
    result = balancer.apply([web])
    assert result.action == "reloaded" and "No such server" in result.fallback
    assert {get(port).body for _ in range(4)} == {"b1", "b2"}


class Client:
    """Sends requests in a loop from a thread (new connection each) until stopped or bounded."""

    def __init__(self, port: int, max_requests: int = 20000, max_seconds: float = 60.0):
        self.port, self.max_requests, self.max_seconds = port, max_requests, max_seconds
        self.stop = threading.Event()
        self.bodies: list[str] = []
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stop.is_set() and len(self.bodies) + len(self.failures) < self.max_requests \
                and time.monotonic() < deadline:
            try:
                reply = get(self.port, timeout=5.0)
                (self.bodies if reply.status == 200 else self.failures).append(reply.body or str(reply.status))
            except OSError as error:
                self.failures.append(repr(error))

    def __enter__(self) -> "Client":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_no_failed_request_during_backend_churn(balancer, backends):
    made = backends(4)
    (port,) = free_ports(1)
    balancer.apply([service("/web", port, *made)])
    reloads = balancer.reloads()
    memberships = [made[:1], made[1:3], made[3:], made[:2], made, made[2:3]]
    with Client(port) as client:
        for step in range(30):
            balancer.apply([service("/web", port, *memberships[step % len(memberships)])])
            time.sleep(0.05)
    assert client.failures == [] and len(client.bodies) > 50
    assert set(client.bodies) <= {"b1", "b2", "b3", "b4"}
    assert balancer.reloads() == reloads


def test_no_failed_request_during_structural_reloads(balancer, backends):
    made = backends(2)
    ports = free_ports(6)
    services = [service("/web", ports[0], *made)]
    balancer.apply(services)
    reloads = balancer.reloads()
    with Client(ports[0]) as client:
        for n in range(1, 6):
            services = services + [service(f"/extra{n}", ports[n], made[0])]
            assert balancer.apply(services).action == "reloaded"
            time.sleep(0.1)
    assert client.failures == [] and len(client.bodies) > 50
    assert balancer.reloads() == reloads + 5


def test_stop_leaves_no_haproxy_process(balancer, backends):
    (app,) = backends(1)
    (port,) = free_ports(1)
    balancer.apply([service("/web", port, app)])
    balancer.apply([service("/web", port, app), service("/more", free_ports(1)[0], app)])  # a reload
    table = balancer.process.show_proc()
    pids = [table.master_pid] + [w.pid for w in table.workers]
    group = balancer.process.pid
    balancer.process.stop()
    assert group_members(group) == []
    assert [pid for pid in pids if os.path.exists(f"/proc/{pid}") and _state(pid) != "Z"] == []
    assert not balancer.process.running


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_health_checked_slot_filled_at_runtime_is_checked_at_its_new_address(balancer, backends):
    b1, b2 = backends(2)
    (port,) = free_ports(1)
    check = HealthCheck(kind="http", interval_s=1, timeout_s=1, fall=1, path="/")
    balancer.apply([service("/web", port, b1, health_check=check)])
    assert balancer.apply([service("/web", port, b1, b2, health_check=check)]).action == "runtime"
    assert {get(port).body for _ in range(4)} == {"b1", "b2"}  # serves at once
    b2.close()  # the task dies before Marathon says so: HAProxy's own check takes it out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _up(balancer, f"web_{port}", b2.port):
        time.sleep(0.1)
    assert not _up(balancer, f"web_{port}", b2.port)
    assert {get(port).body for _ in range(4)} == {"b1"}


def _up(balancer, backend: str, port: int) -> bool:
    servers = balancer.process.runtime.servers_state()[backend].values()
    return any(s.port == port and s.up for s in servers)


def test_a_port_taken_by_another_process_fails_the_reload_and_the_old_config_serves(balancer, backends):
    (app,) = backends(1)
    p1, p2 = free_ports(2)
    balancer.apply([service("/one", p1, app)])
    good_text = balancer.process.config_path.read_text()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", p2))
        squatter.listen()
        with pytest.raises(ReloadFailed, match="cannot bind socket") as failure:
            balancer.apply([service("/one", p1, app), service("/two", p2, app)])
        assert failure.value.unbindable == [f"two_{p2}"]  # the service to leave out
        assert balancer.process.config_path.read_text() == good_text
        assert get(p1).body == "b1"
    # the port is free again: the same change now goes through
    assert balancer.apply([service("/one", p1, app), service("/two", p2, app)]).action == "reloaded"
    assert get(p2).body == "b1" and get(p1).body == "b1"


def test_a_new_process_stops_the_haproxy_a_killed_node_left_behind(balancer, backends):
    (app,) = backends(1)
    (port,) = free_ports(1)
    balancer.apply([service("/web", port, app)])
    orphan = balancer.process.pid
    balancer.process = HaproxyProcess(balancer.settings)  # the node restarted and knows nothing
    assert balancer.apply([service("/web", port, app)]).action == "started"
    assert group_members(orphan) == []
    assert get(port).body == "b1"


def test_a_check_port_set_at_runtime_is_where_haproxy_checks(balancer, backends):
    b1, b2 = backends(2)
    port, closed = free_ports(2)
    check = HealthCheck(kind="http", interval_s=1, timeout_s=1, fall=1, path="/")
    balancer.apply([service("/web", port, b1, health_check=check)])
    web = service("/web", port, b1, b2, health_check=check)
    web = msgspec.structs.replace(web, servers=[server_for(b1), server_for(b2, check_port=closed)])
    result = balancer.apply([web])
    assert result.action == "runtime" and any(c.endswith(f"check-port {closed}") for c in result.plan.commands)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _up(balancer, f"web_{port}", b2.port):
        time.sleep(0.1)
    assert not _up(balancer, f"web_{port}", b2.port)  # b2 itself answers, its check port does not


def test_a_first_start_that_cannot_bind_names_the_frontend(balancer, backends):
    (app,) = backends(1)
    p1, p2 = free_ports(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", p2))
        squatter.listen()
        with pytest.raises(HaproxyError) as failure:
            balancer.apply([service("/one", p1, app), service("/two", p2, app)])
        assert failure.value.unbindable == [f"two_{p2}"]
        assert not balancer.process.running
        assert balancer.apply([service("/one", p1, app)]).action == "started"
        assert get(p1).body == "b1"
