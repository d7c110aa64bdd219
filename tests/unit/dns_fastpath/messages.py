"""Shared tools for the fast path tests: queries are made with dnspython and both paths'
replies are read back with it, so the comparison does not trust either encoder.

`shape(wire)` is everything a client can see in a reply, in order: header fields, the
question as spelled, every record on its own (one RR per RRset keeps the wire order, which
the rotation rule is about), TTLs, and the EDNS fields.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype


def query(name: str, rdtype: str | int = "A", *, id: int = 1, rd: bool = True,
          rdclass: str | int = "IN", **edns) -> bytes:
    message = dns.message.make_query(name, rdtype, rdclass, **edns)
    message.id = id
    if not rd:
        message.flags &= ~dns.flags.RD
    return message.to_wire()


def shape(wire: bytes) -> tuple:
    message = dns.message.from_wire(wire, one_rr_per_rrset=True)
    sections = tuple(
        tuple((rrset.name.to_text(), dns.rdataclass.to_text(rrset.rdclass),
               dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rrset[0].to_text())
              for rrset in section)
        for section in (message.answer, message.authority))
    return (message.id, message.flags, message.rcode(), message.opcode(),
            tuple((q.name.to_text(), q.rdclass, q.rdtype) for q in message.question),
            sections, message.edns, message.ednsflags, message.payload,
            tuple(message.options))


