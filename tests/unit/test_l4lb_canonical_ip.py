"""appliers/l4lb/addresses.py: the inet_pton/inet_ntop spelling of an address answers exactly
what `schemas.addresses.canonical_ip` (ipaddress) answers, for addresses and for junk alike;
and `wayfinder vips`'s comparison, which uses it, leaves the garbage collector as it found it."""

from __future__ import annotations

import gc
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliers.l4lb.addresses import canonical_ip, is_canonical_ip
from appliers.l4lb.inspect import compare
from schemas.addresses import canonical_ip as reference
from schemas.l4lb import Backend, Vip

# input -> what ipaddress (Python 3.11) makes of it; None: no IP address
CANONICAL = {
    # IPv4
    "10.0.0.1": "10.0.0.1",
    "0.0.0.0": "0.0.0.0",
    "255.255.255.255": "255.255.255.255",
    "010.0.0.1": None,  # leading zeros: refused, never read as octal
    "10.0.0.01": None,
    "10.00.0.1": None,
    "256.0.0.1": None,
    "1.2.3": None,
    "1.2.3.4.5": None,
    "0.0.0.0.": None,
    ".0.0.0.0": None,
    " 10.0.0.1": None,
    "10.0.0.1 ": None,
    "10.0.0.1\n": None,
    "10.0.0.1/32": None,
    "١٠.0.0.1": None,  # Arabic-Indic digits
    "10.0.0.1\x00": None,  # inet_pton raises ValueError for an embedded NUL
    "\ud800": None,  # a lone surrogate: no UTF-8 for inet_pton
    "": None,
    "localhost": None,
    # IPv6: lowercase, no leading zeros, the first longest run of 2+ zero hextets compressed
    "fd00::1": "fd00::1",
    "FD00::1": "fd00::1",
    "fd00:0::1": "fd00::1",
    "fd00:0000:0000:0000:0000:0000:0000:0001": "fd00::1",
    "2001:0db8::0001": "2001:db8::1",
    "2001:DB8:0:0:1:0:0:1": "2001:db8::1:0:0:1",
    "2001:db8:0:1:1:1:1:1": "2001:db8:0:1:1:1:1:1",  # one zero hextet is not compressed
    "1:0:0:2:0:0:0:3": "1:0:0:2::3",
    "::": "::",
    "0:0:0:0:0:0:0:0": "::",
    "::1": "::1",
    "1::": "1::",
    "1:2:3:4:5:6:7::": "1:2:3:4:5:6:7:0",
    "::2:3:4:5:6:7:8": "0:2:3:4:5:6:7:8",
    # a dotted tail: Python 3.11 writes it in hex (inet_ntop would keep some dotted)
    "::ffff:10.0.0.1": "::ffff:a00:1",
    "::FFFF:a00:1": "::ffff:a00:1",
    "::10.0.0.1": "::a00:1",
    "::0.0.0.1": "::1",
    "::0.1.0.0": "::1:0",
    "64:ff9b::192.0.2.33": "64:ff9b::c000:221",
    "1:2:3:4:5:6:1.2.3.4": "1:2:3:4:5:6:102:304",
    "1:2:3:4:5:6:7:1.2.3.4": None,
    "::ffff:010.0.0.1": None,
    "::ffff:1.2.3": None,
    # a scope id: kept as written (inet_pton refuses it)
    "fe80::1%eth0": "fe80::1%eth0",
    "FE80::1%Eth0": "fe80::1%Eth0",
    "fe80::1%": None,
    # junk
    "fd00::1::2": None,
    "fd00:::1": None,
    "1:2:3:4:5:6:7:8:9": None,
    "1::2:3:4:5:6:7:8": None,  # '::' standing for no hextet at all
    "12345::1": None,
    "fd00::g": None,
    ":1::2": None,
    "1::2:": None,
    "[fd00::1]": None,
    "fd00::1\x00": None,
    "fd00::\ud800": None,
}

NOT_TEXT = [None, 167772161, b"10.0.0.1", 1.5, ("10.0.0.1",)]


@pytest.mark.parametrize("text", sorted(CANONICAL))
def test_canonical_ip_is_what_ipaddress_says(text):
    assert canonical_ip(text) == CANONICAL[text]
    assert reference(text) == CANONICAL[text]  # the table is the old function's answers
    assert is_canonical_ip(text) is (CANONICAL[text] == text)


@pytest.mark.parametrize("value", NOT_TEXT)
def test_what_is_no_string_is_no_address(value):
    assert canonical_ip(value) is None
    assert is_canonical_ip(value) is (reference(value) == value)  # None "is" canonical, as before


def test_a_str_subclass_gets_the_same_answer():
    class Text(str):
        pass

    assert canonical_ip(Text("FD00::1")) == "fd00::1" and canonical_ip(Text("10.0.0.1")) == "10.0.0.1"
    assert is_canonical_ip(Text("10.0.0.1")) and not is_canonical_ip(Text("FD00::1"))


def _spellings(draw_int: int, style: int) -> str:
    address = ipaddress.IPv6Address(draw_int)
    if style == 0:
        return address.exploded
    if style == 1:
        return address.exploded.upper()
    if style == 2:
        return str(address).upper()
    if style == 3:  # leading zeros dropped, nothing compressed
        return ":".join(f"{int(h, 16):x}" for h in address.exploded.split(":"))
    tail = ipaddress.IPv4Address(draw_int & 0xFFFFFFFF)
    return f"{':'.join(address.exploded.split(':')[:6])}:{tail}"  # a dotted tail


# Mostly zero hextets, so that runs of zeros (and their compression) come up often.
hextets = st.lists(st.one_of(st.just(0), st.just(0), st.integers(0, 0xFFFF)), min_size=8, max_size=8)
ipv6_ints = hextets.map(lambda hs: int.from_bytes(b"".join(h.to_bytes(2, "big") for h in hs), "big"))
addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.builds(_spellings, ipv6_ints, st.integers(0, 4)),
    ipv6_ints.map(lambda n: str(ipaddress.IPv6Address(n))),
    ipv6_ints.map(lambda n: f"::ffff:{ipaddress.IPv4Address(n & 0xFFFFFFFF)}"),
    st.text(alphabet="0123456789abcdefABCDEF:.%", max_size=45),  # mostly junk, some addresses
    st.text(max_size=20),
)


@settings(max_examples=3000, derandomize=True)
@given(addresses)
def test_canonical_ip_agrees_with_ipaddress(text):
    assert canonical_ip(text) == reference(text)
    assert is_canonical_ip(text) is (reference(text) == text)


def test_compare_leaves_the_collector_as_it_found_it():
    topic = {"tcp/11.0.0.1/80": Vip("tcp", "11.0.0.1", 80, [Backend("10.0.0.1", 80, 1, "t1")]),
             "tcp/FD00::1/80": Vip("tcp", "FD00::1", 80, [])}
    assert gc.isenabled()
    # 11.0.0.1 is not in the (empty) kernel; FD00::1 is spelt as the kernel never spells it,
    # so it is compared by its raw key, which the kernel does not hold either
    assert [e["programmed"] for e in compare(topic, {})] == [False, True]
    assert gc.isenabled()
    gc.disable()
    try:
        compare(topic, {})
        assert not gc.isenabled()
    finally:
        gc.enable()
