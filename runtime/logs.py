"""The logs of every long-running command: one format (text or JSON lines), one level, the
Kafka client's own logs routed through them, and no flood when an error repeats.

A JSON line has exactly ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``msg``, then the
context that is known where it was logged (a node's ``node_id``, its loops' ``role`` and
``topic``, a producer side's ``source``, the processor's ``instance``, ``kafka_client``;
`log_context` sets it for a task and the threads it starts through asyncio), and ``exc`` with
the traceback of an exception.

`RepeatFilter` sits on the one handler, so it sees every logger's records: a warning or error
seen again within the window (same logger, same message template) is counted instead of
printed, and the first one after the window carries the count. During a Kafka outage that
turns hundreds of identical lines a minute into one line per window.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import sys
import time
from collections.abc import Iterator

import orjson

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
# Seconds a repeated warning stays quiet; tests shorten it through the environment.
REPEAT_WINDOW_ENV = "WAYFINDER_LOG_REPEAT_WINDOW"
DEFAULT_REPEAT_WINDOW_S = 30.0
CONTEXT_FIELDS = ("node_id", "role", "topic", "source", "instance", "kafka_client")

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("wayfinder_log_context", default={})


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Add `fields` to every record logged in this context (a task copies it when created)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def set_log_context(**fields: str) -> None:
    """Add `fields` for the rest of the current context (a task's own, or the main thread's)."""
    _context.set({**_context.get(), **fields})


class ContextFilter(logging.Filter):
    """Copies the context variables onto each record, unless `extra` already set them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RepeatFilter(logging.Filter):
    """Lets the first of a repeating warning through, counts the next ones for `window_s`, and
    lets the first after that through with the count (``repeated``, and a suffix in the text)."""

    MAX_KEYS = 10_000  # bound the memory when messages are unique (a template per call site)

    def __init__(self, window_s: float, clock=time.monotonic) -> None:
        super().__init__()
        self.window_s, self.clock = window_s, clock
        self._seen: dict[tuple, list] = {}  # key -> [first shown at, suppressed since]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, getattr(record, "repeat_key", None) or str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.window_s:
            if len(self._seen) >= self.MAX_KEYS:
                self._seen.clear()
            self._seen[key] = [now, 0]
            if seen is not None and seen[1]:
                record.repeated = seen[1]
                record.msg = f"{record.getMessage()} (and {seen[1]} more like it in the last {now - seen[0]:.0f} s)"
                record.args = ()
            return True
        seen[1] += 1
        return False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS + ("repeated",):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS
                           if getattr(record, name, None) is not None)
        if not context:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [{context}]{newline}{rest}"


def configure_logging(level: str = "info", log_format: str = "text") -> None:
    """One stderr handler on the root logger, replacing any earlier one (the group option,
    then a command's own, may both call this)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RepeatFilter(float(os.environ.get(REPEAT_WINDOW_ENV) or DEFAULT_REPEAT_WINDOW_S)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # aiokafka (under faust) logs every retry at INFO or above; warnings still come through.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


_DIGITS = re.compile(r"\d+")
_SYSLOG_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL, 3: logging.ERROR,
                  4: logging.WARNING, 5: logging.INFO, 6: logging.INFO, 7: logging.DEBUG}


class LibrdkafkaLog:
    """What confluent-kafka's ``logger`` setting takes (it calls ``.log(level, fmt, facility,
    client, message)`` with a syslog level): librdkafka's lines as records of the
    ``librdkafka`` logger. Every line has the same template, so the repeat key is the message
    with its numbers blanked ("after 12ms", "5 identical error(s) suppressed")."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("librdkafka")

    def log(self, level: int, fmt: str, facility: str, client: str, message: str, *more) -> None:
        python_level = _SYSLOG_LEVELS.get(level, logging.INFO) if level <= 7 else level
        self.logger.log(python_level, "%s: %s", facility, message,
                        extra={"kafka_client": client, "repeat_key": f"{facility} {_DIGITS.sub('#', message)}"})


LIBRDKAFKA_LOG = LibrdkafkaLog()


def with_client_logging(settings: dict) -> dict:
    """A confluent-kafka client's settings with its logs routed through Python's logging
    (they go to stderr, in librdkafka's own format, otherwise). The client delivers them on
    its poll calls."""
    return {"logger": LIBRDKAFKA_LOG, **settings}
