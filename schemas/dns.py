"""Cluster DNS: the record sets every node serves, derived from Mesos tasks, agents,
frameworks and the cluster by the DNS processor."""

from __future__ import annotations

import re

from msgspec import Struct

MAX_TTL = 2**31 - 1  # RFC 2181 §8: TTLs with the top bit set are treated as zero
MAX_NAME = 254  # presentation length of an absolute name, trailing dot included

# Letters, digits, '-' and '_' (SRV owner names like _http._tcp): what the processors'
# Mesos-DNS label sanitising can produce. Anything wider would need escaping in zone text
# and in dnslib's label printing, and then lookups by text would stop matching.
_LABEL = re.compile(r"[a-z0-9_-]{1,63}\Z")
_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)+\Z")  # every label at once: the common, fast check


def canonical_name(text: str) -> str:
    """Lower case, absolute; "." is the root. Raises ValueError on what DNS cannot carry."""
    name = text.strip().lower()
    if name in ("", "."):
        return "."
    if not name.endswith("."):
        name += "."
    if len(name) > MAX_NAME:  # 255 octets on the wire: length bytes plus the root label
        raise ValueError(f"name too long: {text!r}")
    if _NAME.match(name):
        return name
    for label in name[:-1].split("."):  # only to say which label is wrong
        if not _LABEL.match(label):
            raise ValueError(f"bad label {label!r} in name {text!r}")
    raise ValueError(f"bad name {text!r}")


class RecordSet(Struct, frozen=True, gc=False):
    """Every record of one name and type. Key: ``<name>/<type>`` (``web.marathon.mesos./A``).

    ``name`` is canonical: lower case and absolute (trailing dot). ``rdata`` holds each value
    in canonical presentation text, sorted: ``10.0.0.5`` for A, ``fd01:b::2`` for AAAA,
    ``0 1 31000 web-xyz12-s1.marathon.slave.mesos.`` for SRV (priority weight port target).
    ``framework`` is the framework name the records belong to (none for cluster records such
    as ``leader.mesos.``) and ``tasks`` the ids of the tasks that contributed them, sorted, so
    an outside consumer (or the Mesos-DNS ``/v1/enumerate`` view) can go from a name back to
    its tasks. A name whose last task ended is tombstoned.
    """

    name: str
    type: str
    ttl: int
    rdata: list[str]
    framework: str | None = None
    tasks: list[str] = []


def record_set_key(name: str, type: str) -> str:
    return f"{name}/{type}"
