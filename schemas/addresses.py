"""How Mesos writes an endpoint, read in one place (pure): libprocess PIDs and ``host:port``.

A PID is ``<id>@<host>:<port>``: ``slave(1)@10.0.0.1:5051``, ``master@[fd00::1]:5050``,
``scheduler(1)@[2001:db8::1]:25501``. An IPv6 host is always in brackets (the last ``:``
then separates the port); a bare host is an IPv4 address or a name, and holds no ``:``.
The producer, the simulator, the processor and the command line all read endpoints and IP
literals through these functions.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

MAX_PORT = 65535

_HOST_PORT = re.compile(r"(?:\[(?P<v6>[^\[\]]+)\]|(?P<host>[^:\[\]@]+)):(?P<port>[0-9]{1,5})")


def canonical_ip(text: object) -> str | None:
    """The canonical text of an IP address (``fd00:0::1`` -> ``fd00::1``), or None when
    `text` is no IP address: names are never resolved here."""
    return _canonical(text) if isinstance(text, str) and text else None


# Cached: the same agent, container and master addresses come back with every change, and
# parsing one costs more than the rest of what a processor does with it.
@lru_cache(maxsize=1 << 16)
def _canonical(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_host_port(text: object) -> tuple[str, int] | None:
    """``10.0.0.1:5050`` / ``master.example:5050`` / ``[fd00::1]:5050`` -> (host, port), the
    host without brackets; None for anything else (a bracketed host that is no IPv6 address,
    a port over 65535, an unbracketed IPv6 address)."""
    match = _HOST_PORT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    port = int(match["port"])
    if port > MAX_PORT:
        return None
    if match["v6"] is not None:
        try:
            address = ipaddress.ip_address(match["v6"])
        except ValueError:
            return None
        return (str(address), port) if address.version == 6 else None
    return match["host"], port


_NUMERIC_HOST = re.compile(r"[0-9.]+")


def is_malformed_ip(host: str) -> bool:
    """Whether `host` looks like an IP address (digits and dots only, or a ``:``) yet is none
    (``300.1``, ``10.0.0.256``): no host name looks like that, so it is a typo, not a name to
    resolve."""
    return (_NUMERIC_HOST.fullmatch(host) is not None or ":" in host) and canonical_ip(host) is None


def parse_pid(pid: object) -> tuple[str, int] | None:
    """``slave(1)@10.0.0.1:5051`` -> ("10.0.0.1", 5051); ``master@[fd00::1]:5050`` ->
    ("fd00::1", 5050); None when it is no PID."""
    if not isinstance(pid, str) or "@" not in pid:
        return None
    return parse_host_port(pid.partition("@")[2])
