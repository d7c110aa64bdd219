"""The node's dns role: the ``dns`` table into the node's zones, served by its DNS server,
through the reconcile loop (runtime.reconcile).

The server listens at once (`open`), but every cluster name gets SERVFAIL ("ask elsewhere",
never an NXDOMAIN a resolver would cache) until the role is ready: the loop says so once the
table holds everything a ready processor mark reflects and the roles this one waits for (l4lb)
are ready. Then ``ready.spartan`` answers, which is how dcos-dns' resolv.conf generator and
watchdog tell a working node from a starting one.

The zones are the target: `observe` reads RRsets back from them, `plan` compares, `apply`
changes them in one step on the event loop that also answers queries (no await in between, so
a query never sees half a change). A full pass swaps the whole content in at once, which is
also how the start-up load goes in. A record set that does not decode, or holds an invalid
record, is refused by `decode`: the loop keeps its last good value serving.

The names of the node's VIPs (``<name>.l4lb.thisdcos.directory``) come from the l4lb role's
applied state, fed in by the node (appliers/node.py) under keys of their own: a VIP's name
appears only once the kernel has the VIP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Union

import msgspec

from pyroute2 import IPRoute

from appliers.dns.acl import RecursionAcl
from appliers.dns.answer import Answerer
from appliers.dns.http_server import MesosDnsHttpServer
from appliers.dns.l4lb_names import vip_records
from appliers.dns.mesos_api import MesosDnsConfig
from appliers.dns.records import Record, RecordBuilder, RRset, canonical_name, record
from appliers.dns.resolver import Forwarder
from appliers.dns.server import DnsServer
from appliers.dns.zone import DEFAULT_ORIGINS, MESOS_DNS_SOA, MESOS_ORIGIN, RECORD_TTL, Soa, ZoneSet
from appliers.options import NodeOptions
from runtime.reconcile import Role, Scope
from schemas.dns import RecordSet, record_set_key
from schemas.l4lb import Vip

log = logging.getLogger(__name__)

THISNODE = "thisnode.thisdcos.directory."
VIP_KEY_PREFIX = "vip:"  # desired keys of the names fed from the l4lb role
_decoder = msgspec.json.Decoder(RecordSet)


class _Served(msgspec.Struct, frozen=True):
    """What the zones need of a RecordSet. Decoding into this skips the task ids, which are
    most of a shared set's bytes and would only be thrown away (fewer short-lived objects,
    less memory left fragmented after a large load)."""

    name: str
    type: str
    ttl: int
    rdata: list[str]


_served_decoder = msgspec.json.Decoder(_Served)


class Wanted(NamedTuple):
    """One desired record set that is more than an RRset: its RRset (None: a valid set with
    no value, served as absent), and the topic's bytes when the Mesos-DNS HTTP API needs them
    (else None)."""

    rrset: RRset | None
    raw: bytes | None = None


# A desired entry: the RRset alone when that is all there is to keep (nearly every one: a
# tuple around each would cost a large table over 10 MB), else a Wanted.
Entry = Union[RRset, Wanted]
_NO_VALUE = Wanted(None)


def rrset_in(entry: Entry) -> RRset | None:
    return entry.rrset if type(entry) is Wanted else entry


def raw_in(entry: Entry) -> bytes | None:
    return entry.raw if type(entry) is Wanted else None


def rrset_of(record_set: RecordSet | _Served, builder: RecordBuilder | None = None) -> RRset | None:
    """The validated RRset of one set (None when it has no value); ValueError says what is
    wrong."""
    return (builder or RecordBuilder()).rrset(record_set.name, record_set.type, record_set.ttl, record_set.rdata)


def thisnode_records(agent_ip: str) -> list[Record]:
    """``thisnode.thisdcos.directory``: the node's own address, answered per node."""
    kind = "AAAA" if ":" in agent_ip else "A"
    return [record(THISNODE, kind, RECORD_TTL, agent_ip)]


