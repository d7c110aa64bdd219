"""Where a query name goes: the dcos-dns routing table (reference/dcos-networking.md §2.2).
Pure.

Two things live here:
- `Routes.route(qname)`: the upstream group for a name that is not ours. `mesos` and below go
  to the masters' Mesos-DNS when those are configured (dcos-dns checks it first); otherwise
  the most specific forward zone that encloses the name; otherwise the default upstreams.
  Only names outside the node's zones get here: for `.mesos` to reach Mesos-DNS, the node's
  ZoneSet must leave the `mesos.` origin out (the default ZoneSet answers it itself).
- `rename(qname)`: the dcos-dns aliases answered from our own zones. `*.dclb.thisdcos.directory`
  and `*.dclb.thisdcos.global` are `*.l4lb.thisdcos.directory`; any other `*.thisdcos.global`
  is `*.thisdcos.directory`. The answerer looks the internal name up and renames every name
  in the answer back, so the client only ever sees the names it asked about.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from appliers.dns.records import canonical_name

DNS_PORT = 53
MESOS = "mesos."


@dataclass(frozen=True, slots=True, order=True)
class Upstream:
    host: str  # an IP literal in its compressed form, as socket addresses report it
    port: int = DNS_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_upstream(text: str, default_port: int = DNS_PORT) -> Upstream:
    """"IP", "IP:PORT", "IPv6" or "[IPv6]:PORT". Raises ValueError on anything else (a host
    name would need a resolver to find the resolver)."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad upstream {text!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"bad port in upstream {text!r}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"upstream {text!r} is not an IP address") from None
    return Upstream(address.compressed, port)


@dataclass(frozen=True, slots=True)
class Route:
    group: str  # "mesos", "zone <name>" or "default": for logs and metrics
    upstreams: tuple[Upstream, ...]


class Routes:
    """The upstream groups of one node. Built from plain values (what the CLI parses)."""

    def __init__(self, default: Iterable[str | Upstream] = (),
                 zones: Mapping[str, Iterable[str | Upstream]] | None = None,
                 mesos: Iterable[str | Upstream] = ()) -> None:
        self.default = _upstreams(default)
        self.mesos = _upstreams(mesos)
        self.zones = {canonical_name(zone): _upstreams(group) for zone, group in (zones or {}).items()}
        if "." in self.zones:
            raise ValueError("a forward zone for the root is the default upstreams: use those")
        self._default = Route("default", self.default)
        self._mesos = Route("mesos", self.mesos)
        self._zone_routes = {zone: Route(f"zone {zone}", group) for zone, group in self.zones.items()}

    def route(self, qname: str) -> Route:
        """The group for `qname` (canonical: lower case, absolute). An empty group means
        nobody to ask."""
        if self.mesos and (qname == MESOS or qname.endswith("." + MESOS)):
            return self._mesos
        if self._zone_routes:
            name = qname
            while name and name != ".":  # from the full name up: the first hit is the deepest
                found = self._zone_routes.get(name)
                if found is not None:
                    return found
                name = name[name.find(".") + 1:] or "."
        return self._default


def _upstreams(values: Iterable[str | Upstream]) -> tuple[Upstream, ...]:
    found = [value if isinstance(value, Upstream) else parse_upstream(value) for value in values]
    return tuple(dict.fromkeys(found))  # a repeated upstream is one upstream, order kept


# -- renames --------------------------------------------------------------------------------

# (what the client asks under, what we answer from), applied in this order; later steps see
# the result of earlier ones, and going back undoes them in reverse order.
_GLOBAL = ("thisdcos.global.", "thisdcos.directory.")
_DCLB = ("dclb.thisdcos.directory.", "l4lb.thisdcos.directory.")
# dcos-dns' copy of the Mesos-DNS zone: answered from the mesos zone itself rather than kept
# twice (the processor does not publish the copy; see processors/dns/config.py).
MESOS_COPY = ("mesos.thisdcos.directory.", "mesos.")
MESOS_COPY_TTL = 5  # the copy is a dcos-dns zone: its TTL, and SRV priority and weight 1 1


@dataclass(frozen=True, slots=True)
class Rename:
    internal: str  # the name to look up
    steps: tuple[tuple[str, str], ...]  # (client suffix, internal suffix), in applied order

    @property
    def mesos_copy(self) -> bool:
        """True when the answer comes from the mesos zone for its dcos-dns copy."""
        return MESOS_COPY in self.steps

    def back(self, name: str) -> str:
        """An internal name as the client's view of the world spells it (canonical names in
        and out; names outside the renamed suffixes are returned as they are)."""
        for outside, inside in reversed(self.steps):
            name = _swap_suffix(name, inside, outside)
        return name


def rename(qname: str) -> Rename | None:
    """The internal name behind a dcos-dns alias, or None when `qname` (canonical) is none."""
    steps = []
    name = qname
    for outside, inside in (_GLOBAL, _DCLB, MESOS_COPY):
        swapped = _swap_suffix(name, outside, inside)
        if swapped != name:
            steps.append((outside, inside))
            name = swapped
    return Rename(name, tuple(steps)) if steps else None


def _swap_suffix(name: str, old: str, new: str) -> str:
    if name == old:
        return new
    if name.endswith("." + old):
        return name[:-len(old)] + new
    return name
