"""One DNS record as plain, canonical data: `Record(name, type, ttl, rdata)`. Pure.

Canonical means one spelling per meaning: names lower case and absolute (trailing dot),
addresses in their shortest form, SRV/SOA fields as plain integers. Then two records compare
equal exactly when they mean the same thing, so a zone can tell a real change from a repeat
(the appliers' desired-vs-actual habit) and keep its serial still on repeats.

No DNS library here on purpose: the zone store and its tests stay independent of the wire
codec, and a later hand-rolled fast path can pre-encode these tuples itself.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Iterator, NamedTuple, Sequence

from schemas.dns import MAX_TTL, canonical_name

TYPES = ("A", "AAAA", "SRV", "CNAME", "SOA", "NS")

class Record(NamedTuple):
    name: str  # canonical owner name, e.g. "web.marathon.mesos."
    type: str  # one of TYPES
    ttl: int
    rdata: str  # canonical presentation text, e.g. "0 1 31000 web.agent.mesos." for SRV

    def zone_line(self) -> str:
        """Zone-file text, for logs and golden files."""
        return f"{self.name} {self.ttl} IN {self.type} {self.rdata}"


def record(name: str, type: str, ttl: int, rdata: str) -> Record:
    """A validated, canonical Record. Raises ValueError with the reason when it is not one."""
    rtype = type.upper()
    parse = _RDATA.get(rtype)
    if parse is None:
        raise ValueError(f"unsupported record type {type!r}")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL:
        raise ValueError(f"bad TTL {ttl!r}")
    try:
        canonical = parse(rdata.split())
    except (ValueError, IndexError) as error:
        raise ValueError(f"bad {rtype} rdata {rdata!r}: {error}") from None
    return _Checked(canonical_name(name), rtype, ttl, canonical)


class RecordBuilder:
    """`record` for bulk loads: the owner name is checked once per set, and each distinct
    (type, rdata) once per builder, its canonical string then shared by every record that
    carries it (a task's address sits in half a dozen sets). Hundreds of thousands of records
    load in a fraction of the time and memory. Keep a builder for one load, then drop it."""

    def __init__(self) -> None:
        self._rdata: dict[str, dict[str, str]] = {}  # type -> given rdata -> canonical

    def rrset(self, name: str, type: str, ttl: int, rdatas: Iterable[str]) -> RRset | None:
        """The checked RRset of these values (None when there is none), with no Record
        objects made on the way; ValueError, as `record` says it, on the first bad one."""
        values: list[str] = []
        owner = rtype = None
        known = self._rdata.setdefault(type, {})
        for rdata in rdatas:
            canonical = known.get(rdata) if owner is not None else None
            if canonical is None:  # the first value also checks the name and TTL
                made = record(owner or name, type, ttl, rdata)
                owner, rtype = made.name, made.type
                canonical = known.setdefault(rdata, made.rdata)
            values.append(canonical)
        if owner is None:
            return None
        return _CheckedRRset(owner, rtype, ttl, tuple(dict.fromkeys(values)))


class RRset:
    """One RRset, kept compact: owner, type and TTL once, the values as a tuple of strings.
    It reads as a sequence of Records, made when read: a node holds a million records and
    most are never asked for (Record objects for all of them would double its memory).

    Built only by `of`, which drops repeated values (an RRset is a set; the feeder's order
    is kept) and uses the smallest TTL if the records disagree (RFC 2181 §5.2)."""

    __slots__ = ("name", "type", "ttl", "rdatas")

    def __init__(self, name: str, type: str, ttl: int, rdatas: tuple[str, ...]) -> None:
        self.name, self.type, self.ttl, self.rdatas = name, type, ttl, rdatas

    @classmethod
    def of(cls, records: Sequence[Record]) -> RRset:
        first = records[0]
        if len(records) == 1:
            return cls(first.name, first.type, first.ttl, (first.rdata,))
        return cls(first.name, first.type, min(r.ttl for r in records), tuple(dict.fromkeys(r.rdata for r in records)))

    def __len__(self) -> int:
        return len(self.rdatas)

    def __getitem__(self, index: int) -> Record:
        return Record(self.name, self.type, self.ttl, self.rdatas[index])

    def __iter__(self) -> Iterator[Record]:
        name, type, ttl = self.name, self.type, self.ttl
        return (Record(name, type, ttl, rdata) for rdata in self.rdatas)

    def __eq__(self, other: object) -> bool:  # a checked RRset equals an unchecked twin
        return (isinstance(other, RRset) and self.rdatas == other.rdatas and self.ttl == other.ttl
                and self.name == other.name and self.type == other.type)

    __hash__ = None  # mutable-free but compared by value; never a dict key


class _CheckedRRset(RRset):
    """An RRset that `RecordBuilder.rrset` built: every value known canonical."""

    __slots__ = ()


class _Checked(Record):
    """A Record that `record` built, so known canonical: a zone loading hundreds of thousands
    of them trusts these instead of checking each twice. `_replace` gives a plain Record,
    which is checked again."""

    __slots__ = ()

    @classmethod
    def _make(cls, iterable) -> Record:
        return Record._make(iterable)


def is_checked(r: object) -> bool:
    """True for a Record built by `record` (and not changed since), or an RRset built by
    `RecordBuilder.rrset`."""
    return type(r) is _Checked or type(r) is _CheckedRRset


def srv_target(rdata: str) -> str:
    """The target name of canonical SRV rdata."""
    return rdata.rsplit(" ", 1)[1]


def soa_minimum(rdata: str) -> int:
    """MINIMUM of canonical SOA rdata: the negative-caching TTL cap (RFC 2308 §3)."""
    return int(rdata.rsplit(" ", 1)[1])


def _one(fields: list[str]) -> str:
    if len(fields) != 1:
        raise ValueError(f"expected one field, got {len(fields)}")
    return fields[0]


def _uint(text: str, bits: int) -> int:
    value = int(text, 10)  # base 10 only: "0x50" is not a port in zone text
    if not 0 <= value < 2**bits:
        raise ValueError(f"{text} out of range for {bits} bits")
    return value


def _a(fields: list[str]) -> str:
    # inet_pton is ~10x faster than ipaddress and, for IPv4, just as strict: four decimal
    # octets, nothing else (no "1.2.3", no hex); inet_ntop spells the canonical form.
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, _one(fields)))
    except OSError:
        raise ValueError(f"not an IPv4 address: {fields[0]!r}") from None


def _aaaa(fields: list[str]) -> str:
    return str(ipaddress.IPv6Address(_one(fields)))


def _name(fields: list[str]) -> str:
    return canonical_name(_one(fields))


def _srv(fields: list[str]) -> str:
    if len(fields) != 4:
        raise ValueError("SRV wants: priority weight port target")
    numbers = " ".join(str(_uint(field, 16)) for field in fields[:3])
    return f"{numbers} {canonical_name(fields[3])}"


def _soa(fields: list[str]) -> str:
    if len(fields) != 7:
        raise ValueError("SOA wants: mname rname serial refresh retry expire minimum")
    numbers = " ".join(str(_uint(field, 32)) for field in fields[2:])
    return f"{canonical_name(fields[0])} {canonical_name(fields[1])} {numbers}"


_RDATA = {"A": _a, "AAAA": _aaaa, "SRV": _srv, "CNAME": _name, "NS": _name, "SOA": _soa}
