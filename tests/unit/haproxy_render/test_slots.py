"""The slot planner: which changes are runtime-only, with their exact commands, and which reload."""

import dataclasses

import msgspec

from appliers.haproxy.render import BackendSlots, SlotState, render
from appliers.haproxy.slots import assign, plan, slot_commands
from schemas.haproxy import HealthCheck
from tests.unit.haproxy_render.conftest import SETTINGS, server, service

WEB = dict(vhosts=["web.example.com"])


def running(*servers, **fields):
    """What HAProxy runs after the first plan for /web with `servers`."""
    first = plan(None, [service("/web", 10001, *servers, **(fields or WEB))], SETTINGS)
    assert first.reload_reason == "HAProxy runs no config of ours yet"
    return first.applied()


def test_nothing_changed_is_converged():
    current = running(server(1), server(2))
    step = plan(current, [service("/web", 10001, server(1), server(2), **WEB)], SETTINGS)
    assert step.converged and step.commands == ()


def test_a_new_task_takes_the_lowest_free_slot_without_reload():
    current = running(server(1), server(2))
    step = plan(current, [service("/web", 10001, server(1), server(2), server(3), **WEB)], SETTINGS)
    assert not step.reload
    assert step.commands == (
        "set server web_10001/s3 addr 10.200.3.13 port 31003",
        "set server web_10001/s3 state ready",
    )


def test_a_task_going_away_empties_its_slot_and_the_others_keep_theirs():
    current = running(server(1), server(2), server(3))
    step = plan(current, [service("/web", 10001, server(1), server(3), **WEB)], SETTINGS)
    assert not step.reload
    assert step.commands == (
        "set server web_10001/s2 state maint",
        "set server web_10001/s2 addr 127.0.0.1 port 1",
    )
    assert step.assignment["web_10001"].servers == (server(1), None, server(3), None)


def test_one_leaving_and_one_arriving_reuse_the_slot():
    current = running(server(1), server(2))
    step = plan(current, [service("/web", 10001, server(2), server(5), **WEB)], SETTINGS)
    assert step.commands == ("set server web_10001/s1 addr 10.200.3.15 port 31005",)


def test_health_flip_and_draining_are_runtime_only():
    current = running(server(1), server(2))
    step = plan(current, [service("/web", 10001, server(1, healthy=False), server(2, draining=True), **WEB)], SETTINGS)
    assert not step.reload
    assert step.commands == (
        "set server web_10001/s1 state maint",
        "set server web_10001/s2 weight 0",
    )
    back = plan(step.applied(), [service("/web", 10001, server(1, healthy=True), server(2), **WEB)], SETTINGS)
    assert back.commands == ("set server web_10001/s1 state ready", "set server web_10001/s2 weight 1")


def test_health_is_ignored_when_the_node_does_not_check_health():
    settings = dataclasses.replace(SETTINGS, health_check=False)
    current = plan(None, [service("/web", 10001, server(1), **WEB)], settings).applied()
    step = plan(current, [service("/web", 10001, server(1, healthy=False), **WEB)], settings)
    assert step.converged


def test_an_address_change_of_the_same_server_is_one_command():
    current = running(server(1))
    moved = msgspec.structs.replace(server(1), ip="10.200.3.99")
    step = plan(current, [service("/web", 10001, moved, **WEB)], SETTINGS)
    assert step.commands == ("set server web_10001/s1 addr 10.200.3.99 port 31001",)


def test_scaled_to_zero_and_back_never_reloads():
    current = running(server(1), server(2))
    zero = plan(current, [service("/web", 10001, **WEB)], SETTINGS)
    assert not zero.reload
    back = plan(zero.applied(), [service("/web", 10001, server(3), **WEB)], SETTINGS)
    assert not back.reload
    assert back.commands == ("set server web_10001/s1 addr 10.200.3.13 port 31003", "set server web_10001/s1 state ready")


