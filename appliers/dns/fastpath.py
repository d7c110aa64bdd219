"""The UDP hot path: the common query answered from pre-encoded fragments, no DNS library. Pure.

`FastPath(answerer).reply(query)` returns the reply bytes for the common case, or None, which
means "ask the `Answerer`". The reply is the one the Answerer would give (same flags, AA,
rcode, counts, record order, TTLs, OPT), only encoded by hand; tests/unit/dns_fastpath checks
that with dnspython on random zones and queries.

The common case: header with QR=0 and opcode QUERY, one question of class IN, no answer or
authority records, at most one additional record which is a well-formed EDNS version 0 OPT,
a name made of letters, digits, '-' and '_' (what our zones can hold), and a zone set that is
ready. Everything else falls back: other opcodes, garbage, compression pointers in the
question, zone transfers, names outside our origins (forwarding or REFUSED), the dcos-dns
aliases (routing.rename), BADVERS, replies too big for the client whose truncated size we
cannot be sure of. RA follows the Answerer's `may_recurse(client)`.

How it is fast (reference/kernel-dns-haproxy.md §4): the cache key is the question as sent
(name, type and class bytes) lowered, so a hit costs one slice, one `bytes.lower` and one dict
lookup. A reply is the query's own id and question spliced around the entry's pre-encoded
records. Every owner name equal to the question is the pointer 0xC00C; every other name is
written uncompressed, so fragments are valid after any question (dnslib-packed records are
not: their pointers are relative to dnslib's own buffer).

Staleness: entries are built from `ZoneSet.lookup`, and the zone set reports every change
(`ZoneSet.watch`): a change at one name drops that name's entries and every entry that may
depend on other names or on the SOA serial (negative answers, CNAME chains, SOA); a `replace`
drops all. So under steady churn the positive answers of untouched names stay cached.
`ready` is read per query, never cached.
"""

from __future__ import annotations

import ipaddress
import struct
from functools import lru_cache

from appliers.dns.answer import UDP_MIN, Answerer
from appliers.dns.records import Record
from appliers.dns.routing import rename
from appliers.dns.zone import ZoneSet

# Bounds memory (~0.4 KB an entry) under random-name floods; past it replies are built per
# query. A node's hot names are far fewer; a sweep of every name of 100k tasks stays ~300 MB.
MAX_ENTRIES = 65_536
_ROTATIONS_KEPT = 16  # RRsets up to this size keep every rotation pre-joined; larger: per reply

_QUERY_COUNTS = b"\x00\x01\x00\x00\x00\x00"  # QDCOUNT=1, ANCOUNT=0, NSCOUNT=0
_CLASS_IN = 1
_OPT_HEAD = b"\x00\x00\x29"  # root owner, type OPT (41)
_TRANSFERS = frozenset({251, 252})  # IXFR, AXFR: the Answerer refuses them
_MAX_QNAME_WIRE = 253  # dnslib will not pack a longer name; leave those to the Answerer
_LABEL_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "AAAA": 28, "SRV": 33}
# What the Answerer passes to ZoneSet.lookup (dnslib's mnemonic). Only our record types and
# ANY mean anything to the lookup; every other type reads as absent, whatever its spelling.
_LOOKUP_NAMES = {code: name for name, code in _TYPE_CODES.items()} | {255: "ANY"}
_NAME_TYPES = frozenset({"CNAME", "NS"})
_POINTER_TO_QUESTION = b"\xc0\x0c"
_QUERY_COUNTS_NO_OPT = _QUERY_COUNTS + b"\x00"  # ... and the high byte of ARCOUNT


