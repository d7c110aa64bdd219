"""The node's dns role: the ``dns`` topic into the node's zones, served by its DNS server.

Start-up follows the appliers' rule (ARCHITECTURE.md: never act on half a table): the server
listens at once, but every cluster name gets SERVFAIL ("ask elsewhere", never an NXDOMAIN a
resolver would cache) until the whole topic has been read and loaded in one swap, and the
other roles (l4lb) have caught up too. Then ``ready.spartan`` answers, which is how dcos-dns'
resolv.conf generator and watchdog tell a working node from a starting one. Catch-up logs its
progress, and ``progress`` keeps how far it has read, for the metrics.

After that each batch of records is applied set by set. A record set that does not decode or
holds an invalid record is logged and skipped; the rest keep serving.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgspec

from pyroute2 import IPRoute

from appliers.dns.acl import RecursionAcl
from appliers.dns.answer import Answerer
from appliers.dns.records import Record, RecordBuilder, RRset, record
from appliers.dns.server import DnsServer
from appliers.dns.http_server import MesosDnsHttpServer
from appliers.dns.mesos_api import MesosDnsConfig
from appliers.dns.resolver import Forwarder
from appliers.dns.zone import (DEFAULT_ORIGINS, RECORD_TTL, SOA_EXPIRE, SOA_MINIMUM, SOA_MNAME, SOA_REFRESH, SOA_RETRY,
                               SOA_RNAME, ZoneSet)
from appliers.options import NodeOptions
from runtime.kafka.follower import CatchUpProgress, TableFollower
from runtime.kafka.reader import ConsumedRecord
from schemas.dns import RecordSet, record_set_key
from schemas.headers import RecordMeta

log = logging.getLogger(__name__)

THISNODE = "thisnode.thisdcos.directory."
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


def rrset_of(record_set: RecordSet | _Served, builder: RecordBuilder | None = None) -> RRset | None:
    """The validated RRset of one set (None when it has no value); ValueError says what is
    wrong."""
    return (builder or RecordBuilder()).rrset(record_set.name, record_set.type, record_set.ttl, record_set.rdata)


def thisnode_records(agent_ip: str) -> list[Record]:
    """``thisnode.thisdcos.directory``: the node's own address, answered per node."""
    kind = "AAAA" if ":" in agent_ip else "A"
    return [record(THISNODE, kind, RECORD_TTL, agent_ip)]


def zones_for(options: NodeOptions) -> ZoneSet:
    """Our zones: all of dcos-dns' and Mesos-DNS's, except ``mesos`` when it is forwarded to
    the masters' Mesos-DNS (running side by side with it while migrating)."""
    skip = {"mesos."} if options.mesos_dns else set()
    return ZoneSet([origin for origin in DEFAULT_ORIGINS if origin not in skip])


def own_networks() -> list[str]:
    """The networks of this host's (or namespace's) interfaces, as CIDRs."""
    with IPRoute() as ip:
        return [f"{address.get_attr('IFA_ADDRESS')}/{address['prefixlen']}" for address in ip.get_addr()]


