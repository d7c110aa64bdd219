"""The node's dns role: the ``dns`` topic into the node's zones, served by its DNS server.

Start-up follows the appliers' rule (ARCHITECTURE.md: never act on half a table): the server
listens at once, but every cluster name gets SERVFAIL ("ask elsewhere", never an NXDOMAIN a
resolver would cache) until the whole topic has been read and loaded in one swap, and the
other roles (l4lb) have caught up too. Then ``ready.spartan`` answers, which is how dcos-dns'
resolv.conf generator and watchdog tell a working node from a starting one. Catch-up logs its
progress, and ``progress`` holds (records read, records to read) for the metrics.

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
from runtime.kafka.follower import TableFollower
from runtime.kafka.reader import ConsumedRecord
from schemas.catalog import Catalog
from schemas.dns import RecordSet, record_set_key
from schemas.headers import RecordMeta

log = logging.getLogger(__name__)

THISNODE = "thisnode.thisdcos.directory."
PROGRESS_EVERY_S = 2.0
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


@dataclass
class DnsSettings:
    """What the dns role needs from the node's options."""

    bootstrap: str
    catalog: Catalog
    agent_ip: str
    listen: tuple[str, int] = ("127.0.0.1", 53)
    http: tuple[str, int] | None = None  # the Mesos-DNS HTTP API, when wanted
    upstreams: tuple[str, ...] = ()  # default upstreams, IP[:PORT]
    forward_zones: dict[str, list[str]] = field(default_factory=dict)  # zone -> IP[:PORT] list
    mesos_dns: tuple[str, ...] = ()  # when set, the mesos zone is forwarded there, not served
    allow_recursion: tuple[str, ...] | None = None  # CIDRs; None: loopback and our networks
    catch_up_timeout: float = 600.0


def rrset_of(record_set: RecordSet | _Served, builder: RecordBuilder | None = None) -> RRset | None:
    """The validated RRset of one set (None when it has no value); ValueError says what is
    wrong."""
    return (builder or RecordBuilder()).rrset(record_set.name, record_set.type, record_set.ttl, record_set.rdata)


def thisnode_records(agent_ip: str) -> list[Record]:
    """``thisnode.thisdcos.directory``: the node's own address, answered per node."""
    kind = "AAAA" if ":" in agent_ip else "A"
    return [record(THISNODE, kind, RECORD_TTL, agent_ip)]


def zones_for(settings: DnsSettings) -> ZoneSet:
    """Our zones: all of dcos-dns' and Mesos-DNS's, except ``mesos`` when it is forwarded to
    the masters' Mesos-DNS (running side by side with it while migrating)."""
    skip = {"mesos."} if settings.mesos_dns else set()
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
    settings: DnsSettings
    zones: ZoneSet | None = None  # from the settings when not given
    forwarder: Forwarder | None = None  # from the settings: None when no upstream is set
    server: DnsServer | None = None
    http: MesosDnsHttpServer | None = None
    # The valid record sets as the topic's bytes (a fraction of the decoded size), kept only
    # for the Mesos-DNS HTTP API, which reads them through `record_sets`, decoded when read.
    raw: dict[str, bytes] = field(default_factory=dict)
    progress: tuple[int, int] = (0, 0)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    convergence_s: deque = field(default_factory=lambda: deque(maxlen=100_000))
    # Called with each applied batch and the time the zones had it (benches, tests).
    on_applied: Callable[[list[ConsumedRecord], float], None] | None = None
    skipped: int = 0  # record sets refused as invalid

    def __post_init__(self) -> None:
        settings = self.settings
        if self.zones is None:
            self.zones = zones_for(settings)
        if self.forwarder is None and (settings.upstreams or settings.forward_zones or settings.mesos_dns):
            self.forwarder = Forwarder.from_config(settings.upstreams, settings.forward_zones, settings.mesos_dns)

    async def run(self, stop: asyncio.Event, others: list[asyncio.Event] = ()) -> None:
        settings = self.settings
        allowed = settings.allow_recursion
        acl = RecursionAcl(allowed) if allowed is not None else RecursionAcl.for_node(
            await asyncio.to_thread(own_networks))
        self.server = DnsServer(Answerer(self.zones, self.forwarder, recursion_acl=acl), *settings.listen)
        await self.server.start()
        log.info("dns: listening on %s:%d (cluster names answer SERVFAIL until caught up)",
                 *self.server.address[:2])
        follower = TableFollower(settings.bootstrap, settings.catalog.topic("dns").name, keep_table=False)
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
            if settings.http:  # like Mesos-DNS, HTTP only once there is something to serve
                self.http = MesosDnsHttpServer(self.record_sets, *settings.http, config=self._http_config(),
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
        return MesosDnsConfig(port=port, listener=host, resolvers=self.settings.upstreams,
                              ip_sources=("host", "netinfo"),
                              soa_mname=SOA_MNAME, soa_rname=SOA_RNAME, soa_refresh=SOA_REFRESH,
                              soa_retry=SOA_RETRY, soa_expire=SOA_EXPIRE, soa_minttl=SOA_MINIMUM)

    def _read_all(self, follower: TableFollower) -> dict[str, RRset | None]:
        """Read the whole topic (in the follower's thread), turning each record into records
        for the zones as it comes: the topic's bytes are dropped at once unless the HTTP API
        needs them. Key -> records of every valid set."""
        builder = RecordBuilder()
        loading: dict[str, RRset | None] = {}
        keep_raw = self.settings.http is not None

        def each(consumed: ConsumedRecord) -> None:
            key = consumed.key or ""
            rrset = valid = None
            if consumed.value is not None:
                record_set = self._decode(key, consumed.value)
                try:
                    if record_set is not None:
                        rrset, valid = rrset_of(record_set, builder), True
                except ValueError as error:
                    self._skip(key, error)
            if not valid:  # a tombstone, or a bad newer value replacing a good one
                loading.pop(key, None)
                self.raw.pop(key, None)
                return
            loading[key] = rrset  # None: a valid set with no value (it serves nothing)
            if keep_raw:
                self.raw[key] = consumed.value

        follower.catch_up(self.settings.catch_up_timeout, self._progress_logger(), each)
        return loading

    def _load(self, loading: dict[str, RRset | None]) -> int:
        """Everything read into the zones in one swap, keeping what other roles fed in (the
        l4lb role's VIP names) and this node's own name. Returns how many sets it loaded."""
        others: dict[tuple[str, str], list[Record]] = {}
        for r in [*thisnode_records(self.settings.agent_ip), *self.zones.records()]:
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
            if self.settings.http is not None:
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

    def _progress_logger(self) -> Callable[[int, int], None]:
        last = [0.0]

        def report(read: int, total: int) -> None:
            self.progress = (read, total)
            now = time.monotonic()
            if total and (now - last[0] >= PROGRESS_EVERY_S or read >= total):
                last[0] = now
                log.info("dns: catching up %d/%d records (%.0f%%)", read, total, 100.0 * read / total)

        return report
