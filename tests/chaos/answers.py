"""What a node's DNS server answers, next to what the `dns` topic says it must answer."""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import orjson

# The types the node serves from the dns topic and that a query can compare directly.
COMPARED_TYPES = ("A", "AAAA", "SRV")


@dataclass(frozen=True)
class Answer:
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, ... or TIMEOUT
    values: tuple[str, ...]  # the answer's values for the asked type, canonical text, sorted


def ask(port: int, name: str, kind: str, timeout: float = 1.0) -> Answer:
    query = dns.message.make_query(name, kind, use_edns=0, payload=4096)
    try:
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=timeout)
        if reply.flags & dns.flags.TC:  # a large set: the whole answer comes over TCP
            reply = dns.query.tcp(query, "127.0.0.1", port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError, EOFError):
        return Answer("TIMEOUT", ())
    values = sorted(item.to_text() for rrset in reply.answer if dns.rdatatype.to_text(rrset.rdtype) == kind
                    for item in rrset)
    return Answer(dns.rcode.to_text(reply.rcode()), tuple(values))


def expected_answers(dns_table: dict[str, bytes]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(name, type) -> the sorted values the node must answer, from the dns topic's records."""
    expected = {}
    for value in dns_table.values():
        record_set = orjson.loads(value)
        if record_set["type"] in COMPARED_TYPES and record_set["rdata"]:
            expected[(record_set["name"], record_set["type"])] = tuple(sorted(record_set["rdata"]))
    return expected


def wrong_answers(port: int, expected: dict[tuple[str, str], tuple[str, ...]]) -> list[str]:
    """Every name whose answer differs from the table, as readable lines (empty: all right)."""
    wrong = []
    for (name, kind), values in sorted(expected.items()):
        answer = ask(port, name, kind)
        if answer.rcode != "NOERROR" or answer.values != values:
            wrong.append(f"{name} {kind}: {answer.rcode} {list(answer.values)}, expected {list(values)}")
    return wrong