def mesos_soa(options: NodeOptions) -> Soa:
    """The ``mesos`` zone's SOA: Mesos-DNS's, with ``--dns-soa-mname``/``--dns-soa-rname`` as
    its SOAMname/SOARname (relative names are under the root; an rname may be written as an
    address, ``root@ns1.mesos``). ValueError when either is no DNS name."""
    names = []
    for option, value in (("--dns-soa-mname", options.dns_soa_mname), ("--dns-soa-rname", options.dns_soa_rname)):
        try:
            names.append(canonical_name(value.replace("@", ".") if option == "--dns-soa-rname" else value))
        except ValueError as error:
            raise ValueError(f"{option} {value!r} is not a DNS name: {error}") from None
    return dataclasses.replace(MESOS_DNS_SOA, mname=names[0], rname=names[1])


def zones_for(options: NodeOptions) -> ZoneSet:
    """Our zones: all of dcos-dns' and Mesos-DNS's, except ``mesos`` when it is forwarded to
    the masters' Mesos-DNS (running side by side with it while migrating)."""
    skip = {MESOS_ORIGIN} if options.mesos_dns else set()
    return ZoneSet([origin for origin in DEFAULT_ORIGINS if origin not in skip], soas={MESOS_ORIGIN: mesos_soa(options)})


def own_networks() -> list[str]:
    """The networks of this host's (or namespace's) interfaces, as CIDRs."""
    with IPRoute() as ip:
        return [f"{address.get_attr('IFA_ADDRESS')}/{address['prefixlen']}" for address in ip.get_addr()]


def zone_key(key: str) -> tuple[str, str]:
    """The (name, type) a desired key stands for: ``name/type``, or a fed VIP name's key."""
    name, _, kind = key.removeprefix(VIP_KEY_PREFIX).rpartition("/")
    return name, kind


