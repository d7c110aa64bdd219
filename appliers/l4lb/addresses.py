"""`schemas.addresses.canonical_ip`, the same answers, fast: `wayfinder vips` checks every
VIP's address (10,000 and more), and ipaddress takes ~60 ms per 10,000 where an
inet_pton/inet_ntop round trip takes ~9 ms. Pure.

The round trip answers only where it agrees with ipaddress; everything else (a string it
refuses, a scope id, an address inet_ntop writes with a dotted tail such as ``::ffff:1.2.3.4``,
which Python 3.11 writes ``::ffff:102:304``) goes to the original function, cached there.
tests/unit/test_l4lb_canonical_ip.py holds the two to the same answers.
"""

from __future__ import annotations

from socket import AF_INET, AF_INET6, inet_ntop, inet_pton

from schemas.addresses import canonical_ip as reference_canonical_ip


def canonical_ip(text: object) -> str | None:
    """The canonical text of an IP address (``fd00:0::1`` -> ``fd00::1``), or None when
    `text` is no IP address; exactly what `schemas.addresses.canonical_ip` returns."""
    if type(text) is str:
        try:
            if ":" in text:
                out = inet_ntop(AF_INET6, inet_pton(AF_INET6, text))
                # Both write hextets in lowercase without leading zeros and compress the first
                # longest run of two or more zero hextets (RFC 5952); only inet_ntop writes
                # some addresses with an IPv4 tail.
                if "." not in out:
                    return out
            else:
                out = inet_ntop(AF_INET, inet_pton(AF_INET, text))
                # A dotted quad that reads back as itself: ipaddress takes it unchanged. One a
                # C library reads more leniently (leading zeros) goes to ipaddress.
                if out == text:
                    return out
        except (OSError, ValueError):  # refused; ValueError: an embedded NUL or a lone surrogate
            pass
    return reference_canonical_ip(text)


def is_canonical_ip(text: str) -> bool:
    """Whether `text` is an IP address written the canonical way: ``canonical_ip(text) ==
    text``, with one call fewer for the common case (a VIP as the kernel writes it)."""
    if type(text) is str:
        try:
            if ":" in text:
                # A dotted tail: how ipaddress writes it depends on the Python version; it says.
                if "." not in text and inet_ntop(AF_INET6, inet_pton(AF_INET6, text)) == text:
                    return True
            elif inet_ntop(AF_INET, inet_pton(AF_INET, text)) == text:
                return True
        except (OSError, ValueError):
            pass
    return reference_canonical_ip(text) == text
