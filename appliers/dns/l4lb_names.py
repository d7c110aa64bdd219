"""The ``l4lb.thisdcos.directory`` names of the VIPs a node's kernel already has. Pure.

dcos-net learned that a VIP name must not resolve before the kernel is ready for it (a
client would connect to nothing): the l4lb role calls this after every applied sync, with
only the VIP records the kernel holds, so a name appears after its VIP and goes before it.
"""

from __future__ import annotations

from collections.abc import Iterable

from appliers.dns.records import Record, record
from schemas.l4lb import Vip

TTL = 5  # dcos-dns generated records


def vip_records(vips: Iterable[Vip]) -> dict[tuple[str, str], list[Record]]:
    """(name, type) -> its record set, for the named VIPs given (one address per family)."""
    found: dict[tuple[str, str], set[str]] = {}
    for vip in vips:
        if vip.dns:
            kind = "AAAA" if ":" in vip.ip else "A"
            found.setdefault((vip.dns.rstrip(".") + ".", kind), set()).add(vip.ip)
    return {
        (name, kind): [record(name, kind, TTL, ip) for ip in sorted(ips)] for (name, kind), ips in sorted(found.items())
    }


def changed_sets(
    before: dict[tuple[str, str], list[Record]], after: dict[tuple[str, str], list[Record]]
) -> dict[tuple[str, str], list[Record]]:
    """The record sets to upsert (an empty list: remove) to go from ``before`` to ``after``."""
    changes = {key: records for key, records in after.items() if before.get(key) != records}
    changes.update({key: [] for key in before.keys() - after.keys()})
    return changes