class DecodedSets(Mapping[str, RecordSet]):
    """The desired table's record sets, decoded from the topic's bytes when read (for the
    Mesos-DNS HTTP API, which is all that keeps those bytes)."""

    def __init__(self, desired: Mapping[str, Entry]) -> None:
        self._desired = desired

    def __getitem__(self, key: str) -> RecordSet:
        raw = raw_in(self._desired[key])
        if raw is None:
            raise KeyError(key)
        return _decoder.decode(raw)

    def __iter__(self) -> Iterator[str]:
        return (key for key, entry in list(self._desired.items()) if raw_in(entry) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class DnsPlan:
    """One change of the zones. `swap`: the whole fed content, RRsets each (name, type) once,
    replaced at once (a full pass); else `upserts` (RRsets to set) and `deletes` ((name, type)
    to drop: keys gone from the table, only once removals are allowed)."""

    swap: list[RRset] | None = None
    upserts: list[RRset] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.swap is not None or bool(self.upserts) or bool(self.deletes)


def plan_zones(desired: Mapping[str, Entry], actual: Mapping[tuple[str, str], RRset], scope: Scope,
               own: Mapping[tuple[str, str], RRset]) -> DnsPlan:
    """Desired record sets (plus `own`: the node's own names) against what the zones serve.
    Pure. Before `scope.may_remove`, whatever the zones serve stays, even if no longer wanted."""
    if scope.keys is None:
        return _plan_all(desired, actual, scope.may_remove, own)
    out = DnsPlan()
    for key in sorted(scope.keys):
        where = zone_key(key)
        entry, have = desired.get(key), actual.get(where)
        wanted = rrset_in(entry) if entry is not None else None
        if wanted is not None:
            if have != wanted:
                out.upserts.append(wanted)
        elif have is not None and scope.may_remove and where not in own:
            out.deletes.append(where)
    return out


def _plan_all(desired: Mapping[str, Entry], actual: Mapping[tuple[str, str], RRset], may_remove: bool,
              own: Mapping[tuple[str, str], RRset]) -> DnsPlan:
    """A full pass: the target is `own` and every desired RRset (over what the zones serve,
    before `may_remove`), swapped in whole when it differs from what they serve. A large
    table makes this the start-up load, so the common cases copy nothing per RRset: when no
    two entries share a (name, type), the zones are checked against desired in place, and
    a target that is desired alone is swapped in as the RRsets themselves."""
    if not _sharing(desired, own):
        if actual and _serving(desired, actual, may_remove, own):
            return DnsPlan()
        if may_remove or not actual:
            wanted = (entry if type(entry) is not Wanted else entry.rrset for entry in desired.values())
            return DnsPlan(swap=[*own.values(), *(rrset for rrset in wanted if rrset is not None)])
    target = dict(actual.items()) if not may_remove else {}
    target.update(own)
    for key, entry in desired.items():
        wanted = rrset_in(entry)
        if wanted is not None:
            target[zone_key(key)] = wanted
    if len(target) == len(actual) and all(_same(actual.get(where), rrset) for where, rrset in target.items()):
        return DnsPlan()
    return DnsPlan(swap=list(target.values()))


def _sharing(desired: Mapping[str, Entry], own: Mapping[tuple[str, str], RRset]) -> bool:
    """Whether two entries of the target could share a (name, type): only a fed VIP name or
    an own name can meet another entry's (a table key is its set's name/type)."""
    others = [zone_key(key) for key in desired if key.startswith(VIP_KEY_PREFIX)] + list(own)
    return len(set(others)) < len(others) or any(record_set_key(name, kind) in desired for name, kind in others)


def _serving(desired: Mapping[str, Entry], actual: Mapping[tuple[str, str], RRset], may_remove: bool,
             own: Mapping[tuple[str, str], RRset]) -> bool:
    """Whether the zones serve exactly the target already (no two entries sharing a (name,
    type)): every wanted RRset as it is, and, once removals are allowed, nothing else."""
    for where, rrset in own.items():
        if not _same(actual.get(where), rrset):
            return False
    count = len(own)
    for key, entry in desired.items():
        wanted = entry if type(entry) is not Wanted else entry.rrset
        if wanted is not None:
            if not _same(actual.get(zone_key(key)), wanted):
                return False
            count += 1
    return not may_remove or count == len(actual)


def _same(have: RRset | None, rrset: RRset) -> bool:
    return have is rrset or have == rrset  # the zones hold desired's own RRsets after a swap


class DnsRole(Role[Entry, Mapping[tuple[str, str], RRset], DnsPlan]):
    name = "dns"
    freeze_after_load = True  # a large table makes millions of objects and no cycles

    def __init__(self, options: NodeOptions, zones: ZoneSet | None = None, forwarder: Forwarder | None = None,
                 *, listen: bool = True) -> None:
        self.options = options
        self.zones = zones if zones is not None else zones_for(options)
        if forwarder is None and (options.upstreams or options.forward_zones or options.mesos_dns):
            forwarder = Forwarder.from_config(options.upstreams, options.forward_zones, options.mesos_dns)
        self.forwarder = forwarder
        self.listen = listen  # False: the zones only (unit tests ask them directly)
        # With DNS workers (appliers/dns/workers.py) every worker binds the same port with
        # SO_REUSEPORT; a restarted one binds only once ready (`listen_when_ready`), so its
        # clients stay with the serving workers while it catches up, not on SERVFAIL.
        self.reuse_port = options.dns_workers > 1
        self.listen_when_ready = False
        self.listening = asyncio.Event()  # the DNS server is bound
        self.server: DnsServer | None = None
        self.http: MesosDnsHttpServer | None = None
        self.own = {(r.name, r.type): RRset.of([r]) for r in thisnode_records(options.agent_ip)}
        self._keep_raw = options.dns_http is not None
        self._builder: RecordBuilder | None = RecordBuilder()  # for the start-up load only
        self._desired: Mapping[str, Entry] = {}
        self._vip_keys: set[str] = set()

    # -- the four steps ---------------------------------------------------------------------

    def decode(self, key: str, value: bytes) -> Entry:
        """A record set of the topic, or ValueError when it is not one, when its key is not its
        own name and type (a tombstone of that key could not find it), or when a value is
        invalid."""
        record_set = _served_decoder.decode(value)
        if key != record_set_key(record_set.name, record_set.type):
            raise ValueError(f"the key of {record_set.name} {record_set.type} must be "
                             f"{record_set_key(record_set.name, record_set.type)!r}")
        rrset = rrset_of(record_set, self._builder)
        if self._keep_raw:
            return Wanted(rrset, value)
        return rrset if rrset is not None else _NO_VALUE

    def loaded(self) -> None:
        # The builder shares canonical values while the whole table loads; kept, it would
        # hold every value ever seen (records.RecordBuilder). Changes build their own.
        self._builder = None

    def observe(self, scope: Scope) -> Mapping[tuple[str, str], RRset]:
        if scope.keys is None:
            # Read in place: plan and apply follow on the event loop with no await between.
            return self.zones.fed()
        found = {}
        for key in scope.keys:
            where = zone_key(key)
            rrset = self.zones.rrset(*where)
            if rrset is not None:
                found[where] = rrset
        return found

    def plan(self, desired: Mapping[str, Entry], actual: Mapping[tuple[str, str], RRset], scope: Scope) -> DnsPlan:
        self._desired = desired
        return plan_zones(desired, actual, scope, self.own)

    def apply(self, plan: DnsPlan) -> None:
        if plan.swap is not None:
            self.zones.replace_sets(plan.swap)  # ValueError: the old copy keeps serving
            return
        for rrset in plan.upserts:
            self.zones.upsert(rrset.name, rrset.type, rrset)
        for name, kind in plan.deletes:
            self.zones.remove(name, kind)

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self.listen and not self.listen_when_ready:
            await self._listen()
            log.info("dns: listening on %s:%d (cluster names answer SERVFAIL until ready)", *self.server.address[:2])

    async def _listen(self) -> None:
        allowed = self.options.allow_recursion
        acl = RecursionAcl(allowed) if allowed is not None else RecursionAcl.for_node(
            await asyncio.to_thread(own_networks))
        options = self.options
        self.server = DnsServer(Answerer(self.zones, self.forwarder, recursion_acl=acl), *options.dns_listen,
                                tcp_connections_per_client=options.tcp_connections_per_client,
                                max_tcp_connections=options.max_tcp_connections,
                                tcp_idle_timeout=options.tcp_idle_timeout, reuse_port=self.reuse_port)
        await self.server.start()
        self.listening.set()

    async def serve(self) -> None:
        self.zones.ready = True  # ready.spartan answers from now on
        if self.listen and self.server is None:
            await self._listen()
            log.info("dns: listening on %s:%d (ready)", *self.server.address[:2])
        if self.listen and self.options.dns_http:  # like Mesos-DNS, HTTP only once there is something to serve
            self.http = MesosDnsHttpServer(self.record_sets, *self.options.dns_http, config=self._http_config(),
                                           serial=lambda: self.zones.serial, reuse_port=self.reuse_port)
            await self.http.start()

    async def close(self) -> None:
        if self.http:
            await self.http.stop()
        if self.server:
            await self.server.stop()
        if self.forwarder:
            await self.forwarder.close()

    # -- what the node and the HTTP API use ---------------------------------------------------

    def vip_names(self, in_kernel: Mapping[str, Vip]) -> dict[str, Entry | None]:
        """The desired entries for the names of the VIPs the l4lb role's kernel holds (None:
        a name to drop), to feed the loop after each l4lb pass."""
        names = vip_records(in_kernel.values())
        entries: dict[str, Entry | None] = {
            f"{VIP_KEY_PREFIX}{name}/{kind}": RRset.of(records) for (name, kind), records in names.items()}
        for gone in self._vip_keys - entries.keys():
            entries[gone] = None
        self._vip_keys = set(entries) - {key for key, entry in entries.items() if entry is None}
        return entries

    @property
    def record_sets(self) -> Mapping[str, RecordSet]:
        return DecodedSets(self._desired)

    def _http_config(self) -> MesosDnsConfig:
        """What /v1/config reports: where this node listens, its resolvers, and the SOA its
        ``mesos`` zone really serves."""
        host, port = self.server.address[:2]
        soa = mesos_soa(self.options)
        return MesosDnsConfig(port=port, listener=host, resolvers=self.options.upstreams,
                              ip_sources=("host", "netinfo"), soa_mname=soa.mname, soa_rname=soa.rname,
                              soa_refresh=soa.refresh, soa_retry=soa.retry, soa_expire=soa.expire,
                              soa_minttl=soa.minimum)
