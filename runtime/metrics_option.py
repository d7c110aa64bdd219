"""`--metrics-listen HOST:PORT`, the option of `produce`, `process` and `node` that serves
`/metrics` (runtime/metrics.py). Apart from the metrics themselves so that the command line
can declare it without importing prometheus_client and asyncio: every `wayfinder` command,
the quick `wayfinder vips` included, would pay them at start-up."""

from __future__ import annotations

import click


def _listen(ctx, param, value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


metrics_option = click.option(
    "--metrics-listen", "metrics_listen", default=None, metavar="HOST:PORT", callback=_listen,
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (default: none).")
