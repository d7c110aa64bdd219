"""Netlink framing shared by the raw netlink readers and writers (the overlay's rtnetlink
entries, the L4 applier's nf_tables element reads): message headers, attributes, and one
dump over a socket. Packing and parsing are pure; `dump` is the only call that does I/O, on a
socket the caller opened (in the caller's network namespace).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence number, port id
_ATTRIBUTE = struct.Struct("=HH")


def attribute(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return _ATTRIBUTE.pack(length, kind) + data + b"\0" * (-length % 4)


def attributes(payload: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """The attributes of `payload[offset:end]` by type (the nested and byte-order bits masked
    off); a repeated type keeps its last value."""
    out = {}
    end = len(payload) if end is None else end
    while offset + 4 <= end:
        length, kind = _ATTRIBUTE.unpack_from(payload, offset)
        if length < 4:
            break
        out[kind & 0x3FFF] = payload[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def attribute_spans(payload: bytes, offset: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(type, start, end) of each attribute's data in `payload[offset:end]`, without copying:
    for lists of thousands of nested attributes."""
    end = len(payload) if end is None else end
    unpack = _ATTRIBUTE.unpack_from
    while offset + 4 <= end:
        length, kind = unpack(payload, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, offset + 4, min(offset + length, end)
        offset += (length + 3) & ~3


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return HEADER.pack(HEADER.size + len(body), kind, flags, seq, 0) + body


def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence number, payload) of each netlink message in one datagram. A message
    that claims length 0 ends it: stepping by 0 would never move on."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _, seq, _ = HEADER.unpack_from(data, offset)
        yield kind, seq, data[offset + HEADER.size:offset + length]
        if length == 0:
            return
        offset += (length + 3) & ~3


def dump(sock: socket.socket, seq: int, kind: int, body: bytes, flags: int = NLM_F_REQUEST | NLM_F_DUMP) -> list[bytes]:
    """Send one request and return the payload of every message it is answered with, until
    NLMSG_DONE, or until its acknowledgement when `flags` asks for one (a request that is not
    a dump). An NLMSG_ERROR other than that acknowledgement raises OSError with its errno."""
    sock.send(message(kind, flags, seq, body))
    payloads: list[bytes] = []
    while True:  # bounded: a dump ends with NLMSG_DONE, a request with its ack or an error
        for found_kind, found_seq, payload in messages(sock.recv(1 << 20)):
            if found_seq != seq:
                continue  # an answer to an earlier, abandoned exchange
            if found_kind == NLMSG_DONE:
                return payloads
            if found_kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                if code == 0:
                    return payloads  # the acknowledgement
                raise OSError(code, f"netlink request refused: {os.strerror(code)}")
            payloads.append(payload)
            if not flags & NLM_F_DUMP and not flags & NLM_F_ACK:
                return payloads  # a plain request: one answer
