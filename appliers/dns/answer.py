"""Query bytes in, reply bytes out, from a `ZoneSet`. Pure: the server does the sockets.

`Answerer(zones, forward=None, recursion_acl=None).answer(data, tcp=False, client=None)`
returns
- reply bytes, ready to send;
- None: drop silently (shorter than a header, or a response: answering responses invites
  reflection loops between two servers);
- a `Forwarding` for a query outside our origins when a `forward` hook is set and the client
  may recurse (no `recursion_acl`, or `client`, its address, is inside it). The server
  awaits `answerer.forward(forwarding)` for the upstream reply; this module stays pure.
  Otherwise such queries get REFUSED (dcos-dns without upstreams does the same); cluster
  names are answered to everyone.

The dcos-dns aliases (routing.rename: `*.thisdcos.global`, `*.dclb.thisdcos.directory`,
`*.dclb.thisdcos.global`) are looked up under their internal names, and every name in the
reply (owners, CNAME/NS/SRV targets, SOA names) is renamed back, so the client sees only
the names it asked about.

Replies follow dcos-dns where it is right and the RFCs where it is not:
- id and question copied (the question as the client spelled it, so 0x20 case checks pass),
  QR=1, RD copied, RA=1 exactly when this client may recurse through us, AA as the zone says;
- EDNS0: the UDP limit is the client's advertised size (512 without OPT, never below 512,
  capped at our own `max_udp_payload`); an OPT goes back when the query had one, with DO
  copied (RFC 3225); EDNS version > 0 gets BADVERS;
- too big for the limit: TC=1 with the header, the question and the OPT only, so clients see
  the answer is theirs and retry over TCP (dnslib's own truncate() drops the question, which
  dnspython rejects);
- several answers rotate between replies by message id mod n, CNAMEs kept first (dcos-dns
  `round_robin`), so clients that take the first address spread over the backends;
- unparseable -> FORMERR (header only), opcode other than QUERY -> NOTIMP, QDCOUNT != 1 ->
  FORMERR (RFC 9619), zone transfers -> REFUSED.

dnslib builds every reply here; the speed notes (reference/kernel-dns-haproxy.md §4) say a
hand-rolled fast path with pre-encoded answers comes later, behind this same interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Awaitable, Callable

from dnslib import AAAA, CLASS, CNAME, NS, QTYPE, RR, SOA, SRV, A, DNSHeader, DNSLabel, DNSRecord, EDNS0

from appliers.dns.acl import RecursionAcl
from appliers.dns.records import Record, srv_target
from appliers.dns.routing import MESOS_COPY_TTL, Rename, rename
from appliers.dns.zone import DCOS_SOA, ZoneSet

FORMERR, SERVFAIL, NOTIMP, REFUSED, BADVERS = 1, 2, 4, 5, 16
UDP_MIN = 512  # RFC 1035 without EDNS; RFC 6891 §6.2.5: smaller advertised sizes mean 512
TCP_MAX = 65535  # the 2-byte length prefix
_TRANSFERS = frozenset({QTYPE.AXFR, QTYPE.IXFR})
_CLASSES = frozenset({CLASS.IN, 255})  # IN, and ANY (dnslib calls 255 "*")
_TYPE_CODES = {name: getattr(QTYPE, name) for name in ("A", "AAAA", "SRV", "CNAME", "SOA", "NS")}


@dataclass(frozen=True, slots=True)
class Forwarding:
    """A query that is not ours, for the forward hook; `limit` is the largest reply the client
    takes on this transport (the hook must truncate upstream replies to it)."""

    query: bytes
    request: DNSRecord
    limit: int
    tcp: bool


Forward = Callable[[Forwarding], Awaitable["bytes | None"]]


class Answerer:
    def __init__(self, zones: ZoneSet, forward: Forward | None = None, *,
                 max_udp_payload: int = 4096, recursion_acl: RecursionAcl | None = None) -> None:
        self.zones = zones
        self.forward = forward
        self.recursion_acl = recursion_acl  # None: every client may recurse (when forwarding)
        # The most we send over UDP whatever the client says, and what our OPT advertises.
        self.max_udp_payload = max(UDP_MIN, min(max_udp_payload, TCP_MAX))

    def may_recurse(self, client: str | None) -> bool:
        """Whether a query from `client` (an address; None: unknown) may be forwarded."""
        if self.forward is None:
            return False
        acl = self.recursion_acl
        return acl is None or (client is not None and acl.allows(client))

    def answer(self, data: bytes, *, tcp: bool = False,
               client: str | None = None) -> bytes | Forwarding | None:
        if len(data) < 12 or data[2] & 0x80:
            return None
        opcode = (data[2] >> 3) & 0x0F
        try:
            request = DNSRecord.parse(data)
        except Exception:  # dnslib raises several types on garbage; all mean the same here
            return header_only(data, NOTIMP if opcode else FORMERR)

        opts = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
        if len(opts) > 1 or len(request.questions) != 1:  # RFC 6891 §6.1.1, RFC 9619
            return header_only(data, FORMERR)
        opt = opts[0] if opts else None
        if tcp:
            limit = TCP_MAX
        elif opt is None:
            limit = UDP_MIN
        else:
            limit = max(UDP_MIN, min(opt.rclass, self.max_udp_payload))

        ra = self.may_recurse(client)
        if opcode:
            return self._reply(request, opt, limit, NOTIMP, ra=ra)
        if opt is not None and (opt.ttl >> 16) & 0xFF:
            return self._reply(request, opt, limit, BADVERS, ra=ra)
        question = request.q
        if question.qtype in _TRANSFERS:
            return self._reply(request, opt, limit, REFUSED, ra=ra)
        result = renamed = None
        if question.qclass in _CLASSES:
            qname = str(question.qname).lower()
            renamed = rename(qname)
            result = self.zones.lookup(renamed.internal if renamed else qname, QTYPE[question.qtype])
        if result is None:
            if ra:
                return Forwarding(data, request, limit, tcp)
            return self._reply(request, opt, limit, REFUSED)
        return self._reply(request, opt, limit, result.rcode, result.aa,
                           rotate(result.answers, request.header.id), result.authority,
                           ra=ra, renamed=renamed)

    def _reply(self, request: DNSRecord, opt, limit: int, rcode: int, aa: bool = False,
               answers: tuple[Record, ...] = (), authority: tuple[Record, ...] = (), *,
               ra: bool = False, renamed: Rename | None = None) -> bytes:
        header = DNSHeader(id=request.header.id, qr=1, opcode=request.header.opcode, aa=int(aa),
                           rd=request.header.rd, ra=int(ra), rcode=rcode & 0x0F)
        question = request.q
        reply = DNSRecord(header, q=question)
        qname = question.qname
        asked = renamed.internal if renamed else str(qname).lower()
        for section, records in ((reply.rr, answers), (reply.auth, authority)):
            for r in records:
                owner = qname if r.name == asked else None
                if renamed is not None:
                    r = _renamed_back(r, renamed)
                if owner is None:
                    owner = DNSLabel(r.name)
                section.append(RR(owner, _TYPE_CODES[r.type], CLASS.IN, r.ttl, _rdata(r.type, r.rdata)))
        if opt is not None:
            do = "do" if opt.ttl & 0x8000 else ""
            reply.add_ar(EDNS0(udp_len=self.max_udp_payload, flags=do, ext_rcode=rcode >> 4))
        packed = reply.pack()
        if len(packed) > limit:
            reply.rr, reply.auth = [], []
            reply.header.tc = 1
            packed = reply.pack()
        return bytes(packed)  # dnslib packs into a bytearray; callers get immutable bytes


def rotate(answers: tuple[Record, ...], message_id: int) -> tuple[Record, ...]:
    """dcos-dns `round_robin`: the non-CNAME answers rotated left by message id mod n; the
    CNAME chain (always first, in chain order) stays in front."""
    first = 0
    while first < len(answers) and answers[first].type == "CNAME":
        first += 1
    rest = len(answers) - first
    if rest < 2:
        return answers
    shift = first + message_id % rest
    return answers[:first] + answers[shift:] + answers[first:shift]


def header_only(query: bytes, rcode: int) -> bytes:
    """A 12-byte reply for a query we cannot (or will not) parse: id, opcode and RD copied,
    QR set, every count zero, so it is valid whatever the query's sections held."""
    flags = 0x80 | (query[2] & 0x79)  # QR | opcode | RD
    return query[:2] + bytes((flags, rcode & 0x0F)) + bytes(8)