def parse_query(data: bytes) -> tuple[int, int | None, bool] | None:
    """(question_end, udp_size or None, DO bit) when the header and layout are those of a
    common query, else None. `data[12:question_end]` is then the question as sent, unchecked:
    the cache fill validates it (`build_entry`), so a cache hit proves it well formed. The
    usual layouts (no OPT, or an 11-byte OPT at the end) are found without walking labels."""
    size = len(data)
    if size < 17 or data[2] & 0xF8 or data[4:10] != _QUERY_COUNTS or data[10]:
        return None  # a response, another opcode, or sections other than one question
    additional = data[11]
    if additional == 0:
        return size, None, False
    if additional != 1:
        return None
    if data[-11:-8] == _OPT_HEAD and data[-2:] == b"\x00\x00" and size >= 28:
        end = size - 11  # root owner, type OPT, no options
    else:
        end = _question_end(data)
        if end is None or not _is_opt(data, end):
            return None
    if data[end + 6]:  # EDNS version > 0: BADVERS, the Answerer's business
        return None
    return end, (data[end + 3] << 8) | data[end + 4], bool(data[end + 7] & 0x80)


def _question_end(data: bytes) -> int | None:
    """Offset just past the question's class: labels walked from 12, pointers refused."""
    position = 12
    size = len(data)
    for _ in range(128):  # a name has at most 127 labels
        if position >= size:
            return None
        length = data[position]
        if length == 0:
            end = position + 5
            return end if end <= size else None
        if length > 63:
            return None
        position += 1 + length
    return None


