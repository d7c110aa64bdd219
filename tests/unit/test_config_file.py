"""`--config FILE` (TOML): the pure parser, and the CLI taking options from it with the
command line winning."""

from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner

from cli.config_file import ConfigFileError, OptionShape, defaults_from
from cli.main import main

OPTIONS = {
    "bootstrap": OptionShape("bootstrap"),
    "agent_ip": OptionShape("agent_ip"),
    "roles": OptionShape("roles"),
    "upstream": OptionShape("upstreams", multiple=True),
    "no_haproxy_health_check": OptionShape("no_haproxy_health_check", flag=True),
    "dns_tcp_max": OptionShape("dns_tcp_max"),
}


def parse(text: str, command: str = "node") -> dict:
    return defaults_from(tomllib.loads(text), command, OPTIONS, "host.toml")


def test_top_level_keys_then_the_commands_own_table_over_them():
    text = 'bootstrap = "k:9092"\nroles = "dns"\n[node]\nroles = "l4lb,dns"\nagent_ip = "10.0.0.1"\n'
    assert parse(text) == {"bootstrap": "k:9092", "roles": "l4lb,dns", "agent_ip": "10.0.0.1"}


def test_another_commands_table_is_left_to_that_command():
    assert parse('[produce]\nmesos = "http://m:5050"\n[node]\nroles = "dns"\n') == {"roles": "dns"}


def test_keys_map_to_click_parameter_names_with_their_shapes():
    text = 'upstream = ["10.0.0.53", "10.0.0.54:5353"]\nno_haproxy_health_check = true\ndns_tcp_max = 64\n'
    assert parse(text) == {"upstreams": ["10.0.0.53", "10.0.0.54:5353"], "no_haproxy_health_check": True,
                           "dns_tcp_max": 64}
    assert parse('upstream = "10.0.0.53"') == {"upstreams": ["10.0.0.53"]}


def test_an_unknown_key_is_refused_with_its_name_and_the_command():
    with pytest.raises(ConfigFileError, match=r"^host.toml \[node\]: unknown key 'agent_pi': `wayfinder node` has no --agent-pi$"):
        parse('[node]\nagent_pi = "10.0.0.1"\n')
    with pytest.raises(ConfigFileError, match=r"^host.toml: unknown key 'mesos'"):
        parse('mesos = "http://m:5050"\n')


def test_an_unknown_table_is_refused():
    with pytest.raises(ConfigFileError, match=r"unknown table \[nodes\]; the tables are \[produce\], \[process\], \[node\]"):
        parse('[nodes]\nroles = "dns"\n')


@pytest.mark.parametrize("text, message", [
    ('no_haproxy_health_check = "yes"', "no_haproxy_health_check is a flag: true or false"),
    ("roles = true", "roles takes a string or a number, got True"),
    ('roles = ["dns"]', "roles takes a string or a number"),
    ("upstream = [{a = 1}]", "upstream takes a string or a number"),
])
def test_a_value_of_the_wrong_shape_is_refused(text, message):
    with pytest.raises(ConfigFileError, match=message):
        parse(text)


def test_the_cli_takes_options_from_the_file_and_the_command_line_wins(tmp_path, monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def capture(options):
        seen.update(vars(options))
        raise Stop

    monkeypatch.setattr("appliers.node.Node", capture)
    config = tmp_path / "wayfinder.toml"
    config.write_text('bootstrap = "k:9092"\n[node]\nnode_id = "agent-7"\nagent_ip = "10.0.0.7"\n'
                      'roles = "dns"\nupstream = ["10.0.0.53"]\ndns_tcp_max = 64\n')
    result = CliRunner().invoke(main, ["node", "--config", str(config), "--roles", "l4lb,dns"])
    assert isinstance(result.exception, Stop), result.output
    assert seen["bootstrap"] == "k:9092" and seen["node_id"] == "agent-7" and seen["agent_ip"] == "10.0.0.7"
    assert seen["roles"] == ("l4lb", "dns")  # the command line's
    assert seen["upstreams"] == ("10.0.0.53",) and seen["max_tcp_connections"] == 64


def test_the_cli_refuses_an_unknown_key_and_a_file_that_is_not_toml(tmp_path):
    config = tmp_path / "wayfinder.toml"
    config.write_text('[process]\nsession_timeout = 3000\n')
    result = CliRunner().invoke(main, ["process", "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown key 'session_timeout': `wayfinder process` has no --session-timeout" in result.output
    config.write_text("roles = \n")
    result = CliRunner().invoke(main, ["process", "--config", str(config)])
    assert result.exit_code == 2 and "not TOML" in result.output and "Traceback" not in result.output