def test_outgrowing_the_slots_reloads_into_the_next_power_of_two():
    current = running(server(1), server(2), server(3), server(4))
    step = plan(current, [service("/web", 10001, *(server(n) for n in range(1, 6)), **WEB)], SETTINGS)
    assert step.reload_reason == "backend web_10001 outgrew its 4 slots"
    assert step.assignment["web_10001"].servers == tuple(server(n) for n in range(1, 6)) + (None,) * 3


def test_capacity_does_not_shrink_while_the_backend_exists():
    current = plan(None, [service("/web", 10001, *(server(n) for n in range(1, 6)), **WEB)], SETTINGS).applied()
    step = plan(current, [service("/web", 10001, server(1), **WEB)], SETTINGS)
    assert not step.reload and step.assignment["web_10001"].capacity == 8


def test_structure_changes_reload():
    current = running(server(1))
    new_backend = plan(current, [service("/web", 10001, server(1), **WEB), service("/api", 10002, server(2))], SETTINGS)
    assert new_backend.reload_reason == "new backends api_10002"
    removed = plan(current, [], SETTINGS)
    assert removed.reload_reason == "removed backends web_10001"
    new_rule = plan(current, [service("/web", 10001, server(1), vhosts=["web.example.com"], path="/v2")], SETTINGS)
    assert new_rule.reload_reason == "frontends, rules or settings changed"
    new_setting = plan(current, [service("/web", 10001, server(1), **WEB)], dataclasses.replace(SETTINGS, hard_stop_after="5s"))
    assert new_setting.reload_reason == "frontends, rules or settings changed"


def test_after_a_reload_the_config_holds_what_the_commands_would_have_set():
    current = running(server(1), server(2))
    desired = [service("/web", 10001, server(2), server(3, draining=True), **WEB)]
    step = plan(current, desired, SETTINGS)
    text = render(desired, SETTINGS, step.assignment).text
    assert "  server s1 10.200.3.13:31003 weight 0\n  server s2 10.200.3.12:31002\n" in text


def test_assign_keeps_slots_by_server_name():
    previous = {"web_10001": BackendSlots((None, server(2), None, server(4)))}
    result = assign(previous, [service("/web", 10001, server(1), server(2), server(3), server(4))])
    assert result["web_10001"].servers == (server(1), server(2), server(3), server(4))


def test_slot_commands_stop_traffic_first_and_start_it_last():
    empty = SlotState("127.0.0.1", 1, 1, False)
    draining = SlotState("10.200.3.11", 31001, 0, True)
    assert slot_commands("be/s1", empty, draining) == [
        "set server be/s1 addr 10.200.3.11 port 31001", "set server be/s1 weight 0", "set server be/s1 state ready"]
    assert slot_commands("be/s1", draining, empty) == [
        "set server be/s1 state maint", "set server be/s1 addr 127.0.0.1 port 1", "set server be/s1 weight 1"]


CHECK = HealthCheck(kind="http", interval_s=2, timeout_s=10, fall=3, path="/health")


def test_a_checked_slot_gets_its_check_port_at_runtime():
    current = running(server(1), **WEB, health_check=CHECK)
    step = plan(current, [service("/web", 10001, server(1), server(2, check_port=32002), **WEB, health_check=CHECK)], SETTINGS)
    assert step.commands == (
        "set server web_10001/s2 addr 10.200.3.12 port 31002",
        "set server web_10001/s2 check-port 32002",
        "set server web_10001/s2 state ready",
    )
    moved = plan(step.applied(), [service("/web", 10001, server(1, check_port=32001), server(2, check_port=32002),
                                          **WEB, health_check=CHECK)], SETTINGS)
    assert moved.commands == ("set server web_10001/s1 check-port 32001",)


def test_the_check_port_is_written_on_the_servers_line():
    desired = [service("/web", 10001, server(1), server(2, check_port=32002), **WEB, health_check=CHECK)]
    text = render(desired, SETTINGS, {}).text
    assert "  server s1 10.200.3.11:31001 check inter 2s fall 3\n" in text
    assert "  server s2 10.200.3.12:31002 check inter 2s fall 3 port 32002\n" in text
    assert "  server s3 127.0.0.1:1 check inter 2s fall 3 disabled\n" in text
