"""`--config FILE`: a command's options from a TOML file, one file per host.

A key is an option's name without its leading dashes, with ``_`` for ``-``: ``--agent-ip``
is ``agent_ip``, ``--mesos`` is ``mesos``, ``--upstream`` (repeatable) is ``upstream = [...]``,
a flag such as ``--mesos-poll`` is ``mesos_poll = true``. Values are what the command line
takes. Keys at the top of the file apply to every command that reads it (``bootstrap``,
``namespace``, ``kafka_config``); a table named after a command (``[produce]``,
``[process]``, ``[node]``) applies to that command only and wins over the top. So a master
running the producer and a processor, and a node, can share one file.

Command-line options win over the file (the file only fills click's ``default_map``), and
environment variables that an option reads win over it too, as click orders them. An
unknown key is refused with its name: a typo must not silently run with a default.

`defaults_from` is pure and takes the options as plain data; `config_option` is the click
glue that reads the command's own options by introspection.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

# The commands that read a config file; a table with another name is a mistake in the file.
CONFIGURED_COMMANDS = ("produce", "process", "node")


@dataclass(frozen=True)
class OptionShape:
    """What the parser needs to know of one option."""

    param: str  # click's parameter name, the default_map key (``mesos_url`` for ``--mesos``)
    flag: bool = False  # takes true or false
    multiple: bool = False  # repeatable: a list in the file


class ConfigFileError(ValueError):
    """The message names the file and the key."""


def defaults_from(document: Mapping[str, object], command: str, options: Mapping[str, OptionShape],
                  source: str = "<config>") -> dict[str, object]:
    """The parsed TOML `document` -> click's default_map for `command` (pure): the top-level
    keys, then the command's own table over them. ConfigFileError for an unknown key or
    table, or a value of the wrong shape."""
    top = {key: value for key, value in document.items() if not isinstance(value, dict)}
    for key, value in document.items():
        if isinstance(value, dict) and key not in CONFIGURED_COMMANDS:
            raise ConfigFileError(f"{source}: unknown table [{key}]; the tables are "
                                  + ", ".join(f"[{name}]" for name in CONFIGURED_COMMANDS))
    own = document.get(command, {})
    defaults: dict[str, object] = {}
    for where, entries in ((source, top), (f"{source} [{command}]", own)):
        for key, value in entries.items():
            shape = options.get(key)
            if shape is None:
                raise ConfigFileError(f"{where}: unknown key {key!r}: `wayfinder {command}` has no "
                                      f"--{key.replace('_', '-')}")
            defaults[shape.param] = _checked(value, shape, f"{where}: {key}")
    return defaults


def _checked(value: object, shape: OptionShape, what: str) -> object:
    if shape.flag:
        if not isinstance(value, bool):
            raise ConfigFileError(f"{what} is a flag: true or false, got {value!r}")
        return value
    if shape.multiple:
        values = value if isinstance(value, list) else [value]
        for item in values:
            _scalar(item, what)
        return values
    return _scalar(value, what)


def _scalar(value: object, what: str) -> object:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigFileError(f"{what} takes a string or a number, got {value!r}")
    return value


def load(path: str | Path) -> dict[str, object]:
    """The file's TOML document; ConfigFileError when it cannot be read or parsed."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigFileError(f"cannot read config {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"{path}: not TOML: {error}") from None


def key_of(option: click.Option) -> str:
    """The file's key for an option: its long name without dashes, ``-`` as ``_``."""
    longs = [name for name in option.opts if name.startswith("--")]
    return max(longs, key=len)[2:].replace("-", "_")


def options_of(command: click.Command) -> dict[str, OptionShape]:
    """Every option of `command` a file may set, by key (not --config itself, nor --help)."""
    shapes = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in ("config", "help") or param.hidden:
            continue
        shapes[key_of(param)] = OptionShape(param=param.name, flag=param.is_flag, multiple=param.multiple)
    return shapes


def _use_config_file(ctx: click.Context, param: click.Parameter, path: str | None) -> None:
    if path is None:
        return
    try:
        defaults = defaults_from(load(path), ctx.command.name, options_of(ctx.command), str(path))
    except ConfigFileError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


# Eager, so the file fills the defaults before click resolves any other option.
config_option = click.option(
    "--config",
    default=None,
    metavar="FILE",
    is_eager=True,
    expose_value=False,
    callback=_use_config_file,
    help="Take options from this TOML file (keys: option names with _ for -; a [COMMAND] table for one "
         "command); options given here win. See deploy/wayfinder.toml.example.",
)
