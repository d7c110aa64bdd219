"""The values of marathon-lb labels, validated (pure; a validator returns the value or an
``Invalid`` with the reason, and never raises). Nothing that passes can inject HAProxy
configuration: no line breaks, comments, quotes, braces or unknown keywords."""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from schemas.haproxy import Auth

MAX_WEIGHT = 2**31 - 1
MAX_LIST = 100  # vhosts, groups or CIDRs in one label

BALANCE_ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri", "url_param",
                      "hdr(<name>)", "random", "random(<draws>)", "rdp-cookie", "rdp-cookie(<name>)")
# HAProxy's bind keywords: True for those that take one argument.
BIND_KEYWORDS = {
    "accept-netscaler-cip": True, "accept-proxy": False, "allow-0rtt": False, "alpn": True, "backlog": True,
    "ca-file": True, "ca-ignore-err": True, "ciphers": True, "ciphersuites": True, "crl-file": True, "crt": True,
    "crt-ignore-err": True, "crt-list": True, "curves": True, "defer-accept": False, "ecdhe": True,
    "force-tlsv12": False, "force-tlsv13": False, "interface": True, "maxconn": True, "mss": True, "name": True,
    "no-ca-names": False, "no-sslv3": False, "no-tls-tickets": False, "no-tlsv10": False, "no-tlsv11": False,
    "no-tlsv12": False, "npn": True, "prefer-client-ciphers": False, "ssl": False, "ssl-max-ver": True,
    "ssl-min-ver": True, "strict-sni": False, "tcp-ut": True, "tfo": False, "transparent": False, "v4v6": False,
    "v6only": False, "verify": True,
}
_INTEGER = re.compile(r"-?[0-9]{1,10}")
_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOST_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_VHOST = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?(?::[0-9]{{1,5}})?")
_PATH = re.compile(r"/[A-Za-z0-9._~!$&()*+,;=:@/%-]{0,1023}")
_PATH_FLAGS = frozenset({"-i"})
_BIND_WORD = re.compile(r"[A-Za-z0-9._:/,+=@-]{1,256}")
_SSL_CERT = re.compile(r"/[A-Za-z0-9._/-]{1,1023}")
_REALM = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_USER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_PASSWORD_HASH = re.compile(r"[A-Za-z0-9./$=+_-]{1,256}")
_BALANCE = re.compile(r"roundrobin|static-rr|leastconn|first|source|random(?:\([0-9]{1,3}\))?"
                      r"|hdr\([A-Za-z0-9-]{1,64}\)|rdp-cookie(?:\([A-Za-z0-9_-]{1,64}\))?")
_URI_OPTIONS = re.compile(r"(?: (?:len|depth) [0-9]{1,5}| whole| path-only)*")
_URL_PARAM = re.compile(r" [A-Za-z0-9_.-]{1,64}(?: check_post)?")


class Invalid(NamedTuple):
    """Why a label value was refused (validators return it instead of raising)."""

    why: str


def group_list(value: str) -> tuple[str, ...] | Invalid:
    """``a,b`` -> ("a", "b"); empty -> () (no group); or why not."""
    if not value.strip():
        return ()
    items = [item.strip() for item in value.split(",")]
    if len(items) > MAX_LIST:
        return Invalid(f"names {len(items)} groups; at most {MAX_LIST}")
    for item in items:
        if not _GROUP.fullmatch(item):
            return Invalid(f"group {item[:64]!r} is not a group name: 1 to 64 letters, digits, '_', '.' or '-' "
                           f"(the '*' of marathon-lb's --group is for LBs, not apps)")
    return tuple(dict.fromkeys(items))


def integer(text: str, low: int, high: int) -> int | Invalid:
    if _INTEGER.fullmatch(text.strip()) and low <= int(text) <= high:
        return int(text)
    return Invalid(f"is not an integer from {low} to {high}")


def vhost_list(text: str) -> tuple[str, ...] | Invalid:
    items = [item.strip().lower() for item in text.split(",")]
    if len(items) > MAX_LIST:
        return Invalid(f"names {len(items)} hosts; at most {MAX_LIST}")
    for item in items:
        if not item:
            return Invalid("has an empty host name in its comma-separated list")
        if not _VHOST.fullmatch(item) or len(item) > 253:
            return Invalid(f"host {item[:80]!r} is not a host name (letters, digits, '-' and '_' in dot-separated "
                    f"labels, an optional :port; no wildcards)")
    return tuple(dict.fromkeys(items))


