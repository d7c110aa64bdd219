"""The wire walker: where records sit in a message, and what it refuses to walk."""

import dns.flags
import dns.message
import dns.rrset
import pytest

from appliers.dns.wire import OPT, WireError, layout, question_key, query_opt, skip_name, ttl_of


def reply_wire() -> bytes:
    query = dns.message.make_query("Www.Example.", "A", use_edns=0, want_dnssec=True)
    reply = dns.message.make_response(query)
    reply.use_edns(0, ednsflags=dns.flags.DO)
    reply.answer.append(dns.rrset.from_text("www.example.", 30, "IN", "A", "192.0.2.1"))
    reply.authority.append(dns.rrset.from_text("example.", 3600, "IN", "NS", "ns.example."))
    return reply.to_wire()


def test_layout_finds_every_record():
    wire = reply_wire()
    shape = layout(wire)
    assert shape.question_end == 12 + len(b"\x03Www\x07Example\x00") + 4
    assert [(rr.section, rr.type, ttl_of(wire, rr)) for rr in shape.rrs] == [
        (1, 1, 30), (2, 2, 3600), (3, OPT, 0x8000)]  # the OPT's "TTL" holds the DO bit
    assert shape.rrs[-1].end == len(wire)
    assert question_key(wire) == (b"\x03www\x07example\x00", 1, 1, shape.question_end)
    assert query_opt(wire) == (True, True)


@pytest.mark.parametrize("cut", [5, 20, 40, -3])
def test_short_messages_are_refused(cut):
    with pytest.raises(WireError):
        layout(reply_wire()[:cut])


def test_pointer_loops_and_bad_labels_end():
    looping = b"\x00" * 12 + b"\xc0\x0e\xc0\x0c"
    assert skip_name(looping, 12) == 14  # a pointer ends the name in this buffer: no chase
    with pytest.raises(WireError):
        skip_name(b"\x00" * 12 + b"\x80abc", 12)  # label type 10 is unassigned
    with pytest.raises(WireError):
        question_key(b"\x00" * 4 + b"\x00\x01" + b"\x00" * 6 + b"\xc0\x0c\x00\x01\x00\x01")
    two_questions = bytearray(reply_wire())
    two_questions[5] = 2
    with pytest.raises(WireError):
        layout(bytes(two_questions))
