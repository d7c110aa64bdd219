"""The forwarder's pure checks: which upstream replies count as answers to our query, and
the query we send upstream."""

import dns.flags
import dns.message
import dns.rcode
import pytest

from appliers.dns.cache import Client
from appliers.dns.resolver import _upstream_query, answers
from appliers.dns.wire import question_key

QUERY_ID = 0x1234


def reply_to(name="www.example.", rdtype="A", *, id=QUERY_ID, qr=True, opcode=0):
    query = dns.message.make_query(name, rdtype)
    reply = dns.message.make_response(query)
    reply.id = id
    if not qr:
        reply.flags &= ~dns.flags.QR
    wire = bytearray(reply.to_wire())
    wire[2] |= opcode << 3
    return bytes(wire)


OURS = question_key(reply_to())[:3]


def header_only(rcode, id=QUERY_ID):
    return id.to_bytes(2, "big") + bytes((0x81, rcode)) + bytes(8)


@pytest.mark.parametrize("reply,expected", [
    (reply_to(), True),
    (reply_to("WWW.Example."), True),  # case does not matter (0x20 upstreams echo ours anyway)
    (reply_to(id=QUERY_ID + 1), False),
    (reply_to(qr=False), False),  # a query, not a reply
    (reply_to(opcode=4), False),  # NOTIFY
    (reply_to("www.example.org."), False),
    (reply_to(rdtype="AAAA"), False),
    (header_only(dns.rcode.REFUSED), True),
    (header_only(dns.rcode.FORMERR), True),
    (header_only(dns.rcode.NOERROR), False),  # an answer must say what it answers
    (header_only(dns.rcode.NXDOMAIN), False),
    (b"\x12\x34\x81", False),
])
def test_answers(reply, expected):
    assert answers(reply, QUERY_ID, OURS) is expected


def test_upstream_query_copies_the_question_and_sets_our_own_header():
    client_query = dns.message.make_query("WwW.Example.", "AAAA", use_edns=0, payload=512, want_dnssec=True)
    client_query.flags = dns.flags.CD  # no RD from the client: we still ask for recursion
    wire = client_query.to_wire()
    client = Client(wire, question_key(wire)[3], True, True, 512, 4096)
    sent = dns.message.from_wire(_upstream_query(client, 999, 1232))
    assert sent.id == 999 and sent.question == client_query.question
    assert sent.question[0].name.to_text() == "WwW.Example."
    assert sent.flags & dns.flags.RD and sent.flags & dns.flags.CD
    assert (sent.edns, sent.payload, bool(sent.ednsflags & dns.flags.DO)) == (0, 1232, True)