def path_rule(text: str) -> str | Invalid:
    """The ``path_beg`` argument: paths starting with '/', and the flag ``-i``."""
    words = text.split()
    if not words or len(words) > MAX_LIST:
        return Invalid(f"is space-separated paths starting with '/' (1 to {MAX_LIST}), optionally after -i")
    for word in words:
        if word not in _PATH_FLAGS and not _PATH.fullmatch(word):
            return Invalid(f"{word[:80]!r} is neither the flag -i nor a path: '/' then letters, digits "
                           f"and ._~!$&()*+,;=:@/%-")
    if all(word in _PATH_FLAGS for word in words):
        return Invalid("names no path")
    return " ".join(words)


def single_path(text: str) -> str | Invalid:
    if not _PATH.fullmatch(text):
        return Invalid("is one path: '/' then letters, digits and ._~!$&()*+,;=:@/%-")
    return text


def bind_address(text: str) -> str | Invalid:
    if text == "*":
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return Invalid("is '*' or an IP address")


def bind_options(text: str) -> str | Invalid:
    """Bind keywords, each followed by its one argument where it takes one: an unknown word
    would fail HAProxy's whole configuration, so it is refused here."""
    words = text.split()
    if not words:
        return Invalid("is empty")
    at = 0
    for _ in range(len(words)):
        if at >= len(words):
            break
        keyword = words[at]
        if keyword not in BIND_KEYWORDS:
            return Invalid(f"{keyword[:40]!r} is not a bind keyword: {', '.join(sorted(BIND_KEYWORDS))}")
        if BIND_KEYWORDS[keyword]:
            at += 1
            if at >= len(words):
                return Invalid(f"bind keyword {keyword!r} needs an argument")
            if not _BIND_WORD.fullmatch(words[at]):
                return Invalid(f"{words[at][:80]!r}: an argument is letters, digits and ._:/,+=@- "
                               f"(no quotes, '#' or braces)")
        at += 1
    return " ".join(words)


def mode(text: str) -> str | Invalid:
    return text.lower() if text.lower() in ("http", "tcp") else Invalid("is 'http' or 'tcp'")


def balance(text: str) -> str | Invalid:
    words = " ".join(text.split())
    head, _, rest = words.partition(" ")
    if _BALANCE.fullmatch(head) and not rest:
        return head
    if head == "uri" and _URI_OPTIONS.fullmatch(f" {rest}" if rest else ""):
        return words
    if head == "url_param" and _URL_PARAM.fullmatch(f" {rest}"):
        return words
    return Invalid(f"is not one of HAProxy's balance algorithms: {', '.join(BALANCE_ALGORITHMS)}")


def auth(value: str) -> Auth | Invalid:
    parts = value.strip().split(":")
    if len(parts) != 3:
        return Invalid("is realm:user:crypted-password, exactly two ':'")
    realm, user, password_hash = parts
    if not _REALM.fullmatch(realm):
        return Invalid("the realm is 1 to 64 letters, digits, '_', '.' or '-'")
    if not _USER.fullmatch(user):
        return Invalid("the user is 1 to 64 letters, digits, '_', '.', '@' or '-'")
    if not _PASSWORD_HASH.fullmatch(password_hash):
        return Invalid("the password is a crypt(3) hash: letters, digits and ./$=+_-")
    return Auth(realm=realm, user=user, password_hash=password_hash)


def ssl_cert(text: str) -> str | Invalid:
    if not _SSL_CERT.fullmatch(text) or any(part in (".", "..") for part in text.split("/")):
        return Invalid("is an absolute path of letters, digits and ._/- without '.' or '..' components")
    return text


def networks(text: str) -> tuple[str, ...] | Invalid:
    items = text.split()
    if not items:
        return Invalid("names no network")
    if len(items) > MAX_LIST:
        return Invalid(f"names {len(items)} networks; at most {MAX_LIST}")
    canonical = []
    for item in items:
        try:
            canonical.append(str(ipaddress.ip_address(item)) if "/" not in item
                             else str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            return Invalid(f"{item[:80]!r} is neither an IP address nor a CIDR network")
    return tuple(dict.fromkeys(canonical))
