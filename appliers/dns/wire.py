"""Just enough of the DNS wire format to forward, check and cache replies without re-encoding
them. Pure.

Forwarded replies are never rebuilt with dnslib: its packer compresses names against its own
buffer, and re-encoding an upstream's message could change what it says. Instead `layout`
walks a message once and records where each resource record starts and ends, its type and
where its TTL sits, so callers patch bytes in place (id, flags, TTLs, the question's case)
or cut whole records off the end.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER = 12
OPT, SOA = 41, 6
from schemas.dns import MAX_TTL  # RFC 2181 §8: a TTL with the top bit set means zero
_MAX_POINTERS = 64  # bounds a name walk: real names need a handful, loops need infinity


class WireError(ValueError):
    """The bytes are not a well-formed DNS message."""


@dataclass(frozen=True, slots=True)
class Rr:
    start: int  # first byte of the owner name
    type: int
    ttl_at: int  # offset of the 4-byte TTL
    rdata_at: int
    end: int  # one past the rdata
    section: int  # 1 answer, 2 authority, 3 additional


@dataclass(frozen=True, slots=True)
class Layout:
    question_end: int  # HEADER + the question, when there is one
    rrs: tuple[Rr, ...]


def message_id(data: bytes) -> int:
    return int.from_bytes(data[:2], "big")


def rcode(data: bytes) -> int:
    return data[3] & 0x0F


def counts(data: bytes) -> tuple[int, int, int, int]:
    """QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT."""
    return tuple(int.from_bytes(data[at:at + 2], "big") for at in (4, 6, 8, 10))  # type: ignore[return-value]


def skip_name(data: bytes, at: int) -> int:
    """The offset just past the (possibly compressed) name starting at `at`."""
    for _ in range(_MAX_POINTERS):
        if at >= len(data):
            raise WireError("name runs past the end")
        length = data[at]
        if length == 0:
            return at + 1
        if length & 0xC0 == 0xC0:
            if at + 2 > len(data):
                raise WireError("truncated pointer")
            return at + 2  # the name ends here in this buffer, wherever the pointer goes
        if length & 0xC0:
            raise WireError("unknown label type")
        at += 1 + length
    raise WireError("too many labels")


def question_end(data: bytes) -> int:
    """The offset past the single question: HEADER + uncompressed name + QTYPE + QCLASS. The
    question name must be uncompressed (nothing precedes it for a pointer to point at)."""
    at = HEADER
    for _ in range(128):  # 255 octets hold at most 127 labels
        if at >= len(data):
            raise WireError("question name runs past the end")
        length = data[at]
        if length == 0:
            end = at + 5
            if end > len(data):
                raise WireError("question runs past the end")
            return end
        if length & 0xC0:
            raise WireError("compressed question name")
        at += 1 + length
    raise WireError("question name too long")


def question_key(data: bytes) -> tuple[bytes, int, int, int]:
    """(the question name in wire form, lower case; QTYPE; QCLASS; question end)."""
    end = question_end(data)
    name = data[HEADER:end - 4].lower()  # length octets are < 64, so lower() leaves them alone
    return name, int.from_bytes(data[end - 4:end - 2], "big"), int.from_bytes(data[end - 2:end], "big"), end


def layout(data: bytes) -> Layout:
    """Where every record of a message sits. Raises WireError when the counts promise more
    than the bytes hold or QDCOUNT is not 0 or 1."""
    if len(data) < HEADER:
        raise WireError("shorter than a header")
    qdcount, ancount, nscount, arcount = counts(data)
    if qdcount > 1:
        raise WireError("more than one question")
    at = question_end(data) if qdcount else HEADER
    question = at
    rrs = []
    for section, count in ((1, ancount), (2, nscount), (3, arcount)):
        for _ in range(count):
            start = at
            at = skip_name(data, at)
            if at + 10 > len(data):
                raise WireError("record header runs past the end")
            rtype = int.from_bytes(data[at:at + 2], "big")
            rdlength = int.from_bytes(data[at + 8:at + 10], "big")
            end = at + 10 + rdlength
            if end > len(data):
                raise WireError("rdata runs past the end")
            rrs.append(Rr(start, rtype, at + 4, at + 10, end, section))
            at = end
    return Layout(question, tuple(rrs))


def ttl_of(data: bytes, rr: Rr) -> int:
    ttl = int.from_bytes(data[rr.ttl_at:rr.ttl_at + 4], "big")
    return 0 if ttl > MAX_TTL else ttl


def soa_minimum(data: bytes, rr: Rr) -> int:
    """MINIMUM is the last field of SOA rdata, whatever the names before it compress to."""
    return int.from_bytes(data[rr.end - 4:rr.end], "big")


def opt_record(udp_payload: int, do: bool) -> bytes:
    """An OPT pseudo-record: root owner, our UDP size, extended rcode 0, version 0, DO."""
    return (b"\x00" + OPT.to_bytes(2, "big") + udp_payload.to_bytes(2, "big")
            + b"\x00\x00" + (b"\x80\x00" if do else b"\x00\x00") + b"\x00\x00")


def query_opt(data: bytes) -> tuple[bool, bool]:
    """(the query carries an OPT, its DO bit) for a query with one question. Queries are
    short: walking the records is cheap."""
    for rr in layout(data).rrs:
        if rr.type == OPT:
            return True, bool(data[rr.ttl_at + 2] & 0x80)
    return False, False
