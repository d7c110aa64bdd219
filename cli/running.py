"""How the long-running commands run: their log options, their signals, their exit codes.

Signals: the first SIGTERM or SIGINT sets the command's ``stop`` event, and the command
winds down (leaves its group, flushes, closes its servers). A clean stop exits 0, so a
service manager sees a requested stop as a success. Whatever is still running after
`STOP_GRACE_S` (a Kafka call that waits on an unreachable broker, a kernel call that hangs)
does not hold the process: it exits at once with 128 + the signal number (143 for SIGTERM,
130 for SIGINT), as a second signal does; first it runs what `at_forced_exit` registered, so
what lives on outside the process (the demo's own Kafka brokers, its namespaces) goes too.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from runtime.logs import FORMATS, LEVELS, configure_logging

if TYPE_CHECKING:
    # Imported where a command runs its loop: every command imports this module for its
    # options, and asyncio (with ssl) would add ~30 ms to the start-up of the quick ones.
    import asyncio

log = logging.getLogger("wayfinder")

STOP_GRACE_S = 3.5  # within the 5 s a stop may take, with room for the interpreter to exit
_AT_FORCED_EXIT: list[Callable[[], None]] = []


def at_forced_exit(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` if the process is forced out (a second signal, the grace over), in the
    order registered: quick and bounded work only (a SIGKILL, an ``ip netns del``), as the
    exit waits for it. It runs on whichever thread forces the exit, maybe while the clean stop
    is still doing the same work, so it must be harmless once that is done."""
    _AT_FORCED_EXIT.append(cleanup)


def _remember_log_option(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """A command's --log-format/--log-level override the group's --log-level; both reconfigure
    the one handler (runtime.logs.configure_logging)."""
    settings = ctx.find_root().meta.setdefault("wayfinder.logs", {"level": "info", "format": "text"})
    if value is not None:
        settings[param.name] = value
    configure_logging(settings["level"], settings["format"])


def log_options(command):
    """--log-format and --log-level, for every long-running command."""
    command = click.option("--log-level", "level", type=click.Choice(LEVELS), default=None, expose_value=False,
                           envvar="WAYFINDER_LOG_LEVEL", callback=_remember_log_option,
                           help="Least severe level logged  [default: info, or the group's --log-level]")(command)
    return click.option("--log-format", "format", type=click.Choice(FORMATS), default=None, expose_value=False,
                        envvar="WAYFINDER_LOG_FORMAT", callback=_remember_log_option,
                        help="text, or json: one object per line with ts, level, logger, msg and the context "
                             "(node_id, role, topic)  [default: text]")(command)


class _Stopping:
    """The signal side of `run_until_signal`: stop on the first signal, exit on the second or
    when the grace is over."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.signal: int | None = None

    def __call__(self, signum: int) -> None:
        if self.signal is not None:
            log.warning("%s again: exiting now", signal.Signals(signum).name)
            _exit_now(128 + signum)
        self.signal = signum
        log.info("%s: stopping (at most %.1f s)", signal.Signals(signum).name, STOP_GRACE_S)
        self.stop.set()
        deadline = threading.Timer(STOP_GRACE_S, self._grace_over)
        deadline.daemon = True
        deadline.start()

    def _grace_over(self) -> None:
        log.warning("still stopping after %.1f s: exiting now", STOP_GRACE_S)
        _exit_now(128 + (self.signal or signal.SIGTERM))


def _exit_now(code: int) -> None:
    """Exit without waiting for threads blocked in a call nobody can interrupt."""
    for cleanup in list(_AT_FORCED_EXIT):
        try:
            cleanup()
        except Exception:  # the exit goes on: the next cleanup matters as much
            log.exception("cleanup at exit failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(code)


def run_until_signal(main, *, fast_loop: bool = False) -> None:
    """Run ``main(stop)`` on a fresh event loop; SIGINT/SIGTERM set ``stop`` (see the module
    docstring for the exit codes). ``fast_loop``: uvloop instead of asyncio's own loop (the
    node's DNS server spends ~25% less CPU per query on it)."""
    import asyncio

    async def runner():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stopping = _Stopping(stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping, sig)
        await main(stop)

    if fast_loop:
        import uvloop

        uvloop.run(runner())
    else:
        asyncio.run(runner())


def one_shot_kafka(bootstrap: str, catalog=None, alias: str | None = None) -> str:
    """`bootstrap`, once a broker there answers (and has the `alias` topic of `catalog`, when
    given): a one-shot command with an unreachable Kafka, or a namespace that Kafka does not
    have, exits 1 within 10 s with one line naming the address or the namespace and topic."""
    from runtime.kafka.reach import KafkaUnreachable, TopicMissing, require_kafka

    topic = catalog.topic(alias).name if catalog is not None and alias else None
    try:
        require_kafka(bootstrap, topic=topic)
    except KafkaUnreachable as error:
        raise click.ClickException(str(error)) from None
    except TopicMissing:
        from runtime.kafka.client_config import passed_through

        # A secured Kafka lists only the topics this client's user may use.
        unseen = (f" (or user {passed_through()['sasl.username']!r} may not read it)"
                  if passed_through().get("sasl.username") else "")
        raise click.ClickException(
            f"namespace {catalog.namespace!r}: no topic {topic} at {bootstrap}{unseen}; "
            "give the cluster's namespace with --namespace (or $WAYFINDER_NAMESPACE)") from None
    return bootstrap