class DecodedSets(Mapping[str, RecordSet]):
    """The role's raw table read as RecordSets, each decoded when it is read."""

    def __init__(self, raw: dict[str, bytes]) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> RecordSet:
        return _decoder.decode(self._raw[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass
class DnsRole:
    options: NodeOptions
    zones: ZoneSet | None = None  # from the options when not given
    forwarder: Forwarder | None = None  # from the options: None when no upstream is set
    server: DnsServer | None = None
    http: MesosDnsHttpServer | None = None
    # The valid record sets as the topic's bytes (a fraction of the decoded size), kept only
    # for the Mesos-DNS HTTP API, which reads them through `record_sets`, decoded when read.
    raw: dict[str, bytes] = field(default_factory=dict)
    progress: CatchUpProgress = field(default_factory=lambda: CatchUpProgress(log, "dns"))
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    convergence_s: deque = field(default_factory=lambda: deque(maxlen=100_000))
    # Called with each applied batch and the time the zones had it (benches, tests).
    on_applied: Callable[[list[ConsumedRecord], float], None] | None = None
    skipped: int = 0  # record sets refused as invalid

    def __post_init__(self) -> None:
        options = self.options
        if self.zones is None:
            self.zones = zones_for(options)
        if self.forwarder is None and (options.upstreams or options.forward_zones or options.mesos_dns):
            self.forwarder = Forwarder.from_config(options.upstreams, options.forward_zones, options.mesos_dns)

    async def run(self, stop: asyncio.Event, others: list[asyncio.Event] = ()) -> None:
        options = self.options
        allowed = options.allow_recursion
        acl = RecursionAcl(allowed) if allowed is not None else RecursionAcl.for_node(
            await asyncio.to_thread(own_networks))
        self.server = DnsServer(Answerer(self.zones, self.forwarder, recursion_acl=acl), *options.dns_listen)
        await self.server.start()
        log.info("dns: listening on %s:%d (cluster names answer SERVFAIL until caught up)",
                 *self.server.address[:2])
        follower = TableFollower(options.bootstrap, options.catalog.topic("dns").name)
        kafka_thread = ThreadPoolExecutor(1, "dns-follow")
        loop = asyncio.get_running_loop()
        try:
            started = time.monotonic()
            # The load makes millions of objects and no cycles: every automatic collection
            # would walk all of them again, so the collector waits, and then they are frozen
            # out of its sight (they live as long as the node).
            collecting = gc.isenabled()
            gc.disable()
            try:
                loading = await loop.run_in_executor(kafka_thread, self._read_all, follower)
                loaded = self._load(loading)
                del loading
            finally:
                if collecting:
                    gc.enable()
            gc.collect()
            gc.freeze()
            log.info("dns: caught up on %d record sets in %.1fs", loaded, time.monotonic() - started)
            self.caught_up.set()
            await asyncio.gather(*(event.wait() for event in others))
            self.zones.ready = True  # ready.spartan answers from now on
            if options.dns_http:  # like Mesos-DNS, HTTP only once there is something to serve
                self.http = MesosDnsHttpServer(self.record_sets, *options.dns_http, config=self._http_config(),
                                               serial=lambda: self.zones.serial)
                await self.http.start()
            while not stop.is_set():
                records = await loop.run_in_executor(kafka_thread, follower.changes, 0.1)
                if records:
                    self.apply(records)
        finally:
            follower.close()
            kafka_thread.shutdown(wait=True)
            if self.http:
                await self.http.stop()
            await self.server.stop()
            if self.forwarder:
                await self.forwarder.close()

    def _http_config(self) -> MesosDnsConfig:
        """What /v1/config reports: where this node listens, its resolvers, and the SOA its
        zones really serve (dcos-dns values, not Mesos-DNS's)."""
        host, port = self.server.address[:2]
        return MesosDnsConfig(port=port, listener=host, resolvers=self.options.upstreams,
                              ip_sources=("host", "netinfo"),
                              soa_mname=SOA_MNAME, soa_rname=SOA_RNAME, soa_refresh=SOA_REFRESH,
                              soa_retry=SOA_RETRY, soa_expire=SOA_EXPIRE, soa_minttl=SOA_MINIMUM)

    def _read_all(self, follower: TableFollower) -> dict[str, RRset | None]:
        """Read the whole topic (in the follower's thread), turning each record into records
        for the zones as it comes: the topic's bytes are dropped at once unless the HTTP API
        needs them. Key -> records of every valid set."""
        builder = RecordBuilder()
        loading: dict[str, RRset | None] = {}
        keep_raw = self.options.dns_http is not None

        def each(consumed: ConsumedRecord) -> None:
            key = consumed.key or ""
            if consumed.value is None:
                loading.pop(key, None)
                self.raw.pop(key, None)
                return
            record_set = self._decode(key, consumed.value)
            try:
                rrset = rrset_of(record_set, builder) if record_set is not None else None
            except ValueError as error:
                self._skip(key, error)
                return  # a bad value leaves the last good one serving, as `apply` does
            if record_set is None:
                return
            loading[key] = rrset  # None: a valid set with no value (it serves nothing)
            if keep_raw:
                self.raw[key] = consumed.value

        follower.catch_up(self.options.catch_up_timeout, self.progress, each)
        return loading

    def _load(self, loading: dict[str, RRset | None]) -> int:
        """Everything read into the zones in one swap, keeping what other roles fed in (the
        l4lb role's VIP names) and this node's own name. Returns how many sets it loaded."""
        others: dict[tuple[str, str], list[Record]] = {}
        for r in [*thisnode_records(self.options.agent_ip), *self.zones.records()]:
            others.setdefault((r.name, r.type), []).append(r)
        # A generator, not another dict: a large load should not hold every key twice.
        loaded = (((rrset.name, rrset.type), rrset) for rrset in loading.values() if rrset is not None)
        self.zones.replace_rrsets(itertools.chain(others.items(), loaded))
        return len(loading)

    @property
    def record_sets(self) -> Mapping[str, RecordSet]:
        return DecodedSets(self.raw)

    def apply(self, records: list[ConsumedRecord]) -> None:
        """One batch of topic changes into the zones; measures each record's convergence."""
        for consumed in records:
            key = consumed.key or ""
            if consumed.value is None:
                self.raw.pop(key, None)
                name, _, kind = key.rpartition("/")  # a valid key is its set's name/type
                try:
                    self.zones.remove(name, kind)
                except ValueError:
                    pass  # not a key a valid set could have had: nothing to remove
                continue
            record_set = self._decode(key, consumed.value)
            if record_set is None:
                continue
            try:
                rrset = rrset_of(record_set)
                if rrset is None:
                    self.zones.remove(record_set.name, record_set.type)
                else:
                    self.zones.upsert(rrset.name, rrset.type, rrset)
            except ValueError as error:
                self._skip(key, error)
                continue
            if self.options.dns_http is not None:
                self.raw[key] = consumed.value
        applied_at = time.time()
        for consumed in records:
            meta = RecordMeta.from_headers(consumed.headers)
            if meta:
                self.convergence_s.append(applied_at - meta.observed_ns / 1e9)
        if self.on_applied:
            self.on_applied(records, applied_at)

    def _decode(self, key: str, value: bytes) -> _Served | None:
        """The record set of a topic record, or None (logged) when it is not one, or when its
        key is not its own name and type (then a tombstone of that key could not find it)."""
        try:
            record_set = _served_decoder.decode(value)
        except msgspec.ValidationError as error:
            self._skip(key, error)
            return None
        if key != record_set_key(record_set.name, record_set.type):
            self._skip(key, ValueError(f"the key of {record_set.name} {record_set.type} must be "
                                       f"{record_set_key(record_set.name, record_set.type)!r}"))
            return None
        return record_set

    def _skip(self, key: str, error: Exception) -> None:
        self.skipped += 1
        log.error("dns: record set %s is invalid, keeping the rest: %s", key, error)
