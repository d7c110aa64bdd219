"""Decoding nf_tables set elements from netlink messages (appliers/l4lb/elements.py), on
messages built here byte by byte; tests/kernel/test_l4lb_elements.py reads a real kernel."""

from __future__ import annotations

import itertools
import socket
import struct
import sys

import pytest

from appliers.l4lb import elements
from appliers.l4lb.model import IP, IP6, TableState
from appliers.netlink_wire import attribute

NESTED = 0x8000


def _message(*elems: bytes) -> bytes:
    """A NEWSETELEM payload: nfgenmsg, table, set, the element list."""
    return (struct.pack("=BBH", socket.AF_INET, 0, 0) + attribute(1, b"wayfinder\0") + attribute(2, b"endpoints\0")
            + attribute(3 | NESTED, b"".join(elems)))


def _element(key: bytes, data: bytes | None = None, extra: bytes = b"") -> bytes:
    body = attribute(elements.NFTA_SET_ELEM_KEY | NESTED, attribute(elements.NFTA_DATA_VALUE, key))
    if data is not None:
        body += attribute(elements.NFTA_SET_ELEM_DATA | NESTED, attribute(elements.NFTA_DATA_VALUE, data))
    return attribute(1 | NESTED, body + extra)


def _vip(ip: str, protocol: int, port: int) -> bytes:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return socket.inet_pton(family, ip) + bytes([protocol, 0, 0, 0]) + port.to_bytes(2, "big") + b"\0\0"


def _endpoint(ip: str, protocol: int, port: int, slot: int, backend: str, backend_port: int) -> bytes:
    family = socket.AF_INET6 if ":" in backend else socket.AF_INET
    return _element(_vip(ip, protocol, port) + slot.to_bytes(4, sys.byteorder),
                    socket.inet_pton(family, backend) + backend_port.to_bytes(2, "big") + b"\0\0")


ENDPOINTS = [_endpoint("11.0.0.1", 6, 80, slot, f"10.200.0.{slot + 1}", 8080) for slot in range(3)]


def test_uniform_elements_are_read_at_once_and_equal_the_walk():
    listed = b"".join(ENDPOINTS)
    assert elements._uniform_elements(listed) == elements._each_element(listed)
    found = elements.elements([_message(*ENDPOINTS)])
    assert len(found) == 3
    state = elements.table_elements(IP, {"endpoints": found})
    assert state.endpoints == {(("11.0.0.1", "tcp", 80), 0): ("10.200.0.1", 8080),
                               (("11.0.0.1", "tcp", 80), 1): ("10.200.0.2", 8080),
                               (("11.0.0.1", "tcp", 80), 2): ("10.200.0.3", 8080)}


def test_an_element_laid_out_differently_is_walked():
    flagged = _element(_vip("11.0.0.2", 17, 53), extra=attribute(3, struct.pack(">I", 1)))  # NFTA_SET_ELEM_FLAGS
    plain = _element(_vip("11.0.0.3", 132, 9))  # sctp: not a name we program, kept as its number
    listed = plain + flagged
    assert elements._uniform_elements(listed) is None
    found = elements.elements([_message(plain, flagged)])
    state = elements.table_elements(IP, {"k1": found, "k2": [(_vip("11.0.0.3", 132, 9), None)]})
    assert state.vips == {("11.0.0.3", 132, 9): "k1,k2", ("11.0.0.2", "udp", 53): "k1"}


def test_elements_of_another_width_are_not_vips():
    """A set or map of ours re-made by hand with another type: its elements are left out."""
    web = _vip("11.0.0.1", 6, 80)
    state = elements.table_elements(IP, {
        "vip_ips": [(socket.inet_pton(socket.AF_INET, "11.0.0.1"), None), (b"\x0b\x00", None)],
        "k1": [(web, None), (web[:4], None)],
        "endpoints": [(web + (0).to_bytes(4, sys.byteorder), socket.inet_pton(socket.AF_INET, "10.0.0.1") + b"\x1f\x90\0\0"),
                      (web, b"\0" * 8), (web + b"\0" * 4, None)]})
    assert state.vip_ips == {"11.0.0.1"}
    assert state.vips == {("11.0.0.1", "tcp", 80): "k1"}
    assert state.endpoints == {(("11.0.0.1", "tcp", 80), 0): ("10.0.0.1", 8080)}


def test_ipv6_addresses_are_spelled_as_python_spells_them():
    key = _vip("fd00:11:0:0:0:0:0:1", 6, 443) + (0).to_bytes(4, sys.byteorder)
    found = elements.elements([_message(_element(key, socket.inet_pton(socket.AF_INET6, "fd00:200::1")
                                                 + (8443).to_bytes(2, "big") + b"\0\0"))])
    state = elements.table_elements(IP6, {"endpoints": found, "vip_ips": [(key[:16], None)]})
    assert state.endpoints == {(("fd00:11::1", "tcp", 443), 0): ("fd00:200::1", 8443)}
    assert state.vip_ips == {"fd00:11::1"}


class _Reader(elements.NfTablesReader):
    """The reader's logic without a socket: each generation() call answers the next number."""

    def __init__(self, generations, vanishing: int = 0) -> None:
        self.generations = iter(generations)
        self.vanishing = vanishing  # how many set reads find their set gone

    def generation(self) -> int:
        return next(self.generations)

    def set_names(self, family):
        return ["vip_ips"] if family is IP else None

    def set_elements(self, family, name):
        if self.vanishing:
            self.vanishing -= 1
            raise FileNotFoundError(2, "No such file or directory")  # deleted since set_names
        return [(socket.inet_pton(socket.AF_INET, "11.0.0.1"), None)]



def test_a_read_a_transaction_committed_into_is_done_again():
    states = dict(_Reader([7, 8, 8, 8]).read())  # changed during the first read, not the second
    assert states["ip"].vip_ips == {"11.0.0.1"} and states["ip6"] == TableState()
    with pytest.raises(elements.ReadInterrupted, match="changed during each of"):
        _Reader(itertools.count()).read(patience_s=0.05)  # every read spoilt
    # A set deleted between listing and reading it: that read is done again as well.
    states = dict(_Reader([3, 4, 4], vanishing=1).read())
    assert states["ip"].vip_ips == {"11.0.0.1"}
