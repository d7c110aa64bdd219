"""The elements of our nftables tables (the VIP addresses, the slot sets k1..kN, the endpoint
map) read straight from nf_tables over netlink: what `wayfinder vips` compares with the
desired table.

Why not libnftables here: it lists a table by building its whole cache and printing it, JSON
or text, then we parse that again. At 10,000 VIPs x 3 backends (30,000 map elements) one
listing took 0.7-1.2 s and the read two (structure and elements), about 2 s, where the issue
asks `wayfinder vips` for 0.2 s. The kernel hands the same elements over in tens of
milliseconds, as fixed-width register values; decoding them is a few microseconds each.
The applier's own read-back (kernel.py) still uses libnftables: it also compares the
table's structure, which only nft prints.

A read is consistent: the ruleset generation is asked before and after, and a read that a
transaction committed into is done again (for up to READ_PATIENCE_S).

Layout of the values (nft stores each field of a concatenation in 4-byte registers):
- `vip_ips`: the address (4 or 16 bytes);
- `kN`: address . protocol (1 byte, padded to 4) . port (2 bytes big-endian, padded to 4);
- `endpoints`: that key . slot (a 32-bit integer in host byte order, what `numgen` yields)
  mapping to backend address . backend port.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import sys
import time
from functools import partial

from appliers.l4lb.model import FAMILIES, TABLE, Family, TableState, slot_count
from appliers.netlink_wire import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, attribute, attribute_spans, attributes, dump

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE, NFT_MSG_GETSET, NFT_MSG_GETSETELEM, NFT_MSG_GETGEN = 1, 10, 13, 16
NFTA_TABLE_NAME = 1
NFTA_SET_TABLE, NFTA_SET_NAME = 1, 2
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_DATA = 1, 2
NFTA_DATA_VALUE = 1
NFTA_GEN_ID = 1
_NFGENMSG = struct.Struct("=BBH")  # family, version (NFNETLINK_V0), resource id
_AF = {"ip": socket.AF_INET, "ip6": socket.AF_INET6}
PROTOCOL_NAMES = {6: "tcp", 17: "udp"}  # how nft prints the ones we program
# How long to keep reading again while transactions keep landing in the middle of reads. A
# node applying a burst commits every few milliseconds, and a read of 10,000 VIPs takes ~0.2 s:
# the burst must end (or leave a gap) within this time.
READ_PATIENCE_S = 3.0


class ReadInterrupted(RuntimeError):
    """The ruleset changed during every attempt to read it."""


# -- decoding (pure) ---------------------------------------------------------------------------

def _address(raw: bytes) -> str:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    return str(ipaddress.IPv6Address(raw))  # Python's spelling, as model.table_state writes it


def _vip_key(value: bytes, width: int) -> tuple[str, str | int, int]:
    """address . protocol . port, each field in its own 4-byte registers."""
    protocol = value[width]
    return (_address(value[:width]), PROTOCOL_NAMES.get(protocol, protocol),
            int.from_bytes(value[width + 4:width + 6], "big"))


def elements(payloads: list[bytes]) -> list[tuple[bytes, bytes | None]]:
    """(key, data) of every element in the NEWSETELEM messages of one set's dump; data None for
    a set (not a map)."""
    out: list[tuple[bytes, bytes | None]] = []
    for payload in payloads:
        listed = attributes(payload, _NFGENMSG.size).get(NFTA_SET_ELEM_LIST_ELEMENTS, b"")
        uniform = _uniform_elements(listed)
        out += uniform if uniform is not None else _each_element(listed)
    return out


def _uniform_elements(listed: bytes) -> list[tuple[bytes, bytes | None]] | None:
    """All elements of `listed` at once, when each has the first one's layout (a key, maybe
    data, nothing else), which is how the kernel writes the elements of one set: the first
    element's attribute headers become a regular expression with a group per value, checked
    against the whole list and then used to pick the values out in C. 30,000 elements take
    a few milliseconds instead of 100 walked one attribute at a time. None: not uniform."""
    first = next(attribute_spans(listed), None)
    if first is None:
        return []
    _, start, end = first
    literal, groups, roles, position = [], [], [], 0
    for kind, value_start, value_end in attribute_spans(listed, start, end):
        inner = next(attribute_spans(listed, value_start, value_end), None)
        if kind not in (NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_DATA) or inner is None or inner[0] != NFTA_DATA_VALUE:
            return None  # flags, timeouts, verdicts ...: walked one by one
        literal.append(re.escape(listed[position:inner[1]]))
        groups.append(inner[2] - inner[1])
        roles.append(kind)
        position = inner[2]
    if not roles or roles[0] != NFTA_SET_ELEM_KEY:
        return None
    tail = re.escape(listed[position:(end + 3) & ~3])  # the element's padding
    skeleton = [b"%s.{%d}" % (head, size) for head, size in zip(literal, groups)]
    if re.fullmatch(b"(?:" + b"".join(skeleton) + tail + b")*", listed, re.S) is None:
        return None
    pattern = b"".join(b"%s(.{%d})" % (head, size) for head, size in zip(literal, groups)) + tail
    found = re.findall(pattern, listed, re.S)
    if len(roles) == 1:
        return [(key, None) for key in found]
    return [(values[0], values[1]) for values in found]


def _each_element(listed: bytes) -> list[tuple[bytes, bytes | None]]:
    """The elements of `listed` walked one attribute at a time (any layout)."""
    out = []
    for _, start, end in attribute_spans(listed):
        key = data = None
        for kind, inner_start, inner_end in attribute_spans(listed, start, end):
            if kind == NFTA_SET_ELEM_KEY:
                key = _value(listed, inner_start, inner_end)
            elif kind == NFTA_SET_ELEM_DATA:
                data = _value(listed, inner_start, inner_end)
        if key is not None:
            out.append((key, data))
    return out


def _value(buffer: bytes, start: int, end: int) -> bytes | None:
    """The NFTA_DATA_VALUE nested in buffer[start:end] (the first attribute, in practice)."""
    for kind, value_start, value_end in attribute_spans(buffer, start, end):
        if kind == NFTA_DATA_VALUE:
            return buffer[value_start:value_end]
    return None


def table_elements(family: Family, sets: dict[str, list[tuple[bytes, bytes | None]]]) -> TableState:
    """A TableState of the elements alone (`blocks` empty: the structure is not read here),
    the same values model.table_state parses from nft's listing. An element of another width
    than ours (a set someone re-made with another type) is not a VIP, and left out: the
    applier's resync, which compares the structure too, rebuilds such a table."""
    width = 4 if family.version == 4 else 16
    state = TableState(exists=True)
    # A VIP's key comes once in its slot set and once per slot in the endpoint map: decoded once.
    vip_keys: dict[bytes, tuple] = {}

    def vip_of(raw: bytes) -> tuple:
        vip = vip_keys.get(raw)
        if vip is None:
            vip = vip_keys[raw] = _vip_key(raw, width)
        return vip

    for name, found in sets.items():
        if name == "vip_ips":
            state.vip_ips.update(_address(key) for key, _ in found if len(key) == width)
        elif slot_count(name) is not None:
            for key, _ in found:
                if len(key) != width + 8:
                    continue
                vip = vip_of(key)
                held = state.vips.get(vip)
                state.vips[vip] = f"{held},{name}" if held else name
        elif name == "endpoints":  # the hot loop of a read (30,000 elements at 10,000 VIPs)
            endpoints, key_width, from_bytes, order = state.endpoints, width + 8, int.from_bytes, sys.byteorder
            address = partial(socket.inet_ntop, socket.AF_INET) if width == 4 else _address
            for key, data in found:
                if data is None or len(key) != key_width + 4 or len(data) != width + 4:
                    continue
                endpoints[(vip_of(key[:key_width]), from_bytes(key[key_width:key_width + 4], order))] = (
                    address(data[:width]), from_bytes(data[width:width + 2], "big"))
    return state


