"""The node's authoritative data: every cluster zone in memory, and the lookup rules. Pure.

`ZoneSet` holds several origins (`thisdcos.directory.`, `mesos.`, `spartan.`, `zk.`,
`localhost.`) in one name index, because one lookup must find the closest origin anyway and
CNAMEs may point from one origin into another. What it serves:
- the records the node applier feeds in (A, AAAA, SRV, CNAME) through `replace` (a whole new
  copy: built and validated aside, then swapped in one assignment, so a bad copy leaves the
  last good one serving) or `upsert` / `remove` (one RRset at a time);
- what the zone itself owns and callers may not touch: SOA and NS at every apex, and the
  fixed dcos-dns names `ready.spartan`, `ns.spartan`, `localhost`. Each zone answers with the
  SOA of the system it replaces: `mesos.` with Mesos-DNS's (`ns1.mesos.`, `root.ns1.mesos.`,
  reference/dcos-networking.md §1.7), the others with dcos-dns's (§2.3).

Until the node sets `ready` (it has caught up on the DNS table), every name under our origins
gets SERVFAIL: "try elsewhere", never an NXDOMAIN that resolvers would cache, and
`ready.spartan` stops answering, which is how dcos-dns' resolv.conf generator and watchdog
tell a working node from a starting one.

Not thread-safe by design: the event loop that serves queries also applies changes, and no
method awaits, so a lookup never sees half an update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from appliers.dns.records import Record, RRset, canonical_name, is_checked, record, soa_minimum

NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3

DEFAULT_ORIGINS = ("thisdcos.directory.", "mesos.", "spartan.", "zk.", "localhost.")

SOA_TTL, NS_TTL, RECORD_TTL = 5, 3600, 5


@dataclass(frozen=True)
class Soa:
    """An apex's SOA fields but the serial (the zone set's own); `mname` is also its NS."""

    mname: str
    rname: str
    refresh: int
    retry: int
    expire: int
    minimum: int


# dcos-dns values (reference §2.3), so tools written against DC/OS see the same SOA.
DCOS_SOA = Soa("ns.spartan.", "support.mesosphere.com.", 60, 180, 86400, 1)
# Mesos-DNS's (reference §1.7: SOAMname, SOARname, SOARefresh, SOARetry, SOAExpire) for the zone
# it served, but for MINIMUM: Mesos-DNS sends its record TTL (60 s) there, which lets resolvers
# cache "no such task" for a minute; a node that converges in milliseconds keeps dcos-dns's 1 s.
MESOS_DNS_SOA = Soa("ns1.mesos.", "root.ns1.mesos.", 60, 600, 86400, 1)
MESOS_ORIGIN = "mesos."

FIXED = (
    record("ready.spartan.", "A", RECORD_TTL, "127.0.0.1"),
    record("ns.spartan.", "A", RECORD_TTL, "198.51.100.1"),
    record("localhost.", "A", RECORD_TTL, "127.0.0.1"),
)

MANAGED_TYPES = frozenset({"SOA", "NS"})  # only ever at an apex, written by the zone itself
MAX_CNAME_CHAIN = 8  # bounds the chase; a longer chain is a zone bug, not a lookup to finish



class Node(tuple):
    """The RRsets at one name, read like a dict by type. A tuple, because a node holds
    hundreds of thousands of names with one or two types each, and a dict per name would
    cost about three times the memory of what it holds. Immutable: a change makes a new
    Node, so a lookup never sees one half-made."""

    __slots__ = ()

    @classmethod
    def of(cls, by_type: dict[str, RRset]) -> Node:
        return cls(by_type.values())

    def get(self, type: str, default: RRset | None = None) -> RRset | None:
        for rrset in tuple.__iter__(self):
            if rrset.type == type:
                return rrset
        return default

    def values(self) -> Iterator[RRset]:
        return tuple.__iter__(self)

    def items(self) -> Iterator[tuple[str, RRset]]:
        return ((rrset.type, rrset) for rrset in tuple.__iter__(self))

    def __iter__(self) -> Iterator[str]:  # the types, as a dict iterates its keys
        return (rrset.type for rrset in tuple.__iter__(self))

    def __contains__(self, type: object) -> bool:
        return self.get(type) is not None



@dataclass(frozen=True, slots=True)
class Answer:
    rcode: int
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    aa: bool = True


_NOT_READY = Answer(SERVFAIL, aa=False)


class ZoneSet:
    def __init__(self, origins: Iterable[str] = DEFAULT_ORIGINS, *, ready: bool = False,
                 serial: int = 1, soas: Mapping[str, Soa] | None = None) -> None:
        """`soas`: origin -> its SOA; by default Mesos-DNS's for ``mesos.``, dcos-dns's elsewhere."""
        self.origins = tuple(canonical_name(origin) for origin in origins)
        chosen = {MESOS_ORIGIN: MESOS_DNS_SOA} if soas is None else {canonical_name(o): soa for o, soa in soas.items()}
        self._soas = {origin: chosen.get(origin, DCOS_SOA) for origin in self.origins}
        if "." in self.origins:
            raise ValueError("the root cannot be an origin: everything would be ours")
        self._origin_set = frozenset(self.origins)
        self.ready = ready  # flipped by the node once it has caught up on the DNS table
        self.serial = serial
        self._watchers: list[Callable[[str | None], None]] = []
        self._fixed = {(r.name, r.type): r for r in FIXED if self.origin_of(r.name)}
        self._negative: dict[str, Record] = {}  # origin -> SOA as sent in negative answers
        self._names: dict[str, Node]
        self._ents: dict[str, int]  # empty non-terminal -> how many names lie below it
        self._names, self._ents = self._build(())
        self._stamp_soa()

    # -- reading -------------------------------------------------------------------------

    def origin_of(self, name: str) -> str | None:
        """The closest enclosing origin of a canonical name, or None when it is not ours."""
        while name not in self._origin_set:
            dot = name.find(".")
            if dot < 0 or dot == len(name) - 1:
                return None
            name = name[dot + 1:]
        return name

    def records(self) -> list[Record]:
        """What callers fed in (not SOA/NS nor the fixed names), sorted: the actual state that
        an applier compares with its desired state."""
        own = set(self._fixed.values())
        return sorted(r for node in self._names.values() for rrs in node.values() for r in rrs
                      if r.type not in MANAGED_TYPES and r not in own)

    def rrset(self, name: str, type: str) -> RRset | None:
        """The RRset served at canonical (name, type), or None."""
        node = self._names.get(name)
        return node.get(type) if node is not None else None

    def rrsets(self) -> Iterator[tuple[tuple[str, str], RRset]]:
        """Every RRset callers fed in (not SOA/NS nor the fixed names), by (name, type)."""
        for name, node in self._names.items():
            for type, rrset in node.items():
                if type not in MANAGED_TYPES and (name, type) not in self._fixed:
                    yield (name, type), rrset

    def fed(self) -> Mapping[tuple[str, str], RRset]:
        """`rrsets` as a read-only mapping that reads the zones when asked, copying nothing:
        a node serves hundreds of thousands of RRsets, and a copy of them all is tens of MB.
        It follows later changes, so read it before making any."""
        return _Fed(self)

    def lookup(self, qname: str, qtype: str) -> Answer | None:
        """The authoritative answer for (qname, qtype), or None when no origin of ours encloses
        qname (the answerer then refuses or forwards). qname in any case, dot optional."""
        name = qname.lower()
        if not name.endswith("."):
            name += "."
        origin = self.origin_of(name)
        if origin is None:
            return None
        if not self.ready:
            return _NOT_READY
        return self._resolve(name, origin, qtype.upper())

    def _resolve(self, name: str, origin: str, qtype: str) -> Answer:
        chain: list[Record] = []  # CNAMEs followed so far, answered first
        seen = {name}
        for _ in range(MAX_CNAME_CHAIN + 1):
            node = self._names.get(name)
            if node is None:  # RFC 6604: the rcode speaks for the last name of the chain
                rcode = NOERROR if name in self._ents else NXDOMAIN
                return Answer(rcode, tuple(chain), (self._negative[origin],))
            if qtype == "ANY":
                return Answer(NOERROR, (*chain, *(r for rrs in node.values() for r in rrs)))
            rrset = node.get(qtype)
            if rrset:
                return Answer(NOERROR, (*chain, *rrset))
            cname = node.get("CNAME")
            if cname is None:  # NODATA: the name exists, the type does not
                return Answer(NOERROR, tuple(chain), (self._negative[origin],))
            chain.append(cname[0])
            name = cname[0].rdata
            target_origin = self.origin_of(name)
            if target_origin is None or name in seen:
                # Outside our data (the client's resolver goes on from here) or a loop (it
                # will notice): the chain so far is all we can say.
                return Answer(NOERROR, tuple(chain))
            seen.add(name)
            origin = target_origin
        return Answer(NOERROR, tuple(chain))

    # -- writing -------------------------------------------------------------------------

    def replace(self, records: Iterable[Record]) -> bool:
        """Serve exactly `records` (plus what the zone owns) from now on. Raises ValueError
        and keeps serving the old copy when any record is invalid. True when it changed."""
        grouped: dict[tuple[str, str], list[Record]] = {}
        for r in records:
            grouped.setdefault((r.name, r.type), []).append(r)
        return self.replace_rrsets(grouped.items())

    def replace_sets(self, rrsets: Iterable[RRset]) -> bool:
        """`replace_rrsets` for RRsets that carry their canonical name and type, each (name,
        type) once: no pairs made nor kept (a node loads a million records this way)."""
        return self.replace_rrsets(((rrset.name, rrset.type), rrset) for rrset in rrsets)

    def replace_rrsets(self, rrsets: Iterable[tuple[tuple[str, str], Sequence[Record]]]) -> bool:
        """`replace` for callers that already hold whole RRsets, ((name, type), records) with
        canonical name and type, each key once: nothing is regrouped, and each name is checked
        once rather than each record (a node loads a million records this way)."""
        names, ents = self._build(rrsets)
        if names == self._names:
            return False
        self._names, self._ents = names, ents
        self._bump(None)
        return True

    def upsert(self, name: str, type: str, records: Iterable[Record]) -> bool:
        """Set the RRset (name, type) to `records` (empty: remove it). True when it changed."""
        name, type = canonical_name(name), type.upper()
        given = records if isinstance(records, RRset) else tuple(records)
        if not given:
            return self.remove(name, type)
        origin = self._check_rrset(name, type, given)
        rrset = given if isinstance(given, RRset) else RRset.of(given)
        before = self._names.get(name)
        if before is not None and before.get(type) == rrset:
            return False
        node = dict(before.items()) if before is not None else {}
        node[type] = rrset
        _check_cname(name, node)
        self._names[name] = Node.of(node)
        if before is None:
            for above in _ancestors(name, origin):
                self._ents[above] = self._ents.get(above, 0) + 1
        self._bump(name)
        return True

    def remove(self, name: str, type: str) -> bool:
        """Drop the RRset (name, type). True when there was one."""
        name, type = canonical_name(name), type.upper()
        if type in MANAGED_TYPES or (name, type) in self._fixed:
            raise ValueError(f"{name} {type} belongs to the zone itself")
        before = self._names.get(name)
        if before is None or type not in before:
            return False
        node = {t: rrs for t, rrs in before.items() if t != type}
        if node:
            self._names[name] = Node.of(node)
        else:
            del self._names[name]
            for above in _ancestors(name, self.origin_of(name)):
                left = self._ents[above] - 1
                if left:
                    self._ents[above] = left
                else:
                    del self._ents[above]
        self._bump(name)
        return True

    def _check_rrset(self, name: str, type: str, rrset: Sequence[Record]) -> str:
        """Validate one caller RRset (canonical `name` and `type`); its origin."""
        for r in (() if is_checked(rrset) else rrset):
            if not is_checked(r) and (not isinstance(r, Record) or record(*r) != r):
                raise ValueError(f"not a canonical Record (build it with records.record): {r!r}")
            if r.name != name or r.type != type:
                raise ValueError(f"{r.zone_line()} is not in RRset {name} {type}")
        if type in MANAGED_TYPES or (name, type) in self._fixed:
            raise ValueError(f"{name} {type}: belongs to the zone itself")
        origin = self.origin_of(name)
        if origin is None:
            raise ValueError(f"{name} {type}: outside our origins {', '.join(self.origins)}")
        return origin

    def _build(self, rrsets: Iterable[tuple[tuple[str, str], Sequence[Record]]]
               ) -> tuple[dict[str, Node], dict[str, int]]:
        names: dict[str, Node] = {}
        ents: dict[str, int] = {}

        def put(name: str, origin: str, rrset: RRset) -> None:
            node = names.get(name)
            if node is None:
                names[name] = Node((rrset,))
                for above in _ancestors(name, origin):
                    ents[above] = ents.get(above, 0) + 1
                return
            before = node.get(rrset.type)
            if before is not None:  # the same RRset given twice: one set of their values
                rrset = RRset.of([*before, *rrset])
            names[name] = Node((*(r for r in node.values() if r.type != rrset.type), rrset))

        for (name, type), rrset in rrsets:
            if not rrset:
                continue
            origin = self._check_rrset(name, type, rrset)
            put(name, origin, rrset if isinstance(rrset, RRset) else RRset.of(rrset))
        for (name, type), fixed in self._fixed.items():
            put(name, self.origin_of(name), RRset.of((fixed,)))
        for origin in self.origins:  # the SOA is a placeholder until _stamp_soa
            put(origin, origin, RRset.of((self._soa(origin),)))
            put(origin, origin, RRset.of((record(origin, "NS", NS_TTL, self._soas[origin].mname),)))
        for name, node in names.items():
            _check_cname(name, node)
        return names, ents

    def watch(self, changed: Callable[[str | None], None]) -> None:
        """Have `changed(name)` called after every change of an RRset at `name`, and
        `changed(None)` after a `replace` (any name). For caches of answers built from this
        zone set (appliers/dns/fastpath.py); every change also moves the SOA serial. Changes
        of `ready` are not reported: read it per query."""
        self._watchers.append(changed)

    def _bump(self, name: str | None) -> None:
        self.serial = self.serial % 0xFFFFFFFF + 1  # RFC 1982 arithmetic, never 0
        self._stamp_soa()
        for changed in self._watchers:
            changed(name)

    def _stamp_soa(self) -> None:
        """Put the current serial into every apex SOA, and the negative-answer copies."""
        for origin in self.origins:
            soa = self._soa(origin)
            self._names[origin] = Node.of({**dict(self._names[origin].items()), "SOA": RRset.of((soa,))})
            # RFC 2308 §3: a negative answer's SOA carries min(its TTL, MINIMUM).
            self._negative[origin] = soa._replace(ttl=min(soa.ttl, soa_minimum(soa.rdata)))

    def _soa(self, origin: str) -> Record:
        soa = self._soas[origin]
        return record(origin, "SOA", SOA_TTL, f"{soa.mname} {soa.rname} {self.serial} "
                      f"{soa.refresh} {soa.retry} {soa.expire} {soa.minimum}")


class _Fed(Mapping):
    """What `ZoneSet.fed` returns: (name, type) -> RRset, for what callers fed in."""

    __slots__ = ("_zones",)

    def __init__(self, zones: ZoneSet) -> None:
        self._zones = zones

    def __getitem__(self, where: tuple[str, str]) -> RRset:
        name, type = where
        rrset = None if type in MANAGED_TYPES or where in self._zones._fixed else self._zones.rrset(name, type)
        if rrset is None:
            raise KeyError(where)
        return rrset

    def get(self, where: tuple[str, str], default: RRset | None = None) -> RRset | None:
        try:
            return self[where]
        except KeyError:
            return default

    def __contains__(self, where: object) -> bool:
        return self.get(where) is not None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (where for where, _ in self._zones.rrsets())

    def __len__(self) -> int:
        zones = self._zones  # every apex holds SOA and NS, and every fixed name is there
        return sum(map(len, zones._names.values())) - 2 * len(zones.origins) - len(zones._fixed)


def _check_cname(name: str, node: Node | dict[str, RRset]) -> None:
    cname = node.get("CNAME")
    if cname is not None and (len(node) > 1 or len(cname) > 1):
        # RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME is alone at its name, and single.
        raise ValueError(f"{name}: a CNAME cannot share its name ({', '.join(sorted(node))})")


def _ancestors(name: str, origin: str | None):
    """The names strictly between `name` and its origin: they exist (as empty non-terminals)
    because `name` does."""
    while True:
        name = name[name.find(".") + 1:]
        if origin is None or len(name) <= len(origin):
            return
        yield name
