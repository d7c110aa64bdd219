"""`wayfinder` imports a subcommand's module only when that command runs (cli.main.LazyGroup),
so that a quick command such as `wayfinder vips` does not pay for the others' imports."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cli.main import LAZY_COMMANDS, main

# What `import cli.main` and `wayfinder vips --node` must not pull in: the libraries of other
# commands, each tens or hundreds of ms of start-up.
HEAVY = ("aiohttp", "pyroute2", "asyncio", "prometheus_client", "confluent_kafka", "simulator")


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_lazy_entry_names_its_command_and_its_short_help(name):
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command) and command.name == name
    # The listing is built from the table: it must read as the command's own would, at any width.
    stand_in = click.Command(name, help=LAZY_COMMANDS[name].short_help)
    for limit in (30, 45, 70, 200):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_help_lists_every_command_without_importing_the_lazy_ones():
    code = ("import sys; from click.testing import CliRunner; from cli.main import main, LAZY_COMMANDS; "
            "out = CliRunner().invoke(main, ['--help']).output; "
            "print(sorted(m for m in (lazy.module for lazy in LAZY_COMMANDS.values()) if m in sys.modules)); "
            "print(sorted(n for n in LAZY_COMMANDS if f'  {n} ' not in out))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["[]", "[]"], done.stdout + done.stderr


def test_the_vips_command_imports_none_of_the_heavy_libraries():
    code = ("import sys; from cli.main import main; import click; "
            "main.get_command(click.Context(main), 'vips'); "
            "import appliers.l4lb.inspect, appliers.l4lb.kernel, appliers.status_body; "  # what it imports when run
            f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_a_lazy_command_runs_and_a_group_lists_its_own_subcommands():
    result = CliRunner().invoke(main, ["overlay", "--help"])
    assert result.exit_code == 0 and "docker-network" in result.output
    assert CliRunner().invoke(main, ["vips", "--node", "/nonexistent/x.sock", "--help"]).exit_code == 0
