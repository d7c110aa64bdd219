"""deploy/: the systemd units, the TOML example and the Marathon apps are usable as shipped."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest

from cli.config_file import CONFIGURED_COMMANDS, defaults_from, options_of
from cli.main import main
from producers.marathon.normalize import app_of
from producers.problems import Problems

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
EXAMPLE = DEPLOY / "wayfinder.toml.example"
APPS = sorted((DEPLOY / "marathon").glob("*.json"))
UNIT_COMMANDS = {"wayfinder-producer.service": "produce", "wayfinder-processor.service": "process",
                 "wayfinder-node.service": "node"}


def _command(name: str) -> click.Command:
    """`wayfinder NAME` (main.commands holds only those imported so far: cli.main.LazyGroup)."""
    return main.get_command(click.Context(main), name)


def _unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(path.read_text())
    return unit


def test_there_is_a_unit_for_each_long_running_command():
    assert [path.name for path in UNITS] == sorted(UNIT_COMMANDS)


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_each_unit_restarts_and_reads_the_hosts_one_config_file(path):
    unit = _unit(path)
    service = unit["Service"]
    assert service["ExecStart"] == (f"/opt/wayfinder/.venv/bin/wayfinder {UNIT_COMMANDS[path.name]} "
                                    "--config /etc/wayfinder/wayfinder.toml")
    assert service["Restart"] == "always" and float(service["RestartSec"]) > 0
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"  # never give up on a long Kafka outage
    assert int(service["TimeoutStopSec"]) >= 5  # every process stops within 5 s of SIGTERM
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_systemd_itself_accepts_each_unit(path, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze")
    # systemd checks that ExecStart's program exists: point it at this checkout's.
    wayfinder = Path(sys.executable).with_name("wayfinder")
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace("/opt/wayfinder/.venv/bin/wayfinder", str(wayfinder)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                            capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if path.name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.parametrize("command", CONFIGURED_COMMANDS)
def test_the_example_config_parses_for_every_command(command):
    defaults = defaults_from(tomllib.loads(EXAMPLE.read_text()), command, options_of(_command(command)),
                             str(EXAMPLE))
    assert defaults["bootstrap"].count(":9092") == 3


def _documented_keys() -> dict[str, set[str]]:
    """Every key the example shows, set or commented out, by table ('' for the top)."""
    keys: dict[str, set[str]] = {"": set()}
    table = ""
    for line in EXAMPLE.read_text().splitlines():
        if found := re.fullmatch(r"\[(\w+)\]", line.strip()):
            table = found[1]
            keys[table] = set()
        elif found := re.match(r"#? ?([a-z][a-z0-9_]*) = ", line):
            keys[table].add(found[1])
    return keys


@pytest.mark.parametrize("command", CONFIGURED_COMMANDS)
def test_the_example_documents_every_option_of_every_command(command):
    documented = _documented_keys()
    options = set(options_of(_command(command)))
    assert options - documented[""] - documented[command] == set()
    # And shows nothing that is no option (a commented-out key included).
    assert documented[command] - options == set()
    assert documented[""] - options == set()


@pytest.mark.parametrize("path", APPS, ids=lambda path: path.name)
def test_each_marathon_app_is_read_by_our_own_normalizer_without_problems(path):
    raw = json.loads(path.read_text())
    problems = Problems()
    app = app_of(raw, problems)
    assert problems.found == []
    assert app.id == f"/wayfinder/{path.stem}"
    assert raw["constraints"] == [["hostname", "UNIQUE"]]
    assert raw["cpus"] > 0 and raw["mem"] >= 512
    # The health check asks the metrics endpoint, on the port the process listens on.
    [check] = app.health_checks
    assert (check.protocol, check.path, check.port_index) == ("MESOS_HTTP", "/metrics", 0)
    port = raw["portDefinitions"][0]["port"]
    assert f"--metrics-listen=0.0.0.0:{port}" in raw["args"] and raw["requirePorts"] is True


@pytest.mark.parametrize("path", APPS, ids=lambda path: path.name)
def test_each_marathon_apps_arguments_are_accepted_by_its_command(path):
    raw = json.loads(path.read_text())
    command = _command(raw["args"][0])
    context = command.make_context(raw["args"][0], list(raw["args"][1:]))
    assert context.params  # parsed: every argument is a real option of the command


def test_processors_run_two_on_different_hosts_and_upgrade_one_at_a_time():
    processor = json.loads((DEPLOY / "marathon" / "processor.json").read_text())
    assert processor["instances"] == 2
    assert processor["upgradeStrategy"] == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