# -- the kernel (one netlink socket, opened in the reader's network namespace) -------------------

def _request(family: Family, *attrs: bytes) -> bytes:
    return _NFGENMSG.pack(_AF[family.name], 0, 0) + b"".join(attrs)


def _name(text: str) -> bytes:
    return text.encode() + b"\0"


class NfTablesReader:
    """Reads our tables' elements; open and use it on one thread, inside the namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _dump(self, message: int, body: bytes, flags: int = NLM_F_REQUEST | NLM_F_DUMP) -> list[bytes]:
        self.seq += 1
        return dump(self.sock, self.seq, (NFNL_SUBSYS_NFTABLES << 8) | message, body, flags)

    def generation(self) -> int:
        answers = self._dump(NFT_MSG_GETGEN, _NFGENMSG.pack(socket.AF_UNSPEC, 0, 0), NLM_F_REQUEST | NLM_F_ACK)
        found = attributes(answers[0], _NFGENMSG.size) if answers else {}
        if NFTA_GEN_ID not in found:
            raise OSError("nf_tables answered no ruleset generation")
        return struct.unpack(">I", found[NFTA_GEN_ID])[0]

    def set_names(self, family: Family) -> list[str] | None:
        """The sets and maps of our table in `family`; None when there is no such table."""
        try:
            self._dump(NFT_MSG_GETTABLE, _request(family, attribute(NFTA_TABLE_NAME, _name(TABLE))),
                       NLM_F_REQUEST | NLM_F_ACK)
        except FileNotFoundError:
            return None
        # A set dump filtered by a table that does not exist answers nothing rather than ENOENT.
        answers = self._dump(NFT_MSG_GETSET, _request(family, attribute(NFTA_SET_TABLE, _name(TABLE))))
        names = []
        for answer in answers:
            found = attributes(answer, _NFGENMSG.size)
            if found.get(NFTA_SET_TABLE, b"").rstrip(b"\0").decode() == TABLE and NFTA_SET_NAME in found:
                names.append(found[NFTA_SET_NAME].rstrip(b"\0").decode())
        return names

    def set_elements(self, family: Family, name: str) -> list[tuple[bytes, bytes | None]]:
        return elements(self._dump(NFT_MSG_GETSETELEM, _request(
            family, attribute(NFTA_SET_ELEM_LIST_TABLE, _name(TABLE)), attribute(NFTA_SET_ELEM_LIST_SET, _name(name)))))

    def table(self, family: Family) -> TableState:
        """Our table's elements in `family`; TableState() when there is no such table."""
        names = self.set_names(family)
        if names is None:
            return TableState()
        return table_elements(family, {name: self.set_elements(family, name) for name in names})

    def read(self, patience_s: float = READ_PATIENCE_S) -> list[tuple[str, TableState]]:
        """(family, its table's elements) for every family; a missing table reads as TableState().
        Read again while a transaction committed during the read, for up to `patience_s`."""
        deadline = time.monotonic() + patience_s
        attempts = 0
        while attempts == 0 or time.monotonic() < deadline:
            attempts += 1
            before = self.generation()
            try:
                states = [(family.name, self.table(family)) for family in FAMILIES]
            except FileNotFoundError:  # a set went away between listing it and reading it: a commit
                continue
            if self.generation() == before:
                return states
        raise ReadInterrupted(f"the ruleset changed during each of {attempts} reads of table {TABLE} in "
                              f"{patience_s:.0f} s (something is applying changes without pause)")