def _renamed_back(r: Record, renamed: Rename) -> Record:
    """`r` with its owner and the names in its rdata as the client's alias spells them."""
    back = renamed.back
    rdata = r.rdata
    if r.type in ("CNAME", "NS"):
        rdata = back(rdata)
    elif r.type == "SRV":
        numbers = rdata.rsplit(" ", 1)[0]
        if renamed.mesos_copy:  # the copy's SRV records are priority 1, weight 1
            numbers = "1 1 " + numbers.split(" ")[2]
        rdata = f"{numbers} {back(srv_target(rdata))}"
    elif r.type == "SOA":
        mname, rname, numbers = rdata.split(" ", 2)
        if renamed.mesos_copy:  # the copy is a dcos-dns zone: dcos-dns's SOA, the zone's serial
            soa = DCOS_SOA
            rdata = f"{soa.mname} {soa.rname} {numbers.split(' ')[0]} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}"
        else:
            rdata = f"{back(mname)} {back(rname)} {numbers}"
    ttl = min(r.ttl, MESOS_COPY_TTL) if renamed.mesos_copy else r.ttl
    return r._replace(name=back(r.name), ttl=ttl, rdata=rdata)


@lru_cache(maxsize=65536)
def _rdata(rtype: str, text: str):
    """dnslib rdata for canonical text, cached: the same records go out in every reply, and
    dnslib only reads them when packing, so sharing one object is safe."""
    fields = text.split()
    if rtype == "A":
        return A(text)
    if rtype == "AAAA":
        return AAAA(text)
    if rtype == "SRV":
        return SRV(int(fields[0]), int(fields[1]), int(fields[2]), fields[3])
    if rtype == "SOA":
        return SOA(fields[0], fields[1], tuple(int(field) for field in fields[2:]))
    return (CNAME if rtype == "CNAME" else NS)(text)
