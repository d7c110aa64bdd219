"""Cluster DNS: the record sets every node serves, derived from Mesos tasks, agents,
frameworks and the cluster by the DNS processor."""

from __future__ import annotations

from msgspec import Struct


class RecordSet(Struct, frozen=True):
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
