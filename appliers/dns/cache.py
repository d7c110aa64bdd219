"""Forwarded answers: what we keep of an upstream reply, how long, and how it is served to a
client. Pure; the clock is injected.

Every upstream reply, fresh or cached, reaches the client through the same two steps:
`ReplyCache.prepare` turns it into a `StoredReply` (the upstream's OPT cut off, the TTL of
every record located, the lifetime decided; `keep` caches it when that lifetime allows),
and `StoredReply.render` stamps it for one client: its message id, RD bit and question spelling (0x20 case checks), RA set, AA cleared
(we are not the authority), TTLs lowered by the time spent in the cache, our own OPT when
the client sent one, and cut down to header + question (+ OPT) with TC when it is larger
than the client takes. Bytes are patched in place; nothing is re-encoded (wire.py says why).

How long (RFC 2308 for the negative cases):
- NOERROR with answers: the smallest TTL in the message, at most `max_ttl`;
- NXDOMAIN, or NOERROR without answers (NODATA), with an SOA in the authority section:
  min(SOA TTL, SOA MINIMUM, the other TTLs), at most `max_negative_ttl`. Without an SOA a
  negative answer is not cached (RFC 2308 §5);
- SERVFAIL, REFUSED, anything else, truncated replies, TTL 0: served once, never cached.
Served TTLs never exceed what is left of the entry's lifetime, so a downstream cache never
keeps an answer longer than we would.

Key: (question name lower case in wire form, QTYPE, QCLASS, DO), because a DO query's answer
carries DNSSEC records a plain query's does not. Entries are evicted least recently used
beyond `capacity`, and dropped when found expired.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from appliers.dns.wire import (HEADER, OPT, SOA, WireError, counts, layout, opt_record, rcode, soa_minimum,
                               ttl_of)

NOERROR, NXDOMAIN = 0, 3

CacheKey = tuple[bytes, int, int, bool]


@dataclass(frozen=True, slots=True)
class Client:
    """What of the client's query shapes the reply it gets."""

    query: bytes
    question_end: int
    edns: bool  # the query carried an OPT
    do: bool
    limit: int  # largest reply the client takes on its transport
    udp_payload: int  # what our OPT advertises


@dataclass(frozen=True, slots=True)
class StoredReply:
    body: bytes  # the upstream reply without its OPT record
    ttls: tuple[tuple[int, int], ...]  # (offset of a TTL, the TTL to count down from)
    question_end: int
    lifetime: int  # seconds it may be served from the cache; 0: this once only
    stored_at: float

    @property
    def rcode(self) -> int:
        return rcode(self.body)

    def render(self, client: Client, now: float) -> bytes:
        out = bytearray(self.body)
        query = client.query
        out[0:2] = query[0:2]
        out[2] = 0x80 | (out[2] & 0x7A) | (query[2] & 0x01)  # QR, opcode and TC kept, AA off, RD copied
        out[3] |= 0x80  # RA: we recursed for this client
        if self.question_end == HEADER:  # a header-only error reply: give it the question
            out[HEADER:HEADER] = query[HEADER:client.question_end]
            out[4:6] = (1).to_bytes(2, "big")
        else:
            out[HEADER:self.question_end - 4] = query[HEADER:client.question_end - 4]  # same length: same key
        elapsed = int(max(now - self.stored_at, 0.0))
        for offset, ttl in self.ttls:
            out[offset:offset + 4] = max(ttl - elapsed, 0).to_bytes(4, "big")
        opt = opt_record(client.udp_payload, client.do) if client.edns else b""
        if len(out) + len(opt) > client.limit:
            del out[client.question_end:]
            out[2] |= 0x02  # TC: the client retries over TCP
            out[6:10] = bytes(4)  # no answers, no authority
            out[10:12] = (1 if opt else 0).to_bytes(2, "big")
        elif opt:
            out[10:12] = (int.from_bytes(out[10:12], "big") + 1).to_bytes(2, "big")
        return bytes(out + opt)


class ReplyCache:
    def __init__(self, capacity: int = 10_000, *, clock: Callable[[], float] = time.monotonic,
                 max_ttl: int = 3600, max_negative_ttl: int = 300) -> None:
        """`capacity` 0 turns caching off (replies are still prepared the same way)."""
        self.capacity = capacity
        self.clock = clock
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self._entries: OrderedDict[CacheKey, StoredReply] = OrderedDict()
        self.hits = self.misses = self.expired = self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def snapshot(self) -> dict[str, int]:
        """For the node's metrics."""
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses,
                "expired": self.expired, "evicted": self.evicted}

    def lookup(self, key: CacheKey) -> StoredReply | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if self.clock() - entry.stored_at >= entry.lifetime:
            del self._entries[key]
            self.expired += 1
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def keep(self, key: CacheKey, stored: StoredReply) -> bool:
        """Cache `stored` under `key` when its lifetime allows; True when kept."""
        if stored.lifetime <= 0 or self.capacity <= 0:
            return False
        self._entries[key] = stored
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.evicted += 1
        return True

    def prepare(self, reply: bytes) -> StoredReply:
        """An upstream reply made ready to serve (and to keep). Raises WireError when it is
        malformed or carries an extended rcode: such a reply is no answer."""
        shape = layout(reply)
        if shape.question_end == HEADER and any(rr.type != OPT for rr in shape.rrs):
            raise WireError("records without a question")
        body, kept = reply, shape.rrs
        for index, rr in enumerate(shape.rrs):
            if rr.type == OPT:
                if reply[rr.ttl_at]:
                    raise WireError("extended rcode from upstream")
                # Cut at the OPT: it is the client's business, and whatever follows it (a
                # TSIG, at most) cannot be passed on anyway. Pointers only point backwards.
                body, kept = bytearray(reply[:rr.start]), shape.rrs[:index]
                additional = sum(1 for r in kept if r.section == 3)
                body[10:12] = additional.to_bytes(2, "big")
                body = bytes(body)
                break
        lifetime = self._lifetime(body, kept)
        ttls = []
        for rr in kept:
            ttl = ttl_of(body, rr)
            ttls.append((rr.ttl_at, min(ttl, lifetime) if lifetime else ttl))
        return StoredReply(body, tuple(ttls), shape.question_end, lifetime, self.clock())

    def _lifetime(self, body: bytes, rrs) -> int:
        if body[2] & 0x02 or counts(body)[0] != 1:
            return 0  # truncated, or no question to answer from
        code = rcode(body)
        smallest = min((ttl_of(body, rr) for rr in rrs), default=None)
        if code == NOERROR and any(rr.section == 1 for rr in rrs):
            return min(smallest, self.max_ttl)
        if code in (NOERROR, NXDOMAIN):
            soas = [rr for rr in rrs if rr.section == 2 and rr.type == SOA]
            if soas:
                negative = min(ttl_of(body, soas[0]), soa_minimum(body, soas[0]))
                return min(negative, smallest, self.max_negative_ttl)
        return 0