def _is_opt(data: bytes, start: int) -> bool:
    """A root-owned OPT record from `start` to the end, options well formed."""
    size = len(data)
    if start + 11 > size or data[start:start + 3] != _OPT_HEAD:
        return False
    rdlength = (data[start + 9] << 8) | data[start + 10]
    position, end = start + 11, start + 11 + rdlength
    if end != size:
        return False
    for _ in range(rdlength // 4 + 1):
        if position == end:
            return True
        if position + 4 > end:
            return False
        position += 4 + ((data[position + 2] << 8) | data[position + 3])
    return position == end


class Entry:
    """One (name, type)'s reply, pre-encoded around the question: `heads` are header bytes
    2-11 (flags and counts) by RD bit, OPT presence and RA bit, `tails` the answer and
    authority sections by rotation."""

    __slots__ = ("heads", "truncated_heads", "tails", "chain", "rotating", "authority", "exact",
                 "name", "stable")

    def __init__(self, rcode: int, aa: bool, chain: tuple[bytes, ...],
                 rotating: tuple[bytes, ...], authority: tuple[bytes, ...], exact: bool,
                 name: str, stable: bool) -> None:
        flags = 0x80 | (0x04 if aa else 0)  # QR, AA; Z stays 0 as in the Answerer
        an, ns = len(chain) + len(rotating), len(authority)
        # Index: RD bit of the query | 2 when the query had an OPT (ARCOUNT 1 in the reply)
        # | 4 when the client may recurse through us (RA, the Answerer's may_recurse).
        self.heads = _heads(flags, rcode, an, ns)
        # TC=1, no answer or authority: what goes out when the records do not fit.
        self.truncated_heads = _heads(flags | 0x02, rcode, 0, 0)
        self.chain = b"".join(chain)  # CNAMEs: always first, never rotated
        self.rotating = rotating
        self.authority = b"".join(authority)
        # Rotation by message id mod n (answer.rotate): pre-joined while that stays small.
        n = len(rotating)
        if n <= _ROTATIONS_KEPT:
            self.tails = tuple(self.chain + b"".join(rotating[k:] + rotating[:k]) + self.authority
                               for k in range(max(n, 1)))
        else:
            self.tails = None
        # True when our length is the Answerer's too (no name it could compress), so a
        # too-big reply can be truncated here instead of asking it.
        self.exact = exact
        self.name = name  # the question's name, lowered
        # True when only the RRsets at `name` shape this reply (see FastPath._changed).
        self.stable = stable

    def tail(self, message_id: int) -> bytes:
        tails = self.tails
        if tails is not None:
            return tails[message_id % len(tails)]
        rotating = self.rotating
        shift = message_id % len(rotating)
        return self.chain + b"".join(rotating[shift:]) + b"".join(rotating[:shift]) + self.authority


@lru_cache(maxsize=4096)
def _heads(flags: int, rcode: int, an: int, ns: int) -> tuple[bytes, ...]:
    """The eight header variants (Entry.heads), shared by every entry of the same shape: a
    node can cache a hundred thousand entries, and most are "NOERROR, AA, one answer"."""
    return tuple(_head(flags, rcode, index, an, ns) for index in range(8))


def _head(flags: int, rcode: int, index: int, an: int, ns: int) -> bytes:
    """Header bytes 2-11 of a one-question reply for a head index (Entry.heads)."""
    byte2 = flags | (index & 1)  # RD copied
    byte3 = (0x80 if index & 4 else 0) | (rcode & 0x0F)  # RA, rcode
    return bytes((byte2, byte3)) + struct.pack("!HHHH", 1, an, ns, index >> 1 & 1)


_SLOW = object()  # cached "not ours or unusual: ask the Answerer"


class FastPath:
    """The hot path in front of one `Answerer` (its zones and its UDP cap)."""

    def __init__(self, answerer: Answerer, *, max_entries: int = MAX_ENTRIES) -> None:
        self.may_recurse = answerer.may_recurse  # the RA bit, per client
        self.zones: ZoneSet = answerer.zones
        self.max_udp_payload = answerer.max_udp_payload
        self.max_entries = max_entries
        self._entries: dict[bytes, Entry | object] = {}
        self._stable_keys: dict[str, list[bytes]] = {}  # name -> keys of its stable entries
        self._fragile_keys: set[bytes] = set()  # entries any change may alter
        udp = self.max_udp_payload.to_bytes(2, "big")
        self._opt = b"\x00\x00\x29" + udp + b"\x00\x00\x00\x00\x00\x00"
        self._opt_do = b"\x00\x00\x29" + udp + b"\x00\x00\x80\x00\x00\x00"
        self.zones.watch(self._changed)

    def reply(self, data: bytes, client: str | None = None) -> bytes | None:
        """The reply to a UDP query from `client` (its address), or None: let the Answerer
        answer it."""
        if not self.zones.ready:
            return None
        if data[11:12] == b"\x00":  # no OPT, the usual case, parsed inline: this is the hot path
            if len(data) < 17 or data[2] & 0xF8 or data[4:11] != _QUERY_COUNTS_NO_OPT:
                return None
            end, udp_size, do = len(data), None, False
        else:
            parsed = parse_query(data)
            if parsed is None:
                return None
            end, udp_size, do = parsed
        key = data[12:end].lower()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._fill(key)
        if entry is _SLOW:
            return None
        tails = entry.tails
        if tails is not None and len(tails) == 1:
            tail = tails[0]
        else:
            tail = entry.tail((data[0] << 8) | data[1])
        index = data[2] & 0x01
        if self.may_recurse(client):
            index |= 4
        if udp_size is None:
            reply = data[:2] + entry.heads[index] + data[12:end] + tail
            if len(reply) <= UDP_MIN:
                return reply
            opt, limit = b"", UDP_MIN
        else:
            index |= 2
            opt = self._opt_do if do else self._opt
            reply = data[:2] + entry.heads[index] + data[12:end] + tail + opt
            limit = udp_size if udp_size < self.max_udp_payload else self.max_udp_payload
            if limit < UDP_MIN:
                limit = UDP_MIN
            if len(reply) <= limit:
                return reply
        if not entry.exact:
            return None  # the Answerer's compressed reply may still fit: its call
        # TC=1 with the question and the OPT only, as the Answerer truncates.
        return data[:2] + entry.truncated_heads[index] + data[12:end] + opt

    def _fill(self, key: bytes) -> Entry | object:
        entry = build_entry(self.zones, key)
        if len(self._entries) < self.max_entries:
            self._entries[key] = entry
            if entry is _SLOW:
                pass  # outside our origins or unusual: no zone change alters that
            elif entry.stable:
                self._stable_keys.setdefault(entry.name, []).append(key)
            else:
                self._fragile_keys.add(key)
        return entry

    def _changed(self, name: str | None) -> None:
        """ZoneSet.watch: drop every entry the change at `name` may alter. A stable entry holds
        only RRsets of its own name, which the lookup reads from that name's node alone; every
        other answer (negative ones, which carry the SOA serial; CNAME chains; SOA itself)
        is fragile and goes on any change."""
        entries = self._entries
        if name is None:
            entries.clear()
            self._stable_keys.clear()
        else:
            for key in self._stable_keys.pop(name, ()):
                del entries[key]
        for key in self._fragile_keys:
            entries.pop(key, None)
        self._fragile_keys = set()


def build_entry(zones: ZoneSet, question: bytes) -> Entry | object:
    """The entry for a lowered question (name, type, class as on the wire), or _SLOW."""
    if len(question) < 6:
        return _SLOW
    qname = _name_text(question[:-4])
    qtype = (question[-4] << 8) | question[-3]
    qclass = (question[-2] << 8) | question[-1]
    if qname is None or qclass != _CLASS_IN or qtype in _TRANSFERS or rename(qname):
        return _SLOW  # dcos-dns aliases too: the Answerer renames their records back
    result = zones.lookup(qname, _LOOKUP_NAMES.get(qtype, f"TYPE{qtype}"))
    if result is None or not zones.ready:
        return _SLOW
    answers = result.answers
    first = 0
    while first < len(answers) and answers[first].type == "CNAME":
        first += 1
    chain = tuple(encode_record(r, qname) for r in answers[:first])
    rotating = tuple(encode_record(r, qname) for r in answers[first:])
    authority = tuple(encode_record(r, qname) for r in result.authority)
    exact = not result.authority and all(
        r.name == qname and r.type in ("A", "AAAA") for r in answers)
    stable = not result.authority and all(r.name == qname and r.type != "SOA" for r in answers)
    return Entry(result.rcode, result.aa, chain, rotating, authority, exact, qname, stable)


def _name_text(wire: bytes) -> str | None:
    """Text of a wire name that is exactly a sequence of labels of the bytes we serve, ended
    by the root label; None for anything else (pointers, stray bytes, the root itself)."""
    if not 2 <= len(wire) <= _MAX_QNAME_WIRE or wire[-1]:
        return None
    labels = []
    position, last = 0, len(wire) - 1
    while position < last:
        length = wire[position]
        label = wire[position + 1:position + 1 + length]
        if not 0 < length <= 63 or len(label) != length or not _LABEL_BYTES.issuperset(label):
            return None
        labels.append(label.decode("ascii"))
        position += 1 + length
    if position != last:
        return None
    return ".".join(labels) + "."


def encode_name(name: str) -> bytes:
    """Uncompressed wire form of a canonical name."""
    if name == ".":
        return b"\x00"
    return b"".join(bytes((len(label),)) + label.encode("ascii")
                    for label in name[:-1].split(".")) + b"\x00"


def encode_rdata(r: Record) -> bytes:
    if r.type == "A":
        return ipaddress.IPv4Address(r.rdata).packed
    if r.type == "AAAA":
        return ipaddress.IPv6Address(r.rdata).packed
    if r.type in _NAME_TYPES:
        return encode_name(r.rdata)
    fields = r.rdata.split()
    if r.type == "SRV":
        return struct.pack("!HHH", *map(int, fields[:3])) + encode_name(fields[3])
    if r.type == "SOA":
        return (encode_name(fields[0]) + encode_name(fields[1])
                + struct.pack("!IIIII", *map(int, fields[2:])))
    raise ValueError(f"no wire encoding for {r.type}")


def encode_record(r: Record, qname: str) -> bytes:
    """One resource record; the owner is 0xC00C when it is the question's name (lowered
    `qname`), spelled out otherwise."""
    owner = _POINTER_TO_QUESTION if r.name == qname else encode_name(r.name)
    rdata = encode_rdata(r)
    return owner + struct.pack("!HHIH", _TYPE_CODES[r.type], _CLASS_IN, r.ttl, len(rdata)) + rdata
