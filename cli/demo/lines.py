"""What the demo prints, made for a person watching a terminal: every line fits `WIDTH`
columns, the history is one compact line per change, the logs show only our own warnings, and
a summary of the convergence figures closes the run. Formatting is pure; `say` and
`quiet_logs` are the only parts with effects.

Widths are counted in UTF-8 bytes, not characters: a terminal check such as mawk's
``length($0)`` counts bytes, and a byte bound is also a character bound.
"""

from __future__ import annotations

import logging
import math
import re
import textwrap
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import click

from runtime.kafka.reader import ConsumedRecord

WIDTH = 100
INDENT = " " * 11  # under the text after a line's area tag ("overlay    ", "dns        ")
# The loggers of this project: their warnings show in the demo, everybody else's errors only.
OWN_LOGGERS = ("wayfinder", "appliers", "cli", "processors", "producers", "runtime", "schemas", "simulator")
DONE = "scenario done; the clients keep probing ({parts}); Ctrl-C to stop"
# Left out of a history line: they repeat its id (a task's framework, id and app, its name is
# the app's) or say nothing to a person watching (an app's version, an agent id);
# `wayfinder tail events` shows them.
LEFT_OUT = frozenset({"task_id", "framework_id", "agent_id", "version", "app_id"})
LEFT_OUT_OF_TASKS = LEFT_OUT | {"name"}
# Mesos and Marathon ids are full of UUIDs: their first 8 digits tell the tasks of one demo apart.
UUID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def fit(line: str, width: int = WIDTH) -> str:
    """``line`` cut to ``width`` bytes, with "…" where it was cut."""
    data = line.encode()
    if len(data) <= width:
        return line
    return data[:width - len("…".encode())].decode(errors="ignore") + "…"


def wrapped(text: str, width: int = WIDTH) -> list[str]:
    """Lines of at most ``width`` bytes: long words are broken, continuations indented."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        pieces = textwrap.wrap(paragraph, width, subsequent_indent=INDENT, break_on_hyphens=False) or [""]
        lines.extend(fit(piece, width) for piece in pieces)
    return lines


def say(text: str, err: bool = False) -> None:
    """Print ``text`` wrapped to the terminal width the demo promises."""
    for line in wrapped(text):
        click.echo(line, err=err)


def history_line(record: ConsumedRecord, value: object) -> str:
    """One change of the ``events`` topic in at most `WIDTH` bytes: time to the second, kind,
    id and the telling fields, UUIDs cut short (`wayfinder tail events` shows the full line)."""
    when = datetime.fromtimestamp(record.timestamp_ms / 1000, tz=timezone.utc).strftime("%H:%M:%S")
    if not isinstance(value, dict):
        return fit(f"{when} {_short(str(record.key))}  (deleted)")
    fields = value.get("fields") or {}
    what = str(value.get("id"))
    framework = fields.get("framework_id")
    if framework and what.startswith(f"{framework}/"):  # a task's id: "<framework id>/<task id>"
        what = what[len(framework) + 1:]
    left_out = LEFT_OUT_OF_TASKS if str(value.get("kind", "")).startswith("task_") else LEFT_OUT
    shown = " ".join(f"{name}={_text(field)}" for name, field in fields.items()
                     if field is not None and name not in left_out)
    return fit(_short(f"{when} {value.get('kind', '?'):<19} {what}  {shown}".rstrip()))


def _short(text: str) -> str:
    return UUID.sub(r"\1", text)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text.removeprefix("TASK_")  # every Mesos task state starts so: RUNNING says it


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest rank: the smallest sample with at least ``fraction`` of them at or below it."""
    ordered = sorted(samples)
    rank = math.ceil(fraction * len(ordered) - 1e-9)  # 0.07 * 100 is 7.000000000000001, not 7
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def summary(events_seen: int, convergence_s: Mapping[str, Iterable[float]]) -> list[str]:
    """The closing lines: history events seen, then per node role how many changes it applied
    and how long each took from the producer to the node (``ReconcileLoop.convergence_s``)."""
    lines = [f"summary    {events_seen} history events seen; convergence, producer to node:"]
    for role, samples in sorted(convergence_s.items()):
        samples = list(samples)
        if not samples:
            lines.append(f"           {role:<8} no change measured")
            continue
        lines.append(f"           {role:<8} {len(samples):>5} changes  p50 {percentile(samples, 0.5):.3f} s"
                     f"  p99 {percentile(samples, 0.99):.3f} s")
    if not convergence_s:
        lines.append("           no node ran (their parts of the demo were skipped)")
    return [fit(line) for line in lines]


class OwnWarnings(logging.Filter):
    """Our own warnings and errors; only errors from libraries (librdkafka, aiokafka, faust),
    whose retries while the demo starts say nothing to a person watching."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in OWN_LOGGERS
        return record.levelno >= (logging.WARNING if own else logging.ERROR)


class FittedFormatter(logging.Formatter):
    """Another formatter's text, wrapped to `WIDTH`."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(line for text in self.inner.format(record).splitlines() for line in wrapped(text))


def quiet_logs(chosen_level: bool, json_logs: bool) -> None:
    """The demo's logs: unless a level was chosen, only `OwnWarnings`; text lines fit `WIDTH`
    (JSON lines stay whole, for machines)."""
    root = logging.getLogger()
    if not chosen_level:
        root.setLevel(logging.WARNING)  # the INFO records are not even made
    for handler in root.handlers:
        if not chosen_level:
            handler.addFilter(OwnWarnings())
        if not json_logs and handler.formatter is not None:
            handler.setFormatter(FittedFormatter(handler.formatter))
